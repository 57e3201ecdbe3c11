//! Kicks: a moderator takes someone out of a room (they may join again). A
//! kick is remembered here for a minute by the name it targets, on every
//! node (the change relay carries it), and the room's sessions under that
//! name that joined before it leave the room.
//!
//! A ban of a guest by name is such a kick that carries an [`AddressBan`]:
//! a guest is known by its address, which only the node its socket is on
//! knows, so the kicked session itself stores the ban of its address.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat_shared::RoomName;
use tokio::time::Instant;

use crate::accounts::name_key::name_key;

/// How long a kick is remembered: long past the moment every session in
/// the room has checked it.
const REMEMBERED: Duration = Duration::from_secs(60);

/// The ban a kicked guest's session makes of its own address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddressBan {
    /// Until when, in ms since the epoch (`None`: until lifted).
    pub until_ms: Option<i64>,
    /// The moderator's account, who the ban is by.
    pub by: crate::accounts::store::UserId,
}

/// A kick a session heard of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    /// Set when the kick bans the address of a guest under that name.
    pub address_ban: Option<AddressBan>,
}

/// When a kick was heard, and the ban it carries.
type Heard = (Instant, Option<AddressBan>);

/// Recent kicks on this node.
#[derive(Default)]
pub struct Kicks {
    recent: Mutex<HashMap<(RoomName, String), Heard>>,
}

impl Kicks {
    /// `name` was kicked out of `room` now (and, for a guest, banned by address).
    pub fn kicked(&self, room: &RoomName, name: &str, address_ban: Option<AddressBan>) {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|_, (at, _)| now.duration_since(*at) < REMEMBERED);
        recent.insert((room.clone(), name_key(name)), (now, address_ban));
    }

    /// The kick of `name` out of `room` after `since` (when its session joined), if any.
    pub fn kicked_since(&self, room: &RoomName, name: &str, since: Instant) -> Option<Kick> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, address_ban) = recent.get(&(room.clone(), name_key(name)))?;
        (*at >= since).then(|| Kick { address_ban: address_ban.clone() })
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
        kicks.kicked(&room, "Mallory", None);
        assert_eq!(kicks.kicked_since(&room, "mallory", joined), Some(Kick { address_ban: None }));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(kicks.kicked_since(&room, "mallory", Instant::now()), None, "a later join is not kicked");
        assert_eq!(kicks.kicked_since(&room, "bob", joined), None);
        let ban = AddressBan { until_ms: Some(9), by: 1 };
        kicks.kicked(&room, "gus", Some(ban.clone()));
        assert_eq!(kicks.kicked_since(&room, "Gus", joined), Some(Kick { address_ban: Some(ban) }));
    }
}
