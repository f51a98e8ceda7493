//! The PostgreSQL backend's tests: the conformance suite, one `#[test]` per
//! behaviour, each in a schema of its own on the server named by
//! `FINPIPE_TEST_POSTGRES` (see `testdb`); then what only PostgreSQL has:
//! the advisory run lock, TLS, how connection and login failures are
//! classed, and that the password never shows.

use std::path::Path;

use super::testdb::{TempSchema, admin, base_url, with_param};
use super::{PgJobs, advisory, schema};
use crate::jobs::conformance::{self, SchemaFixture};
use crate::jobs::tests::{jan, rest};
use crate::jobs::{DbLocation, ErrorClass, JobTable, PgUrl, Result};

/// A schema of its own and the way to open the job table in it.
struct PgDb {
    schema: TempSchema,
}

impl PgDb {
    /// `None` when there is no PostgreSQL to test against (outside CI).
    fn new() -> Option<Self> {
        Some(Self {
            schema: TempSchema::new(&base_url()?),
        })
    }

    fn url(&self) -> PgUrl {
        PgUrl::parse(&self.schema.url).unwrap()
    }

    fn open(&self) -> Result<JobTable> {
        JobTable::open_at(&DbLocation::Postgres(self.url()))
    }
}

impl SchemaFixture for PgDb {
    fn known_version(&self) -> i64 {
        schema::known_version()
    }

    fn write_oldest(&self) {
        admin(
            &self.schema.url,
            format!(
                "{}\n{}\nUPDATE finpipe_schema SET version = 1;
                 INSERT INTO jobs (kind, ticker, timeframe, adjusted, start_date, end_date,
                     available_at, created_at, updated_at)
                 VALUES ('rest', 'AAPL', '1m', 0, '2024-01-01', '2024-01-31', 0, 0, 0);
                 INSERT INTO coverage (ticker, timeframe, adjusted, start_date, end_date)
                 VALUES ('AAPL', '1m', 0, '2024-01-01', '2024-01-31');",
                schema::MIGRATIONS[0],
                schema::VERSION_TABLE
            ),
        );
    }

    fn stamp_version(&self, version: i64) {
        admin(
            &self.schema.url,
            format!("UPDATE finpipe_schema SET version = {version}"),
        );
    }
}

conformance::conformance_suite!(PgDb::new());

// ---- PostgreSQL only ----

#[test]
fn the_location_never_shows_the_password() {
    let Some(db) = PgDb::new() else { return };
    let table = db.open().unwrap();
    assert!(
        table.location().starts_with("postgres"),
        "{}",
        table.location()
    );
    assert!(!table.location().contains(":pw@"), "{}", table.location());
    assert!(format!("{table:?}").contains("****") || !db.schema.url.contains(":pw@"));
    assert_eq!(table.schema_version().unwrap(), schema::known_version());
    table.close().unwrap();
}

#[test]
fn the_run_lock_is_exclusive_across_connections_shared_locks_coexist_and_a_closed_connection_releases_it()
 {
    let Some(db) = PgDb::new() else { return };
    let url = db.url();
    let exclusive = advisory::acquire(&url, false, false)
        .unwrap()
        .expect("free");
    assert!(advisory::acquire(&url, false, false).unwrap().is_none());
    assert!(advisory::acquire(&url, true, false).unwrap().is_none());
    // Another schema (another job table) has a lock of its own.
    let Some(other) = PgDb::new() else { return };
    assert!(
        advisory::acquire(&other.url(), false, false)
            .unwrap()
            .is_some()
    );
    drop(exclusive); // its connection closes
    let first = advisory::acquire(&url, true, false)
        .unwrap()
        .expect("shared");
    let second = advisory::acquire(&url, true, false)
        .unwrap()
        .expect("shared too");
    assert!(advisory::acquire(&url, false, false).unwrap().is_none());
    drop(first);
    assert!(advisory::acquire(&url, false, false).unwrap().is_none());
    drop(second);
    let again = advisory::acquire(&url, false, false).unwrap();
    assert!(again.is_some());

    // A holder whose connection is cut (a runner that died) releases it.
    drop(again);
    let held = advisory::acquire(&url, false, false).unwrap().unwrap();
    admin(
        &db.schema.url,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND classid = {} AND objsubid = 2
               AND objid::BIGINT = (hashtext('{}')::BIGINT & 4294967295)",
            0x6670_726c_u32, db.schema.name
        ),
    );
    let mut taken = None;
    for _ in 0..50 {
        taken = advisory::acquire(&url, false, false).unwrap();
        if taken.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(taken.is_some(), "released with its connection");
    drop(held);
}

#[test]
fn waiting_for_the_run_lock_blocks_until_the_holder_goes() {
    let Some(db) = PgDb::new() else { return };
    let url = db.url();
    let held = advisory::acquire(&url, false, false).unwrap().unwrap();
    let started = std::time::Instant::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let waited = advisory::acquire(&url, true, true).unwrap();
    assert!(waited.is_some());
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    releaser.join().unwrap();
}

#[test]
fn a_refused_password_is_a_configuration_error_that_never_shows_it() {
    let Some(base) = base_url() else { return };
    let mut url = url::Url::parse(&base).unwrap();
    url.set_password(Some("not-the-password-123")).unwrap();
    let err = PgJobs::open(&PgUrl::parse(url.as_str()).unwrap()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Configuration, "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not-the-password-123"), "{shown}");
    assert!(shown.contains("****"), "{shown}");

    let mut missing = url::Url::parse(&base).unwrap();
    missing.set_path("/no_such_database_here");
    let err = PgJobs::open(&PgUrl::parse(missing.as_str()).unwrap()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Configuration, "{err:?}");
}

#[test]
fn an_unreachable_server_is_a_storage_error_naming_host_port_and_database() {
    // Port 1 on loopback: nothing listens there.
    let url = PgUrl::parse("postgres://finpipe:pw@127.0.0.1:1/finpipe_test").unwrap();
    let err = PgJobs::open(&url).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Storage, "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("127.0.0.1:1/finpipe_test"), "{shown}");
    assert!(!shown.contains(":pw@"), "{shown}");
    let err = JobTable::open_at(&DbLocation::parse(Path::new(url.redacted())).unwrap());
    assert!(err.is_err());
}

#[test]
fn sslmode_require_encrypts_with_rustls() {
    let Some(db) = PgDb::new() else { return };
    let url = PgUrl::parse(&with_param(&db.schema.url, "sslmode", "require")).unwrap();
    // Debian's PostgreSQL offers TLS with its own (self-signed) certificate.
    let jobs = PgJobs::open(&url).unwrap();
    jobs.execute_sql(
        "DO $$ BEGIN
             IF NOT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) THEN
                 RAISE EXCEPTION 'not encrypted';
             END IF;
         END $$",
    )
    .unwrap();
    let mut table = JobTable::from_backend(Box::new(jobs));
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    assert_eq!(table.counts().unwrap().pending, 1);
    table.close().unwrap();
}

#[test]
fn a_connection_the_server_closed_is_opened_again() {
    let Some(db) = PgDb::new() else { return };
    let jobs = PgJobs::open(&db.url()).unwrap();
    let pid = jobs.backend_pid().unwrap();
    let mut table = JobTable::from_backend(Box::new(jobs));
    table.insert(&[rest("AAPL", "1m", &[], jan())], 0).unwrap();
    // Terminated, and waited for (up to 5 s) until it is gone.
    admin(
        &db.schema.url,
        format!("SELECT pg_terminate_backend({pid}, 5000)"),
    );
    // The first call may see the cut: then it is busy (the engine retries
    // busy calls); the next one connects again.
    if let Err(error) = table.counts() {
        assert_eq!(error.class(), ErrorClass::Busy, "{error}");
    }
    assert_eq!(table.counts().unwrap().pending, 1);
}

#[test]
fn coverage_of_a_whole_market_day_fits_in_one_transaction() {
    // 40 000 series in one change: a lock per series ran out of the
    // server's lock table (about 12 000 here).
    let Some(db) = PgDb::new() else { return };
    let mut table = db.open().unwrap();
    let tickers: Vec<_> = (0..20_000)
        .map(|i| crate::jobs::tests::ticker(&format!("T{i:05}")))
        .collect();
    let frames = [
        crate::model::Timeframe::MINUTE,
        crate::model::Timeframe::DAY,
    ];
    table
        .add_coverage_all(&tickers, &frames, crate::model::Basis::Unadjusted, jan())
        .unwrap();
    assert_eq!(
        table
            .coverage(&tickers[19_999], frames[1], crate::model::Basis::Unadjusted)
            .unwrap(),
        [jan()]
    );
}
