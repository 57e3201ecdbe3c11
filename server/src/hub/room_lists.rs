//! The room lists JSON clients see: the lobby, the busiest rooms and their
//! own, sent at most once per interval and only to the clients whose view
//! changed, each distinct list encoded once.

use std::collections::{HashMap, HashSet};

use chat_shared::{RoomInfo, RoomName, ServerMessage};

use super::connections::Connections;
use super::rooms::Rooms;
use super::{ConnectionId, Outbound, frame};

/// Rooms besides the lobby in the list every client receives (the busiest);
/// a client in another room also gets its own room's line.
pub(super) const ROOM_LIST_MAX: usize = 20;

/// What was last sent, and what changed since.
#[derive(Default)]
pub(super) struct RoomLists {
    /// Rooms whose member count changed since the lists went out.
    changed: HashSet<RoomName>,
    /// The busiest rooms as last sent to everyone.
    listed: Vec<RoomInfo>,
}

/// `room` if it is not among the `listed` ones: a member of it gets a line
/// for it besides the busiest.
fn unlisted<'a>(listed: &[RoomInfo], room: Option<&'a RoomName>) -> Option<&'a RoomName> {
    room.filter(|room| !listed.iter().any(|info| info.name == **room))
}

impl RoomLists {
    /// The list a client gets on connecting.
    pub(super) fn current(rooms: &Rooms) -> Outbound {
        frame(&ServerMessage::Rooms { rooms: rooms.busiest(ROOM_LIST_MAX) })
    }

    /// Notes that `room`'s member count changed.
    pub(super) fn changed(&mut self, room: &RoomName) {
        if !self.changed.contains(room) {
            self.changed.insert(room.clone());
        }
    }

    /// Whether anything changed since the lists went out.
    pub(super) fn due(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Sends room lists to the clients whose view changed: everyone when the
    /// busiest rooms (or their counts) changed, else only the members of the
    /// other rooms whose count changed. Returns each recipient's list.
    pub(super) fn publish(&mut self, rooms: &Rooms, connections: &Connections) -> Vec<(ConnectionId, Outbound)> {
        let changed = std::mem::take(&mut self.changed);
        let busiest = rooms.busiest(ROOM_LIST_MAX);
        let everyone = busiest != self.listed;
        self.listed = busiest;
        let listed = &self.listed;
        let recipients: Vec<(ConnectionId, Option<&RoomName>)> = if everyone {
            connections.json().map(|(id, room)| (id, unlisted(listed, room))).collect()
        } else {
            let changed_unlisted = changed.iter().filter_map(|room| unlisted(listed, Some(room)));
            changed_unlisted
                .flat_map(|room| rooms.get(room).into_iter().flat_map(|r| r.ids()).map(move |id| (id, Some(room))))
                .collect()
        };
        // Each distinct list (the busiest, or the busiest plus one room) is encoded once.
        let mut lists: HashMap<Option<&RoomName>, Outbound> = HashMap::new();
        recipients
            .into_iter()
            .map(|(id, own)| {
                let list = lists.entry(own).or_insert_with(|| {
                    let mut shown = listed.clone();
                    shown.extend(own.map(|room| rooms.info(room)));
                    shown.sort_by(|a, b| a.name.cmp(&b.name));
                    frame(&ServerMessage::Rooms { rooms: shown })
                });
                (id, list.clone())
            })
            .collect()
    }
}
