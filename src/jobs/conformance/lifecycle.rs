//! The conformance checks of a job's life: claims and their order, leases
//! (expiry, reclaim, renewal), progress guarded by the owner, the endings
//! (done with coverage, failed with or without a retry, released, orphaned),
//! requeueing, and two handles claiming at once.

use std::collections::HashSet;
use std::sync::Barrier;

use chrono::NaiveDate;

use super::{Open, handle};
use crate::jobs::tests::{jan, rest, tf, ticker};
use crate::jobs::*;
pub(crate) fn claims_go_by_available_at_then_id_and_respect_not_before(open: Open<'_>) {
    let mut table = handle(open);
    table
        .insert(
            &[rest("A", "1m", &[], jan()), rest("B", "1m", &[], jan())],
            100,
        )
        .unwrap();
    table.insert(&[rest("C", "1m", &[], jan())], 50).unwrap();
    table.insert(&[rest("D", "1m", &[], jan())], 300).unwrap();
    let mut claimed = Vec::new();
    while let Some(job) = table.claim("w", 200, 1_000).unwrap() {
        assert_eq!(job.state, JobState::Running);
        assert_eq!((job.owner.as_deref(), job.attempts), (Some("w"), 1));
        claimed.push(job.ticker.to_string());
    }
    assert_eq!(claimed, ["C", "A", "B"], "D is not available before 300");
    let d_job = table.claim("w", 300, 1_000).unwrap().unwrap();
    assert_eq!(d_job.ticker, ticker("D"));
    assert!(table.claim("w", 300, 1_000).unwrap().is_none());
}

pub(crate) fn a_lease_expires_and_the_job_is_reclaimed_with_attempts_counted(open: Open<'_>) {
    let mut table = handle(open);
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let first = table.claim("one", 1_000, 500).unwrap().unwrap();
    assert_eq!((first.attempts, first.available_at), (1, 1_500));
    assert_eq!(first.owner.as_deref(), Some("one"));
    assert!(table.claim("two", 1_499, 500).unwrap().is_none());

    // Progress renews the lease.
    assert!(
        table
            .record_progress(first.id, "one", 42, 10, 1, 1_400, 500)
            .unwrap()
    );
    assert!(table.claim("two", 1_500, 500).unwrap().is_none());

    let second = table.claim("two", 1_900, 500).unwrap().unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!((second.attempts, second.available_at), (2, 2_400));
    assert_eq!(second.owner.as_deref(), Some("two"));
    assert_eq!(second.progress_ts, Some(42), "progress survives a reclaim");
    assert_eq!((second.rows, second.requests), (10, 1));
    // The first owner lost it: none of its writes land.
    assert!(
        !table
            .record_progress(first.id, "one", 99, 1, 1, 1_950, 500)
            .unwrap()
    );
    assert!(!table.release(first.id, "one", 1_950).unwrap());
    assert_eq!(table.get(first.id).unwrap().unwrap(), second);
}

pub(crate) fn renewing_leases_keeps_only_the_renewing_owners_jobs(open: Open<'_>) {
    let mut table = handle(open);
    table
        .insert(
            &[rest("A", "1m", &[], jan()), rest("B", "1m", &[], jan())],
            0,
        )
        .unwrap();
    let mine = table.claim("one", 1_000, 500).unwrap().unwrap();
    let theirs = table.claim("two", 1_000, 500).unwrap().unwrap();
    assert_eq!(table.renew_leases("one", 1_400, 500).unwrap(), 1);
    assert_eq!(table.renew_leases("nobody", 1_400, 500).unwrap(), 0);
    // At 1 600 the first leases (to 1 500) have run out: only the job of the
    // runner that did not renew can be claimed again.
    let taken = table.claim("three", 1_600, 500).unwrap().unwrap();
    assert_eq!(taken.id, theirs.id);
    assert!(table.claim("three", 1_899, 500).unwrap().is_none());
    let kept = table.get(mine.id).unwrap().unwrap();
    assert_eq!(
        (kept.owner.as_deref(), kept.available_at, kept.attempts),
        (Some("one"), 1_900, 1)
    );
    assert_eq!(
        kept.updated_at, 1_400,
        "a renewal is the runner's heartbeat"
    );
}

pub(crate) fn progress_is_recorded_and_guarded_by_owner(open: Open<'_>) {
    let mut table = handle(open);
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let job = table.claim("owner", 10, 1_000).unwrap().unwrap();
    let before = table.get(job.id).unwrap().unwrap();
    assert!(
        !table
            .record_progress(job.id, "thief", 1, 1, 1, 20, 1_000)
            .unwrap()
    );
    assert!(!table.complete(job.id, "thief", 1, 20).unwrap());
    assert!(
        !table
            .fail(job.id, "thief", "boom", FailReason::Other, None, 1, 20)
            .unwrap()
    );
    assert!(
        !table
            .fail(job.id, "thief", "boom", FailReason::Other, Some(99), 1, 20)
            .unwrap()
    );
    assert!(!table.release(job.id, "thief", 20).unwrap());
    assert!(!table.complete(job.id + 1_000, "owner", 1, 20).unwrap());
    assert_eq!(table.get(job.id).unwrap().unwrap(), before);

    assert!(
        table
            .record_progress(job.id, "owner", 1_000, 500, 1, 30, 1_000)
            .unwrap()
    );
    assert!(
        table
            .record_progress(job.id, "owner", 2_000, 250, 2, 40, 1_000)
            .unwrap()
    );
    let progressed = table.get(job.id).unwrap().unwrap();
    assert_eq!(progressed.progress_ts, Some(2_000));
    assert_eq!((progressed.rows, progressed.requests), (750, 3));
    assert_eq!(
        (progressed.available_at, progressed.updated_at),
        (1_040, 40)
    );

    assert!(table.complete(job.id, "owner", 1, 50).unwrap());
    let done = table.get(job.id).unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!((done.requests, done.finished_at), (4, Some(50)));
    assert!(
        !table.complete(job.id, "owner", 1, 60).unwrap(),
        "only a running job completes"
    );
    assert!(
        !table
            .record_progress(job.id, "owner", 3_000, 1, 1, 60, 1_000)
            .unwrap(),
        "a done job records no progress"
    );
    assert!(
        table.claim("owner", 10_000, 1_000).unwrap().is_none(),
        "done is never claimed"
    );
}

pub(crate) fn complete_with_writes_coverage_and_done_atomically_and_refuses_a_lost_job(
    open: Open<'_>,
) {
    let mut table = handle(open);
    table
        .insert(&[rest("AAPL", "1m", &["5m"], jan())], 0)
        .unwrap();
    let job = table.claim("owner", 10, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(job.id, "owner", 1_000, 500, 1, 20, 1_000)
            .unwrap()
    );
    let closing = Closing {
        progress_ts: Some(2_000),
        rows: 250,
        requests: 1,
        coverage: Some(CoverageGrant {
            tickers: vec![ticker("AAPL")],
            timeframes: vec![tf("1m"), tf("5m")],
            basis: Basis::Unadjusted,
            range: jan(),
        }),
    };
    // The lease ran out and another runner took the job: the first owner's
    // completion records nothing, neither the job nor the coverage.
    let taken = table.claim("other", 2_000, 1_000).unwrap().unwrap();
    assert_eq!(taken.id, job.id);
    let before = table.get(job.id).unwrap().unwrap();
    assert!(
        !table
            .complete_with(job.id, "owner", &closing, 2_100)
            .unwrap()
    );
    assert_eq!(table.get(job.id).unwrap().unwrap(), before);
    assert!(table.all_coverage().unwrap().is_empty());

    assert!(
        table
            .complete_with(job.id, "other", &closing, 2_200)
            .unwrap()
    );
    let done = table.get(job.id).unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.progress_ts, Some(2_000));
    assert_eq!((done.rows, done.requests), (750, 2));
    assert_eq!(done.finished_at, Some(2_200));
    assert_eq!(done.last_error, None);
    for timeframe in ["1m", "5m"] {
        assert_eq!(
            table
                .coverage(&ticker("AAPL"), tf(timeframe), Basis::Unadjusted)
                .unwrap(),
            [jan()],
            "{timeframe}"
        );
    }
    // A completion without a last page keeps the recorded progress.
    table.insert(&[rest("MSFT", "1m", &[], jan())], 0).unwrap();
    let other = table.claim("owner", 2_300, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(other.id, "owner", 7_000, 5, 1, 2_400, 1_000)
            .unwrap()
    );
    assert!(
        table
            .complete_with(other.id, "owner", &Closing::default(), 2_500)
            .unwrap()
    );
    let done = table.get(other.id).unwrap().unwrap();
    assert_eq!(
        (done.progress_ts, done.rows, done.requests),
        (Some(7_000), 5, 1)
    );
}

pub(crate) fn fail_with_a_retry_comes_back_later_and_without_one_stays_failed(open: Open<'_>) {
    let mut table = handle(open);
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let job = table.claim("w", 10, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(job.id, "w", 777, 5, 1, 20, 1_000)
            .unwrap()
    );
    assert!(
        table
            .fail(
                job.id,
                "w",
                "HTTP 503",
                FailReason::Network,
                Some(5_000),
                1,
                30
            )
            .unwrap()
    );
    let retry = table.get(job.id).unwrap().unwrap();
    assert_eq!(retry.state, JobState::Pending);
    assert_eq!(retry.available_at, 5_000);
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(
        (retry.owner, retry.progress_ts, retry.requests),
        (None, Some(777), 2)
    );
    assert!(table.claim("w", 4_999, 1_000).unwrap().is_none());

    let again = table.claim("w", 5_000, 1_000).unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    assert!(
        table
            .fail(
                again.id,
                "w",
                "HTTP 404: unknown ticker",
                FailReason::Other,
                None,
                1,
                5_100
            )
            .unwrap()
    );
    let failed = table.get(job.id).unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.finished_at, Some(5_100));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("HTTP 404: unknown ticker")
    );
    assert_eq!(failed.progress_ts, Some(777), "progress kept");
    assert!(table.claim("w", i64::MAX, 1_000).unwrap().is_none());
    assert!(
        !table
            .fail(job.id, "w", "again", FailReason::Other, None, 0, 5_200)
            .unwrap(),
        "only a running job fails"
    );
    assert_eq!(table.counts().unwrap().failed, 1);
}

pub(crate) fn release_and_reclaim_orphans_make_running_jobs_pending_again(open: Open<'_>) {
    let mut table = handle(open);
    let jobs: Vec<NewJob> = ["A", "B", "C"]
        .iter()
        .map(|t| rest(t, "1m", &[], jan()))
        .collect();
    table.insert(&jobs, 0).unwrap();
    let a = table.claim("w1", 10, 1_000_000).unwrap().unwrap();
    let b = table.claim("w2", 10, 1_000_000).unwrap().unwrap();
    let c = table.claim("w3", 10, 1_000_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(a.id, "w1", 123, 1, 1, 11, 1_000_000)
            .unwrap()
    );

    assert!(table.release(c.id, "w3", 20).unwrap());
    let released = table.get(c.id).unwrap().unwrap();
    assert_eq!(
        (released.state, released.available_at, released.owner),
        (JobState::Pending, 20, None)
    );
    assert_eq!(released.attempts, 1, "the claim still counts");
    assert!(!table.release(c.id, "w3", 21).unwrap(), "released once");

    assert_eq!(table.reclaim_orphans(30).unwrap(), 2);
    for id in [a.id, b.id] {
        let job = table.get(id).unwrap().unwrap();
        assert_eq!(
            (job.state, job.available_at, job.owner.as_deref()),
            (JobState::Pending, 30, None)
        );
    }
    assert_eq!(table.get(a.id).unwrap().unwrap().progress_ts, Some(123));
    assert_eq!(table.counts().unwrap().pending, 3);
    assert!(
        !table.complete(a.id, "w1", 0, 40).unwrap(),
        "the orphan's old owner lost it"
    );
    assert_eq!(table.reclaim_orphans(50).unwrap(), 0);
}

pub(crate) fn requeue_failed_resets_attempts_and_keeps_the_error(open: Open<'_>) {
    let mut table = handle(open);
    table
        .insert(
            &[
                rest("AAPL", "1m", &[], jan()),
                rest("MSFT", "1m", &[], jan()),
            ],
            0,
        )
        .unwrap();
    for _ in 0..2 {
        let job = table.claim("w", 10, 100).unwrap().unwrap();
        assert!(
            table
                .fail(job.id, "w", "bad", FailReason::Other, None, 0, 20)
                .unwrap()
        );
    }
    assert_eq!(table.requeue_failed(Some(&ticker("AAPL")), 50).unwrap(), 1);
    assert_eq!(table.requeue_failed(Some(&ticker("NOPE")), 50).unwrap(), 0);
    let counts = table.counts().unwrap();
    assert_eq!((counts.pending, counts.failed), (1, 1));
    let aapl = table.list(Some(JobState::Pending), 10).unwrap().remove(0);
    assert_eq!(aapl.ticker, ticker("AAPL"));
    assert_eq!(
        (aapl.attempts, aapl.available_at, aapl.finished_at),
        (0, 50, None)
    );
    assert_eq!(aapl.last_error.as_deref(), Some("bad"));
    assert_eq!(table.requeue_failed(None, 60).unwrap(), 1);
    assert_eq!(table.counts().unwrap().pending, 2);
    // A successful run clears the old error.
    let job = table.claim("w", 60, 100).unwrap().unwrap();
    assert!(table.complete(job.id, "w", 1, 70).unwrap());
    assert_eq!(table.get(job.id).unwrap().unwrap().last_error, None);
}

/// Retries `op` while the table is busy (retryable by contract).
fn retry_busy<T>(mut op: impl FnMut() -> Result<T>) -> T {
    loop {
        match op() {
            Ok(value) => return value,
            Err(err) if err.is_busy() => std::thread::yield_now(),
            Err(err) => panic!("{err}"),
        }
    }
}

pub(crate) fn two_handles_claiming_at_once_never_share_a_job(open: Open<'_>) {
    const JOBS: usize = 300;
    const CLAIMS: usize = 200;
    let mut table = handle(open);
    let day0 = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| NewJob {
            range: DateRange::day(day0),
            ..rest(&format!("T{i}"), "1m", &[], jan())
        })
        .collect();
    assert_eq!(table.insert(&jobs, 0).unwrap(), JOBS);

    let start = Barrier::new(2);
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let runners: Vec<_> = ["runner-a", "runner-b"]
            .into_iter()
            .map(|owner| {
                let start = &start;
                scope.spawn(move || {
                    let mut mine = handle(open);
                    start.wait();
                    let mut ids = Vec::new();
                    for _ in 0..CLAIMS {
                        let Some(job) = retry_busy(|| mine.claim(owner, 1_000, 3_600_000)) else {
                            continue;
                        };
                        assert_eq!(job.owner.as_deref(), Some(owner));
                        assert_eq!(job.attempts, 1, "job {} claimed before", job.id);
                        assert!(retry_busy(|| mine.complete(job.id, owner, 1, 1_000)));
                        ids.push(job.id);
                    }
                    ids
                })
            })
            .collect();
        runners.into_iter().map(|r| r.join().unwrap()).collect()
    });

    let mut seen = HashSet::new();
    for id in claimed.iter().flatten() {
        assert!(seen.insert(*id), "job {id} was claimed twice");
    }
    let all: HashSet<i64> = table
        .list(None, JOBS + 10)
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(all.len(), JOBS);
    assert_eq!(seen, all, "every job claimed exactly once");
    assert!(
        claimed.iter().all(|ids| !ids.is_empty()),
        "both claimed some"
    );
    let counts = table.counts().unwrap();
    assert_eq!((counts.done, counts.total()), (JOBS, JOBS));
    for job in table.list(None, JOBS).unwrap() {
        assert_eq!((job.attempts, job.requests), (1, 1));
    }
}
