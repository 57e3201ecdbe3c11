//! Private rooms and bans under faults. Before the run: four accounts, a
//! private room `vault` (its owner and one member) and an open room `hall`
//! its owner created. While chatting: the member talks in `vault` and the
//! owner in `hall`, each from a random node, reconnecting as clients do; a
//! stranger (an account or a guest, by turns) keeps trying to get anything
//! of `vault` by every frame (joins, resumes, history pages); a fourth
//! account sits in `hall` until the owner bans it (at a seeded moment,
//! through a random node, tried again until a node answers), then keeps
//! trying to come back. The checker then says whether a stranger ever got a
//! frame of `vault`, and whether the banned account heard `hall` (or was let
//! back in) after the ban, beyond what a fault that cut its node off excuses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_shared::{ClientId, ClientMessage, MessageText, Nickname, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::checker::Checked;
use crate::client::Phase;
use crate::nemesis::{self, FaultKind};

/// The private room.
pub const VAULT: &str = "vault";
/// The open room whose owner bans someone.
pub const HALL: &str = "hall";

/// How long after the ban's request was answered a node may still let the
/// banned socket hear the room: every node hears of it within a second.
const GRACE_MS: f64 = 1_000.0;

/// How long after a fault that cut the banned socket's node off (from
/// Redis, PostgreSQL or both, or froze it) that node may take to catch up:
/// its change subscription notices a silent Redis within 10 s.
const CUT_OFF_GRACE_S: f64 = 12.0;

/// How long one connection attempt or request may take (a paused node never answers).
const PATIENCE: Duration = Duration::from_secs(3);

/// The session cookies of the four accounts.
pub struct Accounts {
    owner: String,
    member: String,
    stranger: String,
    banned: String,
}

/// What the actors recorded.
#[derive(Debug, Default)]
pub struct Record {
    /// Tries a stranger made at the private room.
    pub probes: u32,
    /// Frames of the private room a stranger got.
    pub leaks: Vec<String>,
    /// When the ban's request was answered (s since the epoch).
    pub banned_at: Option<f64>,
    /// Messages of `hall` the banned account got: when (s since the epoch),
    /// the message's id and stored time (ms), and the node it was connected to.
    pub heard: Vec<(f64, u64, u64, usize)>,
    /// Joins of `hall` the banned account got in by: when, and on which node.
    pub admitted: Vec<(f64, usize)>,
    /// Joins of `hall` the banned account tried after the ban.
    pub knocks: u32,
}

type Shared = Arc<Mutex<Record>>;

fn lock(record: &Shared) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One HTTP request to a node: (status, body, the session cookie it set).
pub(crate) async fn http(
    method: reqwest::Method,
    node: SocketAddr,
    path: &str,
    body: Option<String>,
    cookie: Option<&str>,
) -> Option<(u16, String, Option<String>)> {
    let mut request = reqwest::Client::new().request(method, format!("http://{node}{path}")).timeout(PATIENCE);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    Some((status, response.text().await.unwrap_or_default(), cookie))
}

/// Registers the accounts and makes the rooms, through `node` (before any fault).
pub async fn prepare(node: SocketAddr) -> Accounts {
    let mut cookies = Vec::new();
    for name in ["vault-owner", "vault-member", "stranger", "banned-one"] {
        let body = serde_json::json!({ "username": name, "password": "correct horse" }).to_string();
        let (status, text, cookie) =
            http(reqwest::Method::POST, node, "/api/register", Some(body), None).await.expect("register");
        assert_eq!(status, 201, "registering {name}: {text}");
        cookies.push(cookie.expect("a session cookie"));
    }
    let [owner, member, stranger, banned] = <[String; 4]>::try_from(cookies).expect("four");
    for (name, private) in [(VAULT, true), (HALL, false)] {
        let body = serde_json::json!({ "name": name, "private": private }).to_string();
        let (status, text, _) =
            http(reqwest::Method::POST, node, "/api/rooms", Some(body), Some(&owner)).await.expect("create");
        assert_eq!(status, 201, "creating {name}: {text}");
    }
    let (_, invite, _) = http(reqwest::Method::POST, node, &format!("/api/rooms/{VAULT}/invites"), None, Some(&owner))
        .await
        .expect("invite");
    let code =
        serde_json::from_str::<serde_json::Value>(&invite).ok().and_then(|v| v["code"].as_str().map(str::to_owned));
    let code = code.expect("an invite code");
    let (status, _, _) =
        http(reqwest::Method::POST, node, &format!("/api/invites/{code}"), None, Some(&member)).await.expect("accept");
    assert_eq!(status, 200, "accepting the invite");
    Accounts { owner, member, stranger, banned }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws` on `node`, signed in by `cookie` if any.
pub(crate) async fn connect(node: SocketAddr, cookie: Option<&str>) -> Option<Socket> {
    let mut request = format!("ws://{node}/ws").into_client_request().ok()?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse().ok()?);
    }
    let connected = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request)).await;
    connected.ok()?.ok().map(|(socket, _)| socket)
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("room name")
}

/// A `join` frame.
pub(crate) fn join(room_name: &str, nick: &str, tab: &str, after: Option<u64>) -> Message {
    let join = ClientMessage::Join {
        room: room(room_name),
        nick: Nickname::parse(nick).expect("nick"),
        tab: ClientId::parse(tab).expect("tab"),
        after,
        epoch: None,
    };
    Message::text(join.encode())
}

/// Runs the actors until the run is done.
pub async fn run(
    accounts: Accounts,
    nodes: Vec<SocketAddr>,
    seed: u64,
    ban_after: Duration,
    phase: watch::Receiver<Phase>,
) -> Record {
    let record = Shared::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let tasks = vec![
        tokio::spawn(speak(VAULT, accounts.member, nodes.clone(), rng.random(), phase.clone())),
        tokio::spawn(speak(HALL, accounts.owner.clone(), nodes.clone(), rng.random(), phase.clone())),
        tokio::spawn(trespass(accounts.stranger, nodes.clone(), rng.random(), record.clone(), phase.clone())),
        tokio::spawn(sit_in_hall(accounts.banned, nodes.clone(), rng.random(), record.clone(), phase.clone())),
        tokio::spawn(ban(accounts.owner, nodes, rng.random(), ban_after, record.clone())),
    ];
    for task in tasks {
        let _ = task.await;
    }
    std::mem::take(&mut *lock(&record))
}

fn chatting(phase: &watch::Receiver<Phase>) -> bool {
    *phase.borrow() == Phase::Chatting
}

/// Talks in `room` as the account of `cookie`, from random nodes, until the run goes quiet.
async fn speak(
    room_name: &'static str,
    cookie: String,
    nodes: Vec<SocketAddr>,
    seed: u64,
    phase: watch::Receiver<Phase>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut said = 0_u64;
    while chatting(&phase) {
        let node = nodes[rng.random_range(0..nodes.len())];
        let Some(mut socket) = connect(node, Some(&cookie)).await else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        if socket.send(join(room_name, "speaker", &format!("speaker-{room_name}"), None)).await.is_err() {
            continue;
        }
        while chatting(&phase) {
            tokio::select! {
                frame = socket.next() => if !matches!(frame, Some(Ok(_))) { break },
                () = tokio::time::sleep(Duration::from_millis(rng.random_range(150..450))) => {
                    said += 1;
                    let send = ClientMessage::Send {
                        room: room(room_name),
                        client_id: ClientId::parse(format!("{room_name}-{seed}-{said}")).expect("id"),
                        text: MessageText::parse(format!("{room_name} secret {said}")).expect("text"),
                    };
                    if socket.send(Message::text(send.encode())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// Whether `frame` tells a stranger anything of the private room.
fn leaks(frame: &ServerMessage) -> bool {
    let vault = |name: &RoomName| name.as_str() == VAULT;
    match frame {
        ServerMessage::Joined { room, rooms, .. } => vault(room) || rooms.iter().any(|info| vault(&info.name)),
        ServerMessage::History { room, messages, .. } => vault(room) || messages.iter().any(|m| vault(&m.room)),
        ServerMessage::Message(message) => vault(&message.room),
        ServerMessage::Ack { room, .. }
        | ServerMessage::MemberJoined { room, .. }
        | ServerMessage::MemberLeft { room, .. }
        | ServerMessage::Members { room, .. }
        | ServerMessage::Typing { room, .. } => vault(room),
        ServerMessage::Rooms { rooms } => rooms.iter().any(|info| vault(&info.name)),
        ServerMessage::Error { message, .. } => message.contains("secret"),
        ServerMessage::Authenticated { .. } | ServerMessage::TokenExpiring { .. } => false,
    }
}

/// A stranger, signed in or a guest by turns, tries every way into the private room.
async fn trespass(cookie: String, nodes: Vec<SocketAddr>, seed: u64, record: Shared, phase: watch::Receiver<Phase>) {
    let mut rng = StdRng::seed_from_u64(seed);
    while chatting(&phase) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        let node = nodes[rng.random_range(0..nodes.len())];
        let signed_in = rng.random_bool(0.5);
        let Some(mut socket) = connect(node, signed_in.then_some(cookie.as_str())).await else { continue };
        let tab = format!("stranger-{}", rng.random::<u32>());
        let frames = [
            join(VAULT, "stranger", &tab, rng.random_bool(0.5).then_some(0)),
            Message::text(ClientMessage::History { room: room(VAULT), before: u64::MAX, limit: 50 }.encode()),
            Message::text(ClientMessage::HistoryAfter { room: room(VAULT), after: 0, limit: 50 }.encode()),
            join("lobby", if signed_in { "stranger" } else { "a-guest" }, &tab, None),
        ];
        lock(&record).probes += 1;
        for frame in frames {
            if socket.send(frame).await.is_err() {
                break;
            }
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(700);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, socket.next()).await {
            if let Message::Text(text) = frame
                && let Ok(decoded) = ServerMessage::decode(&text)
                && leaks(&decoded)
            {
                lock(&record).leaks.push(format!("through {node}: {text}"));
            }
        }
        let _ = tokio::time::timeout(PATIENCE, socket.close(None)).await;
    }
}

/// The account to be banned: sits in `hall`, hears it, and once banned
/// keeps trying to come back, from random nodes, until the run goes quiet
/// (then it leaves: the nodes' open sockets are counted against the clients').
async fn sit_in_hall(
    cookie: String,
    nodes: Vec<SocketAddr>,
    seed: u64,
    record: Shared,
    mut phase: watch::Receiver<Phase>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while chatting(&phase) {
        let index = rng.random_range(0..nodes.len());
        let Some(mut socket) = connect(nodes[index], Some(&cookie)).await else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let tab = "banned-one-tab";
        if socket.send(join(HALL, "banned-one", tab, None)).await.is_err() {
            continue;
        }
        loop {
            let frame = tokio::select! {
                frame = socket.next() => frame,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    // Refused (or taken out): knock again now and then.
                    if socket.send(join(HALL, "banned-one", tab, None)).await.is_err() { break }
                    let mut record = lock(&record);
                    if record.banned_at.is_some() {
                        record.knocks += 1;
                    }
                    continue;
                }
                _ = phase.changed() => if chatting(&phase) { continue } else { break },
            };
            let Some(Ok(Message::Text(text))) = frame else {
                if matches!(frame, Some(Ok(_))) {
                    continue;
                }
                break;
            };
            let now = nemesis::epoch_now();
            match ServerMessage::decode(&text) {
                Ok(ServerMessage::Joined { room, .. }) if room.as_str() == HALL => {
                    lock(&record).admitted.push((now, index))
                }
                Ok(ServerMessage::Message(message)) if message.room.as_str() == HALL => {
                    lock(&record).heard.push((now, message.id, message.ts, index));
                }
                Ok(ServerMessage::History { room, messages, .. }) if room.as_str() == HALL => {
                    let mut record = lock(&record);
                    record.heard.extend(messages.iter().map(|message| (now, message.id, message.ts, index)));
                }
                _ => {}
            }
        }
        let _ = tokio::time::timeout(PATIENCE, socket.close(None)).await;
    }
}

/// The owner bans the fourth account from `hall` after `after`, through
/// random nodes until one answers.
async fn ban(cookie: String, nodes: Vec<SocketAddr>, seed: u64, after: Duration, record: Shared) {
    let mut rng = StdRng::seed_from_u64(seed);
    tokio::time::sleep(after).await;
    let body = serde_json::json!({ "user": "banned-one" }).to_string();
    for _ in 0..120 {
        let node = nodes[rng.random_range(0..nodes.len())];
        let answer =
            http(reqwest::Method::POST, node, &format!("/api/rooms/{HALL}/bans"), Some(body.clone()), Some(&cookie))
                .await;
        if answer.is_some_and(|(status, _, _)| status == 201) {
            lock(&record).banned_at = Some(nemesis::epoch_now());
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Until when (s since the epoch) node `node` may have been cut off from
/// what it needed to hear of the ban at `at`, by the faults in `windows`
/// that began before `until` and had not ended by `at`: none if none did.
fn cut_off_until(windows: &[(nemesis::Fault, f64, f64)], node: usize, at: f64, until: f64) -> Option<f64> {
    windows
        .iter()
        .filter(|(fault, began, ended)| {
            let reaches = !fault.kind.hits_a_node() || fault.node == node;
            reaches && fault.kind != FaultKind::LoseCommitReply && *began <= until && *ended + CUT_OFF_GRACE_S >= at
        })
        .map(|(_, _, ended)| ended + CUT_OFF_GRACE_S)
        .reduce(f64::max)
}

/// The two invariants of private rooms and bans.
pub fn check(record: &Record, windows: &[(nemesis::Fault, f64, f64)]) -> Vec<Checked> {
    let strangers = Checked {
        name: "no private room's frame reaches a non-member",
        cases: record.probes as usize,
        violations: record.leaks.clone(),
    };
    // Cases: every join it tried after the ban, and every message of the room it heard after it.
    let mut banned = Checked {
        name: "a banned member hears nothing of the room after the ban",
        cases: record.knocks as usize,
        violations: Vec::new(),
    };
    if let Some(at) = record.banned_at {
        let deadline = at + GRACE_MS / 1000.0;
        for (when, id, ts, node) in &record.heard {
            // Messages stored after the ban (its own time, less the grace) must not reach it.
            if (*ts as f64) / 1000.0 <= deadline {
                continue;
            }
            banned.cases += 1;
            if cut_off_until(windows, *node, at, *when).is_none_or(|excused| *when > excused) {
                banned.violations.push(format!(
                    "message {id} (stored {ts} ms) heard at {when:.3} s on node {node}, banned at {at:.3} s"
                ));
            }
        }
        for (when, node) in &record.admitted {
            if *when <= deadline {
                continue;
            }
            banned.cases += 1;
            if cut_off_until(windows, *node, at, *when).is_none_or(|excused| *when > excused) {
                banned
                    .violations
                    .push(format!("let back into #{HALL} at {when:.3} s on node {node}, banned at {at:.3} s"));
            }
        }
    } else {
        banned.violations.push("the ban was never made (no node answered for a minute)".to_owned());
    }
    vec![strangers, banned]
}
