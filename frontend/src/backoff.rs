//! Reconnect delays: exponential backoff with jitter, so a restarted server
//! is not hit by every client at the same instant.
//!
//! When the server itself closed the link (going away, restarting, or over
//! its load), every one of its clients reconnects at about the same moment:
//! the first retry is then spread over a window that grows with how many
//! people the server said were online, so the rejoins arrive at a rate it
//! can take instead of all within half a second.

/// Ceiling of the first delay, in milliseconds.
const FIRST_CEILING_MS: u32 = 500;
/// Ceiling of every delay, in milliseconds.
const MAX_CEILING_MS: u32 = 10_000;
/// Rejoins per second a server is assumed to take well after a restart
/// (each costs a handshake, a nickname claim and a history page).
const REJOINS_PER_SECOND: u32 = 3_000;
/// The widest window a first retry after a server close is spread over.
const MAX_SPREAD_MS: u32 = 15_000;

/// Close codes with which the server says it is going away (1001),
/// restarting (1012) or too busy (1013): all of its clients will be back at once.
pub fn closed_by_server_for_everyone(code: u16) -> bool {
    matches!(code, 1001 | 1012 | 1013)
}

/// The window over which the first retry after such a close is spread, for a
/// server that reported `online` people: at least the usual first ceiling,
/// long enough for everyone to come back at [`REJOINS_PER_SECOND`], at most
/// [`MAX_SPREAD_MS`].
pub fn spread_window_ms(online: u32) -> u32 {
    let needed = u64::from(online) * 1_000 / u64::from(REJOINS_PER_SECOND);
    u32::try_from(needed).unwrap_or(u32::MAX).clamp(FIRST_CEILING_MS, MAX_SPREAD_MS)
}

/// Tracks consecutive failed attempts.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt, in milliseconds, given a `random`
    /// number in `[0, 1)`: between half and all of a ceiling that doubles with
    /// each failure, from 500 ms up to 10 s.
    pub fn next_delay_ms(&mut self, random: f64) -> u32 {
        let ceiling = FIRST_CEILING_MS.saturating_mul(1 << self.failures.min(16)).min(MAX_CEILING_MS);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        // Truncation is fine: the jitter is a fraction of `half` milliseconds.
        half + (f64::from(half) * random.clamp(0.0, 1.0)) as u32
    }

    /// Call after a successful connection: the next failure starts over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the first retry after the server closed the link for
    /// everyone (see [`closed_by_server_for_everyone`]), given a `random`
    /// number in `[0, 1)`: anywhere in [`spread_window_ms`]`(online)`, so
    /// the server's clients come back spread evenly. Retries after that back
    /// off as usual.
    pub fn after_server_close_ms(&mut self, online: u32, random: f64) -> u32 {
        self.failures = 1;
        // Truncation is fine: the jitter is a fraction of the window.
        (f64::from(spread_window_ms(online)) * random.clamp(0.0, 1.0)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn first_retry_is_at_most_half_a_second() {
        assert!(Backoff::default().next_delay_ms(0.999) <= 500);
        assert!(Backoff::default().next_delay_ms(0.0) >= 250);
    }

    #[test]
    fn delays_grow_then_cap_at_ten_seconds() {
        let mut backoff = Backoff::default();
        let delays: Vec<u32> = (0..40).map(|_| backoff.next_delay_ms(1.0)).collect();
        assert_eq!(&delays[..5], &[500, 1_000, 2_000, 4_000, 8_000]);
        assert!(delays.iter().all(|d| *d <= 10_000));
        assert_eq!(delays[39], 10_000);
    }

    #[test]
    fn after_a_server_close_retries_spread_with_the_number_online() {
        // A small server: within the usual half second.
        assert_eq!(spread_window_ms(12), 500);
        // 19,000 people come back over about six seconds, not half of one.
        assert_eq!(spread_window_ms(19_000), 6_333);
        assert_eq!(spread_window_ms(u32::MAX), 15_000, "capped");
        let mut backoff = Backoff::default();
        let delays: Vec<u32> =
            [0.0, 0.25, 0.5, 0.999].iter().map(|r| backoff.clone().after_server_close_ms(19_000, *r)).collect();
        assert_eq!(delays, [0, 1_583, 3_166, 6_326], "evenly over the window, from right away");
        // If the server is not back yet, the retries after that back off as usual.
        backoff.after_server_close_ms(19_000, 0.5);
        assert_eq!(backoff.next_delay_ms(1.0), 1_000);
    }

    #[test]
    fn only_closes_that_hit_everyone_are_spread() {
        assert!(closed_by_server_for_everyone(1001) && closed_by_server_for_everyone(1012));
        assert!(closed_by_server_for_everyone(1013));
        // A takeover (1008), a too-big frame (1009) or a network drop (1006) concern one client.
        assert!(![1000, 1006, 1008, 1009, 1011].into_iter().any(closed_by_server_for_everyone));
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay_ms(0.5);
        }
        backoff.reset();
        assert!(backoff.next_delay_ms(1.0) <= 500);
    }
}
