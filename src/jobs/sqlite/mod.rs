//! The job table in one SQLite file, in WAL mode: the first [`JobBackend`].
//!
//! Each submodule keeps the SQL of one concern (`jobs`: planning, reading and
//! tidying jobs; `lifecycle`: claims, leases and endings; `fanout`: targets
//! and ingested day files; `coverage`; `schema`: pragmas and migrations;
//! `row`: how a job is stored; `runs`: the history of runs) as functions over
//! a connection;
//! [`SqliteJobs`] owns the connection and answers the trait with them.
//!
//! SQLite errors become [`JobError`]s here, classed by their result code
//! ([`class_of`]) so that nothing above this module reads rusqlite's types.

mod coverage;
mod fanout;
mod jobs;
mod lifecycle;
mod row;
mod runs;
pub mod schema;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use rusqlite::{Connection, ErrorCode};

use super::{
    Closing, CoverageRow, ErrorClass, FailReason, Job, JobBackend, JobError, JobState, NewJob,
    Progress, Result, RunEnd, RunRecord, StateCounts, Totals,
};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// How long [`SqliteJobs`]'s close waits for other connections before it
/// leaves the checkpoint to the last of them: closing never holds a command
/// up for long.
const CLOSE_CHECKPOINT_WAIT: Duration = Duration::from_millis(250);

/// One connection to a SQLite job table.
pub struct SqliteJobs {
    conn: Connection,
    path: PathBuf,
    location: String,
}

impl fmt::Debug for SqliteJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJobs")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteJobs {
    /// Opens (creating it and its parent directory if needed) the job table
    /// at `path`, sets WAL and the other pragmas, and migrates the schema.
    /// Fails with [`JobError::NewerSchema`] if a newer finpipe wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| JobError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(&path).map_err(|source| opening(&path, source))?;
        Self::init(conn, path, false)
    }

    /// A private in-memory table, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| opening(&path, source))?;
        Self::init(conn, path, true)
    }

    fn init(mut conn: Connection, path: PathBuf, in_memory: bool) -> Result<Self> {
        schema::configure(&conn, &path, in_memory)?;
        schema::migrate(&mut conn, &path)?;
        let location = path.display().to_string();
        Ok(Self {
            conn,
            path,
            location,
        })
    }

    /// The file this table lives in (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for tests of what only SQLite has (pragmas, plans).
    #[cfg(test)]
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Folds the WAL into the database file and truncates it, unless another
/// connection is using the table (then the last one to close does it).
fn checkpoint(conn: &Connection) -> Result<()> {
    conn.busy_timeout(CLOSE_CHECKPOINT_WAIT)
        .map_err(sql("shortening the busy timeout to close"))?;
    // One row: (busy, WAL frames, frames checkpointed); busy = 1 when another
    // connection kept it from finishing, which is not a failure.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(sql("checkpointing the WAL"))?;
    Ok(())
}

/// How a rusqlite error should be handled, from its result code.
pub(crate) fn class_of(error: &rusqlite::Error) -> ErrorClass {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorClass::Busy,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ErrorClass::Corrupt,
        Some(
            ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::NoLargeFileSupport
            | ErrorCode::OutOfMemory,
        ) => ErrorClass::Storage,
        Some(_) => ErrorClass::Internal,
        None => match error {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..) => ErrorClass::Corrupt,
            _ => ErrorClass::Internal,
        },
    }
}

/// Wraps a rusqlite error with what was being done.
pub(crate) fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> JobError {
    move |source| JobError::Backend {
        context,
        class: class_of(&source),
        source: Box::new(source),
    }
}

fn opening(path: &Path, source: rusqlite::Error) -> JobError {
    JobError::Open {
        location: path.display().to_string(),
        class: class_of(&source),
        source: Box::new(source),
    }
}

/// Starts a `BEGIN IMMEDIATE` transaction: the write lock first, so that
/// the reads in it cannot be outdated by another writer.
pub(crate) fn immediate<'c>(
    conn: &'c mut Connection,
    context: &'static str,
) -> Result<rusqlite::Transaction<'c>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql(context))
}

/// Reads a non-negative count (rusqlite has no `FromSql` for `usize`).
pub(crate) fn count(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<usize> {
    let value: i64 = row.get(index)?;
    usize::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// Reads a non-negative 64-bit count.
pub(crate) fn count_u64(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

impl JobBackend for SqliteJobs {
    fn location(&self) -> &str {
        &self.location
    }

    fn schema_version(&self) -> Result<i64> {
        schema::user_version(&self.conn).map_err(sql("reading the schema version"))
    }

    fn close(self: Box<Self>) -> Result<()> {
        checkpoint(&self.conn)?;
        self.conn
            .close()
            .map_err(|(_, source)| sql("closing the connection")(source))
    }

    fn insert(&mut self, new: &[NewJob], now_ms: i64) -> Result<usize> {
        jobs::insert(&mut self.conn, new, now_ms)
    }

    fn insert_fanout(&mut self, job: &NewJob, targets: &[Ticker], now_ms: i64) -> Result<bool> {
        fanout::insert_fanout(&mut self.conn, job, targets, now_ms)
    }

    fn targets(&self, job_id: i64) -> Result<Vec<Ticker>> {
        fanout::targets(&self.conn, job_id)
    }

    fn record_ingested(
        &mut self,
        dataset: &str,
        kind: &str,
        day: NaiveDate,
        etag: &str,
    ) -> Result<()> {
        fanout::record_ingested(&self.conn, dataset, kind, day, etag)
    }

    fn cached(&self, name: &str) -> Result<Option<(String, i64)>> {
        fanout::cached(&self.conn, name)
    }

    fn store_cached(&mut self, name: &str, body: &str, now_ms: i64) -> Result<()> {
        fanout::store_cached(&self.conn, name, body, now_ms)
    }

    fn ingested(
        &self,
        dataset: &str,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, String>> {
        fanout::ingested(&self.conn, dataset, kind, from, to)
    }

    fn open_ranges(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        jobs::open_ranges(&self.conn, ticker, timeframe, basis)
    }

    fn begin_read(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(sql("starting a read"))
    }

    fn end_read(&self) -> Result<()> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(sql("ending a read"))
    }

    fn abort_read(&self) {
        // Nothing was written: ending it cannot lose anything.
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    fn claim(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
        lifecycle::claim(&mut self.conn, owner, now_ms, lease_ms)
    }

    fn reclaim_orphans(&mut self, now_ms: i64) -> Result<usize> {
        lifecycle::reclaim_orphans(&self.conn, now_ms)
    }

    fn renew_leases(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> Result<usize> {
        lifecycle::renew_leases(&self.conn, owner, now_ms, lease_ms)
    }

    fn record_progress(
        &mut self,
        id: i64,
        owner: &str,
        progress: Progress,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        lifecycle::record_progress(&self.conn, id, owner, progress, now_ms, lease_ms)
    }

    fn complete_with(
        &mut self,
        id: i64,
        owner: &str,
        closing: &Closing,
        now_ms: i64,
    ) -> Result<bool> {
        lifecycle::complete_with(&mut self.conn, id, owner, closing, now_ms)
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
        let failure = lifecycle::Failure {
            error,
            reason,
            requests_added,
        };
        lifecycle::fail(&self.conn, id, owner, &failure, retry_at_ms, now_ms)
    }

    fn release(&mut self, id: i64, owner: &str, now_ms: i64) -> Result<bool> {
        lifecycle::release(&self.conn, id, owner, now_ms)
    }

    fn requeue_failed(&mut self, ticker: Option<&Ticker>, now_ms: i64) -> Result<usize> {
        jobs::requeue_failed(&self.conn, ticker, now_ms)
    }

    fn get(&self, id: i64) -> Result<Option<Job>> {
        jobs::get(&self.conn, id)
    }

    fn counts(&self) -> Result<StateCounts> {
        jobs::counts(&self.conn)
    }

    fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>> {
        jobs::list(&self.conn, state, limit)
    }

    fn clear_done(&mut self) -> Result<usize> {
        jobs::clear_done(&self.conn)
    }

    fn pending_or_running(&self) -> Result<usize> {
        jobs::pending_or_running(&self.conn)
    }

    fn add_coverage_all(
        &mut self,
        tickers: &[Ticker],
        timeframes: &[Timeframe],
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        coverage::add_coverage_all(&mut self.conn, tickers, timeframes, basis, range)
    }

    fn remove_coverage(
        &mut self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        range: DateRange,
    ) -> Result<()> {
        coverage::remove_coverage(&mut self.conn, ticker, timeframe, basis, range)
    }

    fn coverage(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        coverage::read_series(&self.conn, ticker, timeframe, basis)
    }

    fn all_coverage(&self) -> Result<Vec<CoverageRow>> {
        coverage::all_coverage(&self.conn)
    }

    fn run_started(
        &mut self,
        command: &str,
        owner: &str,
        rate_limit: Option<&str>,
        now_ms: i64,
    ) -> Result<i64> {
        runs::run_started(&self.conn, command, owner, rate_limit, now_ms)
    }

    fn run_finished(&mut self, id: i64, end: &RunEnd, now_ms: i64) -> Result<()> {
        runs::run_finished(&self.conn, id, end, now_ms)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        runs::runs(&self.conn, limit)
    }

    fn rate_limited_total(&self) -> Result<u64> {
        runs::rate_limited_total(&self.conn)
    }

    fn totals(&self) -> Result<Totals> {
        jobs::totals(&self.conn)
    }
}
