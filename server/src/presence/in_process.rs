//! Presence within one process: a map behind a lock, each claim one short
//! critical section.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chat_shared::{ClientId, Nickname, RoomName};

use super::{Claim, Claimed, Presence, PresenceError};
use crate::bus::Peer;

/// Who holds a nickname.
#[derive(Debug, Clone)]
struct Holder {
    member: Peer,
    tab: ClientId,
}

/// The holders of one room's nicknames, kept sorted, and the first of them
/// as last listed.
#[derive(Debug, Default)]
struct RoomHolders {
    holders: BTreeMap<Nickname, Holder>,
    /// The list `members` last returned, and for what limit; dropped when a
    /// change could alter it.
    listed: Option<(usize, Arc<[Nickname]>)>,
}

impl RoomHolders {
    fn get(&self, nick: &Nickname) -> Option<&Holder> {
        self.holders.get(nick)
    }

    /// Keeps the listed names unless `nick` (added or removed) is among them
    /// or the list was short.
    fn changed(&mut self, nick: &Nickname) {
        if let Some((limit, listed)) = &self.listed
            && (listed.len() < *limit || listed.last().is_none_or(|last| nick <= last))
        {
            self.listed = None;
        }
    }

    fn insert(&mut self, nick: Nickname, holder: Holder) {
        self.changed(&nick);
        self.holders.insert(nick, holder);
    }

    fn remove(&mut self, nick: &Nickname) {
        self.changed(nick);
        self.holders.remove(nick);
    }

    fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    fn len(&self) -> usize {
        self.holders.len()
    }

    fn first(&mut self, limit: usize) -> Arc<[Nickname]> {
        match &self.listed {
            Some((listed_limit, listed)) if *listed_limit == limit => listed.clone(),
            _ => {
                let listed: Arc<[Nickname]> = self.holders.keys().take(limit).cloned().collect();
                self.listed = Some((limit, listed.clone()));
                listed
            }
        }
    }
}

/// The nicknames held in each room of this process. Kept sorted, so the
/// member list a join answers with costs its length, not the room's, and is
/// shared by joins until a change reaches it.
#[derive(Debug, Default)]
pub struct InProcessPresence {
    rooms: Mutex<HashMap<RoomName, RoomHolders>>,
}

impl InProcessPresence {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, RoomHolders>> {
        // Every critical section leaves the map consistent, so a panic elsewhere does not spoil it.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Presence for InProcessPresence {
    async fn claim(
        &self,
        room: &RoomName,
        nick: &Nickname,
        tab: &ClientId,
        member: Peer,
    ) -> Result<Claimed, PresenceError> {
        let mut rooms = self.rooms();
        let holders = rooms.entry(room.clone()).or_default();
        let claim = match holders.get(nick) {
            None => Claim::Free,
            Some(holder) if holder.member == member => Claim::Held,
            Some(holder) if holder.tab == *tab => Claim::Replaces(holder.member),
            Some(_) => Claim::Taken,
        };
        if matches!(claim, Claim::Free | Claim::Replaces(_)) {
            holders.insert(nick.clone(), Holder { member, tab: tab.clone() });
        }
        let room_size = holders.len();
        if holders.is_empty() {
            rooms.remove(room);
        }
        Ok(Claimed { claim, room_size })
    }

    async fn release(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<(), PresenceError> {
        let mut rooms = self.rooms();
        if let Some(holders) = rooms.get_mut(room) {
            if holders.get(nick).is_some_and(|holder| holder.member == member) {
                holders.remove(nick);
            }
            if holders.is_empty() {
                rooms.remove(room);
            }
        }
        Ok(())
    }

    async fn members(&self, room: &RoomName, limit: usize) -> Result<Arc<[Nickname]>, PresenceError> {
        Ok(self.rooms().get_mut(room).map_or_else(|| Arc::from([]), |holders| holders.first(limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(connection: u64) -> Peer {
        Peer { node: 0, connection }
    }

    fn nick(s: &str) -> Nickname {
        Nickname::parse(s).expect("nick")
    }

    #[tokio::test]
    async fn claims_tell_free_held_replaced_and_taken_apart() {
        let presence = InProcessPresence::default();
        let room = RoomName::parse("dev").expect("room");
        let (tab, other_tab) = (ClientId::parse("t").expect("tab"), ClientId::parse("u").expect("tab"));
        let claim = |who: u64, name: &'static str, tab: &ClientId| {
            let (presence, room, tab) = (&presence, &room, tab.clone());
            async move { presence.claim(room, &nick(name), &tab, peer(who)).await.expect("claim").claim }
        };
        assert_eq!(claim(7, "carol", &tab).await, Claim::Free);
        assert_eq!(claim(7, "carol", &tab).await, Claim::Held);
        assert_eq!(claim(8, "carol", &other_tab).await, Claim::Taken);
        assert_eq!(claim(8, "carol", &tab).await, Claim::Replaces(peer(7)));
        // The replaced connection's late release does not free its successor's name.
        presence.release(&room, &nick("carol"), peer(7)).await.expect("release");
        assert_eq!(claim(9, "carol", &other_tab).await, Claim::Taken);
        presence.release(&room, &nick("carol"), peer(8)).await.expect("release");
        assert_eq!(claim(9, "carol", &other_tab).await, Claim::Free);
    }

    #[tokio::test]
    async fn a_claim_tells_how_many_names_its_room_holds() {
        let presence = InProcessPresence::default();
        let room = RoomName::parse("dev").expect("room");
        let (tab, other_tab) = (ClientId::parse("t").expect("tab"), ClientId::parse("u").expect("tab"));
        let sizes = [
            presence.claim(&room, &nick("a"), &tab, peer(1)).await.expect("claim").room_size,
            presence.claim(&room, &nick("b"), &tab, peer(2)).await.expect("claim").room_size,
            // Held again, and taken: the room is as big as it was.
            presence.claim(&room, &nick("b"), &tab, peer(2)).await.expect("claim").room_size,
            presence.claim(&room, &nick("a"), &other_tab, peer(3)).await.expect("claim").room_size,
        ];
        assert_eq!(sizes, [1, 2, 2, 2]);
    }

    #[tokio::test]
    async fn the_member_list_is_the_first_names_in_order_and_rooms_are_apart() {
        let presence = InProcessPresence::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let tab = ClientId::parse("t").expect("tab");
        for (id, name) in ["mia", "al", "zoe", "bo"].iter().enumerate() {
            presence.claim(&dev, &nick(name), &tab, peer(id as u64)).await.expect("claim");
        }
        assert_eq!(presence.claim(&ops, &nick("mia"), &tab, peer(99)).await.expect("claim").claim, Claim::Free);
        let names: Vec<String> =
            presence.members(&dev, 3).await.expect("members").iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["al", "bo", "mia"]);
        presence.release(&ops, &nick("mia"), peer(99)).await.expect("release");
        assert!(presence.rooms().get(&ops).is_none(), "an emptied room is forgotten");
    }

    #[tokio::test]
    async fn the_member_list_is_shared_until_a_change_reaches_it() {
        let presence = InProcessPresence::default();
        let room = RoomName::parse("dev").expect("room");
        let tab = ClientId::parse("t").expect("tab");
        for (id, name) in ["b", "d", "f"].iter().enumerate() {
            presence.claim(&room, &nick(name), &tab, peer(id as u64)).await.expect("claim");
        }
        let first = presence.members(&room, 2).await.expect("members");
        assert!(Arc::ptr_eq(&first, &presence.members(&room, 2).await.expect("members")), "shared");
        // "g" sorts after the listed "b", "d": the list stands.
        presence.claim(&room, &nick("g"), &tab, peer(10)).await.expect("claim");
        assert!(Arc::ptr_eq(&first, &presence.members(&room, 2).await.expect("members")));
        // "a" sorts first: the list changes.
        presence.claim(&room, &nick("a"), &tab, peer(11)).await.expect("claim");
        let names: Vec<String> =
            presence.members(&room, 2).await.expect("members").iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        presence.release(&room, &nick("b"), peer(0)).await.expect("release");
        let names: Vec<String> =
            presence.members(&room, 2).await.expect("members").iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["a", "d"], "a listed name leaving changes it too");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_racing_claims_exactly_one_wins() {
        let presence = std::sync::Arc::new(InProcessPresence::default());
        let room = RoomName::parse("dev").expect("room");
        let racers = (0..64u64).map(|id| {
            let (presence, room) = (presence.clone(), room.clone());
            tokio::spawn(async move {
                let tab = ClientId::parse(format!("tab-{id}")).expect("tab");
                presence.claim(&room, &nick("alice"), &tab, peer(id)).await.expect("claim").claim
            })
        });
        let mut claims = Vec::new();
        for racer in racers {
            claims.push(racer.await.expect("task"));
        }
        assert_eq!(claims.iter().filter(|c| **c == Claim::Free).count(), 1);
        assert_eq!(claims.iter().filter(|c| **c == Claim::Taken).count(), 63);
    }
}
