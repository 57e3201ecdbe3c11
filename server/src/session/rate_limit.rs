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

/// What a [`FrameBudget`] says about one more frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: handle it.
    Allowed,
    /// Over the rate: drop it (and say so, if the protocol can).
    Dropped,
    /// Over the rate for too many frames in a row: close the connection.
    Exceeded,
}

/// A token bucket for one kind of frame (data frames, pings), plus how many
/// over-rate frames in a row a peer may send before it counts as a flood.
#[derive(Debug, Clone)]
pub struct FrameBudget {
    bucket: TokenBucket,
    over_in_row: u32,
    max_over_in_row: u32,
}

impl FrameBudget {
    /// `rate` per second, `burst` at once, and `max_over_in_row` dropped frames in a row tolerated.
    pub fn new(rate: u32, burst: u32, max_over_in_row: u32, now: Instant) -> Self {
        Self { bucket: TokenBucket::new(rate, burst, now), over_in_row: 0, max_over_in_row }
    }

    /// Takes one frame's worth.
    pub fn take(&mut self, now: Instant) -> Verdict {
        if self.bucket.try_take(now) {
            self.over_in_row = 0;
            return Verdict::Allowed;
        }
        self.over_in_row += 1;
        if self.over_in_row > self.max_over_in_row { Verdict::Exceeded } else { Verdict::Dropped }
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

    #[test]
    fn a_budget_drops_over_rate_frames_then_calls_a_long_run_a_flood() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(1, 2, 3, start);
        assert_eq!([budget.take(start), budget.take(start)], [Verdict::Allowed; 2], "the burst");
        assert_eq!([budget.take(start), budget.take(start), budget.take(start)], [Verdict::Dropped; 3]);
        assert_eq!(budget.take(start), Verdict::Exceeded, "the fourth in a row");
        let later = start + Duration::from_secs(1);
        assert_eq!(budget.take(later), Verdict::Allowed, "refilled; the run is over");
        assert_eq!(budget.take(later), Verdict::Dropped);
    }
}
