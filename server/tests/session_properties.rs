//! Property test of the session logic over a real socket: whatever a peer
//! sends, it gets a specified answer (a known error code, or the protocol's
//! normal reply), never a crash, and the connection keeps working.

mod support;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_shared::{ErrorCode, ServerMessage};
use proptest::prelude::*;
use support::{JsonClient, TestApp};

/// Numbers the probe rooms, one per case.
static PROBES: AtomicU64 = AtomicU64::new(1);
use tokio_tungstenite::tungstenite::Message;

/// One server for all cases, on its own thread and runtime.
fn server() -> SocketAddr {
    static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();
    *ADDRESS.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = TestApp::spawn().await;
                sender.send(app.address).expect("address sent");
                std::future::pending::<()>().await;
            });
        });
        receiver.recv().expect("server started")
    })
}

/// Frames a peer might send: garbage, near-misses of the protocol, and valid messages.
fn frame() -> impl Strategy<Value = Message> {
    let kinds = prop_oneof![
        Just("join"),
        Just("send"),
        Just("typing"),
        Just("history"),
        Just("authenticate"),
        Just("refresh"),
        Just("hello"),
        Just("")
    ];
    let values = prop_oneof![
        Just("\"lobby\"".to_owned()),
        Just("\"a\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        Just("null".to_owned()),
        Just("[]".to_owned()),
    ];
    prop_oneof![
        any::<String>().prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        (
            kinds,
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("room"),
                        Just("nick"),
                        Just("tab"),
                        Just("text"),
                        Just("client_id"),
                        Just("token"),
                        Just("before"),
                        Just("limit"),
                        Just("after")
                    ],
                    values
                ),
                0..5,
            )
        )
            .prop_map(|(kind, fields)| {
                let fields: String = fields.iter().map(|(k, v)| format!(",\"{k}\":{v}")).collect();
                Message::text(format!("{{\"type\":\"{kind}\"{fields}}}"))
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_frame_gets_a_specified_answer_and_the_connection_survives(frames in proptest::collection::vec(frame(), 1..8)) {
        let address = server();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let mut client = JsonClient::connect(address).await;
            for frame in frames {
                client.raw().send(frame).await;
            }
            // A request that always has an answer, to know all earlier answers have arrived:
            // entering a room of its own (so the name is free) answers `joined`, then `history`.
            let probe = PROBES.fetch_add(1, Ordering::Relaxed);
            client.send_join(&format!("probe-{probe}"), "prober", None).await;
            loop {
                match client.next().await {
                    ServerMessage::History { room: r, .. } if r.as_str().starts_with("probe-") => break,
                    ServerMessage::Error { code, message } => {
                        assert!(!message.is_empty());
                        assert!(matches!(
                            code,
                            ErrorCode::InvalidJson | ErrorCode::InvalidMessage | ErrorCode::UnsupportedFrame
                                | ErrorCode::NotJoined | ErrorCode::NicknameTaken | ErrorCode::TokenInvalid
                        ), "unexpected code {code:?}");
                    }
                    // This server takes no tokens: nothing makes it accept one.
                    accepted @ (ServerMessage::Authenticated { .. } | ServerMessage::TokenExpiring { .. }) => {
                        panic!("a server without a token key answered {accepted:?}")
                    }
                    // Answers to frames that happened to be valid.
                    ServerMessage::Joined { .. } | ServerMessage::History { .. } | ServerMessage::Message(_)
                    | ServerMessage::Ack { .. } | ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. }
                    | ServerMessage::Typing { .. } | ServerMessage::Rooms { .. } | ServerMessage::Members { .. } => {}
                }
            }
            client.close().await;
        });
    }
}
