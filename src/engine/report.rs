//! What the engine tells the outside world while it runs, and what it did.
//! The engine never prints: the CLI implements [`Reporter`] with progress
//! bars or log lines, tests count events.

use crate::jobs::Job;

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
    /// A failure that ended the run for every job (a rejected key).
    pub fatal: Option<String>,
}
