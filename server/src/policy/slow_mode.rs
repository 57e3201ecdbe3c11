//! Slow mode: at most one message per poster per room every N seconds. One
//! node keeps the last posts in memory; several share them in Redis (`SET
//! NX PX`, so two tabs on two nodes cannot both post), and if Redis cannot
//! answer, the post goes through (slow mode is a brake, not a guard).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat_shared::{Epoch, RoomName};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

/// Past this many posters remembered, those whose wait is over are forgotten.
const PRUNE_AT: usize = 10_000;

/// Where the last posts are kept.
pub enum SlowModeGate {
    /// This node's memory: the end of each poster's wait.
    Local(Mutex<HashMap<(RoomName, String), Instant>>),
    /// Redis, for several nodes.
    Shared {
        /// The connection.
        connection: ConnectionManager,
        /// Key prefix (per history epoch).
        prefix: String,
    },
}

impl SlowModeGate {
    /// A gate in this node's memory.
    pub fn local() -> Self {
        Self::Local(Mutex::default())
    }

    /// A gate in Redis, for the history `epoch`.
    pub fn shared(client: redis::Client, epoch: &Epoch) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::Shared { connection, prefix: format!("chat:{}:slow:", epoch.as_str()) })
    }

    /// Whether `poster` may post in `room` now, given `wait` between posts;
    /// if so, its next post waits from now.
    pub async fn may_post(&self, room: &RoomName, poster: &str, wait: Duration) -> bool {
        match self {
            Self::Local(last) => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
                if last.len() >= PRUNE_AT {
                    last.retain(|_, until| *until > now);
                }
                let until = last.entry((room.clone(), poster.to_owned())).or_insert(now);
                if *until > now {
                    return false;
                }
                *until = now + wait;
                true
            }
            Self::Shared { connection, prefix } => {
                let mut connection = connection.clone();
                let key = format!("{prefix}{room}:{poster}");
                let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut connection)
                    .await;
                match set {
                    Ok(set) => set.is_some(),
                    Err(error) => {
                        tracing::warn!(%error, %room, "cannot check slow mode; letting the post through");
                        true
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_post_per_wait_per_poster() {
        let gate = SlowModeGate::local();
        let room = RoomName::lobby();
        let wait = Duration::from_secs(5);
        assert!(gate.may_post(&room, "alice", wait).await);
        assert!(!gate.may_post(&room, "alice", wait).await, "too soon");
        assert!(gate.may_post(&room, "bob", wait).await, "another poster");
        tokio::time::advance(wait).await;
        assert!(gate.may_post(&room, "alice", wait).await, "the wait is over");
    }
}
