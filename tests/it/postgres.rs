//! The job table on PostgreSQL, end to end: a real `finpipe backfill`
//! against the simulator with `--db postgres://…` (a database of its own),
//! then `status`, `jobs`, `config`, `verify`, `reindex` and `plan` use it, a
//! second backfill sends no request and `update` runs on it; the run lock is PostgreSQL's advisory lock, so a second
//! runner exits 3 while another holds it. No output ever shows the password.
//!
//! The server comes from `FINPIPE_TEST_POSTGRES` (see `testdb`): without it
//! the tests say so and return, except under `CI=true`, where they fail.

#[path = "../../src/jobs/postgres/testdb.rs"]
pub mod testdb;

use finpipe::jobs::{DbLocation, JobState, JobTable};
use finpipe::lock::{LockMode, acquire};

use crate::common::{Run, Workspace, aggregate_requests, simulator};
use testdb::{TempDatabase, admin, base_url};

const DAYS: [&str; 6] = [
    "--timeframes",
    "1d",
    "--start",
    "2024-11-18",
    "--end",
    "2024-11-22",
];

/// The password of `url`, which no output may show.
fn password(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .expect("the tests' URL carries a password")
        .to_owned()
}

fn assert_no_password(run: &Run, password: &str) {
    let all = run.all_output();
    let shows = if password.len() >= 16 {
        all.contains(password)
    } else {
        all.contains(&format!(":{password}@")) || all.contains(&format!("={password}"))
    };
    assert!(!shows, "the password shows: {all}");
}

/// A login role with a long random password, dropped when dropped (after
/// the databases it owns: declare it first).
struct Role {
    base: String,
    name: String,
    password: String,
}

impl Role {
    fn new(base: &str) -> Self {
        let name = format!("finpipe_leak_{:016x}", fastrand::u64(..));
        let password = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        admin(
            base,
            format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
        );
        Self {
            base: base.to_owned(),
            name,
            password,
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        admin(&self.base, format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

/// The job table at `url`, opened in-process.
fn table(url: &str) -> JobTable {
    JobTable::open_at(&DbLocation::parse(std::path::Path::new(url)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_status_and_jobs_work_on_postgres_and_a_second_backfill_sends_nothing() {
    let Some(base) = base_url() else { return };
    // A role of its own with a long random password: no output may show it
    // in any form (the tests' own password is too short to search for).
    let role = Role::new(&base);
    let db = TempDatabase::new(&base);
    admin(
        &base,
        format!("ALTER DATABASE {} OWNER TO {}", db.name, role.name),
    );
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role.name).unwrap();
    url.set_password(Some(&role.password)).unwrap();
    let db_url = url.to_string();
    let secret = role.password.clone();
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("POLYGON_RATE_LIMIT", "100/s");

    let first = ws
        .run(&[&["--db", &db_url, "backfill", "AAPL", "MSFT"][..], &DAYS].concat())
        .await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_no_password(&first, &secret);
    assert!(
        first.stdout.contains("****"),
        "the plan names the table: {first:?}"
    );
    let sent = aggregate_requests(&sim).len();
    assert!(sent > 0);
    assert!(
        !ws.join("data/.finpipe/finpipe.db").exists(),
        "no SQLite table beside the library"
    );
    assert!(
        !ws.join("data/.finpipe/finpipe.db.lock").exists(),
        "no lock file"
    );
    let library = ws.library("data");
    assert_eq!(library.len(), 2, "{library:?}");

    // The rest of the commands find the table through FINPIPE_DB.
    let ws = ws.env("FINPIPE_DB", &db_url);
    let status = ws.run(&["status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("failed"), "{status:?}");
    assert_no_password(&status, &secret);
    let jobs = ws.run(&["jobs", "list"]).await;
    assert_eq!(jobs.code, 0, "{jobs:?}");
    assert!(
        jobs.stdout.contains("AAPL") && jobs.stdout.contains("MSFT"),
        "{jobs:?}"
    );
    assert_no_password(&jobs, &secret);
    let config = ws.run(&["config"]).await;
    assert_eq!(config.code, 0, "{config:?}");
    assert!(config.stdout.contains(":****@"), "{config:?}");
    assert_no_password(&config, &secret);
    let plan = [&["plan", "AAPL"][..], &DAYS].concat();
    for command in [&["verify"][..], &["reindex"], &plan] {
        let run = ws.run(command).await;
        assert_eq!(run.code, 0, "{command:?}: {run:?}");
        assert_no_password(&run, &secret);
    }

    let second = ws
        .run(&[&["backfill", "AAPL", "MSFT"][..], &DAYS].concat())
        .await;
    assert_eq!(second.code, 0, "{second:?}");
    assert_no_password(&second, &secret);
    assert_eq!(
        aggregate_requests(&sim).len(),
        sent,
        "covered: nothing asked again"
    );

    let update = ws.run(&["update"]).await;
    assert_eq!(update.code, 0, "{update:?}");
    assert_no_password(&update, &secret);

    let runs = tokio::task::spawn_blocking({
        let url = db_url.clone();
        move || {
            let table = table(&url);
            let done = table.list(Some(JobState::Done), 100).unwrap().len();
            (table.runs(10).unwrap(), done)
        }
    })
    .await
    .unwrap();
    assert!(runs.1 >= 2, "{runs:?}");
    let commands: Vec<&str> = runs.0.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["update", "backfill", "backfill"], "{commands:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runner_exits_3_while_another_holds_the_advisory_lock() {
    let Some(base) = base_url() else { return };
    let db = TempDatabase::new(&base);
    let secret = password(&db.url);
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("FINPIPE_DB", &db.url);
    let location = DbLocation::parse(std::path::Path::new(&db.url)).unwrap();
    // The first runner: the lock taken on a connection of its own.
    let held = acquire(&location, LockMode::Exclusive, false).unwrap();

    for extra in [&[][..], &["--shared"]] {
        let run = ws
            .run(&[&["run-once", "AAPL"][..], &DAYS, extra].concat())
            .await;
        assert_eq!(run.code, 3, "{run:?}");
        assert!(run.stderr.contains("--wait"), "{run:?}");
        assert!(run.stderr.contains("advisory lock"), "{run:?}");
        assert_no_password(&run, &secret);
    }
    assert!(
        aggregate_requests(&sim).is_empty(),
        "a locked-out runner sends nothing"
    );

    // A waiting runner goes once the holder's connection closes.
    let waiting = ws
        .command(None, &[&["run-once", "AAPL", "--wait"][..], &DAYS].concat())
        .output();
    let started = std::time::Instant::now();
    let releaser = async {
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        // Still waiting: nothing sent while the lock was held.
        assert!(aggregate_requests(&sim).is_empty(), "it waited");
        drop(held);
    };
    let (output, ()) = tokio::join!(waiting, releaser);
    let run = Run::from_output(output.unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1_500));
    assert!(!aggregate_requests(&sim).is_empty());
}
