//! The job table: finpipe's memory of planned work and of what is already
//! stored. One SQLite file (WAL) holds `jobs` (pending → running → done |
//! failed, with attempts, last error, lease and progress) and `coverage` (per
//! series, the date ranges fetched to completion).
//!
//! [`JobTable`] is synchronous: every method is one statement or one
//! transaction. The async engine wraps it in `Arc<Mutex<_>>` and calls it
//! through `spawn_blocking`. Several processes may open one file: claims are
//! atomic, and every write after a claim is guarded by `owner` and
//! `state = 'running'`, so a job lost to another runner (lease expired) is
//! reported, never overwritten. No method reads the clock: times are passed in
//! as Unix milliseconds (`now_ms`).
//!
//! Owners must be unique per worker (for example `host:pid:worker`), since the
//! owner is what proves a job is still yours.

mod coverage;
mod fanout;
mod lifecycle;
mod row;
pub mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;
#[cfg(test)]
mod tests_race;

pub use lifecycle::{Closing, CoverageGrant};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::{DateRange, union};
use row::{RawJob, basis_to_sql, date_to_sql, job_columns, range_from_sql, timeframe_list_to_sql};

/// Result of every job table operation.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// What went wrong with the job table.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot create the directory {path} for the job table: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the job table {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the job table {path} cannot use WAL journaling (journal_mode is {mode:?}); \
         keep it on a local file system (--db)"
    )]
    NotWal { path: PathBuf, mode: String },
    #[error("job table: {context}: {source}")]
    Sqlite {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("migrating the job table to schema version {version}: {source}")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
    #[error(
        "the job table {path} was written by a newer finpipe (schema version {found}; \
         this build knows up to {known}): upgrade finpipe"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("job {id} in the job table is corrupt: {detail}")]
    Corrupt { id: i64, detail: String },
    #[error("coverage of {series} in the job table is corrupt: {detail}")]
    CorruptCoverage { series: String, detail: String },
}

impl JobError {
    /// Whether another connection held the database too long (SQLITE_BUSY or
    /// SQLITE_LOCKED after the busy timeout). Retryable: the engine should
    /// wait and try again, never fail a job for it.
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Open { source, .. } | Self::Sqlite { source, .. } => busy(source),
            Self::Migration { source, .. } => busy(source),
            _ => false,
        }
    }
}

fn busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Reads a non-negative count (rusqlite has no `FromSql` for `usize`).
fn count(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<usize> {
    let value: i64 = row.get(index)?;
    usize::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// Wraps a rusqlite error with what was being done.
fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> JobError {
    move |source| JobError::Sqlite { context, source }
}

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
}

impl JobKind {
    pub const ALL: [Self; 4] = [Self::Rest, Self::Derive, Self::Flat, Self::Grouped];

    /// The stored name: `rest`, `derive`, `flatfile` or `grouped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Derive => "derive",
            Self::Flat => "flatfile",
            Self::Grouped => "grouped",
        }
    }

    /// Whether the job fans out to target tickers (`job_targets`).
    pub fn has_targets(self) -> bool {
        matches!(self, Self::Flat | Self::Grouped)
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
name_impls!(JobKind, "kind", "rest, derive, flatfile, grouped");
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

/// A read transaction started by [`JobTable::read_snapshot`]; ended by
/// [`ReadSnapshot::end`] or, ignoring errors, when dropped.
pub struct ReadSnapshot<'a> {
    conn: &'a rusqlite::Connection,
    open: bool,
}

impl ReadSnapshot<'_> {
    /// Ends the read.
    pub fn end(mut self) -> Result<()> {
        // On an error `drop` rolls back, so the connection is not left in it.
        self.conn
            .execute_batch("COMMIT")
            .map_err(sql("ending a read"))?;
        self.open = false;
        Ok(())
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing was written: ending it cannot lose anything.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
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

/// One connection to the job table.
pub struct JobTable {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for JobTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobTable")
            .field("path", &self.path)
            .finish()
    }
}

/// A new job, or a done job of the same key planned again (its days were not
/// all covered: a day whose session had not ended, a hole `verify --fix`
/// forgot), which goes back to pending. Pending, running and failed jobs of
/// the same key are left alone.
const INSERT_SQL: &str = "INSERT INTO jobs
    (kind, ticker, timeframe, derived, adjusted, start_date, end_date,
     state, attempts, available_at, rows, requests, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, 0, 0, ?8, ?8)
    ON CONFLICT (kind, ticker, timeframe, adjusted, start_date, end_date) DO UPDATE SET
        state = 'pending', attempts = 0, owner = NULL, progress_ts = NULL,
        last_error = NULL, derived = excluded.derived,
        available_at = excluded.available_at, updated_at = excluded.updated_at,
        finished_at = NULL
    WHERE jobs.state = 'done'";

impl JobTable {
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
        let conn = Connection::open(&path).map_err(|source| JobError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path, false)
    }

    /// A private in-memory table, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| JobError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path, true)
    }

    fn init(mut conn: Connection, path: PathBuf, in_memory: bool) -> Result<Self> {
        schema::configure(&conn, &path, in_memory)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self { conn, path })
    }

    /// The file this table lives in (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn immediate(&mut self, context: &'static str) -> Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(context))
    }

    /// Adds `jobs` as `pending`, available at `now_ms`, in one transaction.
    /// Idempotent: a job whose (kind, ticker, timeframe, basis, range) is
    /// already stored, in any state, is skipped. Returns how many were new.
    pub fn insert(&mut self, jobs: &[NewJob], now_ms: i64) -> Result<usize> {
        let tx = self.immediate("starting to insert jobs")?;
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare_cached(INSERT_SQL)
                .map_err(sql("preparing the job insert"))?;
            for job in jobs {
                added += stmt
                    .execute(params![
                        job.kind.as_str(),
                        job.ticker.as_str(),
                        job.timeframe.to_string(),
                        timeframe_list_to_sql(&job.derived),
                        basis_to_sql(job.basis),
                        date_to_sql(job.range.start),
                        date_to_sql(job.range.end),
                        now_ms,
                    ])
                    .map_err(sql("inserting a job"))?;
            }
        }
        tx.commit().map_err(sql("committing new jobs"))?;
        Ok(added)
    }

    /// The date ranges (merged, sorted) that jobs already plan for the
    /// series: jobs pending or running whose base timeframe is `timeframe`,
    /// whose derived list contains it, or (fan-out jobs) whose targets hold
    /// the ticker. Done jobs count through the coverage they recorded (which
    /// leaves out a day whose session had not ended, so it is fetched again,
    /// and which `verify --fix` can forget); failed jobs not at all, so
    /// planning again covers their ranges.
    pub fn open_ranges(
        &self,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
    ) -> Result<Vec<DateRange>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, start_date, end_date FROM jobs
                 WHERE (ticker = ?1 OR id IN (SELECT job_id FROM job_targets WHERE ticker = ?1))
                   AND adjusted = ?2
                   AND state IN ('pending', 'running')
                   AND (timeframe = ?3 OR instr(',' || derived || ',', ',' || ?3 || ',') > 0)",
            )
            .map_err(sql("preparing the open ranges query"))?;
        let rows = stmt
            .query_map(
                params![ticker.as_str(), basis_to_sql(basis), timeframe.to_string()],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(sql("reading open ranges"))?;
        let mut ranges = Vec::new();
        for row in rows {
            let (id, start, end) = row.map_err(sql("reading open ranges"))?;
            ranges.push(
                range_from_sql(&start, &end).map_err(|detail| JobError::Corrupt { id, detail })?,
            );
        }
        Ok(union(ranges))
    }

    /// Starts a read transaction: queries until [`ReadSnapshot::end`] see one
    /// snapshot and take the database's read lock once (planning thousands
    /// of tickers otherwise locks and unlocks for every query). Only reads
    /// may run meanwhile.
    pub fn read_snapshot(&self) -> Result<ReadSnapshot<'_>> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(sql("starting a read"))?;
        Ok(ReadSnapshot {
            conn: &self.conn,
            open: true,
        })
    }

    /// Failed jobs (of `ticker`, or all) back to pending, available at
    /// `now_ms`, with attempts reset to 0. The last error is kept until the
    /// next attempt overwrites or clears it. Returns how many were requeued.
    pub fn requeue_failed(&mut self, ticker: Option<&Ticker>, now_ms: i64) -> Result<usize> {
        self.conn
            .prepare_cached(
                "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
                     available_at = ?1, updated_at = ?1, finished_at = NULL
                 WHERE state = 'failed' AND (?2 IS NULL OR ticker = ?2)",
            )
            .and_then(|mut update| update.execute(params![now_ms, ticker.map(Ticker::as_str)]))
            .map_err(sql("requeueing failed jobs"))
    }

    /// The job with this id, if any.
    pub fn get(&self, id: i64) -> Result<Option<Job>> {
        let raw = self
            .conn
            .query_row(
                concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1"),
                [id],
                RawJob::from_row,
            )
            .optional()
            .map_err(sql("reading a job"))?;
        raw.map(RawJob::into_job).transpose()
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<StateCounts> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'running'), 0),
                        COALESCE(SUM(state = 'done'), 0), COALESCE(SUM(state = 'failed'), 0)
                 FROM jobs",
                [],
                |row| {
                    Ok(StateCounts {
                        pending: count(row, 0)?,
                        running: count(row, 1)?,
                        done: count(row, 2)?,
                        failed: count(row, 3)?,
                    })
                },
            )
            .map_err(sql("counting jobs"))
    }

    /// Up to `limit` jobs (in `state`, or in any state), the most recently
    /// changed first (`updated_at` descending, then id descending), so the
    /// newest failures lead `list(Some(JobState::Failed), n)`.
    pub fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE (?1 IS NULL OR state = ?1)
                  ORDER BY updated_at DESC, id DESC LIMIT ?2"
            ))
            .map_err(sql("preparing the job list"))?;
        let rows = stmt
            .query_map(
                params![state.map(JobState::as_str), limit],
                RawJob::from_row,
            )
            .map_err(sql("listing jobs"))?;
        let mut jobs = Vec::new();
        for raw in rows {
            jobs.push(raw.map_err(sql("listing jobs"))?.into_job()?);
        }
        Ok(jobs)
    }

    /// Deletes the done jobs (and nothing else); returns how many. Coverage
    /// still records what they fetched.
    pub fn clear_done(&mut self) -> Result<usize> {
        self.conn
            .execute("DELETE FROM jobs WHERE state = 'done'", [])
            .map_err(sql("clearing done jobs"))
    }

    /// How many jobs are pending or running: the work left.
    pub fn pending_or_running(&self) -> Result<usize> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')",
                [],
                |row| count(row, 0),
            )
            .map_err(sql("counting open jobs"))
    }
}
