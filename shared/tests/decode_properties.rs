//! Property tests of the decoder: any input gets a specified answer, never a
//! panic, and every valid message survives a round trip.
#![cfg(not(target_arch = "wasm32"))]

use chat_shared::limits::{MESSAGE_TEXT_MAX_CHARS, NICKNAME_MAX_CHARS};
use chat_shared::{
    ClientId, ClientMessage, DecodeError, Epoch, ErrorCode, MessageText, Nickname, RoomName, ServerMessage,
};
use proptest::prelude::*;

fn nickname() -> impl Strategy<Value = Nickname> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9éü李 _.-]{{1,{NICKNAME_MAX_CHARS}}}"))
        .expect("regex")
        .prop_filter_map("valid nickname", |s| Nickname::parse(s).ok())
}

fn room() -> impl Strategy<Value = RoomName> {
    "[a-z0-9][a-z0-9_-]{0,31}".prop_filter_map("valid room", |s| RoomName::parse(s).ok())
}

fn client_id() -> impl Strategy<Value = ClientId> {
    "[A-Za-z0-9_-]{1,64}".prop_filter_map("valid id", |s| ClientId::parse(s).ok())
}

fn text() -> impl Strategy<Value = MessageText> {
    proptest::string::string_regex(&format!("[^\\p{{Cc}}]{{1,200}}|[a-z \\n\\t]{{1,{MESSAGE_TEXT_MAX_CHARS}}}"))
        .expect("regex")
        .prop_filter_map("valid text", |s| MessageText::parse(s).ok())
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (room(), nickname(), client_id(), proptest::option::of(any::<u64>()), proptest::option::of(client_id()))
            .prop_map(|(room, nick, tab, after, epoch)| ClientMessage::Join {
                room,
                nick,
                tab,
                after,
                epoch: epoch.and_then(|e| Epoch::parse(e.as_str()).ok()),
            }),
        (room(), client_id(), text()).prop_map(|(room, client_id, text)| ClientMessage::Send { room, client_id, text }),
        room().prop_map(|room| ClientMessage::Typing { room }),
        (room(), any::<u64>(), any::<u32>()).prop_map(|(room, before, limit)| ClientMessage::History {
            room,
            before,
            limit
        }),
        (room(), any::<u64>(), any::<u32>()).prop_map(|(room, after, limit)| ClientMessage::HistoryAfter {
            room,
            after,
            limit
        }),
    ]
}

fn specified(result: &Result<ClientMessage, DecodeError>) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            matches!(error.code, ErrorCode::InvalidJson | ErrorCode::InvalidMessage) && !error.detail.is_empty()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_decoded_or_refused_with_a_code(input in any::<String>()) {
        let result = ClientMessage::decode(&input);
        prop_assert!(specified(&result));
    }

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused_with_a_code(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let result = ClientMessage::decode(&String::from_utf8_lossy(&bytes));
        prop_assert!(specified(&result));
        let _ = ServerMessage::decode(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn json_shaped_input_with_wrong_fields_is_refused_not_panicked(
        kind in prop_oneof![Just("join"), Just("send"), Just("typing"), Just("history"), Just("nope")],
        key in "[a-z_]{1,10}",
        value in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), any::<String>().prop_map(|s| format!("{s:?}")), Just("null".to_owned())],
    ) {
        let input = format!(r#"{{"type":"{kind}","{key}":{value}}}"#);
        prop_assert!(specified(&ClientMessage::decode(&input)));
    }

    #[test]
    fn valid_messages_round_trip(message in client_message()) {
        prop_assert_eq!(ClientMessage::decode(&message.encode()), Ok(message));
    }
}
