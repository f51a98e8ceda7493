//! Jobs that fan out to target tickers (flat-file and grouped-daily jobs) in
//! the table, and the ETags of the day files already ingested (so a
//! republished file is ingested again).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};

use super::jobs::INSERT_SQL;
use super::row::{basis_to_sql, date_to_sql, timeframe_list_to_sql};
use super::{immediate, sql};
use crate::jobs::stored::{ingested_from_sql, targets_from_sql};
use crate::jobs::{NewJob, Result};
use crate::model::Ticker;

/// Plans a fan-out (flat-file or grouped-daily) job for `targets`. A new job is inserted pending. The
/// same job already pending or running gains the targets it lacks; done
/// or failed, it is planned again for exactly `targets` (the earlier
/// targets are covered, or were failed and are asked for again here).
/// Returns whether anything changed.
pub(super) fn insert_fanout(
    conn: &mut Connection,
    job: &NewJob,
    targets: &[Ticker],
    now_ms: i64,
) -> Result<bool> {
    let tx = immediate(conn, "starting to plan a flat-file job")?;
    let key = params![
        job.kind.as_str(),
        job.ticker.as_str(),
        job.timeframe.to_string(),
        basis_to_sql(job.basis),
        date_to_sql(job.range.start),
        date_to_sql(job.range.end),
    ];
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, state FROM jobs WHERE kind = ?1 AND ticker = ?2 AND timeframe = ?3
                   AND adjusted = ?4 AND start_date = ?5 AND end_date = ?6",
            key,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("looking up a flat-file job"))?;
    let mut changed = false;
    let id = match existing {
        Some((id, state)) => {
            if state == "done" || state == "failed" {
                tx.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
                             progress_ts = NULL, derived = ?2, available_at = ?3,
                             updated_at = ?3, finished_at = NULL
                         WHERE id = ?1",
                    params![id, timeframe_list_to_sql(&job.derived), now_ms],
                )
                .map_err(sql("planning a flat-file job again"))?;
                tx.execute("DELETE FROM job_targets WHERE job_id = ?1", [id])
                    .map_err(sql("replacing flat-file targets"))?;
                changed = true;
            }
            id
        }
        None => {
            tx.execute(
                INSERT_SQL,
                params![
                    job.kind.as_str(),
                    job.ticker.as_str(),
                    job.timeframe.to_string(),
                    timeframe_list_to_sql(&job.derived),
                    basis_to_sql(job.basis),
                    date_to_sql(job.range.start),
                    date_to_sql(job.range.end),
                    now_ms,
                ],
            )
            .map_err(sql("inserting a flat-file job"))?;
            changed = true;
            tx.last_insert_rowid()
        }
    };
    {
        let mut add = tx
            .prepare_cached("INSERT OR IGNORE INTO job_targets (job_id, ticker) VALUES (?1, ?2)")
            .map_err(sql("preparing the target insert"))?;
        for ticker in targets {
            changed |= add
                .execute(params![id, ticker.as_str()])
                .map_err(sql("adding a flat-file target"))?
                > 0;
        }
    }
    tx.commit().map_err(sql("committing a flat-file job"))?;
    Ok(changed)
}

/// The tickers a flat-file job fans out to, sorted.
pub(super) fn targets(conn: &Connection, job_id: i64) -> Result<Vec<Ticker>> {
    let mut stmt = conn
        .prepare_cached("SELECT ticker FROM job_targets WHERE job_id = ?1 ORDER BY ticker")
        .map_err(sql("preparing the targets query"))?;
    let rows = stmt
        .query_map([job_id], |row| row.get::<_, String>(0))
        .map_err(sql("reading targets"))?;
    let names = rows
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(sql("reading targets"))?;
    targets_from_sql(job_id, names)
}

/// Records that the day file of `dataset`/`kind` on `day` was ingested
/// with this ETag.
pub(super) fn record_ingested(
    conn: &Connection,
    dataset: &str,
    kind: &str,
    day: NaiveDate,
    etag: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO flat_ingested (dataset, kind, day, etag) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dataset, kind, day) DO UPDATE SET etag = excluded.etag",
    )
    .and_then(|mut upsert| upsert.execute(params![dataset, kind, date_to_sql(day), etag]))
    .map_err(sql("recording an ingested flat file"))?;
    Ok(())
}

/// The ETags of the ingested day files of `dataset`/`kind` from `from`
/// through `to`.
pub(super) fn ingested(
    conn: &Connection,
    dataset: &str,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT day, etag FROM flat_ingested
                 WHERE dataset = ?1 AND kind = ?2 AND day BETWEEN ?3 AND ?4",
        )
        .map_err(sql("preparing the ingested query"))?;
    let rows = stmt
        .query_map(
            params![dataset, kind, date_to_sql(from), date_to_sql(to)],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )
        .map_err(sql("reading ingested flat files"))?;
    let stored = rows
        .collect::<rusqlite::Result<Vec<(String, String)>>>()
        .map_err(sql("reading ingested flat files"))?;
    Ok(ingested_from_sql(stored))
}

/// The answer cached under `name`, with when it was fetched.
pub(super) fn cached(conn: &Connection, name: &str) -> Result<Option<(String, i64)>> {
    conn.prepare_cached("SELECT body, fetched_at FROM cache WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![name], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sql("reading a cached answer"))
}

/// Stores `body` under `name`, replacing an earlier answer.
pub(super) fn store_cached(conn: &Connection, name: &str, body: &str, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO cache (name, body, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at",
    )
    .and_then(|mut upsert| upsert.execute(params![name, body, now_ms]))
    .map_err(sql("caching an answer"))?;
    Ok(())
}
