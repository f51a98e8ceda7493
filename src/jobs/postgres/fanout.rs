//! Fan-out jobs (flat-file and grouped-daily) and their targets, and the
//! ETags of ingested day files, on PostgreSQL; the semantics of
//! `sqlite/fanout.rs`.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::jobs::{INSERT_SQL, Planned};
use super::row::column;
use super::session::{Session, pg};
use crate::jobs::stored::{date_to_sql, ingested_from_sql, targets_from_sql};
use crate::jobs::{NewJob, Result};
use crate::model::Ticker;

/// Plans a fan-out job for `targets` (see `JobBackend::insert_fanout`).
pub(super) fn insert_fanout(
    session: &mut Session,
    job: &NewJob,
    targets: &[Ticker],
    now_ms: i64,
) -> Result<bool> {
    const FIND: &str = "SELECT id, state FROM jobs WHERE kind = $1 AND ticker = $2
           AND timeframe = $3 AND adjusted = $4 AND start_date = $5 AND end_date = $6
        FOR UPDATE";
    let p = Planned::of(job);
    let key: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &p.kind,
        &p.ticker,
        &p.timeframe,
        &p.adjusted,
        &p.start,
        &p.end,
    ];
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client
        .transaction()
        .map_err(pg("starting to plan a flat-file job"))?;
    let find = statements
        .get(&mut tx, FIND)
        .map_err(pg("preparing the flat-file job lookup"))?;
    let mut changed = false;
    let mut existing = tx
        .query_opt(&find, &key)
        .map_err(pg("looking up a flat-file job"))?;
    if existing.is_none() {
        let insert = statements
            .get(&mut tx, INSERT_SQL)
            .map_err(pg("preparing the job insert"))?;
        // Inserted, or planned again when done; another planner's row just
        // committed is found by the lookup again.
        changed = tx
            .execute(
                &insert,
                &[
                    &p.kind,
                    &p.ticker,
                    &p.timeframe,
                    &p.derived,
                    &p.adjusted,
                    &p.start,
                    &p.end,
                    &now_ms,
                ],
            )
            .map_err(pg("inserting a flat-file job"))?
            > 0;
        existing = tx
            .query_opt(&find, &key)
            .map_err(pg("looking up a flat-file job"))?;
    }
    let Some(row) = existing else {
        return Err(crate::jobs::JobError::Backend {
            context: "planning a flat-file job",
            class: crate::jobs::ErrorClass::Busy,
            source: "the job was deleted while it was planned".into(),
        });
    };
    let id: i64 = column(&row, 0, "looking up a flat-file job")?;
    let state: String = column(&row, 1, "looking up a flat-file job")?;
    if !changed && (state == "done" || state == "failed") {
        tx.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
                 progress_ts = NULL, derived = $2, available_at = $3,
                 updated_at = $3, finished_at = NULL
             WHERE id = $1",
            &[&id, &p.derived, &now_ms],
        )
        .map_err(pg("planning a flat-file job again"))?;
        tx.execute("DELETE FROM job_targets WHERE job_id = $1", &[&id])
            .map_err(pg("replacing flat-file targets"))?;
        changed = true;
    }
    let names: Vec<&str> = targets.iter().map(Ticker::as_str).collect();
    let add = statements
        .get(
            &mut tx,
            "INSERT INTO job_targets (job_id, ticker) SELECT $1, unnest($2::TEXT[])
             ON CONFLICT DO NOTHING",
        )
        .map_err(pg("preparing the target insert"))?;
    changed |= tx
        .execute(&add, &[&id, &names])
        .map_err(pg("adding flat-file targets"))?
        > 0;
    tx.commit().map_err(pg("committing a flat-file job"))?;
    Ok(changed)
}

/// The tickers a fan-out job fans out to, sorted.
pub(super) fn targets(session: &mut Session, job_id: i64) -> Result<Vec<Ticker>> {
    const CONTEXT: &str = "reading targets";
    let rows = session
        .query(
            "SELECT ticker FROM job_targets WHERE job_id = $1 ORDER BY ticker",
            &[&job_id],
        )
        .map_err(pg(CONTEXT))?;
    let names = rows
        .iter()
        .map(|row| column::<String>(row, 0, CONTEXT))
        .collect::<Result<Vec<_>>>()?;
    targets_from_sql(job_id, names)
}

/// Records that the day file of `dataset`/`kind` on `day` was ingested with
/// this ETag.
pub(super) fn record_ingested(
    session: &mut Session,
    dataset: &str,
    kind: &str,
    day: NaiveDate,
    etag: &str,
) -> Result<()> {
    session
        .execute(
            "INSERT INTO flat_ingested (dataset, kind, day, etag) VALUES ($1, $2, $3, $4)
             ON CONFLICT (dataset, kind, day) DO UPDATE SET etag = excluded.etag",
            &[&dataset, &kind, &date_to_sql(day), &etag],
        )
        .map_err(pg("recording an ingested flat file"))?;
    Ok(())
}

/// The answer cached under `name`, with when it was fetched.
pub(super) fn cached(session: &mut Session, name: &str) -> Result<Option<(String, i64)>> {
    const CONTEXT: &str = "reading a cached answer";
    let Some(row) = session
        .query_opt(
            "SELECT body, fetched_at FROM cache WHERE name = $1",
            &[&name],
        )
        .map_err(pg(CONTEXT))?
    else {
        return Ok(None);
    };
    Ok(Some((column(&row, 0, CONTEXT)?, column(&row, 1, CONTEXT)?)))
}

/// Stores `body` under `name`, replacing an earlier answer.
pub(super) fn store_cached(
    session: &mut Session,
    name: &str,
    body: &str,
    now_ms: i64,
) -> Result<()> {
    session
        .execute(
            "INSERT INTO cache (name, body, fetched_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at",
            &[&name, &body, &now_ms],
        )
        .map_err(pg("caching an answer"))?;
    Ok(())
}

/// The ETags of the ingested day files of `dataset`/`kind` from `from`
/// through `to`.
pub(super) fn ingested(
    session: &mut Session,
    dataset: &str,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, String>> {
    const CONTEXT: &str = "reading ingested flat files";
    let rows = session
        .query(
            "SELECT day, etag FROM flat_ingested
             WHERE dataset = $1 AND kind = $2 AND day BETWEEN $3 AND $4",
            &[&dataset, &kind, &date_to_sql(from), &date_to_sql(to)],
        )
        .map_err(pg(CONTEXT))?;
    let pairs = rows
        .iter()
        .map(|row| Ok((column(row, 0, CONTEXT)?, column(row, 1, CONTEXT)?)))
        .collect::<Result<Vec<(String, String)>>>()?;
    Ok(ingested_from_sql(pairs))
}
