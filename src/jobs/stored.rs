//! How a job and a coverage range are stored, whatever the backend: the
//! column list every query selects, the raw row as a backend reads it, and
//! its checked conversion into a [`Job`]; the text forms of dates, bases and
//! timeframe lists. Each backend reads its rows into [`RawJob`] and
//! [`RawCoverage`] (`sqlite/row.rs`, `postgres/row.rs`) and leaves the
//! checking to this module.

use std::collections::BTreeMap;

use super::{CoverageRow, FailReason, Job, JobError, JobKind, JobState};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;
use chrono::NaiveDate;

/// The columns of a [`Job`], in the order every backend reads them into a
/// [`RawJob`].
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
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) ticker: String,
    pub(crate) timeframe: String,
    pub(crate) derived: String,
    pub(crate) adjusted: i64,
    pub(crate) start_date: String,
    pub(crate) end_date: String,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) available_at: i64,
    pub(crate) owner: Option<String>,
    pub(crate) progress_ts: Option<i64>,
    pub(crate) rows: i64,
    pub(crate) requests: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) finished_at: Option<i64>,
    pub(crate) fail_reason: Option<String>,
}

impl RawJob {
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

/// A coverage row before validation.
pub(crate) struct RawCoverage {
    pub(crate) ticker: String,
    pub(crate) timeframe: String,
    pub(crate) adjusted: i64,
    pub(crate) start: String,
    pub(crate) end: String,
}

impl RawCoverage {
    /// Validates every field; a bad one is reported as
    /// [`JobError::CorruptCoverage`].
    pub(crate) fn parse(self) -> Result<CoverageRow, JobError> {
        let series = format!(
            "{} {} adjusted={}",
            self.ticker, self.timeframe, self.adjusted
        );
        let corrupt = |detail: String| JobError::CorruptCoverage {
            series: series.clone(),
            detail,
        };
        let ticker = Ticker::new(self.ticker).map_err(|e| corrupt(e.to_string()))?;
        let timeframe = self
            .timeframe
            .parse::<Timeframe>()
            .map_err(|e| corrupt(e.to_string()))?;
        let basis = basis_from_sql(self.adjusted).map_err(corrupt)?;
        let range = range_from_sql(&self.start, &self.end).map_err(corrupt)?;
        Ok((ticker, timeframe, basis, range))
    }
}

/// Parses a series' stored range, reported as [`JobError::CorruptCoverage`].
pub(crate) fn series_range(
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
    start: &str,
    end: &str,
) -> Result<DateRange, JobError> {
    range_from_sql(start, end).map_err(|detail| JobError::CorruptCoverage {
        series: format!("{ticker} {timeframe} {}", basis.name()),
        detail,
    })
}

/// The targets of fan-out job `job_id` as stored, checked.
pub(crate) fn targets_from_sql(
    job_id: i64,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<Ticker>, JobError> {
    names
        .into_iter()
        .map(|name| {
            Ticker::new(&name).map_err(|e| JobError::Corrupt {
                id: job_id,
                detail: format!("target {name:?}: {e}"),
            })
        })
        .collect()
}

/// The stored (day, ETag) pairs of ingested day files by day; a day that
/// does not parse is one this build never wrote, and is left out.
pub(crate) fn ingested_from_sql(
    rows: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<NaiveDate, String> {
    rows.into_iter()
        .filter_map(|(day, etag)| Some((day.parse::<NaiveDate>().ok()?, etag)))
        .collect()
}
