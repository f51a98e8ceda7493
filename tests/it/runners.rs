//! Several runners on one PostgreSQL job table, as on several machines:
//! three `finpipe run --shared` processes (each its own owner) drain one
//! plan against a simulator that enforces a rate limit; every job runs once,
//! no window of the server's clock sees more than the plan's limit, and the
//! library equals, row for row, the one a single runner writes. A runner
//! SIGKILLed mid-job hands its jobs to the others once its lease ends. A
//! 429 seen by one runner pauses them all.
//!
//! The runners write one library on S3 (moto, `FINPIPE_TEST_S3`), each
//! with a scratch directory of its own, as machines have; the PostgreSQL
//! server comes from `FINPIPE_TEST_POSTGRES` (see `testdb`).

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::Duration;

use finpipe::simulator::{Fault, FaultKind, SimRateLimit, Simulator};

use crate::common::s3::{create_bucket, moto_endpoint};
use crate::common::{Workspace, aggregate_requests, max_in_window, simulator_with};
use crate::postgres::testdb::{TempDatabase, base_url};
use crate::store_s3::read_s3_library;

/// A library on S3: its root (a bucket of its own on moto) and the
/// workspace's environment to reach it (every command of the workspace
/// uses it: `FINPIPE_DATA_DIR`).
struct S3Library {
    endpoint: String,
    root: String,
}

impl S3Library {
    /// `None` when there is no S3 server to test against (outside CI).
    fn new() -> Option<Self> {
        let endpoint = moto_endpoint()?;
        let root = format!("s3://{}/library", create_bucket(&endpoint));
        Some(Self { endpoint, root })
    }

    fn on(&self, ws: Workspace) -> Workspace {
        ws.env("FINPIPE_DATA_DIR", &self.root)
            .env("FINPIPE_S3_ENDPOINT", &self.endpoint)
            .env("FINPIPE_S3_ACCESS_KEY_ID", "testing")
            .env("FINPIPE_S3_SECRET_ACCESS_KEY", "testing-secret-value")
    }

    fn read(&self, ws: &Workspace) -> BTreeMap<(String, String), Vec<finpipe::model::Bar>> {
        read_s3_library(&self.endpoint, &self.root, &ws.join("reader-scratch"))
    }
}

const RANGE: [&str; 6] = [
    "--timeframes",
    "1d",
    "--start",
    "2024-10-01",
    "--end",
    "2024-11-29",
];

/// `n` active common stocks of the simulator's market.
fn tickers(sim: &Simulator, n: usize) -> Vec<String> {
    sim.market()
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.active && t.type_code.as_deref() == Some("CS") && t.market == "stocks")
        .take(n)
        .map(|t| t.ticker.clone())
        .collect()
}

/// Plans one REST job per ticker into the table at `db`.
async fn plan(ws: &Workspace, universe: &str, jobs: usize) {
    let plan = ws.run(&[&["plan", universe][..], &RANGE].concat()).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!("planned {jobs} REST jobs")),
        "{}",
        plan.stdout
    );
}

/// A `finpipe run --shared` process on the workspace's table, with a
/// scratch directory of its own (as on a machine of its own).
fn runner(ws: &Workspace, extra: &[&str]) -> tokio::process::Child {
    let scratch = ws.join(&format!("scratch-{}", fastrand::u64(..)));
    let scratch = scratch.to_str().unwrap().to_owned();
    ws.command(
        None,
        &[&["run", "--shared", "--scratch", &scratch][..], extra].concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap()
}

/// The `done=` count of a run's summary line.
fn done(out: &Output) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("done=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {out:?}"))
}

/// The library a single runner with its own SQLite table writes for the
/// same plan, from the same market.
async fn reference(
    sim: &Simulator,
    symbols: &[&str],
) -> BTreeMap<(String, String), Vec<finpipe::model::Bar>> {
    let ws = Workspace::for_sim(sim);
    let universe = ws.universe("u", symbols);
    let run = ws
        .run(&[&["backfill", &universe][..], &RANGE].concat())
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    ws.library("data")
}

/// How many times each aggregates request was sent.
fn sent_counts(sim: &Simulator) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in aggregate_requests(sim) {
        *counts.entry(request).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_share_one_rate_limit_and_run_every_job_once() {
    let Some(base) = base_url() else { return };
    let db = TempDatabase::new(&base);
    // The server refuses a sixth request within any second.
    let sim = simulator_with(|c| {
        c.rate_limit = Some(SimRateLimit {
            requests: 5,
            window: Duration::from_secs(1),
            retry_after: true,
        });
    })
    .await;
    let Some(library) = S3Library::new() else {
        return;
    };
    let names = tickers(&sim, 24);
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let ws = library
        .on(Workspace::for_sim(&sim))
        .env("FINPIPE_DB", &db.url)
        .env("POLYGON_RATE_LIMIT", "5/s");
    let universe = ws.universe("u", &symbols);
    plan(&ws, &universe, 24).await;

    let children: Vec<_> = (0..3)
        .map(|_| runner(&ws, &["--concurrency", "2"]))
        .collect();
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.wait_with_output().await.unwrap());
    }
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(
        outputs.iter().map(done).sum::<u64>(),
        24,
        "every job ran once in all"
    );
    assert!(
        outputs.iter().filter(|o| done(o) > 0).count() >= 2,
        "the runners shared the work: {:?}",
        outputs.iter().map(done).collect::<Vec<_>>()
    );

    let requests = sim.requests();
    let aggregates: Vec<_> = requests.iter().filter(|r| r.is_aggregates()).collect();
    assert!(
        aggregates.iter().all(|r| r.status == 200),
        "no request was refused: {:?}",
        aggregates
            .iter()
            .filter(|r| r.status != 200)
            .collect::<Vec<_>>()
    );
    let counts = sent_counts(&sim);
    assert_eq!(counts.len(), 24, "{counts:#?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:#?}");
    let times: Vec<Duration> = requests.iter().map(|r| r.at).collect();
    assert!(
        max_in_window(&times, Duration::from_secs(1)) <= 5,
        "three runners, one limit of 5 a second"
    );

    let shared = library.read(&ws);
    assert!(!shared.is_empty());
    sim.clear_requests();
    assert_eq!(shared, reference(&sim, &symbols).await, "row for row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_job_hands_its_jobs_over_after_its_lease() {
    let Some(base) = base_url() else { return };
    let db = TempDatabase::new(&base);
    // Slow answers, so the runner to be killed is sure to hold jobs.
    let sim = simulator_with(|c| c.latency = Duration::from_millis(700)).await;
    let Some(library) = S3Library::new() else {
        return;
    };
    let names = tickers(&sim, 12);
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let ws = library
        .on(Workspace::for_sim(&sim))
        .env("FINPIPE_DB", &db.url);
    let universe = ws.universe("u", &symbols);
    plan(&ws, &universe, 12).await;

    // The shortest lease allowed, so the test waits 10 s, not 5 minutes.
    let lease = ["--concurrency", "2", "--lease", "10s"];
    let mut runners: Vec<_> = (0..3).map(|_| runner(&ws, &lease)).collect();
    let victim_pid = runners[0].id().unwrap();
    // All three at work; killed once the victim holds jobs.
    let mut held = 0;
    for _ in 0..300 {
        let status = ws.run(&["status", "--json"]).await;
        let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        held = json["runners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["owner"]
                    .as_str()
                    .is_some_and(|o| o.contains(&format!(":{victim_pid}:")))
            })
            .map(|r| r["jobs"].as_u64().unwrap_or(0))
            .sum::<u64>();
        if held > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held > 0, "the victim claimed jobs");
    let mut victim = runners.remove(0);
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    let mut outputs = Vec::new();
    for child in runners {
        outputs.push(child.wait_with_output().await.unwrap());
    }
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }
    // Every job done, the victim's included (taken over after its lease).
    let status = ws.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["jobs"]["done"], 12, "{json}");
    assert_eq!(json["jobs"]["running"], 0, "{json}");
    assert_eq!(json["runners"].as_array().map(Vec::len), Some(0), "{json}");
    // Nothing twice, but what the victim had asked for without storing it.
    let counts = sent_counts(&sim);
    assert_eq!(counts.len(), 12, "{counts:#?}");
    assert!(counts.values().all(|n| *n <= 2), "{counts:#?}");
    let twice = counts.values().filter(|n| **n == 2).count();
    assert!(
        twice as u64 <= held,
        "only the victim's {held} jobs may be asked for again: {counts:#?}"
    );
    let shared = library.read(&ws);
    assert!(!shared.is_empty());
    sim.clear_requests();
    assert_eq!(shared, reference(&sim, &symbols).await, "nothing lost");
}

#[tokio::test]
async fn a_lease_too_short_to_renew_is_refused() {
    let ws = Workspace::new();
    let run = ws.run(&["run", "--shared", "--lease", "2s"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("at least 10s"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_runner_pauses_the_others() {
    let Some(base) = base_url() else { return };
    let db = TempDatabase::new(&base);
    let sim = simulator_with(|c| c.latency = Duration::from_millis(100)).await;
    let names = tickers(&sim, 40);
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let ws = Workspace::for_sim(&sim).env("FINPIPE_DB", &db.url);
    let universe = ws.universe("u", &symbols);
    plan(&ws, &universe, 40).await;

    let children: Vec<_> = (0..3)
        .map(|_| runner(&ws, &["--concurrency", "1"]))
        .collect();
    // Once all three are sending, one request is answered 429 with
    // Retry-After: 3; whichever runner gets it, all of them pause.
    for _ in 0..300 {
        if aggregate_requests(&sim).len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.inject(Fault::next(
        FaultKind::TooManyRequests {
            retry_after: Some(3),
        },
        1,
    ));
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.wait_with_output().await.unwrap());
    }
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }
    let requests = sim.requests();
    let refused = requests
        .iter()
        .find(|r| r.status == 429)
        .expect("one request was refused");
    // Requests already on their way when the 429 came back may arrive just
    // after it; from then on, nothing for the pause's length.
    let answered = refused.at + refused.waited;
    let quiet_from = answered + Duration::from_millis(300);
    let quiet_to = answered + Duration::from_millis(2_700);
    let during: Vec<Duration> = requests
        .iter()
        .map(|r| r.at)
        .filter(|at| (quiet_from..quiet_to).contains(at))
        .collect();
    assert!(
        during.is_empty(),
        "requests during the pause, at {during:?} (429 answered at {answered:?})"
    );
    let after = requests.iter().filter(|r| r.at >= quiet_to).count();
    assert!(after >= 3, "the runners went on after the pause: {after}");
    assert_eq!(outputs.iter().map(done).sum::<u64>(), 40);
}
