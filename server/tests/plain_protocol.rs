//! The seed's plain protocol on `/`, and its bridge to the JSON protocol.

mod support;

use chat_shared::ServerMessage;
use support::{JsonClient, RawClient};
use tokio_tungstenite::tungstenite::Message;

#[actix_web::test]
async fn every_frame_is_echoed_verbatim_to_every_plain_client() {
    let address = support::spawn_app();
    let mut first = RawClient::connect(address, "/").await;
    let mut second = RawClient::connect(address, "/").await;

    first.send(Message::text("hello from the seed")).await;
    for client in [&mut first, &mut second] {
        assert_eq!(client.next().await, Some(Message::text("hello from the seed")));
    }
    second.send(Message::binary(vec![0u8, 159, 146, 150])).await;
    for client in [&mut first, &mut second] {
        assert_eq!(client.next().await, Some(Message::binary(vec![0u8, 159, 146, 150])));
    }
    // Not a valid chat message, but the plain protocol relays anything.
    first.send(Message::text("")).await;
    assert_eq!(second.next().await, Some(Message::text("")));
}

#[actix_web::test]
async fn plain_text_reaches_json_clients_from_a_guest_name() {
    let address = support::spawn_app();
    let mut plain = RawClient::connect(address, "/").await;
    let mut alice = JsonClient::join(address, "alice").await;

    plain.send(Message::text("hi from plain")).await;
    assert_eq!(plain.next().await, Some(Message::text("hi from plain")));
    match alice.next().await {
        ServerMessage::Message(m) => {
            assert_eq!(m.text.as_str(), "hi from plain");
            assert!(m.nick.as_str().starts_with("guest-"), "{}", m.nick);
        }
        other => panic!("expected a message, got {other:?}"),
    }
    // Binary frames and text that is not a valid chat message stay plain.
    plain.send(Message::binary(vec![1, 2])).await;
    plain.send(Message::text("bell\u{7}")).await;
    alice.raw().assert_silent().await;
}

#[actix_web::test]
async fn json_messages_reach_plain_clients_as_nick_colon_text() {
    let address = support::spawn_app();
    let mut plain = RawClient::connect(address, "/").await;
    let mut alice = JsonClient::join(address, "alice").await;

    alice.say("<b>hi</b> plain").await;
    assert_eq!(plain.next().await, Some(Message::text("alice: <b>hi</b> plain")));
}

#[actix_web::test]
async fn a_plain_client_that_leaves_is_removed() {
    let address = support::spawn_app();
    let leaver = RawClient::connect(address, "/").await;
    let mut stayer = RawClient::connect(address, "/").await;
    leaver.close().await;
    for round in 0..10 {
        stayer.send(Message::text(format!("{round}"))).await;
        assert_eq!(stayer.next().await, Some(Message::text(format!("{round}"))));
    }
}

#[actix_web::test]
async fn pings_are_answered() {
    let address = support::spawn_app();
    let mut plain = RawClient::connect(address, "/").await;
    plain.send(Message::Ping(vec![7u8; 10].into())).await;
    plain.send(Message::text("after ping")).await;
    assert_eq!(plain.next().await, Some(Message::text("after ping")));
}
