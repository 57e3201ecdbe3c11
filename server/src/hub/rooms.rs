//! Room membership on this node: which connection is in which room under
//! which nickname, on which worker. Claiming nicknames is presence's job.

use std::collections::{BTreeMap, HashMap};

use chat_shared::{Nickname, RoomInfo, RoomName};

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
    /// How many members each worker runs: a room event goes to these workers.
    workers: BTreeMap<WorkerId, usize>,
}

impl Room {
    pub fn insert(&mut self, id: ConnectionId, member: Member) {
        *self.workers.entry(member.worker).or_default() += 1;
        if let Some(replaced) = self.members.insert(id, member) {
            self.forget_worker(replaced.worker);
        }
    }

    pub fn remove(&mut self, id: ConnectionId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.forget_worker(member.worker);
        Some(member)
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

    pub fn ids(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.members.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.members.len()
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

    /// How many rooms have members.
    #[allow(clippy::len_without_is_empty)] // an empty directory is not a case anyone asks about
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// A room with its online count (0 if nobody is in it).
    pub fn info(&self, name: &RoomName) -> RoomInfo {
        let online = self.rooms.get(name).map_or(0, |room| u32::try_from(room.len()).unwrap_or(u32::MAX));
        RoomInfo { name: name.clone(), online }
    }

    /// The lobby and the `limit` busiest other rooms (most members first,
    /// then by name), listed by name: what every client is shown.
    pub fn busiest(&self, limit: usize) -> Vec<RoomInfo> {
        let lobby = RoomName::lobby();
        let mut others: Vec<(usize, &RoomName)> =
            self.rooms.iter().filter(|(name, _)| **name != lobby).map(|(name, room)| (room.len(), name)).collect();
        let by_busiest = |a: &(usize, &RoomName), b: &(usize, &RoomName)| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1));
        if others.len() > limit {
            others.select_nth_unstable_by(limit, by_busiest);
            others.truncate(limit);
        }
        let mut list: Vec<RoomInfo> = others.into_iter().map(|(_, name)| self.info(name)).collect();
        list.push(self.info(&lobby));
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(nick: &str) -> Member {
        Member { nick: Nickname::parse(nick).expect("nick"), worker: 0 }
    }

    #[test]
    fn the_list_shows_the_lobby_and_the_busiest_rooms_only() {
        let mut rooms = Rooms::default();
        let dev = RoomName::parse("dev").expect("room");
        rooms.entry(dev.clone()).insert(1, member("alice"));
        rooms.entry(dev.clone()).insert(2, member("bob"));
        let names = |list: Vec<RoomInfo>| list.into_iter().map(|r| (r.name.to_string(), r.online)).collect::<Vec<_>>();
        assert_eq!(names(rooms.busiest(5)), [("dev".to_owned(), 2), ("lobby".to_owned(), 0)]);

        for (n, room) in ["a", "b", "c"].iter().enumerate() {
            let room = RoomName::parse(*room).expect("room");
            for m in 0..=n as u64 {
                rooms.entry(room.clone()).insert(100 + 10 * n as u64 + m, member(&format!("m{m}")));
            }
        }
        // Busiest two: c (3) and a tie at 2 broken by name (b before dev).
        assert_eq!(names(rooms.busiest(2)), [("b".to_owned(), 2), ("c".to_owned(), 3), ("lobby".to_owned(), 0)]);

        rooms.remove(&dev, 1);
        rooms.remove(&dev, 2);
        assert!(rooms.get(&dev).is_none());
        assert_eq!(rooms.info(&dev).online, 0);
    }

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
}
