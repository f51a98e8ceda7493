//! A job's life after planning, on PostgreSQL: the claim (`FOR UPDATE SKIP
//! LOCKED`, so claimers on several machines never wait for each other's
//! rows), leases, progress and the endings. Every write after the claim is
//! guarded by `owner` and `state = 'running'`, as on SQLite.

use super::coverage::add_coverage_in;
use super::row::{job_columns, raw_job};
use super::session::{Session, pg};
use crate::jobs::{Closing, FailReason, Job, Result};

/// The claim: the ready job with the smallest `available_at` (then id)
/// becomes `running` for `$1`, its lease ending at `$3`. A row another
/// claimer holds is skipped rather than waited for.
pub(crate) const CLAIM_SQL: &str = concat!(
    "UPDATE jobs SET state = 'running', owner = $1, attempts = attempts + 1,
         available_at = $3, updated_at = $2
     WHERE id = (SELECT id FROM jobs
                 WHERE state IN ('pending', 'running') AND available_at <= $2
                 ORDER BY available_at, id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
     RETURNING ",
    job_columns!()
);

/// Claims the next ready job for `owner`, leased until `now_ms + lease_ms`.
/// A claimed row that cannot be read is marked failed and reported corrupt.
pub(super) fn claim(
    session: &mut Session,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Job>> {
    let lease_end = now_ms.saturating_add(lease_ms);
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client.transaction().map_err(pg("starting a claim"))?;
    let claim = statements
        .get(&mut tx, CLAIM_SQL)
        .map_err(pg("preparing the claim"))?;
    let Some(row) = tx
        .query_opt(&claim, &[&owner, &now_ms, &lease_end])
        .map_err(pg("claiming a job"))?
    else {
        return Ok(None); // nothing changed; dropping `tx` rolls back
    };
    let raw = raw_job(&row)?;
    let id = raw.id;
    match raw.into_job() {
        Ok(job) => {
            tx.commit().map_err(pg("committing a claim"))?;
            Ok(Some(job))
        }
        Err(err) => {
            tx.execute(
                "UPDATE jobs SET state = 'failed', last_error = $2, fail_reason = $4,
                     finished_at = $3, updated_at = $3
                 WHERE id = $1",
                &[&id, &err.to_string(), &now_ms, &FailReason::Parse.as_str()],
            )
            .map_err(pg("parking a corrupt job"))?;
            tx.commit().map_err(pg("parking a corrupt job"))?;
            Err(err)
        }
    }
}

/// Every running job back to pending at `now_ms`, progress kept.
pub(super) fn reclaim_orphans(session: &mut Session, now_ms: i64) -> Result<usize> {
    let changed = session
        .execute(
            "UPDATE jobs SET state = 'pending', owner = NULL,
                 available_at = $1, updated_at = $1
             WHERE state = 'running'",
            &[&now_ms],
        )
        .map_err(pg("reclaiming orphaned jobs"))?;
    Ok(usize::try_from(changed).unwrap_or(usize::MAX))
}

/// Extends the lease of every job `owner` runs to `now_ms + lease_ms`.
pub(super) fn renew_leases(
    session: &mut Session,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<usize> {
    let changed = session
        .execute(
            "UPDATE jobs SET available_at = $2, updated_at = $3
             WHERE owner = $1 AND state = 'running'",
            &[&owner, &now_ms.saturating_add(lease_ms), &now_ms],
        )
        .map_err(pg("renewing leases"))?;
    Ok(usize::try_from(changed).unwrap_or(usize::MAX))
}

/// Records a page's progress and renews the lease, if `owner` runs the job.
pub(super) fn record_progress(
    session: &mut Session,
    id: i64,
    owner: &str,
    progress: crate::jobs::Progress,
    now_ms: i64,
    lease_ms: i64,
) -> Result<bool> {
    let changed = session
        .execute(
            "UPDATE jobs SET progress_ts = $3, rows = rows + $4, requests = requests + $5,
                 available_at = $6, updated_at = $7
             WHERE id = $1 AND owner = $2 AND state = 'running'",
            &[
                &id,
                &owner,
                &progress.last_ts,
                &progress.rows,
                &progress.requests,
                &now_ms.saturating_add(lease_ms),
                &now_ms,
            ],
        )
        .map_err(pg("recording progress"))?;
    Ok(changed == 1)
}

/// Marks the job done with its last page and coverage, in one transaction.
pub(super) fn complete_with(
    session: &mut Session,
    id: i64,
    owner: &str,
    closing: &Closing,
    now_ms: i64,
) -> Result<bool> {
    const SQL: &str = "UPDATE jobs SET state = 'done', progress_ts = COALESCE($3, progress_ts),
             rows = rows + $4, requests = requests + $5, last_error = NULL,
             fail_reason = NULL, finished_at = $6, updated_at = $6
         WHERE id = $1 AND owner = $2 AND state = 'running'";
    let Session {
        client, statements, ..
    } = session;
    let mut tx = client
        .transaction()
        .map_err(pg("starting to complete a job"))?;
    let complete = statements
        .get(&mut tx, SQL)
        .map_err(pg("preparing the completion"))?;
    let changed = tx
        .execute(
            &complete,
            &[
                &id,
                &owner,
                &closing.progress_ts,
                &closing.rows,
                &closing.requests,
                &now_ms,
            ],
        )
        .map_err(pg("completing a job"))?;
    if changed != 1 {
        return Ok(false); // dropping `tx` rolls back
    }
    if let Some(grant) = &closing.coverage {
        add_coverage_in(
            &mut tx,
            statements,
            &grant.tickers,
            &grant.timeframes,
            grant.basis,
            grant.range,
        )?;
    }
    tx.commit().map_err(pg("committing a completed job"))?;
    Ok(true)
}

/// Records a failure: pending again at `retry_at_ms`, or failed for good.
#[allow(clippy::too_many_arguments)] // each is one column of the update
pub(super) fn fail(
    session: &mut Session,
    id: i64,
    owner: &str,
    error: &str,
    reason: FailReason,
    retry_at_ms: Option<i64>,
    requests_added: i64,
    now_ms: i64,
) -> Result<bool> {
    let reason = reason.as_str();
    let changed = match retry_at_ms {
        Some(retry_at) => session.execute(
            "UPDATE jobs SET state = 'pending', owner = NULL, last_error = $3,
                 fail_reason = $7, requests = requests + $4, available_at = $5,
                 updated_at = $6
             WHERE id = $1 AND owner = $2 AND state = 'running'",
            &[
                &id,
                &owner,
                &error,
                &requests_added,
                &retry_at,
                &now_ms,
                &reason,
            ],
        ),
        None => session.execute(
            "UPDATE jobs SET state = 'failed', last_error = $3, fail_reason = $6,
                 requests = requests + $4, finished_at = $5, updated_at = $5
             WHERE id = $1 AND owner = $2 AND state = 'running'",
            &[&id, &owner, &error, &requests_added, &now_ms, &reason],
        ),
    }
    .map_err(pg("recording a job failure"))?;
    Ok(changed == 1)
}

/// Gives the job back: pending at `now_ms`, progress kept.
pub(super) fn release(session: &mut Session, id: i64, owner: &str, now_ms: i64) -> Result<bool> {
    let changed = session
        .execute(
            "UPDATE jobs SET state = 'pending', owner = NULL,
                 available_at = $3, updated_at = $3
             WHERE id = $1 AND owner = $2 AND state = 'running'",
            &[&id, &owner, &now_ms],
        )
        .map_err(pg("releasing a job"))?;
    Ok(changed == 1)
}
