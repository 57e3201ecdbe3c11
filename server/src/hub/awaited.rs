//! Who wrote the messages a shard committed, until the bus delivers them in
//! their room's sequence: that is when their author gets its copy and its
//! ack, whichever way the message came back.
//!
//! It usually comes back as published (its author named). But the bus may
//! deliver it first as read from the store, with no author: a reconnect's
//! catch-up or a gap read ran while the shard's publish waited in the bus's
//! queue (the publish, heard after, is then old and dropped). Without this
//! record that author would never get its ack.

use std::collections::{BTreeMap, HashMap};

use chat_shared::RoomName;

use super::ConnectionId;

/// Committed messages of this shard not yet delivered, by room and id.
#[derive(Debug, Default)]
pub(super) struct Awaited {
    rooms: HashMap<RoomName, BTreeMap<u64, ConnectionId>>,
    /// Records in all rooms.
    len: usize,
}

impl Awaited {
    /// Committed messages not yet delivered, in all rooms.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Message `id` of `room` was committed for `author`.
    pub(super) fn committed(&mut self, room: &RoomName, id: u64, author: ConnectionId) {
        if self.rooms.entry(room.clone()).or_default().insert(id, author).is_none() {
            self.len += 1;
        }
    }

    /// Message `id` of `room` is being delivered: its author, if this shard
    /// committed it. Messages of the room up to it are delivered by then
    /// (the bus delivers in id order), so their records go too.
    pub(super) fn delivered(&mut self, room: &RoomName, id: u64) -> Option<ConnectionId> {
        let waiting = self.rooms.get_mut(room)?;
        let before = waiting.len();
        let later = waiting.split_off(&(id + 1));
        let author = waiting.remove(&id);
        *waiting = later;
        self.len -= before - waiting.len();
        if waiting.is_empty() {
            self.rooms.remove(room);
        }
        author
    }

    /// This node no longer hears `room`: nothing of it will be delivered.
    pub(super) fn forget(&mut self, room: &RoomName) {
        if let Some(forgotten) = self.rooms.remove(room) {
            self.len -= forgotten.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_message_names_its_author_once_and_clears_what_came_before() {
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let mut awaited = Awaited::default();
        awaited.committed(&dev, 5, 1);
        awaited.committed(&dev, 7, 2);
        awaited.committed(&ops, 5, 3);
        assert_eq!(awaited.len(), 3);
        assert_eq!(awaited.delivered(&dev, 6), None, "another node's");
        assert_eq!(awaited.len(), 2, "5 went with it");
        assert_eq!(awaited.delivered(&dev, 5), None, "cleared by 6: delivered before it");
        assert_eq!(awaited.delivered(&dev, 7), Some(2));
        assert_eq!(awaited.delivered(&dev, 7), None, "once");
        assert!(!awaited.rooms.contains_key(&dev));
        awaited.forget(&ops);
        assert_eq!(awaited.len(), 0);
        assert_eq!(awaited.delivered(&ops, 5), None);
    }
}
