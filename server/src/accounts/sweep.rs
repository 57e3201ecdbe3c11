//! The sweep: every [`SWEEP_EVERY`], a node asks the store which of the
//! accounts signed in on it still have a current session, and closes the
//! sockets of those that have none (signed out everywhere on another node
//! while Redis was away, or every session expired).

use std::sync::Arc;
use std::time::Duration;

use super::Accounts;
use super::revocations::Revocations;

/// How often signed-in sockets' accounts are checked.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Sweeps until the process ends.
pub async fn run(accounts: Arc<Accounts>, revocations: Arc<Revocations>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let listened = revocations.listened();
        if listened.is_empty() {
            continue;
        }
        match accounts.with_sessions(&listened).await {
            Ok(current) => {
                for user in listened.into_iter().filter(|user| !current.contains(user)) {
                    tracing::info!(user, "no current session left; closing its sockets");
                    revocations.revoke(user);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot check signed-in sockets' sessions"),
        }
    }
}
