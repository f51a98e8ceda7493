//! Tests of the job table on real SQLite files: schema and migrations,
//! planning (insert, open ranges), listing and coverage. Also the helpers
//! that `tests_lifecycle` shares.

use std::path::PathBuf;

use chrono::NaiveDate;
use rusqlite::Connection;
use tempfile::TempDir;

use super::*;
use crate::ranges::subtract;

pub(super) fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub(super) fn range(start: &str, end: &str) -> DateRange {
    DateRange::new(d(start), d(end)).unwrap()
}

pub(super) fn ticker(s: &str) -> Ticker {
    Ticker::new(s).unwrap()
}

pub(super) fn tf(s: &str) -> Timeframe {
    s.parse().unwrap()
}

pub(super) fn rest(symbol: &str, timeframe: &str, derived: &[&str], r: DateRange) -> NewJob {
    NewJob {
        kind: JobKind::Rest,
        ticker: ticker(symbol),
        timeframe: tf(timeframe),
        derived: derived.iter().map(|t| tf(t)).collect(),
        basis: Basis::Unadjusted,
        range: r,
    }
}

pub(super) fn jan() -> DateRange {
    range("2024-01-01", "2024-01-31")
}

pub(super) fn temp_table() -> (TempDir, PathBuf, JobTable) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("dir").join("finpipe.db");
    let table = JobTable::open(&path).unwrap();
    (dir, path, table)
}

#[test]
fn open_creates_the_directory_sets_pragmas_and_migrates_idempotently() {
    let (_dir, path, mut table) = temp_table();
    assert!(path.exists());
    let conn = &table.conn;
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "NORMAL");
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let timeout: i64 = conn
        .pragma_query_value(None, "busy_timeout", |r| r.get(0))
        .unwrap();
    assert_eq!(timeout, 10_000);
    table.insert(&[rest("AAPL", "1m", &[], jan())], 1).unwrap();
    drop(table);

    // Opening again applies nothing twice and keeps the data.
    let again = JobTable::open(&path).unwrap();
    let version: i64 = again
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::known_version());
    assert_eq!(again.counts().unwrap().pending, 1);
    let third = JobTable::open(&path).unwrap();
    assert_eq!(third.counts().unwrap().total(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path, table) = temp_table();
    drop(table);
    let newer = schema::known_version() + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = JobTable::open(&path).unwrap_err();
    assert!(
        matches!(err, JobError::NewerSchema { found, known, .. } if found == newer && known == newer - 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade finpipe"), "{err}");
    assert!(!err.is_busy());
}

#[test]
fn insert_is_idempotent_and_stores_every_field() {
    let (_dir, _path, mut table) = temp_table();
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

    let job = table.get(1).unwrap().unwrap();
    assert_eq!(job.kind, JobKind::Rest);
    assert_eq!(job.ticker, ticker("AAPL"));
    assert_eq!(job.timeframe, Timeframe::MINUTE);
    assert_eq!(
        job.derived,
        [tf("5m"), tf("15m"), tf("1h")],
        "sorted, deduplicated"
    );
    assert_eq!(job.basis, Basis::Unadjusted);
    assert_eq!(job.range, jan());
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
    let derived: String = table
        .conn
        .query_row("SELECT derived FROM jobs WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(derived, "5m,15m,1h");
    assert!(table.get(99).unwrap().is_none());
}

#[test]
fn counts_list_and_clear_done() {
    let (_dir, _path, mut table) = temp_table();
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
    assert!(table.fail(b.id, "w", "first failure", None, 0, 11).unwrap());
    assert!(
        table
            .fail(c.id, "w", "second failure", None, 0, 12)
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
    let counts = table.counts().unwrap();
    assert_eq!(
        counts,
        StateCounts {
            pending: 1,
            running: 1,
            done: 0,
            failed: 2
        }
    );
    assert!(table.get(a.id).unwrap().is_none());
}

#[test]
fn open_ranges_include_planned_and_derived_timeframes() {
    let (_dir, _path, mut table) = temp_table();
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
    // Fail February for good; March stays running.
    let mut march = None;
    for _ in 0..3 {
        let job = table.claim("w", 1, 100).unwrap().unwrap();
        match job.range {
            r if r == feb => assert!(table.fail(job.id, "w", "x", None, 0, 2).unwrap()),
            r if r == mar => march = Some(job.id),
            _ => {}
        }
    }
    assert_eq!(
        table
            .open_ranges(&aapl, tf("1m"), Basis::Unadjusted)
            .unwrap(),
        [jan(), mar]
    );
    assert_eq!(
        table
            .open_ranges(&aapl, tf("5m"), Basis::Unadjusted)
            .unwrap(),
        [jan()]
    );
    assert_eq!(
        table
            .open_ranges(&aapl, tf("1h"), Basis::Unadjusted)
            .unwrap(),
        [mar]
    );
    // Done, March counts through the coverage it records, not as a job.
    assert!(table.complete(march.unwrap(), "w", 0, 2).unwrap());
    assert!(
        table
            .open_ranges(&aapl, tf("1h"), Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );
    assert!(
        table
            .open_ranges(&aapl, tf("1d"), Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );
    assert!(
        table
            .open_ranges(&aapl, tf("1m"), Basis::Adjusted)
            .unwrap()
            .is_empty()
    );
    // `15m` is in the list, `5m` is not a substring match of it, `1mo` not of `1m`.
    let msft = ticker("MSFT");
    assert!(
        table
            .open_ranges(&msft, tf("15m"), Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );
    assert!(
        table
            .open_ranges(&msft, tf("1mo"), Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        table
            .open_ranges(&msft, tf("5m"), Basis::Unadjusted)
            .unwrap(),
        [feb]
    );

    // Planning twice adds nothing: the wanted range minus open jobs is empty.
    let have = table
        .open_ranges(&aapl, tf("5m"), Basis::Unadjusted)
        .unwrap();
    assert!(subtract(jan(), &have).is_empty());
    assert_eq!(subtract(range("2024-01-01", "2024-02-29"), &have), [feb]);
}

#[test]
fn coverage_merges_per_series_and_subtracts() {
    let (_dir, path, mut table) = temp_table();
    let aapl = ticker("AAPL");
    let m1 = Timeframe::MINUTE;
    table
        .add_coverage(
            &aapl,
            m1,
            Basis::Unadjusted,
            range("2024-01-11", "2024-01-20"),
        )
        .unwrap();
    table
        .add_coverage(
            &aapl,
            m1,
            Basis::Unadjusted,
            range("2024-01-01", "2024-01-10"),
        )
        .unwrap();
    table
        .add_coverage(
            &aapl,
            m1,
            Basis::Unadjusted,
            range("2024-03-01", "2024-03-31"),
        )
        .unwrap();
    table
        .add_coverage(
            &aapl,
            m1,
            Basis::Unadjusted,
            range("2024-03-05", "2024-03-06"),
        )
        .unwrap();
    table
        .add_coverage(
            &aapl,
            m1,
            Basis::Adjusted,
            range("2023-01-01", "2023-01-01"),
        )
        .unwrap();
    table
        .add_coverage(
            &aapl,
            Timeframe::DAY,
            Basis::Unadjusted,
            range("2000-01-01", "2024-12-31"),
        )
        .unwrap();
    table
        .add_coverage(&ticker("AAA"), m1, Basis::Unadjusted, jan())
        .unwrap();

    let have = table.coverage(&aapl, m1, Basis::Unadjusted).unwrap();
    assert_eq!(
        have,
        [
            range("2024-01-01", "2024-01-20"),
            range("2024-03-01", "2024-03-31")
        ]
    );
    let rows: i64 = table
        .conn
        .query_row(
            "SELECT COUNT(*) FROM coverage WHERE ticker = 'AAPL' AND timeframe = '1m' AND adjusted = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2, "stored merged");
    assert_eq!(
        subtract(range("2024-01-01", "2024-03-31"), &have),
        [range("2024-01-21", "2024-02-29")]
    );
    assert_eq!(
        table.coverage(&aapl, m1, Basis::Adjusted).unwrap(),
        [DateRange::day(d("2023-01-01"))]
    );
    assert!(
        table
            .coverage(&ticker("MSFT"), m1, Basis::Unadjusted)
            .unwrap()
            .is_empty()
    );

    // Survives reopening; all_coverage lists every series in order.
    drop(table);
    let table = JobTable::open(&path).unwrap();
    let all = table.all_coverage().unwrap();
    let shown: Vec<String> = all
        .iter()
        .map(|(t, f, b, r)| format!("{t} {f} {} {r}", b.name()))
        .collect();
    assert_eq!(
        shown,
        [
            "AAA 1m unadjusted 2024-01-01..2024-01-31",
            "AAPL 1d unadjusted 2000-01-01..2024-12-31",
            "AAPL 1m unadjusted 2024-01-01..2024-01-20",
            "AAPL 1m unadjusted 2024-03-01..2024-03-31",
            "AAPL 1m adjusted 2023-01-01..2023-01-01",
        ]
    );
}

#[test]
fn kinds_and_states_round_trip_through_text() {
    for kind in JobKind::ALL {
        assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for state in JobState::ALL {
        assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
    }
    let err = "finished".parse::<JobState>().unwrap_err().to_string();
    assert!(err.contains("pending, running, done, failed"), "{err}");
    assert!("flatfiles".parse::<JobKind>().is_err());
}

#[test]
fn in_memory_tables_work_for_tests() {
    let mut table = JobTable::open_in_memory().unwrap();
    assert_eq!(table.path(), Path::new(":memory:"));
    table.insert(&[rest("AAPL", "1d", &[], jan())], 0).unwrap();
    assert_eq!(
        table.claim("w", 0, 10).unwrap().unwrap().timeframe,
        Timeframe::DAY
    );
}
