//! Moderation in the browser: a user reports a message from the log; an
//! administrator, on a phone, finds it in the moderation view's queue and
//! resolves it, then bans the user from that view; the banned user's page
//! says so at once; the ban is listed, written to the audit log, and lifted.

use chat_e2e::{Artefacts, Chromedriver, eventually, screenshot_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_bans_from_a_phone_and_the_banned_user_is_told() {
    let (server, _data) = Artefacts::locate().start_server(&["--admin", "alice"]).await;
    let driver = Chromedriver::start().await;
    let bob = driver.browser(1000, 800).await;
    bob.register(&server.url("/"), "bob").await;
    bob.send_with_enter("hello from bob").await;

    let alice = driver.phone(360, 740).await;
    alice.goto(&server.url("/")).await;
    alice.wait_for_connection_state("connected").await;
    alice.account_form("alice", "correct horse", "Register").await;
    alice.wait_for_message("bob", "hello from bob").await;
    alice.send_with_enter("a rude line").await;

    // Bob reports it: the browser asks why, then says it is done.
    bob.wait_for_message("alice", "a rude line").await;
    bob.button("Report").await.click().await.expect("Report clicked");
    eventually("the prompt", || async { bob.client.get_alert_text().await.ok() }).await;
    bob.client.send_alert_text("rude to everyone").await.expect("reason typed");
    bob.client.accept_alert().await.expect("prompt accepted");
    let said = eventually("the confirmation", || async { bob.client.get_alert_text().await.ok() }).await;
    assert_eq!(said, "Reported to the moderators of #lobby.");
    bob.client.accept_alert().await.expect("alert accepted");

    alice.button("☰").await.click().await.expect("menu opened");
    eventually("the report in the queue", || async {
        let queue = alice.texts(".moderation .reports li span").await.concat();
        if queue.contains("rude to everyone") {
            return Some(queue);
        }
        alice.button("Refresh").await.click().await.ok();
        None
    })
    .await;
    alice.button("Resolve").await.click().await.expect("Resolve clicked");
    eventually("the queue empty", || async { alice.texts(".moderation .reports li").await.is_empty().then_some(()) })
        .await;
    alice.fill("Name to moderate", "bob").await;
    alice.button("Ban 1 day").await.click().await.expect("Ban clicked");

    eventually("bob told he is banned", || async {
        bob.alerts().await.contains("you are banned from #lobby").then_some(())
    })
    .await;
    eventually("the ban listed", || async {
        alice.texts(".moderation .bans li span").await.contains(&"bob".to_owned()).then_some(())
    })
    .await;
    assert!(alice.texts(".moderation .notice").await.concat().contains("bob banned for a day"));
    alice.screenshot(&screenshot_dir().join("moderation-phone.png")).await;
    let audit = alice.texts(".moderation .audit li").await;
    assert!(audit.iter().any(|line| line.contains("alice · ban bob (for 86400 s)")), "{audit:?}");

    alice.button("Lift").await.click().await.expect("Lift clicked");
    eventually("the ban lifted", || async { alice.texts(".moderation .bans li").await.is_empty().then_some(()) }).await;
    let audit = alice.texts(".moderation .audit li").await;
    assert!(audit.first().is_some_and(|line| line.contains("unban bob")), "{audit:?}");

    alice.close().await;
    bob.close().await;
    server.kill().await;
}
