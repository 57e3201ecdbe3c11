//! Room membership on one hub shard: which connection is in which of its
//! rooms under which nickname, on which worker; and the quota of rooms the
//! shards share. Claiming nicknames is presence's job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_shared::{Nickname, RoomName};

use super::ConnectionId;
use super::worker_relay::WorkerId;

/// One member of a room.
#[derive(Debug, Clone)]
pub struct Member {
    pub nick: Nickname,
    /// The worker its session runs on.
    pub worker: WorkerId,
}

/// The members of one room on this node. Who holds which nickname is
/// presence's business ([`crate::presence`]); the hub routes by connection.
#[derive(Debug, Default)]
pub struct Room {
    members: HashMap<ConnectionId, Member>,
    /// How many members hold each name here: more than one for a user in
    /// the room from several devices, who counts once.
    names: HashMap<Nickname, u32>,
    /// How many members each worker runs: a room event goes to these workers.
    workers: BTreeMap<WorkerId, usize>,
}

impl Room {
    /// Adds a member, or renames one; returns it as it was before.
    pub fn insert(&mut self, id: ConnectionId, member: Member) -> Option<Member> {
        *self.workers.entry(member.worker).or_default() += 1;
        *self.names.entry(member.nick.clone()).or_default() += 1;
        let replaced = self.members.insert(id, member);
        if let Some(replaced) = &replaced {
            self.forget(replaced);
        }
        replaced
    }

    pub fn remove(&mut self, id: ConnectionId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.forget(&member);
        Some(member)
    }

    fn forget(&mut self, member: &Member) {
        self.forget_worker(member.worker);
        if let Some(count) = self.names.get_mut(&member.nick) {
            *count -= 1;
            if *count == 0 {
                self.names.remove(&member.nick);
            }
        }
    }

    fn forget_worker(&mut self, worker: WorkerId) {
        if let Some(count) = self.workers.get_mut(&worker) {
            *count -= 1;
            if *count == 0 {
                self.workers.remove(&worker);
            }
        }
    }

    /// The workers that run members of this room.
    pub fn workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.workers.keys().copied()
    }

    pub fn get(&self, id: ConnectionId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// How many people: names held here (one user's devices count once).
    pub fn people(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// All rooms with members.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: BTreeMap<RoomName, Room>,
}

impl Rooms {
    pub fn get(&self, name: &RoomName) -> Option<&Room> {
        self.rooms.get(name)
    }

    pub fn entry(&mut self, name: RoomName) -> &mut Room {
        self.rooms.entry(name).or_default()
    }

    /// Removes a member, dropping the room once empty.
    pub fn remove(&mut self, name: &RoomName, id: ConnectionId) -> Option<Member> {
        let room = self.rooms.get_mut(name)?;
        let member = room.remove(id);
        if room.is_empty() {
            self.rooms.remove(name);
        }
        member
    }
}

/// How many rooms may have members at once, shared by the shards: each
/// takes a place for a room's first member and gives it back when it empties.
#[derive(Debug, Clone)]
pub struct RoomQuota {
    in_use: Arc<AtomicUsize>,
    max: usize,
}

impl RoomQuota {
    pub fn new(max: usize) -> Self {
        Self { in_use: Arc::new(AtomicUsize::new(0)), max }
    }

    /// Takes a place for a new room; false if every place is taken.
    pub fn take(&self) -> bool {
        self.in_use.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1)).is_ok()
    }

    /// Gives back the place of a room that emptied.
    pub fn release(&self) {
        let _ = self.in_use.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// The most rooms at once.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_knows_which_workers_run_its_members() {
        let mut room = Room::default();
        let on = |worker| Member { nick: Nickname::parse("m").expect("nick"), worker };
        room.insert(1, on(0));
        room.insert(2, on(1));
        room.insert(3, on(1));
        assert_eq!(room.workers().collect::<Vec<_>>(), [0, 1]);
        room.remove(1);
        assert_eq!(room.workers().collect::<Vec<_>>(), [1], "a worker without members gets no deliveries");
        room.insert(2, on(2));
        assert_eq!(room.workers().collect::<Vec<_>>(), [1, 2], "re-inserting moves the count");
    }

    #[test]
    fn a_room_counts_its_people_once_however_many_devices_each_has() {
        let mut room = Room::default();
        let named = |nick: &str| Member { nick: Nickname::parse(nick).expect("nick"), worker: 0 };
        room.insert(1, named("ann"));
        room.insert(2, named("ann"));
        room.insert(3, named("bob"));
        assert_eq!((room.members.len(), room.people()), (3, 2));
        room.remove(1);
        assert_eq!((room.members.len(), room.people()), (2, 2));
        room.insert(3, named("cat"));
        assert_eq!((room.members.len(), room.people()), (2, 2), "a rename moves the count");
        room.remove(2);
        assert_eq!((room.members.len(), room.people()), (1, 1));
    }

    #[test]
    fn the_quota_is_shared_and_places_come_back() {
        let quota = RoomQuota::new(2);
        let other_shard = quota.clone();
        assert!(quota.take() && other_shard.take());
        assert!(!quota.take(), "two rooms of two");
        other_shard.release();
        assert!(quota.take());
        quota.release();
        quota.release();
        quota.release();
        assert!(quota.take() && quota.take() && !quota.take(), "releasing too often cannot make room");
    }
}
