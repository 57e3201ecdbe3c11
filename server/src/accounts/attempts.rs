//! Limits on guessing: failed sign-ins counted per address and per account,
//! registrations per address, each in a fixed window. Each node counts in
//! its own memory (maps of bounded size); with Redis, the nodes also count
//! together ([`SharedCounts`]), so a guesser spreading its tries over the
//! nodes behind a balancer gets no more than from one. If Redis cannot
//! answer, each node's own count still holds.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_shared::Epoch;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Most keys a limiter tracks; past it, expired windows are dropped, and
/// if none has expired a new key is refused until one does (an attack on
/// that many names or addresses at once slows sign-ins, never opens them).
const MAX_KEYS: usize = 100_000;

/// Counts events per key, up to `max` in each window of `window`.
struct Limiter<K> {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(max: u32, window: Duration) -> Self {
        Self { max, window, counts: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` if `key` used its window's allowance.
    fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match counts.get(key) {
            Some((start, count)) if *count >= self.max && now < *start + self.window => Err(*start + self.window - now),
            None if counts.len() >= MAX_KEYS => Err(self.window),
            _ => Ok(()),
        }
    }

    /// Counts one event of `key`.
    fn count(&self, key: &K, now: Instant) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() >= MAX_KEYS && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| now < *start + window);
            if counts.len() >= MAX_KEYS {
                return;
            }
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    fn forget(&self, key: &K) {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// Counts every node shares, in Redis: one key per counted thing, made
/// with its window's expiry by its first count (a fixed window, as here).
pub struct SharedCounts {
    connection: ConnectionManager,
    /// Key prefix (per history epoch).
    prefix: String,
}

/// Counts one event of `KEYS[1]`; the window (`ARGV[1]` ms) starts with the first.
const COUNT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
";

impl SharedCounts {
    /// Counts in Redis, for the history `epoch`.
    pub fn new(client: redis::Client, epoch: &Epoch) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, prefix: format!("chat:{}:attempts:", epoch.as_str()) })
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    /// `Err(wait)` if `key` of `kind` used its window's `max`; `Ok` also when
    /// Redis cannot answer (the node's own count decides then).
    async fn check(&self, kind: &str, key: &str, max: u32) -> Result<(), Duration> {
        let mut connection = self.connection.clone();
        let read: redis::RedisResult<(Option<u32>, i64)> =
            redis::pipe().get(self.key(kind, key)).pttl(self.key(kind, key)).query_async(&mut connection).await;
        match read {
            Ok((Some(count), left_ms)) if count >= max => {
                Err(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)).max(Duration::from_secs(1)))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "cannot read the shared guessing counts; this node's own count decides");
                Ok(())
            }
        }
    }

    async fn count(&self, kind: &str, key: &str, window: Duration) {
        let mut connection = self.connection.clone();
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let counted: redis::RedisResult<u32> =
            redis::Script::new(COUNT).key(self.key(kind, key)).arg(millis).invoke_async(&mut connection).await;
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot count a try in the shared guessing counts");
        }
    }

    async fn forget(&self, kind: &str, key: &str) {
        let mut connection = self.connection.clone();
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(self.key(kind, key)).query_async(&mut connection).await;
    }
}

/// The limits of sign-ins and registrations.
pub struct AttemptLimits {
    failed_by_address: Limiter<IpAddr>,
    failed_by_account: Limiter<String>,
    registered_by_address: Limiter<IpAddr>,
    shared: Option<SharedCounts>,
}

impl Default for AttemptLimits {
    fn default() -> Self {
        Self {
            failed_by_address: Limiter::new(Self::FAILED_PER_ADDRESS, Self::WINDOW),
            failed_by_account: Limiter::new(Self::FAILED_PER_ACCOUNT, Self::WINDOW),
            registered_by_address: Limiter::new(Self::REGISTERED_PER_ADDRESS, Self::WINDOW),
            shared: None,
        }
    }
}

impl AttemptLimits {
    /// The window every count is kept for.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failed sign-ins one address may make per window.
    pub const FAILED_PER_ADDRESS: u32 = 30;
    /// Failed sign-ins into one account per window, from anywhere.
    pub const FAILED_PER_ACCOUNT: u32 = 10;
    /// Accounts one address may register per window.
    pub const REGISTERED_PER_ADDRESS: u32 = 10;

    /// Limits counted by every node together (in Redis) as well as here.
    pub fn shared(counts: SharedCounts) -> Self {
        Self { shared: Some(counts), ..Self::default() }
    }

    /// Whether a sign-in into `account` from `address` may be tried now.
    pub async fn may_sign_in(&self, address: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        self.failed_by_address.check(&address, now)?;
        self.failed_by_account.check(&account.to_owned(), now)?;
        if let Some(shared) = &self.shared {
            shared.check("failed-from", &address.to_string(), Self::FAILED_PER_ADDRESS).await?;
            shared.check("failed-into", account, Self::FAILED_PER_ACCOUNT).await?;
        }
        Ok(())
    }

    /// A sign-in failed.
    pub async fn failed(&self, address: IpAddr, account: &str, now: Instant) {
        self.failed_by_address.count(&address, now);
        self.failed_by_account.count(&account.to_owned(), now);
        if let Some(shared) = &self.shared {
            shared.count("failed-from", &address.to_string(), Self::WINDOW).await;
            shared.count("failed-into", account, Self::WINDOW).await;
        }
    }

    /// A sign-in succeeded: the account's failures are forgotten (the
    /// address's are not: it may be guessing other accounts).
    pub async fn succeeded(&self, account: &str) {
        self.failed_by_account.forget(&account.to_owned());
        if let Some(shared) = &self.shared {
            shared.forget("failed-into", account).await;
        }
    }

    /// Whether `address` may register an account now; counts it if so.
    pub async fn may_register(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        self.registered_by_address.check(&address, now)?;
        if let Some(shared) = &self.shared {
            shared.check("registered-from", &address.to_string(), Self::REGISTERED_PER_ADDRESS).await?;
            shared.count("registered-from", &address.to_string(), Self::WINDOW).await;
        }
        self.registered_by_address.count(&address, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_guessed_at_is_closed_for_the_window_from_every_address() {
        let limits = AttemptLimits::default();
        let now = Instant::now();
        let address = |n: u8| IpAddr::from([10, 0, 0, n]);
        for n in 0..AttemptLimits::FAILED_PER_ACCOUNT {
            assert!(limits.may_sign_in(address(n as u8), "alice", now).await.is_ok());
            limits.failed(address(n as u8), "alice", now).await;
        }
        let wait = limits.may_sign_in(address(200), "alice", now).await.expect_err("closed");
        assert_eq!(wait, AttemptLimits::WINDOW);
        assert!(limits.may_sign_in(address(200), "bob", now).await.is_ok(), "other accounts are not");
        let later = now + AttemptLimits::WINDOW;
        assert!(limits.may_sign_in(address(200), "alice", later).await.is_ok(), "until it ends");
    }

    #[tokio::test]
    async fn an_address_guessing_many_accounts_is_stopped() {
        let limits = AttemptLimits::default();
        let now = Instant::now();
        let guesser = IpAddr::from([10, 0, 0, 1]);
        for n in 0..AttemptLimits::FAILED_PER_ADDRESS {
            limits.failed(guesser, &format!("user{n}"), now).await;
        }
        assert!(limits.may_sign_in(guesser, "someone", now).await.is_err());
        assert!(limits.may_sign_in(IpAddr::from([10, 0, 0, 2]), "someone", now).await.is_ok());
        for _ in 0..AttemptLimits::REGISTERED_PER_ADDRESS {
            assert!(limits.may_register(guesser, now).await.is_ok());
        }
        assert!(limits.may_register(guesser, now).await.is_err());
    }
}
