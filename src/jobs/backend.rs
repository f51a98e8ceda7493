//! The seam between the job table's users and its storage: [`JobBackend`],
//! the operations every backend (SQLite today, PostgreSQL next) provides,
//! with the contract each must keep. `conformance` checks that contract, one
//! test function per behaviour, against every backend.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{
    Closing, CoverageRow, FailReason, Job, JobState, NewJob, Progress, Result, RunEnd, RunRecord,
    StateCounts, Totals,
};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// One handle on a job table. Users reach it through
/// [`JobTable`](super::JobTable), never directly.
///
/// Contract for every backend:
/// - Each method is atomic: one statement or one transaction, committed when
///   it returns `Ok` and leaving nothing behind when it returns `Err`.
/// - Several handles, in several processes, may use one table at once.
///   [`claim`](Self::claim) is atomic across them: no job is ever handed to
///   two claimers while its lease holds. Every write after a claim is guarded
///   by `owner` and `state = running` and answers `false` (changing nothing)
///   when the job was lost to another runner.
/// - No method reads a clock: times are Unix milliseconds passed in.
/// - Reads take `&self`, writes `&mut self`, so a read snapshot
///   ([`begin_read`](Self::begin_read)) can only be followed by reads. A
///   backend whose client needs `&mut` for a query keeps it in a `RefCell`:
///   the trait asks for `Send` (the engine moves the table to its own
///   thread), not `Sync`.
/// - Errors are [`JobError`](super::JobError)s classed by
///   [`ErrorClass`](super::ErrorClass); a backend maps its own errors
///   (busy, storage, corrupt) when it makes them, and keeps them as sources.
pub trait JobBackend: Send {
    /// Where the table lives, for messages: a file path, or a server URL
    /// without its password.
    fn location(&self) -> &str;

    /// The schema version stored in the table (after [`open`]'s migrations,
    /// the newest this build knows).
    ///
    /// [`open`]: super::JobTable::open
    fn schema_version(&self) -> Result<i64>;

    /// Ends the handle cleanly: folds what it wrote into the table's main
    /// storage (SQLite: checkpoints and truncates the WAL, when no other
    /// connection is using it) and closes the connection, reporting a
    /// failure instead of ignoring it. Dropping a handle also closes it,
    /// silently.
    fn close(self: Box<Self>) -> Result<()>;

    // ---- planning ----

    /// Adds `jobs` as pending, available at `now_ms`, in one transaction.
    /// A job whose key (kind, ticker, timeframe, basis, range) is stored
    /// pending, running or failed is skipped; stored done, it is planned
    /// again (pending, attempts 0, progress and error cleared). Returns how
    /// many were added or planned again.
    fn insert(&mut self, jobs: &[NewJob], now_ms: i64) -> Result<usize>;

    /// Plans a fan-out job (flat-file or grouped-daily) for `targets`. New:
    /// inserted pending with them. Pending or running: gains the targets it
    /// lacks. Done or failed: pending again for exactly `targets`. Returns
    /// whether anything changed.
    fn insert_fanout(&mut self, job: &NewJob, targets: &[Ticker], now_ms: i64) -> Result<bool>;

    /// The tickers a fan-out job fans out to, sorted.
    fn targets(&self, job_id: i64) -> Result<Vec<Ticker>>;

    /// Records that the day file of `dataset`/`kind` on `day` was ingested
    /// with this ETag (replacing an earlier one).
    fn record_ingested(
        &mut self,
        dataset: &str,
        kind: &str,
        day: NaiveDate,
        etag: &str,
    ) -> Result<()>;

    /// A reference answer cached under `name` (e.g. the trade conditions),
    /// with when it was fetched (Unix ms); `None` when none was stored.
    fn cached(&self, name: &str) -> Result<Option<(String, i64)>>;

    /// Stores `body` under `name`, fetched at `now_ms`, replacing what was there.
    fn store_cached(&mut self, name: &str, body: &str, now_ms: i64) -> Result<()>;

    /// The ETags of the ingested day files of `dataset`/`kind` from `from`
    /// through `to`.
    fn ingested(
        &self,
        dataset: &str,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, String>>;

    /// The date ranges (merged, sorted) that pending or running jobs plan for
    /// the series: their base timeframe is `timeframe`, or their derived list
    /// holds it, and their ticker (or, fan-out jobs, one of their targets) is
    /// `ticker`. Done jobs count through their coverage, failed ones not.
    fn open_ranges(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>>;

    /// Starts a read snapshot: reads until [`end_read`](Self::end_read) or
    /// [`abort_read`](Self::abort_read) see one state of the table.
    fn begin_read(&self) -> Result<()>;

    /// Ends the read snapshot.
    fn end_read(&self) -> Result<()>;

    /// Ends the read snapshot, ignoring errors (nothing was written).
    fn abort_read(&self);

    // ---- a job's life ----

    /// Claims the next ready job (pending with `available_at <= now_ms`, or
    /// running with its lease expired; smallest `available_at`, then id) for
    /// `owner`, leased until `now_ms + lease_ms`, attempts counted. `None`
    /// when nothing is ready. A claimed row that cannot be read is marked
    /// failed (so it does not block the queue) and reported as corrupt.
    fn claim(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>>;

    /// Every running job back to pending, available at `now_ms`, progress
    /// kept; for a runner holding the exclusive run lock. Returns how many.
    fn reclaim_orphans(&mut self, now_ms: i64) -> Result<usize>;

    /// Extends the lease of every job `owner` runs to `now_ms + lease_ms`
    /// and stamps them updated at `now_ms` (the runner's heartbeat, which
    /// `status` shows). Returns how many.
    fn renew_leases(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<usize>;

    /// Records `progress` of a job `owner` runs and renews its lease to
    /// `now_ms + lease_ms`. `false` (nothing changed) when it lost the job.
    fn record_progress(
        &mut self,
        id: i64,
        owner: &str,
        progress: Progress,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool>;

    /// Marks the job done with what its last step leaves to record (progress,
    /// counters, coverage), all in one transaction, clearing an earlier
    /// error. `false` (nothing recorded, coverage included) when `owner` no
    /// longer runs it.
    fn complete_with(
        &mut self,
        id: i64,
        owner: &str,
        closing: &Closing,
        now_ms: i64,
    ) -> Result<bool>;

    /// Records `error` and its `reason`: with `retry_at_ms`, pending again
    /// not before then; without, failed for good. Progress kept. `false` when
    /// `owner` no longer runs it.
    #[allow(clippy::too_many_arguments)] // each is one column of the update
    fn fail(
        &mut self,
        id: i64,
        owner: &str,
        error: &str,
        reason: FailReason,
        retry_at_ms: Option<i64>,
        requests_added: i64,
        now_ms: i64,
    ) -> Result<bool>;

    /// Gives the job back: pending, available at `now_ms`, progress kept, the
    /// attempt still counted. `false` when `owner` no longer runs it.
    fn release(&mut self, id: i64, owner: &str, now_ms: i64) -> Result<bool>;

    /// Failed jobs (of `ticker`, or all) back to pending at `now_ms`, attempts
    /// 0, last error and fail reason kept. Returns how many.
    fn requeue_failed(&mut self, ticker: Option<&Ticker>, now_ms: i64) -> Result<usize>;

    // ---- reading and tidying jobs ----

    /// The job with this id, if any.
    fn get(&self, id: i64) -> Result<Option<Job>>;

    /// How many jobs are in each state.
    fn counts(&self) -> Result<StateCounts>;

    /// Up to `limit` jobs (in `state`, or any), most recently changed first
    /// (`updated_at`, then id, descending).
    fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>>;

    /// Deletes the done jobs; returns how many. Coverage is kept.
    fn clear_done(&mut self) -> Result<usize>;

    /// How many jobs are pending or running.
    fn pending_or_running(&self) -> Result<usize>;

    // ---- coverage ----

    /// Records `range` as covered for every timeframe of every ticker, merged
    /// with what each series has (overlapping and adjacent ranges become
    /// one), in one transaction.
    fn add_coverage_all(
        &mut self,
        tickers: &[Ticker],
        timeframes: &[Timeframe],
        basis: Basis,
        range: DateRange,
    ) -> Result<()>;

    /// Removes `range` from the series' coverage.
    fn remove_coverage(
        &mut self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        range: DateRange,
    ) -> Result<()>;

    /// The series' covered ranges, sorted and merged.
    fn coverage(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>>;

    /// Every stored coverage range, sorted by ticker, timeframe (as text),
    /// basis (unadjusted first) and start date.
    fn all_coverage(&self) -> Result<Vec<CoverageRow>>;

    // ---- run history ----

    /// Records that a run of `command` by `owner` (the engine's owner
    /// string) started at `now_ms`, under `rate_limit` as configured.
    /// Returns the run's id, for [`run_finished`](Self::run_finished).
    fn run_started(
        &mut self,
        command: &str,
        owner: &str,
        rate_limit: Option<&str>,
        now_ms: i64,
    ) -> Result<i64>;

    /// Records the end of run `id` at `now_ms` with what it did. A run that
    /// does not exist (or no longer does) is left alone, without an error.
    fn run_finished(&mut self, id: i64, end: &RunEnd, now_ms: i64) -> Result<()>;

    /// Up to `limit` runs, newest first (`started_at`, then id, descending).
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>>;

    /// The answers of 429 every run in the table got, summed.
    fn rate_limited_total(&self) -> Result<u64>;

    /// The requests and rows of every job in the table, summed.
    fn totals(&self) -> Result<Totals>;
}
