//! The conformance checks of what the monitoring page reads: the reason
//! recorded with each failure (stored, listed, kept by a requeue, cleared by
//! a success), the history of runs, and the totals of requests and rows.

use super::{Open, handle};
use crate::jobs::tests::{jan, rest};
use crate::jobs::*;

pub(crate) fn fail_reasons_are_stored_listed_kept_by_requeue_and_cleared_by_success(
    open: Open<'_>,
) {
    let mut table = handle(open);
    // Every reason is stored and read back as itself.
    let planned: Vec<NewJob> = (0..FailReason::ALL.len())
        .map(|i| rest(&format!("T{i}"), "1m", &[], jan()))
        .collect();
    table.insert(&planned, 0).unwrap();
    for (at, reason) in (1..).zip(FailReason::ALL) {
        let job = table.claim("w", at, 1_000).unwrap().unwrap();
        assert_eq!(job.fail_reason, None, "never failed");
        assert!(
            table
                .fail(job.id, "w", reason.label(), reason, None, 0, at)
                .unwrap()
        );
        assert_eq!(
            table.get(job.id).unwrap().unwrap().fail_reason,
            Some(reason)
        );
    }
    let listed: Vec<_> = table
        .list(Some(JobState::Failed), 100)
        .unwrap()
        .into_iter()
        .map(|job| job.fail_reason)
        .collect();
    let mut newest_first: Vec<_> = FailReason::ALL.into_iter().map(Some).collect();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    // Requeued, a failed job keeps its reason, as it keeps its error, until
    // the next attempt overwrites or clears both.
    assert_eq!(
        table.requeue_failed(None, 100).unwrap(),
        FailReason::ALL.len()
    );
    let requeued = table.list(Some(JobState::Pending), 100).unwrap();
    assert!(
        requeued
            .iter()
            .all(|job| job.fail_reason.map(FailReason::label) == job.last_error.as_deref()),
        "{requeued:#?}"
    );
    let first = table.claim("w", 200, 1_000).unwrap().unwrap();
    assert!(first.fail_reason.is_some(), "a claim keeps it");
    assert!(
        table
            .fail(
                first.id,
                "w",
                "HTTP 503",
                FailReason::Network,
                Some(50),
                0,
                201
            )
            .unwrap()
    );
    let retry = table.get(first.id).unwrap().unwrap();
    assert_eq!(
        (retry.state, retry.fail_reason),
        (JobState::Pending, Some(FailReason::Network)),
        "a retry records its reason too"
    );
    let again = table.claim("w", 300, 1_000).unwrap().unwrap();
    assert_eq!(again.id, first.id);
    assert!(table.complete(again.id, "w", 1, 301).unwrap());
    let done = table.get(again.id).unwrap().unwrap();
    assert_eq!((done.last_error, done.fail_reason), (None, None));

    // A thief's failure records nothing, the reason included.
    let other = table.claim("w", 400, 1_000).unwrap().unwrap();
    let before = table.get(other.id).unwrap().unwrap();
    assert!(
        !table
            .fail(other.id, "thief", "x", FailReason::Disk, None, 0, 401)
            .unwrap()
    );
    assert_eq!(table.get(other.id).unwrap().unwrap(), before);
}

pub(crate) fn runs_are_started_finished_and_listed_newest_first(open: Open<'_>) {
    let mut table = handle(open);
    assert!(table.runs(10).unwrap().is_empty());
    let backfill = table
        .run_started("backfill", "host:1:1000", Some("5/min"), 1_000)
        .unwrap();
    let update = table
        .run_started("update", "host:2:2000", None, 2_000)
        .unwrap();
    let run = table
        .run_started("run", "host:3:3000", Some("100/s"), 3_000)
        .unwrap();
    let same_time = table
        .run_started("run-once", "host:4:3000", Some("unlimited"), 3_000)
        .unwrap();
    let ids: Vec<i64> = table.runs(10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [same_time, run, update, backfill],
        "newest first, then the later id"
    );
    assert_eq!(
        table.runs(10).unwrap()[3],
        RunRecord {
            id: backfill,
            command: "backfill".into(),
            owner: "host:1:1000".into(),
            started_at: 1_000,
            ended_at: None,
            jobs_done: 0,
            jobs_failed: 0,
            bars: 0,
            requests: 0,
            exit_code: None,
            rate_limit: Some("5/min".into()),
            rate_limited: 0,
        },
        "running"
    );
    assert_eq!(table.rate_limited_total().unwrap(), 0);

    let ended = RunEnd {
        jobs_done: 32,
        jobs_failed: 1,
        bars: 196_619,
        requests: 24,
        exit_code: 1,
        rate_limited: 7,
    };
    table.run_finished(backfill, &ended, 1_500).unwrap();
    table
        .run_finished(
            update,
            &RunEnd {
                exit_code: 130,
                rate_limited: 2,
                ..RunEnd::default()
            },
            2_500,
        )
        .unwrap();
    table
        .run_finished(same_time + 1_000, &ended, 9_000)
        .unwrap();
    table.close().unwrap();

    // Another handle reads what was recorded.
    let table = handle(open);
    let runs = table.runs(10).unwrap();
    assert_eq!(
        runs.len(),
        4,
        "finishing a run that does not exist adds none"
    );
    assert_eq!(
        runs[3],
        RunRecord {
            id: backfill,
            command: "backfill".into(),
            owner: "host:1:1000".into(),
            started_at: 1_000,
            ended_at: Some(1_500),
            jobs_done: 32,
            jobs_failed: 1,
            bars: 196_619,
            requests: 24,
            exit_code: Some(1),
            rate_limit: Some("5/min".into()),
            rate_limited: 7,
        }
    );
    assert_eq!(
        (
            runs[2].command.as_str(),
            runs[2].ended_at,
            runs[2].exit_code
        ),
        ("update", Some(2_500), Some(130))
    );
    assert_eq!(runs[2].rate_limit, None);
    assert_eq!(runs[2].rate_limited, 2);
    assert!(runs[..2].iter().all(|r| r.rate_limited == 0));
    assert_eq!(
        table.rate_limited_total().unwrap(),
        7 + 2,
        "the sum over every run, finishing one that does not exist adds none"
    );
    assert!(
        runs[..2]
            .iter()
            .all(|r| r.ended_at.is_none() && r.exit_code.is_none())
    );
    let limited: Vec<i64> = table.runs(2).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(limited, [same_time, run]);
    assert!(table.runs(0).unwrap().is_empty());
}

pub(crate) fn totals_sum_the_requests_and_rows_of_every_job(open: Open<'_>) {
    let mut table = handle(open);
    assert_eq!(table.totals().unwrap(), Totals::default());
    let jobs: Vec<NewJob> = ["A", "B", "C"]
        .iter()
        .map(|t| rest(t, "1m", &[], jan()))
        .collect();
    table.insert(&jobs, 0).unwrap();
    assert_eq!(table.totals().unwrap(), Totals::default());
    let a = table.claim("w", 1, 1_000).unwrap().unwrap();
    let b = table.claim("w", 1, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(a.id, "w", 10, 500, 2, 2, 1_000)
            .unwrap()
    );
    let closing = Closing {
        progress_ts: Some(20),
        rows: 250,
        requests: 1,
        coverage: None,
    };
    assert!(table.complete_with(a.id, "w", &closing, 3).unwrap());
    assert!(
        table
            .record_progress(b.id, "w", 10, 40, 1, 2, 1_000)
            .unwrap()
    );
    assert!(
        table
            .fail(b.id, "w", "HTTP 429", FailReason::RateLimited, None, 3, 4)
            .unwrap()
    );
    // Running jobs count too: what they stored is stored.
    let c = table.claim("w", 5, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(c.id, "w", 10, 7, 1, 6, 1_000)
            .unwrap()
    );
    assert_eq!(
        table.totals().unwrap(),
        Totals {
            requests: 2 + 1 + 1 + 3 + 1,
            rows: 500 + 250 + 40 + 7,
        }
    );
    // The sums are over the jobs the table holds.
    assert_eq!(table.clear_done().unwrap(), 1);
    assert_eq!(
        table.totals().unwrap(),
        Totals {
            requests: 5,
            rows: 47
        }
    );
}
