//! Coverage: per series (ticker, timeframe, basis), the date ranges fetched
//! to completion, empty answers included. Stored merged: each series' rows
//! are disjoint, non-adjacent ranges.

use rusqlite::{Connection, Row, params};

use super::row::{basis_to_sql, date_to_sql};
use super::{immediate, sql};
use crate::jobs::stored::{RawCoverage, series_range};
use crate::jobs::{CoverageRow, Result};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::{DateRange, union};

const SERIES_SQL: &str = "SELECT start_date, end_date FROM coverage
     WHERE ticker = ?1 AND timeframe = ?2 AND adjusted = ?3
     ORDER BY start_date";

/// Records `range` as covered for every timeframe of every ticker, merged
/// with each series' stored ranges, in one transaction.
pub(super) fn add_coverage_all(
    conn: &mut Connection,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    let tx = immediate(conn, "starting to change coverage")?;
    add_coverage_in(&tx, tickers, timeframes, basis, range)?;
    tx.commit().map_err(sql("committing coverage"))
}

/// Removes `range` from a series' coverage (so planning asks for it again).
pub(super) fn remove_coverage(
    conn: &mut Connection,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    let tx = immediate(conn, "starting to change coverage")?;
    rewrite_series(&tx, ticker, timeframe, basis, |stored| {
        stored
            .into_iter()
            .flat_map(|r| crate::ranges::subtract(r, &[range]))
            .collect()
    })?;
    tx.commit().map_err(sql("committing coverage"))
}

/// Every covered range of every series, sorted by ticker, timeframe (as
/// text), basis (unadjusted first) and start date.
pub(super) fn all_coverage(conn: &Connection) -> Result<Vec<CoverageRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT ticker, timeframe, adjusted, start_date, end_date FROM coverage
             ORDER BY ticker, timeframe, adjusted, start_date",
        )
        .map_err(sql("preparing the coverage listing"))?;
    let rows = stmt
        .query_map([], raw_coverage)
        .map_err(sql("listing coverage"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql("listing coverage"))?.parse()?);
    }
    Ok(out)
}

/// Records `range` as covered for every timeframe of every ticker, inside `tx`.
pub(super) fn add_coverage_in(
    tx: &rusqlite::Transaction<'_>,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    for ticker in tickers {
        for &timeframe in timeframes {
            rewrite_series(tx, ticker, timeframe, basis, |stored| {
                union(stored.into_iter().chain([range]))
            })?;
        }
    }
    Ok(())
}

/// Replaces a series' covered ranges by `change(stored)` within `tx`.
fn rewrite_series(
    tx: &rusqlite::Transaction<'_>,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
    change: impl FnOnce(Vec<DateRange>) -> Vec<DateRange>,
) -> Result<()> {
    let tf = timeframe.to_string();
    let stored = read_series(tx, ticker, timeframe, basis)?;
    let ranges = change(stored);
    tx.prepare_cached(
        "DELETE FROM coverage WHERE ticker = ?1 AND timeframe = ?2 AND adjusted = ?3",
    )
    .and_then(|mut delete| delete.execute(params![ticker.as_str(), tf, basis_to_sql(basis)]))
    .map_err(sql("replacing coverage"))?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO coverage (ticker, timeframe, adjusted, start_date, end_date)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql("preparing the coverage insert"))?;
    for r in ranges {
        insert
            .execute(params![
                ticker.as_str(),
                tf,
                basis_to_sql(basis),
                date_to_sql(r.start),
                date_to_sql(r.end),
            ])
            .map_err(sql("inserting coverage"))?;
    }
    Ok(())
}

/// The covered ranges of the series, sorted (stored merged).
pub(super) fn read_series(
    conn: &Connection,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
) -> Result<Vec<DateRange>> {
    let mut stmt = conn
        .prepare_cached(SERIES_SQL)
        .map_err(sql("preparing the coverage query"))?;
    let rows = stmt
        .query_map(
            params![ticker.as_str(), timeframe.to_string(), basis_to_sql(basis)],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )
        .map_err(sql("reading coverage"))?;
    let mut out = Vec::new();
    for row in rows {
        let (start, end) = row.map_err(sql("reading coverage"))?;
        out.push(series_range(ticker, timeframe, basis, &start, &end)?);
    }
    Ok(out)
}

/// Reads a coverage row.
fn raw_coverage(row: &Row<'_>) -> rusqlite::Result<RawCoverage> {
    Ok(RawCoverage {
        ticker: row.get(0)?,
        timeframe: row.get(1)?,
        adjusted: row.get(2)?,
        start: row.get(3)?,
        end: row.get(4)?,
    })
}
