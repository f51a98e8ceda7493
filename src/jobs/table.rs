//! [`JobTable`], the handle every user of the job table holds, and the read
//! snapshot it hands out. Each method passes its call to the backend; the
//! contract of each is on [`JobBackend`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;

use super::postgres::PgJobs;
use super::sqlite::SqliteJobs;
use super::{
    Closing, CoverageRow, DbLocation, FailReason, Job, JobBackend, JobState, NewJob, Progress,
    Result, RunEnd, RunRecord, StateCounts, Totals,
};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// A handle on the job table: one connection to it.
///
/// A box around a [`JobBackend`] rather than an enum of backends: the
/// callers and the conformance suite are written against the trait alone,
/// so a backend (PostgreSQL behind its own module, a fake in a test) plugs in
/// without a match arm in each of these forty methods, and one handle type
/// serves them all. The virtual call costs nothing next to the statement it
/// runs. The handle stays a concrete type so that callers keep one name, and
/// so that the convenience forms ([`complete`](Self::complete),
/// [`add_coverage`](Self::add_coverage), [`read_snapshot`](Self::read_snapshot))
/// are written once for every backend.
pub struct JobTable {
    backend: Box<dyn JobBackend>,
}

impl fmt::Debug for JobTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobTable")
            .field("location", &self.backend.location())
            .finish()
    }
}

impl JobTable {
    /// Opens (creating it and its parent directory if needed) the SQLite job
    /// table at `path`, in WAL mode, and migrates its schema. Fails with
    /// [`JobError::NewerSchema`](super::JobError::NewerSchema) if a newer
    /// finpipe wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_backend(Box::new(SqliteJobs::open(path)?)))
    }

    /// Opens the job table at `location`: a SQLite file ([`open`](Self::open))
    /// or a PostgreSQL database (connected, its schema migrated).
    pub fn open_at(location: &DbLocation) -> Result<Self> {
        match location {
            DbLocation::Sqlite(path) => Self::open(path),
            DbLocation::Postgres(url) => Ok(Self::from_backend(Box::new(PgJobs::open(url)?))),
        }
    }

    /// A private in-memory table, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Ok(Self::from_backend(Box::new(SqliteJobs::open_in_memory()?)))
    }

    /// A handle on any backend.
    pub fn from_backend(backend: Box<dyn JobBackend>) -> Self {
        Self { backend }
    }

    /// Where the table lives, for messages (a file path, `:memory:`, a
    /// PostgreSQL URL without its password).
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    /// [`location`](Self::location) as a path: the file of a SQLite table.
    pub fn path(&self) -> &Path {
        Path::new(self.backend.location())
    }

    /// See [`JobBackend::schema_version`].
    pub fn schema_version(&self) -> Result<i64> {
        self.backend.schema_version()
    }

    /// Closes the table cleanly: its WAL folded into the file (when no other
    /// connection uses it) and the connection closed, a failure reported.
    /// Dropping the handle closes it too, ignoring failures.
    pub fn close(self) -> Result<()> {
        self.backend.close()
    }

    /// See [`JobBackend::insert`].
    pub fn insert(&mut self, jobs: &[NewJob], now_ms: i64) -> Result<usize> {
        self.backend.insert(jobs, now_ms)
    }

    /// See [`JobBackend::insert_fanout`].
    pub fn insert_fanout(&mut self, job: &NewJob, targets: &[Ticker], now_ms: i64) -> Result<bool> {
        debug_assert!(job.kind.has_targets());
        self.backend.insert_fanout(job, targets, now_ms)
    }

    /// See [`JobBackend::targets`].
    pub fn targets(&self, job_id: i64) -> Result<Vec<Ticker>> {
        self.backend.targets(job_id)
    }

    /// See [`JobBackend::record_ingested`].
    pub fn record_ingested(
        &mut self,
        dataset: &str,
        kind: &str,
        day: NaiveDate,
        etag: &str,
    ) -> Result<()> {
        self.backend.record_ingested(dataset, kind, day, etag)
    }

    /// See [`JobBackend::cached`].
    pub fn cached(&self, name: &str) -> Result<Option<(String, i64)>> {
        self.backend.cached(name)
    }

    /// See [`JobBackend::store_cached`].
    pub fn store_cached(&mut self, name: &str, body: &str, now_ms: i64) -> Result<()> {
        self.backend.store_cached(name, body, now_ms)
    }

    /// See [`JobBackend::ingested`].
    pub fn ingested(
        &self,
        dataset: &str,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, String>> {
        self.backend.ingested(dataset, kind, from, to)
    }

    /// See [`JobBackend::open_ranges`].
    pub fn open_ranges(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        self.backend.open_ranges(ticker, timeframe, basis)
    }

    /// Starts a read snapshot: queries until [`ReadSnapshot::end`] see one
    /// state of the table and take its read lock once (planning thousands of
    /// tickers otherwise locks and unlocks for every query). The snapshot
    /// borrows the table, so only reads can run meanwhile.
    pub fn read_snapshot(&self) -> Result<ReadSnapshot<'_>> {
        self.backend.begin_read()?;
        Ok(ReadSnapshot {
            backend: &*self.backend,
            open: true,
        })
    }

    /// See [`JobBackend::claim`].
    pub fn claim(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
        self.backend.claim(owner, now_ms, lease_ms)
    }

    /// See [`JobBackend::reclaim_orphans`].
    pub fn reclaim_orphans(&mut self, now_ms: i64) -> Result<usize> {
        self.backend.reclaim_orphans(now_ms)
    }

    /// See [`JobBackend::renew_leases`].
    pub fn renew_leases(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<usize> {
        self.backend.renew_leases(owner, now_ms, lease_ms)
    }

    /// Records that bars up to `progress_ts` are stored, adds the counters
    /// and renews the lease to `now_ms + lease_ms`. `false` (and nothing
    /// changed) when `owner` no longer runs the job. See
    /// [`JobBackend::record_progress`].
    #[allow(clippy::too_many_arguments)] // each is one column of the update
    pub fn record_progress(
        &mut self,
        id: i64,
        owner: &str,
        progress_ts: i64,
        rows_added: i64,
        requests_added: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let progress = Progress {
            last_ts: progress_ts,
            rows: rows_added,
            requests: requests_added,
        };
        self.backend
            .record_progress(id, owner, progress, now_ms, lease_ms)
    }

    /// Marks the job done (clearing any error of an earlier attempt).
    /// `false` when `owner` no longer runs it.
    pub fn complete(
        &mut self,
        id: i64,
        owner: &str,
        requests_added: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let closing = Closing {
            requests: requests_added,
            ..Closing::default()
        };
        self.complete_with(id, owner, &closing, now_ms)
    }

    /// See [`JobBackend::complete_with`].
    pub fn complete_with(
        &mut self,
        id: i64,
        owner: &str,
        closing: &Closing,
        now_ms: i64,
    ) -> Result<bool> {
        self.backend.complete_with(id, owner, closing, now_ms)
    }

    /// See [`JobBackend::fail`].
    #[allow(clippy::too_many_arguments)] // each is one column of the update
    pub fn fail(
        &mut self,
        id: i64,
        owner: &str,
        error: &str,
        reason: FailReason,
        retry_at_ms: Option<i64>,
        requests_added: i64,
        now_ms: i64,
    ) -> Result<bool> {
        self.backend.fail(
            id,
            owner,
            error,
            reason,
            retry_at_ms,
            requests_added,
            now_ms,
        )
    }

    /// See [`JobBackend::release`].
    pub fn release(&mut self, id: i64, owner: &str, now_ms: i64) -> Result<bool> {
        self.backend.release(id, owner, now_ms)
    }

    /// See [`JobBackend::requeue_failed`].
    pub fn requeue_failed(&mut self, ticker: Option<&Ticker>, now_ms: i64) -> Result<usize> {
        self.backend.requeue_failed(ticker, now_ms)
    }

    /// See [`JobBackend::get`].
    pub fn get(&self, id: i64) -> Result<Option<Job>> {
        self.backend.get(id)
    }

    /// See [`JobBackend::counts`].
    pub fn counts(&self) -> Result<StateCounts> {
        self.backend.counts()
    }

    /// See [`JobBackend::list`].
    pub fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>> {
        self.backend.list(state, limit)
    }

    /// See [`JobBackend::clear_done`].
    pub fn clear_done(&mut self) -> Result<usize> {
        self.backend.clear_done()
    }

    /// See [`JobBackend::pending_or_running`].
    pub fn pending_or_running(&self) -> Result<usize> {
        self.backend.pending_or_running()
    }

    /// Records `range` as covered for the series, merged with what it has.
    pub fn add_coverage(
        &mut self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        self.add_coverage_all(std::slice::from_ref(ticker), &[timeframe], basis, range)
    }

    /// See [`JobBackend::add_coverage_all`] (a flat-file day covers thousands
    /// of series at once).
    pub fn add_coverage_all(
        &mut self,
        tickers: &[Ticker],
        timeframes: &[Timeframe],
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        self.backend
            .add_coverage_all(tickers, timeframes, basis, range)
    }

    /// See [`JobBackend::remove_coverage`].
    pub fn remove_coverage(
        &mut self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        self.backend
            .remove_coverage(ticker, timeframe, basis, range)
    }

    /// See [`JobBackend::coverage`].
    pub fn coverage(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        self.backend.coverage(ticker, timeframe, basis)
    }

    /// See [`JobBackend::all_coverage`].
    pub fn all_coverage(&self) -> Result<Vec<CoverageRow>> {
        self.backend.all_coverage()
    }

    /// See [`JobBackend::run_started`].
    pub fn run_started(
        &mut self,
        command: &str,
        owner: &str,
        rate_limit: Option<&str>,
        now_ms: i64,
    ) -> Result<i64> {
        self.backend.run_started(command, owner, rate_limit, now_ms)
    }

    /// See [`JobBackend::run_finished`].
    pub fn run_finished(&mut self, id: i64, end: &RunEnd, now_ms: i64) -> Result<()> {
        self.backend.run_finished(id, end, now_ms)
    }

    /// See [`JobBackend::runs`].
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.backend.runs(limit)
    }

    /// See [`JobBackend::rate_limited_total`].
    pub fn rate_limited_total(&self) -> Result<u64> {
        self.backend.rate_limited_total()
    }

    /// See [`JobBackend::totals`].
    pub fn totals(&self) -> Result<Totals> {
        self.backend.totals()
    }
}

/// A read snapshot started by [`JobTable::read_snapshot`]; ended by
/// [`ReadSnapshot::end`] or, ignoring errors, when dropped.
pub struct ReadSnapshot<'a> {
    backend: &'a dyn JobBackend,
    open: bool,
}

impl ReadSnapshot<'_> {
    /// Ends the read.
    pub fn end(mut self) -> Result<()> {
        self.backend.end_read()?;
        // On an error `drop` aborts it, so the handle is not left in it.
        self.open = false;
        Ok(())
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        if self.open {
            self.backend.abort_read();
        }
    }
}
