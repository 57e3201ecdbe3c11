//! The typed protocol of `/ws` over real sockets: delivery, ids, acks, errors.

mod support;

use chat_shared::{ChatMessage, ClientMessage, ErrorCode, ServerMessage};
use support::{JsonClient, RawClient, TestApp};
use tokio_tungstenite::tungstenite::Message;

#[track_caller]
fn expect_chat(message: ChatMessage, nick: &str, text: &str) -> u64 {
    assert_eq!((message.nick.as_str(), message.text.as_str()), (nick, text));
    assert!(message.ts > 1_600_000_000_000, "timestamp in ms since the epoch: {}", message.ts);
    message.id
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
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::join(app.address, "bob").await;
    let mut carol = JsonClient::join(app.address, "carol").await;

    let client_id = alice.say("hello all").await;
    let ids = [
        expect_chat(alice.next_chat().await, "alice", "hello all"),
        expect_chat(bob.next_chat().await, "alice", "hello all"),
        expect_chat(carol.next_chat().await, "alice", "hello all"),
    ];
    assert!(ids.iter().all(|id| *id == ids[0]), "everyone sees the same id: {ids:?}");
    assert_eq!(alice.next_ack(&client_id).await, ids[0], "the sender's ack names the stored id");
}

#[actix_web::test]
async fn ids_increase_in_delivery_order() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::join(app.address, "bob").await;
    for text in ["one", "two", "three"] {
        alice.say(text).await;
    }
    let mut last = 0;
    for text in ["one", "two", "three"] {
        let id = expect_chat(bob.next_chat().await, "alice", text);
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    bob.say("four").await;
    assert!(expect_chat(bob.next_chat().await, "bob", "four") > last);
}

#[actix_web::test]
async fn clients_that_have_not_joined_receive_nothing_and_cannot_send() {
    let app = TestApp::spawn().await;
    let mut lurker = JsonClient::connect(app.address).await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    alice.say("secret").await;
    expect_chat(alice.next_chat().await, "alice", "secret");
    assert!(matches!(lurker.next_any().await, ServerMessage::Rooms { .. }), "only the room list");

    lurker.say("let me in").await;
    expect_error(lurker.next().await, ErrorCode::NotJoined);
}

#[actix_web::test]
async fn bad_frames_get_an_error_and_the_connection_stays() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;

    alice.raw().send(Message::text("{not json")).await;
    expect_error(alice.next().await, ErrorCode::InvalidJson);
    alice.raw().send(Message::text(r#"{"type":"shout","text":"hi"}"#)).await;
    expect_error(alice.next().await, ErrorCode::InvalidMessage);
    alice.raw().send(Message::text(r#"{"type":"send","room":"lobby","client_id":"c1","text":"   "}"#)).await;
    expect_error(alice.next().await, ErrorCode::InvalidMessage);
    alice.raw().send(Message::binary(vec![1, 2, 3])).await;
    expect_error(alice.next().await, ErrorCode::UnsupportedFrame);
    alice.send(&ClientMessage::Typing { room: support::room("elsewhere") }).await;
    expect_error(alice.next().await, ErrorCode::NotJoined);

    alice.say("still here").await;
    expect_chat(alice.next_chat().await, "alice", "still here");
}

#[actix_web::test]
async fn an_invalid_nickname_is_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let mut client = RawClient::connect(app.address, "/ws").await;
    client.send(Message::text(r#"{"type":"join","room":"lobby","nick":"bad\nname","tab":"t1"}"#)).await;
    loop {
        match ServerMessage::decode(&client.next_text().await).expect("protocol") {
            ServerMessage::Rooms { .. } => continue,
            ServerMessage::Error { code: ErrorCode::InvalidMessage, message } => {
                assert!(message.contains("control characters"), "{message}");
                break;
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn a_client_that_disconnects_is_removed_and_the_rest_carry_on() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::join(app.address, "bob").await;
    let carol = JsonClient::join(app.address, "carol").await;
    carol.close().await;
    // A client that vanishes without a close frame.
    let dave = JsonClient::join(app.address, "dave").await;
    drop(dave);

    for round in 0..20 {
        let text = format!("round {round}");
        bob.say(&text).await;
        expect_chat(alice.next_chat().await, "bob", &text);
        expect_chat(bob.next_chat().await, "bob", &text);
    }
}

#[actix_web::test]
async fn oversized_frames_close_the_connection_with_1009() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let huge = format!(r#"{{"type":"send","text":"{}"}}"#, "x".repeat(chat_shared::limits::MAX_FRAME_BYTES));
    alice.raw().send(Message::text(huge)).await;
    assert_eq!(alice.raw().close_code().await, 1009);
    // The server is fine.
    let mut bob = JsonClient::join(app.address, "bob").await;
    bob.say("ok").await;
    expect_chat(bob.next_chat().await, "bob", "ok");
}

#[actix_web::test]
async fn messages_sent_just_before_leaving_an_emptied_room_are_still_acknowledged() {
    let app = TestApp::spawn().await;
    let mut alone = JsonClient::connect(app.address).await;
    alone.enter("dev", "alice", None).await;
    // Sent back to back: the hub moves alice out (and #dev empties, so this
    // node stops listening to it) while most of these wait to be committed.
    let mut unacked = std::collections::HashSet::new();
    for n in 0..30 {
        unacked.insert(alone.say(&format!("last words {n}")).await);
    }
    alone.send_join("ops", "alice", None).await;
    let (mut copies, mut entered) = (0, false);
    while !unacked.is_empty() || copies < 30 || !entered {
        match alone.next().await {
            ServerMessage::Ack { client_id, .. } => assert!(unacked.remove(&client_id), "one ack each"),
            ServerMessage::Message(message) if message.client_id.is_some() => copies += 1,
            ServerMessage::Joined { room, .. } => assert_eq!(room.as_str(), "ops"),
            ServerMessage::History { .. } => entered = true,
            other => panic!("unexpected {other:?}"),
        }
    }
}
