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
    users: Mutex<HashMap<UserId, watch::Sender<bool>>>,
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
        if users.len() >= PRUNE_AT {
            users.retain(|_, sender| sender.receiver_count() > 0);
        }
        Revoked(users.entry(user).or_insert_with(|| watch::channel(false).0).subscribe())
    }

    /// The accounts with a socket listening on this node.
    pub fn listened(&self) -> Vec<UserId> {
        let users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        users.iter().filter(|(_, sender)| sender.receiver_count() > 0).map(|(user, _)| *user).collect()
    }

    /// Closes every socket of `user` on this node.
    pub fn revoke(&self, user: UserId) {
        let sender = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&user);
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
}
