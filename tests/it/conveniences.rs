//! What users of freqtrade and the Python client expect on the command line:
//! a preview of what a backfill costs (`--dry-run`, writing nothing and
//! sending no aggregate request), `--days N`, tickers straight on the
//! command line, `status --summary` on one screen, a JSON summary line
//! (`--json`), and a demo that says where its bars came from.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{Run, Workspace, aggregate_requests, simulator};

/// Every file below `dir` with its bytes: what "nothing changed" compares.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The line of `stdout` that starts with `prefix`, without the prefix.
fn line_after<'a>(run: &'a Run, prefix: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{}", run.stdout))
}

/// `planned <what> (<db>)` → `<what>`.
fn planned(run: &Run) -> String {
    let line = line_after(run, "planned ");
    line[..line.rfind(" (").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_a_backfill_costs_and_writes_nothing() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let args = |start: &str, extra: &[&'static str]| {
        let mut args = vec![
            "backfill".to_owned(),
            "AAPL".into(),
            "MSFT".into(),
            "X:BTCUSD".into(),
            "--timeframes".into(),
            "1m,5m,1d".into(),
            "--start".into(),
            start.into(),
            "--end".into(),
            "2024-11-29".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let run_with = |args: Vec<String>| {
        let ws = &ws;
        async move {
            ws.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .await
        }
    };

    // A new library: nothing exists before, nothing after.
    // The free plan's limit: the preview says how long its requests take.
    let fresh = run_with(args("2024-10-01", &["--dry-run", "--rate-limit", "5"])).await;
    assert_eq!(fresh.code, 0, "{fresh:?}");
    assert!(
        fresh.stdout.contains("does not exist and is not created"),
        "{}",
        fresh.stdout
    );
    assert!(
        !ws.join("data").exists(),
        "no library, no job table, no lock"
    );
    assert!(sim.requests().is_empty(), "no request at all");
    // 3 tickers × (1m with its 5m, 1d): six range jobs, no grouped-daily
    // (two stock tickers cost fewer requests than one per market day).
    assert!(
        fresh
            .stdout
            .contains("would plan 6 REST jobs, 0 flat-file jobs"),
        "{}",
        fresh.stdout
    );
    assert!(
        fresh.stdout.contains("6 requests at least"),
        "{}",
        fresh.stdout
    );
    // Six requests at 5 a minute: five at once, the sixth a minute later.
    assert!(
        fresh
            .stdout
            .contains("at --rate-limit 5/min they take at least 1 min"),
        "{}",
        fresh.stdout
    );

    // A library with a month in it, and a wider request.
    let first = run_with(args("2024-11-01", &[])).await;
    assert_eq!(first.code, 0, "{first:?}");
    // A file that cannot be read: a real run moves it aside; a dry run says so.
    let broken = ws.join("data/MSFT/1d/2024.parquet");
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&ws.join("data"));
    assert!(
        before.contains_key(".finpipe/finpipe.db"),
        "{:?}",
        before.keys()
    );
    let sent = aggregate_requests(&sim).len();

    let preview = run_with(args("2024-09-01", &["--dry-run"])).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert_eq!(
        snapshot(&ws.join("data")),
        before,
        "the job table, the lock and the library are byte for byte what they were"
    );
    assert_eq!(aggregate_requests(&sim).len(), sent, "no aggregate request");
    assert!(
        preview.stdout.contains("is unchanged"),
        "{}",
        preview.stdout
    );
    assert!(
        preview
            .stderr
            .contains("cannot be read: a run would move it into"),
        "{}",
        preview.stderr
    );
    for source in ["REST", "grouped-daily", "flat files", "derive"] {
        assert!(
            preview.stdout.contains(&format!("  {source} ")),
            "{source}: {}",
            preview.stdout
        );
    }
    assert!(
        preview.stdout.contains("--rate-limit is unlimited"),
        "{}",
        preview.stdout
    );
    let would = line_after(&preview, "would plan ").to_owned();

    // The real plan does what the preview said.
    let mut plan = args("2024-09-01", &[]);
    plan[0] = "plan".into();
    let real = run_with(plan).await;
    assert_eq!(real.code, 0, "{real:?}");
    assert_eq!(planned(&real), would);
    assert!(
        !broken.exists(),
        "the real plan moved the broken file aside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_and_tickers_on_the_command_line() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["MSFT"]);
    // A ticker, a universe and a ticker again, the last 30 days.
    let run = ws
        .run(&[
            "backfill",
            "AAPL",
            &universe,
            "X:BTCUSD",
            "AAPL",
            "--timeframes",
            "1d",
            "--days",
            "30",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    let series: Vec<&str> = library.keys().map(|(t, _)| t.as_str()).collect();
    assert_eq!(series, ["AAPL", "MSFT", "X:BTCUSD"]);
    // Today is 2024-12-02 in the tests: 30 days back is 2024-11-02.
    let asked = aggregate_requests(&sim);
    assert!(
        asked.iter().all(|r| r.contains("/2024-11-02/")),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 3, "{asked:?}");

    // plan takes them too, and says which word it could not read.
    let bad = ws
        .run(&["plan", "AAPL/B", "--timeframes", "1d", "--days", "5"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("\"AAPL/B\" is neither a universe file"),
        "{}",
        bad.stderr
    );
    let missing = ws
        .run(&["plan", "nope.json", "--timeframes", "1d", "--days", "5"])
        .await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("cannot read universe file nope.json"),
        "{}",
        missing.stderr
    );
    // --days or --start, not both, not neither.
    for args in [
        &[
            "plan",
            "AAPL",
            "--timeframes",
            "1d",
            "--days",
            "5",
            "--start",
            "2024-11-01",
        ][..],
        &["plan", "AAPL", "--timeframes", "1d"][..],
    ] {
        let run = ws.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let help = ws.run(&["backfill", "--help"]).await;
    for said in [
        "<TICKER|UNIVERSE>",
        "ends in .json",
        "--days <N>",
        "--dry-run",
    ] {
        assert!(help.stdout.contains(said), "{said}: {}", help.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_summary_fits_one_screen() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let tickers = ["AAPL", "MSFT", "NVDA", "X:BTCUSD"];
    let mut args = vec!["backfill"];
    args.extend(tickers);
    args.extend(["--timeframes", "1m,1h,1d", "--days", "10"]);
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::write(ws.join("data/NVDA/1h/2024-11.parquet"), b"not parquet").unwrap();

    let summary = ws.run(&["status", "--summary"]).await;
    assert_eq!(summary.code, 0, "{summary:?}");
    let out = &summary.stdout;
    assert!(out.lines().count() <= 8, "one screen:\n{out}");
    for ticker in tickers {
        assert!(!out.contains(ticker), "no line per series:\n{out}");
    }
    assert!(out.contains("jobs: 0 pending, 0 running,"), "{out}");
    assert!(out.contains("4 tickers, 12 series"), "{out}");
    for tf in ["1m", "1h", "1d"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{tf}:")))
            .unwrap_or_else(|| panic!("{tf}:\n{out}"));
        assert!(
            line.contains("4 tickers") && line.contains("complete up to"),
            "{line}"
        );
    }
    assert!(
        out.contains("unreadable: 1 file; quarantine: 0 files"),
        "{out}"
    );

    let json = ws.run(&["status", "--summary", "--json"]).await;
    assert_eq!(json.code, 0, "{json:?}");
    let body: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(body["tickers"], 4);
    assert_eq!(body["unreadable"], 1);
    assert_eq!(body["timeframes"].as_array().unwrap().len(), 3);
    assert!(body.get("series").is_some_and(|s| s.is_number()), "{body}");
}

/// The one JSON object on stdout.
fn json_line(run: &Run) -> serde_json::Value {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout holds the JSON alone:\n{}",
        run.stdout
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_line_comes_as_json() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws
        .run(&[
            "backfill",
            "AAPL",
            "--timeframes",
            "1d,1m",
            "--days",
            "5",
            "--json",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let body = json_line(&run);
    let bars: usize = ws.library("data").values().map(Vec::len).sum();
    assert_eq!(body["jobs_done"], 2, "{body}");
    assert_eq!(body["jobs_failed"], 0, "{body}");
    assert_eq!(body["bars_new"], bars, "{body}");
    assert_eq!(body["requests"], aggregate_requests(&sim).len(), "{body}");
    assert_eq!(body["library"], "data");
    assert_eq!(body["failed"], serde_json::json!([]));
    assert!(run.stderr.contains("planned 2 REST jobs"), "{}", run.stderr);

    // update and run too; nothing else on stdout.
    let update = ws.run(&["update", "--json"]).await;
    assert_eq!(update.code, 0, "{update:?}");
    assert!(json_line(&update)["jobs_done"].is_number());
    let queue = ws.run(&["run", "--json"]).await;
    assert_eq!(queue.code, 0, "{queue:?}");
    assert_eq!(json_line(&queue)["jobs_done"], 0);
    // verify's own --json is the same flag: its report stays JSON.
    let verify = ws.run(&["verify", "--json"]).await;
    assert_eq!(verify.code, 0, "{verify:?}");
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    assert!(report["problems"].is_array(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_says_where_its_bars_came_from() {
    let ws = Workspace::new();
    let run = ws.run(&["demo", "--dir", "d"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rest = line_after(&run, "  REST: ");
    assert!(
        rest.contains("grouped-daily") && rest.contains("rate limiter"),
        "{rest}"
    );
    let flat = line_after(&run, "  flat files: ");
    let files: usize = flat.split(' ').next().unwrap().parse().unwrap();
    assert!(files > 0, "{flat}");
    assert!(
        flat.contains("do not count against the REST rate limit"),
        "{flat}"
    );
    let derived = line_after(&run, "  derived: ");
    assert!(
        derived.contains("5m and 1h were computed here from the stored 1m bars"),
        "{derived}"
    );
    // The plan line counts the same day files (minute and day files apart).
    let plan = line_after(&run, "planned ");
    assert!(plan.contains(&format!("({files} day files)")), "{plan}");
}
