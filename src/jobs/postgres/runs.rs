//! The history of runs on PostgreSQL: one row per command that ran the
//! queue, as in `sqlite/runs.rs`.

use postgres::Row;

use super::row::{column, count};
use super::session::{Session, pg};
use crate::jobs::{Result, RunEnd, RunRecord};

/// Adds a started run; returns its id.
pub(super) fn run_started(
    session: &mut Session,
    command: &str,
    owner: &str,
    rate_limit: Option<&str>,
    now_ms: i64,
) -> Result<i64> {
    const CONTEXT: &str = "recording a run's start";
    let row = session
        .query_one(
            "INSERT INTO runs (command, owner, started_at, rate_limit) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&command, &owner, &now_ms, &rate_limit],
        )
        .map_err(pg(CONTEXT))?;
    column(&row, 0, CONTEXT)
}

/// Records the end of run `id` (nothing when there is no such run).
pub(super) fn run_finished(
    session: &mut Session,
    id: i64,
    end: &RunEnd,
    now_ms: i64,
) -> Result<()> {
    let stored = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    session
        .execute(
            "UPDATE runs SET ended_at = $2, jobs_done = $3, jobs_failed = $4, bars = $5,
                 requests = $6, exit_code = $7, rate_limited = $8
             WHERE id = $1",
            &[
                &id,
                &now_ms,
                &stored(end.jobs_done),
                &stored(end.jobs_failed),
                &stored(end.bars),
                &stored(end.requests),
                &end.exit_code,
                &stored(end.rate_limited),
            ],
        )
        .map_err(pg("recording a run's end"))?;
    Ok(())
}

/// Up to `limit` runs, newest first.
pub(super) fn runs(session: &mut Session, limit: usize) -> Result<Vec<RunRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = session
        .query(
            "SELECT id, command, owner, started_at, ended_at, jobs_done, jobs_failed, bars,
                 requests, exit_code, rate_limit, rate_limited
             FROM runs ORDER BY started_at DESC, id DESC LIMIT $1",
            &[&limit],
        )
        .map_err(pg("listing runs"))?;
    rows.iter().map(from_row).collect()
}

/// The answers of 429 every run in the table got, summed.
pub(super) fn rate_limited_total(session: &mut Session) -> Result<u64> {
    const CONTEXT: &str = "summing the answers of 429 of every run";
    let row = session
        .query_one(
            "SELECT COALESCE(SUM(rate_limited), 0)::BIGINT FROM runs",
            &[],
        )
        .map_err(pg(CONTEXT))?;
    count(&row, 0, CONTEXT)
}

fn from_row(row: &Row) -> Result<RunRecord> {
    const CONTEXT: &str = "listing runs";
    Ok(RunRecord {
        id: column(row, 0, CONTEXT)?,
        command: column(row, 1, CONTEXT)?,
        owner: column(row, 2, CONTEXT)?,
        started_at: column(row, 3, CONTEXT)?,
        ended_at: column(row, 4, CONTEXT)?,
        jobs_done: count(row, 5, CONTEXT)?,
        jobs_failed: count(row, 6, CONTEXT)?,
        bars: count(row, 7, CONTEXT)?,
        requests: count(row, 8, CONTEXT)?,
        exit_code: column(row, 9, CONTEXT)?,
        rate_limit: column(row, 10, CONTEXT)?,
        rate_limited: count(row, 11, CONTEXT)?,
    })
}
