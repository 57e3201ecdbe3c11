//! Presence: who holds which nickname in which room.
//!
//! A nickname is unique within a room. A session claims one before it asks
//! the hub to let it in, the way it reads history itself: a shared presence
//! service answers over the network, and the hub must never wait for it.
//! The claim is atomic: of two connections claiming one name at once,
//! exactly one gets it. The same browser tab (it knows the tab's secret) may
//! take its name back from a stale connection of its own. A signed-in
//! user (an account, a token's user: an [`Owner`]) may hold its name from
//! several connections at once (a phone and a laptop): the room hears it
//! join with the first and leave with the last ([`Presence::depart`]).
//!
//! One process uses [`InProcessPresence`]; its entries die with the process.
//! Several nodes share [`RedisPresence`], which also expires the entries of
//! a node that stops refreshing them (one that died).

mod in_process;
pub mod redis;

pub use in_process::InProcessPresence;
pub use redis::RedisPresence;

use std::sync::Arc;

use async_trait::async_trait;
use chat_shared::{ClientId, Nickname, RoomName};

use crate::bus::Peer;

/// What claiming a nickname in a room did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody held it; now the claimant does.
    Free,
    /// The claimant already held it (a repeated join).
    Held,
    /// A stale connection of the same browser tab held it; now the claimant
    /// does, and that connection is to be closed.
    Replaces(Peer),
    /// Another connection of the same user holds it; now this one does too
    /// (the room already has the name: nobody is to hear of it).
    Shared,
    /// The user's last connection holding it is leaving it (its room is
    /// hearing it leave); nothing changed. Retry in a moment.
    Leaving,
    /// The user holds it from [`SHARED_HOLDERS_MAX`] connections already;
    /// nothing changed.
    TooMany,
    /// Someone else holds it; nothing changed.
    Taken,
    /// Nothing changed: the shared presence lost its data (Redis restarted
    /// empty) and the nodes are still taking their names back, so a name
    /// missing now is not known to be free. Retry in a few seconds.
    Recovering,
}

/// Most connections one user may hold one name from in one room.
pub const SHARED_HOLDERS_MAX: usize = 32;

/// A user whose connections share a name: an account, or a connection
/// token's user (`sub`). Guests have none: each of their names has one holder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// The account `user`.
    pub fn account(user: crate::accounts::store::UserId) -> Self {
        Self(format!("account:{user}"))
    }

    /// The user `sub` of connection tokens.
    pub fn token(sub: &str) -> Self {
        Self(format!("token:{sub}"))
    }

    /// A short fingerprint of it, without spaces (a token's `sub` may have
    /// any): the first 12 bytes of its SHA-256, in URL-safe base64.
    pub fn fingerprint(&self) -> String {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&Sha256::digest(self.0.as_bytes())[..12])
    }
}

/// Who claims a name: the browser tab it comes from, and the user it
/// speaks for, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// The tab's secret.
    pub tab: ClientId,
    /// The signed-in user; `None` for a guest.
    pub owner: Option<Owner>,
}

impl Claimant {
    /// A guest's tab.
    pub fn guest(tab: ClientId) -> Self {
        Self { tab, owner: None }
    }
}

/// What a connection giving its name up in a room is to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Other connections of its user hold the name still: it is given back
    /// already, and the room is not to hear of it.
    Shared,
    /// The name leaves with this connection (or it held it no more): the
    /// room hears it leave, then [`Presence::release`] gives it back.
    /// Until then its user's claims are answered [`Claim::Leaving`], so
    /// none of them joins before the room heard the name leave.
    Last,
}

/// A short fingerprint of a browser tab's secret, for logs (the secret
/// itself is never logged): the first 8 bytes of its SHA-256, in hex.
pub fn tab_fingerprint(tab: &ClientId) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(tab.as_str().as_bytes()).iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// A name this node's connection held that another connection holds now:
/// presence lost it (Redis restarted empty, or this node was cut off past
/// its burial) and someone claimed it meanwhile. The connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostName {
    /// The room.
    pub room: RoomName,
    /// The connection of this node that held it.
    pub connection: crate::hub::ConnectionId,
}

/// What claiming a nickname did, and how big the room is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    /// What claiming did.
    pub claim: Claim,
    /// Names held in the room now, every node's together (the claimant's
    /// included when it holds one). Exact at the claim, where the hub's
    /// counts of other nodes' members are up to a second old: a crowd filling
    /// a room across nodes faster than that is still known to be a crowd.
    pub room_size: usize,
}

/// Presence could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[error("presence is unavailable: {0}")]
pub struct PresenceError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Nicknames held in rooms.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Claims `nick` in `room` for `member`, of `claimant`, atomically;
    /// also tells how many names the room holds then.
    async fn claim(
        &self,
        room: &RoomName,
        nick: &Nickname,
        claimant: &Claimant,
        member: Peer,
    ) -> Result<Claimed, PresenceError>;
    /// `member` is about to leave `room`, where it holds `nick`: gives the
    /// name back if others of its user hold it too, or else marks it as
    /// leaving (see [`Departure`]). Called before the hub is told.
    async fn depart(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<Departure, PresenceError>;
    /// Gives `nick` in `room` back, if `member` still holds it (a replaced
    /// connection's late release must not free its successor's name).
    async fn release(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<(), PresenceError>;
    /// Up to `limit` of the nicknames held in `room`, in alphabetical order,
    /// shared: a storm of joins into one room need not copy the list per join.
    async fn members(&self, room: &RoomName, limit: usize) -> Result<Arc<[Nickname]>, PresenceError>;
    /// Whether this node may have lost its names without knowing: a shared
    /// presence it has not reached for nearly as long as the others wait
    /// before they free a silent node's names. Its connections must not
    /// speak under their names then (the names are being closed anyway).
    fn lease_expired(&self) -> bool {
        false
    }

    /// Like [`Presence::members`], read now: never a list read a moment
    /// ago (the hub checks the lists its members were shown against it).
    async fn members_now(&self, room: &RoomName, limit: usize) -> Result<Arc<[Nickname]>, PresenceError> {
        self.members(room, limit).await
    }
}
