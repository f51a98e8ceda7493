//! What a queue of jobs costs before it runs (`--dry-run`): jobs per source,
//! the REST requests they send, the flat-file day files they download, and
//! how long those requests take at a rate limit.
//!
//! Requests are counted from what the planner knows: every REST job sends
//! at least one request (its first page), a grouped-daily job exactly one,
//! flat-file and derive jobs none (day files are S3 downloads, outside the
//! REST limit; derived bars are computed from stored 1m bars). How many pages
//! a REST job takes depends on how many bars the server has, which only the
//! server knows; [`Estimate::rest_pages_if_full`] is the count if every
//! session of the range were full (50 000 bars a page), an upper estimate.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::flatfiles::{Dataset, FileKind};
use crate::jobs::{Job, JobKind};
use crate::model::{AssetClass, Timeframe};
use crate::polygon::RateLimit;
use crate::ranges::DateRange;

/// Bars a page of REST aggregates holds (`limit=50000`).
pub const PAGE_BARS: u64 = 50_000;

/// What a queue of jobs costs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// REST range jobs: one ticker, one timeframe, one range each.
    pub rest_jobs: usize,
    /// The requests they send at least: one each.
    pub rest_requests: u64,
    /// The pages they take if every session of their ranges is full.
    pub rest_pages_if_full: u64,
    /// Grouped-daily jobs: one request each, for a whole market's day.
    pub grouped_jobs: usize,
    /// Flat-file jobs: S3 day files fanned out to their tickers.
    pub flat_jobs: usize,
    /// Distinct day files those jobs download (one per dataset, kind and
    /// open day, whatever the number of tickers).
    pub flat_day_files: usize,
    /// Derive jobs: computed from stored 1m bars, no request.
    pub derive_jobs: usize,
    #[serde(skip)]
    day_files: BTreeSet<(&'static str, &'static str, NaiveDate)>,
}

/// One queued job, as far as its cost goes.
#[derive(Clone, Copy, Debug)]
pub struct Queued<'a> {
    pub kind: JobKind,
    /// The ticker (REST, derive) or the dataset's name (flat files).
    pub ticker: &'a str,
    pub class: AssetClass,
    pub timeframe: Timeframe,
    pub range: DateRange,
    /// The last stored timestamp: a resumed job asks only for what follows.
    pub progress_ts: Option<i64>,
}

impl<'a> From<&'a Job> for Queued<'a> {
    fn from(job: &'a Job) -> Self {
        Self {
            kind: job.kind,
            ticker: job.ticker.as_str(),
            class: job.ticker.asset_class(),
            timeframe: job.timeframe,
            range: job.range,
            progress_ts: job.progress_ts,
        }
    }
}

impl Estimate {
    /// The cost of `jobs`.
    pub fn of<'a>(jobs: impl IntoIterator<Item = Queued<'a>>) -> Self {
        let mut estimate = Self::default();
        for job in jobs {
            estimate.add(job);
        }
        estimate
    }

    /// Adds one job's cost.
    pub fn add(&mut self, job: Queued<'_>) {
        match job.kind {
            JobKind::Rest => {
                self.rest_jobs += 1;
                self.rest_requests += 1;
                self.rest_pages_if_full += pages_if_full(&job);
            }
            JobKind::Grouped => self.grouped_jobs += 1,
            JobKind::Derive => self.derive_jobs += 1,
            // A trades job reads day files as a flat-file job does (its
            // `trades_v1` files), and is counted with them.
            JobKind::Flat | JobKind::Trades => {
                self.flat_jobs += 1;
                let kind = if job.kind == JobKind::Trades {
                    Some(FileKind::Trades)
                } else {
                    FileKind::ALL
                        .into_iter()
                        .find(|k| k.timeframe() == Some(job.timeframe))
                };
                let (Some(dataset), Some(kind)) = (Dataset::from_name(job.ticker), kind) else {
                    return;
                };
                let first = resume_day(&job).max(dataset.earliest());
                for day in dataset.calendar().open_days(first, job.range.end) {
                    self.day_files.insert((dataset.name(), kind.name(), day));
                }
                self.flat_day_files = self.day_files.len();
            }
        }
    }

    /// Jobs of every kind.
    pub fn jobs(&self) -> usize {
        self.rest_jobs + self.grouped_jobs + self.flat_jobs + self.derive_jobs
    }

    /// The REST requests the queue sends at least (its pages may be more).
    pub fn requests(&self) -> u64 {
        self.rest_requests + self.grouped_jobs as u64
    }

    /// The REST requests if every session of the REST ranges is full.
    pub fn requests_if_full(&self) -> u64 {
        self.rest_pages_if_full + self.grouped_jobs as u64
    }
}

/// The first day a job still has to fetch: the day of its last stored bar
/// (a page may end inside it), else its first day.
fn resume_day(job: &Queued<'_>) -> NaiveDate {
    job.progress_ts
        .map(|ts| job.class.date_of(ts))
        .filter(|day| *day > job.range.start)
        .unwrap_or(job.range.start)
        .min(job.range.end)
}

/// Pages one REST job takes if every session of its range is full: at
/// least one (the answer that says "nothing").
fn pages_if_full(job: &Queued<'_>) -> u64 {
    let days = job
        .class
        .calendar()
        .open_days(resume_day(job), job.range.end)
        .count() as u64;
    let bars = days.saturating_mul(bars_per_day(job.class, job.timeframe));
    bars.div_ceil(PAGE_BARS).max(1)
}

/// The most bars one open day holds at `tf`: the longest session (US stocks
/// 04:00 to 20:00 ET with extended hours, crypto and forex the whole day)
/// cut into bars; one for a day or longer.
fn bars_per_day(class: AssetClass, tf: Timeframe) -> u64 {
    let session_ms: u64 = match class {
        AssetClass::Crypto | AssetClass::Fx => 24 * 3_600_000,
        AssetClass::Stocks | AssetClass::Options | AssetClass::Indices => 16 * 3_600_000,
    };
    match tf.fixed_millis().and_then(|w| u64::try_from(w).ok()) {
        Some(width) if width > 0 => session_ms.div_ceil(width),
        _ => 1,
    }
}

/// How long `requests` requests take at `limit`, at least: the limiter lets
/// `N` through at once and the next `N` a window later, so the last one
/// leaves `⌊(requests − 1) / N⌋` windows after the first (the answers' own
/// time comes on top). `None` without a limit.
pub fn time_at(requests: u64, limit: RateLimit) -> Option<Duration> {
    match limit {
        RateLimit::Unlimited => None,
        RateLimit::Window {
            requests: n,
            window,
        } => {
            let windows = requests.saturating_sub(1) / u64::from(n.max(1));
            Some(window.saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX)))
        }
    }
}

/// A duration for people: `0 s`, `45 s`, `15 min`, `2 h 5 min`, `3 d 4 h`.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, 0) => format!("{h} h"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

/// The first day of a `--days N` window: `N` days before `today`.
pub fn days_before(today: NaiveDate, days: u64) -> NaiveDate {
    today
        .checked_sub_days(Days::new(days))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn job<'a>(kind: JobKind, ticker: &'a str, tf: &str, from: &str, to: &str) -> Queued<'a> {
        let class = crate::model::Ticker::new(ticker).unwrap().asset_class();
        Queued {
            kind,
            ticker,
            class,
            timeframe: tf.parse().unwrap(),
            range: DateRange::new(d(from), d(to)).unwrap(),
            progress_ts: None,
        }
    }

    #[test]
    fn each_source_is_counted_in_its_own_currency() {
        let estimate = Estimate::of([
            // A year of minutes: 252 sessions of up to 960 bars, 5 pages.
            job(JobKind::Rest, "AAPL", "1m", "2024-01-01", "2024-12-31"),
            // Daily bars: one page.
            job(JobKind::Rest, "MSFT", "1d", "2024-01-01", "2024-12-31"),
            job(
                JobKind::Grouped,
                "grouped_us_stocks",
                "1d",
                "2024-11-02",
                "2024-11-04",
            ),
            job(
                JobKind::Grouped,
                "grouped_us_stocks",
                "1d",
                "2024-11-05",
                "2024-11-05",
            ),
            // Two flat jobs of one dataset share their day files; the other
            // kind (day aggregates) is other files.
            job(
                JobKind::Flat,
                "us_stocks_sip",
                "1m",
                "2024-11-04",
                "2024-11-08",
            ),
            job(
                JobKind::Flat,
                "us_stocks_sip",
                "1m",
                "2024-11-06",
                "2024-11-12",
            ),
            job(
                JobKind::Flat,
                "us_stocks_sip",
                "1d",
                "2024-11-04",
                "2024-11-04",
            ),
            job(JobKind::Derive, "AAPL", "5m", "2024-11-01", "2024-11-30"),
        ]);
        assert_eq!(estimate.rest_jobs, 2);
        assert_eq!(estimate.rest_requests, 2);
        assert_eq!(estimate.rest_pages_if_full, 5 + 1);
        assert_eq!(estimate.grouped_jobs, 2);
        assert_eq!(estimate.flat_jobs, 3);
        // 11-04..11-12 holds 7 sessions (the weekend of the 9th and 10th is
        // closed), plus the day aggregates of the 4th.
        assert_eq!(estimate.flat_day_files, 7 + 1);
        assert_eq!(estimate.derive_jobs, 1);
        assert_eq!(estimate.jobs(), 8);
        assert_eq!(estimate.requests(), 4);
        assert_eq!(estimate.requests_if_full(), 8);
    }

    #[test]
    fn a_resumed_job_counts_what_is_left_and_an_empty_range_one_request() {
        let mut resumed = job(JobKind::Rest, "X:BTCUSD", "1m", "2024-01-01", "2024-12-31");
        assert_eq!(
            Estimate::of([resumed]).rest_pages_if_full,
            11,
            "366 × 1440 bars"
        );
        resumed.progress_ts = Some(crate::calendar::utc_midnight_ms(d("2024-12-01")));
        assert_eq!(
            Estimate::of([resumed]).rest_pages_if_full,
            1,
            "31 × 1440 bars"
        );
        let weekend = job(JobKind::Rest, "AAPL", "1m", "2024-11-02", "2024-11-03");
        assert_eq!(Estimate::of([weekend]).rest_pages_if_full, 1);
    }

    #[test]
    fn time_follows_the_sliding_window() {
        let five = RateLimit::per_minute(5);
        assert_eq!(time_at(0, five), Some(Duration::ZERO));
        // The first five go at once, the sixth a minute later.
        assert_eq!(time_at(5, five), Some(Duration::ZERO));
        assert_eq!(time_at(6, five), Some(Duration::from_secs(60)));
        assert_eq!(time_at(80, five), Some(Duration::from_secs(15 * 60)));
        assert_eq!(
            time_at(1000, RateLimit::per_second(100)),
            Some(Duration::from_secs(9))
        );
        assert_eq!(time_at(1000, RateLimit::Unlimited), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let s = Duration::from_secs;
        assert_eq!(human(s(0)), "0 s");
        assert_eq!(human(s(45)), "45 s");
        assert_eq!(human(s(900)), "15 min");
        assert_eq!(human(s(905)), "15 min 5 s");
        assert_eq!(human(s(7200)), "2 h");
        assert_eq!(human(s(7500)), "2 h 5 min");
        assert_eq!(human(s(86_400 * 3)), "3 d");
        assert_eq!(human(s(86_400 * 3 + 3600 * 4 + 7)), "3 d 4 h");
    }

    #[test]
    fn days_count_back_from_today() {
        assert_eq!(days_before(d("2024-12-02"), 30), d("2024-11-02"));
        assert_eq!(days_before(d("2024-12-02"), 0), d("2024-12-02"));
    }
}
