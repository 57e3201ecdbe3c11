//! A simulated web client: joins its room on a random node, says something
//! now and then with a fresh client id, and when its connection breaks
//! reconnects to a random node, resumes after the last id it holds and
//! resends what was not acknowledged, as the web client does. A send the
//! server refused (store away, rate limit) it sends again 2 s later, as the
//! refusal promises (the web client waits for its next connection). It
//! records everything the checker needs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chat_shared::{
    ChatMessage, ClientId, ClientMessage, Epoch, ErrorCode, MessageText, Nickname, RoomName, ServerMessage,
};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a client waits for a connection and its `joined` (a paused node
/// accepts and never answers; a join waits up to 5 s for the store to say
/// whether it may resume).
const CONNECT_PATIENCE: Duration = Duration::from_secs(8);

/// How soon what was refused (the store was away, or the rate limit) is
/// sent again on an open connection; on a new connection it is sent at once.
const RESEND_EVERY: Duration = Duration::from_secs(2);

/// Most messages asked for per `history_after` page.
const PAGE: u32 = 200;

/// Where a client connected: a node it picked, or the balancer, which picked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The node of this index.
    Node(usize),
    /// Through nginx, balancing over every node.
    Nginx,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node(index) => write!(f, "node {index}"),
            Self::Nginx => f.write_str("through nginx"),
        }
    }
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients say things; faults happen.
    Chatting,
    /// Faults are healed: clients say nothing new, but still reconnect and resend.
    Quiet,
    /// Clients close and hand over their histories.
    Done,
}

/// Who a client is and where it may connect.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its room.
    pub room: RoomName,
    /// Its nickname.
    pub nick: Nickname,
    /// Its tab's secret (takes its name back on reconnect).
    pub tab: ClientId,
    /// Its own seed (timing, node choice).
    pub seed: u64,
    /// The nodes.
    pub nodes: Vec<SocketAddr>,
    /// The balancer in front of them, if this client connects through it
    /// (then it never picks a node itself).
    pub nginx: Option<SocketAddr>,
    /// When the run started.
    pub start: tokio::time::Instant,
}

/// What the run watches while it waits for quiescence.
#[derive(Debug, Default)]
pub struct Status {
    /// Joined on an open connection.
    pub joined: AtomicBool,
    /// Messages sent and not yet acknowledged.
    pub pending: AtomicUsize,
}

/// One thing a client was given about its room's messages, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A fresh start (a first join, or a resume the server refused): the
    /// latest page begins at `first` (`None`: the room was empty).
    Start {
        /// The first id of the page.
        first: Option<u64>,
    },
    /// A message, live or from a page.
    Message {
        /// Its id.
        id: u64,
    },
    /// Joined on a new connection (what follows came through it).
    Joined {
        /// Where it connected.
        node: Entry,
        /// When, from the start of the run.
        at: Duration,
        /// The id it resumed after, if any.
        after: Option<u64>,
    },
}

/// Everything a client recorded.
#[derive(Debug, Default)]
pub struct History {
    /// Its nickname.
    pub nick: String,
    /// Its room.
    pub room: String,
    /// What it was given, in order.
    pub received: Vec<Received>,
    /// The stored id of each of its client ids that was acknowledged.
    pub acks: HashMap<String, u64>,
    /// How many times each client id was sent (more than once: resent).
    pub sent: BTreeMap<String, u32>,
    /// Client ids never acknowledged.
    pub pending_at_end: Vec<String>,
    /// Connections opened.
    pub connections: u32,
    /// Joins that resumed after an id.
    pub resumes: u32,
    /// Resumes the server refused (the client started over from the latest page).
    pub resume_refused: u32,
    /// Error frames, by code.
    pub errors: BTreeMap<String, u32>,
    /// Whether it was joined when the run ended.
    pub joined_at_end: bool,
    /// The member list it showed when the run ended (its last `joined`,
    /// then every `member_joined` and `member_left` since).
    pub members_at_end: BTreeSet<String>,
    /// How that list came to be: each `joined` list and each event, with
    /// when (from the start of the run), for the report of a violation.
    pub members_trail: Vec<(Duration, String)>,
    /// `members` frames: lists the server corrected.
    pub corrections: u32,
    /// Text frames the server sent that were not valid protocol.
    pub invalid_frames: Vec<String>,
}

/// How a connection ended.
enum Ended {
    /// Broken or refused: connect again.
    Broken,
    /// The run is over.
    Done,
}

/// A client's state across its connections.
struct Client {
    plan: Plan,
    rng: StdRng,
    status: Arc<Status>,
    history: History,
    /// Sent, not acknowledged, in order.
    pending: Vec<(ClientId, MessageText)>,
    /// The last id held, once it has a log.
    last: Option<u64>,
    epoch: Option<Epoch>,
    said: u64,
}

/// Runs a client until the phase is [`Phase::Done`]; returns its history.
pub async fn run(plan: Plan, status: Arc<Status>, mut phase: watch::Receiver<Phase>) -> History {
    let history =
        History { nick: plan.nick.as_str().to_owned(), room: plan.room.as_str().to_owned(), ..History::default() };
    let rng = StdRng::seed_from_u64(plan.seed);
    let mut client = Client { plan, rng, status, history, pending: Vec::new(), last: None, epoch: None, said: 0 };
    let mut backoff = Duration::from_millis(100);
    while *phase.borrow() != Phase::Done {
        let (node, address) = match client.plan.nginx {
            Some(nginx) => (Entry::Nginx, nginx),
            None => {
                let node = client.rng.random_range(0..client.plan.nodes.len());
                (Entry::Node(node), client.plan.nodes[node])
            }
        };
        let connected =
            tokio::time::timeout(CONNECT_PATIENCE, tokio_tungstenite::connect_async(format!("ws://{address}/ws")))
                .await;
        let Ok(Ok((socket, _))) = connected else {
            let wait = backoff.mul_f64(client.rng.random_range(0.5..1.5));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = phase.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        backoff = Duration::from_millis(100);
        client.history.connections += 1;
        let ended = client.session(socket, node, &mut phase).await;
        client.status.joined.store(false, Ordering::Relaxed);
        if matches!(ended, Ended::Done) {
            client.history.joined_at_end = true;
            break;
        }
    }
    client.history.pending_at_end = client.pending.iter().map(|(id, _)| id.as_str().to_owned()).collect();
    client.history
}

impl Client {
    /// One connection: join (resuming if it holds a log), resend, chat.
    async fn session(&mut self, mut socket: Socket, node: Entry, phase: &mut watch::Receiver<Phase>) -> Ended {
        let after = self.last;
        let join = ClientMessage::Join {
            room: self.plan.room.clone(),
            nick: self.plan.nick.clone(),
            tab: self.plan.tab.clone(),
            after,
            epoch: after.and(self.epoch.clone()),
        };
        if socket.send(Message::text(join.encode())).await.is_err() {
            return Ended::Broken;
        }
        // Until `joined`; a paused node may never answer.
        let joined = tokio::time::timeout(CONNECT_PATIENCE, async {
            loop {
                match next(&mut socket, &mut self.history.invalid_frames).await? {
                    ServerMessage::Joined { epoch, resumed, members, .. } => {
                        self.history.members_at_end = members.iter().map(|nick| nick.as_str().to_owned()).collect();
                        let list = format!("joined {node}: {:?}", self.history.members_at_end);
                        self.history.members_trail.push((self.plan.start.elapsed(), list));
                        return Some((epoch, resumed));
                    }
                    ServerMessage::Error { code, .. } => {
                        self.count_error(code);
                        return None;
                    }
                    _ => {}
                }
            }
        })
        .await;
        let Ok(Some((epoch, resumed))) = joined else {
            // Its name may still be held by its last connection: wait a moment.
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(200..800))).await;
            return Ended::Broken;
        };
        self.epoch = Some(epoch);
        self.history.received.push(Received::Joined { node, at: self.plan.start.elapsed(), after });
        // The first page of a fresh start is the latest page.
        let mut starting = !(after.is_some() && resumed);
        if after.is_some() {
            self.history.resumes += 1;
            if !resumed {
                self.history.resume_refused += 1;
            }
        }
        self.status.joined.store(true, Ordering::Relaxed);
        for (client_id, text) in self.pending.clone() {
            if !self.send(&mut socket, client_id, text).await {
                return Ended::Broken;
            }
        }
        let mut say = Box::pin(tokio::time::sleep(self.pause()));
        let mut resend = tokio::time::interval(RESEND_EVERY);
        resend.tick().await;
        // A send was refused since the last resend.
        let mut refused = false;
        loop {
            tokio::select! {
                frame = next(&mut socket, &mut self.history.invalid_frames) => {
                    // The run ended: what comes now (others leaving as they
                    // close) is not part of it; the histories are as of the end.
                    if *phase.borrow() == Phase::Done {
                        return Ended::Done;
                    }
                    let Some(frame) = frame else { return Ended::Broken };
                    match frame {
                        ServerMessage::History { messages, has_newer, .. } => {
                            if starting {
                                starting = false;
                                self.history.received.push(Received::Start { first: messages.first().map(|m| m.id) });
                            }
                            for message in messages {
                                self.receive(&message);
                            }
                            if has_newer && let Some(after) = self.last {
                                let more = ClientMessage::HistoryAfter { room: self.plan.room.clone(), after, limit: PAGE };
                                if socket.send(Message::text(more.encode())).await.is_err() {
                                    return Ended::Broken;
                                }
                            }
                        }
                        ServerMessage::Message(message) => self.receive(&message),
                        ServerMessage::Ack { client_id, id, .. } => {
                            self.history.acks.insert(client_id.as_str().to_owned(), id);
                            self.pending.retain(|(pending, _)| *pending != client_id);
                            self.status.pending.store(self.pending.len(), Ordering::Relaxed);
                        }
                        ServerMessage::MemberJoined { room, nick } if room == self.plan.room => {
                            self.history.members_at_end.insert(nick.as_str().to_owned());
                            self.history.members_trail.push((self.plan.start.elapsed(), format!("+{}", nick.as_str())));
                        }
                        ServerMessage::MemberLeft { room, nick } if room == self.plan.room => {
                            self.history.members_at_end.remove(nick.as_str());
                            self.history.members_trail.push((self.plan.start.elapsed(), format!("-{}", nick.as_str())));
                        }
                        ServerMessage::Members { room, members } if room == self.plan.room => {
                            self.history.members_at_end = members.iter().map(|nick| nick.as_str().to_owned()).collect();
                            let list = format!("corrected: {:?}", self.history.members_at_end);
                            self.history.members_trail.push((self.plan.start.elapsed(), list));
                            self.history.corrections += 1;
                        }
                        ServerMessage::Error { code, .. } => {
                            self.count_error(code);
                            refused |= matches!(code, ErrorCode::StoreUnavailable | ErrorCode::RateLimited);
                        }
                        _ => {}
                    }
                }
                () = &mut say, if *phase.borrow() == Phase::Chatting => {
                    self.said += 1;
                    let client_id = ClientId::parse(format!("{}-{}", self.plan.tab.as_str(), self.said)).expect("client id");
                    let text = MessageText::parse(format!("{} says #{}", self.plan.nick.as_str(), self.said)).expect("text");
                    self.pending.push((client_id.clone(), text.clone()));
                    self.status.pending.store(self.pending.len(), Ordering::Relaxed);
                    if !self.send(&mut socket, client_id, text).await {
                        return Ended::Broken;
                    }
                    say = Box::pin(tokio::time::sleep(self.pause()));
                }
                _ = resend.tick(), if refused => {
                    refused = false;
                    for (client_id, text) in self.pending.clone() {
                        if !self.send(&mut socket, client_id, text).await {
                            return Ended::Broken;
                        }
                    }
                }
                changed = phase.changed() => {
                    if changed.is_err() || *phase.borrow() == Phase::Done {
                        let _ = socket.close(None).await;
                        return Ended::Done;
                    }
                }
            }
        }
    }

    /// Time until the next thing it says.
    fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(200..1_200))
    }

    /// Sends (or resends) one message; false if the connection broke.
    async fn send(&mut self, socket: &mut Socket, client_id: ClientId, text: MessageText) -> bool {
        *self.history.sent.entry(client_id.as_str().to_owned()).or_default() += 1;
        let send = ClientMessage::Send { room: self.plan.room.clone(), client_id, text };
        socket.send(Message::text(send.encode())).await.is_ok()
    }

    fn receive(&mut self, message: &ChatMessage) {
        if message.room != self.plan.room {
            return;
        }
        self.history.received.push(Received::Message { id: message.id });
        self.last = Some(self.last.map_or(message.id, |last| last.max(message.id)));
    }

    fn count_error(&mut self, code: ErrorCode) {
        *self.history.errors.entry(format!("{code:?}")).or_default() += 1;
    }
}

/// The next protocol message; `None` once the connection is over. Frames
/// that are not valid protocol are kept in `invalid` and skipped.
async fn next(socket: &mut Socket, invalid: &mut Vec<String>) -> Option<ServerMessage> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => match ServerMessage::decode(&text) {
                Ok(message) => return Some(message),
                Err(error) => invalid.push(format!("{error}: {}", text.chars().take(200).collect::<String>())),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
