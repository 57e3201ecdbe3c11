//! Password hashing: argon2id (OWASP's parameters: 19 MiB, 2 passes) on a
//! few blocking threads of its own, behind a semaphore, so a flood of logins
//! waits its turn instead of starving the chat's threads, and a queue too
//! long is refused rather than grown.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashes or checks a password, a few at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    running: Arc<Semaphore>,
    /// Hashes running plus waiting; past [`PasswordHasher::MAX_QUEUED`] a request is refused.
    queued: Arc<Semaphore>,
    /// The hash checked when the user does not exist, so an unknown name
    /// costs as long as a wrong password (no telling which names exist).
    decoy: Arc<str>,
}

/// The hasher is busy: too many hashes are waiting.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once; retry in a moment")]
pub struct Busy;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    // Hashing with valid parameters and a fresh salt cannot fail.
    argon2().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).unwrap_or_default()
}

fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

impl PasswordHasher {
    /// Most hashes waiting or running at once.
    pub const MAX_QUEUED: usize = 256;

    /// A hasher running up to `parallel` hashes at once.
    pub fn new(parallel: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(parallel.max(1))),
            queued: Arc::new(Semaphore::new(Self::MAX_QUEUED)),
            decoy: Arc::from(hash_now("a password nobody has")),
        }
    }

    /// Runs `work` on a blocking thread when a hashing slot is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let _queued = self.queued.try_acquire().map_err(|_| Busy)?;
        let _running = self.running.acquire().await.map_err(|_| Busy)?;
        tokio::task::spawn_blocking(work).await.map_err(|_| Busy)
    }

    /// The PHC string to store for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await
    }

    /// Whether `password` matches `stored`; with no `stored` (no such user)
    /// it checks against a decoy and answers false, in the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, Busy> {
        let (password, known) = (password.to_owned(), stored.is_some());
        let stored = stored.map_or_else(|| self.decoy.to_string(), str::to_owned);
        self.run(move || verify_now(&password, &stored) && known).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_checks_its_password_only_and_is_salted() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse").await.expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", Some(&hash)).await.expect("checked"));
        assert!(!hasher.verify("correct horsE", Some(&hash)).await.expect("checked"));
        assert!(!hasher.verify("a password nobody has", None).await.expect("checked"), "the decoy admits nobody");
        assert_ne!(hash, hasher.hash("correct horse").await.expect("hashed"), "salted");
    }
}
