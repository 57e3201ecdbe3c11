//! A token bucket per connection: a steady rate with room for short bursts.

use std::time::Instant;

/// Allows `rate` messages per second on average and `burst` at once.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket; `rate == 0` means unlimited.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate: f64::from(rate), burst, tokens: burst, refilled_at: now }
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_then_the_steady_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 20, start);
        assert_eq!((0..25).filter(|_| bucket.try_take(start)).count(), 20, "the burst");
        let later = start + Duration::from_millis(500);
        assert_eq!((0..25).filter(|_| bucket.try_take(later)).count(), 5, "10/s for half a second");
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, 1, now);
        assert!((0..10_000).all(|_| bucket.try_take(now)));
    }
}
