//! The room bus: how the events of a room reach the hub of every node that
//! has members in it.
//!
//! A hub publishes what happened in a room (a stored message, a member
//! arriving or leaving, someone typing) as a typed [`RoomEvent`], and hears
//! the events of the rooms it subscribed to, its own included, from the bus.
//! Each node encodes an event once, for all of its members; transport types
//! never travel on the bus.
//!
//! One process uses [`InProcessBus`]. Several nodes would use a shared bus
//! (e.g. Redis pub/sub) behind the same trait: the hub does not change.

mod in_process;

pub use in_process::InProcessBus;

use async_trait::async_trait;
use chat_shared::{ChatMessage, Nickname, RoomName};

use crate::hub::ConnectionId;

/// Which node (server process) a connection lives on.
pub type NodeId = u64;

/// A connection, wherever it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its node.
    pub node: NodeId,
    /// Its id on that node.
    pub connection: ConnectionId,
}

/// Who wrote a stored message, which decides who hears of it how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A JSON client: its copy carries its client id and is followed by an ack.
    Client(Peer),
    /// A plain client, whose frame its node's plain clients already had verbatim.
    Plain,
}

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq)]
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
}

/// An event and its room, as the bus carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The room.
    pub room: RoomName,
    /// What happened there.
    pub event: RoomEvent,
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
    /// Starts hearing `room`'s events (this node has members in it). Idempotent.
    fn subscribe(&mut self, room: &RoomName);
    /// Stops hearing `room`'s events (this node's last member left). Idempotent.
    fn unsubscribe(&mut self, room: &RoomName);
    /// The next event already received, if any.
    fn try_next(&mut self) -> Option<Published>;
    /// Waits for the next event of a subscribed room. Cancel-safe.
    async fn next(&mut self) -> Published;
}
