//! How SQLite hands back a job row: [`raw_job`] reads the columns of
//! [`job_columns!`] into the backend-neutral [`RawJob`] (`jobs/stored.rs`
//! checks it).

use rusqlite::Row;

pub(crate) use crate::jobs::stored::{
    RawJob, basis_to_sql, date_to_sql, job_columns, range_from_sql, timeframe_list_to_sql,
};

/// Reads the columns of [`job_columns!`] from `row`.
pub(crate) fn raw_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: row.get(0)?,
        kind: row.get(1)?,
        ticker: row.get(2)?,
        timeframe: row.get(3)?,
        derived: row.get(4)?,
        adjusted: row.get(5)?,
        start_date: row.get(6)?,
        end_date: row.get(7)?,
        state: row.get(8)?,
        attempts: row.get(9)?,
        last_error: row.get(10)?,
        available_at: row.get(11)?,
        owner: row.get(12)?,
        progress_ts: row.get(13)?,
        rows: row.get(14)?,
        requests: row.get(15)?,
        created_at: row.get(16)?,
        updated_at: row.get(17)?,
        finished_at: row.get(18)?,
        fail_reason: row.get(19)?,
    })
}
