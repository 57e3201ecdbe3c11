//! Reconnect and resume: a proxy cuts one browser's link while another sends;
//! on return the first shows what it missed once, in order, without a reload,
//! and what it typed while offline goes out.

use chat_e2e::{Artefacts, Chromedriver, CuttableProxy, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_resumes_without_gaps_or_duplicates() {
    let (server, _data) = Artefacts::locate().start_server(&[]).await;
    let proxy = CuttableProxy::start(server.address).await;
    let driver = Chromedriver::start().await;

    let alice = driver.user(&proxy.url("/"), "alice").await;
    let bob = driver.user(&server.url("/"), "bob").await;
    bob.send_with_enter("before the cut").await;
    alice.wait_for_message("bob", "before the cut").await;

    proxy.cut();
    alice.wait_for_connection_state("reconnecting").await;
    for text in ["missed one", "missed two", "missed three"] {
        bob.send_with_enter(text).await;
        bob.wait_for_message("bob", text).await;
    }
    alice.send_with_enter("typed while offline").await;
    eventually("the offline message to show as pending", || async {
        alice.texts(".message.pending .text").await.contains(&"typed while offline".to_owned()).then_some(())
    })
    .await;

    proxy.restore();
    alice.wait_for_connection_state("connected").await;
    alice.wait_for_message("bob", "missed three").await;
    bob.wait_for_message("alice", "typed while offline").await;
    alice.wait_for_message("alice", "typed while offline").await;
    eventually("nothing left pending", || async { alice.texts(".message.pending").await.is_empty().then_some(()) })
        .await;

    let expected = ["before the cut", "missed one", "missed two", "missed three", "typed while offline"];
    let texts: Vec<String> = alice.log().await.into_iter().map(|line| line.text).collect();
    assert_eq!(texts, expected, "alice's log: once each, in order");
    let texts: Vec<String> = bob.log().await.into_iter().map(|line| line.text).collect();
    assert_eq!(texts, expected, "bob's log");

    alice.close().await;
    bob.close().await;
    server.kill().await;
}
