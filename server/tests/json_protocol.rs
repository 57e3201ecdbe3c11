//! The typed protocol of `/ws` over real sockets.

mod support;

use chat_shared::{ClientMessage, ErrorCode, ServerMessage};
use support::{JsonClient, RawClient};
use tokio_tungstenite::tungstenite::Message;

#[track_caller]
fn expect_chat(message: ServerMessage, nick: &str, text: &str) -> u64 {
    match message {
        ServerMessage::Message(m) if m.nick.as_str() == nick && m.text.as_str() == text => {
            assert!(m.ts > 1_600_000_000_000, "timestamp in ms since the epoch: {}", m.ts);
            m.id
        }
        other => panic!("expected {nick}: {text}, got {other:?}"),
    }
}

#[track_caller]
fn expect_error(message: ServerMessage, code: ErrorCode) {
    match message {
        ServerMessage::Error { code: got, message } => {
            assert_eq!(got, code, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_message_reaches_every_client_including_the_sender() {
    let address = support::spawn_app();
    let mut alice = JsonClient::join(address, "alice").await;
    let mut bob = JsonClient::join(address, "bob").await;
    let mut carol = JsonClient::join(address, "carol").await;

    alice.say("hello all").await;
    let ids = [
        expect_chat(alice.next().await, "alice", "hello all"),
        expect_chat(bob.next().await, "alice", "hello all"),
        expect_chat(carol.next().await, "alice", "hello all"),
    ];
    assert!(ids.iter().all(|id| *id == ids[0]), "everyone sees the same id: {ids:?}");
}

#[actix_web::test]
async fn ids_increase_in_delivery_order() {
    let address = support::spawn_app();
    let mut alice = JsonClient::join(address, "alice").await;
    let mut bob = JsonClient::join(address, "bob").await;
    for text in ["one", "two", "three"] {
        alice.say(text).await;
    }
    let mut last = 0;
    for text in ["one", "two", "three"] {
        let id = expect_chat(bob.next().await, "alice", text);
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    bob.say("four").await;
    assert!(expect_chat(bob.next().await, "bob", "four") > last);
}

#[actix_web::test]
async fn clients_that_have_not_joined_receive_nothing_and_cannot_send() {
    let address = support::spawn_app();
    let mut lurker = JsonClient::connect(address).await;
    let mut alice = JsonClient::join(address, "alice").await;
    alice.say("secret").await;
    expect_chat(alice.next().await, "alice", "secret");
    lurker.raw().assert_silent().await;

    lurker.say("let me in").await;
    expect_error(lurker.next().await, ErrorCode::NotJoined);
    alice.raw().assert_silent().await;
}

#[actix_web::test]
async fn bad_frames_get_an_error_and_the_connection_stays() {
    let address = support::spawn_app();
    let mut alice = JsonClient::join(address, "alice").await;

    alice.raw().send(Message::text("{not json")).await;
    expect_error(alice.next().await, ErrorCode::InvalidJson);
    alice.raw().send(Message::text(r#"{"type":"shout","text":"hi"}"#)).await;
    expect_error(alice.next().await, ErrorCode::InvalidMessage);
    alice.raw().send(Message::text(r#"{"type":"send","text":"   "}"#)).await;
    expect_error(alice.next().await, ErrorCode::InvalidMessage);
    alice.raw().send(Message::binary(vec![1, 2, 3])).await;
    expect_error(alice.next().await, ErrorCode::UnsupportedFrame);
    alice.send(&ClientMessage::Hello { nick: chat_shared::Nickname::parse("again").expect("nick") }).await;
    expect_error(alice.next().await, ErrorCode::AlreadyJoined);

    alice.say("still here").await;
    expect_chat(alice.next().await, "alice", "still here");
}

#[actix_web::test]
async fn an_invalid_nickname_is_refused_with_the_reason() {
    let address = support::spawn_app();
    let mut client = RawClient::connect(address, "/ws").await;
    client.send(Message::text(r#"{"type":"hello","nick":"bad\nname"}"#)).await;
    let reply = ServerMessage::decode(&client.next_text().await).expect("protocol");
    match reply {
        ServerMessage::Error { code: ErrorCode::InvalidMessage, message } => {
            assert!(message.contains("control characters"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_client_that_disconnects_is_removed_and_the_rest_carry_on() {
    let address = support::spawn_app();
    let mut alice = JsonClient::join(address, "alice").await;
    let mut bob = JsonClient::join(address, "bob").await;
    let carol = JsonClient::join(address, "carol").await;
    carol.close().await;
    // A client that vanishes without a close frame.
    let dave = JsonClient::join(address, "dave").await;
    drop(dave);

    for round in 0..20 {
        let text = format!("round {round}");
        bob.say(&text).await;
        expect_chat(alice.next().await, "bob", &text);
        expect_chat(bob.next().await, "bob", &text);
    }
}

#[actix_web::test]
async fn oversized_frames_close_the_connection_with_1009() {
    let address = support::spawn_app();
    let mut alice = JsonClient::join(address, "alice").await;
    let huge = format!(r#"{{"type":"send","text":"{}"}}"#, "x".repeat(chat_shared::limits::MAX_FRAME_BYTES));
    alice.raw().send(Message::text(huge)).await;
    match alice.raw().next().await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
    // The server is fine.
    let mut bob = JsonClient::join(address, "bob").await;
    bob.say("ok").await;
    expect_chat(bob.next().await, "bob", "ok");
}
