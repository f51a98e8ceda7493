//! Coverage on PostgreSQL: per series, the date ranges fetched to
//! completion, stored merged as on SQLite. A change reads the series,
//! merges in memory and writes them back, a whole flat-file day's thousands
//! of series in four statements. Writers of coverage queue on one
//! transaction-level advisory lock per job table, which is what SQLite's
//! write lock gives. (A lock per series ran out of the server's lock table,
//! `max_locks_per_transaction` × `max_connections` for all sessions
//! together, at about 12 000 series in one transaction: a flat-file day
//! of the whole market.)

use std::collections::BTreeMap;

use postgres::Transaction;

use super::row::{column, raw_coverage};
use super::session::{Session, Statements, pg};
use crate::jobs::stored::{basis_to_sql, date_to_sql, series_range};
use crate::jobs::{CoverageRow, Result};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::{DateRange, subtract, union};

/// The advisory lock key (with the schema's hash) that serialises
/// coverage changes: "fpcv".
const COVERAGE_LOCK: i32 = 0x6670_6376;

/// Takes the coverage lock for the transaction.
const LOCK_SQL: &str = super::session::XACT_LOCK;

const READ_SQL: &str = "SELECT ticker, timeframe, start_date, end_date FROM coverage
    WHERE adjusted = $3 AND ticker = ANY($1) AND timeframe = ANY($2)
    ORDER BY ticker, timeframe, start_date";

/// Deletes the series of the paired arrays `$1` (tickers), `$2`
/// (timeframes).
const DELETE_SQL: &str = "DELETE FROM coverage
    WHERE adjusted = $3
      AND (ticker, timeframe) IN (SELECT * FROM unnest($1::TEXT[], $2::TEXT[]))";

const INSERT_SQL: &str = "INSERT INTO coverage (ticker, timeframe, adjusted, start_date, end_date)
    SELECT t, f, $3, s, e FROM unnest($1::TEXT[], $2::TEXT[], $4::TEXT[], $5::TEXT[])
        AS u (t, f, s, e)";

/// Records `range` as covered for every timeframe of every ticker, in one
/// transaction.
pub(super) fn add_coverage_all(
    session: &mut Session,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client
        .transaction()
        .map_err(pg("starting to change coverage"))?;
    add_coverage_in(&mut tx, statements, tickers, timeframes, basis, range)?;
    tx.commit().map_err(pg("committing coverage"))
}

/// Removes `range` from a series' coverage.
pub(super) fn remove_coverage(
    session: &mut Session,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client
        .transaction()
        .map_err(pg("starting to change coverage"))?;
    rewrite(
        &mut tx,
        statements,
        std::slice::from_ref(ticker),
        &[timeframe],
        basis,
        |stored| {
            stored
                .into_iter()
                .flat_map(|r| subtract(r, &[range]))
                .collect()
        },
    )?;
    tx.commit().map_err(pg("committing coverage"))
}

/// Records `range` as covered for every timeframe of every ticker, inside
/// `tx`.
pub(super) fn add_coverage_in(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
    range: DateRange,
) -> Result<()> {
    rewrite(tx, statements, tickers, timeframes, basis, |stored| {
        union(stored.into_iter().chain([range]))
    })
}

/// Replaces the covered ranges of every series (`tickers` × `timeframes`)
/// by `change(stored)`, writing only the series that change.
fn rewrite(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
    change: impl Fn(Vec<DateRange>) -> Vec<DateRange>,
) -> Result<()> {
    let tickers: BTreeMap<&str, &Ticker> = tickers.iter().map(|t| (t.as_str(), t)).collect();
    let frames: BTreeMap<String, Timeframe> =
        timeframes.iter().map(|tf| (tf.to_string(), *tf)).collect();
    if tickers.is_empty() || frames.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = tickers.keys().copied().collect();
    let frame_names: Vec<&str> = frames.keys().map(String::as_str).collect();
    let adjusted = basis_to_sql(basis);
    let key: [&(dyn postgres::types::ToSql + Sync); 3] = [&names, &frame_names, &adjusted];

    let lock = statements
        .get(tx, LOCK_SQL)
        .map_err(pg("preparing the coverage lock"))?;
    tx.execute(&lock, &[&COVERAGE_LOCK])
        .map_err(pg("locking coverage"))?;
    let read = statements
        .get(tx, READ_SQL)
        .map_err(pg("preparing the coverage query"))?;
    let mut stored: BTreeMap<(&str, &str), Vec<DateRange>> = BTreeMap::new();
    for row in tx.query(&read, &key).map_err(pg("reading coverage"))? {
        const CONTEXT: &str = "reading coverage";
        let ticker: String = column(&row, 0, CONTEXT)?;
        let timeframe: String = column(&row, 1, CONTEXT)?;
        let (start, end): (String, String) = (column(&row, 2, CONTEXT)?, column(&row, 3, CONTEXT)?);
        let (Some((&name, &t)), Some((frame, &tf))) = (
            tickers.get_key_value(ticker.as_str()),
            frames.get_key_value(timeframe.as_str()),
        ) else {
            continue; // not asked for (cannot happen: the query filters)
        };
        stored
            .entry((name, frame.as_str()))
            .or_default()
            .push(series_range(t, tf, basis, &start, &end)?);
    }

    let (mut del_t, mut del_f) = (Vec::new(), Vec::new());
    let (mut ins_t, mut ins_f, mut ins_s, mut ins_e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &name in tickers.keys() {
        for frame in frames.keys() {
            let before = stored.remove(&(name, frame.as_str())).unwrap_or_default();
            let after = change(before.clone());
            if after == before {
                continue;
            }
            del_t.push(name);
            del_f.push(frame.as_str());
            for r in after {
                ins_t.push(name);
                ins_f.push(frame.as_str());
                ins_s.push(date_to_sql(r.start));
                ins_e.push(date_to_sql(r.end));
            }
        }
    }
    if !del_t.is_empty() {
        let delete = statements
            .get(tx, DELETE_SQL)
            .map_err(pg("preparing the coverage delete"))?;
        tx.execute(&delete, &[&del_t, &del_f, &adjusted])
            .map_err(pg("replacing coverage"))?;
    }
    if !ins_t.is_empty() {
        let insert = statements
            .get(tx, INSERT_SQL)
            .map_err(pg("preparing the coverage insert"))?;
        tx.execute(&insert, &[&ins_t, &ins_f, &adjusted, &ins_s, &ins_e])
            .map_err(pg("inserting coverage"))?;
    }
    Ok(())
}

/// The covered ranges of the series, sorted.
pub(super) fn read_series(
    session: &mut Session,
    ticker: &Ticker,
    timeframe: Timeframe,
    basis: Basis,
) -> Result<Vec<DateRange>> {
    const SQL: &str = "SELECT start_date, end_date FROM coverage
         WHERE ticker = $1 AND timeframe = $2 AND adjusted = $3
         ORDER BY start_date";
    const CONTEXT: &str = "reading coverage";
    let rows = session
        .query(
            SQL,
            &[
                &ticker.as_str(),
                &timeframe.to_string(),
                &basis_to_sql(basis),
            ],
        )
        .map_err(pg(CONTEXT))?;
    rows.iter()
        .map(|row| {
            let start: String = column(row, 0, CONTEXT)?;
            let end: String = column(row, 1, CONTEXT)?;
            series_range(ticker, timeframe, basis, &start, &end)
        })
        .collect()
}

/// Every covered range of every series, sorted by ticker, timeframe (as
/// text), basis (unadjusted first) and start date.
pub(super) fn all_coverage(session: &mut Session) -> Result<Vec<CoverageRow>> {
    let rows = session
        .query(
            "SELECT ticker, timeframe, adjusted, start_date, end_date FROM coverage
             ORDER BY ticker, timeframe, adjusted, start_date",
            &[],
        )
        .map_err(pg("listing coverage"))?;
    rows.iter().map(|row| raw_coverage(row)?.parse()).collect()
}
