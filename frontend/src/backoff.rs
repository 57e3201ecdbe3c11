//! Reconnect delays: exponential backoff with jitter, so a restarted server
//! is not hit by every client at the same instant.

/// Ceiling of the first delay, in milliseconds.
const FIRST_CEILING_MS: u32 = 500;
/// Ceiling of every delay, in milliseconds.
const MAX_CEILING_MS: u32 = 10_000;

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
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay_ms(0.5);
        }
        backoff.reset();
        assert!(backoff.next_delay_ms(1.0) <= 500);
    }
}
