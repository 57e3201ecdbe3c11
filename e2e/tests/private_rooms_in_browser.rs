//! Private rooms in the browser: a signed-in user creates one from the
//! sidebar, hands out its invite link, and whoever opens the link signed in
//! lands in the room with its history; a guest who opens the room is told
//! it is private and sees nothing of it. Screenshots on a desktop and a
//! 360 px phone.

use chat_e2e::{Artefacts, Chromedriver, eventually, screenshot_dir};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_created_shared_by_link_and_closed_to_strangers() {
    let (server, _data) = Artefacts::locate().start_server(&[]).await;
    let driver = Chromedriver::start().await;
    let alice = driver.browser(1000, 800).await;
    alice.register(&server.url("/"), "alice").await;
    alice.fill("Private room name", "Ops").await;
    alice.button("Create").await.click().await.expect("Create clicked");
    eventually("alice in #ops", || async { (alice.texts(".topbar h1").await.concat() == "#ops").then_some(()) }).await;
    alice.wait_until_member("alice").await;
    alice.send_with_enter("the plan for ops").await;
    alice.wait_for_message("alice", "the plan for ops").await;
    assert!(alice.texts(".private-rooms .room-name").await.contains(&"#ops".to_owned()));
    alice.button("Invite link").await.click().await.expect("Invite link clicked");
    let link = eventually("an invite link", || async {
        let field = alice.client.find(Locator::Css("input[aria-label='Invite link']")).await.ok()?;
        field.prop("value").await.ok().flatten().filter(|url| url.contains("/#/invite/"))
    })
    .await;
    alice.screenshot(&screenshot_dir().join("private-room-desktop.png")).await;

    // A guest who opens the room is refused it, and sees nothing of it.
    let guest = driver.browser(1000, 800).await;
    guest.goto(&server.url("/#/r/ops")).await;
    guest.wait_for_connection_state("connected").await;
    guest.fill("Nickname", "mallory").await;
    guest.button("Join").await.click().await.expect("Join clicked");
    eventually("the guest told the room is private", || async {
        guest.alerts().await.contains("private").then_some(())
    })
    .await;
    assert!(guest.log().await.iter().all(|line| !line.text.contains("plan")), "nothing of the room");

    // Bob opens the link as a guest: asked to sign in; once registered he is in #ops with its history.
    let bob = driver.phone(360, 740).await;
    bob.goto(&link).await;
    bob.wait_for_connection_state("connected").await;
    eventually("bob asked to sign in", || async {
        bob.texts(".notice").await.concat().contains("Sign in").then_some(())
    })
    .await;
    bob.account_form("bob", "correct horse", "Register").await;
    eventually("bob in #ops", || async { (bob.texts(".topbar h1").await.concat() == "#ops").then_some(()) }).await;
    bob.wait_for_message("alice", "the plan for ops").await;
    alice.wait_until_member("bob").await;
    bob.screenshot(&screenshot_dir().join("private-room-phone.png")).await;
    bob.button("☰").await.click().await.expect("menu opened");
    bob.screenshot(&screenshot_dir().join("private-room-phone-sidebar.png")).await;

    alice.close().await;
    guest.close().await;
    bob.close().await;
    server.kill().await;
}
