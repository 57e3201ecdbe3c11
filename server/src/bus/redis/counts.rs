//! Member counts across nodes, for the room lists: each node writes its own
//! counts to a hash of its own (expiring unless rewritten, so a dead node's
//! members drop out) and reads the other live nodes' (those presence's
//! heartbeat keeps in its set of live nodes), summed, once a second. Counts are what a room list shows, not
//! a guarantee: a second late is fine, nothing waits for them.

use std::sync::Arc;
use std::time::Duration;

use chat_shared::{Epoch, RoomName};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};

use crate::bus::NodeId;
use crate::hub::{OtherNodes, RoomCounts};

/// How often counts are written and read.
const EVERY: Duration = Duration::from_secs(1);

/// How long a node's counts count without being rewritten.
const LIVES: Duration = Duration::from_secs(15);

/// Rewrites unchanged counts this often, so they do not expire.
const REWRITE_EVERY: Duration = Duration::from_secs(5);

struct Exchange {
    connection: ConnectionManager,
    node: NodeId,
    nodes_key: String,
    counts_prefix: String,
    ours: watch::Receiver<Arc<RoomCounts>>,
    theirs: mpsc::UnboundedSender<RoomCounts>,
    last_sent: RoomCounts,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Starts the exchange of `node` for the history `epoch`; it ends when the
/// hub's directory drops its side.
pub fn exchange_counts(client: redis::Client, epoch: &Epoch, node: NodeId) -> redis::RedisResult<OtherNodes> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1);
    let connection = ConnectionManager::new_lazy_with_config(client, config)?;
    let (ours, ours_changes) = watch::channel(Arc::new(RoomCounts::new()));
    let (theirs_sender, theirs) = mpsc::unbounded_channel();
    let exchange = Exchange {
        connection,
        node,
        nodes_key: crate::presence::redis::Keys::new(epoch).nodes(),
        counts_prefix: format!("chat:{}:counts:", epoch.as_str()),
        ours: ours_changes,
        theirs: theirs_sender,
        last_sent: RoomCounts::new(),
    };
    tokio::spawn(exchange.run());
    Ok(OtherNodes { ours, theirs })
}

impl Exchange {
    async fn run(mut self) {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written_at: Option<tokio::time::Instant> = None;
        loop {
            ticks.tick().await;
            if self.theirs.is_closed() {
                return;
            }
            let rewrite = written_at.is_none_or(|at| at.elapsed() >= REWRITE_EVERY);
            if self.ours.has_changed().unwrap_or(false) || rewrite {
                match self.write().await {
                    Ok(()) => written_at = Some(tokio::time::Instant::now()),
                    Err(error) => tracing::debug!(%error, "cannot write member counts to redis"),
                }
            }
            match self.read().await {
                Ok(counts) if counts != self.last_sent => {
                    if self.theirs.send(counts.clone()).is_err() {
                        return;
                    }
                    self.last_sent = counts;
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "cannot read member counts from redis"),
            }
        }
    }

    /// Replaces this node's counts.
    async fn write(&mut self) -> redis::RedisResult<()> {
        let counts = self.ours.borrow_and_update().clone();
        let key = format!("{}{}", self.counts_prefix, self.node);
        let mut pipeline = redis::pipe();
        pipeline.atomic().del(&key).ignore();
        if !counts.is_empty() {
            let fields: Vec<(&str, usize)> = counts.iter().map(|(room, count)| (room.as_str(), *count)).collect();
            pipeline.hset_multiple(&key, &fields).ignore();
            pipeline.pexpire(&key, i64::try_from(millis(LIVES)).unwrap_or(i64::MAX)).ignore();
        }
        pipeline.query_async::<()>(&mut self.connection).await
    }

    /// The live other nodes' counts, summed (a dead node leaves the set when
    /// it is buried, and its counts expire).
    async fn read(&mut self) -> redis::RedisResult<RoomCounts> {
        let nodes: Vec<NodeId> =
            redis::cmd("ZRANGE").arg(&self.nodes_key).arg(0).arg(-1).query_async(&mut self.connection).await?;
        let mut pipeline = redis::pipe();
        let others: Vec<NodeId> = nodes.into_iter().filter(|node| *node != self.node).collect();
        for node in &others {
            pipeline.hgetall(format!("{}{}", self.counts_prefix, node));
        }
        let mut summed = RoomCounts::new();
        if others.is_empty() {
            return Ok(summed);
        }
        let hashes: Vec<Vec<(String, usize)>> = pipeline.query_async(&mut self.connection).await?;
        for (room, count) in hashes.into_iter().flatten() {
            if let Ok(room) = RoomName::parse(room) {
                *summed.entry(room).or_default() += count;
            }
        }
        Ok(summed)
    }
}
