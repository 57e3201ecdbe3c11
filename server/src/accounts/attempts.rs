//! Limits on guessing: failed sign-ins counted per address and per account,
//! registrations per address, each in a fixed window. Counts live in this
//! process (each node counts its own) in maps of bounded size.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The limits of sign-ins and registrations.
pub struct AttemptLimits {
    failed_by_address: Limiter<IpAddr>,
    failed_by_account: Limiter<String>,
    registered_by_address: Limiter<IpAddr>,
}

impl Default for AttemptLimits {
    fn default() -> Self {
        Self {
            failed_by_address: Limiter::new(Self::FAILED_PER_ADDRESS, Self::WINDOW),
            failed_by_account: Limiter::new(Self::FAILED_PER_ACCOUNT, Self::WINDOW),
            registered_by_address: Limiter::new(Self::REGISTERED_PER_ADDRESS, Self::WINDOW),
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

    /// Whether a sign-in into `account` from `address` may be tried now.
    pub fn may_sign_in(&self, address: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        self.failed_by_address.check(&address, now)?;
        self.failed_by_account.check(&account.to_owned(), now)
    }

    /// A sign-in failed.
    pub fn failed(&self, address: IpAddr, account: &str, now: Instant) {
        self.failed_by_address.count(&address, now);
        self.failed_by_account.count(&account.to_owned(), now);
    }

    /// A sign-in succeeded: the account's failures are forgotten (the
    /// address's are not: it may be guessing other accounts).
    pub fn succeeded(&self, account: &str) {
        self.failed_by_account.forget(&account.to_owned());
    }

    /// Whether `address` may register an account now; counts it if so.
    pub fn may_register(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        self.registered_by_address.check(&address, now)?;
        self.registered_by_address.count(&address, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_guessed_at_is_closed_for_the_window_from_every_address() {
        let limits = AttemptLimits::default();
        let now = Instant::now();
        let address = |n: u8| IpAddr::from([10, 0, 0, n]);
        for n in 0..AttemptLimits::FAILED_PER_ACCOUNT {
            assert!(limits.may_sign_in(address(n as u8), "alice", now).is_ok());
            limits.failed(address(n as u8), "alice", now);
        }
        let wait = limits.may_sign_in(address(200), "alice", now).expect_err("closed");
        assert_eq!(wait, AttemptLimits::WINDOW);
        assert!(limits.may_sign_in(address(200), "bob", now).is_ok(), "other accounts are not");
        assert!(limits.may_sign_in(address(200), "alice", now + AttemptLimits::WINDOW).is_ok(), "until it ends");
    }

    #[test]
    fn an_address_guessing_many_accounts_is_stopped() {
        let limits = AttemptLimits::default();
        let now = Instant::now();
        let guesser = IpAddr::from([10, 0, 0, 1]);
        for n in 0..AttemptLimits::FAILED_PER_ADDRESS {
            limits.failed(guesser, &format!("user{n}"), now);
        }
        assert!(limits.may_sign_in(guesser, "someone", now).is_err());
        assert!(limits.may_sign_in(IpAddr::from([10, 0, 0, 2]), "someone", now).is_ok());
        for _ in 0..AttemptLimits::REGISTERED_PER_ADDRESS {
            assert!(limits.may_register(guesser, now).is_ok());
        }
        assert!(limits.may_register(guesser, now).is_err());
    }
}
