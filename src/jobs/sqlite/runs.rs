//! The history of runs: one row per command that ran the queue (`run`,
//! `backfill`, `update`, `run-once`), written when its engine starts and
//! again when the command ends, read newest first by the monitoring page.

use rusqlite::{Connection, Row, params};

use super::{count_u64, sql};
use crate::jobs::{Result, RunEnd, RunRecord};

/// The columns of a [`RunRecord`], in the order [`from_row`] reads them.
const RUN_COLUMNS: &str = "id, command, owner, started_at, ended_at, jobs_done, jobs_failed, \
                           bars, requests, exit_code, rate_limit, rate_limited";

/// Adds a started run; returns its id.
pub(super) fn run_started(
    conn: &Connection,
    command: &str,
    owner: &str,
    rate_limit: Option<&str>,
    now_ms: i64,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO runs (command, owner, started_at, rate_limit) VALUES (?1, ?2, ?3, ?4)",
        params![command, owner, now_ms, rate_limit],
    )
    .map_err(sql("recording a run's start"))?;
    Ok(conn.last_insert_rowid())
}

/// Records the end of run `id` (nothing when there is no such run).
pub(super) fn run_finished(conn: &Connection, id: i64, end: &RunEnd, now_ms: i64) -> Result<()> {
    let stored = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.execute(
        "UPDATE runs SET ended_at = ?2, jobs_done = ?3, jobs_failed = ?4, bars = ?5,
             requests = ?6, exit_code = ?7, rate_limited = ?8
         WHERE id = ?1",
        params![
            id,
            now_ms,
            stored(end.jobs_done),
            stored(end.jobs_failed),
            stored(end.bars),
            stored(end.requests),
            end.exit_code,
            stored(end.rate_limited)
        ],
    )
    .map_err(sql("recording a run's end"))?;
    Ok(())
}

/// Up to `limit` runs, newest first.
pub(super) fn runs(conn: &Connection, limit: usize) -> Result<Vec<RunRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1"
        ))
        .map_err(sql("preparing the run list"))?;
    let rows = stmt
        .query_map([limit], from_row)
        .map_err(sql("listing runs"))?;
    rows.map(|row| row.map_err(sql("listing runs"))).collect()
}

/// The answers of 429 every run in the table got, summed.
pub(super) fn rate_limited_total(conn: &Connection) -> Result<u64> {
    conn.query_row(
        "SELECT COALESCE(SUM(rate_limited), 0) FROM runs",
        [],
        |row| count_u64(row, 0),
    )
    .map_err(sql("summing the answers of 429 of every run"))
}

/// Reads the columns of [`RUN_COLUMNS`] from `row`.
fn from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        command: row.get(1)?,
        owner: row.get(2)?,
        started_at: row.get(3)?,
        ended_at: row.get(4)?,
        jobs_done: count_u64(row, 5)?,
        jobs_failed: count_u64(row, 6)?,
        bars: count_u64(row, 7)?,
        requests: count_u64(row, 8)?,
        exit_code: row.get(9)?,
        rate_limit: row.get(10)?,
        rate_limited: count_u64(row, 11)?,
    })
}
