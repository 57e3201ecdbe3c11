//! Durable history over real sockets: pages, resume, dedupe, restarts.

mod support;

use chat_shared::limits::HISTORY_PAGE;
use chat_shared::{ClientMessage, ServerMessage};
use support::{JsonClient, TestApp, room};

/// Has `client` say `count` numbered messages and waits for all their acks.
async fn say_numbered(client: &mut JsonClient, count: u64) {
    for n in 1..=count {
        let client_id = client.say(&format!("m{n}")).await;
        client.next_ack(&client_id).await;
    }
}

#[actix_web::test]
async fn entering_a_room_brings_the_latest_page_and_paging_reaches_the_first_message() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    say_numbered(&mut alice, 120).await;

    let mut bob = JsonClient::connect(app.address).await;
    let (latest, has_more) = bob.enter("lobby", "bob", None).await;
    assert_eq!(latest.len(), HISTORY_PAGE as usize);
    assert_eq!(latest.first().map(|m| m.text.as_str()), Some("m71"));
    assert_eq!(latest.last().map(|m| m.text.as_str()), Some("m120"));
    assert!(has_more);

    let mut all = latest;
    loop {
        let before = all[0].id;
        bob.send(&ClientMessage::History { room: room("lobby"), before, limit: 50 }).await;
        match bob.next().await {
            ServerMessage::History { messages, has_more, .. } => {
                assert!(messages.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
                assert!(messages.last().is_none_or(|m| m.id < before));
                all.splice(0..0, messages);
                if !has_more {
                    break;
                }
            }
            other => panic!("expected history, got {other:?}"),
        }
    }
    let texts: Vec<String> = all.iter().map(|m| m.text.to_string()).collect();
    let expected: Vec<String> = (1..=120).map(|n| format!("m{n}")).collect();
    assert_eq!(texts, expected, "every message once, in order");
}

#[actix_web::test]
async fn resuming_after_an_id_delivers_exactly_what_was_missed() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    say_numbered(&mut alice, 5).await;

    let mut bob = JsonClient::connect(app.address).await;
    let (missed, _) = bob.enter("lobby", "bob", Some(3)).await;
    let texts: Vec<&str> = missed.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m4", "m5"]);

    // Nothing missed: an empty page, then live messages as usual.
    let mut carol = JsonClient::connect(app.address).await;
    let (missed, has_more) = carol.enter("lobby", "carol", Some(5)).await;
    assert!(missed.is_empty());
    assert!(has_more, "older messages exist before the resume point");
}

#[actix_web::test]
async fn a_resent_message_is_stored_and_shown_once() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::join(app.address, "bob").await;

    let client_id = alice.say("only once").await;
    let first = alice.next_ack(&client_id).await;
    // As after a reconnect: the same client id again, from a new connection of the same tab.
    alice.say_with_id("only once", &client_id).await;
    assert_eq!(alice.next_ack(&client_id).await, first, "the resend is acknowledged with the stored id");

    let seen = bob.next_chat().await;
    assert_eq!((seen.id, seen.text.as_str()), (first, "only once"));
    bob.say("next").await;
    assert_eq!(bob.next_chat().await.text.as_str(), "next", "no second copy reached bob");

    let mut carol = JsonClient::connect(app.address).await;
    let (history, _) = carol.enter("lobby", "carol", None).await;
    assert_eq!(history.iter().filter(|m| m.text.as_str() == "only once").count(), 1);
}

#[actix_web::test]
async fn history_survives_a_restart_on_the_same_file() {
    let first = TestApp::spawn().await;
    let mut alice = JsonClient::join(first.address, "alice").await;
    say_numbered(&mut alice, 3).await;
    let mut dev = JsonClient::connect(first.address).await;
    dev.enter("dev", "alice", None).await;
    say_numbered(&mut dev, 1).await;

    let second = first.restart_on_same_file().await;
    let mut bob = JsonClient::connect(second.address).await;
    let (history, has_more) = bob.enter("lobby", "bob", None).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m1", "m2", "m3"]);
    assert!(!has_more);
    let client_id = bob.say("after restart").await;
    assert_eq!(bob.next_ack(&client_id).await, 4, "ids continue where they were");
}
