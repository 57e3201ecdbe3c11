//! Signing out everywhere: each signed-in socket of this node listens for
//! its account's revocation, and closes when it fires.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::store::UserId;

/// Past this many accounts listened for, entries nobody listens to any more are dropped.
const PRUNE_AT: usize = 10_000;

/// The accounts whose sockets listen on this node.
#[derive(Default)]
pub struct Revocations {
    users: Mutex<Listeners>,
}

/// The listened accounts, and when to look for ones nobody listens to.
#[derive(Default)]
struct Listeners {
    by_user: HashMap<UserId, watch::Sender<bool>>,
    /// Prune when there are this many: twice what the last pruning left
    /// (at least [`PRUNE_AT`]), so pruning costs O(1) per listen however
    /// many accounts are live. (Pruning at a fixed size made every listen
    /// past it walk every live account: a storm of 19,000 signed-in
    /// reconnects spent 16% of the server's CPU here.)
    prune_at: usize,
    /// Entries pruning has walked, in all (for tests).
    walked: usize,
}

/// Resolves when its account signed out everywhere.
pub struct Revoked(watch::Receiver<bool>);

impl Revoked {
    /// Waits for the revocation (forever if it never comes).
    pub async fn fired(&mut self) {
        if self.0.wait_for(|revoked| *revoked).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Revocations {
    /// Listens for `user`'s revocation.
    pub fn listen(&self, user: UserId) -> Revoked {
        let mut users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if users.by_user.len() >= users.prune_at.max(PRUNE_AT) {
            users.walked += users.by_user.len();
            users.by_user.retain(|_, sender| sender.receiver_count() > 0);
            users.prune_at = users.by_user.len() * 2;
        }
        Revoked(users.by_user.entry(user).or_insert_with(|| watch::channel(false).0).subscribe())
    }

    /// The accounts with a socket listening on this node.
    pub fn listened(&self) -> Vec<UserId> {
        let users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        users.by_user.iter().filter(|(_, sender)| sender.receiver_count() > 0).map(|(user, _)| *user).collect()
    }

    /// Closes every socket of `user` on this node.
    pub fn revoke(&self, user: UserId) {
        let sender = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).by_user.remove(&user);
        if let Some(sender) = sender {
            sender.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_revocation_reaches_that_users_listeners_only() {
        let revocations = Revocations::default();
        let (mut alice, mut alice_too, mut bob) = (revocations.listen(1), revocations.listen(1), revocations.listen(2));
        revocations.revoke(1);
        alice.fired().await;
        alice_too.fired().await;
        let waited = tokio::time::timeout(Duration::from_millis(50), bob.fired()).await;
        assert!(waited.is_err(), "bob stays signed in");
        let mut later = revocations.listen(1);
        let waited = tokio::time::timeout(Duration::from_millis(50), later.fired()).await;
        assert!(waited.is_err(), "a socket opened after the revocation is a new session's");
    }

    #[test]
    fn listening_costs_the_same_however_many_accounts_are_live() {
        let revocations = Revocations::default();
        let live: Vec<Revoked> = (0..50_000).map(|user| revocations.listen(user)).collect();
        let walked = revocations.users.lock().expect("lock").walked;
        // Pruning at 10,000, 20,000, 40,000: 70,000 entries walked (a walk per
        // listen past 10,000 would have been 40,000 walks of 10,000 or more).
        assert!(walked <= 2 * live.len(), "pruning walked {walked} entries for {} listens", live.len());
        drop(live);
        let _again = (0..100_000).map(|user| revocations.listen(user + 1_000_000)).collect::<Vec<_>>();
        let users = revocations.users.lock().expect("lock");
        assert!(users.by_user.len() <= 100_000 + 50_000, "the gone listeners were dropped: {}", users.by_user.len());
    }
}
