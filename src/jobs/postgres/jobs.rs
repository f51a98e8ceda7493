//! The `jobs` rows outside a job's life, on PostgreSQL: planning (insert, the
//! ranges open jobs plan), reading (get, counts, list) and tidying (requeue,
//! clear). The same statements as SQLite's (`sqlite/jobs.rs`) in
//! PostgreSQL's dialect.

use super::row::{column, count, job_columns, raw_job};
use super::session::{Session, pg};
use crate::jobs::stored::{basis_to_sql, date_to_sql, range_from_sql, timeframe_list_to_sql};
use crate::jobs::{Job, JobError, JobState, NewJob, Result, StateCounts, Totals};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::{DateRange, union};

/// A new job, or a done job of the same key planned again; see SQLite's
/// `INSERT_SQL`.
pub(super) const INSERT_SQL: &str = "INSERT INTO jobs
    (kind, ticker, timeframe, derived, adjusted, start_date, end_date,
     state, attempts, available_at, rows, requests, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, 0, 0, $8, $8)
    ON CONFLICT (kind, ticker, timeframe, adjusted, start_date, end_date) DO UPDATE SET
        state = 'pending', attempts = 0, owner = NULL, progress_ts = NULL,
        last_error = NULL, fail_reason = NULL, derived = excluded.derived,
        available_at = excluded.available_at, updated_at = excluded.updated_at,
        finished_at = NULL
    WHERE jobs.state = 'done'";

/// The key and planned columns of `job`, as [`INSERT_SQL`] binds them
/// (`$1`–`$7`).
pub(super) struct Planned {
    pub(super) kind: &'static str,
    pub(super) ticker: String,
    pub(super) timeframe: String,
    pub(super) derived: String,
    pub(super) adjusted: i64,
    pub(super) start: String,
    pub(super) end: String,
}

impl Planned {
    pub(super) fn of(job: &NewJob) -> Self {
        Self {
            kind: job.kind.as_str(),
            ticker: job.ticker.as_str().to_owned(),
            timeframe: job.timeframe.to_string(),
            derived: timeframe_list_to_sql(&job.derived),
            adjusted: basis_to_sql(job.basis),
            start: date_to_sql(job.range.start),
            end: date_to_sql(job.range.end),
        }
    }
}

/// Adds `jobs` as `pending` at `now_ms` in one transaction.
pub(super) fn insert(session: &mut Session, jobs: &[NewJob], now_ms: i64) -> Result<usize> {
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client
        .transaction()
        .map_err(pg("starting to insert jobs"))?;
    let insert = statements
        .get(&mut tx, INSERT_SQL)
        .map_err(pg("preparing the job insert"))?;
    let mut added = 0;
    for job in jobs {
        let p = Planned::of(job);
        added += tx
            .execute(
                &insert,
                &[
                    &p.kind,
                    &p.ticker,
                    &p.timeframe,
                    &p.derived,
                    &p.adjusted,
                    &p.start,
                    &p.end,
                    &now_ms,
                ],
            )
            .map_err(pg("inserting a job"))?;
    }
    tx.commit().map_err(pg("committing new jobs"))?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

/// The date ranges (merged, sorted) that pending or running jobs plan for the
/// series.
pub(super) fn open_ranges(
    session: &mut Session,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
) -> Result<Vec<DateRange>> {
    const SQL: &str = "SELECT id, start_date, end_date FROM jobs
         WHERE (ticker = $1 OR id IN (SELECT job_id FROM job_targets WHERE ticker = $1))
           AND adjusted = $2
           AND state IN ('pending', 'running')
           AND (timeframe = $3 OR position(',' || $3 || ',' IN ',' || derived || ',') > 0)";
    let rows = session
        .query(
            SQL,
            &[
                &ticker.as_str(),
                &basis_to_sql(basis),
                &timeframe.to_string(),
            ],
        )
        .map_err(pg("reading open ranges"))?;
    let mut ranges = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = column(row, 0, "reading open ranges")?;
        let start: String = column(row, 1, "reading open ranges")?;
        let end: String = column(row, 2, "reading open ranges")?;
        ranges
            .push(range_from_sql(&start, &end).map_err(|detail| JobError::Corrupt { id, detail })?);
    }
    Ok(union(ranges))
}

/// Failed jobs (of `ticker`, or all) back to pending at `now_ms`.
pub(super) fn requeue_failed(
    session: &mut Session,
    ticker: Option<&Ticker>,
    now_ms: i64,
) -> Result<usize> {
    const SQL: &str = "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
             available_at = $1, updated_at = $1, finished_at = NULL
         WHERE state = 'failed' AND ($2::TEXT IS NULL OR ticker = $2)";
    let changed = session
        .execute(SQL, &[&now_ms, &ticker.map(Ticker::as_str)])
        .map_err(pg("requeueing failed jobs"))?;
    Ok(usize::try_from(changed).unwrap_or(usize::MAX))
}

pub(super) fn get(session: &mut Session, id: i64) -> Result<Option<Job>> {
    const SQL: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
    let row = session
        .query_opt(SQL, &[&id])
        .map_err(pg("reading a job"))?;
    row.map(|row| raw_job(&row)?.into_job()).transpose()
}

pub(super) fn counts(session: &mut Session) -> Result<StateCounts> {
    const SQL: &str = "SELECT COUNT(*) FILTER (WHERE state = 'pending'),
            COUNT(*) FILTER (WHERE state = 'running'),
            COUNT(*) FILTER (WHERE state = 'done'),
            COUNT(*) FILTER (WHERE state = 'failed')
         FROM jobs";
    const CONTEXT: &str = "counting jobs";
    let row = session.query_one(SQL, &[]).map_err(pg(CONTEXT))?;
    Ok(StateCounts {
        pending: count(&row, 0, CONTEXT)?,
        running: count(&row, 1, CONTEXT)?,
        done: count(&row, 2, CONTEXT)?,
        failed: count(&row, 3, CONTEXT)?,
    })
}

/// Up to `limit` jobs, `updated_at` then id descending.
pub(super) fn list(
    session: &mut Session,
    state: Option<JobState>,
    limit: usize,
) -> Result<Vec<Job>> {
    const SQL: &str = concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE ($1::TEXT IS NULL OR state = $1)
          ORDER BY updated_at DESC, id DESC LIMIT $2"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = session
        .query(SQL, &[&state.map(JobState::as_str), &limit])
        .map_err(pg("listing jobs"))?;
    rows.iter().map(|row| raw_job(row)?.into_job()).collect()
}

pub(super) fn clear_done(session: &mut Session) -> Result<usize> {
    let deleted = session
        .execute("DELETE FROM jobs WHERE state = 'done'", &[])
        .map_err(pg("clearing done jobs"))?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}

/// The requests and rows of every job, summed.
pub(super) fn totals(session: &mut Session) -> Result<Totals> {
    const CONTEXT: &str = "summing requests and rows";
    let row = session
        .query_one(
            "SELECT COALESCE(SUM(requests), 0)::BIGINT, COALESCE(SUM(rows), 0)::BIGINT FROM jobs",
            &[],
        )
        .map_err(pg(CONTEXT))?;
    Ok(Totals {
        requests: count(&row, 0, CONTEXT)?,
        rows: count(&row, 1, CONTEXT)?,
    })
}

pub(super) fn pending_or_running(session: &mut Session) -> Result<usize> {
    const CONTEXT: &str = "counting open jobs";
    let row = session
        .query_one(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')",
            &[],
        )
        .map_err(pg(CONTEXT))?;
    count(&row, 0, CONTEXT)
}
