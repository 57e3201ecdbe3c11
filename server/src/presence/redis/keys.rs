//! The names of presence's Redis keys, all under one history's prefix
//! (`chat:{epoch}:`), so nodes of another history on the same Redis never
//! meet these.

use chat_shared::{Epoch, Nickname, RoomName};

use crate::bus::{NodeId, Peer};
use crate::hub::ConnectionId;

/// Names the keys of one history's presence.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of the history `epoch`.
    pub fn new(epoch: &Epoch) -> Self {
        Self { prefix: format!("chat:{}:", epoch.as_str()) }
    }

    /// What every key starts with (the scripts build keys of other nodes from it).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The entry of `nick` in `room`: a hash of its holders (see the
    /// scripts). Not `nick:` as before it was a hash: a node of an older
    /// version meeting one would fail every claim of it.
    pub fn entry(&self, room: &RoomName, nick: &Nickname) -> String {
        format!("{}holders:{}:{}", self.prefix, room.as_str(), nick.as_str())
    }

    /// What the entries of `room` start with.
    pub fn entry_prefix(&self, room: &RoomName) -> String {
        format!("{}holders:{}:", self.prefix, room.as_str())
    }

    /// The sorted set of `room`'s names (for member lists).
    pub fn names(&self, room: &RoomName) -> String {
        format!("{}names:{}", self.prefix, room.as_str())
    }

    /// The hash of what `node` holds (field [`held_field`], value the
    /// holder): what its survivors announce as gone when it dies.
    pub fn held_by(&self, node: NodeId) -> String {
        format!("{}{node}", self.held_prefix())
    }

    /// What every node's held hash starts with (the claim script drops a
    /// replaced holder from its node's hash).
    pub fn held_prefix(&self) -> String {
        format!("{}held:", self.prefix)
    }

    /// Where a buried node's held hash waits while its names are freed.
    pub fn burying(&self, node: NodeId) -> String {
        format!("{}burying:{node}", self.prefix)
    }

    /// The sorted set of burials under way, scored by when their burier last
    /// took them on.
    pub fn burials(&self) -> String {
        format!("{}burials", self.prefix)
    }

    /// The sorted set of live nodes, scored by when each is to be taken for dead.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// Which incarnation of this history's presence Redis holds, and from
    /// when it may be claimed in (`"{id} {ready_at_ms}"`). Gone when Redis
    /// lost its data (restarted empty): then every name is missing until
    /// its node takes it again, and claims wait for that.
    pub fn incarnation(&self) -> String {
        format!("{}incarnation", self.prefix)
    }

    /// Set when `node` was taken for dead, so that, if it was only late, it
    /// learns its members were announced as gone.
    pub fn buried(&self, node: NodeId) -> String {
        format!("{}buried:{node}", self.prefix)
    }
}

/// A field of a node's held hash: room, connection and name, split at the
/// first two spaces (room names have none).
pub fn held_field(room: &RoomName, connection: ConnectionId, nick: &Nickname) -> String {
    format!("{} {connection} {}", room.as_str(), nick.as_str())
}

/// The field of a holder in a name's entry: node and connection.
pub fn holder_field(member: Peer) -> String {
    format!("{} {}", member.node, member.connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_history_and_fields_split_at_the_first_space() {
        let keys = Keys::new(&Epoch::parse("e1").expect("epoch"));
        let (room, nick) = (RoomName::parse("dev").expect("room"), Nickname::parse("Ann Lee").expect("nick"));
        assert_eq!(keys.entry(&room, &nick), "chat:e1:holders:dev:Ann Lee");
        assert!(keys.entry(&room, &nick).starts_with(&keys.entry_prefix(&room)));
        assert_eq!(keys.names(&room), "chat:e1:names:dev");
        assert_eq!(keys.held_by(7), "chat:e1:held:7");
        assert_eq!(keys.nodes(), "chat:e1:nodes");
        assert_eq!(keys.buried(7), "chat:e1:buried:7");
        assert_eq!(keys.burying(7), "chat:e1:burying:7");
        assert_eq!(keys.burials(), "chat:e1:burials");
        assert_eq!(keys.incarnation(), "chat:e1:incarnation");
        assert_eq!(held_field(&room, 42, &nick).splitn(3, ' ').collect::<Vec<_>>(), ["dev", "42", "Ann Lee"]);
        assert_eq!(holder_field(Peer { node: 7, connection: 42 }), "7 42");
    }
}
