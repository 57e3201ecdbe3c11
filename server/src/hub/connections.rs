//! Who is connected: each session's endpoint, outbound queue and room, and
//! delivery to them. Delivery never waits: a full queue marks its session
//! too slow, and the hub drops it.

use std::collections::{HashMap, HashSet};

use chat_shared::{Endpoint, RoomName};

use super::{ConnectionId, Outbound, OutboundSender, QueueError};

/// One registered session.
struct Connection {
    endpoint: Endpoint,
    outbound: OutboundSender,
    /// The room a JSON connection is in.
    room: Option<RoomName>,
}

/// Every registered session.
#[derive(Default)]
pub(super) struct Connections {
    all: HashMap<ConnectionId, Connection>,
    /// The plain connections, kept apart so their echo never walks the JSON ones.
    plain: HashSet<ConnectionId>,
}

impl Connections {
    /// Registers a session.
    pub(super) fn insert(&mut self, id: ConnectionId, endpoint: Endpoint, outbound: OutboundSender) {
        if endpoint == Endpoint::Plain {
            self.plain.insert(id);
        }
        self.all.insert(id, Connection { endpoint, outbound, room: None });
    }

    /// Forgets a session (its queue closes once the hub's sender is gone);
    /// returns the room it was in.
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<RoomName> {
        self.plain.remove(&id);
        self.all.remove(&id).and_then(|connection| connection.room)
    }

    pub(super) fn contains(&self, id: ConnectionId) -> bool {
        self.all.contains_key(&id)
    }

    /// The room of a registered session (`Some(None)` when it is in none).
    pub(super) fn room_of(&self, id: ConnectionId) -> Option<Option<&RoomName>> {
        self.all.get(&id).map(|connection| connection.room.as_ref())
    }

    pub(super) fn set_room(&mut self, id: ConnectionId, room: RoomName) {
        if let Some(connection) = self.all.get_mut(&id) {
            connection.room = Some(room);
        }
    }

    /// Whether any plain client is connected.
    pub(super) fn has_plain(&self) -> bool {
        !self.plain.is_empty()
    }

    /// The JSON sessions and their rooms.
    pub(super) fn json(&self) -> impl Iterator<Item = (ConnectionId, Option<&RoomName>)> {
        self.all.iter().filter(|(_, c)| c.endpoint == Endpoint::Json).map(|(id, c)| (*id, c.room.as_ref()))
    }

    /// Queues `frame` for one session; false if its queue is full.
    pub(super) fn send(&self, id: ConnectionId, frame: Outbound) -> bool {
        self.all.get(&id).is_none_or(|connection| connection.outbound.try_send(frame) != Err(QueueError::Full))
    }

    /// Queues `frame` for each of `ids`; returns those whose queue was full.
    pub(super) fn send_each(&self, ids: impl Iterator<Item = ConnectionId>, frame: &Outbound) -> Vec<ConnectionId> {
        ids.filter(|id| !self.send(*id, frame.clone())).collect()
    }

    /// Queues `frame` for every plain session; returns those too slow.
    pub(super) fn send_plain(&self, frame: &Outbound) -> Vec<ConnectionId> {
        self.send_each(self.plain.iter().copied(), frame)
    }
}
