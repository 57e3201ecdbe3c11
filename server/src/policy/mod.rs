//! Who may enter which room, and the moderators' tools: created rooms
//! (open or private), their members and invite links, bans, kicks and slow
//! mode, and the rules ([`rules::decide`]) that the socket sessions and the
//! HTTP API both apply.
//!
//! A join asks [`RoomPolicy::may_read`], answered from a per-node cache
//! ([`cache`]) that a room's change clears on every node ([`relay`]); the
//! session then watches its room ([`changes`]) and checks again when it
//! changes, so a member removed or banned on any node stops receiving the
//! room at once, and one kicked ([`kicks`]) leaves it. Posts pass the room's
//! slow mode ([`slow_mode`]). When the database cannot answer, sessions go
//! by what the node knows ([`known`]: private rooms, bans in force). The
//! HTTP API's decisions read the database ([`RoomPolicy::fresh_standing`]).

pub mod cache;
pub mod changes;
pub mod kicks;
pub mod known;
pub mod relay;
pub mod rules;
pub mod slow_mode;
pub mod sql;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chat_shared::RoomName;
use chat_shared::api::Role;
use prometheus_client::metrics::counter::Counter;

use cache::StandingCache;
use changes::{RoomChanges, RoomWatch};
use kicks::Kicks;
use known::{Known, KnownBan};
use relay::{ChangeRelay, RoomChange};
use rules::{Action, Caller, Denial, Party, Standing, decide};
use slow_mode::SlowModeGate;
use store::RoomStore;

use crate::accounts::name_key::name_key;
use crate::accounts::store::{SessionUser, UserId};
use crate::store::StoreError;

pub use crate::accounts::now_ms;

/// Created rooms, who may enter them, and their moderation, for this node.
pub struct RoomPolicy {
    store: Arc<dyn RoomStore>,
    /// Standings read from the database (a metric).
    reads: Counter,
    cache: StandingCache,
    changes: RoomChanges,
    kicks: Kicks,
    slow_mode: SlowModeGate,
    /// Which rooms are private (kept out of the room lists everyone sees)
    /// and the bans in force, for when the database cannot answer.
    known: Known,
    /// The name keys of the accounts `--admin` names.
    named_admins: HashSet<String>,
    /// Tells the other nodes of changes (several nodes).
    relay: OnceLock<ChangeRelay>,
    /// When a standing's read last failed: for a moment after, joins do not
    /// wait for the database again (each wait is a pool's timeout, seconds),
    /// and sessions fall back on what is known of private rooms.
    store_failed_at: Mutex<Option<Instant>>,
}

/// How long a join waits for a standing's read at most.
const STANDING_READ_PATIENCE: Duration = Duration::from_millis(500);

/// How long after a failed read standings are not read again.
const STORE_FAILURE_HOLDS: Duration = Duration::from_secs(3);

impl RoomPolicy {
    /// The policy of rooms kept in `store`; `alone` when this node is the
    /// only one (it hears every change, so its cache is trusted from the
    /// start); `admins` the names `--admin` gave.
    pub async fn new(
        store: Arc<dyn RoomStore>,
        alone: bool,
        slow_mode: SlowModeGate,
        admins: &[String],
        reads: Counter,
    ) -> Self {
        let policy = Self {
            reads,
            store,
            cache: StandingCache::new(alone),
            changes: RoomChanges::default(),
            kicks: Kicks::default(),
            slow_mode,
            known: Known::default(),
            named_admins: admins.iter().map(|name| name_key(name)).collect(),
            relay: OnceLock::new(),
            store_failed_at: Mutex::default(),
        };
        policy.reload_known().await;
        policy
    }

    /// Hears and tells the other nodes' changes through Redis.
    pub fn relay_through(self: &Arc<Self>, client: redis::Client, epoch: &chat_shared::Epoch) {
        let _ = self.relay.set(ChangeRelay::start(client, epoch, self));
    }

    /// The rooms, durably.
    pub fn store(&self) -> &dyn RoomStore {
        self.store.as_ref()
    }

    /// Whether `room` is private, as far as this node knows (for the room
    /// lists; entering is decided by [`Self::may_read`]).
    pub fn is_private(&self, room: &RoomName) -> bool {
        self.known.is_private(room)
    }

    /// Whether `caller` (from `address`) is known to be banned from `room`
    /// (for when the database cannot answer).
    pub fn is_known_banned(&self, caller: Caller, address: Option<IpAddr>, room: &RoomName) -> bool {
        Self::party(caller, address).is_some_and(|party| self.known.is_banned(room, party, now_ms()))
    }

    /// Who bans and memberships name `caller` by: its account, else its address.
    fn party(caller: Caller, address: Option<IpAddr>) -> Option<Party> {
        match caller {
            Caller::Account(id) => Some(Party::User(id)),
            Caller::Guest | Caller::Token => address.map(Party::Address),
        }
    }

    /// `caller`'s standing in `room` (cached; see the module doc). What the
    /// room is costs one entry per room; who the caller is in it, one per
    /// caller, asked only of private rooms and rooms with bans.
    async fn cached_standing(
        &self,
        caller: Caller,
        address: Option<IpAddr>,
        room: &RoomName,
    ) -> Result<Standing, StoreError> {
        let now = now_ms();
        let load = |party| move || self.read_standing(room, party, now);
        let room_wide = self.cache.get_or_load(room, Party::Anyone, load(Party::Anyone)).await?;
        let mut standing = match Self::party(caller, address) {
            Some(party) if room_wide.private || room_wide.has_bans => {
                self.cache.get_or_load(room, party, load(party)).await?
            }
            _ => room_wide,
        };
        // A ban that ran out since the standing was read no longer counts.
        standing.banned = standing.banned_until_ms.is_some_and(|until| until > now_ms());
        Ok(standing)
    }

    /// Reads a standing, unless the database failed a moment ago.
    async fn read_standing(&self, room: &RoomName, party: Party, now: i64) -> Result<Standing, StoreError> {
        let failed_at = *self.store_failed_at.lock().unwrap_or_else(PoisonError::into_inner);
        if failed_at.is_some_and(|at| at.elapsed() < STORE_FAILURE_HOLDS) {
            return Err(StoreError::Database("the database failed a moment ago".into()));
        }
        self.reads.inc();
        // Bounded well under the pool's own wait: a join must not wait
        // seconds for a database that is gone (a read takes a millisecond).
        let read =
            match tokio::time::timeout(STANDING_READ_PATIENCE, self.store.standing(room.as_str(), party, now)).await {
                Ok(read) => read,
                Err(_) => Err(StoreError::Database("reading a room's standing timed out".into())),
            };
        if let Err(error) = &read {
            tracing::warn!(%error, %room, "reading a room's standing failed; for a moment joins go by what is known");
            *self.store_failed_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        read
    }

    /// Whether `caller` (from `address`) may enter and read `room`.
    pub async fn may_read(
        &self,
        caller: Caller,
        address: Option<IpAddr>,
        room: &RoomName,
    ) -> Result<Result<(), Denial>, StoreError> {
        let verdict = decide(caller, self.cached_standing(caller, address, room).await?, Action::Read);
        if verdict.is_ok() {
            return Ok(verdict);
        }
        // A refusal is read again from the database: the change that lets
        // the caller in (an invite accepted, a ban lifted on another node)
        // may not have reached this node's cache yet. Allows stay cached.
        let party = Self::party(caller, address).unwrap_or(Party::Anyone);
        let mut standing = self.read_standing(room, party, now_ms()).await?;
        standing.banned = standing.banned_until_ms.is_some_and(|until| until > now_ms());
        Ok(decide(caller, standing, Action::Read))
    }

    /// How long `caller` must still wait before posting in `room` under
    /// its slow mode, as `poster`; `None` if it may post now (its next post
    /// then waits). The room's owner, moderators and admins are not slowed.
    pub async fn slow_mode_wait(
        &self,
        caller: Caller,
        address: Option<IpAddr>,
        room: &RoomName,
        poster: impl FnOnce() -> String,
    ) -> Option<u32> {
        let standing = match self.cached_standing(caller, address, room).await {
            Ok(standing) => standing,
            // The database is away: no brake rather than no chat.
            Err(_) => return None,
        };
        if standing.slow_mode_secs == 0 || decide(caller, standing, Action::Moderate).is_ok() {
            return None;
        }
        let wait = Duration::from_secs(u64::from(standing.slow_mode_secs));
        (!self.slow_mode.may_post(room, &poster(), wait).await).then_some(standing.slow_mode_secs)
    }

    /// Whether a session that joined `room` as `name` at `joined` was kicked since.
    pub fn kicked_since(&self, room: &RoomName, name: &str, joined: tokio::time::Instant) -> Option<kicks::Kick> {
        self.kicks.kicked_since(room, name, joined)
    }

    /// `user`'s standing in `room`, read from the database (for the HTTP
    /// API's decisions, which change things), `--admin` included.
    pub async fn fresh_standing(&self, user: &SessionUser, room: &RoomName) -> Result<Standing, StoreError> {
        let mut standing = self.store.standing(room.as_str(), Party::User(user.id), now_ms()).await?;
        standing.admin |= self.named_admins.contains(&name_key(&user.name));
        Ok(standing)
    }

    /// The role of account `user` in `room`, from the database.
    pub async fn role_of(&self, user: UserId, room: &RoomName) -> Result<Option<Role>, StoreError> {
        Ok(self.store.standing(room.as_str(), Party::User(user), now_ms()).await?.role)
    }

    /// Watches `room` for changes (before deciding on a join, so a change
    /// right after the decision is not missed).
    pub fn watch(&self, room: &RoomName) -> RoomWatch {
        self.changes.watch(room)
    }

    /// This node changed what `room` is in the store (made it private):
    /// every node forgets what it knew of it and all the room's sessions
    /// check again.
    pub async fn changed(&self, room: &RoomName) {
        self.announce(RoomChange::of(room, None)).await;
    }

    /// This node changed `party`'s standing in `room` in the store (a member
    /// added or removed, a moderator appointed, a ban lifted; `Anyone`: only
    /// the room's settings, as slow mode): every node forgets that, and only
    /// that party's sessions check again (a change in a room of 10,000 costs
    /// no read per member).
    pub async fn changed_for(&self, room: &RoomName, party: Party) {
        self.announce(RoomChange::of(room, Some(party))).await;
    }

    /// A moderator kicked `name` out of `room`: its sessions there leave, on
    /// every node; with `address_ban`, a guest's session under that name
    /// also bans its address (see [`kicks`]).
    pub async fn kick(&self, room: &RoomName, name: &str, address_ban: Option<kicks::AddressBan>) {
        let change =
            RoomChange { kicked: Some(name.to_owned()), address_ban, ..RoomChange::of(room, Some(Party::Anyone)) };
        self.announce(change).await;
    }

    /// A moderator banned someone from `room` (stored): their sessions there
    /// leave, on every node, even one that cannot read the database now.
    pub async fn ban(&self, room: &RoomName, ban: KnownBan) {
        let concerns = store::party_of_target(&ban.target);
        self.announce(RoomChange { banned: Some(ban), ..RoomChange::of(room, concerns) }).await;
    }

    async fn announce(&self, change: RoomChange) {
        self.heard(&change).await;
        if let Some(relay) = self.relay.get() {
            relay.publish(change).await;
        }
    }

    /// A room changed (here or on another node).
    async fn heard(&self, change: &RoomChange) {
        let room = &change.room;
        if let Some(name) = &change.kicked {
            self.kicks.kicked(room, name, change.address_ban.clone());
        }
        if let Some(ban) = &change.banned {
            self.known.banned(room, ban.clone());
        }
        match change.concerns {
            Some(party) => self.cache.forget_party(room, party),
            None => self.cache.forget(room),
        }
        let now = now_ms();
        let read = async {
            let standing = self.store.standing(room.as_str(), Party::Anyone, now).await?;
            Ok::<_, StoreError>((standing.private, self.store.bans(room.as_str(), now).await?))
        };
        match read.await {
            Ok((private, bans)) => self.known.room_read(room, private, bans.iter().map(KnownBan::from).collect()),
            Err(error) => tracing::warn!(%error, %room, "cannot read a changed room"),
        }
        self.changes.notify(room, change.concerns);
    }

    /// Changes may be missed from now on: nothing cached is trusted, and
    /// every session checks again against the database (a change may have
    /// been missed just before the loss was noticed).
    fn lost(&self) {
        self.cache.set_trusted(false);
        self.changes.notify_all();
    }

    /// Every change is heard again: what was missed meanwhile is read anew,
    /// and every session checks again.
    async fn regained(&self) {
        self.cache.set_trusted(true);
        self.reload_known().await;
        self.changes.notify_all();
    }

    /// Reads which rooms are private and every ban in force.
    async fn reload_known(&self) {
        let read =
            async { Ok::<_, StoreError>((self.store.private_rooms().await?, self.store.all_bans(now_ms()).await?)) };
        match read.await {
            Ok((private, all_bans)) => {
                let private: HashSet<RoomName> =
                    private.into_iter().filter_map(|name| RoomName::parse(name).ok()).collect();
                let mut bans: HashMap<RoomName, Vec<KnownBan>> = HashMap::new();
                for (room, ban) in &all_bans {
                    if let Ok(room) = RoomName::parse(room.as_str()) {
                        bans.entry(room).or_default().push(KnownBan::from(ban));
                    }
                }
                self.known.replace(private, bans);
            }
            Err(error) => tracing::warn!(%error, "cannot read which rooms are private and who is banned"),
        }
    }
}
