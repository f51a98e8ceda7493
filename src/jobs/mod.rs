//! The job table: finpipe's memory of planned work and of what is already
//! stored. It holds jobs (pending → running → done | failed, with attempts,
//! last error, lease and progress), coverage (per series, the date ranges
//! fetched to completion), the targets of fan-out jobs and the ETags of the
//! day files ingested.
//!
//! Everyone (engine, planner, `status`, `jobs`, `verify`) uses the handle
//! [`JobTable`]; behind it, one [`JobBackend`] does the work. The SQLite file
//! (WAL) in [`sqlite`] is the first backend, a PostgreSQL server
//! ([`postgres`], for runners on several machines) the second; which one is
//! a [`DbLocation`]. `conformance` is the suite of behaviours every backend
//! must pass.
//!
//! The table is synchronous: every method is one statement or one
//! transaction. The async engine calls it on a thread of its own. Several
//! processes may open one table: claims are atomic, and every write after a
//! claim is guarded by `owner` and `state = 'running'`, so a job lost to
//! another runner (lease expired) is reported, never overwritten. No method
//! reads the clock: times are passed in as Unix milliseconds (`now_ms`).
//!
//! Owners must be unique per worker (for example `host:pid:worker`), since the
//! owner is what proves a job is still yours.
//!
//! The table also keeps the history of runs ([`RunRecord`]: one row per
//! `run`, `backfill`, `update` or `run-once`) and, with each failure, why it
//! failed ([`FailReason`]), for the monitoring page.

mod backend;
#[cfg(test)]
mod conformance;
mod error;
mod location;
pub mod postgres;
pub mod runners;
pub mod sqlite;
mod stored;
mod table;
#[cfg(test)]
mod tests;

pub use backend::JobBackend;
pub use error::{BackendError, ErrorClass, JobError, Result};
pub use location::{
    DbLocation, InvalidLocation, PgUrl, is_postgres_url, library_db, redact_postgres_url,
};
pub use table::{JobTable, ReadSnapshot};

use std::fmt;
use std::str::FromStr;

use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// Why a string names no job kind or state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown job {what} {given:?}; expected one of: {expected}")]
pub struct InvalidName {
    what: &'static str,
    given: String,
    expected: &'static str,
}

/// How a job gets its bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// REST aggregates for one ticker, one base timeframe, one range.
    Rest,
    /// Timeframes computed from stored bars, no request.
    Derive,
    /// Day files of one dataset (its name in `ticker`), a run of days in one
    /// period, fanned out to the job's target tickers.
    Flat,
    /// The grouped-daily answer of one market (its name in `ticker`) for one
    /// date: one request for the daily bars of all the job's target tickers.
    Grouped,
    /// Trades day files (`trades_v1`) of one dataset (its name in `ticker`),
    /// a run of days in one period, aggregated into bars of the job's
    /// timeframe and derived list (every one built from the trades) for
    /// its target tickers.
    Trades,
}

impl JobKind {
    pub const ALL: [Self; 5] = [
        Self::Rest,
        Self::Derive,
        Self::Flat,
        Self::Grouped,
        Self::Trades,
    ];

    /// The stored name: `rest`, `derive`, `flatfile`, `grouped` or `trades`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Derive => "derive",
            Self::Flat => "flatfile",
            Self::Grouped => "grouped",
            Self::Trades => "trades",
        }
    }

    /// Whether the job fans out to target tickers (`job_targets`).
    pub fn has_targets(self) -> bool {
        matches!(self, Self::Flat | Self::Grouped | Self::Trades)
    }
}

/// Where a job is in its life: `pending → running → done | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Running, Self::Done, Self::Failed];

    /// The stored name: `pending`, `running`, `done` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

macro_rules! name_impls {
    ($ty:ty, $what:literal, $expected:literal) => {
        impl FromStr for $ty {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, InvalidName> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| InvalidName {
                        what: $what,
                        given: s.to_owned(),
                        expected: $expected,
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
name_impls!(JobKind, "kind", "rest, derive, flatfile, grouped, trades");
name_impls!(JobState, "state", "pending, running, done, failed");

/// A job to plan. `derived` are the timeframes computed from `timeframe`'s
/// bars once they are fetched (stored sorted and deduplicated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub kind: JobKind,
    pub ticker: Ticker,
    pub timeframe: Timeframe,
    pub derived: Vec<Timeframe>,
    pub basis: Basis,
    pub range: DateRange,
}

/// A job as stored. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub ticker: Ticker,
    pub timeframe: Timeframe,
    pub derived: Vec<Timeframe>,
    pub basis: Basis,
    pub range: DateRange,
    pub state: JobState,
    /// Times the job was claimed (reset by [`JobTable::requeue_failed`]).
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Why the last attempt failed; kept and cleared with `last_error`.
    pub fail_reason: Option<FailReason>,
    /// Pending: not before. Running: lease expiry (the lease holds while
    /// `now < available_at`).
    pub available_at: i64,
    pub owner: Option<String>,
    /// Timestamp of the last bar stored; `None` = nothing stored yet.
    pub progress_ts: Option<i64>,
    pub rows: i64,
    pub requests: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// Why a job failed (for now or for good), recorded with the failure; typed
/// where the error is typed (`ApiError` / `StoreError` in the engine), never
/// read back from the message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// 429s past the retry cap (a "429 storm").
    RateLimited,
    /// The API key refused.
    Refused,
    /// The plan has no access to this data.
    NotEntitled,
    /// An answer or file finpipe could not read.
    Parse,
    /// The library's or the job table's storage failed.
    Disk,
    /// Unreachable host, timeouts, 5xx after retries.
    Network,
    Other,
}

impl FailReason {
    pub const ALL: [Self; 7] = [
        Self::RateLimited,
        Self::Refused,
        Self::NotEntitled,
        Self::Parse,
        Self::Disk,
        Self::Network,
        Self::Other,
    ];

    /// The stored name (the serde name too): `rate_limited`, `refused`,
    /// `not_entitled`, `parse`, `disk`, `network` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Refused => "refused",
            Self::NotEntitled => "not_entitled",
            Self::Parse => "parse",
            Self::Disk => "disk",
            Self::Network => "network",
            Self::Other => "other",
        }
    }

    /// The reason stored as `s` ([`as_str`](Self::as_str)), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reason in a few words, for people: `429 storm`, `refused key`, …
    pub fn label(self) -> &'static str {
        match self {
            Self::RateLimited => "429 storm",
            Self::Refused => "refused key",
            Self::NotEntitled => "not entitled",
            Self::Parse => "parse error",
            Self::Disk => "disk",
            Self::Network => "network",
            Self::Other => "other",
        }
    }
}

/// One command's run (`run`, `backfill`, `update`, `run-once`), from start
/// to end. Times are Unix milliseconds (UTC).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    /// `backfill`, `update`, `run` or `run-once`.
    pub command: String,
    /// The engine's owner string (`host:pid:ms`).
    pub owner: String,
    pub started_at: i64,
    /// `None` while running (or if the process died).
    pub ended_at: Option<i64>,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub bars: u64,
    pub requests: u64,
    pub exit_code: Option<i32>,
    /// The rate limit as configured (`5/min`); never anything secret.
    pub rate_limit: Option<String>,
    /// The answers of 429 (rate limited) the run got.
    pub rate_limited: u64,
}

/// What a run did, recorded when it ends ([`JobTable::run_finished`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunEnd {
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub bars: u64,
    pub requests: u64,
    pub exit_code: i32,
    /// The answers of 429 (rate limited) the run got.
    pub rate_limited: u64,
}

/// Sums over every job in the table (the monitoring page derives request and
/// bar rates from their change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub rows: u64,
}

/// How many jobs are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
}

impl StateCounts {
    pub fn total(&self) -> usize {
        self.pending + self.running + self.done + self.failed
    }
}

/// One stored coverage range: the series (ticker, timeframe, basis) and the
/// dates it covers.
pub type CoverageRow = (Ticker, Timeframe, Basis, DateRange);

/// What a page stored: recorded after each page by
/// [`JobTable::record_progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last stored timestamp (Unix ms).
    pub last_ts: i64,
    /// Rows and requests of the page, added to the job's counts.
    pub rows: i64,
    pub requests: i64,
}

/// What a job's last step leaves to record with its completion: the progress
/// of its last page and the coverage it earned. Recorded with the job's
/// `done` in one transaction by [`JobTable::complete_with`], instead of three.
#[derive(Clone, Debug, Default)]
pub struct Closing {
    /// The last stored timestamp, when the last step stored bars.
    pub progress_ts: Option<i64>,
    /// Rows and requests of the last step, added to the job's counts.
    pub rows: i64,
    pub requests: i64,
    /// Ranges now covered.
    pub coverage: Option<CoverageGrant>,
}

/// `range` covered for every timeframe of every ticker, in one basis.
#[derive(Clone, Debug)]
pub struct CoverageGrant {
    pub tickers: Vec<Ticker>,
    pub timeframes: Vec<Timeframe>,
    pub basis: Basis,
    pub range: DateRange,
}
