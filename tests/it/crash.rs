//! Real processes: runs killed with SIGKILL at random instants and re-run, an
//! interrupted run, and two runners draining one table.

use std::time::Duration;

use crate::common::{Workspace, aggregate_requests, simulator_with};

const TICKERS: [&str; 6] = ["AAPL", "MSFT", "NVDA", "X:BTCUSD", "C:EURUSD", "I:SPX"];

fn backfill_args(universe: &str) -> Vec<String> {
    [
        "backfill",
        universe,
        "--timeframes",
        "1m,5m,1h,1d",
        "--start",
        "2024-06-03",
        "--end",
        "2024-08-30",
        "--concurrency",
        "3",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn command(ws: &Workspace, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_finpipe"));
    cmd.args(args)
        .current_dir(ws.path())
        .env_clear()
        .envs(ws_env(ws))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

fn ws_env(ws: &Workspace) -> Vec<(String, String)> {
    ws.env_vars()
}

/// Every file below `dir` with its length and modification time.
fn snapshot(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<std::path::PathBuf, (u64, std::time::SystemTime)> {
    let mut files = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else if let Ok(meta) = entry.metadata() {
            files.insert(
                path,
                (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH)),
            );
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_instants_then_rerun_match_an_uninterrupted_run_row_for_row() {
    let sim = simulator_with(|c| c.latency = Duration::from_millis(80)).await;
    let reference = Workspace::for_sim(&sim);
    let universe = reference.universe("u", &TICKERS);
    let run = reference
        .run(
            &backfill_args(&universe)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let want = reference.library("data");
    assert!(want.len() >= TICKERS.len() * 4 - 4, "{:?}", want.keys());

    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let crashed = Workspace::for_sim(&sim);
    crashed.universe("u", &TICKERS);
    let mut kills = 0;
    for round in 0..8 {
        let mut child = command(&crashed, &backfill_args(&universe))
            .spawn()
            .unwrap();
        // Kill at a random instant after the run has visibly made progress
        // (a file written or replaced), so every kill lands mid-work.
        let before = snapshot(&crashed.join("data"));
        let delay = Duration::from_millis(rng.u64(0..60));
        let killed = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "round {round} (seed {seed}): {status:?}");
                break false;
            }
            if snapshot(&crashed.join("data")) != before {
                tokio::time::sleep(delay).await;
                child.start_kill().unwrap();
                child.wait().await.unwrap();
                break true;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        };
        if !killed {
            break;
        }
        kills += 1;
        // Whatever instant the kill hit, every file on disk is readable.
        let _ = crashed.library("data");
    }
    assert!(kills >= 2, "the kills landed (seed {seed})");
    let run = crashed
        .run(
            &backfill_args(&universe)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(run.code, 0, "seed {seed}: {run:?}");
    let got = crashed.library("data");
    for (series, bars) in &want {
        let mine = got.get(series).map(Vec::as_slice).unwrap_or_default();
        if mine != bars.as_slice() {
            let first_diff = mine.iter().zip(bars).position(|(a, b)| a != b);
            panic!(
                "seed {seed}: {series:?} differs after {kills} kills: {} bars vs {} wanted, first difference at {first_diff:?}: {:?} vs {:?}",
                mine.len(),
                bars.len(),
                first_diff.map(|i| mine[i]),
                first_diff.map(|i| bars[i]),
            );
        }
    }
    assert_eq!(got.len(), want.len(), "seed {seed}: the same series");
    assert!(
        crate::common::temporaries(&crashed.join("data")).is_empty(),
        "seed {seed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_promptly_keeps_the_table_consistent_and_a_rerun_completes() {
    let sim = simulator_with(|c| c.latency = Duration::from_millis(150)).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &TICKERS);
    let args = [
        "backfill",
        &universe,
        "--timeframes",
        "1d",
        "--start",
        "2024-01-02",
        "--end",
        "2024-11-29",
        "--concurrency",
        "1",
    ];
    let owned: Vec<String> = args.iter().map(ToString::to_string).collect();
    let child = command(&ws, &owned)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = child.id().unwrap();
    let started = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "prompt: {:?}",
        started.elapsed()
    );
    let status = ws.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["jobs"]["running"], 0, "no job left running: {json}");
    assert!(json["jobs"]["pending"].as_u64().unwrap() > 0, "{json}");
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let status = ws.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["jobs"]["done"], TICKERS.len(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_table_never_run_the_same_job() {
    let sim = simulator_with(|c| c.latency = Duration::from_millis(25)).await;
    let ws = Workspace::for_sim(&sim);
    let reference = sim.market().reference();
    let tickers: Vec<&str> = reference
        .tickers()
        .iter()
        .filter(|t| t.active && t.type_code.as_deref() == Some("CS") && t.market == "stocks")
        .take(40)
        .map(|t| t.ticker.as_str())
        .collect();
    let universe = ws.universe("u", &tickers);
    let plan = ws
        .run(&[
            "plan",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-10-01",
            "--end",
            "2024-11-29",
        ])
        .await;
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains("planned 40 REST jobs"),
        "{}",
        plan.stdout
    );
    let runner = || {
        let args: Vec<String> = ["run", "--shared", "--concurrency", "3"]
            .iter()
            .map(ToString::to_string)
            .collect();
        command(&ws, &args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (runner(), runner());
    let (a, b) = (
        a.wait_with_output().await.unwrap(),
        b.wait_with_output().await.unwrap(),
    );
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let done = |out: &std::process::Output| -> u64 {
        let text = String::from_utf8_lossy(&out.stdout);
        let field = text.split("done=").nth(1).unwrap_or("0");
        field
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap()
    };
    assert_eq!(done(&a) + done(&b), 40, "every job ran once in all");
    let requests = aggregate_requests(&sim);
    assert_eq!(requests.len(), 40, "{requests:#?}");
    for ticker in &tickers {
        let count = requests
            .iter()
            .filter(|r| r.contains(&format!("/ticker/{ticker}/")))
            .count();
        assert_eq!(count, 1, "{ticker} requested {count} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_runner_holding_leases_and_its_jobs() {
    // Slow answers, so the runner's jobs are still running when asked.
    let sim = simulator_with(|c| c.latency = Duration::from_secs(3)).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA"]);
    let plan = ws
        .run(&[
            "plan",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-10-01",
            "--end",
            "2024-10-31",
        ])
        .await;
    assert_eq!(plan.code, 0, "{plan:?}");
    let args: Vec<String> = ["run", "--shared", "--concurrency", "2"]
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut runner = command(&ws, &args).spawn().unwrap();
    let pid = runner.id().unwrap();
    let mut found = None;
    for _ in 0..100 {
        let status = ws.run(&["status", "--json"]).await;
        assert_eq!(status.code, 0, "{status:?}");
        let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        if json["runners"].as_array().is_some_and(|r| !r.is_empty()) {
            found = Some((json, ws.run(&["status"]).await.stdout));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let (json, text) = found.expect("status showed the runner while its jobs ran");
    let runners = json["runners"].as_array().unwrap();
    assert_eq!(runners.len(), 1, "{runners:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let one = &runners[0];
    assert_eq!(one["host"], host.trim(), "{one}");
    assert!(
        one["owner"].as_str().unwrap().contains(&format!(":{pid}:")),
        "{one}"
    );
    assert!((1..=3).contains(&one["jobs"].as_u64().unwrap()), "{one}");
    assert_eq!(one["expired"], false, "{one}");
    assert!(
        text.contains(&format!(
            "runner {} ({}",
            host.trim(),
            one["owner"].as_str().unwrap()
        )) && text.contains("last heartbeat"),
        "{text}"
    );
}
