//! The one request limiter shared by every request of the process.
//!
//! A sliding-window log: a request is let through only when fewer than N
//! requests were let through in the preceding window, so no window of the
//! server's clock ever sees more than N of ours (a token bucket with a burst
//! of N lets 2N−1 through a fixed minute; one with a burst of 1 makes the first
//! N requests wait for nothing). Waiters are served first come, first served,
//! and a 429 pauses every caller, not only the one that received it.
//!
//! Time is tokio's, so tests on paused time run instantly and exactly.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};

/// A request budget: at most `requests` in any `window`, or no limit at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    Unlimited,
    Window { requests: u32, window: Duration },
}

impl RateLimit {
    /// `n` requests a minute.
    pub const fn per_minute(n: u32) -> Self {
        Self::Window {
            requests: n,
            window: Duration::from_secs(60),
        }
    }

    /// `n` requests a second.
    pub const fn per_second(n: u32) -> Self {
        Self::Window {
            requests: n,
            window: Duration::from_secs(1),
        }
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// Accepts `5` (a minute), `5/min`, `100/s`, `1000/h`, `unlimited`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        if matches!(text.as_str(), "unlimited" | "none" | "off") {
            return Ok(Self::Unlimited);
        }
        let (count, unit) = text.split_once('/').unwrap_or((text.as_str(), "min"));
        let requests: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                "expected requests per minute (5), N/min, N/s, N/h or unlimited".to_owned()
            })?;
        let window = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("unknown period {other:?}: use s, min or h")),
        };
        Ok(Self::Window { requests, window })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::Window { requests, window } => match window.as_secs() {
                1 => write!(f, "{requests}/s"),
                60 => write!(f, "{requests}/min"),
                3600 => write!(f, "{requests}/h"),
                _ => write!(f, "{requests} per {window:?}"),
            },
        }
    }
}

/// The shared limiter. Clone an `Arc<Limiter>` into every task.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    /// Grant times still inside the window; the lock is held while waiting, so
    /// waiters are served in arrival order (tokio's mutex is fair).
    grants: Mutex<VecDeque<Instant>>,
    pause: SyncMutex<Pause>,
}

/// The process-wide pause set by 429 answers.
#[derive(Debug, Default)]
struct Pause {
    until: Option<Instant>,
    /// When the current pause was decided; 429s to requests sent before it
    /// are echoes of the same overload and do not lengthen it.
    decided: Option<Instant>,
    /// 429s in a row without a success in between.
    streak: u32,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            grants: Mutex::new(VecDeque::new()),
            pause: SyncMutex::new(Pause::default()),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits until one more request may be sent, counts it as sent, and
    /// returns the instant it was let through.
    pub async fn acquire(&self) -> Instant {
        let mut grants = self.grants.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = self.paused_until().filter(|until| *until > now) {
                sleep_until(until).await;
                continue;
            }
            let RateLimit::Window { requests, window } = self.limit else {
                return now;
            };
            // A grant occupies the window a little longer than the window itself,
            // so scheduling jitter between our clock and the server's arrival
            // time can never squeeze N+1 requests into one server window.
            let span = window + safety_margin(window);
            while grants.front().is_some_and(|t| *t + span <= now) {
                grants.pop_front();
            }
            if grants.len() < requests as usize {
                grants.push_back(now);
                return now;
            }
            if let Some(oldest) = grants.front().copied() {
                sleep_until(oldest + span).await;
            }
        }
    }

    /// A 429 answered the request let through at `sent`. Pauses every caller
    /// for `retry_after` when the server gave one, else for `backoff(streak)`,
    /// where the streak counts 429s to requests sent after the previous pause
    /// was decided (echoes of one overload do not escalate). Returns the pause.
    pub fn rate_limited(
        &self,
        sent: Instant,
        retry_after: Option<Duration>,
        backoff: impl FnOnce(u32) -> Duration,
    ) -> Duration {
        let now = Instant::now();
        let mut state = self.pause_state();
        let fresh = state.decided.is_none_or(|decided| sent > decided);
        if fresh {
            state.streak = state.streak.saturating_add(1);
            state.decided = Some(now);
        }
        let pause = retry_after.unwrap_or_else(|| backoff(state.streak.saturating_sub(1)));
        if state.until.is_none_or(|current| current < now + pause) {
            state.until = Some(now + pause);
        }
        pause
    }

    /// A request succeeded: the overload is over.
    pub fn succeeded(&self) {
        self.pause_state().streak = 0;
    }

    fn paused_until(&self) -> Option<Instant> {
        self.pause_state().until
    }

    fn pause_state(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 2 % of the window, at least 50 ms.
fn safety_margin(window: Duration) -> Duration {
    (window / 50).max(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!("5".parse(), Ok(RateLimit::per_minute(5)));
        assert_eq!("5/min".parse(), Ok(RateLimit::per_minute(5)));
        assert_eq!("100/s".parse(), Ok(RateLimit::per_second(100)));
        assert_eq!("Unlimited".parse(), Ok(RateLimit::Unlimited));
        assert!("0".parse::<RateLimit>().is_err());
        assert!("5/week".parse::<RateLimit>().is_err());
        assert_eq!(RateLimit::per_minute(5).to_string(), "5/min");
    }

    /// Grants counted in every sliding window of `window` (half-open).
    fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn five_a_minute_never_exceeds_five_in_any_minute_and_bursts_at_start() {
        let limiter = Arc::new(Limiter::new(RateLimit::per_minute(5)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let limiter = Arc::clone(&limiter);
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..3 {
                    limiter.acquire().await;
                    times.push(Instant::now());
                }
                times
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.extend(task.await.unwrap());
        }
        times.sort();
        assert_eq!(times.len(), 24);
        assert_eq!(max_in_any_window(&times, Duration::from_secs(60)), 5);
        // The first five go at once; 24 grants need four more full windows.
        assert_eq!(times[4], start);
        let elapsed = times[23] - start;
        assert!(elapsed >= Duration::from_secs(240), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(250), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let limiter = Limiter::new(RateLimit::Unlimited);
        let start = Instant::now();
        let sent = limiter.acquire().await;
        let never = |_| Duration::ZERO;
        limiter.rate_limited(sent, Some(Duration::from_secs(7)), never);
        limiter.rate_limited(sent, Some(Duration::from_secs(2)), never); // pauses never shorten
        limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn echoes_of_one_overload_do_not_escalate_the_pause() {
        let limiter = Limiter::new(RateLimit::Unlimited);
        let backoff = |streak: u32| Duration::from_secs(1 << streak);
        // Eight requests in flight at once all come back 429: one pause of 1 s.
        let sent = limiter.acquire().await;
        let pauses: Vec<Duration> = (0..8)
            .map(|_| limiter.rate_limited(sent, None, backoff))
            .collect();
        assert!(
            pauses.iter().all(|p| *p == Duration::from_secs(1)),
            "{pauses:?}"
        );
        // A request sent after that pause and rejected again doubles it.
        let sent = limiter.acquire().await;
        assert_eq!(
            limiter.rate_limited(sent, None, backoff),
            Duration::from_secs(2)
        );
        // A success resets the streak; Retry-After always wins.
        limiter.succeeded();
        let sent = limiter.acquire().await;
        assert_eq!(
            limiter.rate_limited(sent, None, backoff),
            Duration::from_secs(1)
        );
        let sent = limiter.acquire().await;
        assert_eq!(
            limiter.rate_limited(sent, Some(Duration::from_secs(9)), backoff),
            Duration::from_secs(9)
        );
    }
}
