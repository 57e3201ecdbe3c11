//! Kicks: a moderator takes someone out of a room (they may join again). A
//! kick is remembered here for a minute by the name it targets, on every
//! node (the change relay carries it), and the room's sessions under that
//! name that joined before it leave the room.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat_shared::RoomName;
use tokio::time::Instant;

use crate::accounts::name_key::name_key;

/// How long a kick is remembered: long past the moment every session in
/// the room has checked it.
const REMEMBERED: Duration = Duration::from_secs(60);

/// Recent kicks on this node.
#[derive(Default)]
pub struct Kicks {
    recent: Mutex<HashMap<(RoomName, String), Instant>>,
}

impl Kicks {
    /// `name` was kicked out of `room` now.
    pub fn kicked(&self, room: &RoomName, name: &str) {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|_, at| now.duration_since(*at) < REMEMBERED);
        recent.insert((room.clone(), name_key(name)), now);
    }

    /// Whether `name` was kicked out of `room` after `since` (when its session joined).
    pub fn kicked_since(&self, room: &RoomName, name: &str, since: Instant) -> bool {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.get(&(room.clone(), name_key(name))).is_some_and(|at| *at >= since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_kick_reaches_those_in_the_room_before_it_under_any_spelling() {
        let kicks = Kicks::default();
        let room = RoomName::lobby();
        let joined = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        kicks.kicked(&room, "Mallory");
        assert!(kicks.kicked_since(&room, "mallory", joined));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!kicks.kicked_since(&room, "mallory", Instant::now()), "a later join is not kicked");
        assert!(!kicks.kicked_since(&room, "bob", joined));
    }
}
