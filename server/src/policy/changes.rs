//! Room changes on this node: each JSON session watches the room it is in,
//! and checks again whether it may stay when the room changes (a member
//! removed, the room made private) or when this node may have missed changes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chat_shared::RoomName;
use tokio::sync::watch;

/// Past this many rooms watched, rooms nobody watches any more are dropped.
const PRUNE_AT: usize = 10_000;

/// The rooms watched on this node.
#[derive(Default)]
pub struct RoomChanges {
    rooms: Mutex<HashMap<RoomName, watch::Sender<()>>>,
}

/// Resolves each time its room changes.
pub struct RoomWatch(watch::Receiver<()>);

impl RoomWatch {
    /// Waits for the next change (forever if none comes).
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl RoomChanges {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, watch::Sender<()>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `room` from now on.
    pub fn watch(&self, room: &RoomName) -> RoomWatch {
        let mut rooms = self.lock();
        if rooms.len() >= PRUNE_AT {
            rooms.retain(|_, sender| sender.receiver_count() > 0);
        }
        RoomWatch(rooms.entry(room.clone()).or_insert_with(|| watch::channel(()).0).subscribe())
    }

    /// Tells `room`'s watchers it changed.
    pub fn notify(&self, room: &RoomName) {
        if let Some(sender) = self.lock().get(room) {
            sender.send_replace(());
        }
    }

    /// Tells every watcher to check again (changes may have been missed).
    pub fn notify_all(&self) {
        for sender in self.lock().values() {
            sender.send_replace(());
        }
    }
}
