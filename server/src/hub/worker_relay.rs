//! The worker side of fan-out: one relay task per actix worker thread holds
//! the outbound queues of that worker's sessions and knows which of them is
//! in which room.
//!
//! Each hub shard sends each worker one batch of [`Delivery`]s per turn of
//! its loop. A message to a room of thousands costs its shard one item per
//! worker and one cross-thread wake per worker; the loop over the members runs here, on the
//! thread that also runs their connections, so it wakes local tasks only.
//! While a session's queue is idle the frame goes straight to its socket
//! ([`SessionSink::send`]), and the session task is not woken at all.
//!
//! Everything the hub says to a session goes through its worker's relay, in
//! one ordered stream per shard: a session registers here (itself, before it
//! asks any shard anything), enters a room before that room's events reach
//! it, and hears `joined` before its join is confirmed to the session (which
//! then reads history). The room directory's lists come the same way (a
//! session's first one comes with its `joined`).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chat_shared::{Endpoint, RoomName};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

use super::{ConnectionId, Outbound, QueueError, SessionSink};

/// Which worker a session runs on.
pub type WorkerId = usize;

/// The worker that runs connection `id`: connection ids are handed out so
/// that they say it (see [`super::HubHandle::next_connection_id`]), and a
/// shard needs no table to reach any session.
pub(super) fn worker_of(id: ConnectionId, workers: usize) -> WorkerId {
    // The remainder is below `workers`, a usize.
    usize::try_from(id % workers.max(1) as u64).unwrap_or(0)
}

/// Every worker's relay, by worker id, as actix starts its workers.
#[derive(Debug, Clone)]
pub(super) struct Workers {
    slots: Arc<[RwLock<Option<WorkerAddress>>]>,
}

impl Workers {
    pub(super) fn new(count: usize) -> Self {
        Self { slots: (0..count.max(1)).map(|_| RwLock::new(None)).collect() }
    }

    /// How many workers there are.
    pub(super) fn count(&self) -> usize {
        self.slots.len()
    }

    /// Worker `id`'s relay, once it exists.
    pub(super) fn get(&self, id: WorkerId) -> Option<WorkerAddress> {
        let slot = self.slots.get(id)?;
        slot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every relay that exists.
    pub(super) fn all(&self) -> Vec<WorkerAddress> {
        (0..self.count()).filter_map(|id| self.get(id)).collect()
    }

    /// Creates the relay of a worker thread that is starting: the first free
    /// worker id, or the id of a worker whose relay is gone (actix restarts a
    /// worker that faulted, and the new one must take the old one's id, which
    /// its connection ids will name).
    pub(super) fn link(&self, slow_closes: Counter) -> WorkerLink {
        let (mailbox, receiver) = mpsc::unbounded_channel();
        let start = Start { mailbox: receiver, slow_closes };
        for (id, slot) in self.slots.iter().enumerate() {
            let mut slot = slot.write().unwrap_or_else(PoisonError::into_inner);
            if slot.as_ref().is_none_or(|address| address.is_gone()) {
                let address = WorkerAddress { id, mailbox };
                *slot = Some(address.clone());
                return WorkerLink { address, not_started: Cell::new(Some(start)) };
            }
        }
        // Not expected: actix starts as many workers as it was told.
        tracing::error!(workers = self.count(), "more live workers than the hub was told of");
        WorkerLink { address: WorkerAddress { id: 0, mailbox }, not_started: Cell::new(Some(start)) }
    }
}

/// One thing the hub asks a worker's relay to do.
#[derive(Debug)]
pub enum Delivery {
    /// A session on this worker connected: where its frames go.
    Register { id: ConnectionId, endpoint: Endpoint, sink: SessionSink },
    /// A session left (or was replaced): forget it and drop its queue.
    Unregister { id: ConnectionId },
    /// A session moved into a room (leaving the one it was in).
    Enter { id: ConnectionId, room: RoomName },
    /// A session left a room without entering another (removed, banned,
    /// kicked): it hears the room no more. Ignored if it is in another room
    /// by now (it entered that one first, as a switch does).
    Leave { id: ConnectionId, room: RoomName },
    /// A frame for one session.
    To { id: ConnectionId, frame: Outbound },
    /// A frame for every member of a room on this worker, but one.
    Room { room: RoomName, frame: Outbound, except: Option<ConnectionId> },
    /// A frame for every plain session on this worker.
    Plain { frame: Outbound },
    /// Tells a joining session whether it is still registered, once what was
    /// queued for it before (its `joined`) is in its queue.
    Admitted { id: ConnectionId, answer: oneshot::Sender<bool> },
    /// New room lists: `everyone` (if the busiest rooms changed) for every
    /// JSON session, except members of a room in `own`, who get its list.
    RoomLists { everyone: Option<Outbound>, own: Arc<HashMap<RoomName, Outbound>> },
}

/// How the hub reaches one worker's relay.
#[derive(Debug, Clone)]
pub struct WorkerAddress {
    /// The worker.
    pub id: WorkerId,
    /// Its relay's mailbox.
    pub(super) mailbox: mpsc::UnboundedSender<Vec<Delivery>>,
}

impl WorkerAddress {
    /// Sends the relay a batch; false if it is gone (its worker stopped).
    pub(super) fn send(&self, batch: Vec<Delivery>) -> bool {
        self.mailbox.send(batch).is_ok()
    }

    /// Whether the relay is gone (its worker stopped, or was replaced).
    pub(super) fn is_gone(&self) -> bool {
        self.mailbox.is_closed()
    }
}

/// What a relay is started with.
struct Start {
    mailbox: mpsc::UnboundedReceiver<Vec<Delivery>>,
    slow_closes: Counter,
}

/// One worker's relay, as its sessions know it (kept in the worker's app data).
/// The relay task starts on first use, on the worker's own thread.
pub struct WorkerLink {
    address: WorkerAddress,
    not_started: Cell<Option<Start>>,
}

impl WorkerLink {
    /// The address sessions of this worker give the hub. Starts the relay the
    /// first time, so it must be called on the worker's thread (as request
    /// handlers are).
    pub fn address(&self) -> WorkerAddress {
        if let Some(start) = self.not_started.take() {
            actix_web::rt::spawn(relay(start));
        }
        self.address.clone()
    }
}

/// The relay task: applies the hub's batches until every sender is gone.
async fn relay(Start { mut mailbox, slow_closes }: Start) {
    let mut sessions = LocalSessions { slow_closes, ..LocalSessions::default() };
    while let Some(batch) = mailbox.recv().await {
        for delivery in batch {
            sessions.apply(delivery);
        }
    }
}

/// One session of this worker.
#[derive(Debug)]
struct Local {
    sink: SessionSink,
    room: Option<RoomName>,
}

/// The sessions of one worker, and who of them is in which room.
#[derive(Debug, Default)]
struct LocalSessions {
    sessions: HashMap<ConnectionId, Local>,
    rooms: HashMap<RoomName, HashSet<ConnectionId>>,
    plain: HashSet<ConnectionId>,
    slow_closes: Counter,
}

impl LocalSessions {
    fn apply(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Register { id, endpoint, sink } => {
                if endpoint == Endpoint::Plain {
                    self.plain.insert(id);
                }
                // No room list yet: `joined` carries one (a frame per join saved).
                self.sessions.insert(id, Local { sink, room: None });
            }
            Delivery::Unregister { id } => self.remove(id),
            Delivery::Enter { id, room } => {
                let Some(local) = self.sessions.get_mut(&id) else { return };
                if let Some(previous) = local.room.replace(room.clone()) {
                    leave(&mut self.rooms, &previous, id);
                }
                // Through the queue: what follows is of the new room.
                let marked = local.sink.queue.try_send(Outbound::Entered(room.clone()));
                self.rooms.entry(room).or_default().insert(id);
                if marked == Err(QueueError::Full) {
                    self.drop_slow(vec![id]);
                }
            }
            Delivery::Leave { id, room } => {
                let Some(local) = self.sessions.get_mut(&id) else { return };
                if local.room.as_ref() == Some(&room) {
                    local.room = None;
                    leave(&mut self.rooms, &room, id);
                }
            }
            Delivery::To { id, frame } => {
                if self.send(id, frame) {
                    self.drop_slow(vec![id]);
                }
            }
            Delivery::Room { room, frame, except } => {
                let Some(members) = self.rooms.get(&room) else { return };
                let sessions = &mut self.sessions;
                let too_slow: Vec<ConnectionId> = members
                    .iter()
                    .filter(|id| Some(**id) != except && send_to(sessions, **id, frame.clone()))
                    .copied()
                    .collect();
                self.drop_slow(too_slow);
            }
            Delivery::Plain { frame } => {
                let sessions = &mut self.sessions;
                let too_slow: Vec<ConnectionId> =
                    self.plain.iter().filter(|id| send_to(sessions, **id, frame.clone())).copied().collect();
                self.drop_slow(too_slow);
            }
            Delivery::Admitted { id, answer } => {
                let _ = answer.send(self.sessions.contains_key(&id));
            }
            Delivery::RoomLists { everyone, own } => self.room_lists(everyone, &own),
        }
    }

    /// Gives each JSON session the room list meant for it.
    fn room_lists(&mut self, everyone: Option<Outbound>, own: &HashMap<RoomName, Outbound>) {
        let mut too_slow = Vec::new();
        if let Some(list) = everyone {
            for (id, local) in &mut self.sessions {
                let has_own = local.room.as_ref().is_some_and(|room| own.contains_key(room));
                if !has_own && !self.plain.contains(id) && local.sink.send(list.clone()) == Err(QueueError::Full) {
                    too_slow.push(*id);
                }
            }
        }
        for (room, list) in own {
            for id in self.rooms.get(room).into_iter().flatten() {
                if send_to(&mut self.sessions, *id, list.clone()) {
                    too_slow.push(*id);
                }
            }
        }
        self.drop_slow(too_slow);
    }

    /// Sends `frame` to one session; true if it is too slow to take it.
    fn send(&mut self, id: ConnectionId, frame: Outbound) -> bool {
        send_to(&mut self.sessions, id, frame)
    }

    /// Forgets a session; once its sink is dropped its session sees the queue end.
    fn remove(&mut self, id: ConnectionId) {
        self.plain.remove(&id);
        if let Some(Local { room: Some(room), .. }) = self.sessions.remove(&id) {
            leave(&mut self.rooms, &room, id);
        }
    }

    /// Drops sessions whose queue is full: their session hears at once that
    /// it was abandoned, closes the socket ("too slow to keep up") without
    /// writing what was still queued, and tells the hub it left.
    fn drop_slow(&mut self, ids: Vec<ConnectionId>) {
        for id in ids {
            tracing::warn!(connection = id, "outbound queue full; dropping slow client");
            self.slow_closes.inc();
            if let Some(local) = self.sessions.get(&id) {
                local.sink.queue.abandon();
            }
            self.remove(id);
        }
    }
}

fn leave(rooms: &mut HashMap<RoomName, HashSet<ConnectionId>>, room: &RoomName, id: ConnectionId) {
    if let Some(members) = rooms.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
}

/// Sends `frame` to session `id` if it is registered; true if its queue is full.
fn send_to(sessions: &mut HashMap<ConnectionId, Local>, id: ConnectionId, frame: Outbound) -> bool {
    sessions.get_mut(&id).is_some_and(|local| local.sink.send(frame) == Err(QueueError::Full))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbound_queue;
    use bytestring::ByteString;

    fn text(s: &str) -> Outbound {
        Outbound::Text(ByteString::from(s))
    }

    fn queued(queue: crate::hub::OutboundSender) -> SessionSink {
        SessionSink { queue, direct: None }
    }

    #[test]
    fn a_restarted_worker_takes_the_id_of_the_one_that_is_gone() {
        let workers = Workers::new(2);
        let first = workers.link(Counter::default());
        let second = workers.link(Counter::default());
        assert_eq!((first.address.id, second.address.id), (0, 1));
        assert_eq!(workers.all().len(), 2);
        // Worker 0's thread died: its relay (here, never started) went with it.
        drop(first);
        let restarted = workers.link(Counter::default());
        assert_eq!(restarted.address.id, 0, "its connection ids name worker 0");
        assert!(workers.get(0).is_some_and(|address| !address.is_gone()));
        assert_eq!(workers.get(1).map(|address| address.id), Some(1), "the live one keeps its id");
    }

    #[tokio::test]
    async fn room_deliveries_reach_the_members_in_order_and_full_queues_are_dropped() {
        let mut local = LocalSessions::default();
        let room = RoomName::parse("dev").expect("room");
        let (a, mut a_rx) = outbound_queue(1_000);
        let (b, mut b_rx) = outbound_queue(4);
        local.apply(Delivery::Register { id: 1, endpoint: Endpoint::Json, sink: queued(a) });
        local.apply(Delivery::Register { id: 2, endpoint: Endpoint::Json, sink: queued(b) });
        local.apply(Delivery::Enter { id: 1, room: room.clone() });
        local.apply(Delivery::Enter { id: 2, room: room.clone() });
        local.apply(Delivery::Room { room: room.clone(), frame: text("hi"), except: Some(1) });
        local.apply(Delivery::Room { room: room.clone(), frame: text("again"), except: None });
        assert_eq!(a_rx.recv().await, Some(Outbound::Entered(room.clone())), "what follows is of the room");
        assert_eq!(a_rx.recv().await, Some(text("again")), "the author was left out of the first");
        // Two bytes still queued for b, of four: "again" did not fit, so b was
        // dropped, and its session hears so before it reads what is queued.
        assert_eq!(local.slow_closes.get(), 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), b_rx.abandoned()).await.expect("b was abandoned");
        assert_eq!(b_rx.recv().await, Some(Outbound::Entered(room.clone())));
        assert_eq!(b_rx.recv().await, Some(text("hi")));
        assert_eq!(b_rx.recv().await, None, "a dropped session sees its queue end");
        let (answer, admitted) = oneshot::channel();
        local.apply(Delivery::Admitted { id: 2, answer });
        assert_eq!(admitted.await, Ok(false));
        assert_eq!(local.rooms.get(&room).map(HashSet::len), Some(1));
    }

    #[tokio::test]
    async fn a_session_that_left_its_room_hears_it_no_more_and_a_late_leave_of_an_old_room_is_ignored() {
        let mut local = LocalSessions::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let (a, mut a_rx) = outbound_queue(1_000);
        local.apply(Delivery::Register { id: 1, endpoint: Endpoint::Json, sink: queued(a) });
        local.apply(Delivery::Enter { id: 1, room: dev.clone() });
        local.apply(Delivery::Leave { id: 1, room: dev.clone() });
        local.apply(Delivery::Room { room: dev.clone(), frame: text("after the ban"), except: None });
        local.apply(Delivery::Enter { id: 1, room: ops.clone() });
        local.apply(Delivery::Leave { id: 1, room: dev.clone() });
        local.apply(Delivery::Room { room: ops.clone(), frame: text("still here"), except: None });
        local.apply(Delivery::Unregister { id: 1 });
        assert_eq!(a_rx.recv().await, Some(Outbound::Entered(dev)));
        assert_eq!(a_rx.recv().await, Some(Outbound::Entered(ops)));
        assert_eq!(a_rx.recv().await, Some(text("still here")), "nothing of the room it left");
        assert_eq!(a_rx.recv().await, None);
    }

    #[tokio::test]
    async fn entering_another_room_leaves_the_first_and_unregistering_ends_the_queue() {
        let mut local = LocalSessions::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let (a, mut a_rx) = outbound_queue(1_000);
        local.apply(Delivery::Register { id: 1, endpoint: Endpoint::Json, sink: queued(a) });
        local.apply(Delivery::Enter { id: 1, room: dev.clone() });
        local.apply(Delivery::Enter { id: 1, room: ops.clone() });
        assert!(!local.rooms.contains_key(&dev), "an emptied room is forgotten");
        local.apply(Delivery::Room { room: dev.clone(), frame: text("not for you"), except: None });
        local.apply(Delivery::Room { room: ops.clone(), frame: text("for you"), except: None });
        local.apply(Delivery::Unregister { id: 1 });
        assert_eq!(a_rx.recv().await, Some(Outbound::Entered(dev)));
        assert_eq!(a_rx.recv().await, Some(Outbound::Entered(ops)));
        assert_eq!(a_rx.recv().await, Some(text("for you")));
        assert_eq!(a_rx.recv().await, None);
        assert!(local.rooms.is_empty() && local.sessions.is_empty());
    }

    /// A transport that takes frames while `open` says so, and records them.
    struct Recorder {
        open: std::sync::Arc<std::sync::atomic::AtomicBool>,
        written: std::sync::Arc<std::sync::Mutex<Vec<Outbound>>>,
    }

    impl crate::hub::DirectWrite for Recorder {
        fn try_write(&mut self, frame: &Outbound) -> bool {
            let open = self.open.load(std::sync::atomic::Ordering::SeqCst);
            if open && let Ok(mut written) = self.written.lock() {
                written.push(frame.clone());
            }
            open
        }
    }

    #[tokio::test]
    async fn frames_skip_the_queue_only_while_nothing_waits_in_it() {
        use std::sync::atomic::Ordering;
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (queue, mut receiver) = outbound_queue(1_000);
        let direct = Recorder { open: open.clone(), written: written.clone() };
        let mut local = LocalSessions::default();
        local.apply(Delivery::Register {
            id: 1,
            endpoint: Endpoint::Json,
            sink: SessionSink { queue, direct: Some(Box::new(direct)) },
        });
        local.apply(Delivery::To { id: 1, frame: text("1") });
        open.store(false, Ordering::SeqCst);
        local.apply(Delivery::To { id: 1, frame: text("2") });
        open.store(true, Ordering::SeqCst);
        // "2" waits in the queue, so "3" must wait behind it though the transport would take it.
        local.apply(Delivery::To { id: 1, frame: text("3") });
        assert_eq!(*written.lock().expect("lock"), [text("1")]);
        assert_eq!(receiver.recv().await, Some(text("2")));
        receiver.written(1);
        assert_eq!(receiver.recv().await, Some(text("3")));
        receiver.written(1);
        local.apply(Delivery::To { id: 1, frame: text("4") });
        assert_eq!(*written.lock().expect("lock"), [text("1"), text("4")], "idle again: straight through");
    }
}
