//! Benchmark: backfill 200 tickers × 1m × one month from the simulator with
//! 50 ms of injected latency at concurrency 16, and print what it cost.
//!
//! Run with `cargo bench --bench backfill`. The simulator runs inside this
//! bench process and finpipe in a child process, so the CPU-seconds and peak
//! RSS printed are the measured finpipe run's alone (`wait4`), and the
//! simulator's request log gives the request rate as the server saw it.
//! `BACKFILL_BENCH_DIR` puts the outputs in another directory (default: the
//! system's temporary directory); on ext4 a run started less than five
//! minutes after a bench removed its outputs first waits (see
//! [`common::settle`]; `BACKFILL_BENCH_NOWAIT=1` skips the wait).
//! Prints figures; asserts nothing about speed (timed tests flake).

// A bench prints its figures; its helper modules' items are `pub` for it.
#![allow(
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const TICKERS: usize = 200;
const CONCURRENCY: usize = 16;
const LATENCY_MS: u64 = 50;
const NOW: &str = "2024-12-02T23:00:00Z";
const BACKFILL_ARGS: [&str; 8] = [
    "backfill",
    "universe/us_equities_20241202.json",
    "--timeframes",
    "1m",
    "--start",
    "2024-10-01",
    "--end",
    "2024-10-31",
];

fn finpipe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpipe"));
    cmd.env_clear().env("FINPIPE_NOW", NOW);
    cmd
}

fn field(text: &str, name: &str) -> u64 {
    text.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let out_root =
        std::env::var_os("BACKFILL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    common::settle(&out_root, "BACKFILL_BENCH_NOWAIT");
    let work = tempfile::tempdir_in(&out_root).expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let today = chrono::NaiveDate::from_ymd_opt(2024, 12, 2).expect("date");
    let mut config = finpipe::simulator::SimConfig::new(today);
    config.latency = Duration::from_millis(LATENCY_MS);
    // Answers are cached after the warm-up, so during the measured run the
    // simulator only sends bytes and the two cores are the client's.
    config.cache_bytes = 1 << 30;
    let sim = runtime
        .block_on(finpipe::simulator::Simulator::start(config))
        .expect("simulator starts");
    let url = sim.base_url();
    let with_sim = |cmd: &mut Command| {
        cmd.current_dir(work.path())
            .env("MASSIVE_API_BASE_URL", &url)
            .env("MASSIVE_API_KEY", "sim-key")
            .env("POLYGON_RATE_LIMIT", "unlimited");
    };

    let mut discover = finpipe();
    with_sim(&mut discover);
    let status = discover
        .args([
            "-q",
            "discover",
            "us_equities",
            "--limit",
            &TICKERS.to_string(),
        ])
        .status()
        .expect("discover");
    assert!(status.success(), "discover failed");
    // A warm-up run into another library fills the simulator's answer cache,
    // so during the measured run the simulator only sends bytes and the two
    // cores are the client's. (Peak RSS is the larger of the two runs, which
    // do the same work.)
    let backfill = |data_dir: &str| {
        let mut cmd = finpipe();
        with_sim(&mut cmd);
        cmd.args(["-q", "--data-dir", data_dir])
            .args(BACKFILL_ARGS)
            .args(["--concurrency", &CONCURRENCY.to_string()]);
        cmd
    };
    let warm = backfill("warm-up").output().expect("warm-up runs");
    assert!(
        warm.status.success(),
        "warm-up failed: {}",
        String::from_utf8_lossy(&warm.stderr)
    );

    // The machine is a VM whose speed varies from run to run: the measured
    // run is repeated BACKFILL_BENCH_REPEAT times (default 5), each into a new
    // library, and the median of each figure is printed with its range.
    let repeat = std::env::var("BACKFILL_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let mut runs = Vec::new();
    for i in 0..repeat {
        let before = sim.requests().len();
        let data = format!("data-{i}");
        let started = Instant::now();
        let (output, usage) = common::run_measured(backfill(&data));
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "backfill failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The server's view: from the first request's arrival to the last
        // one's answer (arrival + the injected latency).
        let log = &sim.requests()[before..];
        let arrivals: Vec<Duration> = log.iter().map(|r| r.at).collect();
        let waited = log.iter().map(|r| r.waited).sum::<Duration>() / log.len().max(1) as u32;
        let busy = match (arrivals.iter().min(), arrivals.iter().max()) {
            (Some(first), Some(last)) => *last + Duration::from_millis(LATENCY_MS) - *first,
            _ => wall,
        };
        runs.push(Run {
            wall,
            busy,
            waited,
            requests: field(&stdout, "requests"),
            bars: field(&stdout, "bars_new"),
            usage,
            library: library(&work.path().join(&data)),
        });
    }
    runtime.block_on(sim.stop());

    let bound = CONCURRENCY as f64 / Duration::from_millis(LATENCY_MS).as_secs_f64();
    let fs = common::fs_type(work.path());
    println!(
        "backfill benchmark: {TICKERS} tickers x 1m x 2024-10, simulator latency {LATENCY_MS} ms, concurrency {CONCURRENCY}, output on {fs}; median of {repeat} runs [min..max]"
    );
    let stat = |f: &dyn Fn(&Run) -> f64| Stat::of(runs.iter().map(f).collect());
    let wall = stat(&|r| r.wall.as_secs_f64());
    println!("  wall time            {} s", wall.show(2));
    let first = &runs[0];
    println!(
        "  requests             {} (floor sum ceil(bars/50000) = {}; {:.3} x floor)",
        first.requests,
        first.library.floor,
        first.requests as f64 / first.library.floor as f64
    );
    let rate = stat(&|r| r.requests as f64 / r.busy.as_secs_f64());
    let share = stat(&|r| 100.0 * r.requests as f64 / r.busy.as_secs_f64() / bound);
    println!(
        "  request rate         {}/s while requests ran (first arrival to last answer) against the bound concurrency/latency = {bound:.0}/s: {} %",
        rate.show(1),
        share.show(1)
    );
    // The simulator's timer and its one thread add to the 50 ms: the bound
    // its answers as served allow, for comparison.
    let waited = stat(&|r| r.waited.as_secs_f64() * 1000.0);
    let served_share = stat(&|r| {
        let served_bound = CONCURRENCY as f64 / r.waited.as_secs_f64();
        100.0 * r.requests as f64 / r.busy.as_secs_f64() / served_bound
    });
    println!(
        "                       latency as served {} ms: {} % of the bound it allows",
        waited.show(2),
        served_share.show(1)
    );
    let end_to_end = stat(&|r| 100.0 * r.requests as f64 / r.wall.as_secs_f64() / bound);
    println!(
        "                       {} % end to end, process start and planning included",
        end_to_end.show(1)
    );
    println!(
        "  bars                 {} ({} bars/s)",
        first.bars,
        stat(&|r| r.bars as f64 / r.wall.as_secs_f64()).show(0)
    );
    let per_million = stat(&|r| r.usage.cpu() / (r.bars as f64 / 1e6));
    println!(
        "  CPU                  {} CPU-s per million bars (user {} s, sys {} s)",
        per_million.show(3),
        stat(&|r| r.usage.user).show(2),
        stat(&|r| r.usage.sys).show(2)
    );
    println!(
        "  peak RSS             {} MB",
        stat(&|r| r.usage.rss_mb).show(0)
    );
    println!(
        "  Parquet written      {} files, {:.1} MB",
        first.library.files,
        first.library.bytes as f64 / 1e6
    );
    println!(
        "  targets: >= 90 % of the bound, <= 0.5 CPU-s per million bars, <= 200 MB, <= 1.05 x the floor"
    );
    drop(work);
    common::removed_outputs(&out_root);
}

/// One measured run.
struct Run {
    wall: Duration,
    busy: Duration,
    /// The mean latency as the simulator served it.
    waited: Duration,
    requests: u64,
    bars: u64,
    usage: common::Usage,
    library: Library,
}

/// What a run left in its library.
struct Library {
    files: u64,
    bytes: u64,
    /// One request per 50 000 bars of a ticker, at least one per ticker.
    floor: u64,
}

fn library(root: &std::path::Path) -> Library {
    let store = finpipe::store::Store::open(root, finpipe::model::Basis::Unadjusted, "bench")
        .expect("library opens");
    let mut per_ticker = std::collections::BTreeMap::<String, u64>::new();
    let (mut files, mut bytes) = (0, 0);
    for file in store.scan(None).expect("scan") {
        *per_ticker.entry(file.ticker.to_string()).or_default() += file.rows as u64;
        files += 1;
        bytes += std::fs::metadata(&file.path).map_or(0, |m| m.len());
    }
    let floor = (0..TICKERS)
        .map(|i| {
            per_ticker
                .values()
                .nth(i)
                .map_or(1, |rows| rows.div_ceil(50_000).max(1))
        })
        .sum();
    Library {
        files,
        bytes,
        floor,
    }
}

/// The median of some runs' figure, with its range.
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Self {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "{:.*} [{:.*}..{:.*}]",
            decimals, self.median, decimals, self.min, decimals, self.max
        )
    }
}
