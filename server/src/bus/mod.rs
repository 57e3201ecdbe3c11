//! The room bus: how the events of a room reach the hub of every node that
//! has members in it.
//!
//! A hub publishes what happened in a room (a stored message, a member
//! arriving or leaving, someone typing) as a typed [`RoomEvent`], and hears
//! the events of the rooms it subscribed to, its own included, from the bus.
//! Each node encodes an event once, for all of its members; transport types
//! never travel on the bus.
//!
//! One process uses [`InProcessBus`]. Several nodes use [`RedisBus`]
//! (Redis pub/sub, with the history store filling what pub/sub lost) behind
//! the same trait. Either way a hub hears each room's messages once, in id
//! order, with no gap, from the moment the bus reports the room
//! [`BusEvent::Ready`]: a member's history, read after that, meets the
//! live messages with nothing missing in between.

mod in_process;
pub mod redis;

pub use in_process::InProcessBus;
pub use redis::RedisBus;

use async_trait::async_trait;
use chat_shared::{ChatMessage, Nickname, RoomName};
use serde::{Deserialize, Serialize};

use crate::hub::ConnectionId;

/// Which node (server process) a connection lives on.
pub type NodeId = u64;

/// A connection, wherever it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its node.
    pub node: NodeId,
    /// Its id on that node.
    pub connection: ConnectionId,
}

/// Who wrote a stored message, which decides who hears of it how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Author {
    /// A JSON client: its copy carries its client id and is followed by an ack.
    Client(Peer),
    /// A plain client of this node, whose plain clients already had its frame verbatim.
    Plain(NodeId),
    /// Unknown: the message was read back from the store (to fill a gap the
    /// bus lost), so its author's node has confirmed it already.
    Stored,
}

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomEvent {
    /// A message was stored (it carries its author's client id, which only
    /// the author's copy keeps).
    Message { message: ChatMessage, author: Author },
    /// Someone joined; everyone else in the room hears it.
    MemberJoined { nick: Nickname, member: Peer },
    /// Someone left; everyone still in the room hears it.
    MemberLeft { nick: Nickname, member: Peer },
    /// Someone is typing; everyone else in the room hears it.
    Typing { nick: Nickname, member: Peer },
    /// Its browser tab took this connection's name back through another
    /// connection: its node closes it. Nobody hears it leave.
    Replaced { member: Peer },
}

/// An event and its room, as the bus carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The room.
    pub room: RoomName,
    /// What happened there.
    pub event: RoomEvent,
}

impl RoomEvent {
    /// The id of the stored message this event carries, if it is one.
    pub fn message_id(&self) -> Option<u64> {
        match self {
            Self::Message { message, .. } => Some(message.id),
            _ => None,
        }
    }
}

/// What a hub hears from the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// Something happened in a subscribed room.
    Room(Published),
    /// The room, subscribed to since, is heard: every message stored from
    /// now on will be delivered. Members may read their history.
    Ready(RoomName),
}

/// Carries room events between the hubs of all nodes. Publishing and
/// subscribing never wait: an implementation talking to a server does that
/// work in its own task.
#[async_trait]
pub trait RoomBus: Send {
    /// This node's id, which every [`Peer`] it publishes carries.
    fn node(&self) -> NodeId;
    /// Sends `published` to every node subscribed to its room, this one included.
    fn publish(&mut self, published: Published);
    /// Starts hearing `room`'s events (this node has members in it); a
    /// [`BusEvent::Ready`] follows. Idempotent.
    fn subscribe(&mut self, room: &RoomName);
    /// Stops hearing `room`'s events (this node's last member left). Idempotent.
    fn unsubscribe(&mut self, room: &RoomName);
    /// The next event already received, if any.
    fn try_next(&mut self) -> Option<BusEvent>;
    /// Waits for the next event. Cancel-safe.
    async fn next(&mut self) -> BusEvent;
}
