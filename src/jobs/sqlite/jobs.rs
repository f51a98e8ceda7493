//! The `jobs` rows outside a job's life: planning (insert, the ranges open
//! jobs plan), reading (get, counts, list) and tidying (requeue, clear).

use rusqlite::{Connection, OptionalExtension, params};

use super::row::{
    RawJob, basis_to_sql, date_to_sql, job_columns, range_from_sql, raw_job, timeframe_list_to_sql,
};
use super::{count, count_u64, immediate, sql};
use crate::jobs::{Job, JobError, JobState, NewJob, Result, StateCounts, Totals};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::{DateRange, union};

/// A new job, or a done job of the same key planned again (its days were not
/// all covered: a day whose session had not ended, a hole `verify --fix`
/// forgot), which goes back to pending. Pending, running and failed jobs of
/// the same key are left alone.
pub(super) const INSERT_SQL: &str = "INSERT INTO jobs
    (kind, ticker, timeframe, derived, adjusted, start_date, end_date,
     state, attempts, available_at, rows, requests, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, 0, 0, ?8, ?8)
    ON CONFLICT (kind, ticker, timeframe, adjusted, start_date, end_date) DO UPDATE SET
        state = 'pending', attempts = 0, owner = NULL, progress_ts = NULL,
        last_error = NULL, fail_reason = NULL, derived = excluded.derived,
        available_at = excluded.available_at, updated_at = excluded.updated_at,
        finished_at = NULL
    WHERE jobs.state = 'done'";

/// Adds `jobs` as `pending` at `now_ms` in one transaction; see [`INSERT_SQL`].
pub(super) fn insert(conn: &mut Connection, jobs: &[NewJob], now_ms: i64) -> Result<usize> {
    let tx = immediate(conn, "starting to insert jobs")?;
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

/// The date ranges (merged, sorted) that pending or running jobs plan for the
/// series: base timeframe `timeframe` or derived list holding it, ticker
/// `ticker` or (fan-out jobs) a target `ticker`.
pub(super) fn open_ranges(
    conn: &Connection,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
) -> Result<Vec<DateRange>> {
    let mut stmt = conn
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
        ranges
            .push(range_from_sql(&start, &end).map_err(|detail| JobError::Corrupt { id, detail })?);
    }
    Ok(union(ranges))
}

/// Failed jobs (of `ticker`, or all) back to pending at `now_ms`, attempts
/// reset, the last error and its reason kept until the next attempt
/// overwrites or clears them.
pub(super) fn requeue_failed(
    conn: &Connection,
    ticker: Option<&Ticker>,
    now_ms: i64,
) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
             available_at = ?1, updated_at = ?1, finished_at = NULL
         WHERE state = 'failed' AND (?2 IS NULL OR ticker = ?2)",
    )
    .and_then(|mut update| update.execute(params![now_ms, ticker.map(Ticker::as_str)]))
    .map_err(sql("requeueing failed jobs"))
}

pub(super) fn get(conn: &Connection, id: i64) -> Result<Option<Job>> {
    let raw = conn
        .query_row(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1"),
            [id],
            raw_job,
        )
        .optional()
        .map_err(sql("reading a job"))?;
    raw.map(RawJob::into_job).transpose()
}

pub(super) fn counts(conn: &Connection) -> Result<StateCounts> {
    conn.query_row(
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

/// Up to `limit` jobs, `updated_at` then id descending.
pub(super) fn list(conn: &Connection, state: Option<JobState>, limit: usize) -> Result<Vec<Job>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE (?1 IS NULL OR state = ?1)
              ORDER BY updated_at DESC, id DESC LIMIT ?2"
        ))
        .map_err(sql("preparing the job list"))?;
    let rows = stmt
        .query_map(params![state.map(JobState::as_str), limit], raw_job)
        .map_err(sql("listing jobs"))?;
    let mut jobs = Vec::new();
    for raw in rows {
        jobs.push(raw.map_err(sql("listing jobs"))?.into_job()?);
    }
    Ok(jobs)
}

pub(super) fn clear_done(conn: &Connection) -> Result<usize> {
    conn.execute("DELETE FROM jobs WHERE state = 'done'", [])
        .map_err(sql("clearing done jobs"))
}

/// The requests and rows of every job, summed.
pub(super) fn totals(conn: &Connection) -> Result<Totals> {
    conn.query_row(
        "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(rows), 0) FROM jobs",
        [],
        |row| {
            Ok(Totals {
                requests: count_u64(row, 0)?,
                rows: count_u64(row, 1)?,
            })
        },
    )
    .map_err(sql("summing requests and rows"))
}

pub(super) fn pending_or_running(conn: &Connection) -> Result<usize> {
    conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')",
        [],
        |row| count(row, 0),
    )
    .map_err(sql("counting open jobs"))
}
