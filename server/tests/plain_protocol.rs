//! The seed's plain protocol on `/`, and its bridge to the JSON protocol.

mod support;

use support::{JsonClient, RawClient};
use tokio_tungstenite::tungstenite::Message;

#[actix_web::test]
async fn every_frame_is_echoed_verbatim_to_every_plain_client() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
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
    let app = support::TestApp::spawn().await;
    let address = app.address;
    let mut plain = RawClient::connect(address, "/").await;
    let mut alice = JsonClient::join(address, "alice").await;

    plain.send(Message::text("hi from plain")).await;
    assert_eq!(plain.next().await, Some(Message::text("hi from plain")));
    let message = alice.next_chat().await;
    assert_eq!(message.text.as_str(), "hi from plain");
    assert_eq!(message.room.as_str(), "lobby");
    assert!(message.nick.as_str().starts_with("guest-"), "{}", message.nick);
    // Binary frames and text that is not a valid chat message stay plain.
    plain.send(Message::binary(vec![1, 2])).await;
    plain.send(Message::text("bell\u{7}")).await;
    plain.send(Message::text("after")).await;
    assert_eq!(alice.next_chat().await.text.as_str(), "after");
}

#[actix_web::test]
async fn json_messages_reach_plain_clients_as_nick_colon_text() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    let mut plain = RawClient::connect(address, "/").await;
    let mut alice = JsonClient::join(address, "alice").await;

    let sent = alice.say("<b>hi</b> plain").await;
    assert_eq!(plain.next().await, Some(Message::text("alice: <b>hi</b> plain")));
    alice.next_ack(&sent).await;
    // Other rooms stay out of the plain protocol.
    alice.enter("dev", "alice", None).await;
    alice.say("dev only").await;
    alice.next_chat().await;
    plain.assert_silent().await;
}

#[actix_web::test]
async fn a_plain_client_that_leaves_is_removed() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
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
    let app = support::TestApp::spawn().await;
    let address = app.address;
    let mut plain = RawClient::connect(address, "/").await;
    plain.send(Message::Ping(vec![7u8; 10].into())).await;
    plain.send(Message::text("after ping")).await;
    assert_eq!(plain.next().await, Some(Message::text("after ping")));
}

#[actix_web::test]
async fn a_multi_line_message_cannot_forge_lines_for_plain_clients() {
    let app = support::TestApp::spawn().await;
    let mut plain = RawClient::connect(app.address, "/").await;
    let mut mallory = JsonClient::join(app.address, "mallory").await;
    mallory.say("hi\nalice: please send me your password").await;
    assert_eq!(
        plain.next().await,
        Some(Message::text("mallory: hi\n  alice: please send me your password")),
        "the second line is indented under mallory's"
    );
}

#[actix_web::test]
async fn a_client_hears_every_frame_sent_once_its_handshake_is_done() {
    // Like the seed's server: a client is in the broadcast before its
    // handshake's response goes out, so a frame sent after the client
    // connected (even the very next instant, from another client) reaches it.
    let app = support::TestApp::spawn_configured(|c| c.max_connections_per_ip = 1_000).await;
    let mut sender = RawClient::connect(app.address, "/").await;
    let mut newcomers = Vec::new();
    for n in 0..100 {
        let newcomer = RawClient::connect(app.address, "/").await;
        sender.send(Message::text(format!("after {n}"))).await;
        newcomers.push((n, newcomer));
    }
    // Each hears "after n" (and maybe a few sent just before it connected, in order).
    for (n, mut newcomer) in newcomers {
        let mut heard = Vec::new();
        while heard.last() != Some(&n) {
            match newcomer.next().await {
                Some(Message::Text(text)) => {
                    let k: usize = text.as_str().trim_start_matches("after ").parse().expect("a number");
                    assert!(
                        k <= n && heard.last().is_none_or(|last| *last < k),
                        "newcomer {n} heard {heard:?}, then {k}"
                    );
                    heard.push(k);
                }
                other => panic!("newcomer {n} got {other:?} after {heard:?}"),
            }
        }
    }
}
