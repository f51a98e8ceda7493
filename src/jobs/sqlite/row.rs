//! How a job is stored: the column list every query selects, the raw row as
//! SQLite returns it, and its checked conversion into a [`Job`]. Also the
//! text forms of dates, bases and timeframe lists shared with `coverage`.

use chrono::NaiveDate;
use rusqlite::Row;

use crate::jobs::{FailReason, Job, JobError, JobKind, JobState};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// The columns of a [`Job`], in the order [`RawJob::from_row`] reads them.
macro_rules! job_columns {
    () => {
        "id, kind, ticker, timeframe, derived, adjusted, start_date, end_date, state, \
         attempts, last_error, available_at, owner, progress_ts, rows, requests, \
         created_at, updated_at, finished_at, fail_reason"
    };
}
pub(crate) use job_columns;

/// A job row before validation.
pub(crate) struct RawJob {
    id: i64,
    kind: String,
    ticker: String,
    timeframe: String,
    derived: String,
    adjusted: i64,
    start_date: String,
    end_date: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    available_at: i64,
    owner: Option<String>,
    progress_ts: Option<i64>,
    rows: i64,
    requests: i64,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    fail_reason: Option<String>,
}

impl RawJob {
    /// Reads the columns of [`job_columns!`] from `row`.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
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

    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// Validates every field; a bad one is reported as [`JobError::Corrupt`].
    pub(crate) fn into_job(self) -> Result<Job, JobError> {
        let id = self.id;
        let corrupt = |detail: String| JobError::Corrupt { id, detail };
        let kind = self
            .kind
            .parse::<JobKind>()
            .map_err(|e| corrupt(e.to_string()))?;
        let state = self
            .state
            .parse::<JobState>()
            .map_err(|e| corrupt(e.to_string()))?;
        let ticker = Ticker::new(self.ticker).map_err(|e| corrupt(e.to_string()))?;
        let timeframe = self
            .timeframe
            .parse::<Timeframe>()
            .map_err(|e| corrupt(e.to_string()))?;
        let derived = parse_timeframe_list(&self.derived).map_err(corrupt)?;
        let basis = basis_from_sql(self.adjusted).map_err(corrupt)?;
        let range = range_from_sql(&self.start_date, &self.end_date).map_err(corrupt)?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| corrupt(format!("attempts {} out of range", self.attempts)))?;
        Ok(Job {
            id,
            kind,
            ticker,
            timeframe,
            derived,
            basis,
            range,
            state,
            attempts,
            last_error: self.last_error,
            fail_reason: self.fail_reason.as_deref().map(reason_from_sql),
            available_at: self.available_at,
            owner: self.owner,
            progress_ts: self.progress_ts,
            rows: self.rows,
            requests: self.requests,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        })
    }
}

/// A stored fail reason. One this build does not know (a later finpipe's,
/// since reasons can be added without a new schema) reads as
/// [`FailReason::Other`] rather than making the job unreadable.
fn reason_from_sql(stored: &str) -> FailReason {
    FailReason::parse(stored).unwrap_or_else(|| {
        tracing::debug!("unknown fail reason {stored:?} in the job table, read as other");
        FailReason::Other
    })
}

/// `YYYY-MM-DD`, the stored form of a date.
pub(crate) fn date_to_sql(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The stored `adjusted` column: 1 for adjusted prices, 0 for unadjusted.
pub(crate) fn basis_to_sql(basis: Basis) -> i64 {
    i64::from(basis.is_adjusted())
}

pub(crate) fn basis_from_sql(adjusted: i64) -> Result<Basis, String> {
    match adjusted {
        0 => Ok(Basis::Unadjusted),
        1 => Ok(Basis::Adjusted),
        other => Err(format!("adjusted is {other}, expected 0 or 1")),
    }
}

/// Parses a stored `start_date`/`end_date` pair.
pub(crate) fn range_from_sql(start: &str, end: &str) -> Result<DateRange, String> {
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("bad date {s:?}: {e}"))
    };
    let (start_date, end_date) = (parse(start)?, parse(end)?);
    DateRange::new(start_date, end_date)
        .ok_or_else(|| format!("start date {start} is after end date {end}"))
}

/// `5m,15m,1h`: sorted, deduplicated, empty for no timeframes.
pub(crate) fn timeframe_list_to_sql(timeframes: &[Timeframe]) -> String {
    let mut sorted = timeframes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_timeframe_list(list: &str) -> Result<Vec<Timeframe>, String> {
    list.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<Timeframe>().map_err(|e| e.to_string()))
        .collect()
}
