//! Benchmark: backfill 200 tickers × 1m × one month from the simulator with
//! 50 ms of injected latency at concurrency 16, and print what it cost.
//!
//! Run with `cargo bench --bench backfill`. The simulator runs inside this
//! bench process and finpipe in a child process, so the CPU-seconds and peak
//! RSS printed are the measured finpipe run's alone (`wait4`), and the
//! simulator's request log gives the request rate as the server saw it.
//! Prints figures; asserts nothing about speed (timed tests flake).

mod common;

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
    // BACKFILL_BENCH_DIR puts the work directory elsewhere (default: the
    // system's temporary directory).
    let work = match std::env::var_os("BACKFILL_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
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
    let before = sim.requests().len();
    assert!(
        warm.status.success(),
        "warm-up failed: {}",
        String::from_utf8_lossy(&warm.stderr)
    );

    let started = Instant::now();
    let (output, usage) = common::run_measured(backfill("data"));
    let cpu = usage.cpu();
    let wall = started.elapsed();
    // The server's view: from the first request's arrival to the last one's
    // answer (arrival + the injected latency; sending the bytes adds a little).
    let log = sim.requests();
    let measured = &log[before..];
    let busy = match (measured.first(), measured.last()) {
        (Some(first), Some(last)) => last.at + Duration::from_millis(LATENCY_MS) - first.at,
        _ => wall,
    };
    runtime.block_on(sim.stop());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backfill failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let requests = field(&stdout, "requests");
    let bars = field(&stdout, "bars_new");
    let store = finpipe::store::Store::open(
        &work.path().join("data"),
        finpipe::model::Basis::Unadjusted,
        "bench",
    )
    .expect("library opens");
    let mut per_ticker = std::collections::BTreeMap::<String, u64>::new();
    let (mut files, mut bytes) = (0, 0);
    for file in store.scan(None).expect("scan") {
        *per_ticker.entry(file.ticker.to_string()).or_default() += file.rows as u64;
        files += 1;
        bytes += std::fs::metadata(&file.path).map_or(0, |m| m.len());
    }
    // The floor: one request per 50 000 bars of a ticker, at least one per ticker.
    let floor: u64 = (0..TICKERS)
        .map(|i| {
            per_ticker
                .values()
                .nth(i)
                .map_or(1, |rows| rows.div_ceil(50_000).max(1))
        })
        .sum();
    let rate = requests as f64 / busy.as_secs_f64();
    let end_to_end = requests as f64 / wall.as_secs_f64();
    let bound = CONCURRENCY as f64 / Duration::from_millis(LATENCY_MS).as_secs_f64();
    let fs = common::fs_type(work.path());
    println!(
        "backfill benchmark: {TICKERS} tickers x 1m x 2024-10, simulator latency {LATENCY_MS} ms, concurrency {CONCURRENCY}, output on {fs}"
    );
    println!("  wall time            {:.2} s", wall.as_secs_f64());
    println!(
        "  requests             {requests} (floor sum ceil(bars/50000) = {floor}; {:.3} x floor)",
        requests as f64 / floor as f64
    );
    println!(
        "  request rate         {rate:.1}/s while requests ran ({:.2} s, first arrival to last answer) against the bound concurrency/latency = {bound:.0}/s ({:.0} %)",
        busy.as_secs_f64(),
        100.0 * rate / bound
    );
    println!(
        "                       {end_to_end:.1}/s end to end, process start and planning included ({:.0} %)",
        100.0 * end_to_end / bound
    );
    println!(
        "  bars                 {bars} ({:.0} bars/s)",
        bars as f64 / wall.as_secs_f64()
    );
    println!(
        "  CPU                  {cpu:.2} s (user {:.2}, sys {:.2}) = {:.3} CPU-s per million bars",
        usage.user,
        usage.sys,
        cpu / (bars as f64 / 1e6)
    );
    println!("  peak RSS             {:.0} MB", usage.rss_mb);
    println!(
        "  Parquet written      {files} files, {:.1} MB",
        bytes as f64 / 1e6
    );
}
