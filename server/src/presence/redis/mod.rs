//! Presence shared by several nodes, in Redis: each nickname held in a room
//! is a key whose fields name its holders (node and connection, valued a
//! hash of the browser tab's secret and the user's fingerprint), claimed
//! and released by Lua scripts, so a claim is atomic across nodes. Entries
//! live [`ENTRY_TTL`] unless a node's heartbeat refreshes them: the names of
//! a node that dies (kill -9, a lost machine) come free within that time,
//! or, held also by the user's devices on live nodes, when it is buried.
//!
//! A room's names are also kept in a sorted set (for the member list in
//! `joined`); names whose entry expired are dropped from it when listed.
//!
//! Each node also beats every second (`heartbeat`): a node that misses ten
//! seconds of beats is taken for dead by the first survivor to notice, which
//! frees its names at once and tells their rooms they left (nobody else
//! would: the dead node cannot). If it was only late, it learns so at its
//! next beat, takes its names again and tells the rooms they are back.

mod heartbeat;
mod keys;
mod scripts;

pub use keys::Keys;
use keys::{held_field, holder_field};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use chat_shared::{Epoch, Nickname, RoomName};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

use tokio::sync::mpsc;

use super::{Claim, Claimant, Claimed, Departure, LostName, Presence, PresenceError, SHARED_HOLDERS_MAX};
use crate::bus::{NodeId, Peer};
use crate::hub::ConnectionId;

/// How long a name stays held without its node's heartbeat.
pub const ENTRY_TTL: Duration = Duration::from_secs(15);

/// How long a room's member list is reused: a crowd joining one room reads
/// it a few times a second, not once per join.
const LIST_REUSE: Duration = Duration::from_millis(500);

/// A name a connection of this node holds, to refresh.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Held {
    room: RoomName,
    nick: Nickname,
    connection: ConnectionId,
}

impl Held {
    /// Its field in its node's held hash.
    fn field(&self) -> String {
        held_field(&self.room, self.connection, &self.nick)
    }
}

/// Presence in Redis, shared by every node of one history.
pub struct RedisPresence {
    connection: ConnectionManager,
    epoch: Epoch,
    keys: Keys,
    node: NodeId,
    scripts: Scripts,
    /// How long an entry lives without a refresh.
    ttl: Duration,
    /// What this node's connections hold, and the holder value of each.
    held: Mutex<HashMap<Held, String>>,
    /// What its connections gave back that Redis has not taken back yet
    /// (the release failed), or may hold without this node knowing (a
    /// claim whose answer never came): released again at every refresh,
    /// once their claim's deadline has passed. Left in an entry its user's
    /// other devices keep alive, such a field would hold the name after
    /// they all left.
    unreleased: Mutex<HashMap<Held, Unreleased>>,
    /// Redis's clock (ms since the epoch) at a moment of this node's
    /// (just before its last beat was sent): the scripts' deadlines are
    /// set by it, so nodes' clocks need not agree with Redis's.
    redis_clock: Mutex<Option<(Instant, u64)>>,
    /// Member lists read lately, reused for [`LIST_REUSE`].
    lists: Mutex<HashMap<RoomName, Listed>>,
    /// The incarnation of presence in Redis this node last saw (a new one:
    /// Redis lost its data, and this node takes its names back at once).
    incarnation: Mutex<Option<String>>,
    /// Where names found taken by others are reported, and the other end,
    /// until [`RedisPresence::lost_names`] takes it.
    lost: mpsc::UnboundedSender<LostName>,
    lost_names: Mutex<Option<mpsc::UnboundedReceiver<LostName>>>,
    /// When this presence started; the lease is counted from it.
    started: Instant,
    /// Until when (ms after `started`) this node's names are surely still
    /// its own: its last beat that Redis took, plus the time the others
    /// wait before burying a silent node, less a margin.
    lease_until: AtomicU64,
    /// The history has messages: other nodes may hold names, so a mark this
    /// node makes after Redis lost its data gives them the full grace even
    /// if it just started.
    history_in_use: AtomicBool,
}

/// How long a node waits for Redis to answer one command or script.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A holder value to give back, and from when (see `unreleased`).
#[derive(Debug, Clone)]
struct Unreleased {
    value: String,
    not_before: Instant,
}

/// A room's member list as read at `at`, for up to `limit` names.
struct Listed {
    at: Instant,
    limit: usize,
    names: Arc<[Nickname]>,
}

struct Scripts {
    claim: redis::Script,
    depart: redis::Script,
    release: redis::Script,
    list: redis::Script,
    beat: redis::Script,
    bury: redis::Script,
    free: redis::Script,
}

fn failed(error: redis::RedisError) -> PresenceError {
    PresenceError(Box::new(error))
}

/// A guest's owner in a holder value: its names have one holder.
const GUEST: &str = "-";

/// The value of a holder's field: its tab's secret hashed (Redis need not
/// learn it to compare it) and its user's fingerprint ([`GUEST`] for none).
fn holder_value(claimant: &Claimant) -> String {
    let tab = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(claimant.tab.as_str().as_bytes()));
    let owner = claimant.owner.as_ref().map_or_else(|| GUEST.to_owned(), super::Owner::fingerprint);
    format!("{tab} {owner}")
}

/// Whether a holder value is a guest's.
fn is_guests(value: &str) -> bool {
    value.rsplit(' ').next() == Some(GUEST)
}

impl RedisPresence {
    /// Presence for `node` of the history `epoch` on `client`'s Redis
    /// (connected on first use, reconnected by itself). Starts the heartbeat
    /// task, which ends when the presence is dropped.
    /// `in_use`: the history has messages, so other nodes may hold names (a
    /// node that starts after Redis lost its data must not take it for a
    /// new history, and gives them the full grace).
    pub fn start(client: redis::Client, epoch: &Epoch, node: NodeId, in_use: bool) -> redis::RedisResult<Arc<Self>> {
        Self::start_inner(client, epoch, node, ENTRY_TTL, in_use)
    }

    /// Like [`RedisPresence::start`] for a history not in use, with entries
    /// that live `ttl` unrefreshed (and every other time scaled with it):
    /// for tests of a node that dies.
    pub fn start_with_ttl(
        client: redis::Client,
        epoch: &Epoch,
        node: NodeId,
        ttl: Duration,
    ) -> redis::RedisResult<Arc<Self>> {
        Self::start_inner(client, epoch, node, ttl, false)
    }

    fn start_inner(
        client: redis::Client,
        epoch: &Epoch,
        node: NodeId,
        ttl: Duration,
        in_use: bool,
    ) -> redis::RedisResult<Arc<Self>> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let (lost, lost_names) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            connection,
            epoch: epoch.clone(),
            keys: Keys::new(epoch),
            node,
            ttl,
            scripts: Scripts {
                claim: redis::Script::new(scripts::CLAIM),
                depart: redis::Script::new(scripts::DEPART),
                release: redis::Script::new(scripts::RELEASE),
                list: redis::Script::new(scripts::LIST),
                beat: redis::Script::new(scripts::BEAT),
                bury: redis::Script::new(scripts::BURY),
                free: redis::Script::new(scripts::FREE),
            },
            held: Mutex::default(),
            unreleased: Mutex::default(),
            redis_clock: Mutex::default(),
            lists: Mutex::default(),
            incarnation: Mutex::default(),
            lost,
            lost_names: Mutex::new(Some(lost_names)),
            started: Instant::now(),
            lease_until: AtomicU64::new(0),
            history_in_use: AtomicBool::new(in_use),
        });
        tokio::spawn(heartbeat::run(Arc::downgrade(&presence)));
        tokio::spawn(heartbeat::watch_lease(Arc::downgrade(&presence)));
        Ok(presence)
    }

    /// Beats once now (the heartbeat beats every second from then on), and
    /// waits until presence takes claims: in a new history (or a Redis that
    /// lost its data) they wait for the incarnation mark a beat makes, and
    /// for the other nodes' next beats.
    pub async fn first_beat(&self) -> Result<(), PresenceError> {
        let ready_in = self.beat().await?;
        tokio::time::sleep(ready_in).await;
        Ok(())
    }

    /// The names of this node's connections that others took meanwhile (see
    /// [`LostName`]), for the hub to close them; `None` after the first call.
    pub fn lost_names(&self) -> Option<mpsc::UnboundedReceiver<LostName>> {
        self.lost_names.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Milliseconds since this presence started.
    fn elapsed_millis(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    fn ttl_millis(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn held(&self) -> MutexGuard<'_, HashMap<Held, String>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unreleased(&self) -> MutexGuard<'_, HashMap<Held, Unreleased>> {
        self.unreleased.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes Redis's clock: `redis_now` ms, read by a script sent at `sent_at`.
    fn set_redis_clock(&self, sent_at: Instant, redis_now: u64) {
        *self.redis_clock.lock().unwrap_or_else(PoisonError::into_inner) = Some((sent_at, redis_now));
    }

    /// The deadline of a script sent now, by Redis's clock: past it, the
    /// node has given up on it (0, none, before the first beat). Counted
    /// from the send of the beat that read the clock, so a little late,
    /// never early.
    fn deadline(&self) -> u64 {
        let clock = *self.redis_clock.lock().unwrap_or_else(PoisonError::into_inner);
        clock.map_or(0, |(at, redis_now)| {
            let since = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
            let timeout = u64::try_from(RESPONSE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
            redis_now.saturating_add(since).saturating_add(timeout)
        })
    }

    /// Gives `held` back later (see `unreleased`), not before `not_before`.
    fn give_back_later(&self, held: Held, value: String, not_before: Instant) {
        self.unreleased().insert(held, Unreleased { value, not_before });
    }

    /// Runs the release script for `held`, holder value `value`.
    async fn give_back(&self, held: &Held, value: &str) -> Result<(), PresenceError> {
        let mut connection = self.connection.clone();
        let _: i64 = self
            .scripts
            .release
            .key(self.keys.entry(&held.room, &held.nick))
            .key(self.keys.names(&held.room))
            .key(self.keys.held_by(self.node))
            .arg(holder_field(Peer { node: self.node, connection: held.connection }))
            .arg(value)
            .arg(held.nick.as_str())
            .arg(held.field())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Releases again what failed to be released (see `unreleased`); how
    /// many are still waiting.
    async fn release_again(&self) -> usize {
        let now = Instant::now();
        let due: Vec<(Held, String)> = self
            .unreleased()
            .iter()
            .filter(|(_, waiting)| waiting.not_before <= now)
            .map(|(held, waiting)| (held.clone(), waiting.value.clone()))
            .collect();
        for (held, value) in due {
            if self.give_back(&held, &value).await.is_err() {
                break;
            }
            let mut unreleased = self.unreleased();
            if unreleased.get(&held).is_some_and(|waiting| waiting.value == value) {
                unreleased.remove(&held);
            }
        }
        self.unreleased().len()
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn claim(
        &self,
        room: &RoomName,
        nick: &Nickname,
        claimant: &Claimant,
        member: Peer,
    ) -> Result<Claimed, PresenceError> {
        let value = holder_value(claimant);
        let held = |connection| Held { room: room.clone(), nick: nick.clone(), connection };
        let mut connection = self.connection.clone();
        let sent_at = Instant::now();
        let answer: Result<Vec<String>, _> = self
            .scripts
            .claim
            .key(self.keys.entry(room, nick))
            .key(self.keys.names(room))
            .key(self.keys.held_by(self.node))
            .key(self.keys.incarnation())
            .arg(holder_field(member))
            .arg(&value)
            .arg(self.ttl_millis())
            .arg(nick.as_str())
            .arg(room.as_str())
            .arg(self.keys.held_prefix())
            .arg(SHARED_HOLDERS_MAX)
            .arg(self.deadline())
            .invoke_async(&mut connection)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                // It may have been carried out all the same (its answer lost):
                // given back once its deadline has passed, unless claimed again.
                self.give_back_later(held(member.connection), value, sent_at + 2 * RESPONSE_TIMEOUT);
                return Err(failed(error));
            }
        };
        let unexpected = || PresenceError(format!("unexpected claim answer {answer:?}").into());
        let (what, size) = match answer.split_last() {
            Some((size, what)) => (what, size.parse().map_err(|_| unexpected())?),
            None => return Err(unexpected()),
        };
        let claim = match what.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["free"] => Claim::Free,
            ["held"] => Claim::Held,
            ["replaces", node, connection] => match (node.parse(), connection.parse()) {
                (Ok(node), Ok(connection)) => Claim::Replaces(Peer { node, connection }),
                _ => return Err(PresenceError(format!("unreadable holder {node} {connection}").into())),
            },
            ["shared"] => Claim::Shared,
            ["leaving"] => Claim::Leaving,
            ["too_many"] => Claim::TooMany,
            ["taken"] => Claim::Taken,
            ["recovering"] => Claim::Recovering,
            ["late"] => return Err(PresenceError("the claim reached redis after its deadline".into())),
            _ => return Err(unexpected()),
        };
        if let Claim::Replaces(stale) = claim
            && stale.node == self.node
        {
            self.held().remove(&held(stale.connection));
        }
        if matches!(claim, Claim::Free | Claim::Replaces(_) | Claim::Shared | Claim::Held) {
            // Its field is this claim's now: an earlier release of it must not be retried.
            self.unreleased().remove(&held(member.connection));
        }
        if matches!(claim, Claim::Free | Claim::Replaces(_) | Claim::Shared) {
            self.held().insert(held(member.connection), value);
        }
        Ok(Claimed { claim, room_size: size })
    }

    async fn depart(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<Departure, PresenceError> {
        let held = Held { room: room.clone(), nick: nick.clone(), connection: member.connection };
        let value = match self.held().get(&held) {
            // A guest's name has no other holder, and nobody waits for it to leave.
            Some(value) if !is_guests(value) => value.clone(),
            _ => return Ok(Departure::Last),
        };
        let mut connection = self.connection.clone();
        let answer: String = self
            .scripts
            .depart
            .key(self.keys.entry(room, nick))
            .key(self.keys.names(room))
            .key(self.keys.held_by(self.node))
            .arg(holder_field(member))
            .arg(&value)
            .arg(nick.as_str())
            .arg(held.field())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        match answer.as_str() {
            "last" => Ok(Departure::Last),
            "shared" | "gone" => {
                let mut all = self.held();
                if all.get(&held) == Some(&value) {
                    all.remove(&held);
                }
                Ok(if answer == "shared" { Departure::Shared } else { Departure::Last })
            }
            _ => Err(PresenceError(format!("unexpected departure answer {answer:?}").into())),
        }
    }

    async fn release(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<(), PresenceError> {
        let held = Held { room: room.clone(), nick: nick.clone(), connection: member.connection };
        // Only what this connection holds is given back (not a successor's).
        let Some(value) = self.held().remove(&held) else { return Ok(()) };
        if let Err(error) = self.give_back(&held, &value).await {
            self.give_back_later(held, value, Instant::now());
            return Err(error);
        }
        Ok(())
    }

    async fn members(&self, room: &RoomName, limit: usize) -> Result<Arc<[Nickname]>, PresenceError> {
        let now = Instant::now();
        if let Some(listed) = self.lists.lock().unwrap_or_else(PoisonError::into_inner).get(room)
            && listed.limit == limit
            && now.duration_since(listed.at) < LIST_REUSE
        {
            return Ok(listed.names.clone());
        }
        let list = self.members_now(room, limit).await?;
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        lists.retain(|_, listed| now.duration_since(listed.at) < LIST_REUSE);
        lists.insert(room.clone(), Listed { at: now, limit, names: list.clone() });
        Ok(list)
    }

    fn lease_expired(&self) -> bool {
        self.elapsed_millis(Instant::now()) > self.lease_until.load(Ordering::Acquire)
    }

    async fn members_now(&self, room: &RoomName, limit: usize) -> Result<Arc<[Nickname]>, PresenceError> {
        let mut connection = self.connection.clone();
        let names: Vec<String> = self
            .scripts
            .list
            .key(self.keys.names(room))
            .key(self.keys.incarnation())
            .arg(limit)
            .arg(self.keys.entry_prefix(room))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(names.into_iter().filter_map(|name| Nickname::parse(name).ok()).collect())
    }
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence").field("node", &self.node).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::ClientId;

    #[test]
    fn a_holder_value_hides_the_tab_secret_and_tells_guests_apart() {
        let tab = ClientId::parse("secret-tab").expect("tab");
        let guest = holder_value(&Claimant::guest(tab.clone()));
        assert!(!guest.contains("secret-tab"), "{guest}");
        assert_eq!(guest.split(' ').count(), 2, "the scripts split on spaces");
        assert!(is_guests(&guest));
        let user = holder_value(&Claimant { tab, owner: Some(super::super::Owner::token("a b c")) });
        assert_eq!(user.split(' ').count(), 2, "a token's sub may have spaces; its fingerprint has none");
        assert!(!is_guests(&user));
        assert_eq!(user.split(' ').next(), guest.split(' ').next(), "one tab, one hash");
    }
}
