//! The nemesis: a schedule of faults drawn from the run's seed, injected one
//! at a time (each healed before the next), and what was injected.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

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
}

impl FaultKind {
    /// Every kind, as the report lists them.
    pub const ALL: [Self; 4] = [Self::KillNode, Self::PauseNode, Self::RestartRedis, Self::RestartPostgres];
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KillNode => "kill -9 a node, restart",
            Self::PauseNode => "SIGSTOP a node, SIGCONT",
            Self::RestartRedis => "restart Redis (empty)",
            Self::RestartPostgres => "restart PostgreSQL",
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
        match self.kind {
            FaultKind::KillNode | FaultKind::PauseNode => {
                write!(f, "{at:7.2}s  {} (node {}) for {lasts:.2}s", self.kind, self.node)
            }
            _ => write!(f, "{at:7.2}s  {} for {lasts:.2}s", self.kind),
        }
    }
}

/// Draws the faults of a run of `duration` over `nodes` nodes.
pub fn schedule(rng: &mut StdRng, duration: Duration, nodes: usize) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut at = Duration::from_millis(rng.random_range(1_000..3_000));
    while at < duration {
        let kind = FaultKind::ALL[rng.random_range(0..FaultKind::ALL.len())];
        let lasts = Duration::from_millis(match kind {
            FaultKind::KillNode => rng.random_range(300..5_000),
            // The presence heartbeat buries a node silent for a few seconds: both sides of it.
            FaultKind::PauseNode => rng.random_range(500..12_000),
            FaultKind::RestartRedis => rng.random_range(100..3_000),
            FaultKind::RestartPostgres => rng.random_range(300..4_000),
        });
        let node = rng.random_range(0..nodes.max(1));
        faults.push(Fault { at, kind, node, lasts });
        at += lasts + Duration::from_millis(rng.random_range(500..4_000));
    }
    faults
}

/// Injects `faults` into `cluster`, each at its time from `start` and healed
/// after it lasted; returns those it injected (the run may end first).
pub async fn inject(
    cluster: &mut Cluster,
    faults: &[Fault],
    start: tokio::time::Instant,
    until: Duration,
) -> Vec<Fault> {
    let mut injected = Vec::new();
    for fault in faults {
        if fault.at >= until {
            break;
        }
        tokio::time::sleep_until(start + fault.at).await;
        println!("fault {fault}");
        match fault.kind {
            FaultKind::KillNode => cluster.nodes[fault.node].kill().await,
            FaultKind::PauseNode => cluster.nodes[fault.node].pause().await,
            FaultKind::RestartRedis => cluster.redis.kill().await,
            FaultKind::RestartPostgres => cluster.postgres.stop().await,
        }
        injected.push(*fault);
        tokio::time::sleep(fault.lasts).await;
        cluster.heal().await;
    }
    injected
}
