//! A job's life after planning: the atomic claim with a lease, progress that
//! renews it, and the endings (done, failed with or without a retry,
//! released). Every write after the claim is guarded by `owner` and
//! `state = 'running'` and reports `false` when the job was lost to another
//! runner.

use rusqlite::{Connection, OptionalExtension, params};

use super::coverage::add_coverage_in;
use super::row::{job_columns, raw_job};
use super::{immediate, sql};
use crate::jobs::{Closing, FailReason, Job, Progress, Result};

/// The claim: the ready job with the smallest `available_at` (then id)
/// becomes `running` for `?1`, its lease ending at `?3`. Pending jobs whose
/// "not before" has come and running jobs whose lease expired are both ready;
/// the partial index `jobs_ready` answers the inner query without a scan.
pub(crate) const CLAIM_SQL: &str = concat!(
    "UPDATE jobs SET state = 'running', owner = ?1, attempts = attempts + 1,
         available_at = ?3, updated_at = ?2
     WHERE id = (SELECT id FROM jobs
                 WHERE state IN ('pending', 'running') AND available_at <= ?2
                 ORDER BY available_at, id LIMIT 1)
     RETURNING ",
    job_columns!()
);

/// Claims the next ready job for `owner` in a `BEGIN IMMEDIATE` transaction,
/// leasing it until `now_ms + lease_ms`. A claimed row that cannot be read is
/// marked `failed` with the reason (so it does not block the queue) and
/// reported as `Corrupt`.
pub(super) fn claim(
    conn: &mut Connection,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Job>> {
    let lease_end = now_ms.saturating_add(lease_ms);
    let tx = immediate(conn, "starting a claim")?;
    let raw = tx
        .prepare_cached(CLAIM_SQL)
        .and_then(|mut claim| {
            claim
                .query_row(params![owner, now_ms, lease_end], raw_job)
                .optional()
        })
        .map_err(sql("claiming a job"))?;
    let Some(raw) = raw else {
        return Ok(None); // nothing changed; dropping `tx` rolls back
    };
    let id = raw.id();
    match raw.into_job() {
        Ok(job) => {
            tx.commit().map_err(sql("committing a claim"))?;
            Ok(Some(job))
        }
        Err(err) => {
            tx.execute(
                "UPDATE jobs SET state = 'failed', last_error = ?2, fail_reason = ?4,
                     finished_at = ?3, updated_at = ?3
                 WHERE id = ?1",
                params![id, err.to_string(), now_ms, FailReason::Parse.as_str()],
            )
            .map_err(sql("parking a corrupt job"))?;
            tx.commit().map_err(sql("parking a corrupt job"))?;
            Err(err)
        }
    }
}

/// Every running job back to pending at `now_ms`, progress kept.
pub(super) fn reclaim_orphans(conn: &Connection, now_ms: i64) -> Result<usize> {
    conn.execute(
        "UPDATE jobs SET state = 'pending', owner = NULL,
             available_at = ?1, updated_at = ?1
         WHERE state = 'running'",
        [now_ms],
    )
    .map_err(sql("reclaiming orphaned jobs"))
}

/// Extends the lease of every job `owner` runs to `now_ms + lease_ms`.
pub(super) fn renew_leases(
    conn: &Connection,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE jobs SET available_at = ?2, updated_at = ?3
         WHERE owner = ?1 AND state = 'running'",
    )
    .and_then(|mut update| update.execute(params![owner, now_ms.saturating_add(lease_ms), now_ms]))
    .map_err(sql("renewing leases"))
}

/// Records a page's progress and renews the lease, if `owner` runs the job.
pub(super) fn record_progress(
    conn: &Connection,
    id: i64,
    owner: &str,
    progress: Progress,
    now_ms: i64,
    lease_ms: i64,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET progress_ts = ?3, rows = rows + ?4, requests = requests + ?5,
                 available_at = ?6, updated_at = ?7
             WHERE id = ?1 AND owner = ?2 AND state = 'running'",
        )
        .and_then(|mut update| {
            update.execute(params![
                id,
                owner,
                progress.last_ts,
                progress.rows,
                progress.requests,
                now_ms.saturating_add(lease_ms),
                now_ms
            ])
        })
        .map_err(sql("recording progress"))?;
    Ok(changed == 1)
}

/// Marks the job done with its last page and coverage, in one transaction.
pub(super) fn complete_with(
    conn: &mut Connection,
    id: i64,
    owner: &str,
    closing: &Closing,
    now_ms: i64,
) -> Result<bool> {
    let tx = immediate(conn, "starting to complete a job")?;
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET state = 'done', progress_ts = COALESCE(?3, progress_ts),
                 rows = rows + ?4, requests = requests + ?5, last_error = NULL,
                 fail_reason = NULL, finished_at = ?6, updated_at = ?6
             WHERE id = ?1 AND owner = ?2 AND state = 'running'",
        )
        .and_then(|mut update| {
            update.execute(params![
                id,
                owner,
                closing.progress_ts,
                closing.rows,
                closing.requests,
                now_ms
            ])
        })
        .map_err(sql("completing a job"))?;
    if changed != 1 {
        return Ok(false); // dropping `tx` rolls back
    }
    if let Some(grant) = &closing.coverage {
        add_coverage_in(
            &tx,
            &grant.tickers,
            &grant.timeframes,
            grant.basis,
            grant.range,
        )?;
    }
    tx.commit().map_err(sql("committing a completed job"))?;
    Ok(true)
}

/// What a failure records: the error, its reason and the requests it sent.
pub(super) struct Failure<'a> {
    pub(super) error: &'a str,
    pub(super) reason: FailReason,
    pub(super) requests_added: i64,
}

/// Records `failure`: pending again at `retry_at_ms`, or failed for good.
pub(super) fn fail(
    conn: &Connection,
    id: i64,
    owner: &str,
    failure: &Failure<'_>,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<bool> {
    let Failure {
        error,
        reason,
        requests_added,
    } = *failure;
    let reason = reason.as_str();
    let changed = match retry_at_ms {
        Some(retry_at) => conn.execute(
            "UPDATE jobs SET state = 'pending', owner = NULL, last_error = ?3,
                 fail_reason = ?7, requests = requests + ?4, available_at = ?5,
                 updated_at = ?6
             WHERE id = ?1 AND owner = ?2 AND state = 'running'",
            params![id, owner, error, requests_added, retry_at, now_ms, reason],
        ),
        None => conn.execute(
            "UPDATE jobs SET state = 'failed', last_error = ?3, fail_reason = ?6,
                 requests = requests + ?4, finished_at = ?5, updated_at = ?5
             WHERE id = ?1 AND owner = ?2 AND state = 'running'",
            params![id, owner, error, requests_added, now_ms, reason],
        ),
    }
    .map_err(sql("recording a job failure"))?;
    Ok(changed == 1)
}

/// Gives the job back: pending at `now_ms`, progress kept.
pub(super) fn release(conn: &Connection, id: i64, owner: &str, now_ms: i64) -> Result<bool> {
    let changed = conn
        .execute(
            "UPDATE jobs SET state = 'pending', owner = NULL,
                 available_at = ?3, updated_at = ?3
             WHERE id = ?1 AND owner = ?2 AND state = 'running'",
            params![id, owner, now_ms],
        )
        .map_err(sql("releasing a job"))?;
    Ok(changed == 1)
}
