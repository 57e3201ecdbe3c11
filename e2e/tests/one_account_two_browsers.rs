//! One account signed in from two browsers (a laptop and a second
//! computer) is in the room from both: each chats under its name and hears
//! the other, the room lists it once and hears nothing when one of them
//! closes, and hears it leave only when the last one does.

use std::time::Duration;

use chat_e2e::{Artefacts, Chromedriver, eventually, screenshot_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_chats_from_two_browsers_and_leaves_with_the_last() {
    let (server, _data) = Artefacts::locate().start_server(&[]).await;
    let driver = Chromedriver::start().await;
    let laptop = driver.browser(1000, 800).await;
    laptop.register(&server.url("/"), "alice").await;
    let bob = driver.user(&server.url("/"), "bob").await;
    bob.wait_until_member("alice").await;

    let desk = driver.browser(1000, 800).await;
    desk.goto(&server.url("/")).await;
    desk.wait_for_connection_state("connected").await;
    desk.account_form("alice", "correct horse", "Sign in").await;
    desk.wait_until_member("bob").await;
    desk.wait_until_member("alice").await;
    assert!(!desk.alerts().await.contains("in use"), "{}", desk.alerts().await);

    desk.send_with_enter("from my desk").await;
    laptop.wait_for_message("alice", "from my desk").await;
    bob.wait_for_message("alice", "from my desk").await;
    laptop.send_with_enter("from my laptop").await;
    desk.wait_for_message("alice", "from my laptop").await;
    assert_eq!(bob.members().await, ["alice", "bob"], "listed once");
    desk.screenshot(&screenshot_dir().join("one-account-two-browsers.png")).await;

    // The laptop closes: alice is still there for bob, and the desk hears bob.
    laptop.close().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bob.members().await, ["alice", "bob"]);
    assert!(!bob.notices().await.contains(&"alice left".to_owned()), "{:?}", bob.notices().await);
    bob.send_with_enter("still with us?").await;
    desk.wait_for_message("bob", "still with us?").await;

    // The desk closes too: now she left.
    desk.close().await;
    eventually("alice to leave Members", || async { (bob.members().await == ["bob"]).then_some(()) }).await;
    eventually("a leave notice", || async { bob.notices().await.contains(&"alice left".to_owned()).then_some(()) })
        .await;
    bob.close().await;
    server.kill().await;
}
