//! Room membership: who is in which room under which nickname.

use std::collections::{BTreeMap, HashMap};

use chat_shared::{ClientId, Nickname, RoomInfo, RoomName};

use super::ConnectionId;

/// One member of a room.
#[derive(Debug, Clone)]
pub struct Member {
    pub nick: Nickname,
    pub tab: ClientId,
}

/// The members of one room, indexed both ways so joins stay O(1).
#[derive(Debug, Default)]
pub struct Room {
    members: HashMap<ConnectionId, Member>,
    by_nick: HashMap<Nickname, ConnectionId>,
}

impl Room {
    /// The connection using `nick` here, if any.
    pub fn holder_of(&self, nick: &Nickname) -> Option<(ConnectionId, &Member)> {
        let id = *self.by_nick.get(nick)?;
        Some((id, self.members.get(&id)?))
    }

    pub fn insert(&mut self, id: ConnectionId, member: Member) {
        self.by_nick.insert(member.nick.clone(), id);
        self.members.insert(id, member);
    }

    pub fn remove(&mut self, id: ConnectionId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.by_nick.remove(&member.nick);
        Some(member)
    }

    pub fn get(&self, id: ConnectionId) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.members.keys().copied()
    }

    /// Up to `limit` nicknames, in alphabetical order.
    pub fn nicknames(&self, limit: usize) -> Vec<Nickname> {
        let mut nicks: Vec<&Nickname> = self.by_nick.keys().collect();
        nicks.sort_unstable();
        nicks.into_iter().take(limit).cloned().collect()
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

    /// The lobby and every room with members, by name, with online counts.
    pub fn directory(&self) -> Vec<RoomInfo> {
        let lobby = RoomName::lobby();
        let mut list: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(name, room)| RoomInfo { name: name.clone(), online: u32::try_from(room.len()).unwrap_or(u32::MAX) })
            .collect();
        if !self.rooms.contains_key(&lobby) {
            list.push(RoomInfo { name: lobby, online: 0 });
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(nick: &str) -> Member {
        Member { nick: Nickname::parse(nick).expect("nick"), tab: ClientId::parse("t").expect("tab") }
    }

    #[test]
    fn directory_lists_the_lobby_and_occupied_rooms_only() {
        let mut rooms = Rooms::default();
        let dev = RoomName::parse("dev").expect("room");
        rooms.entry(dev.clone()).insert(1, member("alice"));
        rooms.entry(dev.clone()).insert(2, member("bob"));
        let names: Vec<(String, u32)> = rooms.directory().into_iter().map(|r| (r.name.to_string(), r.online)).collect();
        assert_eq!(names, [("dev".to_owned(), 2), ("lobby".to_owned(), 0)]);

        rooms.remove(&dev, 1);
        rooms.remove(&dev, 2);
        assert!(rooms.get(&dev).is_none());
        assert_eq!(rooms.directory().len(), 1);
    }

    #[test]
    fn nicknames_are_indexed() {
        let mut room = Room::default();
        room.insert(7, member("carol"));
        assert_eq!(room.holder_of(&Nickname::parse("carol").expect("nick")).map(|(id, _)| id), Some(7));
        room.remove(7);
        assert!(room.holder_of(&Nickname::parse("carol").expect("nick")).is_none());
    }
}
