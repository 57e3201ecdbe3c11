//! Property tests of private rooms. Against a model: whatever order members
//! are invited, removed and leave in, after every step each socket is in the
//! room exactly when the model says its user is a member — a member's join
//! is admitted, a stranger's (and a guest's) refused, and a socket whose user
//! was just removed is taken out of the room. And against a stranger: no
//! sequence of frames a non-member (signed in or a guest) sends ever brings
//! it a private room's message, member names, typing or line in a room list.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_shared::api::InviteCreated;
use chat_shared::{ClientId, ClientMessage, Epoch, ErrorCode, MessageText, Nickname, RoomName, ServerMessage};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::json;
use support::accounts::{api, registered};
use support::{JsonClient, TestApp};

/// Members besides the owner (user 0).
const OTHERS: usize = 2;

/// One server and its accounts for all cases, on its own thread and runtime.
fn server() -> &'static (SocketAddr, Vec<String>) {
    static SERVER: OnceLock<(SocketAddr, Vec<String>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = TestApp::spawn().await;
                let mut cookies = Vec::new();
                for user in 0..=OTHERS {
                    cookies.push(registered(app.address, &format!("user{user}")).await);
                }
                sender.send((app.address, cookies)).expect("server sent");
                std::future::pending::<()>().await;
            });
        });
        receiver.recv().expect("server started")
    })
}

/// Numbers each case's room.
static ROOMS: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The owner invites the user, who accepts.
    Invite(usize),
    /// The owner removes the user.
    Remove(usize),
    /// The user leaves.
    Leave(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let user = 1..=OTHERS;
    prop_oneof![user.clone().prop_map(Step::Invite), user.clone().prop_map(Step::Remove), user.prop_map(Step::Leave),]
}

/// A socket of one user (or a guest), and whether it is in the room.
struct Tab {
    client: JsonClient,
    inside: bool,
}

/// The next answer to a join or the notice of removal, skipping room events.
async fn verdict(client: &mut JsonClient) -> ServerMessage {
    let waited = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match client.next().await {
                answer @ (ServerMessage::Error { .. } | ServerMessage::Joined { .. }) => return answer,
                _ => continue,
            }
        }
    });
    waited.await.expect("an answer in time")
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let (address, cookies) = server();
    let room = format!("p{}", ROOMS.fetch_add(1, Ordering::Relaxed));
    let created =
        api(Method::POST, *address, "/api/rooms", Some(json!({ "name": room, "private": true })), &cookies[0]).await;
    prop_assert_eq!(created.status, 201);
    let mut members: BTreeSet<usize> = BTreeSet::new();
    let mut tabs = Vec::new();
    for (user, cookie) in cookies.iter().enumerate().skip(1) {
        let client = JsonClient::connect_with_cookie(*address, Some(cookie)).await;
        tabs.push((Some(user), Tab { client, inside: false }));
    }
    tabs.push((None, Tab { client: JsonClient::connect(*address).await, inside: false }));
    for step in steps {
        match step {
            Step::Invite(user) => {
                let link = api(Method::POST, *address, &format!("/api/rooms/{room}/invites"), None, &cookies[0]).await;
                let code = serde_json::from_str::<InviteCreated>(&link.body).expect("invite").code;
                let accepted = api(Method::POST, *address, &format!("/api/invites/{code}"), None, &cookies[user]).await;
                prop_assert_eq!(accepted.status, 200);
                members.insert(user);
            }
            Step::Remove(user) | Step::Leave(user) => {
                let by = if matches!(step, Step::Remove(_)) { 0 } else { user };
                let path = format!("/api/rooms/{room}/members/user{user}");
                let removed = api(Method::DELETE, *address, &path, None, &cookies[by]).await;
                prop_assert_eq!(removed.status, if members.remove(&user) { 204 } else { 404 }, "{:?}", step);
            }
        }
        for (user, tab) in &mut tabs {
            let member = user.is_some_and(|user| members.contains(&user));
            match (tab.inside, member) {
                (true, true) => {}
                (true, false) => {
                    let told = verdict(&mut tab.client).await;
                    prop_assert!(matches!(told, ServerMessage::Error { code: ErrorCode::Forbidden, .. }), "{told:?}");
                    tab.inside = false;
                }
                (false, _) => {
                    let nick = user.map_or("guest".to_owned(), |user| format!("user{user}"));
                    tab.client.send_join(&room, &nick, None).await;
                    let answer = verdict(&mut tab.client).await;
                    match answer {
                        ServerMessage::Joined { .. } => prop_assert!(member, "{nick} got in after {step:?}"),
                        ServerMessage::Error { code: ErrorCode::Forbidden, .. } => {
                            prop_assert!(!member, "{nick} refused after {step:?}")
                        }
                        other => prop_assert!(false, "unexpected {other:?}"),
                    }
                    tab.inside = member;
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_socket_is_in_the_room_exactly_while_its_user_is_a_member(steps in proptest::collection::vec(step(), 1..14)) {
        actix_web::rt::System::new().block_on(run(steps))?;
    }
}

/// Frames a stranger might send at a private room (`p`: its name).
fn stranger_frame(p: &'static str) -> impl Strategy<Value = ClientMessage> {
    let room = || prop_oneof![Just(p), Just("lobby")].prop_map(|name| RoomName::parse(name).expect("room"));
    let nick = prop_oneof![Just("user0"), Just("user1"), Just("eve")].prop_map(|n| Nickname::parse(n).expect("nick"));
    let id = || prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX)];
    prop_oneof![
        (room(), nick, proptest::option::of(id()), any::<bool>()).prop_map(|(room, nick, after, with_epoch)| {
            ClientMessage::Join {
                room,
                nick,
                tab: ClientId::parse("tab-stranger").expect("tab"),
                after,
                epoch: with_epoch.then(|| Epoch::parse("made-up").expect("epoch")),
            }
        }),
        (room(), id(), 1..100u32).prop_map(|(room, before, limit)| ClientMessage::History { room, before, limit }),
        (room(), id(), 1..100u32).prop_map(|(room, after, limit)| ClientMessage::HistoryAfter { room, after, limit }),
        room().prop_map(|room| ClientMessage::Typing { room }),
        room().prop_map(|room| ClientMessage::Send {
            room,
            client_id: ClientId::parse("c-stranger").expect("id"),
            text: MessageText::parse("let me in").expect("text"),
        }),
        Just(ClientMessage::Authenticate { token: "forged.token.here".to_owned() }),
    ]
}

/// Whether `frame` tells a stranger anything of room `p`.
fn leaks(frame: &ServerMessage, p: &str) -> bool {
    let of_p = |room: &RoomName| room.as_str() == p;
    match frame {
        ServerMessage::Joined { room, members, rooms, .. } => {
            of_p(room) || rooms.iter().any(|info| of_p(&info.name)) || members.iter().any(|m| m.as_str() == "user0")
        }
        ServerMessage::History { room, messages, .. } => of_p(room) || messages.iter().any(|m| of_p(&m.room)),
        ServerMessage::Message(message) => of_p(&message.room),
        ServerMessage::Ack { room, .. }
        | ServerMessage::MemberJoined { room, .. }
        | ServerMessage::MemberLeft { room, .. }
        | ServerMessage::Members { room, .. }
        | ServerMessage::Typing { room, .. } => of_p(room),
        ServerMessage::Rooms { rooms } => rooms.iter().any(|info| of_p(&info.name)),
        ServerMessage::Error { message, .. } => message.contains("secret"),
        ServerMessage::Authenticated { .. } | ServerMessage::TokenExpiring { .. } => false,
    }
}

async fn stranger_run(frames: Vec<ClientMessage>, p: &'static str, signed_in: bool) -> Result<(), TestCaseError> {
    let (address, cookies) = server();
    let created =
        api(Method::POST, *address, "/api/rooms", Some(json!({ "name": p, "private": true })), &cookies[0]).await;
    prop_assert_eq!(created.status, 201);
    let mut owner = JsonClient::connect_with_cookie(*address, Some(&cookies[0])).await;
    owner.enter(p, "user0", None).await;
    let mut stranger = JsonClient::connect_with_cookie(*address, signed_in.then_some(cookies[1].as_str())).await;
    for (turn, frame) in frames.into_iter().enumerate() {
        stranger.send(&frame).await;
        // The room lives on meanwhile: a message, typing.
        let said = owner.say(&format!("secret {turn}")).await;
        owner.next_ack(&said).await;
        owner.send(&ClientMessage::Typing { room: RoomName::parse(p).expect("room") }).await;
    }
    // Everything the stranger got, until it has been quiet a moment (room lists included).
    while let Ok(text) = tokio::time::timeout(Duration::from_millis(1_200), stranger.raw().next_text()).await {
        let frame = ServerMessage::decode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!leaks(&frame, p), "the stranger got {:?}", frame);
    }
    Ok(())
}

/// Names each case's room (leaked, so strategies can hold it).
fn next_private_room() -> &'static str {
    Box::leak(format!("q{}", ROOMS.fetch_add(1, Ordering::Relaxed)).into_boxed_str())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn no_frame_a_stranger_sends_brings_it_anything_of_a_private_room(
        (p, frames) in Just(()).prop_flat_map(|()| {
            let p = next_private_room();
            (Just(p), proptest::collection::vec(stranger_frame(p), 1..10))
        }),
        signed_in in any::<bool>(),
    ) {
        actix_web::rt::System::new().block_on(stranger_run(frames, p, signed_in))?;
    }
}
