//! When to try a failed request again, and how long to wait first.
//!
//! A small policy of our own rather than a crate: every attempt must pass the
//! shared [`Limiter`](super::Limiter) and a 429 must pause the whole process,
//! which a generic retry wrapper cannot express. Exponential backoff with
//! "equal jitter" (half fixed, half random) and a cap.

use std::time::Duration;

/// Retry settings for one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after a 5xx, a timeout, a dropped connection or a garbled body.
    pub max_retries: u32,
    /// Retries after 429 answers; rate limiting is a signal to wait, not a failure.
    pub max_rate_limited: u32,
    /// First backoff delay; each further retry doubles it.
    pub base: Duration,
    /// Longest single backoff delay.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            max_rate_limited: 30,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): between half and all of
    /// `min(cap, base × 2^retry)`.
    pub fn delay(&self, retry: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_stop_at_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            for (retry, full_ms) in [
                (0, 100),
                (1, 200),
                (2, 400),
                (3, 800),
                (4, 1600),
                (5, 2000),
                (40, 2000),
            ] {
                let d = policy.delay(retry);
                let full = Duration::from_millis(full_ms);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let policy = RetryPolicy::default();
        let distinct: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.delay(3)).collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
    }
}
