//! How PostgreSQL hands back rows: a job's columns ([`job_columns!`]) read
//! into the backend-neutral [`RawJob`], coverage rows into [`RawCoverage`],
//! counts as unsigned numbers. `jobs/stored.rs` checks what they hold.

use postgres::Row;

use super::session::decoding;
pub(super) use crate::jobs::stored::job_columns;
use crate::jobs::stored::{RawCoverage, RawJob};
use crate::jobs::{ErrorClass, JobError, Result};

/// Reads the columns of [`job_columns!`] from `row`.
pub(super) fn raw_job(row: &Row) -> Result<RawJob> {
    let read = || -> std::result::Result<RawJob, postgres::Error> {
        Ok(RawJob {
            id: row.try_get(0)?,
            kind: row.try_get(1)?,
            ticker: row.try_get(2)?,
            timeframe: row.try_get(3)?,
            derived: row.try_get(4)?,
            adjusted: row.try_get(5)?,
            start_date: row.try_get(6)?,
            end_date: row.try_get(7)?,
            state: row.try_get(8)?,
            attempts: row.try_get(9)?,
            last_error: row.try_get(10)?,
            available_at: row.try_get(11)?,
            owner: row.try_get(12)?,
            progress_ts: row.try_get(13)?,
            rows: row.try_get(14)?,
            requests: row.try_get(15)?,
            created_at: row.try_get(16)?,
            updated_at: row.try_get(17)?,
            finished_at: row.try_get(18)?,
            fail_reason: row.try_get(19)?,
        })
    };
    read().map_err(decoding("reading a job"))
}

/// Reads `ticker, timeframe, adjusted, start_date, end_date` from `row`.
pub(super) fn raw_coverage(row: &Row) -> Result<RawCoverage> {
    let read = || -> std::result::Result<RawCoverage, postgres::Error> {
        Ok(RawCoverage {
            ticker: row.try_get(0)?,
            timeframe: row.try_get(1)?,
            adjusted: row.try_get(2)?,
            start: row.try_get(3)?,
            end: row.try_get(4)?,
        })
    };
    read().map_err(decoding("reading coverage"))
}

/// Column `index` of `row`, of type `T`.
pub(super) fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    context: &'static str,
) -> Result<T> {
    row.try_get(index).map_err(decoding(context))
}

/// Column `index` of `row` (a BIGINT) as a non-negative count.
pub(super) fn count<T: TryFrom<i64>>(row: &Row, index: usize, context: &'static str) -> Result<T> {
    let value: i64 = column(row, index, context)?;
    T::try_from(value).map_err(|_| JobError::Backend {
        context,
        class: ErrorClass::Corrupt,
        source: format!("a count of {value} is out of range").into(),
    })
}
