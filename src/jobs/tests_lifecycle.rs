//! Tests of a job's life on real SQLite files: claim order, leases, the
//! owner guard on every write, failure with and without retry, release,
//! orphans, requeue, corrupt rows, SQLITE_BUSY and the claim's query plan.

use std::time::Duration;

use rusqlite::Connection;

use super::lifecycle::CLAIM_SQL;
use super::tests::{jan, rest, temp_table, ticker};
use super::*;

#[test]
fn claims_go_by_available_at_then_id_and_respect_not_before() {
    let (_dir, _path, mut table) = temp_table();
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
        claimed.push(job.ticker.to_string());
    }
    assert_eq!(claimed, ["C", "A", "B"], "D is not available before 300");
    let d_job = table.claim("w", 300, 1_000).unwrap().unwrap();
    assert_eq!(d_job.ticker, ticker("D"));
    assert!(table.claim("w", 300, 1_000).unwrap().is_none());
}

#[test]
fn a_running_job_is_claimed_again_only_after_its_lease_expires() {
    let (_dir, _path, mut table) = temp_table();
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
}

#[test]
fn renewing_leases_keeps_a_waiting_runners_jobs_and_only_its_own() {
    let (_dir, _path, mut table) = temp_table();
    table
        .insert(
            &[rest("A", "1m", &[], jan()), rest("B", "1m", &[], jan())],
            0,
        )
        .unwrap();
    let mine = table.claim("one", 1_000, 500).unwrap().unwrap();
    let theirs = table.claim("two", 1_000, 500).unwrap().unwrap();
    assert_eq!(table.renew_leases("one", 1_400, 500).unwrap(), 1);
    // At 1 600 the first leases (to 1 500) have run out: only the job of the
    // runner that did not renew can be claimed again.
    let taken = table.claim("three", 1_600, 500).unwrap().unwrap();
    assert_eq!(taken.id, theirs.id);
    assert!(table.claim("three", 1_899, 500).unwrap().is_none());
    assert_eq!(
        table.get(mine.id).unwrap().unwrap().owner.as_deref(),
        Some("one")
    );
}

#[test]
fn only_the_owner_can_record_progress_or_finish() {
    let (_dir, _path, mut table) = temp_table();
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let job = table.claim("owner", 10, 1_000).unwrap().unwrap();
    let before = table.get(job.id).unwrap().unwrap();
    assert!(
        !table
            .record_progress(job.id, "thief", 1, 1, 1, 20, 1_000)
            .unwrap()
    );
    assert!(!table.complete(job.id, "thief", 1, 20).unwrap());
    assert!(!table.fail(job.id, "thief", "boom", None, 1, 20).unwrap());
    assert!(
        !table
            .fail(job.id, "thief", "boom", Some(99), 1, 20)
            .unwrap()
    );
    assert!(!table.release(job.id, "thief", 20).unwrap());
    assert!(!table.complete(9_999, "owner", 1, 20).unwrap());
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
        table.claim("owner", 10_000, 1_000).unwrap().is_none(),
        "done is never claimed"
    );
}

#[test]
fn completion_records_the_last_page_and_the_coverage_with_it_or_nothing() {
    let (_dir, _path, mut table) = temp_table();
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
            timeframes: vec!["1m".parse().unwrap(), "5m".parse().unwrap()],
            basis: Basis::Unadjusted,
            range: jan(),
        }),
    };
    // Not the owner: neither the job nor the coverage changes.
    let before = table.get(job.id).unwrap().unwrap();
    assert!(!table.complete_with(job.id, "thief", &closing, 30).unwrap());
    assert_eq!(table.get(job.id).unwrap().unwrap(), before);
    let m1: Timeframe = "1m".parse().unwrap();
    assert!(
        table
            .coverage(&ticker("AAPL"), m1, Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );

    assert!(table.complete_with(job.id, "owner", &closing, 40).unwrap());
    let done = table.get(job.id).unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.progress_ts, Some(2_000));
    assert_eq!((done.rows, done.requests), (750, 2));
    assert_eq!(done.finished_at, Some(40));
    for tf in ["1m", "5m"] {
        let tf: Timeframe = tf.parse().unwrap();
        assert_eq!(
            table
                .coverage(&ticker("AAPL"), tf, Basis::Unadjusted)
                .unwrap(),
            [jan()],
            "{tf}"
        );
    }
    // A completion without a last page keeps the recorded progress.
    table.insert(&[rest("MSFT", "1m", &[], jan())], 0).unwrap();
    let other = table.claim("owner", 50, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(other.id, "owner", 7_000, 5, 1, 60, 1_000)
            .unwrap()
    );
    assert!(
        table
            .complete_with(other.id, "owner", &Closing::default(), 70)
            .unwrap()
    );
    let done = table.get(other.id).unwrap().unwrap();
    assert_eq!(
        (done.progress_ts, done.rows, done.requests),
        (Some(7_000), 5, 1)
    );
}

#[test]
fn fail_with_a_retry_comes_back_later_and_without_one_stays_failed() {
    let (_dir, _path, mut table) = temp_table();
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let job = table.claim("w", 10, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(job.id, "w", 777, 5, 1, 20, 1_000)
            .unwrap()
    );
    assert!(
        table
            .fail(job.id, "w", "HTTP 503", Some(5_000), 1, 30)
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
            .fail(again.id, "w", "HTTP 404: unknown ticker", None, 1, 5_100)
            .unwrap()
    );
    let failed = table.get(job.id).unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.finished_at, Some(5_100));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("HTTP 404: unknown ticker")
    );
    assert!(table.claim("w", i64::MAX, 1_000).unwrap().is_none());
    assert_eq!(table.counts().unwrap().failed, 1);
}

#[test]
fn release_and_reclaim_orphans_make_running_jobs_pending_again() {
    let (_dir, _path, mut table) = temp_table();
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
}

#[test]
fn requeue_failed_resets_attempts_and_keeps_the_error() {
    let (_dir, _path, mut table) = temp_table();
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
        assert!(table.fail(job.id, "w", "bad", None, 0, 20).unwrap());
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

#[test]
fn the_claim_searches_the_partial_index() {
    let (_dir, _path, mut table) = temp_table();
    let jobs: Vec<NewJob> = (0..200)
        .map(|i| rest(&format!("T{i}"), "1m", &[], jan()))
        .collect();
    table.insert(&jobs, 0).unwrap();
    let mut stmt = table
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {CLAIM_SQL}"))
        .unwrap();
    let details: Vec<String> = stmt
        .query_map(rusqlite::params!["w", 0, 1], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        details
            .iter()
            .any(|d| d.contains("SEARCH jobs USING INDEX jobs_ready (available_at<?)")),
        "{details:#?}"
    );
    assert!(
        !details.iter().any(|d| d.starts_with("SCAN")),
        "{details:#?}"
    );
    assert!(
        !details.iter().any(|d| d.contains("TEMP B-TREE")),
        "{details:#?}"
    );
}

#[test]
fn a_corrupt_claimed_row_is_parked_as_failed() {
    let (_dir, _path, mut table) = temp_table();
    table.insert(&[rest("AAPL", "1m", &[], jan())], 10).unwrap();
    table
        .conn
        .execute(
            "INSERT INTO jobs (kind, ticker, timeframe, adjusted, start_date, end_date,
                 available_at, created_at, updated_at)
             VALUES ('rest', 'BAD', '7 fortnights', 0, '2024-01-01', '2024-01-31', 0, 0, 0)",
            [],
        )
        .unwrap();
    let err = table.claim("w", 20, 100).unwrap_err();
    assert!(matches!(err, JobError::Corrupt { id: 2, .. }), "{err:?}");
    let state: String = table
        .conn
        .query_row("SELECT state FROM jobs WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "failed");
    assert_eq!(
        table.claim("w", 20, 100).unwrap().unwrap().id,
        1,
        "the queue moves on"
    );
}

#[test]
fn busy_is_recognisable() {
    let (_dir, path, mut table) = temp_table();
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let mut other = Connection::open(&path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    table.conn.busy_timeout(Duration::from_millis(20)).unwrap();
    let err = table.claim("w", 1, 100).unwrap_err();
    assert!(err.is_busy(), "{err:?}");
    drop(tx);
    assert!(table.claim("w", 1, 100).unwrap().is_some());
}
