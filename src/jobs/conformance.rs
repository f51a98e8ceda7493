//! The behaviours every job table backend must have, written once against
//! [`JobTable`] (so against [`JobBackend`](super::JobBackend)) the way
//! object_store's `integration.rs` checks every store. Each function takes
//! an [`Open`]: a factory that opens a new handle on one database that was
//! empty when the test began. A backend's tests run every function, one
//! `#[test]` each (see `sqlite/tests.rs`). `lifecycle` holds the checks of a
//! job's life, `history` those of fail reasons, runs and totals.

mod history;
mod lifecycle;

use chrono::NaiveDate;

use super::tests::{jan, range, rest, tf, ticker};
use super::*;
use crate::ranges::subtract;

pub(crate) use history::*;
pub(crate) use lifecycle::*;

/// Opens a new handle on the database under test (each call another
/// connection to the same database).
pub(crate) type Open<'a> = &'a (dyn Fn() -> Result<JobTable> + Sync);

/// What the migration check needs beyond the trait: ways to put the
/// database in states this build never writes itself.
pub(crate) trait SchemaFixture {
    /// The newest schema version this build knows.
    fn known_version(&self) -> i64;
    /// Writes the database as schema version 1 did, holding one pending REST
    /// job (AAPL, 1m, no derived, unadjusted, January 2024, available at 0)
    /// and that series' coverage of January.
    fn write_oldest(&self);
    /// Marks the database as written at schema `version`.
    fn stamp_version(&self, version: i64);
}

/// Every conformance function as one `#[test]` of the backend whose tests
/// invoke it: `conformance_suite!(fresh)`, where `fresh` makes a new, empty
/// database as an `Option` (`None`: the backend's server is not there, and
/// the test returns; the backend's gate fails it under `CI=true`) of a type
/// with an `open()` method and a [`SchemaFixture`]. One list for every
/// backend: a behaviour added here is checked on all of them.
macro_rules! conformance_suite {
    ($fresh:expr) => {
        $crate::jobs::conformance::conformance_suite!(@each $fresh;
            insert_is_idempotent_and_stores_every_field,
            a_done_job_planned_again_is_pending_again,
            claims_go_by_available_at_then_id_and_respect_not_before,
            a_lease_expires_and_the_job_is_reclaimed_with_attempts_counted,
            renewing_leases_keeps_only_the_renewing_owners_jobs,
            progress_is_recorded_and_guarded_by_owner,
            complete_with_writes_coverage_and_done_atomically_and_refuses_a_lost_job,
            fail_with_a_retry_comes_back_later_and_without_one_stays_failed,
            release_and_reclaim_orphans_make_running_jobs_pending_again,
            requeue_failed_resets_attempts_and_keeps_the_error,
            counts_list_and_clear_done,
            open_ranges_include_planned_and_derived_timeframes,
            fanout_jobs_gather_targets_and_count_as_planned_for_them,
            ingested_etags_are_remembered_and_replaced,
            cached_answers_are_stored_replaced_and_kept,
            coverage_merges_removes_and_lists_every_series,
            a_read_snapshot_sees_one_state_until_it_ends,
            a_closed_table_keeps_everything_it_was_told,
            two_handles_claiming_at_once_never_share_a_job,
            fail_reasons_are_stored_listed_kept_by_requeue_and_cleared_by_success,
            runs_are_started_finished_and_listed_newest_first,
            totals_sum_the_requests_and_rows_of_every_job,
        );

        #[test]
        fn migrations_upgrade_an_older_table_and_refuse_a_newer_one() {
            let Some(db) = $fresh else { return };
            $crate::jobs::conformance::migrations_upgrade_an_older_table_and_refuse_a_newer_one(
                &|| db.open(),
                &db,
            );
        }
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(db) = $fresh else { return };
                $crate::jobs::conformance::$name(&|| db.open());
            }
        )*
    };
}
pub(crate) use conformance_suite;

fn handle(open: Open<'_>) -> JobTable {
    open().expect("open a handle on the table under test")
}

fn m1() -> Timeframe {
    Timeframe::MINUTE
}

pub(crate) fn insert_is_idempotent_and_stores_every_field(open: Open<'_>) {
    let mut table = handle(open);
    let jobs = [
        rest("AAPL", "1m", &["1h", "5m", "15m", "5m"], jan()),
        rest("MSFT", "1m", &[], jan()),
        rest("X:BTCUSD", "1d", &[], range("2020-01-01", "2024-12-31")),
    ];
    assert_eq!(table.insert(&jobs, 1_000).unwrap(), 3);
    assert_eq!(table.insert(&jobs, 2_000).unwrap(), 0);
    let mut more = jobs.to_vec();
    let mut adjusted = rest("AAPL", "1m", &[], jan());
    adjusted.basis = Basis::Adjusted; // another basis is another job
    more.push(adjusted);
    more.push(rest("AAPL", "1m", &[], range("2024-01-01", "2024-01-30")));
    assert_eq!(table.insert(&more, 3_000).unwrap(), 2);
    assert_eq!(table.counts().unwrap().pending, 5);
    assert_eq!(table.insert(&[], 4_000).unwrap(), 0);

    let first = table
        .list(None, 10)
        .unwrap()
        .into_iter()
        .find(|j| j.ticker == ticker("AAPL") && j.basis == Basis::Unadjusted && j.range == jan())
        .unwrap();
    let job = table.get(first.id).unwrap().unwrap();
    assert_eq!(job, first);
    assert_eq!(job.kind, JobKind::Rest);
    assert_eq!(job.timeframe, Timeframe::MINUTE);
    assert_eq!(
        job.derived,
        [tf("5m"), tf("15m"), tf("1h")],
        "sorted, deduplicated"
    );
    assert_eq!(job.state, JobState::Pending);
    assert_eq!((job.attempts, job.rows, job.requests), (0, 0, 0));
    assert_eq!(
        (job.available_at, job.created_at, job.updated_at),
        (1_000, 1_000, 1_000)
    );
    assert_eq!(
        (job.owner, job.progress_ts, job.finished_at, job.last_error),
        (None, None, None, None)
    );
    assert!(table.get(first.id + 1_000).unwrap().is_none());
}

pub(crate) fn a_done_job_planned_again_is_pending_again(open: Open<'_>) {
    let mut table = handle(open);
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let job = table.claim("w", 10, 1_000).unwrap().unwrap();
    assert!(
        table
            .record_progress(job.id, "w", 5, 1, 1, 20, 1_000)
            .unwrap()
    );
    assert!(table.complete(job.id, "w", 0, 30).unwrap());
    assert_eq!(
        table
            .insert(&[rest("AAPL", "1m", &["5m"], jan())], 40)
            .unwrap(),
        1
    );
    let again = table.get(job.id).unwrap().unwrap();
    assert_eq!(again.state, JobState::Pending);
    assert_eq!((again.attempts, again.available_at), (0, 40));
    assert_eq!(
        (again.owner, again.progress_ts, again.finished_at),
        (None, None, None)
    );
    assert_eq!(again.derived, [tf("5m")]);
    // Pending (and running, and failed) jobs are left alone.
    assert_eq!(
        table.insert(&[rest("AAPL", "1m", &[], jan())], 50).unwrap(),
        0
    );
    assert_eq!(table.get(job.id).unwrap().unwrap().available_at, 40);
}

pub(crate) fn counts_list_and_clear_done(open: Open<'_>) {
    let mut table = handle(open);
    assert_eq!(table.counts().unwrap(), StateCounts::default());
    let jobs: Vec<NewJob> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|t| rest(t, "1m", &[], jan()))
        .collect();
    table.insert(&jobs, 0).unwrap();
    assert_eq!(
        table.counts().unwrap(),
        StateCounts {
            pending: 5,
            ..StateCounts::default()
        }
    );
    let a = table.claim("w", 1, 100).unwrap().unwrap();
    let b = table.claim("w", 2, 100).unwrap().unwrap();
    let c = table.claim("w", 3, 100).unwrap().unwrap();
    let dj = table.claim("w", 4, 100).unwrap().unwrap();
    assert!(table.complete(a.id, "w", 0, 10).unwrap());
    assert!(
        table
            .fail(b.id, "w", "first failure", FailReason::Other, None, 0, 11)
            .unwrap()
    );
    assert!(
        table
            .fail(c.id, "w", "second failure", FailReason::Other, None, 0, 12)
            .unwrap()
    );
    let counts = table.counts().unwrap();
    assert_eq!(
        counts,
        StateCounts {
            pending: 1,
            running: 1,
            done: 1,
            failed: 2
        }
    );
    assert_eq!(counts.total(), 5);
    assert_eq!(table.pending_or_running().unwrap(), 2);

    let failed = table.list(Some(JobState::Failed), 10).unwrap();
    let errors: Vec<_> = failed
        .iter()
        .map(|j| j.last_error.as_deref().unwrap())
        .collect();
    assert_eq!(errors, ["second failure", "first failure"], "newest first");
    assert_eq!(table.list(Some(JobState::Failed), 1).unwrap().len(), 1);
    assert_eq!(table.list(None, 100).unwrap().len(), 5);
    assert_eq!(
        table.list(Some(JobState::Running), 10).unwrap()[0].id,
        dj.id
    );
    assert!(table.list(None, 0).unwrap().is_empty());

    assert_eq!(table.clear_done().unwrap(), 1);
    assert_eq!(table.clear_done().unwrap(), 0);
    assert_eq!(
        table.counts().unwrap(),
        StateCounts {
            pending: 1,
            running: 1,
            done: 0,
            failed: 2
        }
    );
    assert!(table.get(a.id).unwrap().is_none());
}

pub(crate) fn open_ranges_include_planned_and_derived_timeframes(open: Open<'_>) {
    let mut table = handle(open);
    let feb = range("2024-02-01", "2024-02-29");
    let mar = range("2024-03-01", "2024-03-31");
    table
        .insert(
            &[
                rest("AAPL", "1m", &["5m", "15m"], jan()),
                rest("AAPL", "1m", &[], feb),
                rest("AAPL", "1m", &["1h"], mar),
                rest("MSFT", "1m", &["5m"], feb),
            ],
            0,
        )
        .unwrap();
    let aapl = ticker("AAPL");
    let open_of = |table: &JobTable, t: &Ticker, timeframe: &str, basis| {
        table.open_ranges(t, tf(timeframe), basis).unwrap()
    };
    // Fail February for good; March stays running.
    let mut march = None;
    for _ in 0..3 {
        let job = table.claim("w", 1, 100).unwrap().unwrap();
        match job.range {
            r if r == feb => assert!(
                table
                    .fail(job.id, "w", "x", FailReason::Other, None, 0, 2)
                    .unwrap()
            ),
            r if r == mar => march = Some(job.id),
            _ => {}
        }
    }
    assert_eq!(
        open_of(&table, &aapl, "1m", Basis::Unadjusted),
        [jan(), mar]
    );
    assert_eq!(open_of(&table, &aapl, "5m", Basis::Unadjusted), [jan()]);
    assert_eq!(open_of(&table, &aapl, "1h", Basis::Unadjusted), [mar]);
    // Done, March counts through the coverage it records, not as a job.
    assert!(table.complete(march.unwrap(), "w", 0, 2).unwrap());
    assert!(open_of(&table, &aapl, "1h", Basis::Unadjusted).is_empty());
    assert!(open_of(&table, &aapl, "1d", Basis::Unadjusted).is_empty());
    assert!(open_of(&table, &aapl, "1m", Basis::Adjusted).is_empty());
    // `15m` is in the list, `5m` is not a substring match of it, `1mo` not of `1m`.
    let msft = ticker("MSFT");
    assert!(open_of(&table, &msft, "15m", Basis::Unadjusted).is_empty());
    assert!(open_of(&table, &msft, "1mo", Basis::Unadjusted).is_empty());
    assert_eq!(open_of(&table, &msft, "5m", Basis::Unadjusted), [feb]);

    // Planning twice adds nothing: the wanted range minus open jobs is empty.
    let have = open_of(&table, &aapl, "5m", Basis::Unadjusted);
    assert!(subtract(jan(), &have).is_empty());
    assert_eq!(subtract(range("2024-01-01", "2024-02-29"), &have), [feb]);
}

fn flat_job() -> NewJob {
    NewJob {
        kind: JobKind::Flat,
        ticker: ticker("us_stocks_sip"),
        timeframe: Timeframe::MINUTE,
        derived: vec![],
        basis: Basis::Unadjusted,
        range: jan(),
    }
}

pub(crate) fn fanout_jobs_gather_targets_and_count_as_planned_for_them(open: Open<'_>) {
    let mut table = handle(open);
    let job = flat_job();
    assert!(
        table
            .insert_fanout(&job, &[ticker("AAPL"), ticker("MSFT")], 0)
            .unwrap()
    );
    assert!(
        !table.insert_fanout(&job, &[ticker("AAPL")], 0).unwrap(),
        "idempotent"
    );
    assert!(table.insert_fanout(&job, &[ticker("NVDA")], 0).unwrap());
    let claimed = table.claim("w", 1, 1_000).unwrap().unwrap();
    assert_eq!(claimed.kind, JobKind::Flat);
    assert_eq!(
        table.targets(claimed.id).unwrap(),
        [ticker("AAPL"), ticker("MSFT"), ticker("NVDA")]
    );
    // Running, it still gains targets.
    assert!(table.insert_fanout(&job, &[ticker("AMD")], 1).unwrap());
    assert_eq!(table.targets(claimed.id).unwrap().len(), 4);
    let open = table
        .open_ranges(&ticker("MSFT"), Timeframe::MINUTE, Basis::Unadjusted)
        .unwrap();
    assert_eq!(open, vec![jan()]);
    assert!(
        table
            .open_ranges(&ticker("TSLA"), Timeframe::MINUTE, Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );
    // Done, then planned for a new ticker: pending again, for it alone.
    assert!(table.complete(claimed.id, "w", 0, 2).unwrap());
    assert!(table.insert_fanout(&job, &[ticker("TSLA")], 3).unwrap());
    let again = table.claim("w", 4, 1_000).unwrap().unwrap();
    assert_eq!(again.id, claimed.id);
    assert_eq!(again.attempts, 1, "planned again from scratch");
    assert_eq!(table.targets(again.id).unwrap(), [ticker("TSLA")]);
    assert!(table.targets(again.id + 1_000).unwrap().is_empty());
    // Failed, likewise.
    assert!(
        table
            .fail(again.id, "w", "x", FailReason::Other, None, 0, 5)
            .unwrap()
    );
    assert!(table.insert_fanout(&job, &[ticker("IBM")], 6).unwrap());
    assert_eq!(table.targets(again.id).unwrap(), [ticker("IBM")]);
    assert_eq!(table.counts().unwrap().pending, 1);
}

pub(crate) fn ingested_etags_are_remembered_and_replaced(open: Open<'_>) {
    let mut table = handle(open);
    let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
    let minute = ("us_stocks_sip", "minute_aggs_v1");
    for (d, etag) in [(2, "a"), (3, "b"), (2, "c"), (31, "e")] {
        table
            .record_ingested(minute.0, minute.1, day(d), etag)
            .unwrap();
    }
    table
        .record_ingested("us_stocks_sip", "day_aggs_v1", day(2), "d")
        .unwrap();
    let found = table.ingested(minute.0, minute.1, day(1), day(30)).unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [(day(2), "c".to_owned()), (day(3), "b".to_owned())]
    );
    assert!(
        table
            .ingested("other", minute.1, day(1), day(31))
            .unwrap()
            .is_empty()
    );
}

pub(crate) fn cached_answers_are_stored_replaced_and_kept(open: Open<'_>) {
    let mut table = handle(open);
    assert_eq!(table.cached("conditions").unwrap(), None);
    table.store_cached("conditions", "{\"a\":1}", 10).unwrap();
    table.store_cached("other", "x", 11).unwrap();
    assert_eq!(
        table.cached("conditions").unwrap(),
        Some(("{\"a\":1}".to_owned(), 10))
    );
    // Replaced, not added to; other names untouched.
    table.store_cached("conditions", "{\"b\":2}", 20).unwrap();
    assert_eq!(
        table.cached("conditions").unwrap(),
        Some(("{\"b\":2}".to_owned(), 20))
    );
    assert_eq!(table.cached("other").unwrap(), Some(("x".to_owned(), 11)));
    // Kept across handles (another process's open).
    drop(table);
    let table = handle(open);
    assert_eq!(
        table.cached("conditions").unwrap(),
        Some(("{\"b\":2}".to_owned(), 20))
    );
}

pub(crate) fn coverage_merges_removes_and_lists_every_series(open: Open<'_>) {
    let mut table = handle(open);
    let aapl = ticker("AAPL");
    let unadjusted = Basis::Unadjusted;
    for (timeframe, basis, start, end) in [
        (m1(), unadjusted, "2024-01-11", "2024-01-20"),
        (m1(), unadjusted, "2024-01-01", "2024-01-10"),
        (m1(), unadjusted, "2024-03-01", "2024-03-31"),
        (m1(), unadjusted, "2024-03-05", "2024-03-06"),
        (m1(), Basis::Adjusted, "2023-01-01", "2023-01-01"),
        (Timeframe::DAY, unadjusted, "2000-01-01", "2024-12-31"),
    ] {
        table
            .add_coverage(&aapl, timeframe, basis, range(start, end))
            .unwrap();
    }
    table
        .add_coverage_all(
            &[ticker("AAA"), ticker("AAB")],
            &[m1(), tf("5m")],
            Basis::Unadjusted,
            jan(),
        )
        .unwrap();

    let have = table.coverage(&aapl, m1(), Basis::Unadjusted).unwrap();
    assert_eq!(
        have,
        [
            range("2024-01-01", "2024-01-20"),
            range("2024-03-01", "2024-03-31")
        ],
        "adjacent and overlapping ranges merged"
    );
    assert_eq!(
        table.coverage(&aapl, m1(), Basis::Adjusted).unwrap(),
        [DateRange::day(NaiveDate::from_ymd_opt(2023, 1, 1).unwrap())]
    );
    assert!(
        table
            .coverage(&ticker("MSFT"), m1(), Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );

    // Removing splits a range and forgets what it covers exactly.
    table
        .remove_coverage(
            &aapl,
            m1(),
            Basis::Unadjusted,
            range("2024-01-05", "2024-01-06"),
        )
        .unwrap();
    table
        .remove_coverage(
            &aapl,
            m1(),
            Basis::Unadjusted,
            range("2024-02-01", "2024-03-31"),
        )
        .unwrap();
    table
        .remove_coverage(&ticker("NONE"), m1(), Basis::Unadjusted, jan())
        .unwrap();
    assert_eq!(
        table.coverage(&aapl, m1(), Basis::Unadjusted).unwrap(),
        [
            range("2024-01-01", "2024-01-04"),
            range("2024-01-07", "2024-01-20")
        ]
    );

    // Every stored row, merged, in order: ticker, timeframe as text, basis
    // (unadjusted first), start.
    let shown: Vec<String> = table
        .all_coverage()
        .unwrap()
        .iter()
        .map(|(t, f, b, r)| format!("{t} {f} {} {r}", b.name()))
        .collect();
    assert_eq!(
        shown,
        [
            "AAA 1m unadjusted 2024-01-01..2024-01-31",
            "AAA 5m unadjusted 2024-01-01..2024-01-31",
            "AAB 1m unadjusted 2024-01-01..2024-01-31",
            "AAB 5m unadjusted 2024-01-01..2024-01-31",
            "AAPL 1d unadjusted 2000-01-01..2024-12-31",
            "AAPL 1m unadjusted 2024-01-01..2024-01-04",
            "AAPL 1m unadjusted 2024-01-07..2024-01-20",
            "AAPL 1m adjusted 2023-01-01..2023-01-01",
        ]
    );
}

pub(crate) fn a_read_snapshot_sees_one_state_until_it_ends(open: Open<'_>) {
    let reader = handle(open);
    let mut writer = handle(open);
    let snapshot = reader.read_snapshot().unwrap();
    assert_eq!(reader.counts().unwrap().total(), 0);
    writer.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    writer
        .add_coverage(&ticker("AAPL"), m1(), Basis::Unadjusted, jan())
        .unwrap();
    assert_eq!(reader.counts().unwrap().total(), 0, "one snapshot");
    assert!(reader.all_coverage().unwrap().is_empty());
    snapshot.end().unwrap();
    assert_eq!(reader.counts().unwrap().total(), 1);
    assert_eq!(reader.all_coverage().unwrap().len(), 1);

    // A snapshot dropped without `end` ends too: writes go on afterwards.
    let mut reader = reader;
    {
        let _snapshot = reader.read_snapshot().unwrap();
        assert_eq!(reader.counts().unwrap().pending, 1);
    }
    reader.insert(&[rest("MSFT", "1m", &[], jan())], 0).unwrap();
    assert_eq!(writer.counts().unwrap().pending, 2);
}

pub(crate) fn a_closed_table_keeps_everything_it_was_told(open: Open<'_>) {
    let mut table = handle(open);
    table
        .insert(
            &[
                rest("AAPL", "1m", &[], jan()),
                rest("MSFT", "1d", &[], jan()),
            ],
            0,
        )
        .unwrap();
    let job = table.claim("w", 1, 1_000).unwrap().unwrap();
    assert!(table.complete(job.id, "w", 3, 2).unwrap());
    table
        .add_coverage(&ticker("AAPL"), m1(), Basis::Unadjusted, jan())
        .unwrap();
    let jobs = table.list(None, 10).unwrap();
    let coverage = table.all_coverage().unwrap();
    table.close().unwrap();

    let again = handle(open);
    assert_eq!(again.list(None, 10).unwrap(), jobs);
    assert_eq!(again.all_coverage().unwrap(), coverage);
    again.close().unwrap();
}

pub(crate) fn migrations_upgrade_an_older_table_and_refuse_a_newer_one(
    open: Open<'_>,
    fixture: &dyn SchemaFixture,
) {
    let known = fixture.known_version();
    fixture.write_oldest();
    let mut table = handle(open);
    assert_eq!(table.schema_version().unwrap(), known);
    let job = table.list(None, 10).unwrap().remove(0);
    assert_eq!(
        (&job.ticker, job.timeframe, job.range, job.state),
        (&ticker("AAPL"), m1(), jan(), JobState::Pending)
    );
    assert_eq!(
        table
            .coverage(&ticker("AAPL"), m1(), Basis::Unadjusted)
            .unwrap(),
        [jan()]
    );
    // What later versions added works.
    assert!(
        table
            .insert_fanout(&flat_job(), &[ticker("AAPL")], 0)
            .unwrap()
    );
    assert_eq!(job.fail_reason, None);
    let run = table.run_started("run", "w", None, 1).unwrap();
    assert_eq!(table.runs(10).unwrap()[0].id, run);
    table.close().unwrap();
    // Opening again applies nothing twice.
    let table = handle(open);
    assert_eq!(table.schema_version().unwrap(), known);
    assert_eq!(table.counts().unwrap().pending, 2);
    table.close().unwrap();

    fixture.stamp_version(known + 1);
    let err = open().unwrap_err();
    assert!(
        matches!(err, JobError::NewerSchema { found, known: k, .. } if found == known + 1 && k == known),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::NewerSchema);
    assert!(err.to_string().contains("upgrade finpipe"), "{err}");
    assert!(!err.is_busy());
}
