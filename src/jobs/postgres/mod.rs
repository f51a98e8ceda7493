//! The job table on a PostgreSQL server: the second [`JobBackend`], for
//! runners on several machines draining one table (`--db postgres://…`).
//!
//! The synchronous `postgres` client runs a tokio runtime of its own and
//! panics when it is created, used or dropped on a thread that is inside
//! one, as every async command's is. So [`PgJobs`] keeps its connection
//! ([`session::Session`]) on an OS thread of its own
//! ([`OwnerThread`](crate::owner_thread::OwnerThread)); each method sends it
//! a closure and waits for the answer.
//!
//! Each submodule keeps the SQL of one concern, as the SQLite backend's do:
//! `jobs` (planning, reading, tidying), `lifecycle` (claims with `FOR UPDATE
//! SKIP LOCKED`, leases, endings), `fanout` (targets, ingested day files),
//! `coverage`, `runs`, `schema` (versioned migrations), `row` (reading rows),
//! `session` (connecting, TLS, errors and their classes) and `advisory`
//! (the run lock). Serialization failures and deadlocks are run again
//! inside ([`session::retrying`]); what reaches the caller is classed like
//! SQLite's errors. Nothing here ever shows the URL's password: the
//! location is always [`PgUrl::redacted`].

pub mod advisory;
mod coverage;
mod fanout;
mod jobs;
mod lifecycle;
mod rate;
mod row;
mod runs;
pub(crate) mod schema;
pub(crate) mod session;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

pub use self::rate::PgRate;
use self::session::{Session, retrying};
use super::{
    Closing, CoverageRow, ErrorClass, FailReason, Job, JobBackend, JobError, JobState, NewJob,
    PgUrl, Progress, Result, RunEnd, RunRecord, StateCounts, Totals,
};
use crate::model::{Basis, Ticker, Timeframe};
use crate::owner_thread::OwnerThread;
use crate::ranges::DateRange;

/// What every job-table connection sets first: how long a statement waits
/// for another connection's row lock before it fails as busy, as SQLite's
/// busy timeout does.
const SESSION_SETTINGS: &str = "SET lock_timeout = '10s'";

/// One connection to a PostgreSQL job table, on its own thread.
pub struct PgJobs {
    thread: OwnerThread<Session, Result<()>>,
    location: String,
}

impl fmt::Debug for PgJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgJobs")
            .field("location", &self.location)
            .finish()
    }
}

impl PgJobs {
    /// Connects to the job table at `url` and migrates its schema. Fails
    /// with [`JobError::NewerSchema`] if a newer finpipe wrote it.
    pub fn open(url: &PgUrl) -> Result<Self> {
        let location = url.redacted().to_owned();
        let (connect, migrated_at) = (url.clone(), location.clone());
        let thread = OwnerThread::start_with(
            "finpipe-postgres",
            move || {
                let mut session = Session::connect(&connect, SESSION_SETTINGS)?;
                schema::migrate(&mut session, &migrated_at)?;
                Ok(session)
            },
            Session::close,
            Ok(()),
        )
        .map_err(|source| JobError::Open {
            location: location.clone(),
            class: ErrorClass::Internal,
            source: Box::new(source),
        })??;
        Ok(Self { thread, location })
    }

    /// Runs `op` on the connection's thread (connecting again first if the
    /// server closed the connection), again after a serialization failure.
    fn call<T: Send + 'static>(
        &self,
        context: &'static str,
        op: impl FnMut(&mut Session) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.thread
            .run_blocking(move |session| {
                session.reconnect_if_closed()?;
                match retrying(session, op) {
                    // The connection broke under the call (a server restart,
                    // a network cut): busy, so the caller tries again, on a
                    // new connection. Doing a call twice is safe: every
                    // write after a claim is guarded by owner and state, and
                    // a claim whose answer was lost comes back when its
                    // lease ends.
                    Err(error) if session.client.is_closed() => Err(JobError::Backend {
                        context,
                        class: ErrorClass::Busy,
                        source: Box::new(error),
                    }),
                    other => other,
                }
            })
            .unwrap_or_else(|| {
                Err(JobError::Backend {
                    context,
                    class: ErrorClass::Internal,
                    source: "the PostgreSQL connection's thread stopped (a bug)".into(),
                })
            })
    }

    /// The server process of the connection, for tests that cut it.
    #[cfg(test)]
    pub(crate) fn backend_pid(&self) -> Result<i32> {
        self.call("reading the backend's pid", |s| {
            let row = s
                .client
                .query_one("SELECT pg_backend_pid()", &[])
                .map_err(session::pg("test SQL"))?;
            row.try_get(0).map_err(session::pg("test SQL"))
        })
    }

    /// Runs `sql` on the connection, for tests of what only PostgreSQL has.
    #[cfg(test)]
    pub(crate) fn execute_sql(&self, sql: &'static str) -> Result<()> {
        self.call("running test SQL", move |s| {
            s.client.batch_execute(sql).map_err(session::pg("test SQL"))
        })
    }
}

impl JobBackend for PgJobs {
    fn location(&self) -> &str {
        &self.location
    }

    fn schema_version(&self) -> Result<i64> {
        self.call("reading the schema version", schema::stored_version)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.thread.stop().unwrap_or_else(|| {
            Err(JobError::Backend {
                context: "closing the connection",
                class: ErrorClass::Internal,
                source: "the PostgreSQL connection's thread panicked".into(),
            })
        })
    }

    fn insert(&mut self, new: &[NewJob], now_ms: i64) -> Result<usize> {
        let new = new.to_vec();
        self.call("inserting jobs", move |s| jobs::insert(s, &new, now_ms))
    }

    fn insert_fanout(&mut self, job: &NewJob, targets: &[Ticker], now_ms: i64) -> Result<bool> {
        let (job, targets) = (job.clone(), targets.to_vec());
        self.call("planning a fan-out job", move |s| {
            fanout::insert_fanout(s, &job, &targets, now_ms)
        })
    }

    fn targets(&self, job_id: i64) -> Result<Vec<Ticker>> {
        self.call("reading targets", move |s| fanout::targets(s, job_id))
    }

    fn record_ingested(
        &mut self,
        dataset: &str,
        kind: &str,
        day: NaiveDate,
        etag: &str,
    ) -> Result<()> {
        let (dataset, kind, etag) = (dataset.to_owned(), kind.to_owned(), etag.to_owned());
        self.call("recording an ingested flat file", move |s| {
            fanout::record_ingested(s, &dataset, &kind, day, &etag)
        })
    }

    fn cached(&self, name: &str) -> Result<Option<(String, i64)>> {
        let name = name.to_owned();
        self.call("reading a cached answer", move |s| fanout::cached(s, &name))
    }

    fn store_cached(&mut self, name: &str, body: &str, now_ms: i64) -> Result<()> {
        let (name, body) = (name.to_owned(), body.to_owned());
        self.call("caching an answer", move |s| {
            fanout::store_cached(s, &name, &body, now_ms)
        })
    }

    fn ingested(
        &self,
        dataset: &str,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, String>> {
        let (dataset, kind) = (dataset.to_owned(), kind.to_owned());
        self.call("reading ingested flat files", move |s| {
            fanout::ingested(s, &dataset, &kind, from, to)
        })
    }

    fn open_ranges(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        let ticker = ticker.clone();
        self.call("reading open ranges", move |s| {
            jobs::open_ranges(s, &ticker, timeframe, basis)
        })
    }

    fn begin_read(&self) -> Result<()> {
        self.call("starting a read", |s| {
            s.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(session::pg("starting a read"))
        })
    }

    fn end_read(&self) -> Result<()> {
        self.call("ending a read", |s| {
            s.client
                .batch_execute("COMMIT")
                .map_err(session::pg("ending a read"))
        })
    }

    fn abort_read(&self) {
        // Nothing was written: ending it cannot lose anything.
        let _ = self.call("ending a read", |s| {
            s.client
                .batch_execute("ROLLBACK")
                .map_err(session::pg("ending a read"))
        });
    }

    fn claim(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
        let owner = owner.to_owned();
        self.call("claiming a job", move |s| {
            lifecycle::claim(s, &owner, now_ms, lease_ms)
        })
    }

    fn reclaim_orphans(&mut self, now_ms: i64) -> Result<usize> {
        self.call("reclaiming orphaned jobs", move |s| {
            lifecycle::reclaim_orphans(s, now_ms)
        })
    }

    fn renew_leases(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<usize> {
        let owner = owner.to_owned();
        self.call("renewing leases", move |s| {
            lifecycle::renew_leases(s, &owner, now_ms, lease_ms)
        })
    }

    fn record_progress(
        &mut self,
        id: i64,
        owner: &str,
        progress: Progress,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let owner = owner.to_owned();
        self.call("recording progress", move |s| {
            lifecycle::record_progress(s, id, &owner, progress, now_ms, lease_ms)
        })
    }

    fn complete_with(
        &mut self,
        id: i64,
        owner: &str,
        closing: &Closing,
        now_ms: i64,
    ) -> Result<bool> {
        let (owner, closing) = (owner.to_owned(), closing.clone());
        self.call("completing a job", move |s| {
            lifecycle::complete_with(s, id, &owner, &closing, now_ms)
        })
    }

    fn fail(
        &mut self,
        id: i64,
        owner: &str,
        error: &str,
        reason: FailReason,
        retry_at_ms: Option<i64>,
        requests_added: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let (owner, error) = (owner.to_owned(), error.to_owned());
        self.call("recording a job failure", move |s| {
            lifecycle::fail(
                s,
                id,
                &owner,
                &error,
                reason,
                retry_at_ms,
                requests_added,
                now_ms,
            )
        })
    }

    fn release(&mut self, id: i64, owner: &str, now_ms: i64) -> Result<bool> {
        let owner = owner.to_owned();
        self.call("releasing a job", move |s| {
            lifecycle::release(s, id, &owner, now_ms)
        })
    }

    fn requeue_failed(&mut self, ticker: Option<&Ticker>, now_ms: i64) -> Result<usize> {
        let ticker = ticker.cloned();
        self.call("requeueing failed jobs", move |s| {
            jobs::requeue_failed(s, ticker.as_ref(), now_ms)
        })
    }

    fn get(&self, id: i64) -> Result<Option<Job>> {
        self.call("reading a job", move |s| jobs::get(s, id))
    }

    fn counts(&self) -> Result<StateCounts> {
        self.call("counting jobs", jobs::counts)
    }

    fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>> {
        self.call("listing jobs", move |s| jobs::list(s, state, limit))
    }

    fn clear_done(&mut self) -> Result<usize> {
        self.call("clearing done jobs", jobs::clear_done)
    }

    fn pending_or_running(&self) -> Result<usize> {
        self.call("counting open jobs", jobs::pending_or_running)
    }

    fn add_coverage_all(
        &mut self,
        tickers: &[Ticker],
        timeframes: &[Timeframe],
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        let (tickers, timeframes) = (tickers.to_vec(), timeframes.to_vec());
        self.call("changing coverage", move |s| {
            coverage::add_coverage_all(s, &tickers, &timeframes, basis, range)
        })
    }

    fn remove_coverage(
        &mut self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        let ticker = ticker.clone();
        self.call("changing coverage", move |s| {
            coverage::remove_coverage(s, &ticker, timeframe, basis, range)
        })
    }

    fn coverage(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        let ticker = ticker.clone();
        self.call("reading coverage", move |s| {
            coverage::read_series(s, &ticker, timeframe, basis)
        })
    }

    fn all_coverage(&self) -> Result<Vec<CoverageRow>> {
        self.call("listing coverage", coverage::all_coverage)
    }

    fn run_started(
        &mut self,
        command: &str,
        owner: &str,
        rate_limit: Option<&str>,
        now_ms: i64,
    ) -> Result<i64> {
        let (command, owner) = (command.to_owned(), owner.to_owned());
        let rate_limit = rate_limit.map(str::to_owned);
        self.call("recording a run's start", move |s| {
            runs::run_started(s, &command, &owner, rate_limit.as_deref(), now_ms)
        })
    }

    fn run_finished(&mut self, id: i64, end: &RunEnd, now_ms: i64) -> Result<()> {
        let end = *end;
        self.call("recording a run's end", move |s| {
            runs::run_finished(s, id, &end, now_ms)
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.call("listing runs", move |s| runs::runs(s, limit))
    }

    fn rate_limited_total(&self) -> Result<u64> {
        self.call("summing the answers of 429", runs::rate_limited_total)
    }

    fn totals(&self) -> Result<Totals> {
        self.call("summing requests and rows", jobs::totals)
    }
}
