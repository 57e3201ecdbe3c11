//! The worker side of fan-out: one relay task per actix worker thread holds
//! the outbound queues of that worker's sessions and knows which of them is
//! in which room.
//!
//! The hub sends each worker one batch of [`Delivery`]s per turn of its loop.
//! A message to a room of thousands costs the hub one item per worker and one
//! cross-thread wake per worker; the loop over the members runs here, on the
//! thread that also runs their session tasks, so queuing to them wakes local
//! tasks only. Before, the hub woke every member's task across threads.
//!
//! Everything the hub says to a session goes through its worker's relay, in
//! one ordered stream: a session is registered before anything is sent to
//! it, enters a room before that room's events reach it, and hears `joined`
//! before its join is confirmed to the session (which then reads history).

use std::cell::Cell;
use std::collections::HashMap;

use chat_shared::{Endpoint, RoomName};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

use super::{ConnectionId, Outbound, OutboundSender, QueueError};

/// Which worker a session runs on.
pub type WorkerId = usize;

/// One thing the hub asks a worker's relay to do.
#[derive(Debug)]
pub enum Delivery {
    /// A session on this worker connected: its queue.
    Register { id: ConnectionId, endpoint: Endpoint, outbound: OutboundSender },
    /// A session left (or was replaced): forget it and drop its queue.
    Unregister { id: ConnectionId },
    /// A session moved into a room (leaving the one it was in).
    Enter { id: ConnectionId, room: RoomName },
    /// A frame for one session.
    To { id: ConnectionId, frame: Outbound },
    /// A frame for every member of a room on this worker, but one.
    Room { room: RoomName, frame: Outbound, except: Option<ConnectionId> },
    /// A frame for every plain session on this worker.
    Plain { frame: Outbound },
    /// Tells a joining session whether it is still registered, once what was
    /// queued for it before (its `joined`) is in its queue.
    Admitted { id: ConnectionId, answer: oneshot::Sender<bool> },
}

/// How the hub reaches one worker's relay.
#[derive(Debug, Clone)]
pub struct WorkerAddress {
    /// The worker.
    pub id: WorkerId,
    /// Its relay's mailbox.
    pub(super) mailbox: mpsc::UnboundedSender<Vec<Delivery>>,
}

/// One worker's relay, as its sessions know it (kept in the worker's app data).
/// The relay task starts on first use, on the worker's own thread.
pub struct WorkerLink {
    address: WorkerAddress,
    not_started: Cell<Option<(mpsc::UnboundedReceiver<Vec<Delivery>>, Counter)>>,
}

impl WorkerLink {
    /// A relay for worker `id`; `slow_closes` counts sessions it drops for
    /// not keeping up.
    pub fn new(id: WorkerId, slow_closes: Counter) -> Self {
        let (mailbox, receiver) = mpsc::unbounded_channel();
        Self { address: WorkerAddress { id, mailbox }, not_started: Cell::new(Some((receiver, slow_closes))) }
    }

    /// The address sessions of this worker give the hub. Starts the relay the
    /// first time, so it must be called on the worker's thread (as request
    /// handlers are).
    pub fn address(&self) -> WorkerAddress {
        if let Some((receiver, slow_closes)) = self.not_started.take() {
            actix_web::rt::spawn(relay(receiver, slow_closes));
        }
        self.address.clone()
    }
}

/// The relay task: applies the hub's batches until the hub is gone.
async fn relay(mut mailbox: mpsc::UnboundedReceiver<Vec<Delivery>>, slow_closes: Counter) {
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
    outbound: OutboundSender,
    room: Option<RoomName>,
}

/// The sessions of one worker, and who of them is in which room. Members'
/// queues are kept in the room itself, so a room delivery is one walk.
#[derive(Debug, Default)]
struct LocalSessions {
    sessions: HashMap<ConnectionId, Local>,
    rooms: HashMap<RoomName, HashMap<ConnectionId, OutboundSender>>,
    plain: HashMap<ConnectionId, OutboundSender>,
    slow_closes: Counter,
}

impl LocalSessions {
    fn apply(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Register { id, endpoint, outbound } => {
                if endpoint == Endpoint::Plain {
                    self.plain.insert(id, outbound.clone());
                }
                self.sessions.insert(id, Local { outbound, room: None });
            }
            Delivery::Unregister { id } => self.remove(id),
            Delivery::Enter { id, room } => {
                let Some(local) = self.sessions.get_mut(&id) else { return };
                let outbound = local.outbound.clone();
                if let Some(previous) = local.room.replace(room.clone()) {
                    leave(&mut self.rooms, &previous, id);
                }
                self.rooms.entry(room).or_default().insert(id, outbound);
            }
            Delivery::To { id, frame } => {
                let full = self.sessions.get(&id).is_some_and(|local| is_full(local.outbound.try_send(frame)));
                if full {
                    self.drop_slow(vec![id]);
                }
            }
            Delivery::Room { room, frame, except } => {
                let Some(members) = self.rooms.get(&room) else { return };
                let too_slow = send_each(members.iter().filter(|(id, _)| Some(**id) != except), &frame);
                self.drop_slow(too_slow);
            }
            Delivery::Plain { frame } => {
                let too_slow = send_each(self.plain.iter(), &frame);
                self.drop_slow(too_slow);
            }
            Delivery::Admitted { id, answer } => {
                let _ = answer.send(self.sessions.contains_key(&id));
            }
        }
    }

    /// Forgets a session; once the last copy of its queue's sender is gone
    /// its session sees the queue end.
    fn remove(&mut self, id: ConnectionId) {
        self.plain.remove(&id);
        if let Some(Local { room: Some(room), .. }) = self.sessions.remove(&id) {
            leave(&mut self.rooms, &room, id);
        }
    }

    /// Drops sessions whose queue is full: their session closes the socket
    /// ("too slow to keep up") and tells the hub it left.
    fn drop_slow(&mut self, ids: Vec<ConnectionId>) {
        for id in ids {
            tracing::warn!(connection = id, "outbound queue full; dropping slow client");
            self.slow_closes.inc();
            self.remove(id);
        }
    }
}

fn leave(rooms: &mut HashMap<RoomName, HashMap<ConnectionId, OutboundSender>>, room: &RoomName, id: ConnectionId) {
    if let Some(members) = rooms.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
}

fn is_full(sent: Result<(), QueueError>) -> bool {
    sent == Err(QueueError::Full)
}

/// Queues `frame` for each session; returns those whose queue was full.
fn send_each<'a>(
    sessions: impl Iterator<Item = (&'a ConnectionId, &'a OutboundSender)>,
    frame: &Outbound,
) -> Vec<ConnectionId> {
    sessions.filter(|(_, outbound)| is_full(outbound.try_send(frame.clone()))).map(|(id, _)| *id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbound_queue;
    use bytestring::ByteString;

    fn text(s: &str) -> Outbound {
        Outbound::Text(ByteString::from(s))
    }

    #[tokio::test]
    async fn room_deliveries_reach_the_members_in_order_and_full_queues_are_dropped() {
        let mut local = LocalSessions::default();
        let room = RoomName::parse("dev").expect("room");
        let (a, mut a_rx) = outbound_queue(1_000);
        let (b, mut b_rx) = outbound_queue(4);
        local.apply(Delivery::Register { id: 1, endpoint: Endpoint::Json, outbound: a });
        local.apply(Delivery::Register { id: 2, endpoint: Endpoint::Json, outbound: b });
        local.apply(Delivery::Enter { id: 1, room: room.clone() });
        local.apply(Delivery::Enter { id: 2, room: room.clone() });
        local.apply(Delivery::Room { room: room.clone(), frame: text("hi"), except: Some(1) });
        local.apply(Delivery::Room { room: room.clone(), frame: text("again"), except: None });
        assert_eq!(a_rx.recv().await, Some(text("again")), "the author was left out of the first");
        assert_eq!(b_rx.recv().await, Some(text("hi")));
        // Two bytes still queued for b, of four: "again" did not fit, so b was dropped.
        assert_eq!(local.slow_closes.get(), 1);
        assert_eq!(b_rx.recv().await, None, "a dropped session sees its queue end");
        let (answer, admitted) = oneshot::channel();
        local.apply(Delivery::Admitted { id: 2, answer });
        assert_eq!(admitted.await, Ok(false));
        assert_eq!(local.rooms.get(&room).map(HashMap::len), Some(1));
    }

    #[tokio::test]
    async fn entering_another_room_leaves_the_first_and_unregistering_ends_the_queue() {
        let mut local = LocalSessions::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let (a, mut a_rx) = outbound_queue(1_000);
        local.apply(Delivery::Register { id: 1, endpoint: Endpoint::Json, outbound: a });
        local.apply(Delivery::Enter { id: 1, room: dev.clone() });
        local.apply(Delivery::Enter { id: 1, room: ops.clone() });
        assert!(!local.rooms.contains_key(&dev), "an emptied room is forgotten");
        local.apply(Delivery::Room { room: dev, frame: text("not for you"), except: None });
        local.apply(Delivery::Room { room: ops, frame: text("for you"), except: None });
        local.apply(Delivery::Unregister { id: 1 });
        assert_eq!(a_rx.recv().await, Some(text("for you")));
        assert_eq!(a_rx.recv().await, None);
        assert!(local.rooms.is_empty() && local.sessions.is_empty());
    }
}
