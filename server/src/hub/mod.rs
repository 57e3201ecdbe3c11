//! The hub: the shards that own the rooms, decide who is in which, have every
//! message stored before anyone hears of it, and fan events out.
//!
//! Rooms are hashed over several shards (one per worker by default), each a
//! task on the hub's own threads with its own command queue, bus
//! subscriptions and room sequence: there is no global serial point, and a
//! busy room slows only the rooms of its shard. Sessions reach the shards
//! through a cloneable [`HubHandle`], which routes each request by room.
//!
//! Everything a session should receive from the hub (its join answer, acks,
//! room events, room lists) arrives through its bounded outbound queue,
//! filled by the relay of the worker thread it runs on ([`WorkerLink`]):
//! each shard sends each worker one batch per turn, and the relay walks the
//! room's local members. Each event is encoded once and the same bytes are
//! queued to every recipient. A session whose queue is full is dropped
//! instead of slowing everyone else.
//!
//! No shard waits for the store: messages go to the `store_writer` task,
//! which commits what every shard has waiting in one transaction, and are
//! relayed when it reports back. History is read by the sessions themselves,
//! from the store's readers.
//!
//! Inside: `shard` is the loop and the membership rules (joins, takeovers,
//! leaves); `rooms` who is in which room, and the room quota; `directory`
//! the member counts and the coalesced room lists; `roster` the checks that
//! heal member lists; `plain_bridge` what links
//! the seed's plain protocol to the lobby; `outbox` a shard's per-worker
//! batches, `worker_relay` the worker's side; `outbound` each session's
//! byte-bounded queue.

mod awaited;
mod directory;
mod outbound;
mod outbox;
mod plain_bridge;
mod rooms;
mod roster;
mod shard;
mod store_writer;
mod worker_relay;

pub use directory::{OtherNodes, RoomCounts};
pub use outbound::{
    CloseCause, DirectWrite, Outbound, OutboundReceiver, OutboundSender, QueueError, ReplySender, SessionSink,
    outbound_queue,
};
pub use plain_bridge::guest_nickname;
pub use worker_relay::{WorkerAddress, WorkerId, WorkerLink};

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_shared::{ClientId, Endpoint, MessageText, Nickname, RoomName};
use prometheus_client::metrics::counter::Counter;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::bus::{NodeId, Peer, RoomBus};
use crate::presence::{Departure, Presence};
use crate::store::{Appended, HistoryStore, NewMessage};
use worker_relay::{Delivery, Workers};

/// How many requests may wait for the hub before senders are slowed down.
const COMMAND_QUEUE_CAPACITY: usize = 4096;

/// Identifies one connection for its whole life.
pub type ConnectionId = u64;

/// The hub is gone (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the chat hub has stopped")]
pub struct HubStopped;

/// The store could not take a change (it was not stored).
#[derive(Debug)]
pub(crate) struct StoreUnavailable;

/// Why a change to a room's log was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeFailed {
    /// The hub is gone (the server is shutting down).
    #[error("the chat hub has stopped")]
    HubStopped,
    /// The store is failing or not keeping up: try again later.
    #[error("the history store is unavailable")]
    StoreUnavailable,
}

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
    /// How many names the room held at the claim, every node's together:
    /// past [`chat_shared::limits::PRESENCE_EVENTS_MAX`] the join is not
    /// announced, even before the other nodes' counts reach this one.
    pub room_size: usize,
}

/// How a joining connection came to hold its nickname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinClaim {
    /// It was free: the room hears of a new member.
    New,
    /// This connection already held it (a repeated join): only its state is resent.
    Repeated,
    /// Its browser tab took it back from this stale connection (of this
    /// node or another), which is closed; nobody hears it leave and come back.
    Replaces(Peer),
    /// Another connection of its user holds it too (a second device): the
    /// room has the name already, and hears nothing.
    Shared,
}

/// What sessions ask of a shard. Messages are stored in batches; control
/// commands are applied one at a time, between batches.
enum Command {
    Say {
        id: ConnectionId,
        room: RoomName,
        client_id: ClientId,
        text: MessageText,
    },
    /// A change to the room's log (a deletion), stored and relayed like a message.
    Change {
        change: NewMessage,
        answer: oneshot::Sender<Result<Appended, StoreUnavailable>>,
    },
    PlainFrame {
        id: ConnectionId,
        frame: Outbound,
    },
    Control(Control),
}

/// Membership: everything that is not a message.
enum Control {
    /// A plain client connected (to the lobby's shard: it relays their frames).
    PlainConnected {
        id: ConnectionId,
    },
    PlainDisconnected {
        id: ConnectionId,
    },
    Join {
        id: ConnectionId,
        request: JoinRequest,
        admitted: oneshot::Sender<bool>,
    },
    Leave {
        id: ConnectionId,
        room: RoomName,
        departure: Departure,
    },
    Typing {
        id: ConnectionId,
        room: RoomName,
    },
    /// Presence found the connection's name in the room held by another.
    NameLost {
        id: ConnectionId,
        room: RoomName,
    },
}

/// A cheap, cloneable way for sessions to reach the hub.
#[derive(Clone)]
pub struct HubHandle {
    shards: Arc<[mpsc::Sender<Command>]>,
    workers: Workers,
    next_connection: Arc<AtomicU64>,
    node: NodeId,
}

/// What [`HubHandle::connect`] left to do: telling the lobby's shard of a
/// plain client when its queue was full.
#[must_use = "the registration is complete only once finished"]
pub struct Registration {
    pending: Option<(mpsc::Sender<Command>, Command)>,
}

impl Registration {
    /// Completes the registration.
    pub async fn finish(self) -> Result<(), HubStopped> {
        match self.pending {
            Some((shard, command)) => shard.send(command).await.map_err(|_| HubStopped),
            None => Ok(()),
        }
    }
}

/// The hub's threads and shard tasks, for shutdown to wait on.
pub struct HubTasks {
    runtime: Option<Runtime>,
    shards: Vec<JoinHandle<()>>,
}

impl HubTasks {
    /// Resolves once every shard has committed what it accepted and stopped
    /// (after the last handle is dropped), or after `timeout`.
    pub async fn finished(mut self, timeout: Duration) -> bool {
        let shards = std::mem::take(&mut self.shards);
        tokio::time::timeout(timeout, async move {
            for shard in shards {
                let _ = shard.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Drop for HubTasks {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What the hub is built from.
pub struct HubSettings {
    /// Most rooms with members at once.
    pub max_rooms: usize,
    /// How many worker threads run sessions (each gets a [`WorkerLink`]).
    pub workers: usize,
    /// The other nodes' member counts, with several nodes.
    pub other_nodes: Option<OtherNodes>,
    /// Who is in which room, to check the member lists shown against.
    pub presence: Arc<dyn Presence>,
    /// How often every room's member list is checked (besides each
    /// joiner's), if at all.
    pub check_members_every: Option<Duration>,
    /// The gauges of what the shards hold waiting.
    pub held: crate::metrics::HeldGauges,
    /// Rooms kept out of the list everyone sees (private ones; their
    /// members see their own room's line).
    pub unlisted: Unlisted,
}

/// Whether a room is kept out of the room list everyone sees.
pub type Unlisted = Arc<dyn Fn(&RoomName) -> bool + Send + Sync>;

/// Which of `shards` owns `room`: the same on every call of this process
/// (nothing outside it depends on the choice).
fn shard_of(room: &RoomName, shards: usize) -> usize {
    // `DefaultHasher::new` has fixed keys, unlike a `RandomState`.
    let mut hasher = std::hash::DefaultHasher::new();
    room.hash(&mut hasher);
    usize::try_from(hasher.finish() % shards.max(1) as u64).unwrap_or(0)
}

impl HubHandle {
    /// Starts the hub on threads of its own: one shard per bus in `buses`
    /// (each publishes and hears room events on its own), the store writer
    /// and the directory. Returns its handle and its tasks, which end once
    /// the last handle is dropped.
    pub fn spawn(
        store: Arc<dyn HistoryStore>,
        buses: Vec<Box<dyn RoomBus>>,
        settings: HubSettings,
    ) -> std::io::Result<(Self, HubTasks)> {
        let shard_count = buses.len().max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(shard_count)
            .thread_name("chat-hub")
            .enable_all()
            .build()?;
        let node = buses.first().map_or(0, |bus| bus.node());
        let (shown, shown_to_shards) = watch::channel(directory::empty_list());
        let workers = Workers::new(settings.workers);
        let (counts, reported) = mpsc::unbounded_channel();
        runtime.spawn(
            directory::Directory::new(shown, workers.clone(), settings.unlisted.clone())
                .run(reported, settings.other_nodes),
        );
        let quota = rooms::RoomQuota::new(settings.max_rooms);
        let writers = store_writer::spawn(store.clone(), shard_count, runtime.handle());
        let mut senders = Vec::with_capacity(shard_count);
        let mut tasks = Vec::with_capacity(shard_count);
        for (bus, writer) in buses.into_iter().zip(writers) {
            let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
            let parts = shard::ShardParts {
                epoch: store.epoch().clone(),
                quota: quota.clone(),
                writer,
                bus,
                outbox: outbox::Outbox::new(workers.clone()),
                directory: counts.clone(),
                shown: shown_to_shards.clone(),
                presence: settings.presence.clone(),
                check_members_every: settings.check_members_every,
                held: settings.held.clone(),
            };
            tasks.push(runtime.spawn(shard::Shard::new(parts).run(receiver)));
            senders.push(commands);
        }
        let handle = Self { shards: senders.into(), workers, next_connection: Arc::new(AtomicU64::new(1)), node };
        Ok((handle, HubTasks { runtime: Some(runtime), shards: tasks }))
    }

    /// A fresh id for a new connection of `worker`. The id says which worker
    /// runs it (its remainder by the number of workers), so a shard reaches
    /// any session without a table.
    pub fn next_connection_id(&self, worker: WorkerId) -> ConnectionId {
        let workers = self.workers.count() as u64;
        self.next_connection.fetch_add(1, Ordering::Relaxed) * workers + (worker as u64 % workers)
    }

    /// Connection `id` of this node, as presence and the bus name it.
    pub fn peer(&self, id: ConnectionId) -> Peer {
        Peer { node: self.node, connection: id }
    }

    /// The relay of a worker thread that is starting; called once per worker.
    pub fn worker_link(&self, slow_closes: Counter) -> WorkerLink {
        self.workers.link(slow_closes)
    }

    fn shard(&self, room: &RoomName) -> &mpsc::Sender<Command> {
        &self.shards[shard_of(room, self.shards.len())]
    }

    /// Registers a connection with its worker's relay (plain clients, who
    /// live in the lobby, with the lobby's shard too), at once: called before
    /// the handshake's response goes out, so a message sent after the client
    /// could know it was connected reaches it (the seed's server behaves so).
    /// What could not be done without waiting is left to
    /// [`Registration::finish`], which the session awaits before anything else.
    pub fn connect(
        &self,
        id: ConnectionId,
        endpoint: Endpoint,
        sink: SessionSink,
        worker: &WorkerAddress,
    ) -> Result<Registration, HubStopped> {
        // Sent before anything this session asks a shard: it is registered
        // before any answer reaches its relay.
        if !worker.send(vec![Delivery::Register { id, endpoint, sink }]) {
            return Err(HubStopped);
        }
        if endpoint == Endpoint::Json {
            return Ok(Registration { pending: None });
        }
        let lobby = self.shard(&RoomName::lobby()).clone();
        match lobby.try_send(Command::Control(Control::PlainConnected { id })) {
            Ok(()) => Ok(Registration { pending: None }),
            // The lobby's shard is behind: the session waits for room in its queue.
            Err(mpsc::error::TrySendError::Full(command)) => Ok(Registration { pending: Some((lobby, command)) }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(HubStopped),
        }
    }

    /// Forgets a connection, taking it out of `room`; safe to call twice.
    pub async fn disconnect(
        &self,
        id: ConnectionId,
        endpoint: Endpoint,
        room: Option<(RoomName, Departure)>,
        worker: &WorkerAddress,
    ) {
        worker.send(vec![Delivery::Unregister { id }]);
        // If the hub has stopped there is nothing left to leave.
        if endpoint == Endpoint::Plain {
            let _ = self.shard(&RoomName::lobby()).send(Command::Control(Control::PlainDisconnected { id })).await;
        }
        if let Some((room, departure)) = room {
            let _ = self.leave(id, room, departure).await;
        }
    }

    /// Moves a JSON connection into a room. The answer (`joined`, or an
    /// error) arrives on its queue; the result says whether it got in. Once
    /// in, the session leaves the room it was in with [`HubHandle::leave`].
    pub async fn join(&self, id: ConnectionId, request: JoinRequest) -> Result<bool, HubStopped> {
        let (admitted, answer) = oneshot::channel();
        let shard = self.shard(&request.room);
        shard.send(Command::Control(Control::Join { id, request, admitted })).await.map_err(|_| HubStopped)?;
        answer.await.map_err(|_| HubStopped)
    }

    /// Takes a connection out of a room (a no-op if it is not in it); the
    /// room hears its name leave if it is the name's last holder.
    pub async fn leave(&self, id: ConnectionId, room: RoomName, departure: Departure) -> Result<(), HubStopped> {
        let leave = Control::Leave { id, room: room.clone(), departure };
        self.shard(&room).send(Command::Control(leave)).await.map_err(|_| HubStopped)
    }

    /// Stores and relays a message. The ack arrives on the sender's queue.
    pub async fn say(
        &self,
        id: ConnectionId,
        room: RoomName,
        client_id: ClientId,
        text: MessageText,
    ) -> Result<(), HubStopped> {
        self.shard(&room).send(Command::Say { id, room, client_id, text }).await.map_err(|_| HubStopped)
    }

    /// Stores a change to a room's log (see [`NewMessage::deletion`]) in its
    /// order, and relays it to the room on every node like a message. The
    /// outcome comes once it is committed.
    pub async fn change(&self, change: NewMessage) -> Result<Appended, ChangeFailed> {
        let (answer, outcome) = oneshot::channel();
        let shard = self.shard(&change.room);
        shard.send(Command::Change { change, answer }).await.map_err(|_| ChangeFailed::HubStopped)?;
        match outcome.await {
            Ok(Ok(appended)) => Ok(appended),
            Ok(Err(StoreUnavailable)) => Err(ChangeFailed::StoreUnavailable),
            Err(_) => Err(ChangeFailed::HubStopped),
        }
    }

    /// Closes the connection whose name in `room` presence gave to another
    /// (see [`crate::presence::LostName`]). Nobody hears it leave: the name
    /// is still in the room, someone else's.
    pub async fn name_lost(&self, id: ConnectionId, room: RoomName) -> Result<(), HubStopped> {
        self.shard(&room).send(Command::Control(Control::NameLost { id, room })).await.map_err(|_| HubStopped)
    }

    /// Tells the room that this connection's user is typing.
    pub async fn typing(&self, id: ConnectionId, room: RoomName) -> Result<(), HubStopped> {
        self.shard(&room).send(Command::Control(Control::Typing { id, room })).await.map_err(|_| HubStopped)
    }

    /// Relays a frame from plain client `id` to every plain client, verbatim.
    pub async fn plain_frame(&self, id: ConnectionId, frame: Outbound) -> Result<(), HubStopped> {
        let lobby = self.shard(&RoomName::lobby());
        lobby.send(Command::PlainFrame { id, frame }).await.map_err(|_| HubStopped)
    }
}

/// Encodes an event once, for any number of recipients.
fn frame(message: &chat_shared::ServerMessage) -> Outbound {
    Outbound::Text(bytestring::ByteString::from(message.encode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_spread_over_the_shards_and_always_land_on_the_same_one() {
        let rooms: Vec<RoomName> = (0..1_000).map(|n| RoomName::parse(format!("room-{n}")).expect("room")).collect();
        let mut per_shard = [0_usize; 4];
        for room in &rooms {
            let shard = shard_of(room, 4);
            assert_eq!(shard, shard_of(&RoomName::parse(room.as_str()).expect("room"), 4), "stable");
            per_shard[shard] += 1;
        }
        assert!(per_shard.iter().all(|n| (150..=350).contains(n)), "{per_shard:?}");
        // The socket tests switch between these to cross from one shard to another.
        let (lobby, ops) = (RoomName::lobby(), RoomName::parse("ops").expect("room"));
        for shards in 2..=4 {
            assert_ne!(shard_of(&lobby, shards), shard_of(&ops, shards), "{shards} shards");
        }
    }
}
