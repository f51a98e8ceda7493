//! Benchmark: flat files → per-ticker Parquet. One realistic synthetic day
//! (11 003 tickers, about 3.5 M minute rows, skewed bars per ticker, gzip
//! level 6, made deterministically by the simulator), then a month (the 21
//! trading days of January 2024) into monthly partitions.
//!
//! Run with `cargo bench --bench flatfiles`. The S3 server (s3s-fs, real
//! SigV4) runs inside this bench process and finpipe in a child process, so
//! the CPU-seconds and peak RSS printed are the finpipe run's alone (`wait4`).
//! The generated day files are cached under `target/bench-flatfiles/`;
//! `FLATFILES_BENCH=day` runs the day only.
//! Prints figures; asserts nothing about speed (timed tests flake).

mod common;
#[allow(dead_code)] // the tests use more of it
#[path = "../tests/common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::NaiveDate;
use common::{fs_type, run_measured};
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, day_key};
use finpipe::simulator::synthetic::{
    benchmark_day, benchmark_month, benchmark_world, write_benchmark_day,
};

const NOW: &str = "2024-12-02T23:00:00Z";

/// Writes (once; cached) the day files of `days` below `bucket_dir`.
fn generate(bucket_dir: &Path, days: &[NaiveDate]) -> (u64, u64) {
    let market = benchmark_world();
    let (mut bytes, mut files) = (0, 0);
    for &day in days {
        let path = bucket_dir.join(day_key(FlatDataset::UsStocksSip, FlatKind::MinuteAggs, day));
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            let temp = path.with_extension("partial");
            let file = std::fs::File::create(&temp).expect("create");
            write_benchmark_day(&market, day, std::io::BufWriter::new(file)).expect("write day");
            std::fs::rename(&temp, &path).expect("rename");
        }
        bytes += std::fs::metadata(&path).expect("metadata").len();
        files += 1;
    }
    (files, bytes)
}

struct Figures {
    wall: f64,
    cpu: f64,
    rss: f64,
    rows: u64,
}

fn backfill(server: &s3::S3Server, work: &Path, universe: &Path, from: &str, to: &str) -> Figures {
    let data = work.join(format!("data-{from}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpipe"));
    cmd.env_clear()
        .current_dir(work)
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
        .arg(universe)
        .args(["--timeframes", "1m", "--start", from, "--end", to])
        .args(["--source", "flatfiles"]);
    let started = Instant::now();
    let (output, cpu, rss) = run_measured(cmd);
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backfill failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = stdout
        .split("bars_new=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Figures {
        wall,
        cpu,
        rss,
        rows,
    }
}

fn main() {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-flatfiles");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = runtime.block_on(s3::start_s3(&cache));
    let bucket = cache.join(&server.bucket);

    let day = benchmark_day();
    let month = benchmark_month();
    let generating = Instant::now();
    let (_, day_bytes) = generate(&bucket, &[day]);
    let (month_files, month_bytes) = generate(&bucket, &month);
    println!(
        "day files ready in {:.1} s (cached in {})",
        generating.elapsed().as_secs_f64(),
        cache.display()
    );

    let work = tempfile::tempdir_in(&cache).expect("work dir");
    let universe = work.path().join("universe.json");
    let market = benchmark_world();
    let names: Vec<&str> = market
        .reference()
        .tickers()
        .iter()
        .map(|t| t.ticker.as_str())
        .collect();
    std::fs::write(&universe, serde_json::to_vec(&names).expect("json")).expect("universe");

    let one = backfill(
        &server,
        work.path(),
        &universe,
        &day.to_string(),
        &day.to_string(),
    );
    let first = month.first().expect("a month").to_string();
    let last = month.last().expect("a month").to_string();
    // FLATFILES_BENCH=day skips the month (for profiling).
    let day_only = std::env::var("FLATFILES_BENCH").is_ok_and(|v| v == "day");
    let many = if day_only {
        Figures {
            wall: f64::NAN,
            cpu: f64::NAN,
            rss: f64::NAN,
            rows: 0,
        }
    } else {
        backfill(&server, work.path(), &universe, &first, &last)
    };
    runtime.block_on(async { drop(server) });

    println!(
        "flat-file benchmark: {} tickers, us_stocks_sip minute aggregates, output on {}",
        names.len(),
        fs_type(work.path())
    );
    println!(
        "  day   {day}: {:.1} MB gz, {} rows -> per-ticker Parquet: wall {:.2} s, CPU {:.2} s, peak RSS {:.0} MB",
        day_bytes as f64 / 1e6,
        one.rows,
        one.wall,
        one.cpu,
        one.rss
    );
    println!(
        "  month {first}..{last}: {month_files} files, {:.0} MB gz, {} rows -> monthly partitions: wall {:.1} s ({:.1} x the day), CPU {:.1} s, peak RSS {:.0} MB",
        month_bytes as f64 / 1e6,
        many.rows,
        many.wall,
        many.wall / one.wall,
        many.cpu,
        many.rss
    );
    println!(
        "  targets: day <= 2.3 s wall, <= 4 CPU-s, <= 150 MB; month <= 25 x the day, same memory bound"
    );
}
