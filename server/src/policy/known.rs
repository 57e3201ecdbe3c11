//! What a node knows of rooms without asking the database: which are
//! private, and the bans in force. Read whole at start and whenever the
//! node hears every change again, kept current by each change it hears (a
//! ban's notice carries the ban, so a node that cannot read the database at
//! that moment still knows it). Sessions fall back on it when the database
//! cannot answer: a known private room or a known ban is refused, anything
//! else let in. Not the source of truth; the database and the standings
//! cache are.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock};

use chat_shared::RoomName;

use super::rules::Party;
use super::store::{StoredBan, ban_target};

/// A ban, as a node remembers it: whom, and until when (none: until lifted).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownBan {
    /// `user:<id>` or `address:<ip>`.
    pub target: String,
    /// Until when, in ms since the epoch.
    pub until_ms: Option<i64>,
}

impl From<&StoredBan> for KnownBan {
    fn from(ban: &StoredBan) -> Self {
        Self { target: ban.target.clone(), until_ms: ban.until_ms }
    }
}

/// The node's knowledge of private rooms and bans.
#[derive(Default)]
pub struct Known {
    private: RwLock<HashSet<RoomName>>,
    bans: RwLock<HashMap<RoomName, Vec<KnownBan>>>,
}

impl Known {
    /// Whether `room` is known to be private.
    pub fn is_private(&self, room: &RoomName) -> bool {
        self.private.read().unwrap_or_else(PoisonError::into_inner).contains(room)
    }

    /// Whether `party` is known to be banned from `room` at `now_ms`.
    pub fn is_banned(&self, room: &RoomName, party: Party, now_ms: i64) -> bool {
        let Some(target) = ban_target(party) else { return false };
        let bans = self.bans.read().unwrap_or_else(PoisonError::into_inner);
        bans.get(room).is_some_and(|bans| {
            bans.iter().any(|ban| ban.target == target && ban.until_ms.is_none_or(|until| until > now_ms))
        })
    }

    /// Replaces everything known (read whole from the database).
    pub fn replace(&self, private: HashSet<RoomName>, bans: HashMap<RoomName, Vec<KnownBan>>) {
        *self.private.write().unwrap_or_else(PoisonError::into_inner) = private;
        *self.bans.write().unwrap_or_else(PoisonError::into_inner) = bans;
    }

    /// What `room` is now, as read from the database after it changed.
    pub fn room_read(&self, room: &RoomName, private: bool, bans: Vec<KnownBan>) {
        let mut known = self.private.write().unwrap_or_else(PoisonError::into_inner);
        if private {
            known.insert(room.clone());
        } else {
            known.remove(room);
        }
        drop(known);
        let mut known = self.bans.write().unwrap_or_else(PoisonError::into_inner);
        if bans.is_empty() {
            known.remove(room);
        } else {
            known.insert(room.clone(), bans);
        }
    }

    /// A ban heard of (when the database could not be read).
    pub fn banned(&self, room: &RoomName, ban: KnownBan) {
        let mut known = self.bans.write().unwrap_or_else(PoisonError::into_inner);
        let bans = known.entry(room.clone()).or_default();
        bans.retain(|known| known.target != ban.target);
        bans.push(ban);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_is_known_until_it_runs_out_and_a_room_read_replaces_what_was_heard() {
        let known = Known::default();
        let room = RoomName::lobby();
        known.banned(&room, KnownBan { target: "user:7".into(), until_ms: Some(1_000) });
        assert!(known.is_banned(&room, Party::User(7), 999));
        assert!(!known.is_banned(&room, Party::User(7), 1_000), "ran out");
        assert!(!known.is_banned(&room, Party::User(8), 0));
        known.room_read(&room, true, Vec::new());
        assert!(!known.is_banned(&room, Party::User(7), 0), "lifted, as the database says");
        assert!(known.is_private(&room));
    }
}
