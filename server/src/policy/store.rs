//! Where created rooms, their members and their invite links are kept: the
//! history's database (SQLite or PostgreSQL), behind a trait.

use async_trait::async_trait;
use chat_shared::api::Role;

use super::rules::{Party, Standing};
use crate::accounts::store::UserId;
use crate::store::StoreError;

/// A created room, with what one account is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOfUser {
    /// Its name.
    pub name: String,
    /// Whether only members may enter.
    pub private: bool,
    /// What the account is in it.
    pub role: Role,
}

/// A member of a created room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account.
    pub user: UserId,
    /// Its name.
    pub name: String,
    /// What it is in the room.
    pub role: Role,
}

/// An invite link to create (its code's hash, never the code).
#[derive(Debug, Clone)]
pub struct NewInvite<'a> {
    /// SHA-256 of the code.
    pub code_hash: &'a str,
    /// The room it admits to.
    pub room: &'a str,
    /// Who made it.
    pub created_by: UserId,
    /// Now, in ms since the epoch.
    pub now_ms: i64,
    /// When it stops working.
    pub expires_ms: Option<i64>,
    /// How many may use it.
    pub uses: Option<i64>,
}

/// An invite link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInvite {
    /// Its id.
    pub id: i64,
    /// Who made it.
    pub created_by: String,
    /// When it stops working.
    pub expires_ms: Option<i64>,
    /// Uses left.
    pub uses_left: Option<i64>,
}

/// What accepting an invite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The account is now a member of this room.
    Joined(String),
    /// It already was (no use of the link was spent).
    AlreadyMember(String),
    /// No such code, or it expired, was revoked or is used up.
    Invalid,
}

/// A ban to record.
#[derive(Debug, Clone)]
pub struct NewBan<'a> {
    /// The room.
    pub room: &'a str,
    /// Who: see [`ban_target`].
    pub target: &'a str,
    /// How moderators see the target (an account's name, an address).
    pub label: &'a str,
    /// Until when (none: for ever).
    pub until_ms: Option<i64>,
    /// The moderator.
    pub by: UserId,
    /// Now.
    pub now_ms: i64,
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBan {
    /// Who: see [`ban_target`].
    pub target: String,
    /// How moderators see the target.
    pub label: String,
    /// Until when (none: for ever).
    pub until_ms: Option<i64>,
}

/// One moderation action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The room.
    pub room: String,
    /// Who did it (an account's name).
    pub actor: String,
    /// What: `ban`, `unban`, `kick`, `remove_member`, `slow_mode`, `moderator`...
    pub action: String,
    /// To whom or what.
    pub target: String,
    /// More (a ban's length, slow mode's seconds).
    pub detail: String,
    /// When, in ms since the epoch.
    pub at_ms: i64,
}

/// A report of a message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// Its id.
    pub id: i64,
    /// The message reported.
    pub message_id: i64,
    /// Who reported it (an account's name).
    pub reporter: String,
    /// Why.
    pub reason: String,
    /// `open`, `resolved` or `dismissed`.
    pub status: String,
    /// When, in ms since the epoch.
    pub created_ms: i64,
}

/// How bans name who they keep out: `user:<id>` or `address:<ip>`.
pub fn ban_target(party: Party) -> Option<String> {
    match party {
        Party::Anyone => None,
        Party::User(id) => Some(format!("user:{id}")),
        Party::Address(address) => Some(format!("address:{address}")),
    }
}

/// The party a ban's target (see [`ban_target`]) names, if it names one.
pub fn party_of_target(target: &str) -> Option<Party> {
    if let Some(id) = target.strip_prefix("user:") {
        return id.parse().ok().map(Party::User);
    }
    target.strip_prefix("address:")?.parse().ok().map(Party::Address)
}

/// Created rooms, members and invites, durably.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Creates `name` owned by `owner`; false if it exists.
    async fn create_room(&self, name: &str, private: bool, owner: UserId, now_ms: i64) -> Result<bool, StoreError>;

    /// What `room` is, and what `party` is in it (member, banned, admin) at `now_ms`.
    async fn standing(&self, room: &str, party: Party, now_ms: i64) -> Result<Standing, StoreError>;

    /// The names of every private room.
    async fn private_rooms(&self) -> Result<Vec<String>, StoreError>;

    /// The created rooms `user` is a member of, by name.
    async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomOfUser>, StoreError>;

    /// The members of `room`, by name (at most `limit`).
    async fn members(&self, room: &str, limit: i64) -> Result<Vec<Member>, StoreError>;

    /// Removes `user` from `room` (never its owner); whether it was a member.
    async fn remove_member(&self, room: &str, user: UserId) -> Result<bool, StoreError>;

    /// Stores an invite link; its id.
    async fn create_invite(&self, invite: NewInvite<'_>) -> Result<i64, StoreError>;

    /// Spends one use of the invite whose code hashes to `code_hash`, making
    /// `user` a member of its room.
    async fn accept_invite(&self, code_hash: &str, user: UserId, now_ms: i64) -> Result<Accepted, StoreError>;

    /// The invite links of `room` that still work.
    async fn invites(&self, room: &str, now_ms: i64) -> Result<Vec<StoredInvite>, StoreError>;

    /// Revokes invite `id` of `room`; whether there was one.
    async fn revoke_invite(&self, room: &str, id: i64) -> Result<bool, StoreError>;

    /// Makes `user` a `role` of `room` (a member if it was not); false if it owns the room.
    async fn set_role(&self, room: &str, user: UserId, role: Role, now_ms: i64) -> Result<bool, StoreError>;

    /// Sets `room`'s slow mode (0: off).
    async fn set_slow_mode(&self, room: &str, seconds: u32) -> Result<(), StoreError>;

    /// Records a ban (replacing one of the same target).
    async fn ban(&self, ban: NewBan<'_>) -> Result<(), StoreError>;

    /// Lifts a ban; whether there was one.
    async fn unban(&self, room: &str, target: &str) -> Result<bool, StoreError>;

    /// The bans of `room` in force at `now_ms`.
    async fn bans(&self, room: &str, now_ms: i64) -> Result<Vec<StoredBan>, StoreError>;

    /// Every ban in force at `now_ms`, with its room.
    async fn all_bans(&self, now_ms: i64) -> Result<Vec<(String, StoredBan)>, StoreError>;

    /// Records a report of message `message_id` of `room`; its id.
    async fn report(
        &self,
        room: &str,
        message_id: i64,
        reporter: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError>;

    /// `room`'s reports, newest first: the open ones, or all (`open_only` false), at most `limit`.
    async fn reports(&self, room: &str, open_only: bool, limit: i64) -> Result<Vec<StoredReport>, StoreError>;

    /// Closes open report `id` of `room` as `status` (`resolved`, `dismissed`); whether there was one.
    async fn close_report(&self, room: &str, id: i64, status: &str, by: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Resolves every open report of message `message_id` of `room` (it was
    /// deleted); how many there were.
    async fn resolve_reports_of(&self, room: &str, message_id: i64, by: &str, now_ms: i64) -> Result<u64, StoreError>;

    /// Open reports of `room` by `reporter`.
    async fn open_reports_by(&self, room: &str, reporter: &str) -> Result<i64, StoreError>;

    /// Makes `user` a server administrator.
    async fn grant_admin(&self, user: UserId, now_ms: i64) -> Result<(), StoreError>;

    /// Appends to the audit log.
    async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The newest `limit` entries of `room`'s audit log, newest first.
    async fn audit_log(&self, room: &str, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// Closes the connections, at shutdown (before the history's, as
    /// [`crate::accounts::store::AccountStore::close`] explains).
    async fn close(&self);
}
