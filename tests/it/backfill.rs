//! `finpipe backfill`/`plan`/`run`/`run-once`/`status`/`jobs` against the
//! simulator, reading back the Parquet files they wrote.

use finpipe::model::Bar;
use finpipe::simulator::{Fault, FaultKind};

use crate::common::{Workspace, aggregate_requests, sim_bars, simulator, simulator_with};

fn assert_same_bars(got: &[Bar], want: &[Bar], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: bar count");
    for (g, w) in got.iter().zip(want) {
        let exact = (
            g.timestamp,
            g.open,
            g.high,
            g.low,
            g.close,
            g.volume,
            g.transactions,
        ) == (
            w.timestamp,
            w.open,
            w.high,
            w.low,
            w.close,
            w.volume,
            w.transactions,
        );
        assert!(exact, "{what}: {g:?} != {w:?}");
        match (g.vwap, w.vwap) {
            (Some(a), Some(b)) => assert!(((a - b) / b).abs() <= 1e-9, "{what}: vwap {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{what}: vwap"),
        }
    }
}

const TICKERS: [&str; 5] = ["AAPL", "MSFT", "X:BTCUSD", "C:EURUSD", "I:SPX"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_stores_every_series_exactly_as_the_api_serves_it_and_derives_instead_of_asking() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &TICKERS);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m,5m,15m,1h,1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("failed=0"), "{}", run.stdout);
    assert!(
        !run.all_output().contains('\x1b'),
        "no ANSI codes without a terminal"
    );

    let library = ws.library("data");
    for ticker in TICKERS {
        for tf in ["1m", "5m", "15m", "1h", "1d"] {
            let got = library
                .get(&(ticker.to_owned(), tf.to_owned()))
                .cloned()
                .unwrap_or_default();
            let want = sim_bars(&sim, ticker, tf, "2024-11-01", "2024-11-08", false);
            assert!(!want.is_empty(), "{ticker} {tf}: the simulator has data");
            assert_same_bars(&got, &want, &format!("{ticker} {tf}"));
        }
    }
    let requests = aggregate_requests(&sim);
    assert!(
        requests
            .iter()
            .all(|r| r.contains("/range/1/minute/") || r.contains("/range/1/day/")),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.contains("adjusted=false") && r.contains("limit=50000")),
        "{requests:#?}"
    );
    assert_eq!(
        requests.len(),
        TICKERS.len() * 2,
        "one request per ticker and base timeframe: {requests:#?}"
    );

    // A re-run sends no aggregate request and changes nothing.
    sim.clear_requests();
    let again = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m,5m,15m,1h,1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(aggregate_requests(&sim), Vec::<String>::new());
    assert_eq!(ws.library("data"), library);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_timeframe_added_later_costs_no_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let args = |tfs: &'static str| {
        [
            "run-once",
            "AAPL",
            "--timeframes",
            tfs,
            "--start",
            "2024-11-04",
            "--end",
            "2024-11-06",
        ]
    };
    assert_eq!(ws.run(&args("1m")).await.code, 0);
    sim.clear_requests();
    let run = ws.run(&args("1m,15m")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        aggregate_requests(&sim).is_empty(),
        "{:?}",
        aggregate_requests(&sim)
    );
    let got = ws.library("data")[&("AAPL".to_owned(), "15m".to_owned())].clone();
    assert_same_bars(
        &got,
        &sim_bars(&sim, "AAPL", "15m", "2024-11-04", "2024-11-06", false),
        "AAPL 15m",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_and_unknown_tickers_cost_one_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "NOSUCHTICKER"]);
    // Three months of minutes is more than one 50 000-bar page.
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m",
            "--start",
            "2024-06-01",
            "--end",
            "2024-08-31",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let requests = aggregate_requests(&sim);
    let aapl = requests.iter().filter(|r| r.contains("/AAPL/")).count();
    let nope = requests
        .iter()
        .filter(|r| r.contains("/NOSUCHTICKER/"))
        .count();
    let want = sim_bars(&sim, "AAPL", "1m", "2024-06-01", "2024-08-31", false);
    assert_eq!(aapl, want.len().div_ceil(50_000).max(2), "{requests:#?}");
    assert!(aapl >= 2);
    assert_eq!(nope, 1);
    let library = ws.library("data");
    assert_same_bars(
        &library[&("AAPL".to_owned(), "1m".to_owned())],
        &want,
        "AAPL 1m",
    );
    assert!(!library.contains_key(&("NOSUCHTICKER".to_owned(), "1m".to_owned())));
    let files: Vec<String> = std::fs::read_dir(ws.join("data/AAPL/1m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        files,
        ["2024-06.parquet", "2024-07.parquet", "2024-08.parquet"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_before_any_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    std::fs::write(ws.join("broken.json"), "{\"tickers\": [").unwrap();
    let empty = ws.universe("empty", &[]);
    let good = ws.universe("good", &["AAPL"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "backfill",
                "missing.json",
                "--timeframes",
                "1d",
                "--start",
                "2024-01-02",
            ],
            "cannot read universe file",
        ),
        (
            vec![
                "backfill",
                "broken.json",
                "--timeframes",
                "1d",
                "--start",
                "2024-01-02",
            ],
            "not valid JSON",
        ),
        (
            vec![
                "backfill",
                &empty,
                "--timeframes",
                "1d",
                "--start",
                "2024-01-02",
            ],
            "ticker list is empty",
        ),
        (
            vec![
                "backfill",
                &good,
                "--timeframes",
                "1x",
                "--start",
                "2024-01-02",
            ],
            "unknown timeframe",
        ),
        (
            vec![
                "backfill",
                &good,
                "--timeframes",
                "1mn",
                "--start",
                "2024-01-02",
            ],
            "did you mean \"1m\"",
        ),
        (
            vec![
                "backfill",
                &good,
                "--timeframes",
                "1d",
                "--start",
                "2024-03-01",
                "--end",
                "2024-02-01",
            ],
            "is after --end",
        ),
        (
            vec![
                "backfill",
                &good,
                "--timeframes",
                "1d",
                "--start",
                "2030-01-01",
            ],
            "in the future",
        ),
        (
            vec![
                "backfill",
                &good,
                "--timeframes",
                "1d",
                "--start",
                "2024-13-01",
            ],
            "--start",
        ),
        (
            vec![
                "run-once",
                "A B",
                "--timeframes",
                "1d",
                "--start",
                "2024-01-02",
            ],
            "invalid ticker",
        ),
    ];
    for (args, expected) in cases {
        let run = ws.run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());

    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-25",
            "--end",
            "2025-06-01",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("in the future; using today, 2024-12-02"),
        "{}",
        run.stderr
    );
    assert!(
        aggregate_requests(&sim)
            .iter()
            .all(|r| r.contains("/2024-11-25/2024-12-02")),
        "{:?}",
        aggregate_requests(&sim)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_bars_live_in_their_own_library_and_bases_never_mix() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let args = [
        "run-once",
        "AAPL",
        "--timeframes",
        "1d",
        "--start",
        "2020-08-24",
        "--end",
        "2020-09-04",
    ];
    assert_eq!(ws.run(&args).await.code, 0);
    let mut adjusted_args = args.to_vec();
    adjusted_args.push("--adjusted");
    let run = ws.run(&adjusted_args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let raw = ws.library("data")[&("AAPL".to_owned(), "1d".to_owned())].clone();
    let adjusted = ws.library("data-adjusted")[&("AAPL".to_owned(), "1d".to_owned())].clone();
    assert_same_bars(
        &raw,
        &sim_bars(&sim, "AAPL", "1d", "2020-08-24", "2020-09-04", false),
        "unadjusted",
    );
    assert_same_bars(
        &adjusted,
        &sim_bars(&sim, "AAPL", "1d", "2020-08-24", "2020-09-04", true),
        "adjusted",
    );
    assert_ne!(
        raw[0].close, adjusted[0].close,
        "the 2020-08-31 split shows before it"
    );
    assert!(
        aggregate_requests(&sim)
            .iter()
            .any(|r| r.contains("adjusted=true"))
    );

    // An adjusted file planted in the unadjusted library is refused, not appended to.
    let msft = [
        "run-once",
        "MSFT",
        "--timeframes",
        "1d",
        "--start",
        "2024-11-01",
        "--end",
        "2024-11-04",
        "--adjusted",
    ];
    assert_eq!(ws.run(&msft).await.code, 0);
    let planted = ws.join("data/MSFT/1d");
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::copy(
        ws.join("data-adjusted/MSFT/1d/2024.parquet"),
        planted.join("2024.parquet"),
    )
    .unwrap();
    let before = std::fs::read(planted.join("2024.parquet")).unwrap();
    let run = ws
        .run(&[
            "run-once",
            "MSFT",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("adjusted") && run.stderr.contains("data/MSFT/1d/2024.parquet"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(planted.join("2024.parquet")).unwrap(),
        before,
        "the file is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_are_listed_retried_and_finished() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("FINPIPE_RETRIES", "1");
    sim.inject(Fault::next(FaultKind::ServerError, 1000).on("/v2/aggs/ticker/MSFT/"));
    sim.inject(Fault::next(FaultKind::Status(403), 1000).on("/v2/aggs/ticker/NVDA/"));
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA"]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("done=1 failed=2"), "{}", run.stdout);
    assert!(
        run.stderr.contains("MSFT") && run.stderr.contains("HTTP 500"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("NVDA") && run.stderr.contains("plan does not cover"),
        "{}",
        run.stderr
    );
    // 403 is not retried; the 500s were retried by the client and by the job.
    let nvda = aggregate_requests(&sim)
        .iter()
        .filter(|r| r.contains("/NVDA/"))
        .count();
    assert_eq!(nvda, 1);

    let listed = ws.run(&["jobs", "list", "--state", "failed"]).await;
    assert_eq!(listed.code, 0);
    assert_eq!(listed.stdout.lines().count(), 2, "{}", listed.stdout);
    let status = ws.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["jobs"]["failed"], 2);
    assert_eq!(json["series"][0]["ticker"], "AAPL");

    sim.clear_faults();
    assert!(
        ws.run(&["jobs", "retry", "--failed"])
            .await
            .stdout
            .contains("2 failed jobs re-queued")
    );
    let run = ws.run(&["run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("done=2 failed=0"), "{}", run.stdout);
    let cleared = ws.run(&["jobs", "clear", "--done"]).await;
    assert!(
        cleared.stdout.contains("3 done jobs deleted"),
        "{}",
        cleared.stdout
    );
    // Coverage outlives the jobs: nothing is planned again.
    sim.clear_requests();
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(run.code, 0);
    assert!(aggregate_requests(&sim).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_completion_cannot_be_recorded_fails_alone() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT"]);
    let args = [
        "--timeframes",
        "1d",
        "--start",
        "2024-11-01",
        "--end",
        "2024-11-08",
    ];
    let plan = ws.run(&[&["plan", &universe][..], &args].concat()).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    // An unreadable coverage row for MSFT: its job's completion, which adds
    // the coverage it earned in the same transaction, cannot be recorded.
    let db = rusqlite::Connection::open(ws.join("data/.finpipe/finpipe.db")).unwrap();
    db.execute(
        "INSERT INTO coverage (ticker, timeframe, adjusted, start_date, end_date)
         VALUES ('MSFT', '1d', 0, 'not a date', '2024-10-31')",
        [],
    )
    .unwrap();
    drop(db);
    let run = ws.run(&["run"]).await;
    // MSFT's job fails (after its retries) and says why; AAPL's is done.
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("done=1 failed=1"), "{}", run.stdout);
    assert!(
        run.stderr.contains("MSFT") && run.stderr.contains("cannot record the finished job"),
        "{}",
        run.stderr
    );
    let listed = ws.run(&["jobs", "list", "--state", "failed"]).await;
    assert_eq!(listed.stdout.lines().count(), 1, "{}", listed.stdout);
    assert!(listed.stdout.contains("MSFT"), "{}", listed.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_library_fails_the_job_clearly_and_leaves_no_partial_file() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    // A file where the ticker's directory must go: no permission trick needed as root.
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::write(ws.join("data/AAPL"), "in the way").unwrap();
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
            "--end",
            "2024-11-08",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("data/AAPL"), "{}", run.stderr);
    let leftovers = crate::common::temporaries(&ws.join("data"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_coverage_from_the_files() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws
        .run(&[
            "run-once",
            "X:BTCUSD",
            "--timeframes",
            "1h,1d",
            "--start",
            "2024-10-28",
            "--end",
            "2024-11-03",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(ws.join("data/X~BTCUSD/1h/2024-10.parquet").exists());
    assert!(ws.join("data/X~BTCUSD/1h/2024-11.parquet").exists());
    let status = ws
        .run(&["status", "X:BTCUSD", "--interval", "1h", "--json"])
        .await;
    assert_eq!(status.code, 0, "{status:?}");
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let series = json["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    let want = sim_bars(&sim, "X:BTCUSD", "1h", "2024-10-28", "2024-11-03", false);
    assert_eq!(series[0]["rows"], want.len());
    assert_eq!(series[0]["files"], 2);
    assert_eq!(series[0]["first"], "2024-10-28T04:00:00Z");
    let text = ws.run(&["status"]).await;
    assert!(
        text.stdout.contains("X:BTCUSD") && text.stdout.contains("0 failed"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_exits_3_while_the_lock_is_held() {
    let sim = simulator_with(|_| {}).await;
    let ws = Workspace::for_sim(&sim);
    std::fs::create_dir_all(ws.join("data/.finpipe")).unwrap();
    let held = finpipe::lock::acquire(
        &finpipe::jobs::DbLocation::Sqlite(ws.join("data/.finpipe/finpipe.db")),
        finpipe::lock::LockMode::Exclusive,
        false,
    )
    .unwrap();
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("--wait"), "{}", run.stderr);
    assert!(sim.requests().is_empty());
    drop(held);
    assert_eq!(
        ws.run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01"
        ])
        .await
        .code,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_stops_the_run_with_exit_2_and_loses_no_job() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("MASSIVE_API_KEY", "revoked-key");
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA", "AMZN"]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
            "--concurrency",
            "1",
        ])
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("Unknown API Key") && run.stderr.contains("MASSIVE_API_KEY"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.requests().len(), 1, "the run stopped at the first 401");
    let fixed = Workspace::for_sim(&sim);
    std::fs::rename(ws.join("data"), fixed.join("data")).unwrap();
    let status = fixed.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["jobs"]["pending"], 4, "{json}");
    let run = fixed.run(&["run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("done=4"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_range_fetched_later_keeps_the_derived_bars_of_the_later_one() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let later = [
        "run-once",
        "AAPL",
        "--timeframes",
        "1m,5m,1h",
        "--start",
        "2024-11-20",
        "--end",
        "2024-11-29",
    ];
    assert_eq!(ws.run(&later).await.code, 0);
    let earlier = [
        "run-once",
        "AAPL",
        "--timeframes",
        "1m,5m,1h",
        "--start",
        "2024-11-01",
        "--end",
        "2024-11-19",
    ];
    let run = ws.run(&earlier).await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    for tf in ["1m", "5m", "1h"] {
        let want = sim_bars(&sim, "AAPL", tf, "2024-11-01", "2024-11-29", false);
        assert_same_bars(
            &library[&("AAPL".to_owned(), tf.to_owned())],
            &want,
            &format!("AAPL {tf}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_leaves_one_grep_friendly_summary_line() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws
        .run(&[
            "-q",
            "run-once",
            "AAPL",
            "--timeframes",
            "1m,5m,1d",
            "--start",
            "2024-11-04",
            "--end",
            "2024-11-05",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "no log lines, no bars");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    for field in [
        "jobs done=2",
        "failed=0",
        "bars_new=",
        "requests=2",
        "duration=",
    ] {
        assert!(lines[0].contains(field), "{field}: {}", lines[0]);
    }
}
