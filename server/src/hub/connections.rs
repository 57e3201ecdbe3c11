//! Who is connected: each session's endpoint, worker and room. The queues
//! themselves live with each worker's relay ([`super::worker_relay`]); the
//! hub addresses sessions through the worker they run on.

use std::collections::{BTreeMap, HashMap};

use chat_shared::{Endpoint, RoomName};

use super::ConnectionId;
use super::worker_relay::WorkerId;

/// One registered session.
struct Connection {
    endpoint: Endpoint,
    worker: WorkerId,
    /// The room a JSON connection is in.
    room: Option<RoomName>,
}

/// Every registered session.
#[derive(Default)]
pub(super) struct Connections {
    all: HashMap<ConnectionId, Connection>,
    /// How many plain sessions each worker runs, so the plain echo goes only
    /// to the workers that have any.
    plain_workers: BTreeMap<WorkerId, usize>,
}

impl Connections {
    /// Registers a session.
    pub(super) fn insert(&mut self, id: ConnectionId, endpoint: Endpoint, worker: WorkerId) {
        if endpoint == Endpoint::Plain {
            *self.plain_workers.entry(worker).or_default() += 1;
        }
        self.all.insert(id, Connection { endpoint, worker, room: None });
    }

    /// Forgets a session; returns its worker and the room it was in.
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<(WorkerId, Option<RoomName>)> {
        let connection = self.all.remove(&id)?;
        if connection.endpoint == Endpoint::Plain
            && let Some(count) = self.plain_workers.get_mut(&connection.worker)
        {
            *count -= 1;
            if *count == 0 {
                self.plain_workers.remove(&connection.worker);
            }
        }
        Some((connection.worker, connection.room))
    }

    /// The worker a registered session runs on.
    pub(super) fn worker_of(&self, id: ConnectionId) -> Option<WorkerId> {
        self.all.get(&id).map(|connection| connection.worker)
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
        !self.plain_workers.is_empty()
    }

    /// The workers that run plain sessions.
    pub(super) fn plain_workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.plain_workers.keys().copied()
    }

    /// The JSON sessions and their rooms.
    pub(super) fn json(&self) -> impl Iterator<Item = (ConnectionId, Option<&RoomName>)> {
        self.all.iter().filter(|(_, c)| c.endpoint == Endpoint::Json).map(|(id, c)| (*id, c.room.as_ref()))
    }
}
