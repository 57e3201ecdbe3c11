//! Deleting messages in the browser: an author deletes their own line (the
//! browser asks first) and an administrator deletes someone else's; a second
//! browser sees both lines turn into "message deleted" at once, and a third
//! that was offline at the time shows them deleted when its link comes back,
//! without a reload. Members see Delete on their own lines only.

use chat_e2e::{Artefacts, Browser, Chromedriver, CuttableProxy, eventually, screenshot_dir};

/// Clicks Delete on `text` and accepts the browser's question.
async fn delete(browser: &Browser, text: &str) {
    browser.message_button(text, "Delete").await.click().await.expect("Delete clicked");
    let asked = eventually("the question", || async { browser.client.get_alert_text().await.ok() }).await;
    assert_eq!(asked, "Delete this message for everyone?");
    browser.client.accept_alert().await.expect("confirmed");
}

/// Waits until `browser`'s log is `expected` (author, text), in order.
async fn wait_for_log(browser: &Browser, expected: &[(&str, &str)]) {
    eventually("the log as expected", || async {
        let log: Vec<(String, String)> = browser.log().await.into_iter().map(|line| (line.nick, line.text)).collect();
        (log.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect::<Vec<_>>() == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_lines_go_for_everyone_online_and_for_who_was_away() {
    let (server, _data) = Artefacts::locate().start_server(&["--admin", "alice"]).await;
    let proxy = CuttableProxy::start(server.address).await;
    let driver = Chromedriver::start().await;
    let bob = driver.browser(1000, 800).await;
    bob.register(&server.url("/"), "bob").await;
    let alice = driver.browser(1000, 800).await;
    alice.register(&server.url("/"), "alice").await;
    let carol = driver.user(&proxy.url("/"), "carol").await;

    for text in ["hello all", "my password is hunter2", "buy cheap watches"] {
        bob.send_with_enter(text).await;
    }
    alice.send_with_enter("hi bob").await;
    let all =
        [("bob", "hello all"), ("bob", "my password is hunter2"), ("bob", "buy cheap watches"), ("alice", "hi bob")];
    wait_for_log(&carol, &all).await;
    wait_for_log(&bob, &all).await;
    // A member deletes their own lines only; a guest deletes nothing.
    assert_eq!(bob.texts("[role=log] .delete").await.len(), 3, "on bob's three lines, not alice's");
    assert!(carol.texts("[role=log] .delete").await.is_empty());

    proxy.cut();
    carol.wait_for_connection_state("reconnecting").await;
    delete(&bob, "my password is hunter2").await;
    // The administrator deletes bob's spam (her Delete buttons come once the page knows she moderates).
    eventually("alice's Delete on bob's line", || async {
        alice.find_message_button("buy cheap watches", "Delete").await.map(|_| ())
    })
    .await;
    delete(&alice, "buy cheap watches").await;
    let after = [("bob", "hello all"), ("bob", "message deleted"), ("bob", "message deleted"), ("alice", "hi bob")];
    wait_for_log(&bob, &after).await;
    wait_for_log(&alice, &after).await;
    assert_eq!(bob.texts("[role=log] .delete").await.len(), 1, "nothing to delete on a deleted line");

    proxy.restore();
    carol.wait_for_connection_state("connected").await;
    wait_for_log(&carol, &after).await;
    carol.screenshot(&screenshot_dir().join("deleted-after-resume.png")).await;
    let page = carol.texts("body").await.concat();
    assert!(!page.contains("hunter2") && !page.contains("watches"), "the deleted texts are nowhere on the page");

    alice.close().await;
    bob.close().await;
    carol.close().await;
    server.kill().await;
}
