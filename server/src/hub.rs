//! The hub: one task that owns who is connected and fans every event out.
//!
//! Sessions talk to it through a cloneable [`HubHandle`]. Each event is
//! encoded once, and the same bytes are queued to every recipient. Recipient
//! queues are bounded: a session that cannot keep up is dropped from the hub
//! (its queue closes and the session closes its socket) instead of making the
//! hub, and with it everyone else, wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::{ChatMessage, MessageText, Nickname, ServerMessage};
use tokio::sync::mpsc;

/// How many events may wait for one session before it counts as too slow.
pub const OUTBOUND_QUEUE_CAPACITY: usize = 1024;

/// How many requests may wait for the hub before senders are slowed down.
const COMMAND_QUEUE_CAPACITY: usize = 4096;

/// Identifies one connection for its whole life.
pub type ConnectionId = u64;

/// A frame the hub wants written to a session's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame.
    Text(ByteString),
    /// A binary frame (only plain clients send and receive these).
    Binary(Bytes),
}

/// The receiving end of a session's bounded outbound queue.
pub type OutboundReceiver = mpsc::Receiver<Outbound>;

/// Creates a session's bounded outbound queue.
pub fn outbound_queue() -> (mpsc::Sender<Outbound>, OutboundReceiver) {
    mpsc::channel(OUTBOUND_QUEUE_CAPACITY)
}

/// The hub is gone (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the chat hub has stopped")]
pub struct HubStopped;

/// Which protocol a member speaks, which decides how events reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Plain,
}

struct Member {
    protocol: Protocol,
    outbound: mpsc::Sender<Outbound>,
}

enum Command {
    Join { id: ConnectionId, protocol: Protocol, outbound: mpsc::Sender<Outbound> },
    Leave { id: ConnectionId },
    Say { nick: Nickname, text: MessageText },
    PlainFrame { id: ConnectionId, frame: Outbound },
}

/// A cheap, cloneable way for sessions to reach the hub.
#[derive(Clone)]
pub struct HubHandle {
    commands: mpsc::Sender<Command>,
    next_connection_id: Arc<AtomicU64>,
}

impl HubHandle {
    /// Starts the hub task on the current tokio runtime and returns its handle.
    /// The hub stops when the last handle is dropped.
    pub fn spawn() -> Self {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        tokio::spawn(Hub::default().run(receiver));
        Self { commands, next_connection_id: Arc::new(AtomicU64::new(1)) }
    }

    /// A fresh id for a new connection.
    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds a JSON client: from now on it receives every chat message.
    pub async fn join_json(&self, id: ConnectionId, outbound: mpsc::Sender<Outbound>) -> Result<(), HubStopped> {
        self.send(Command::Join { id, protocol: Protocol::Json, outbound }).await
    }

    /// Adds a plain client: it receives plain frames verbatim and chat messages as `nick: text`.
    pub async fn join_plain(&self, id: ConnectionId, outbound: mpsc::Sender<Outbound>) -> Result<(), HubStopped> {
        self.send(Command::Join { id, protocol: Protocol::Plain, outbound }).await
    }

    /// Removes a member; unknown ids are ignored, so this is safe to call twice.
    pub async fn leave(&self, id: ConnectionId) {
        // If the hub has stopped there is nothing left to leave.
        let _ = self.send(Command::Leave { id }).await;
    }

    /// Posts a chat message from a JSON client.
    pub async fn say(&self, nick: Nickname, text: MessageText) -> Result<(), HubStopped> {
        self.send(Command::Say { nick, text }).await
    }

    /// Relays a frame from plain client `id` to every plain client, verbatim.
    pub async fn plain_frame(&self, id: ConnectionId, frame: Outbound) -> Result<(), HubStopped> {
        self.send(Command::PlainFrame { id, frame }).await
    }

    async fn send(&self, command: Command) -> Result<(), HubStopped> {
        self.commands.send(command).await.map_err(|_| HubStopped)
    }
}

/// The nickname under which a plain client's text appears to JSON clients.
pub fn guest_nickname(id: ConnectionId) -> Nickname {
    // "guest-" plus at most 20 digits is well within the nickname rules.
    Nickname::parse(format!("guest-{id}")).expect("guest nicknames are valid")
}

#[derive(Default)]
struct Hub {
    members: HashMap<ConnectionId, Member>,
    last_message_id: u64,
}

impl Hub {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.recv().await {
            match command {
                Command::Join { id, protocol, outbound } => {
                    self.members.insert(id, Member { protocol, outbound });
                }
                Command::Leave { id } => {
                    self.members.remove(&id);
                }
                Command::Say { nick, text } => self.publish(nick, text),
                Command::PlainFrame { id, frame } => self.relay_plain(id, frame),
            }
        }
        tracing::debug!("hub stopped");
    }

    /// Sends a chat message to JSON clients as a `message` event and to plain
    /// clients as `nick: text`, each encoding made once.
    fn publish(&mut self, nick: Nickname, text: MessageText) {
        let plain = Outbound::Text(ByteString::from(format!("{nick}: {text}")));
        self.fan_out(Protocol::Plain, &plain);
        self.publish_to_json(nick, text);
    }

    fn publish_to_json(&mut self, nick: Nickname, text: MessageText) {
        self.last_message_id += 1;
        let event = ServerMessage::Message(ChatMessage { id: self.last_message_id, ts: now_millis(), nick, text });
        self.fan_out(Protocol::Json, &Outbound::Text(ByteString::from(event.encode())));
    }

    /// Echoes a plain client's frame to every plain client; valid text also
    /// reaches JSON clients, under the sender's guest name.
    fn relay_plain(&mut self, id: ConnectionId, frame: Outbound) {
        self.fan_out(Protocol::Plain, &frame);
        if let Outbound::Text(text) = frame
            && let Ok(text) = MessageText::parse(String::from(text))
        {
            self.publish_to_json(guest_nickname(id), text);
        }
    }

    fn fan_out(&mut self, protocol: Protocol, frame: &Outbound) {
        let mut too_slow = Vec::new();
        for (id, member) in self.members.iter().filter(|(_, m)| m.protocol == protocol) {
            match member.outbound.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => too_slow.push(*id),
                // The session ended and will send `Leave`; nothing to do.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in too_slow {
            tracing::warn!(connection = id, "outbound queue full; dropping slow client");
            // Dropping the sender closes the queue; the session then closes its socket.
            self.members.remove(&id);
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}
