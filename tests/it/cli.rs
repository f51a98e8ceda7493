//! The binary's contract: exit codes, error messages that name the fix, the
//! configuration view, and secrets that never reach stdout or stderr.

use finpipe::simulator::{Fault, FaultKind, SimRateLimit};

use crate::common::{Run, Workspace, simulator_with};

const SECRET: &str = "sk_live_5UPERSECRET_0123456789abcdef";
const S3_SECRET: &str = "s3secret_ABCDEFGHIJKLMNOP_987654321";

fn assert_no_secret(run: &Run, context: &str) {
    let all = run.all_output();
    for secret in [SECRET, S3_SECRET] {
        assert!(!all.contains(secret), "{context}: secret leaked:\n{all}");
        assert!(
            !all.contains(&secret[..12]),
            "{context}: part of a secret leaked:\n{all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_exits_2_naming_the_variables_without_a_request() {
    let sim = simulator_with(|_| {}).await;
    let ws = Workspace::new().env("MASSIVE_API_BASE_URL", &sim.base_url());
    let run = ws.run(&["discover", "etf"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("MASSIVE_API_KEY or POLYGON_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--api-key"), "{}", run.stderr);
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_exits_2_after_one_request() {
    let sim = simulator_with(|_| {}).await;
    let ws = Workspace::for_sim(&sim).env("MASSIVE_API_KEY", "wrong-key");
    let run = ws.run(&["discover", "etf"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("Unknown API Key"), "{}", run.stderr);
    assert!(
        run.stderr.contains("MASSIVE_API_KEY or POLYGON_API_KEY"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.requests().len(), 1);
    assert!(!ws.join("universe").exists(), "nothing written on failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_read_from_dotenv_and_the_seed_names_work() {
    let sim = simulator_with(|_| {}).await;
    let ws = Workspace::new();
    let dotenv = format!(
        "POLYGON_API_KEY={}\nPOLYGON_API_BASE_URL={}\nPOLYGON_RATE_LIMIT=unlimited\nWORKER_CONCURRENCY=3\n",
        sim.api_key(),
        sim.base_url()
    );
    std::fs::write(ws.join(".env"), dotenv).unwrap();
    let run = ws.run(&["discover", "fx", "--limit", "3"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let config = ws.run(&["config"]).await;
    assert_eq!(config.code, 0);
    assert!(
        config.stdout.contains(".env POLYGON_API_KEY"),
        "{}",
        config.stdout
    );
    assert!(
        config.stdout.contains(".env WORKER_CONCURRENCY"),
        "{}",
        config.stdout
    );
    assert!(config.stdout.contains("unlimited"), "{}", config.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_sources_and_masks_secrets() {
    let ws = Workspace::new()
        .env("POLYGON_API_KEY", SECRET)
        .env("MASSIVE_S3_SECRET_KEY", S3_SECRET);
    let run = ws.run(&["config", "--rate-limit", "100/s"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_no_secret(&run, "config");
    for expected in [
        "environment POLYGON_API_KEY",
        "environment MASSIVE_S3_SECRET_KEY",
        "100/s",
        "flag --rate-limit",
        "https://api.massive.com",
        "data/.finpipe/finpipe.db",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_output_at_the_most_verbose_level() {
    let sim = simulator_with(|c| c.api_key = SECRET.to_owned()).await;
    let ws = Workspace::for_sim(&sim)
        .env("MASSIVE_S3_SECRET_KEY", S3_SECRET)
        .env("FINPIPE_RETRIES", "2");

    let ok = ws
        .run(&["-vvv", "discover", "us_equities", "--limit", "1200"])
        .await;
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stderr.contains("GET"),
        "trace logging was on: {}",
        ok.stderr
    );
    assert_no_secret(&ok, "success");

    let faults = [
        FaultKind::ServerError,
        FaultKind::MalformedJson,
        FaultKind::TruncatedBody,
        FaultKind::DropConnection,
        FaultKind::Status(403),
        FaultKind::TooManyRequests {
            retry_after: Some(0),
        },
    ];
    for kind in faults {
        sim.clear_faults();
        sim.inject(Fault::next(kind.clone(), 1000));
        let run = ws.run(&["-vvv", "discover", "etf", "--limit", "5"]).await;
        assert_ne!(run.code, 0, "{kind:?}");
        assert_no_secret(&run, &format!("{kind:?}"));
    }
    sim.clear_faults();

    sim.set_rate_limit(Some(SimRateLimit {
        requests: 1,
        window: std::time::Duration::from_millis(200),
        retry_after: false,
    }));
    let storm = ws
        .run(&["-vvv", "discover", "us_equities", "--limit", "2500"])
        .await;
    assert_eq!(storm.code, 0, "{storm:?}");
    assert_no_secret(&storm, "429 storm");

    let wrong_key = format!("{}X", &SECRET[..SECRET.len() - 1]);
    let wrong = Workspace::for_sim(&sim)
        .env("MASSIVE_API_KEY", &wrong_key)
        .run(&["-vvv", "discover", "etf"])
        .await;
    assert_eq!(wrong.code, 2);
    assert_no_secret(&wrong, "rejected key");
    assert!(!wrong.all_output().contains(&wrong_key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_need_no_key_and_every_command_shows_an_example() {
    let ws = Workspace::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = ws.run(&["completions", shell]).await;
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(
            run.stdout.contains("backfill") && run.stdout.contains("discover"),
            "{shell}"
        );
    }
    let commands = [
        "discover",
        "backfill",
        "plan",
        "run",
        "run-once",
        "update",
        "verify",
        "status",
        "jobs",
        "config",
        "demo",
        "simulator",
        "completions",
    ];
    for command in commands {
        let help = ws.run(&[command, "--help"]).await;
        assert_eq!(help.code, 0, "{command}");
        assert!(
            help.stdout.contains("Examples:\n  finpipe"),
            "{command} --help has no example:\n{}",
            help.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_offline_with_both_sources() {
    let ws = Workspace::new();
    let run = ws.run(&["demo", "--dir", "d"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let plan = run
        .stdout
        .lines()
        .find(|l| l.starts_with("planned "))
        .unwrap_or_default();
    assert!(
        plan.contains(" REST jobs, 8 flat-file jobs") && !plan.contains("planned 0 REST"),
        "both sources: {plan}"
    );
    assert!(run.stdout.contains("failed=0"), "{}", run.stdout);
    let library = ws.library("d/data");
    let aapl = &library[&("AAPL".to_owned(), "1m".to_owned())];
    // 2024-12-02 minus 10 days: older days from flat files (no vwap), newer from REST.
    let cutoff = finpipe::model::AssetClass::Stocks.midnight_ms("2024-11-22".parse().unwrap());
    assert!(aapl.iter().any(|b| b.timestamp < cutoff));
    assert!(
        aapl.iter()
            .filter(|b| b.timestamp < cutoff)
            .all(|b| b.vwap.is_none())
    );
    assert!(
        aapl.iter()
            .filter(|b| b.timestamp >= cutoff)
            .all(|b| b.vwap.is_some())
    );
    for tf in ["1m", "5m", "1h", "1d"] {
        assert!(
            library.contains_key(&("X:BTCUSD".to_owned(), tf.to_owned())),
            "{tf}"
        );
    }
}
