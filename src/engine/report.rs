//! What the engine tells the outside world while it runs, and what it did.
//! The engine never prints: the CLI implements [`Reporter`] with progress
//! bars or log lines, tests count events.

use crate::fsutil::StorageFault;
use crate::jobs::Job;
use crate::model::Ticker;

/// How one job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished; `rows_new` bars were not stored before.
    Done { rows_new: u64 },
    /// Failed; `retry` tells whether it was put back in the queue.
    Failed { error: String, retry: bool },
    /// Given back unfinished (stop requested); its progress is kept.
    Released,
    /// Another runner took it over (our lease expired).
    Lost,
}

/// Receives the engine's events. Every method has a default that ignores it.
pub trait Reporter: Send + Sync {
    /// The run starts with `queued` jobs pending or running in the table.
    fn run_started(&self, _queued: u64) {}
    /// The queue's REST requests, at least: one per REST job (its first
    /// page) and one per grouped-daily job; flat-file and derive jobs send
    /// none. Comes right after [`Reporter::run_started`].
    fn requests_planned(&self, _requests: u64) {}
    fn job_started(&self, _job: &Job) {}
    /// A page of `bars` bars was stored for `job` (`rows_new` of them new).
    fn page_stored(&self, _job: &Job, _bars: u64, _rows_new: u64) {}
    fn job_finished(&self, _job: &Job, _outcome: &JobOutcome) {}
}

/// A reporter that ignores everything.
pub struct Silent;

impl Reporter for Silent {}

/// A job that failed for good, for the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedJob {
    pub id: i64,
    pub ticker: Ticker,
    pub description: String,
    pub error: String,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub done: u64,
    pub failed: Vec<FailedJob>,
    /// Failures put back in the queue for a later attempt in this run.
    pub retried: u64,
    pub released: u64,
    pub rows_new: u64,
    /// True when a stop was requested (Ctrl-C) before the queue was empty.
    pub interrupted: bool,
    /// A failure that ended the run for every job (a rejected key, a full
    /// disk); the jobs in flight were given back, their progress kept.
    pub fatal: Option<Fatal>,
}

/// A failure that stopped the whole run, and what the user must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    pub kind: FatalKind,
    /// What happened and what to do, for the user.
    pub message: String,
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Who must act after a [`Fatal`] stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatalKind {
    /// The server refused the key: the configuration must change (a usage
    /// error, exit 2).
    Refused,
    /// The disk under the library (or the job table) is full or read-only:
    /// free space or remount, then run the same command again (a storage
    /// failure, exit 1).
    Storage(StorageFault),
    /// The API could not be reached at all (a wrong `--api-url`, no
    /// network): every request would fail the same way (exit 1).
    Unreachable,
    /// The disk failed to write back the library's files (an I/O error of
    /// `syncfs`): nothing written since can be vouched for (a storage
    /// failure, exit 1).
    WriteBack,
}

impl FatalKind {
    /// Whether the configuration (not the machine) must change.
    pub fn is_usage(self) -> bool {
        self == Self::Refused
    }
}
