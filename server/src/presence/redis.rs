//! Presence shared by several nodes, in Redis: each nickname held in a room
//! is a key whose value names its holder (node, connection, and a hash of
//! its browser tab's secret), claimed and released by Lua scripts, so a claim
//! is atomic across nodes. Entries live [`ENTRY_TTL`] unless their node's
//! heartbeat refreshes them: the names of a node that dies (kill -9, a lost
//! machine) come free within that time.
//!
//! A room's names are also kept in a sorted set (for the member list in
//! `joined`); names whose entry expired are dropped from it when listed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use chat_shared::{ClientId, Epoch, Nickname, RoomName};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

use super::{Claim, Presence, PresenceError};
use crate::bus::{NodeId, Peer};

/// How long a name stays held without its node's heartbeat.
pub const ENTRY_TTL: Duration = Duration::from_secs(15);

/// How long a room's member list is reused: a crowd joining one room reads
/// it a few times a second, not once per join.
const LIST_REUSE: Duration = Duration::from_millis(500);

/// Claims `KEYS[1]` (the name's entry) for `ARGV[1]` (the holder: node,
/// connection, tab hash); adds `ARGV[3]` to `KEYS[2]` (the room's names).
const CLAIM: &str = r"
local current = redis.call('GET', KEYS[1])
local function take()
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
end
if not current then take() return {'free'} end
local node, connection, tab = string.match(current, '^(%S+) (%S+) (%S+)$')
local mine_node, mine_connection, mine_tab = string.match(ARGV[1], '^(%S+) (%S+) (%S+)$')
if node == mine_node and connection == mine_connection then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'held'}
end
if tab == mine_tab then take() return {'replaces', node, connection} end
return {'taken'}
";

/// Gives `KEYS[1]` back if `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
";

/// Keeps `KEYS[1]` for `ARGV[1]`: refreshed if it holds it, taken again if
/// the entry is gone (Redis restarted empty); 0 if someone else has it now.
const REFRESH: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  return 1
end
return 0
";

/// The first `ARGV[1]` names of `KEYS[1]` whose entries (`ARGV[2]` .. name)
/// still exist; the others are dropped from the set.
const LIST: &str = r"
local wanted = tonumber(ARGV[1])
local found = {}
local start = 0
while #found < wanted do
  local names = redis.call('ZRANGE', KEYS[1], start, start + wanted - 1)
  if #names == 0 then break end
  for _, name in ipairs(names) do
    if redis.call('EXISTS', ARGV[2] .. name) == 1 then
      if #found < wanted then table.insert(found, name) end
      start = start + 1
    else
      redis.call('ZREM', KEYS[1], name)
    end
  end
end
return found
";

/// A name this node holds, to refresh.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Held {
    room: RoomName,
    nick: Nickname,
}

/// Presence in Redis, shared by every node of one history.
pub struct RedisPresence {
    connection: ConnectionManager,
    prefix: String,
    node: NodeId,
    scripts: Scripts,
    /// How long an entry lives without a refresh.
    ttl: Duration,
    /// What this node holds, and the holder value of each.
    held: Arc<Mutex<HashMap<Held, String>>>,
    /// Member lists read lately, reused for [`LIST_REUSE`].
    lists: Mutex<HashMap<RoomName, Listed>>,
}

/// A room's member list as read at `at`, for up to `limit` names.
struct Listed {
    at: Instant,
    limit: usize,
    names: Arc<[Nickname]>,
}

struct Scripts {
    claim: redis::Script,
    release: redis::Script,
    list: redis::Script,
}

fn failed(error: redis::RedisError) -> PresenceError {
    PresenceError(Box::new(error))
}

/// The holder value: node, connection, and the tab's secret hashed (Redis
/// need not learn it to compare it).
fn holder(member: Peer, tab: &ClientId) -> String {
    let tab = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(tab.as_str().as_bytes()));
    format!("{} {} {tab}", member.node, member.connection)
}

impl RedisPresence {
    /// Presence for `node` of the history `epoch` on `client`'s Redis
    /// (connected on first use, reconnected by itself). Starts the heartbeat
    /// task, which ends when the presence is dropped.
    pub fn start(client: redis::Client, epoch: &Epoch, node: NodeId) -> redis::RedisResult<Arc<Self>> {
        Self::start_with_ttl(client, epoch, node, ENTRY_TTL)
    }

    /// Like [`RedisPresence::start`], with entries that live `ttl` unrefreshed
    /// (refreshed every third of it): for tests of a node that dies.
    pub fn start_with_ttl(
        client: redis::Client,
        epoch: &Epoch,
        node: NodeId,
        ttl: Duration,
    ) -> redis::RedisResult<Arc<Self>> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let presence = Arc::new(Self {
            connection,
            prefix: format!("chat:{}:", epoch.as_str()),
            node,
            ttl,
            scripts: Scripts {
                claim: redis::Script::new(CLAIM),
                release: redis::Script::new(RELEASE),
                list: redis::Script::new(LIST),
            },
            held: Arc::default(),
            lists: Mutex::default(),
        });
        tokio::spawn(heartbeat(Arc::downgrade(&presence)));
        Ok(presence)
    }

    fn entry_key(&self, room: &RoomName, nick: &Nickname) -> String {
        format!("{}nick:{}:{}", self.prefix, room.as_str(), nick.as_str())
    }

    fn entry_prefix(&self, room: &RoomName) -> String {
        format!("{}nick:{}:", self.prefix, room.as_str())
    }

    fn names_key(&self, room: &RoomName) -> String {
        format!("{}names:{}", self.prefix, room.as_str())
    }

    fn ttl_millis(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn held(&self) -> MutexGuard<'_, HashMap<Held, String>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refreshes every name this node holds; returns how many another node took meanwhile.
    async fn refresh(&self) -> Result<usize, PresenceError> {
        let held: Vec<(Held, String)> = self.held().iter().map(|(h, v)| (h.clone(), v.clone())).collect();
        if held.is_empty() {
            return Ok(0);
        }
        let mut connection = self.connection.clone();
        // Loaded each time: Redis may have restarted without it since.
        let sha: String =
            redis::cmd("SCRIPT").arg("LOAD").arg(REFRESH).query_async(&mut connection).await.map_err(failed)?;
        let mut lost = 0;
        // Pipelined in chunks: one round trip per thousand names.
        for chunk in held.chunks(1000) {
            let mut pipeline = redis::pipe();
            for (entry, value) in chunk {
                pipeline
                    .cmd("EVALSHA")
                    .arg(&sha)
                    .arg(2)
                    .arg(self.entry_key(&entry.room, &entry.nick))
                    .arg(self.names_key(&entry.room))
                    .arg(value)
                    .arg(self.ttl_millis())
                    .arg(entry.nick.as_str());
            }
            let kept: Vec<i64> = pipeline.query_async(&mut connection).await.map_err(failed)?;
            lost += kept.iter().filter(|k| **k == 0).count();
        }
        Ok(lost)
    }
}

/// Refreshes the node's names every third of their lifetime while the presence lives.
async fn heartbeat(presence: std::sync::Weak<RedisPresence>) {
    let Some(every) = presence.upgrade().map(|presence| presence.ttl / 3) else { return };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(presence) = presence.upgrade() else { return };
        match presence.refresh().await {
            Ok(0) => {}
            Ok(lost) => tracing::warn!(lost, "names held here were taken on another node while redis was away"),
            Err(error) => tracing::warn!(%error, "refreshing presence failed; retrying"),
        }
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn claim(
        &self,
        room: &RoomName,
        nick: &Nickname,
        tab: &ClientId,
        member: Peer,
    ) -> Result<Claim, PresenceError> {
        let value = holder(member, tab);
        let mut connection = self.connection.clone();
        let answer: Vec<String> = self
            .scripts
            .claim
            .key(self.entry_key(room, nick))
            .key(self.names_key(room))
            .arg(&value)
            .arg(self.ttl_millis())
            .arg(nick.as_str())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        let claim = match answer.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["free"] => Claim::Free,
            ["held"] => Claim::Held,
            ["replaces", node, connection] => match (node.parse(), connection.parse()) {
                (Ok(node), Ok(connection)) => Claim::Replaces(Peer { node, connection }),
                _ => return Err(PresenceError(format!("unreadable holder {node} {connection}").into())),
            },
            ["taken"] => Claim::Taken,
            other => return Err(PresenceError(format!("unexpected claim answer {other:?}").into())),
        };
        if matches!(claim, Claim::Free | Claim::Replaces(_)) {
            self.held().insert(Held { room: room.clone(), nick: nick.clone() }, value);
        }
        Ok(claim)
    }

    async fn release(&self, room: &RoomName, nick: &Nickname, member: Peer) -> Result<(), PresenceError> {
        let held = Held { room: room.clone(), nick: nick.clone() };
        // Only what this connection holds is given back (not a successor's).
        let value = {
            let mut all = self.held();
            match all.get(&held) {
                Some(value) if value.starts_with(&format!("{} {} ", member.node, member.connection)) => {
                    all.remove(&held)
                }
                _ => None,
            }
        };
        let Some(value) = value else { return Ok(()) };
        let mut connection = self.connection.clone();
        let _: i64 = self
            .scripts
            .release
            .key(self.entry_key(room, nick))
            .key(self.names_key(room))
            .arg(value)
            .arg(nick.as_str())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
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
        let mut connection = self.connection.clone();
        let names: Vec<String> = self
            .scripts
            .list
            .key(self.names_key(room))
            .arg(limit)
            .arg(self.entry_prefix(room))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        let list: Arc<[Nickname]> = names.into_iter().filter_map(|name| Nickname::parse(name).ok()).collect();
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        lists.retain(|_, listed| now.duration_since(listed.at) < LIST_REUSE);
        lists.insert(room.clone(), Listed { at: now, limit, names: list.clone() });
        Ok(list)
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

    #[test]
    fn the_holder_names_node_and_connection_but_not_the_tab_secret() {
        let tab = ClientId::parse("secret-tab").expect("tab");
        let value = holder(Peer { node: 7, connection: 42 }, &tab);
        assert!(value.starts_with("7 42 "), "{value}");
        assert!(!value.contains("secret-tab"));
        assert_eq!(value.split(' ').count(), 3, "the scripts split on spaces");
        assert_eq!(value, holder(Peer { node: 7, connection: 42 }, &tab), "stable");
    }
}
