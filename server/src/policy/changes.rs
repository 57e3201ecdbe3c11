//! Room changes on this node: each JSON session watches the room it is in,
//! and checks again whether it may stay when the room changes (a member
//! removed, the room made private) or when this node may have missed changes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chat_shared::RoomName;
use tokio::sync::watch;

use super::rules::Party;

/// Past this many rooms watched, rooms nobody watches any more are dropped.
const PRUNE_AT: usize = 10_000;

/// The last change of a room: its number, and whose standing it changed
/// (`None`: anyone's).
#[derive(Debug, Clone, Copy, Default)]
struct Notice {
    seq: u64,
    concerns: Option<Party>,
}

/// The rooms watched on this node.
#[derive(Default)]
pub struct RoomChanges {
    rooms: Mutex<HashMap<RoomName, watch::Sender<Notice>>>,
}

/// Resolves each time its room changes.
pub struct RoomWatch {
    notices: watch::Receiver<Notice>,
    /// The number of the last change seen.
    seen: u64,
}

impl RoomWatch {
    /// Waits for the next change (forever if none comes); says whose
    /// standing it changed, `None` for anyone's, which is also the answer
    /// when changes came faster than they were seen (one of those missed
    /// may have been anyone's).
    pub async fn changed(&mut self) -> Option<Party> {
        if self.notices.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let notice = *self.notices.borrow_and_update();
        let missed = notice.seq != self.seen + 1;
        self.seen = notice.seq;
        if missed { None } else { notice.concerns }
    }
}

impl RoomChanges {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, watch::Sender<Notice>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `room` from now on.
    pub fn watch(&self, room: &RoomName) -> RoomWatch {
        let mut rooms = self.lock();
        if rooms.len() >= PRUNE_AT {
            rooms.retain(|_, sender| sender.receiver_count() > 0);
        }
        let notices = rooms.entry(room.clone()).or_insert_with(|| watch::channel(Notice::default()).0).subscribe();
        let seen = notices.borrow().seq;
        RoomWatch { notices, seen }
    }

    /// Tells `room`'s watchers it changed, for `concerns` (`None`: anyone).
    pub fn notify(&self, room: &RoomName, concerns: Option<Party>) {
        if let Some(sender) = self.lock().get(room) {
            sender.send_modify(|notice| *notice = Notice { seq: notice.seq + 1, concerns });
        }
    }

    /// Tells every watcher to check again (changes may have been missed).
    pub fn notify_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|notice| *notice = Notice { seq: notice.seq + 1, concerns: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_hears_whose_change_it_was_and_anyones_when_it_missed_one() {
        let changes = RoomChanges::default();
        let room = RoomName::lobby();
        let mut watch = changes.watch(&room);
        changes.notify(&room, Some(Party::User(7)));
        assert_eq!(watch.changed().await, Some(Party::User(7)));
        changes.notify(&room, Some(Party::Anyone));
        assert_eq!(watch.changed().await, Some(Party::Anyone));
        // Two before it looked: it cannot tell whose the first was.
        changes.notify(&room, None);
        changes.notify(&room, Some(Party::User(8)));
        assert_eq!(watch.changed().await, None);
        changes.notify_all();
        assert_eq!(watch.changed().await, None);
    }
}
