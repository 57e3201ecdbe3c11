//! Property tests of the decoder: any input gets a specified answer, never a
//! panic, and every valid message survives a round trip.
#![cfg(not(target_arch = "wasm32"))]

use chat_shared::limits::{MESSAGE_TEXT_MAX_CHARS, NICKNAME_MAX_CHARS};
use chat_shared::{
    ChatMessage, ClientId, ClientMessage, DecodeError, Epoch, ErrorCode, MessageText, Nickname, RoomInfo, RoomName,
    ServerMessage,
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

fn specified<T>(result: &Result<T, DecodeError>) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            matches!(error.code, ErrorCode::InvalidJson | ErrorCode::InvalidMessage) && !error.detail.is_empty()
        }
    }
}

fn chat_message() -> impl Strategy<Value = ChatMessage> {
    let change = (proptest::option::of(any::<u64>()), any::<bool>());
    (room(), any::<u64>(), any::<u64>(), nickname(), text(), proptest::option::of(client_id()), change).prop_map(
        |(room, id, ts, nick, text, client_id, (deletes, deleted))| ChatMessage {
            room,
            id,
            ts,
            nick,
            text,
            client_id,
            deletes,
            deleted,
        },
    )
}

fn room_info() -> impl Strategy<Value = RoomInfo> {
    (room(), any::<u32>()).prop_map(|(name, online)| RoomInfo { name, online })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let nicks = || proptest::collection::vec(nickname(), 0..4);
    let epoch = || "[A-Za-z0-9_-]{1,32}".prop_filter_map("valid epoch", |s| Epoch::parse(s).ok());
    prop_oneof![
        (room(), nickname(), nicks(), epoch(), any::<bool>(), proptest::collection::vec(room_info(), 0..3)).prop_map(
            |(room, nick, members, epoch, resumed, rooms)| ServerMessage::Joined {
                room,
                nick,
                members,
                epoch,
                resumed,
                rooms
            }
        ),
        (room(), proptest::collection::vec(chat_message(), 0..3), any::<bool>(), any::<bool>()).prop_map(
            |(room, messages, has_more, has_newer)| ServerMessage::History { room, messages, has_more, has_newer }
        ),
        chat_message().prop_map(ServerMessage::Message),
        (room(), client_id(), any::<u64>()).prop_map(|(room, client_id, id)| ServerMessage::Ack {
            room,
            client_id,
            id
        }),
        (room(), nickname()).prop_map(|(room, nick)| ServerMessage::MemberJoined { room, nick }),
        (room(), nickname()).prop_map(|(room, nick)| ServerMessage::MemberLeft { room, nick }),
        (room(), nicks()).prop_map(|(room, members)| ServerMessage::Members { room, members }),
        (room(), nickname()).prop_map(|(room, nick)| ServerMessage::Typing { room, nick }),
        proptest::collection::vec(room_info(), 0..4).prop_map(|rooms| ServerMessage::Rooms { rooms }),
        (nickname(), any::<u64>()).prop_map(|(name, expires_in)| ServerMessage::Authenticated { name, expires_in }),
        any::<u64>().prop_map(|expires_in| ServerMessage::TokenExpiring { expires_in }),
        (error_code(), any::<String>()).prop_map(|(code, message)| ServerMessage::Error { code, message }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_web_clients_decoder_reads_every_server_message_as_serde_does(message in server_message()) {
        let frame = message.encode();
        prop_assert_eq!(ServerMessage::decode_light(&frame), Ok(message.clone()));
        prop_assert_eq!(ServerMessage::decode(&frame), Ok(message));
    }

    #[test]
    fn the_web_clients_decoder_refuses_what_serde_refuses(
        kind in prop_oneof![Just("joined"), Just("history"), Just("message"), Just("ack"), Just("rooms"), Just("error"), Just("nope")],
        key in prop_oneof![Just("room".to_owned()), Just("nick".to_owned()), Just("id".to_owned()), Just("rooms".to_owned()), "[a-z_]{1,10}"],
        value in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<String>().prop_map(|s| serde_json::to_string(&s).expect("a JSON string")),
            Just("\"lobby\"".to_owned()),
            Just("null".to_owned()),
            Just("[]".to_owned()),
            Just("1.5".to_owned()),
        ],
        base in server_message(),
    ) {
        // A valid frame with one field replaced (or added), and a frame of that field alone.
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&base.encode()).expect("an object");
        object.insert(key.clone(), serde_json::from_str(&value).expect("json"));
        for frame in [serde_json::Value::Object(object).to_string(), format!(r#"{{"type":"{kind}","{key}":{value}}}"#)] {
            let (light, derived) = (ServerMessage::decode_light(&frame), ServerMessage::decode(&frame));
            prop_assert_eq!(light.is_ok(), derived.is_ok(), "{}: {:?} / {:?}", frame, light, derived);
            if let (Ok(light), Ok(derived)) = (light, derived) {
                prop_assert_eq!(light, derived);
            }
        }
    }

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
        let light = ServerMessage::decode_light(&String::from_utf8_lossy(&bytes));
        prop_assert!(specified(&light));
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
