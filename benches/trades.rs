//! Benchmark: bars from trades. A synthetic `trades_v1` day (at least 20
//! million trades over 5 000 tickers, made deterministically by the
//! simulator, `finpipe::simulator::synthetic_trades`) into 1-second and
//! 1-minute bars: `finpipe backfill --from-trades --timeframes 1s,1m` for
//! that day, beside the same aggregation done by polars on the same file in
//! the same run (`benches/trades_polars.py`).
//!
//! Run with `cargo bench --bench trades`. The S3 server (s3s-fs, real SigV4)
//! runs inside this bench process and finpipe in a child process, so the
//! CPU-seconds and peak RSS printed are the finpipe run's alone (`wait4`,
//! `/proc/<pid>/status`). The day file is generated once and cached under
//! `<target>/bench-trades/`. Python: `$FINPIPE_TEST_PYTHON`, else
//! `<target>/pyenv/bin/python` (with polars); without it the polars line
//! says why. `TRADES_BENCH_TRADES` and `TRADES_BENCH_TICKERS` change the
//! day's size (defaults 20 000 000 and 5 000).
//! Prints figures; asserts nothing about speed (timed tests flake).

// A bench prints its figures; its helper modules' items are `pub` for it.
#![allow(
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

mod common;
#[allow(dead_code)] // the tests use more of it
#[path = "../tests/it/common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Usage, fs_type, run_measured};
use finpipe::simulator::synthetic_trades::{
    synthetic_ticker, trades_benchmark_day, write_synthetic_trades,
};
use finpipe::simulator::trades::trades_key;
use finpipe::trades::ConditionTable;

const NOW: &str = "2024-12-02T23:00:00Z";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The target directory: `$CARGO_TARGET_DIR`, else the crate's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

/// Writes (once; cached by size) the day's trades file; returns its path,
/// rows and compressed bytes.
fn generate(root: &Path, bucket: &str, tickers: usize, trades: u64) -> (PathBuf, u64, u64) {
    let day = trades_benchmark_day();
    let path = root.join(bucket).join(trades_key(day));
    let rows_file = root.join(format!("rows-{tickers}-{trades}.txt"));
    let cached = std::fs::read_to_string(&rows_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|_| path.exists());
    let rows = match cached {
        Some(rows) => rows,
        None => {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            let temp = path.with_extension("partial");
            let file = std::fs::File::create(&temp).expect("create");
            let gz = flate2::GzBuilder::new().mtime(0).write(
                std::io::BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::new(6),
            );
            let mut out = std::io::BufWriter::with_capacity(1 << 20, gz);
            let rows = write_synthetic_trades(day, tickers, trades, &mut out).expect("write");
            let gz = out.into_inner().map_err(|e| e.into_error()).expect("flush");
            use std::io::Write as _;
            gz.finish().expect("gzip").flush().expect("flush");
            std::fs::rename(&temp, &path).expect("rename");
            std::fs::write(&rows_file, rows.to_string()).expect("rows");
            rows
        }
    };
    let bytes = std::fs::metadata(&path).expect("metadata").len();
    (path, rows, bytes)
}

/// The condition rules the polars script applies: per code, whether it may
/// update high/low, open/close and volume in an intraday bar.
fn write_rules(path: &Path) {
    let table = ConditionTable::polygon_default();
    let rules: Vec<serde_json::Value> = (0u16..=255)
        .filter_map(|code| {
            let r = table.intraday(code)?;
            Some(serde_json::json!({
                "code": code, "high_low": r.high_low, "open_close": r.open_close, "volume": r.volume
            }))
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&rules).expect("json")).expect("rules");
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FINPIPE_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = target_dir().join("pyenv/bin/python");
    p.exists().then_some(p)
}

fn main() {
    let cache = target_dir().join("bench-trades");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let tickers = usize::try_from(env_number("TRADES_BENCH_TICKERS", 5_000)).unwrap_or(5_000);
    let trades = env_number("TRADES_BENCH_TRADES", 20_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = runtime.block_on(s3::start_s3(&cache));
    let generating = Instant::now();
    let (file, rows, gz_bytes) = generate(&cache, &server.bucket, tickers, trades);
    println!(
        "trades day ready in {:.1} s: {rows} trades, {tickers} tickers, {:.0} MB gz (cached in {})",
        generating.elapsed().as_secs_f64(),
        gz_bytes as f64 / 1e6,
        cache.display()
    );

    common::settle(&cache, "TRADES_BENCH_NOWAIT");
    let work = tempfile::tempdir_in(&cache).expect("work dir");
    let universe = work.path().join("universe.json");
    let names: Vec<String> = (0..tickers).map(synthetic_ticker).collect();
    std::fs::write(&universe, serde_json::to_vec(&names).expect("json")).expect("universe");
    let day = trades_benchmark_day().to_string();
    let data = work.path().join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpipe"));
    cmd.env_clear()
        .current_dir(work.path())
        .env("FINPIPE_NOW", NOW)
        .env("MASSIVE_API_KEY", "unused-no-rest-request")
        .env("MASSIVE_API_BASE_URL", "http://127.0.0.1:9")
        .env("MASSIVE_S3_ENDPOINT", &server.endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", &server.access_key)
        .env("MASSIVE_S3_SECRET_KEY", &server.secret_key)
        .arg("-q")
        .arg("--data-dir")
        .arg(&data)
        .arg("backfill")
        .arg(&universe)
        .args(["--timeframes", "1s,1m", "--from-trades"])
        .args(["--start", &day, "--end", &day]);
    seed_conditions(&data);
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let started = Instant::now();
    let (output, usage) = run_measured(cmd);
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backfill failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bars = stdout
        .split("bars_new=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    report_finpipe(rows, wall, &usage, &bars, fs_type(work.path()));

    let rules = work.path().join("rules.json");
    write_rules(&rules);
    match python() {
        None => println!(
            "  polars: skipped (set FINPIPE_TEST_PYTHON to a Python with polars, or make \
             target/pyenv)"
        ),
        Some(python) => {
            let mut cmd = Command::new(python);
            cmd.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/trades_polars.py"
            ))
            .arg(&file)
            .arg(&rules);
            let started = Instant::now();
            let (output, usage) = run_measured(cmd);
            let wall = started.elapsed().as_secs_f64();
            if output.status.success() {
                println!(
                    "  polars on the same file: wall {wall:.1} s ({:.2} M trades/s), CPU {:.1} s, peak RSS {:.0} MB; {}",
                    rows as f64 / wall / 1e6,
                    usage.cpu(),
                    usage.rss_mb,
                    String::from_utf8_lossy(&output.stdout).trim()
                );
            } else {
                println!(
                    "  polars failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
    runtime.block_on(async { drop(server) });
    drop(work);
    common::removed_outputs(&cache);
}

/// Pre-fills the new library's job table with the conditions (the built-in
/// table as the endpoint answers it), so the run sends no REST request: the
/// bench measures the file, not the API.
fn seed_conditions(data: &Path) {
    let db = data.join(".finpipe/finpipe.db");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("state dir");
    let mut table = finpipe::jobs::JobTable::open(&db).expect("job table");
    let body = finpipe::trades::conditions::default_conditions_json().to_string();
    // Stamped with the wall clock, which is what the cache's staleness reads
    // (not the run's `FINPIPE_NOW`).
    table
        .store_cached("conditions:stocks:trade", &body, wall_ms())
        .expect("cache the conditions");
    drop(table);
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn report_finpipe(rows: u64, wall: f64, usage: &Usage, bars: &str, fs: String) {
    println!("trades benchmark: finpipe backfill --from-trades --timeframes 1s,1m, output on {fs}");
    println!(
        "  finpipe: {rows} trades in wall {wall:.1} s ({:.2} M trades/s), CPU {:.1} s (user {:.1}, sys {:.1}), peak RSS {:.0} MB (target <= 200 MB), {bars} bars written",
        rows as f64 / wall / 1e6,
        usage.cpu(),
        usage.user,
        usage.sys,
        usage.rss_mb,
    );
}
