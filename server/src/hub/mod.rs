//! The hub: one task that owns who is connected and in which room, has every
//! message stored before anyone hears of it, and fans events out.
//!
//! Sessions reach it through a cloneable [`HubHandle`]. Everything a session
//! should receive from the hub (its join answer, acks, room events) arrives
//! through that session's bounded outbound queue, filled by the relay of the
//! worker thread the session runs on ([`WorkerLink`]): the hub sends each
//! worker one batch per turn, and the relay walks the room's local members.
//! Each event is encoded once and the same bytes are queued to every
//! recipient. A session whose queue is full is dropped instead of slowing
//! everyone else.
//!
//! The hub never waits for the store: messages go to the `store_writer`
//! task, which commits everything waiting in one transaction while the hub
//! goes on with joins, typing and presence, and are relayed when it reports
//! back. History is read by the sessions themselves, from the store's readers.
//!
//! Inside: `task` is the loop and the membership rules (joins, takeovers,
//! leaves); `connections` the registered sessions and their workers;
//! `rooms` who is in which room; `room_lists` the coalesced room lists;
//! `plain_bridge` what links the seed's plain protocol to the lobby;
//! `outbox` the hub's per-worker batches, `worker_relay` the worker's side;
//! `outbound` each session's byte-bounded queue.

mod connections;
mod outbound;
mod outbox;
mod plain_bridge;
mod room_lists;
mod rooms;
mod store_writer;
mod task;
mod worker_relay;

pub use outbound::{
    CloseCause, DirectWrite, Outbound, OutboundReceiver, OutboundSender, QueueError, ReplySender, SessionSink,
    outbound_queue,
};
pub use plain_bridge::guest_nickname;
pub use task::PRESENCE_EVENTS_MAX;
pub use worker_relay::{WorkerAddress, WorkerId, WorkerLink};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chat_shared::{ClientId, Endpoint, MessageText, Nickname, RoomName};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::bus::{NodeId, Peer, RoomBus};
use crate::store::HistoryStore;

/// How many requests may wait for the hub before senders are slowed down.
const COMMAND_QUEUE_CAPACITY: usize = 4096;

/// Identifies one connection for its whole life.
pub type ConnectionId = u64;

/// The hub is gone (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the chat hub has stopped")]
pub struct HubStopped;

/// A request to join a room, under a nickname presence already gave it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The room.
    pub room: RoomName,
    /// The nickname to use there.
    pub nick: Nickname,
    /// Whether the history that follows continues the client's log (told
    /// to the client in `joined`).
    pub resumed: bool,
    /// How the connection came to hold the nickname.
    pub claim: JoinClaim,
    /// The room's first nicknames, from presence, for `joined`.
    pub members: Arc<[Nickname]>,
}

/// How a joining connection came to hold its nickname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinClaim {
    /// It was free: the room hears of a new member.
    New,
    /// This connection already held it (a repeated join): only its state is resent.
    Repeated,
    /// Its browser tab took it back from this stale connection of this node,
    /// which is closed; nobody hears it leave and come back.
    Replaces(ConnectionId),
}

/// What sessions ask of the hub. Messages are stored in batches; control
/// commands are applied one at a time, between batches.
enum Command {
    Say { id: ConnectionId, room: RoomName, client_id: ClientId, text: MessageText },
    PlainFrame { id: ConnectionId, frame: Outbound },
    Control(Control),
}

/// Membership and presence: everything that is not a message.
enum Control {
    Connect { id: ConnectionId, endpoint: Endpoint, sink: SessionSink, worker: WorkerAddress },
    Disconnect { id: ConnectionId },
    Join { id: ConnectionId, request: JoinRequest, admitted: oneshot::Sender<bool> },
    Typing { id: ConnectionId, room: RoomName },
}

/// A cheap, cloneable way for sessions to reach the hub.
#[derive(Clone)]
pub struct HubHandle {
    commands: mpsc::Sender<Command>,
    next_connection_id: Arc<AtomicU64>,
    next_worker_id: Arc<AtomicUsize>,
    node: NodeId,
}

impl HubHandle {
    /// Starts the hub task on the current tokio runtime, publishing room
    /// events on `bus`; returns its handle and the task, which ends once the
    /// last handle is dropped.
    /// At most `max_rooms` rooms have members at once.
    pub fn spawn(store: Arc<dyn HistoryStore>, bus: Box<dyn RoomBus>, max_rooms: usize) -> (Self, JoinHandle<()>) {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        let epoch = store.epoch().clone();
        let node = bus.node();
        let writer = store_writer::StoreWriter::spawn(store);
        let task = tokio::spawn(task::Hub::new(epoch, writer, bus, max_rooms).run(receiver));
        let handle = Self {
            commands,
            next_connection_id: Arc::new(AtomicU64::new(1)),
            next_worker_id: Arc::new(AtomicUsize::new(0)),
            node,
        };
        (handle, task)
    }

    /// A fresh id for a new connection.
    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Connection `id` of this node, as presence and the bus name it.
    pub fn peer(&self, id: ConnectionId) -> Peer {
        Peer { node: self.node, connection: id }
    }

    /// A fresh id for a worker's relay.
    pub fn next_worker_id(&self) -> WorkerId {
        self.next_worker_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a connection, whose sink its `worker`'s relay will hold; it
    /// starts receiving what its endpoint gets before joining (the room list
    /// for JSON, the lobby for plain clients).
    pub async fn connect(
        &self,
        id: ConnectionId,
        endpoint: Endpoint,
        sink: SessionSink,
        worker: WorkerAddress,
    ) -> Result<(), HubStopped> {
        self.send(Command::Control(Control::Connect { id, endpoint, sink, worker })).await
    }

    /// Forgets a connection and takes it out of its room; safe to call twice.
    pub async fn disconnect(&self, id: ConnectionId) {
        // If the hub has stopped there is nothing left to leave.
        let _ = self.send(Command::Control(Control::Disconnect { id })).await;
    }

    /// Moves a JSON connection into a room. The answer (`joined`, or an
    /// error) arrives on its queue; the result says whether it got in.
    pub async fn join(&self, id: ConnectionId, request: JoinRequest) -> Result<bool, HubStopped> {
        let (admitted, answer) = oneshot::channel();
        self.send(Command::Control(Control::Join { id, request, admitted })).await?;
        answer.await.map_err(|_| HubStopped)
    }

    /// Stores and relays a message. The ack arrives on the sender's queue.
    pub async fn say(
        &self,
        id: ConnectionId,
        room: RoomName,
        client_id: ClientId,
        text: MessageText,
    ) -> Result<(), HubStopped> {
        self.send(Command::Say { id, room, client_id, text }).await
    }

    /// Tells the room that this connection's user is typing.
    pub async fn typing(&self, id: ConnectionId, room: RoomName) -> Result<(), HubStopped> {
        self.send(Command::Control(Control::Typing { id, room })).await
    }

    /// Relays a frame from plain client `id` to every plain client, verbatim.
    pub async fn plain_frame(&self, id: ConnectionId, frame: Outbound) -> Result<(), HubStopped> {
        self.send(Command::PlainFrame { id, frame }).await
    }

    async fn send(&self, command: Command) -> Result<(), HubStopped> {
        self.commands.send(command).await.map_err(|_| HubStopped)
    }
}

/// Encodes an event once, for any number of recipients.
fn frame(message: &chat_shared::ServerMessage) -> Outbound {
    Outbound::Text(bytestring::ByteString::from(message.encode()))
}
