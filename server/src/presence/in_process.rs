//! Presence within one process: a map behind a lock, each claim one short
//! critical section.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chat_shared::{ClientId, Nickname, RoomName};

use super::{Claim, Claimant, Claimed, Departure, Owner, Presence, PresenceError, SHARED_HOLDERS_MAX};
use crate::bus::Peer;

/// One connection holding a nickname.
#[derive(Debug, Clone)]
struct Holder {
    member: Peer,
    tab: ClientId,
    owner: Option<Owner>,
}

/// The connections holding one nickname: one, or several of one user.
#[derive(Debug, Clone)]
struct Holding {
    holders: Vec<Holder>,
    /// The last holder is leaving (see [`Departure::Last`]).
    leaving: Option<Peer>,
}

impl Holding {
    /// What `claimant` claiming the name as `member` gets, and does.
    fn claim(&mut self, claimant: &Claimant, member: Peer) -> Claim {
        if self.holders.iter().any(|holder| holder.member == member) {
            return Claim::Held;
        }
        let same_owner = claimant.owner.is_some() && self.holders.iter().all(|holder| holder.owner == claimant.owner);
        // The same tab takes its name back from a stale connection of its own
        // (beside its user's other connections, or alone).
        let stale = self.holders.iter().position(|holder| holder.tab == claimant.tab);
        let replaces = stale.filter(|_| same_owner || self.holders.len() == 1);
        if self.leaving.is_some() && (replaces.is_some() || same_owner) {
            return Claim::Leaving;
        }
        let new = Holder { member, tab: claimant.tab.clone(), owner: claimant.owner.clone() };
        if let Some(stale) = replaces {
            return Claim::Replaces(std::mem::replace(&mut self.holders[stale], new).member);
        }
        if !same_owner {
            return Claim::Taken;
        }
        if self.holders.len() >= SHARED_HOLDERS_MAX {
            return Claim::TooMany;
        }
        self.holders.push(new);
        Claim::Shared
    }
}

/// The holders of one room's nicknames, kept sorted, and the first of them
/// as last listed.
#[derive(Debug, Default)]
struct RoomHolders {
    holders: BTreeMap<Nickname, Holding>,
    /// The list `members` last returned, and for what limit; dropped when a
    /// change could alter it.
    listed: Option<(usize, Arc<[Nickname]>)>,
}

impl RoomHolders {
    fn get_mut(&mut self, nick: &Nickname) -> Option<&mut Holding> {
        self.holders.get_mut(nick)
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

    fn insert(&mut self, nick: Nickname, holding: Holding) {
        self.changed(&nick);
        self.holders.insert(nick, holding);
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
        claimant: &Claimant,
        member: Peer,
    ) -> Result<Claimed, PresenceError> {
        let mut rooms = self.rooms();
        let holders = rooms.entry(room.clone()).or_default();
        let claim = match holders.get_mut(nick) {
            Some(holding) => holding.claim(claimant, member),
            None => {
                let holder = Holder { member, tab: claimant.tab.clone(), owner: claimant.owner.clone() };
                holders.insert(nick.clone(), Holding { holders: vec![holder], leaving: None });
                Claim::Free
            }
        };
        let room_size = holders.len();
        if holders.is_empty() {
            rooms.remove(room);
        }
        Ok(Claimed { claim, room_size })
    }

    async fn depart(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<Departure, PresenceError> {
        let mut rooms = self.rooms();
        let Some(holding) = rooms.get_mut(room).and_then(|holders| holders.get_mut(nick)) else {
            return Ok(Departure::Last);
        };
        let Some(at) = holding.holders.iter().position(|holder| holder.member == member) else {
            return Ok(Departure::Last);
        };
        if holding.holders.len() > 1 {
            holding.holders.swap_remove(at);
            return Ok(Departure::Shared);
        }
        // A guest's name has no other holder, and nobody waits for it to leave.
        if holding.holders[at].owner.is_some() {
            holding.leaving = Some(member);
        }
        Ok(Departure::Last)
    }

    async fn release(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<(), PresenceError> {
        let mut rooms = self.rooms();
        if let Some(holders) = rooms.get_mut(room) {
            if let Some(holding) = holders.get_mut(nick)
                && let Some(at) = holding.holders.iter().position(|holder| holder.member == member)
            {
                holding.holders.swap_remove(at);
                if holding.leaving == Some(member) {
                    holding.leaving = None;
                }
                if holding.holders.is_empty() {
                    holders.remove(nick);
                }
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
            async move { presence.claim(room, &nick(name), &Claimant::guest(tab), peer(who)).await.expect("claim").claim }
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
    async fn one_user_holds_a_name_from_a_bounded_number_of_connections() {
        let presence = InProcessPresence::default();
        let room = RoomName::parse("dev").expect("room");
        let mut claims = Vec::new();
        for who in 0..=SHARED_HOLDERS_MAX as u64 {
            let claimant =
                Claimant { tab: ClientId::parse(format!("tab-{who}")).expect("tab"), owner: Some(Owner::token("ann")) };
            claims.push(presence.claim(&room, &nick("ann"), &claimant, peer(who)).await.expect("claim").claim);
        }
        assert_eq!(claims.iter().filter(|claim| **claim == Claim::Shared).count(), SHARED_HOLDERS_MAX - 1);
        assert_eq!(claims.last(), Some(&Claim::TooMany));
    }

    #[tokio::test]
    async fn a_claim_tells_how_many_names_its_room_holds() {
        let presence = InProcessPresence::default();
        let room = RoomName::parse("dev").expect("room");
        let (tab, other_tab) = (ClientId::parse("t").expect("tab"), ClientId::parse("u").expect("tab"));
        let sizes = [
            presence.claim(&room, &nick("a"), &Claimant::guest(tab.clone()), peer(1)).await.expect("claim").room_size,
            presence.claim(&room, &nick("b"), &Claimant::guest(tab.clone()), peer(2)).await.expect("claim").room_size,
            // Held again, and taken: the room is as big as it was.
            presence.claim(&room, &nick("b"), &Claimant::guest(tab.clone()), peer(2)).await.expect("claim").room_size,
            presence
                .claim(&room, &nick("a"), &Claimant::guest(other_tab.clone()), peer(3))
                .await
                .expect("claim")
                .room_size,
        ];
        assert_eq!(sizes, [1, 2, 2, 2]);
    }

    #[tokio::test]
    async fn the_member_list_is_the_first_names_in_order_and_rooms_are_apart() {
        let presence = InProcessPresence::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        let tab = ClientId::parse("t").expect("tab");
        for (id, name) in ["mia", "al", "zoe", "bo"].iter().enumerate() {
            presence.claim(&dev, &nick(name), &Claimant::guest(tab.clone()), peer(id as u64)).await.expect("claim");
        }
        assert_eq!(
            presence.claim(&ops, &nick("mia"), &Claimant::guest(tab.clone()), peer(99)).await.expect("claim").claim,
            Claim::Free
        );
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
            presence.claim(&room, &nick(name), &Claimant::guest(tab.clone()), peer(id as u64)).await.expect("claim");
        }
        let first = presence.members(&room, 2).await.expect("members");
        assert!(Arc::ptr_eq(&first, &presence.members(&room, 2).await.expect("members")), "shared");
        // "g" sorts after the listed "b", "d": the list stands.
        presence.claim(&room, &nick("g"), &Claimant::guest(tab.clone()), peer(10)).await.expect("claim");
        assert!(Arc::ptr_eq(&first, &presence.members(&room, 2).await.expect("members")));
        // "a" sorts first: the list changes.
        presence.claim(&room, &nick("a"), &Claimant::guest(tab.clone()), peer(11)).await.expect("claim");
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
                presence
                    .claim(&room, &nick("alice"), &Claimant::guest(tab.clone()), peer(id))
                    .await
                    .expect("claim")
                    .claim
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
