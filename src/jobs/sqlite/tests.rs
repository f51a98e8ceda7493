//! The SQLite backend's tests: the conformance suite, one `#[test]` per
//! behaviour, on a real temporary file; then what only SQLite has (pragmas,
//! the claim's query plan, busy and corrupt files, WAL and clean closes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tempfile::TempDir;

use super::lifecycle::CLAIM_SQL;
use super::schema;
use super::*;
use crate::jobs::conformance::{self, SchemaFixture};
use crate::jobs::tests::{jan, rest, ticker};
use crate::jobs::{CoverageGrant, ErrorClass, JobKind, JobTable};

/// A database file in a fresh temporary directory (a nested one, so `open`
/// must create it).
struct TempDb {
    _dir: TempDir,
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("dir").join("finpipe.db");
        Self { _dir: dir, path }
    }

    fn open(&self) -> Result<JobTable> {
        JobTable::open(&self.path)
    }
}

impl SchemaFixture for TempDb {
    fn known_version(&self) -> i64 {
        schema::known_version()
    }

    fn write_oldest(&self) {
        std::fs::create_dir_all(self.path.parent().unwrap()).unwrap();
        let conn = Connection::open(&self.path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (kind, ticker, timeframe, adjusted, start_date, end_date,
                 available_at, created_at, updated_at)
             VALUES ('rest', 'AAPL', '1m', 0, '2024-01-01', '2024-01-31', 0, 0, 0);
             INSERT INTO coverage (ticker, timeframe, adjusted, start_date, end_date)
             VALUES ('AAPL', '1m', 0, '2024-01-01', '2024-01-31');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }

    fn stamp_version(&self, version: i64) {
        Connection::open(&self.path)
            .unwrap()
            .pragma_update(None, "user_version", version)
            .unwrap();
    }
}

conformance::conformance_suite!(Some(TempDb::new()));

// ---- SQLite only ----

#[test]
fn a_table_of_schema_version_2_gains_fail_reasons_and_runs() {
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&db.path).unwrap();
        for migration in &schema::MIGRATIONS[..2] {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO jobs (kind, ticker, timeframe, adjusted, start_date, end_date, state,
                 attempts, last_error, available_at, rows, requests, created_at, updated_at,
                 finished_at)
             VALUES ('rest', 'AAPL', '1m', 0, '2024-01-01', '2024-01-31', 'failed', 3,
                 'HTTP 404', 0, 10, 4, 0, 5, 5),
                ('rest', 'MSFT', '1m', 0, '2024-01-01', '2024-01-31', 'pending', 0,
                 NULL, 0, 0, 0, 0, 0, NULL);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let mut table = db.open().unwrap();
    assert_eq!(table.schema_version().unwrap(), 5);
    assert_eq!(schema::known_version(), 5);
    let failed = table.list(Some(JobState::Failed), 10).unwrap().remove(0);
    assert_eq!(
        (failed.last_error.as_deref(), failed.fail_reason),
        (Some("HTTP 404"), None),
        "failed before reasons were recorded"
    );
    assert_eq!(
        table.totals().unwrap(),
        crate::jobs::Totals {
            requests: 4,
            rows: 10
        }
    );
    assert!(table.runs(10).unwrap().is_empty());
    let run = table.run_started("run", "w", Some("5/min"), 10).unwrap();
    let job = table.claim("w", 10, 100).unwrap().unwrap();
    assert!(
        table
            .fail(
                job.id,
                "w",
                "HTTP 403",
                FailReason::NotEntitled,
                None,
                1,
                11
            )
            .unwrap()
    );
    let end = crate::jobs::RunEnd {
        jobs_failed: 1,
        requests: 1,
        exit_code: 1,
        rate_limited: 3,
        ..Default::default()
    };
    table.run_finished(run, &end, 12).unwrap();
    table.close().unwrap();

    let table = db.open().unwrap();
    assert_eq!(
        table.get(job.id).unwrap().unwrap().fail_reason,
        Some(FailReason::NotEntitled)
    );
    assert_eq!(table.runs(10).unwrap()[0].exit_code, Some(1));
    assert_eq!(table.runs(10).unwrap()[0].rate_limited, 3);
    assert_eq!(table.rate_limited_total().unwrap(), 3);
}

#[test]
fn a_table_of_schema_version_3_gains_the_answers_of_429_of_each_run() {
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&db.path).unwrap();
        for migration in &schema::MIGRATIONS[..3] {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO runs (command, owner, started_at, ended_at, jobs_done, requests,
                 exit_code, rate_limit)
             VALUES ('backfill', 'host:1:1', 1, 2, 3, 4, 0, '5/min');
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let mut table = db.open().unwrap();
    assert_eq!(table.schema_version().unwrap(), schema::known_version());
    let old = table.runs(10).unwrap().remove(0);
    assert_eq!(
        (old.jobs_done, old.requests, old.rate_limited),
        (3, 4, 0),
        "a run recorded before kept what it had and got none"
    );
    assert_eq!(table.rate_limited_total().unwrap(), 0);
    let run = table.run_started("run", "w", None, 10).unwrap();
    let end = crate::jobs::RunEnd {
        rate_limited: 5,
        ..Default::default()
    };
    table.run_finished(run, &end, 11).unwrap();
    table.close().unwrap();

    let table = db.open().unwrap();
    assert_eq!(table.runs(10).unwrap()[0].rate_limited, 5);
    assert_eq!(table.rate_limited_total().unwrap(), 5);
}

#[test]
fn an_unknown_stored_reason_reads_as_other() {
    let db = TempDb::new();
    let mut jobs = SqliteJobs::open(&db.path).unwrap();
    jobs.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    jobs.connection()
        .execute("UPDATE jobs SET fail_reason = 'cosmic_ray'", [])
        .unwrap();
    assert_eq!(
        jobs.get(1).unwrap().unwrap().fail_reason,
        Some(FailReason::Other)
    );
}

fn wal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The WAL's size, 0 when there is none.
fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(wal_of(path)).map_or(0, |m| m.len())
}

#[test]
fn open_creates_the_directory_sets_pragmas_and_stores_derived_as_text() {
    let db = TempDb::new();
    let mut jobs = SqliteJobs::open(&db.path).unwrap();
    assert!(db.path.exists());
    assert_eq!(jobs.location(), db.path.display().to_string());
    let conn = jobs.connection();
    let pragma = |name: &str| -> String {
        conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "wal");
    assert_eq!(pragma("synchronous"), "1", "NORMAL");
    assert_eq!(pragma("foreign_keys"), "1");
    assert_eq!(pragma("busy_timeout"), "10000");
    assert_eq!(pragma("user_version"), schema::known_version().to_string());
    jobs.insert(&[rest("AAPL", "1m", &["1h", "5m", "15m"], jan())], 1)
        .unwrap();
    let derived: String = jobs
        .connection()
        .query_row("SELECT derived FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(derived, "5m,15m,1h");
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
    table.close().unwrap();
}

#[test]
fn the_claim_searches_the_partial_index() {
    let db = TempDb::new();
    let mut jobs = SqliteJobs::open(&db.path).unwrap();
    let planned: Vec<NewJob> = (0..200)
        .map(|i| rest(&format!("T{i}"), "1m", &[], jan()))
        .collect();
    jobs.insert(&planned, 0).unwrap();
    let conn = jobs.connection();
    let mut stmt = conn
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
    let db = TempDb::new();
    let mut jobs = SqliteJobs::open(&db.path).unwrap();
    jobs.insert(&[rest("AAPL", "1m", &[], jan())], 10).unwrap();
    jobs.connection()
        .execute(
            "INSERT INTO jobs (kind, ticker, timeframe, adjusted, start_date, end_date,
                 available_at, created_at, updated_at)
             VALUES ('rest', 'BAD', '7 fortnights', 0, '2024-01-01', '2024-01-31', 0, 0, 0)",
            [],
        )
        .unwrap();
    let err = jobs.claim("w", 20, 100).unwrap_err();
    assert!(matches!(err, JobError::Corrupt { id: 2, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Corrupt);
    assert_eq!(
        jobs.get(2).unwrap_err().class(),
        ErrorClass::Corrupt,
        "reading it again says so too"
    );
    let state: String = jobs
        .connection()
        .query_row("SELECT state FROM jobs WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "failed");
    assert_eq!(
        jobs.claim("w", 20, 100).unwrap().unwrap().id,
        1,
        "the queue moves on"
    );
}

#[test]
fn busy_is_classed_as_busy() {
    let db = TempDb::new();
    let mut jobs = SqliteJobs::open(&db.path).unwrap();
    jobs.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    let mut other = Connection::open(&db.path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    jobs.connection()
        .busy_timeout(Duration::from_millis(20))
        .unwrap();
    let err = jobs.claim("w", 1, 100).unwrap_err();
    assert!(err.is_busy(), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Busy);
    drop(tx);
    assert!(jobs.claim("w", 1, 100).unwrap().is_some());
}

#[test]
fn a_file_that_is_not_a_database_is_classed_corrupt() {
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    std::fs::write(&db.path, vec![0x5a; 8192]).unwrap();
    let err = db.open().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Corrupt, "{err:?}");
    assert!(!err.is_busy());
}

#[test]
fn a_directory_in_the_way_is_classed_storage() {
    let db = TempDb::new();
    std::fs::create_dir_all(&db.path).unwrap();
    let err = db.open().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Storage, "{err:?}");
}

#[test]
fn runners_opening_a_new_file_at_once_all_migrate_it_safely() {
    // Switching a new file to WAL answers SQLITE_BUSY without waiting when
    // another connection is doing the same; `open` must absorb that. Without
    // the retry in `schema::set_wal`, one of 20 rounds failed in each of 10
    // measured runs.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("fresh-{round}")).join("finpipe.db");
        let start = Arc::new(Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    JobTable::open(&path).unwrap().counts().unwrap()
                })
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().unwrap(), StateCounts::default());
        }
        let table = JobTable::open(&path).unwrap();
        assert_eq!(table.schema_version().unwrap(), schema::known_version());
    }
}

/// Fills a table with jobs in every state, fan-out targets, ingested ETags
/// and coverage of many series, and returns what it reads back.
fn fill(table: &mut JobTable) -> Vec<String> {
    let planned: Vec<NewJob> = (0..40)
        .map(|i| rest(&format!("T{i}"), "1m", &["5m"], jan()))
        .collect();
    table.insert(&planned, 0).unwrap();
    for i in 0..30 {
        let job = table.claim("w", 10 + i, 1_000).unwrap().unwrap();
        let closing = Closing {
            progress_ts: Some(1_000 + i),
            rows: 10,
            requests: 1,
            coverage: Some(CoverageGrant {
                tickers: vec![job.ticker.clone()],
                timeframes: vec![Timeframe::MINUTE],
                basis: Basis::Unadjusted,
                range: jan(),
            }),
        };
        match i % 3 {
            0 => assert!(
                table
                    .fail(job.id, "w", "boom", FailReason::Other, None, 1, 50)
                    .unwrap()
            ),
            _ => assert!(table.complete_with(job.id, "w", &closing, 50).unwrap()),
        }
    }
    let flat = NewJob {
        kind: JobKind::Flat,
        ..rest("us_stocks_sip", "1m", &[], jan())
    };
    let targets: Vec<Ticker> = (0..40).map(|i| ticker(&format!("T{i}"))).collect();
    table.insert_fanout(&flat, &targets, 60).unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
    table
        .record_ingested("us_stocks_sip", "minute_aggs_v1", day, "etag-1")
        .unwrap();
    table
        .add_coverage_all(&targets, &[Timeframe::DAY], Basis::Adjusted, jan())
        .unwrap();
    snapshot(table)
}

/// Everything a table holds, as text.
fn snapshot(table: &JobTable) -> Vec<String> {
    let mut out: Vec<String> = table
        .list(None, 1_000)
        .unwrap()
        .iter()
        .map(|j| format!("{j:?} targets={:?}", table.targets(j.id).unwrap()))
        .collect();
    out.extend(
        table
            .all_coverage()
            .unwrap()
            .iter()
            .map(|c| format!("{c:?}")),
    );
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
    out.push(format!(
        "{:?}",
        table
            .ingested("us_stocks_sip", "minute_aggs_v1", day, day)
            .unwrap()
    ));
    out
}

/// Copies the database file alone (no `-wal`, no `-shm`) to a new directory
/// and reads everything from the copy.
fn read_copy_of_db_file_alone(path: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    assert!(!wal_of(&copy).exists());
    let table = JobTable::open(&copy).unwrap();
    let seen = snapshot(&table);
    table.close().unwrap();
    seen
}

#[test]
fn close_folds_the_wal_into_the_file_so_the_file_alone_holds_everything() {
    let db = TempDb::new();
    let mut table = db.open().unwrap();
    let written = fill(&mut table);
    assert_eq!(written.len(), 40 + 1 + 20 + 40 + 1);
    assert!(
        wal_len(&db.path) > 0,
        "the writes are in the WAL until closed"
    );
    table.close().unwrap();
    assert_eq!(wal_len(&db.path), 0, "no WAL left behind, or an empty one");
    assert_eq!(read_copy_of_db_file_alone(&db.path), written);
}

#[test]
fn dropping_a_handle_closes_it_too() {
    let db = TempDb::new();
    let mut table = db.open().unwrap();
    let written = fill(&mut table);
    drop(table);
    assert_eq!(wal_len(&db.path), 0);
    assert_eq!(read_copy_of_db_file_alone(&db.path), written);
}

#[test]
fn close_beside_another_handle_leaves_the_checkpoint_to_the_last_one() {
    let db = TempDb::new();
    let mut table = db.open().unwrap();
    let other = db.open().unwrap();
    let snapshot_held = other.read_snapshot().unwrap();
    assert_eq!(other.counts().unwrap().total(), 0);
    let written = fill(&mut table);
    let started = Instant::now();
    table.close().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closing does not wait out the busy timeout"
    );
    snapshot_held.end().unwrap();
    assert_eq!(snapshot(&other), written, "committed before the close");
    other.close().unwrap();
    assert_eq!(wal_len(&db.path), 0);
    assert_eq!(read_copy_of_db_file_alone(&db.path), written);
}

#[test]
fn a_table_of_schema_version_4_gains_the_cache_of_answers() {
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&db.path).unwrap();
        for migration in &schema::MIGRATIONS[..4] {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 4;").unwrap();
    }
    let mut table = db.open().unwrap();
    assert_eq!(table.schema_version().unwrap(), 5);
    assert_eq!(table.cached("conditions:stocks:trade").unwrap(), None);
    table
        .store_cached("conditions:stocks:trade", "{}", 7)
        .unwrap();
    assert_eq!(
        table.cached("conditions:stocks:trade").unwrap(),
        Some(("{}".to_owned(), 7))
    );
}
