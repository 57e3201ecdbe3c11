//! The nemesis: a schedule of faults drawn from the run's seed, injected one
//! at a time (each healed before the next), and what was injected.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::cluster::Cluster;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL a node, then start it again on the same port.
    KillNode,
    /// SIGSTOP a node (at times past the presence burial deadline), then SIGCONT.
    PauseNode,
    /// Kill Redis and start it again empty.
    RestartRedis,
    /// Stop PostgreSQL at once (no checkpoint), then start it.
    RestartPostgres,
    /// Cut a node off from Redis (nothing passes either way), then heal.
    PartitionRedis,
    /// Cut a node off from PostgreSQL, then heal.
    PartitionPostgres,
    /// Cut a node off from both, then heal.
    IsolateNode,
    /// Have Redis close a node's pub/sub connections.
    KillPubSub,
    /// Pass a node's next commit to PostgreSQL and break its connection
    /// before the node hears it succeeded (armed until healed).
    LoseCommitReply,
}

impl FaultKind {
    /// Every kind, as the report lists them.
    pub const ALL: [Self; 9] = [
        Self::KillNode,
        Self::PauseNode,
        Self::RestartRedis,
        Self::RestartPostgres,
        Self::PartitionRedis,
        Self::PartitionPostgres,
        Self::IsolateNode,
        Self::KillPubSub,
        Self::LoseCommitReply,
    ];

    /// Whether it hits one node (rather than a service).
    pub fn hits_a_node(self) -> bool {
        !matches!(self, Self::RestartRedis | Self::RestartPostgres)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KillNode => "kill -9 a node, restart",
            Self::PauseNode => "SIGSTOP a node, SIGCONT",
            Self::RestartRedis => "restart Redis (empty)",
            Self::RestartPostgres => "restart PostgreSQL",
            Self::PartitionRedis => "partition a node from Redis",
            Self::PartitionPostgres => "partition a node from PostgreSQL",
            Self::IsolateNode => "partition a node from both",
            Self::KillPubSub => "Redis kills a node's pub/sub clients",
            Self::LoseCommitReply => "lose a node's commit reply",
        })
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// When it starts, from the start of the run.
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// The node it hits (node faults only).
    pub node: usize,
    /// How long until it is healed.
    pub lasts: Duration,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.as_secs_f64();
        let lasts = self.lasts.as_secs_f64();
        if self.kind.hits_a_node() {
            write!(f, "{at:7.2}s  {} (node {}) for {lasts:.2}s", self.kind, self.node)
        } else {
            write!(f, "{at:7.2}s  {} for {lasts:.2}s", self.kind)
        }
    }
}

/// Draws the faults of a run of `duration` over `nodes` nodes. Kinds are
/// dealt from a shuffled deck of every kind, so each comes up as often as
/// the others (a run of n faults has at least n / 9 of each), in an order
/// that is still random.
pub fn schedule(rng: &mut StdRng, duration: Duration, nodes: usize) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut deck: Vec<FaultKind> = Vec::new();
    let mut at = Duration::from_millis(rng.random_range(1_000..3_000));
    while at < duration {
        if deck.is_empty() {
            deck.extend(FaultKind::ALL);
            deck.shuffle(rng);
        }
        let Some(kind) = deck.pop() else { break };
        let lasts = Duration::from_millis(match kind {
            FaultKind::KillNode => rng.random_range(300..5_000),
            // The presence heartbeat buries a node silent for a few seconds: both sides of it.
            FaultKind::PauseNode => rng.random_range(500..12_000),
            FaultKind::RestartRedis => rng.random_range(100..3_000),
            FaultKind::RestartPostgres => rng.random_range(300..4_000),
            // Past the burial deadline too (ten seconds without a beat).
            FaultKind::PartitionRedis | FaultKind::IsolateNode => rng.random_range(500..14_000),
            FaultKind::PartitionPostgres => rng.random_range(500..6_000),
            FaultKind::KillPubSub => rng.random_range(100..1_000),
            FaultKind::LoseCommitReply => rng.random_range(1_000..4_000),
        });
        let node = rng.random_range(0..nodes.max(1));
        faults.push(Fault { at, kind, node, lasts });
        at += lasts + Duration::from_millis(rng.random_range(300..3_000));
    }
    faults
}

/// What the nemesis did, besides the schedule.
#[derive(Debug, Default)]
pub struct Injected {
    /// The faults injected (the run may end before the schedule does).
    pub faults: Vec<Fault>,
    /// Commit replies actually lost.
    pub commit_replies_lost: usize,
    /// Pub/sub connections Redis closed.
    pub pubsub_clients_killed: usize,
    /// When each fault began and was healed, in seconds since the Unix epoch
    /// (the clock of the nodes' logs).
    pub windows: Vec<(Fault, f64, f64)>,
}

/// Now, in seconds since the Unix epoch.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

/// Injects each of `lanes` (schedules run side by side) into `cluster`,
/// each fault at its time from `start` and healed on its own after it
/// lasted.
pub async fn inject(
    cluster: &mut Cluster,
    lanes: &[Vec<Fault>],
    start: tokio::time::Instant,
    until: Duration,
) -> Injected {
    let shared = tokio::sync::Mutex::new(cluster);
    let runs = lanes.iter().map(|lane| inject_lane(&shared, lane, start, until));
    let mut injected = Injected::default();
    for lane in futures_util::future::join_all(runs).await {
        injected.faults.extend(lane.faults);
        injected.pubsub_clients_killed += lane.pubsub_clients_killed;
        injected.windows.extend(lane.windows);
    }
    injected.faults.sort_by_key(|fault| fault.at);
    let cluster = shared.into_inner();
    injected.commit_replies_lost = cluster.postgres_proxies.iter().map(|proxy| proxy.commit_replies_lost()).sum();
    injected
}

/// One lane of faults, the cluster locked only while a fault is injected or healed.
async fn inject_lane(
    cluster: &tokio::sync::Mutex<&mut Cluster>,
    faults: &[Fault],
    start: tokio::time::Instant,
    until: Duration,
) -> Injected {
    let mut injected = Injected::default();
    for fault in faults {
        if fault.at >= until {
            break;
        }
        tokio::time::sleep_until(start + fault.at).await;
        println!("fault {fault}");
        let began = epoch_now();
        {
            let mut cluster = cluster.lock().await;
            match fault.kind {
                FaultKind::KillNode => cluster.nodes[fault.node].kill().await,
                FaultKind::PauseNode => cluster.nodes[fault.node].pause().await,
                FaultKind::RestartRedis => cluster.redis.kill().await,
                FaultKind::RestartPostgres => cluster.postgres.stop().await,
                FaultKind::PartitionRedis => cluster.redis_proxies[fault.node].partition(),
                FaultKind::PartitionPostgres => cluster.postgres_proxies[fault.node].partition(),
                FaultKind::IsolateNode => {
                    cluster.redis_proxies[fault.node].partition();
                    cluster.postgres_proxies[fault.node].partition();
                }
                FaultKind::KillPubSub => {
                    let ends = cluster.redis_proxies[fault.node].upstream_ends();
                    injected.pubsub_clients_killed += cluster.redis.kill_pubsub_clients(&ends).await;
                }
                FaultKind::LoseCommitReply => cluster.postgres_proxies[fault.node].lose_next_commit_reply(),
            }
        }
        injected.faults.push(*fault);
        tokio::time::sleep(fault.lasts).await;
        {
            let mut cluster = cluster.lock().await;
            match fault.kind {
                FaultKind::KillNode => cluster.nodes[fault.node].restart().await,
                FaultKind::PauseNode => cluster.nodes[fault.node].resume().await,
                FaultKind::RestartRedis => cluster.redis.restart().await,
                FaultKind::RestartPostgres => cluster.postgres.start().await,
                FaultKind::PartitionRedis => cluster.redis_proxies[fault.node].reconnect(),
                FaultKind::PartitionPostgres => cluster.postgres_proxies[fault.node].reconnect(),
                FaultKind::IsolateNode => {
                    cluster.redis_proxies[fault.node].reconnect();
                    cluster.postgres_proxies[fault.node].reconnect();
                }
                FaultKind::KillPubSub => {}
                FaultKind::LoseCommitReply => cluster.postgres_proxies[fault.node].disarm(),
            }
        }
        injected.windows.push((*fault, began, epoch_now()));
    }
    injected
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_kind_comes_up_as_often_as_the_others_and_a_seed_replays_its_schedule() {
        for seed in 0..20 {
            let faults = schedule(&mut StdRng::seed_from_u64(seed), Duration::from_secs(600), 3);
            let count = |kind: FaultKind| faults.iter().filter(|fault| fault.kind == kind).count();
            let (least, most) = FaultKind::ALL
                .iter()
                .fold((usize::MAX, 0), |(least, most), kind| (least.min(count(*kind)), most.max(count(*kind))));
            assert!(most - least <= 1, "seed {seed}: {least}..{most} of a kind");
            assert!(least >= 10, "seed {seed}: only {least} of some kind in 600 s (one schedule)");
            assert!(faults.windows(2).all(|pair| pair[0].at + pair[0].lasts < pair[1].at), "one at a time");
            let again = schedule(&mut StdRng::seed_from_u64(seed), Duration::from_secs(600), 3);
            let same = |a: &Fault, b: &Fault| (a.at, a.kind, a.node, a.lasts) == (b.at, b.kind, b.node, b.lasts);
            assert!(faults.len() == again.len() && faults.iter().zip(&again).all(|(a, b)| same(a, b)));
        }
    }
}
