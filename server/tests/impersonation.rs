//! Taking over a nickname needs the tab's secret, which nobody else ever sees:
//! an attacker who copies every field the others receive gets
//! `nickname_taken`, and the victim stays connected.

mod support;

use chat_shared::{ClientId, ClientMessage, ErrorCode, ServerMessage};
use support::{JsonClient, TestApp, nick, room};

#[actix_web::test]
async fn copying_what_others_see_does_not_take_over_a_nickname() {
    let app = TestApp::spawn().await;
    let mut victim = JsonClient::connect_as_tab(app.address, "victims-secret-tab").await;
    victim.enter("lobby", "alice", None).await;
    let mut attacker = JsonClient::join(app.address, "mallory").await;

    // Everything the attacker can see of alice: her live message and the history.
    let said = victim.say("hello").await;
    let own_copy = loop {
        match victim.next().await {
            ServerMessage::Message(m) => break m,
            _ => continue,
        }
    };
    assert_eq!(own_copy.client_id.as_ref(), Some(&said), "the author's own copy confirms her message");
    victim.next_ack(&said).await;
    let seen = attacker.next_chat().await;
    assert_eq!(seen.text.as_str(), "hello");
    assert_eq!(seen.client_id, None, "nobody else gets the client id");
    let mut reader = JsonClient::connect(app.address).await;
    let (history, _) = reader.enter("lobby", "reader", None).await;
    assert!(history.iter().all(|m| m.client_id.is_none()), "nor from history");

    // Every token the attacker could have collected, tried as the tab secret.
    // (`said`, alice's client id, is not among them: only she got it.)
    let seen_fields =
        [seen.nick.to_string(), seen.room.to_string(), seen.id.to_string(), seen.ts.to_string(), seen.text.to_string()];
    let tokens: Vec<ClientId> = seen_fields.iter().filter_map(|t| ClientId::parse(t.as_str()).ok()).collect();
    assert_eq!(tokens.len(), seen_fields.len(), "every field seen is tried");
    for token in tokens {
        let mut impostor = JsonClient::connect(app.address).await;
        impostor
            .send(&ClientMessage::Join {
                room: room("lobby"),
                nick: nick("alice"),
                tab: token,
                after: None,
                epoch: None,
            })
            .await;
        match impostor.next().await {
            ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::NicknameTaken),
            other => panic!("the impostor got {other:?}"),
        }
    }

    // Alice is still there and still herself.
    let again = victim.say("still me").await;
    victim.next_ack(&again).await;
    loop {
        let message = attacker.next_chat().await;
        if message.text.as_str() == "still me" {
            assert_eq!(message.nick, nick("alice"));
            break;
        }
    }
}

#[actix_web::test]
async fn look_alike_nicknames_with_invisible_characters_are_refused() {
    let app = TestApp::spawn().await;
    let _alice = JsonClient::join(app.address, "alice").await;
    let mut impostor = JsonClient::connect(app.address).await;
    for forged in ["alice\u{200B}", "\u{202E}ecila", "ali\u{2060}ce"] {
        let join = format!(r#"{{"type":"join","room":"lobby","nick":"{forged}","tab":"impostor-tab"}}"#);
        impostor.raw().send(tokio_tungstenite::tungstenite::Message::text(join)).await;
        match impostor.next().await {
            ServerMessage::Error { code, message } => {
                assert_eq!(code, ErrorCode::InvalidMessage);
                assert!(message.contains("invisible"), "{message}");
            }
            other => panic!("{forged:?} was accepted: {other:?}"),
        }
    }
}
