//! The engine's progress on a terminal: a bar of jobs, labelled with the
//! command (`update`, `backfill`, …), with an ETA from the requests still to
//! send and the rate limit; and a line of bars written (the same count as
//! the summary's `bars_new`), requests, failures and what the rate limiter is
//! doing ("waiting for the rate limit: 5/min, next request in 9 s"). Hidden
//! when stderr is not a terminal or with `--quiet`, and when there is nothing
//! to do (no full bar at 0/0); log lines never tear it (see `output`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use finpipe::engine::{JobOutcome, Reporter, describe};
use finpipe::jobs::{Job, JobKind};
use finpipe::polygon::{Client, LimiterState, RateLimit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output;

/// The command the bars belong to, set once by the dispatcher.
static LABEL: OnceLock<&'static str> = OnceLock::new();

/// Names the command whose progress the bars show.
pub(super) fn set_label(label: &'static str) {
    let _ = LABEL.set(label);
}

/// How often the line is redrawn while nothing else happens, so that the
/// limiter's countdown moves.
const REFRESH: Duration = Duration::from_millis(500);

/// Progress bars fed by engine events.
pub(super) struct Bars {
    inner: Arc<Inner>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

struct Inner {
    jobs: ProgressBar,
    line: ProgressBar,
    visible: bool,
    client: Client,
    started: Instant,
    counts: Counts,
}

/// `planned_requests` before the engine said.
const UNKNOWN: u64 = u64::MAX;

/// What the bars count, from engine events.
#[derive(Debug, Default)]
struct Counts {
    /// Bars stored (each page's, new or not).
    bars: AtomicU64,
    /// Bars not stored before: the summary's `bars_new`.
    rows_new: AtomicU64,
    failed: AtomicU64,
    /// Jobs done (or failed for good) out of `queued`.
    finished: AtomicU64,
    queued: AtomicU64,
    /// Requests the queue sends at least, and the request-sending jobs
    /// finished so far.
    planned_requests: AtomicU64,
    request_jobs_finished: AtomicU64,
}

impl Bars {
    pub(super) fn new(client: Client, quiet: bool) -> Self {
        let visible = !quiet && output::interactive();
        // Drawn nowhere until the run says it has work (see `run_started`).
        let jobs = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        jobs.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:32}] {pos}/{len} jobs  {elapsed} elapsed, {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        jobs.set_prefix(*LABEL.get().unwrap_or(&"run"));
        let line = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        line.set_style(
            ProgressStyle::with_template("{prefix:>8} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let inner = Arc::new(Inner {
            jobs,
            line,
            visible,
            client,
            started: Instant::now(),
            counts: Counts {
                planned_requests: AtomicU64::new(UNKNOWN),
                ..Counts::default()
            },
        });
        let refresher = (visible && tokio::runtime::Handle::try_current().is_ok()).then(|| {
            let inner = Arc::clone(&inner);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REFRESH).await;
                    inner.refresh();
                }
            })
        });
        Self { inner, refresher }
    }

    pub(super) fn finish(&self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
        self.inner.jobs.finish_and_clear();
        self.inner.line.finish_and_clear();
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}

impl Inner {
    fn refresh(&self) {
        let limiter = self.client.limiter();
        let state = limiter.state_now();
        let c = &self.counts;
        let requests = self.client.stats().requests();
        let seconds = self.started.elapsed().as_secs_f64();
        // A rate over less than a few seconds says nothing.
        let rate = if seconds >= 5.0 {
            format!(" ({:.1}/s)", requests as f64 / seconds)
        } else {
            String::new()
        };
        let mut message = format!(
            "bars {} ({} new) · requests {requests}{rate} · failed {}",
            c.bars.load(Ordering::Relaxed),
            c.rows_new.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        );
        if let Some(note) = waiting_note(limiter.limit(), &state, tokio::time::Instant::now()) {
            message.push_str(" · ");
            message.push_str(&note);
        }
        self.line.set_message(message);
        let planned = c.planned_requests.load(Ordering::Relaxed);
        let by_limit = (planned != UNKNOWN)
            .then(|| {
                let remaining =
                    planned.saturating_sub(c.request_jobs_finished.load(Ordering::Relaxed));
                eta_at_limit(
                    limiter.limit(),
                    &state,
                    remaining,
                    tokio::time::Instant::now(),
                )
            })
            .flatten();
        let finished = c.finished.load(Ordering::Relaxed);
        let remaining_jobs = c.queued.load(Ordering::Relaxed).saturating_sub(finished);
        let by_pace = (finished > 0).then(|| {
            let per_job = self.started.elapsed().as_secs_f64() / finished as f64;
            Duration::from_secs_f64(per_job * remaining_jobs as f64)
        });
        let eta = match (by_limit, by_pace) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.jobs.set_message(match eta {
            Some(eta) => format!("ETA {}", human(eta)),
            None => "ETA -".to_owned(),
        });
    }
}

/// What the limiter holds requests back for, when it does for a while:
/// "waiting for the rate limit: 5/min, next request in 9 s".
fn waiting_note(
    limit: RateLimit,
    state: &LimiterState,
    now: tokio::time::Instant,
) -> Option<String> {
    let wait = state.next_at?.checked_duration_since(now)?;
    if state.waiting == 0 || wait < Duration::from_secs(1) {
        return None;
    }
    let next = human(wait);
    Some(if state.paused {
        format!("paused after HTTP 429 (too many requests), next request in {next}")
    } else if let Some(spacing) = state.spacing.filter(|s| *s > limit_spacing(limit)) {
        format!(
            "waiting for the server's pace (one request every {}; limit {limit}), next request in {next}",
            human(spacing)
        )
    } else {
        format!("waiting for the rate limit: {limit}, next request in {next}")
    })
}

/// The time between requests at `limit` on average (zero: unlimited).
fn limit_spacing(limit: RateLimit) -> Duration {
    match limit {
        RateLimit::Unlimited => Duration::ZERO,
        RateLimit::Window { requests, window } => window / requests.max(1),
    }
}

/// How long `remaining` requests take at the limit (and the pace learned
/// from 429s), the first of them once the limiter lets one through;
/// `None` when unlimited (the observed pace decides then).
fn eta_at_limit(
    limit: RateLimit,
    state: &LimiterState,
    remaining: u64,
    now: tokio::time::Instant,
) -> Option<Duration> {
    let per = limit_spacing(limit).max(state.spacing.unwrap_or_default());
    if per.is_zero() {
        return None;
    }
    if remaining == 0 {
        return Some(Duration::ZERO);
    }
    let first = state
        .next_at
        .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
    let rest = u32::try_from(remaining - 1).unwrap_or(u32::MAX);
    Some(first + per.saturating_mul(rest))
}

/// `9 s`, `4m 05s`, `2h 07m`.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0 && d.as_secs() == 0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

impl Reporter for Bars {
    fn run_started(&self, queued: u64) {
        let inner = &self.inner;
        inner.counts.queued.store(queued, Ordering::Relaxed);
        inner.jobs.set_length(queued);
        if inner.visible && queued > 0 {
            // Only now on screen: a run with nothing to do shows no bar.
            output::add_bar(inner.jobs.clone());
            output::add_bar(inner.line.clone());
            inner.jobs.enable_steady_tick(Duration::from_millis(250));
        }
        inner.refresh();
    }

    fn requests_planned(&self, requests: u64) {
        self.inner
            .counts
            .planned_requests
            .store(requests, Ordering::Relaxed);
        self.inner.refresh();
    }

    fn page_stored(&self, _job: &Job, bars: u64, rows_new: u64) {
        let c = &self.inner.counts;
        c.bars.fetch_add(bars, Ordering::Relaxed);
        c.rows_new.fetch_add(rows_new, Ordering::Relaxed);
        self.inner.refresh();
    }

    fn job_finished(&self, job: &Job, outcome: &JobOutcome) {
        let inner = &self.inner;
        let c = &inner.counts;
        let sends_requests = matches!(job.kind, JobKind::Rest | JobKind::Grouped);
        let finished = match outcome {
            JobOutcome::Done { rows_new } => {
                if job.kind == JobKind::Derive {
                    // Derived bars come in no page: counted as the summary does.
                    c.rows_new.fetch_add(*rows_new, Ordering::Relaxed);
                    c.bars.fetch_add(*rows_new, Ordering::Relaxed);
                }
                tracing::info!("done {} ({rows_new} new bars)", describe(job));
                true
            }
            JobOutcome::Failed {
                error,
                retry: false,
            } => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("failed {}: {error}", describe(job));
                true
            }
            JobOutcome::Failed { error, retry: true } => {
                tracing::warn!("will retry {}: {error}", describe(job));
                false
            }
            JobOutcome::Lost => sends_requests,
            JobOutcome::Released => false,
        };
        if finished {
            if !matches!(outcome, JobOutcome::Lost) {
                inner.jobs.inc(1);
                c.finished.fetch_add(1, Ordering::Relaxed);
            }
            if sends_requests {
                c.request_jobs_finished.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.refresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_the_limiter_waits_for() {
        let now = tokio::time::Instant::now();
        let waiting = LimiterState {
            waiting: 3,
            next_at: Some(now + Duration::from_millis(8_400)),
            paused: false,
            spacing: None,
        };
        assert_eq!(
            waiting_note(RateLimit::per_minute(5), &waiting, now).as_deref(),
            Some("waiting for the rate limit: 5/min, next request in 8 s")
        );
        let paused = LimiterState {
            paused: true,
            ..waiting
        };
        assert!(
            waiting_note(RateLimit::per_minute(5), &paused, now)
                .unwrap()
                .starts_with("paused after HTTP 429")
        );
        let paced = LimiterState {
            spacing: Some(Duration::from_secs(3)),
            ..waiting
        };
        assert!(
            waiting_note(RateLimit::per_second(100), &paced, now)
                .unwrap()
                .contains("one request every 3 s; limit 100/s")
        );
        // Nobody waiting, or only for a moment: nothing to say.
        let idle = LimiterState {
            waiting: 0,
            ..waiting
        };
        assert_eq!(waiting_note(RateLimit::per_minute(5), &idle, now), None);
        let brief = LimiterState {
            next_at: Some(now + Duration::from_millis(300)),
            ..waiting
        };
        assert_eq!(waiting_note(RateLimit::per_minute(5), &brief, now), None);
    }

    #[test]
    fn the_eta_comes_from_the_requests_left_and_the_limit() {
        let now = tokio::time::Instant::now();
        let free = LimiterState {
            waiting: 0,
            next_at: None,
            paused: false,
            spacing: None,
        };
        // 80 requests at 5 a minute: one every 12 s after the first.
        assert_eq!(
            eta_at_limit(RateLimit::per_minute(5), &free, 80, now),
            Some(Duration::from_secs(79 * 12))
        );
        let later = LimiterState {
            next_at: Some(now + Duration::from_secs(9)),
            ..free
        };
        assert_eq!(
            eta_at_limit(RateLimit::per_minute(5), &later, 2, now),
            Some(Duration::from_secs(21))
        );
        assert_eq!(eta_at_limit(RateLimit::Unlimited, &free, 80, now), None);
        assert_eq!(
            eta_at_limit(RateLimit::per_minute(5), &free, 0, now),
            Some(Duration::ZERO)
        );
        assert_eq!(human(Duration::from_secs(948)), "15m 48s");
        assert_eq!(human(Duration::from_secs(7_620)), "2h 07m");
        assert_eq!(human(Duration::from_millis(300)), "1 s");
    }
}
