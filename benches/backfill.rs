//! Benchmark: backfill 200 tickers × 1m × one month from the simulator with
//! 50 ms of injected latency at concurrency 16, and print what it cost.
//!
//! Run with `cargo bench --bench backfill`. The simulator runs in a process of
//! its own, so the CPU-seconds and peak RSS printed are finpipe's alone
//! (`getrusage(RUSAGE_CHILDREN)` after waiting for the finpipe child only).
//! Prints figures; asserts nothing about speed (timed tests flake).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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

/// User + system CPU seconds and peak RSS (MB) of waited-for children.
fn children_usage() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

fn field(text: &str, name: &str) -> u64 {
    text.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut sim = finpipe()
        .args([
            "simulator",
            "--port",
            "0",
            "--today",
            "2024-12-02",
            "--latency",
            &format!("{LATENCY_MS}ms"),
            "--cache-mb",
            "1024",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("simulator starts");
    // Keep reading the simulator's stdout open until the end: closing it would
    // make its next line fail with a broken pipe.
    let mut sim_out = BufReader::new(sim.stdout.take().expect("stdout"));
    let mut first = String::new();
    sim_out
        .read_line(&mut first)
        .expect("simulator prints its URL");
    let url = first.trim().rsplit(' ').next().expect("URL").to_owned();
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
    let (cpu_before, _) = children_usage();

    let started = Instant::now();
    let output = backfill("data").output().expect("backfill runs");
    let wall = started.elapsed();
    let (cpu_after, peak_rss_mb) = children_usage();
    let _ = sim.kill();
    let _ = sim.wait();
    drop(sim_out);
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
    for file in store.scan(None).expect("scan") {
        *per_ticker.entry(file.ticker.to_string()).or_default() += file.rows as u64;
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
    let cpu = cpu_after - cpu_before;
    let rate = requests as f64 / wall.as_secs_f64();
    let bound = CONCURRENCY as f64 / Duration::from_millis(LATENCY_MS).as_secs_f64();
    let fs = Command::new("df")
        .args(["--output=fstype", work.path().to_str().unwrap_or(".")])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().nth(1).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned());
    println!(
        "backfill benchmark: {TICKERS} tickers x 1m x 2024-10, simulator latency {LATENCY_MS} ms, concurrency {CONCURRENCY}, output on {fs}"
    );
    println!("  wall time            {:.2} s", wall.as_secs_f64());
    println!(
        "  requests             {requests} (floor sum ceil(bars/50000) = {floor}; {:.3} x floor)",
        requests as f64 / floor as f64
    );
    println!(
        "  request rate         {rate:.1}/s against the bound concurrency/latency = {bound:.0}/s ({:.0} %)",
        100.0 * rate / bound
    );
    println!(
        "  bars                 {bars} ({:.0} bars/s)",
        bars as f64 / wall.as_secs_f64()
    );
    println!(
        "  CPU (user+sys)       {cpu:.2} s = {:.3} CPU-s per million bars",
        cpu / (bars as f64 / 1e6)
    );
    println!("  peak RSS             {peak_rss_mb:.0} MB");
}
