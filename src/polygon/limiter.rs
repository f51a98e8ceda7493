//! The one request limiter shared by every request of the process.
//!
//! A sliding-window log: a request is let through only when fewer than N
//! requests were let through in the preceding window, so no window of the
//! server's clock ever sees more than N of ours (a token bucket with a burst
//! of N lets 2N−1 through a fixed minute; one with a burst of 1 makes the first
//! N requests wait for nothing). Waiters are served first come, first served,
//! and a 429 pauses every caller, not only the one that received it.
//!
//! Several processes (runners on several machines draining one PostgreSQL
//! job table) share one budget through a [`SharedRate`]: a request is let
//! through when both the process's own window and the shared one allow it,
//! and a 429 seen by one process pauses all of them.
//!
//! Time is tokio's, so tests on paused time run instantly and exactly.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex as SyncMutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
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

/// The part of the budget that several processes share: the window's
/// grants and the 429 pause, kept where every process sees them (the
/// PostgreSQL job table's database). Its clock is its own (the database
/// server's), so the processes' clocks need not agree. The calls block (a
/// round trip to the database); the limiter makes them off the async
/// threads.
pub trait SharedRate: Send + Sync + fmt::Debug {
    /// Takes one request's place in the shared budget when it allows one
    /// now (`Ok(None)`), else says how long until it may: the shared pause,
    /// or until the oldest of `window.0` grants made within the last
    /// `window.1` leaves it. `window` is `None` when the plan is unlimited
    /// (only a pause can then hold a request back). A grant leaves the
    /// window by itself once it is older than the window, so a process that
    /// dies holding places gives them back within one window.
    fn take(&self, window: Option<(u32, Duration)>) -> Result<Option<Duration>, SharedRateError>;

    /// Pauses every process sharing the budget for `pause` from now, unless
    /// a longer pause already holds.
    fn pause(&self, pause: Duration) -> Result<(), SharedRateError>;
}

/// The shared budget could not be read or written (its database is
/// unreachable): the request waits and asks again.
#[derive(Debug, thiserror::Error)]
#[error("the shared rate limit in {location} could not be {action}: {source}")]
pub struct SharedRateError {
    /// Where the budget is kept, without secrets.
    pub location: String,
    /// `read` or `updated`.
    pub action: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// How long a request waits before asking an unreachable shared budget again.
const SHARED_RETRY: Duration = Duration::from_secs(1);

/// The shared limiter. Clone an `Arc<Limiter>` into every task.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    /// The budget shared with other processes, if any.
    shared: Option<Arc<dyn SharedRate>>,
    /// Held by the request whose turn it is while it waits for a slot, so
    /// waiters are served in arrival order (tokio's mutex is fair).
    turn: Mutex<()>,
    state: SyncMutex<State>,
    /// Wakes the waiter whose turn it is when a slot was given back.
    changed: Notify,
    /// Set by [`Limiter::stop`]: no request is let through any more.
    stopped: AtomicBool,
    /// Wakes every waiter when the limiter stops.
    stopping: Notify,
    /// Requests waiting for their turn or their slot.
    waiting: AtomicUsize,
}

/// What the limiter knows, under one lock.
#[derive(Debug, Default)]
struct State {
    /// Grant times still inside the window.
    grants: VecDeque<Instant>,
    /// The latest grant (kept whatever the limit, for the learned spacing).
    last: Option<Instant>,
    pause: Pause,
}

/// The process-wide pause set by 429 answers, and the pace learned from them.
#[derive(Debug, Default)]
struct Pause {
    until: Option<Instant>,
    /// When the current pause was decided; 429s to requests sent before it
    /// are echoes of the same overload and do not lengthen it.
    decided: Option<Instant>,
    /// 429s in a row without a success in between.
    streak: u32,
    /// The least time between two requests that the server's 429s showed
    /// (`None` before the first 429): after a pause, requests resume spread
    /// at this pace instead of all at once.
    spacing: Option<Duration>,
    /// Successful requests sent since the last pause was decided, and when
    /// the first of them was sent: the rate the server allowed.
    ok_since_pause: u32,
    first_ok: Option<Instant>,
    /// The last 429 that taught a pace, and the successes sent since.
    cycle_start: Option<Instant>,
    cycle_ok: u32,
}

/// What the limiter is doing, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterState {
    /// Requests waiting to be let through.
    pub waiting: usize,
    /// When the next request may go (`None`: now), whether for the window,
    /// a 429 pause or the learned pace.
    pub next_at: Option<Instant>,
    /// True while a 429 pause holds every request.
    pub paused: bool,
    /// The pace learned from 429s, when it is slower than the limit.
    pub spacing: Option<Duration>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self::sharing(limit, None)
    }

    /// A limiter whose requests also take their place in `shared`, the
    /// budget other processes use too.
    pub fn sharing(limit: RateLimit, shared: Option<Arc<dyn SharedRate>>) -> Self {
        Self {
            limit,
            shared,
            turn: Mutex::new(()),
            state: SyncMutex::new(State::default()),
            changed: Notify::new(),
            stopped: AtomicBool::new(false),
            stopping: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits until one more request may be sent, counts it as sent, and
    /// returns the instant it was let through; `None` once the limiter was
    /// stopped (at once, also for requests already waiting).
    pub async fn acquire(&self) -> Option<Instant> {
        if self.is_stopped() {
            return None;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let granted = tokio::select! {
            biased;
            () = self.stopped() => None,
            sent = self.take_turn() => Some(sent),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        granted
    }

    async fn take_turn(&self) -> Instant {
        let _turn = self.turn.lock().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let local = self.state().next_slot(self.limit, now);
            let next = match local {
                // The process's own budget allows it: the shared one must too.
                None => match self.shared_wait().await {
                    None => {
                        let now = Instant::now();
                        self.state().grant(self.limit, now);
                        return now;
                    }
                    Some(wait) => Instant::now() + wait,
                },
                Some(next) => next,
            };
            tokio::select! {
                () = sleep_until(next) => {}
                () = &mut changed => {}
            }
        }
    }

    /// `None` when the shared budget (if any) gave this request its place,
    /// else how long to wait before asking again.
    async fn shared_wait(&self) -> Option<Duration> {
        let shared = Arc::clone(self.shared.as_ref()?);
        let window = match self.limit {
            RateLimit::Unlimited => None,
            RateLimit::Window { requests, window } => {
                Some((requests, window + safety_margin(window)))
            }
        };
        let asked = tokio::task::spawn_blocking(move || shared.take(window)).await;
        match asked {
            Ok(Ok(wait)) => wait,
            Ok(Err(e)) => {
                tracing::warn!("{e}; asking again in {SHARED_RETRY:?}");
                Some(SHARED_RETRY)
            }
            Err(e) => {
                tracing::warn!("the shared rate limit's task died: {e}");
                Some(SHARED_RETRY)
            }
        }
    }

    /// Stops the limiter: every waiting and later [`Limiter::acquire`]
    /// returns `None` at once (Ctrl-C, a fatal error).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stopping.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once the limiter was stopped.
    pub async fn stopped(&self) {
        let stopping = self.stopping.notified();
        tokio::pin!(stopping);
        stopping.as_mut().enable();
        if !self.is_stopped() {
            stopping.await;
        }
    }

    /// The request let through at `sent` never reached the server (no
    /// connection could be made): it does not count against the window.
    pub fn refund(&self, sent: Instant) {
        let mut state = self.state();
        if let Some(at) = state.grants.iter().rposition(|t| *t == sent) {
            state.grants.remove(at);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// What the limiter is doing now.
    pub fn state_now(&self) -> LimiterState {
        let now = Instant::now();
        let state = self.state();
        LimiterState {
            waiting: self.waiting.load(Ordering::SeqCst),
            next_at: state.next_slot(self.limit, now),
            paused: state.pause.until.is_some_and(|until| until > now),
            spacing: state.pause.spacing,
        }
    }

    /// A 429 answered the request let through at `sent`. Pauses every caller
    /// for `retry_after` when the server gave one, else for `backoff(streak)`,
    /// where the streak counts 429s to requests sent after the previous pause
    /// was decided (echoes of one overload do not escalate). A `Retry-After`
    /// that proved too short (the first request after it was refused again,
    /// nothing succeeding in between) is doubled for each such refusal, up
    /// to a minute. Returns the pause.
    ///
    /// A fresh 429 after successes also sets the pace requests resume at
    /// (never faster than the configured limit, which still applies): the
    /// slower of
    /// - what this overload shows: the `k` successful requests sent since
    ///   the previous pause, the first at `first`, and no more until
    ///   `now + pause`: one request every `(now + pause − first) / k`
    ///   (exactly the pace of a sliding window of N per W when `Retry-After`
    ///   is honest);
    /// - what the cycle since the previous such 429 shows: its successes
    ///   over its length (the pace of the server however its `Retry-After`
    ///   lies);
    /// - the pace before, which was just refused.
    pub fn rate_limited(
        &self,
        sent: Instant,
        retry_after: Option<Duration>,
        backoff: impl FnOnce(u32) -> Duration,
    ) -> Duration {
        let now = Instant::now();
        let mut state = self.state();
        let state = &mut state.pause;
        let fresh = state.decided.is_none_or(|decided| sent > decided);
        if fresh {
            state.streak = state.streak.saturating_add(1);
            state.decided = Some(now);
        }
        let refusals = state.streak.saturating_sub(1);
        let pause = match retry_after {
            Some(said) => said
                .saturating_mul(1 << refusals.min(6))
                .min(MAX_PAUSE)
                .max(said),
            None => backoff(refusals),
        };
        if state.until.is_none_or(|current| current < now + pause) {
            state.until = Some(now + pause);
        }
        if fresh {
            self.share_pause(pause);
            if let (k @ 1.., Some(first)) = (state.ok_since_pause, state.first_ok) {
                let overload = (now + pause).saturating_duration_since(first) / k;
                let cycle = state
                    .cycle_start
                    .filter(|_| state.cycle_ok > 0)
                    .map(|start| now.saturating_duration_since(start) / state.cycle_ok);
                let shown = overload.max(cycle.unwrap_or_default());
                state.spacing = Some(state.spacing.map_or(shown, |old| old.max(shown)));
                state.cycle_start = Some(now);
                state.cycle_ok = 0;
            }
            state.ok_since_pause = 0;
            state.first_ok = None;
        }
        pause
    }

    /// Tells the other processes sharing the budget to pause too, without
    /// waiting for the answer (a failure is logged: they will meet the 429s
    /// themselves).
    fn share_pause(&self, pause: Duration) {
        let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let shared = Arc::clone(shared);
        runtime.spawn_blocking(move || {
            if let Err(e) = shared.pause(pause) {
                tracing::warn!("{e}");
            }
        });
    }

    /// The request let through at `sent` succeeded: the overload is over,
    /// and the learned pace relaxes a little (by 1/32), so that a server
    /// that allows more is found out in time.
    pub fn succeeded(&self, sent: Instant) {
        let mut state = self.state();
        let floor = self.limit_spacing();
        let state = &mut state.pause;
        state.streak = 0;
        if state.decided.is_none_or(|decided| sent > decided) {
            state.ok_since_pause = state.ok_since_pause.saturating_add(1);
            state.first_ok = Some(state.first_ok.map_or(sent, |first| first.min(sent)));
        }
        if state.cycle_start.is_none_or(|start| sent > start) {
            state.cycle_ok = state.cycle_ok.saturating_add(1);
        }
        if let Some(spacing) = state.spacing {
            let relaxed = spacing - spacing / 32;
            state.spacing = (relaxed > floor).then_some(relaxed);
        }
    }

    /// The average time between requests at the configured limit (zero
    /// when unlimited): a learned pace this fast is no pace at all.
    fn limit_spacing(&self) -> Duration {
        match self.limit {
            RateLimit::Unlimited => Duration::from_millis(1),
            RateLimit::Window { requests, window } => window / requests.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// `None` when a request may go at `now`, else the instant to look again.
    fn next_slot(&self, limit: RateLimit, now: Instant) -> Option<Instant> {
        if let Some(until) = self.pause.until.filter(|until| *until > now) {
            return Some(until);
        }
        if let (Some(last), Some(spacing)) = (self.last, self.pause.spacing)
            && last + spacing > now
        {
            return Some(last + spacing);
        }
        let RateLimit::Window { requests, window } = limit else {
            return None;
        };
        // A grant occupies the window a little longer than the window itself,
        // so scheduling jitter between our clock and the server's arrival
        // time can never squeeze N+1 requests into one server window.
        let span = window + safety_margin(window);
        let live = self.grants.iter().filter(|t| **t + span > now).count();
        if live < requests as usize {
            return None;
        }
        // The grant whose expiry makes room: the `live - requests + 1`-th oldest live one.
        let oldest = self
            .grants
            .iter()
            .filter(|t| **t + span > now)
            .nth(live - requests as usize)
            .copied()?;
        Some(oldest + span)
    }

    fn grant(&mut self, limit: RateLimit, now: Instant) {
        self.last = Some(now);
        let RateLimit::Window { window, .. } = limit else {
            return;
        };
        let span = window + safety_margin(window);
        while self.grants.front().is_some_and(|t| *t + span <= now) {
            self.grants.pop_front();
        }
        self.grants.push_back(now);
    }
}

/// The longest pause a doubled `Retry-After` imposes.
const MAX_PAUSE: Duration = Duration::from_secs(60);

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
        let sent = limiter.acquire().await.unwrap();
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
        let sent = limiter.acquire().await.unwrap();
        let pauses: Vec<Duration> = (0..8)
            .map(|_| limiter.rate_limited(sent, None, backoff))
            .collect();
        assert!(
            pauses.iter().all(|p| *p == Duration::from_secs(1)),
            "{pauses:?}"
        );
        // A request sent after that pause and rejected again doubles it.
        let sent = limiter.acquire().await.unwrap();
        assert_eq!(
            limiter.rate_limited(sent, None, backoff),
            Duration::from_secs(2)
        );
        // A success resets the streak; Retry-After wins over the backoff.
        limiter.succeeded(sent);
        let sent = limiter.acquire().await.unwrap();
        assert_eq!(
            limiter.rate_limited(sent, None, backoff),
            Duration::from_secs(1)
        );
        limiter.succeeded(sent);
        let sent = limiter.acquire().await.unwrap();
        assert_eq!(
            limiter.rate_limited(sent, Some(Duration::from_secs(9)), backoff),
            Duration::from_secs(9)
        );
        // Refused again right after it, nothing succeeding: it was too
        // short, and is doubled (up to a minute).
        let sent = limiter.acquire().await.unwrap();
        assert_eq!(
            limiter.rate_limited(sent, Some(Duration::from_secs(9)), backoff),
            Duration::from_secs(18)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_releases_every_waiter_at_once() {
        let limiter = Arc::new(Limiter::new(RateLimit::per_minute(1)));
        assert!(limiter.acquire().await.is_some());
        let start = Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move { limiter.acquire().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(limiter.state_now().waiting, 3);
        limiter.stop();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), None);
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        assert_eq!(limiter.acquire().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_never_connected_gives_its_slot_back() {
        let limiter = Limiter::new(RateLimit::per_minute(1));
        let start = Instant::now();
        let sent = limiter.acquire().await.unwrap();
        limiter.refund(sent);
        limiter.acquire().await.unwrap();
        assert_eq!(Instant::now(), start);
        let state = limiter.state_now();
        assert_eq!(state.next_at, Some(start + Duration::from_millis(61_200)));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_429_requests_resume_at_the_pace_the_server_showed() {
        // The server allows 20 requests per 60 s; we sent 20 at once, the
        // 21st was refused with Retry-After 60.
        let limiter = Limiter::new(RateLimit::Unlimited);
        let start = Instant::now();
        for _ in 0..20 {
            let sent = limiter.acquire().await.unwrap();
            limiter.succeeded(sent);
        }
        let sent = limiter.acquire().await.unwrap();
        let never = |_| Duration::ZERO;
        limiter.rate_limited(sent, Some(Duration::from_secs(60)), never);
        assert_eq!(limiter.state_now().spacing, Some(Duration::from_secs(3)));
        // Echoes (sent before the pause was decided) teach nothing.
        limiter.rate_limited(sent, Some(Duration::from_secs(60)), never);
        assert_eq!(limiter.state_now().spacing, Some(Duration::from_secs(3)));
        let mut times = Vec::new();
        for _ in 0..5 {
            let sent = limiter.acquire().await.unwrap();
            times.push(sent - start);
        }
        assert_eq!(times[0], Duration::from_secs(60));
        // Spread 3 s apart (no success reported, so no relaxing).
        assert_eq!(times[4] - times[0], Duration::from_secs(12));
    }
}
