//! The rates behind the chart and the ETA: every [`INTERVAL`] the server
//! reads the job table's totals (requests and bars summed over every job)
//! and job counts, and keeps the last [`WINDOW`] of samples in a ring
//! buffer; rates are the differences between samples. The configured rate
//! limit is the one the newest unfinished run recorded (else the newest
//! run's).

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::wall_ms;
use crate::jobs::{RunRecord, StateCounts, Totals};
use crate::polygon::RateLimit;

use super::api::AppState;

/// How often the job table is sampled.
pub(super) const INTERVAL: Duration = Duration::from_secs(2);

/// How much history the ring buffer keeps.
pub(super) const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The span of the "now" rates (and of the ETA's job rate: a longer one).
const NOW_SPAN_MS: i64 = 30_000;
const ETA_SPAN_MS: i64 = 5 * 60_000;

/// One reading of the job table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Sample {
    pub(super) at_ms: i64,
    pub(super) requests: u64,
    pub(super) bars: u64,
    /// Jobs done or failed.
    pub(super) finished: u64,
}

/// The ring buffer and the configured limit.
#[derive(Debug, Default)]
pub(super) struct Rates {
    samples: VecDeque<Sample>,
    /// The limit as the newest run recorded it (`5/min`), if any.
    limit: Option<String>,
}

/// The rate limit a run should show: the newest unfinished run's, else the
/// newest run's (`runs` newest first).
pub(super) fn configured_limit(runs: &[RunRecord]) -> Option<String> {
    runs.iter()
        .find(|r| r.ended_at.is_none())
        .or_else(|| runs.first())
        .and_then(|r| r.rate_limit.clone())
}

/// `5/min` as requests a second, `None` for `unlimited` or an unreadable text.
pub(super) fn per_second(limit: &str) -> Option<f64> {
    match RateLimit::from_str(limit).ok()? {
        RateLimit::Unlimited => None,
        RateLimit::Window { requests, window } => {
            let secs = window.as_secs_f64();
            (secs > 0.0).then(|| f64::from(requests) / secs)
        }
    }
}

fn rate(delta: u64, ms: i64) -> f64 {
    if ms <= 0 {
        0.0
    } else {
        delta as f64 * 1000.0 / ms as f64
    }
}

impl Rates {
    /// Adds a sample, dropping those older than [`WINDOW`]. A sample whose
    /// totals went down (done jobs cleared) starts the history afresh.
    pub(super) fn push(&mut self, sample: Sample, limit: Option<String>) {
        if let Some(last) = self.samples.back()
            && (sample.requests < last.requests
                || sample.bars < last.bars
                || sample.finished < last.finished
                || sample.at_ms <= last.at_ms)
        {
            self.samples.clear();
        }
        self.samples.push_back(sample);
        let window = i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX);
        while self
            .samples
            .front()
            .is_some_and(|s| s.at_ms < sample.at_ms - window)
        {
            self.samples.pop_front();
        }
        self.limit = limit;
    }

    /// The average rates (requests, bars, jobs a second) over the last
    /// `span_ms`, or `None` with fewer than two samples in it.
    fn over(&self, span_ms: i64) -> Option<(f64, f64, f64)> {
        let last = self.samples.back()?;
        let first = self
            .samples
            .iter()
            .find(|s| s.at_ms >= last.at_ms - span_ms)?;
        let ms = last.at_ms - first.at_ms;
        (ms > 0).then(|| {
            (
                rate(last.requests - first.requests, ms),
                rate(last.bars - first.bars, ms),
                rate(last.finished - first.finished, ms),
            )
        })
    }

    /// Seconds until `remaining` jobs are finished at the recent pace (jobs
    /// done or failed over the last five minutes); `None` while nothing
    /// finishes.
    pub(super) fn eta_s(&self, remaining: usize) -> Option<f64> {
        if remaining == 0 {
            return Some(0.0);
        }
        let jobs = self.pace()?;
        (jobs > 0.0).then(|| remaining as f64 / jobs)
    }

    /// Jobs finished (done or failed) a second over the last five minutes,
    /// the pace the ETA assumes.
    pub(super) fn pace(&self) -> Option<f64> {
        self.over(ETA_SPAN_MS).map(|(_, _, jobs)| jobs)
    }

    /// Requests a second over the last 30 s.
    pub(super) fn requests_now(&self) -> Option<f64> {
        self.over(NOW_SPAN_MS).map(|r| r.0)
    }

    /// The body of `/api/rates`.
    pub(super) fn to_json(&self) -> Value {
        let points: Vec<Value> = self
            .samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .map(|(a, b)| {
                let ms = b.at_ms - a.at_ms;
                json!({
                    "t": b.at_ms,
                    "requests_per_s": rate(b.requests - a.requests, ms),
                    "bars_per_s": rate(b.bars - a.bars, ms),
                    "jobs_per_s": rate(b.finished - a.finished, ms),
                })
            })
            .collect();
        let now = self.over(NOW_SPAN_MS);
        json!({
            "now": wall_ms(),
            "interval_s": INTERVAL.as_secs(),
            "window_s": WINDOW.as_secs(),
            "limit": self.limit.as_ref().map(|text| json!({
                "text": text,
                "requests_per_s": per_second(text),
            })),
            "current": now.map(|(requests, bars, jobs)| json!({
                "requests_per_s": requests,
                "bars_per_s": bars,
                "jobs_per_s": jobs,
            })),
            "points": points,
        })
    }
}

/// Samples the job table every [`INTERVAL`] until `stop` changes. A job
/// table that cannot be read is skipped (the page says why).
pub(super) async fn sample_forever(
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let reader = Arc::clone(&state);
        let read = tokio::task::spawn_blocking(move || {
            reader.source.read(|table| {
                let totals: Totals = table.totals()?;
                let counts: StateCounts = table.counts()?;
                let runs = table.runs(10)?;
                Ok((totals, counts, runs))
            })
        })
        .await;
        match read {
            Ok(Ok((totals, counts, runs))) => {
                let sample = Sample {
                    at_ms: wall_ms(),
                    requests: totals.requests,
                    bars: totals.rows,
                    finished: (counts.done + counts.failed) as u64,
                };
                state
                    .rates
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sample, configured_limit(&runs));
            }
            Ok(Err(unavailable)) => tracing::debug!("rate sample skipped: {}", unavailable.0),
            Err(e) => tracing::warn!("rate sampler: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, requests: u64, bars: u64, finished: u64) -> Sample {
        Sample {
            at_ms,
            requests,
            bars,
            finished,
        }
    }

    #[test]
    fn rates_come_from_differences_and_the_window_is_bounded() {
        let mut rates = Rates::default();
        rates.push(sample(0, 0, 0, 0), Some("5/min".into()));
        rates.push(sample(2_000, 10, 1_000, 2), Some("5/min".into()));
        rates.push(sample(4_000, 20, 3_000, 4), Some("5/min".into()));
        let body = rates.to_json();
        assert_eq!(body["points"].as_array().unwrap().len(), 2);
        assert_eq!(body["points"][1]["bars_per_s"], 1000.0);
        assert_eq!(body["current"]["requests_per_s"], 5.0);
        assert_eq!(body["limit"]["text"], "5/min");
        assert!((per_second("5/min").unwrap() - 5.0 / 60.0).abs() < 1e-12);
        assert_eq!(per_second("unlimited"), None);
        // 6 jobs left at one job a second.
        assert_eq!(rates.eta_s(6), Some(6.0));
        assert_eq!(rates.eta_s(0), Some(0.0));
        // Far later: the old samples leave the window.
        let later = i64::try_from(WINDOW.as_millis()).unwrap() + 10_000;
        rates.push(sample(later, 30, 3_000, 4), None);
        assert_eq!(rates.samples.len(), 1);
        assert_eq!(rates.eta_s(3), None, "nothing finishes: no ETA");
        // Cleared jobs: totals drop, the history starts again.
        rates.push(sample(later + 2_000, 1, 0, 0), None);
        assert_eq!(rates.samples.len(), 1);
    }

    #[test]
    fn the_limit_is_the_newest_unfinished_runs() {
        let run = |id, ended: Option<i64>, limit: &str| RunRecord {
            id,
            command: "backfill".into(),
            owner: "h:1:1".into(),
            started_at: id,
            ended_at: ended,
            jobs_done: 0,
            jobs_failed: 0,
            bars: 0,
            requests: 0,
            exit_code: ended.map(|_| 0),
            rate_limit: Some(limit.into()),
            rate_limited: 0,
        };
        let runs = [
            run(3, Some(9), "100/s"),
            run(2, None, "5/min"),
            run(1, Some(2), "1/s"),
        ];
        assert_eq!(configured_limit(&runs).as_deref(), Some("5/min"));
        assert_eq!(configured_limit(&runs[..1]).as_deref(), Some("100/s"));
        assert_eq!(configured_limit(&[]), None);
    }
}
