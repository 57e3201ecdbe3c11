//! Rooms, presence and the typing indicator in real browsers.

use std::time::{Duration, Instant};

use chat_e2e::{Artefacts, Chromedriver, ProtocolClient, ServerProcess, eventually, screenshot_dir};
use chat_shared::limits::PRESENCE_EVENTS_MAX;
use fantoccini::Locator;

async fn server() -> (ServerProcess, tempfile::TempDir) {
    Artefacts::locate().start_server(&[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_join_leave_notices() {
    let (server, _data) = server().await;
    let driver = Chromedriver::start().await;
    let alice = driver.user(&server.url("/"), "alice").await;
    let bob = driver.user(&server.url("/"), "bob").await;

    alice.wait_until_member("bob").await;
    bob.wait_until_member("alice").await;
    eventually("a join notice", || async { alice.notices().await.contains(&"bob joined".to_owned()).then_some(()) })
        .await;

    bob.close().await;
    eventually("bob to leave Members", || async { (alice.members().await == ["alice"]).then_some(()) }).await;
    eventually("a leave notice", || async { alice.notices().await.contains(&"bob left".to_owned()).then_some(()) })
        .await;
    alice.close().await;
    server.kill().await;
}

/// A room too big for per-member events (a crowd back after a restart):
/// the page counts it from the room list instead of showing a stale sample of
/// names, and lists names again, exactly, once the crowd has thinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_room_is_counted_and_listed_again_once_small() {
    let (server, _data) = server().await;
    let crowd = PRESENCE_EVENTS_MAX + 20;
    let mut clients = Vec::new();
    for i in 0..crowd {
        clients.push(ProtocolClient::join(server.address, &format!("p{i:03}")).await);
    }
    let driver = Chromedriver::start().await;
    let alice = driver.user(&server.url("/"), "alice").await;
    let heading = || async { alice.texts("[aria-label=Members] h2").await.concat() };
    let here = || async { alice.texts("[aria-label=Rooms] [aria-current=page] .count").await.concat() };

    let everyone = crowd + 1;
    eventually("the crowd counted", || async { (heading().await == format!("Members ({everyone})")).then_some(()) })
        .await;
    assert_eq!(here().await, everyone.to_string(), "the room list agrees");
    assert_eq!(alice.members().await, ["alice"], "no stale sample of names");
    alice.screenshot(&screenshot_dir().join("crowded-room.png")).await;

    // 30 leave without anyone being told one by one: 91 stay, named exactly.
    clients.drain(..30);
    let mut expected: Vec<String> = (30..crowd).map(|i| format!("p{i:03}")).collect();
    expected.push("alice".to_owned());
    expected.sort();
    eventually("names listed again", || async { (alice.members().await == expected).then_some(()) }).await;
    assert_eq!(heading().await, format!("Members ({})", expected.len()));
    assert_eq!(here().await, expected.len().to_string());

    // A small room announces arrivals again.
    let _late = ProtocolClient::join(server.address, "late").await;
    alice.wait_until_member("late").await;
    eventually("a join notice", || async { alice.notices().await.contains(&"late joined".to_owned()).then_some(()) })
        .await;
    assert!(
        !alice.notices().await.iter().any(|n| n.starts_with('p')),
        "the crowd's comings and goings were not announced"
    );
    alice.close().await;
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typing_indicator_appears_and_disappears() {
    let (server, _data) = server().await;
    let driver = Chromedriver::start().await;
    let alice = driver.user(&server.url("/"), "alice").await;
    let bob = driver.user(&server.url("/"), "bob").await;
    alice.wait_until_member("bob").await;

    bob.type_in_composer("hel").await;
    eventually("bob is typing", || async { (alice.typing_line().await == "bob is typing…").then_some(()) }).await;
    // Sending ends it at once.
    bob.send_with_enter("lo").await;
    alice.wait_for_message("bob", "hello").await;
    assert_eq!(alice.typing_line().await, "", "the message cleared the indicator");

    // Typing without sending: it goes away about 5 s after the last keystroke.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    bob.type_in_composer("x").await;
    eventually("bob is typing again", || async { (alice.typing_line().await == "bob is typing…").then_some(()) }).await;
    let shown = Instant::now();
    eventually("the indicator to expire", || async { alice.typing_line().await.is_empty().then_some(()) }).await;
    let lasted = shown.elapsed();
    assert!(lasted >= Duration::from_secs(3) && lasted <= Duration::from_secs(7), "lasted {lasted:?}");

    alice.close().await;
    bob.close().await;
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_links_open_the_right_room_and_rooms_keep_their_logs() {
    let (server, _data) = server().await;
    let driver = Chromedriver::start().await;
    let alice = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;

    // A shared link opens the room it names.
    alice.goto(&server.url("/#/r/dev")).await;
    alice.join("alice").await;
    assert_eq!(alice.texts("h1").await, ["#dev"]);
    assert_eq!(alice.texts("[aria-label=Rooms] [aria-current=page] .room-name").await, ["#dev"]);
    alice.send_with_enter("only in dev").await;
    alice.wait_for_message("alice", "only in dev").await;

    bob.goto(&server.url("/")).await;
    bob.join("bob").await;
    assert_eq!(bob.texts("h1").await, ["#lobby"]);
    // The room list shows dev with one person in it.
    eventually("dev with 1 online", || async {
        let rooms = bob.texts("[aria-label=Rooms] li").await;
        rooms.iter().any(|r| r.starts_with("#dev") && r.ends_with('1')).then_some(())
    })
    .await;
    assert!(bob.log().await.is_empty(), "the lobby does not show dev's messages");

    // Following the link switches rooms and shows that room's history.
    bob.client
        .find(Locator::Css("[aria-label=Rooms] a[href='#/r/dev']"))
        .await
        .expect("dev link")
        .click()
        .await
        .expect("clicked");
    bob.wait_for_message("alice", "only in dev").await;
    bob.wait_until_member("alice").await;

    // A room created by name from the form.
    let field = bob.client.find(Locator::Css("input[aria-label='Room name']")).await.expect("room field");
    field.send_keys("Fresh-Room\u{E007}").await.expect("typed");
    eventually("the new room", || async { (bob.texts("h1").await == ["#fresh-room"]).then_some(()) }).await;
    assert_eq!(bob.client.current_url().await.expect("url").fragment(), Some("/r/fresh-room"));

    alice.close().await;
    bob.close().await;
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_nickname_is_refused_with_a_clear_message() {
    let (server, _data) = server().await;
    let driver = Chromedriver::start().await;
    let alice = driver.user(&server.url("/"), "alice").await;
    let impostor = driver.browser(1280, 800).await;

    impostor.goto(&server.url("/")).await;
    impostor.wait_for_connection_state("connected").await;
    let field = impostor.client.find(Locator::Css("input[aria-label=Nickname]")).await.expect("field");
    field.send_keys("alice").await.expect("typed");
    impostor.button("Join").await.click().await.expect("clicked");
    let alert = eventually("an error", || async { impostor.texts("[role=alert]").await.into_iter().next() }).await;
    assert!(alert.contains("already in use"), "{alert}");

    alice.close().await;
    impostor.close().await;
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_for_review() {
    let (server, _data) = server().await;
    let driver = Chromedriver::start().await;
    let desktop = driver.browser(1280, 800).await;
    let phone = driver.phone(390, 844).await;
    desktop.goto(&server.url("/")).await;
    desktop.join("alice").await;
    phone.goto(&server.url("/")).await;
    phone.join("bob").await;
    desktop.send_with_enter("Hi Bob! Notes are at https://example.org/notes").await;
    desktop.send_with_enter("Second message, grouped under the first").await;
    phone.send_with_enter("Hello from a phone 👋").await;
    phone.type_in_composer("typing").await;
    desktop.wait_for_message("bob", "Hello from a phone 👋").await;
    eventually("bob typing", || async { (desktop.typing_line().await == "bob is typing…").then_some(()) }).await;
    desktop.screenshot(&screenshot_dir().join("chat-1280x800.png")).await;
    phone.wait_for_message("alice", "Second message, grouped under the first").await;
    phone.screenshot(&screenshot_dir().join("chat-390x844.png")).await;
    let width = phone.client.execute("return window.innerWidth", vec![]).await.expect("width");
    assert_eq!(width.as_u64(), Some(390));
    desktop.close().await;
    phone.close().await;
    server.kill().await;
}
