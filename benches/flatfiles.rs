//! Benchmark: flat files → per-ticker Parquet. One realistic synthetic day
//! (11 003 tickers, about 3.5 M minute rows, skewed bars per ticker, gzip
//! level 6, made deterministically by the simulator), then a month (the 21
//! trading days of January 2024) into monthly partitions.
//!
//! Run with `cargo bench --bench flatfiles`. The S3 server (s3s-fs, real
//! SigV4) runs inside this bench process and finpipe in a child process, so
//! the CPU-seconds and peak RSS printed are the finpipe run's alone (`wait4`).
//! The generated day files are cached under `target/bench-flatfiles/`;
//! `FLATFILES_BENCH=day` runs the day only; `FLATFILES_BENCH_DIR` puts the
//! outputs in another directory (default: beside the cache). A run started less than five
//! minutes after a bench removed its outputs first waits (see
//! [`common::settle`]).
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

use chrono::NaiveDate;
use common::{Usage, fs_type, run_measured};
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, day_key};
use finpipe::simulator::synthetic::{
    benchmark_day, benchmark_month, benchmark_world, write_benchmark_day,
};

const NOW: &str = "2024-12-02T23:00:00Z";

/// Writes (once; cached) the day files of `days` below `bucket_dir`.
fn generate(root: &Path, bucket: &str, days: &[NaiveDate]) -> (u64, u64) {
    let market = benchmark_world();
    let (mut bytes, mut files) = (0, 0);
    for &day in days {
        let key = day_key(FlatDataset::UsStocksSip, FlatKind::MinuteAggs, day);
        let path = root.join(bucket).join(&key);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            let temp = path.with_extension("partial");
            let file = std::fs::File::create(&temp).expect("create");
            write_benchmark_day(&market, day, std::io::BufWriter::new(file)).expect("write day");
            std::fs::rename(&temp, &path).expect("rename");
        }
        remember_etag(root, bucket, &key, &path);
        bytes += std::fs::metadata(&path).expect("metadata").len();
        files += 1;
    }
    (files, bytes)
}

/// Stores the object's ETag where s3s-fs 0.14 keeps what it learnt of an
/// object uploaded through it (`<root>/.bucket-<b64>.object-<b64>.internal.json`).
/// Without it, s3s-fs computes the MD5 of the whole file on every GET and, for
/// every object listed, on every LIST (883 MB for the month's listing), in
/// this process on the same two cores: work no S3 service does on the
/// client's machine. Only the bench does this; the tests rewrite objects and
/// need their ETags to change.
fn remember_etag(root: &Path, bucket: &str, key: &str, path: &Path) {
    use base64::Engine as _;
    use md5::Digest as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let info = root.join(format!(
        ".bucket-{}.object-{}.internal.json",
        b64(bucket),
        b64(key)
    ));
    if info.exists() {
        return;
    }
    let digest = md5::Md5::digest(std::fs::read(path).expect("read the day file"));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&info, serde_json::json!({ "e_tag": hex }).to_string()).expect("write the ETag");
}

struct Figures {
    wall: f64,
    usage: Usage,
    rows: u64,
    /// Parquet files written and their bytes.
    files: (u64, u64),
}

/// The Parquet files below `dir` and their total size.
fn parquet_files(dir: &Path) -> (u64, u64) {
    let (mut count, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                count += 1;
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (count, bytes)
}

/// Where a run writes its library: a directory of the work dir, or an
/// `s3://` library on an S3 server in another process (its CPU and memory
/// are not counted).
enum Library<'a> {
    Local,
    S3 { endpoint: &'a str, bucket: &'a str },
}

/// One backfill into a fresh library and job table named after `tag`.
fn backfill(
    server: &s3::S3Server,
    work: &Path,
    universe: &Path,
    (from, to): (&str, &str),
    tag: &str,
) -> Figures {
    backfill_into(server, work, universe, (from, to), tag, &Library::Local)
}

fn backfill_into(
    server: &s3::S3Server,
    work: &Path,
    universe: &Path,
    (from, to): (&str, &str),
    tag: &str,
    library: &Library<'_>,
) -> Figures {
    let data = match library {
        Library::Local => work.join(format!("data-{tag}")),
        Library::S3 { bucket, .. } => PathBuf::from(format!("s3://{bucket}/{tag}")),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpipe"));
    cmd.env_clear();
    if let Library::S3 { endpoint, .. } = library {
        cmd.env("FINPIPE_S3_ENDPOINT", endpoint)
            .env("FINPIPE_S3_ACCESS_KEY_ID", "testing")
            .env("FINPIPE_S3_SECRET_ACCESS_KEY", "testing-secret-value")
            .env("FINPIPE_SCRATCH", work.join(format!("scratch-{tag}")));
    }
    cmd.current_dir(work)
        .env("FINPIPE_NOW", NOW)
        .env("MASSIVE_API_KEY", "unused-no-rest-request")
        .env("MASSIVE_API_BASE_URL", "http://127.0.0.1:9")
        .env("MASSIVE_S3_ENDPOINT", &server.endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", &server.access_key)
        .env("MASSIVE_S3_SECRET_KEY", &server.secret_key)
        .arg("-q")
        .arg("--data-dir")
        .arg(&data)
        .arg("--db")
        .arg(work.join(format!("jobs-{tag}.db")))
        .arg("backfill")
        .arg(universe)
        .args(["--timeframes", "1m", "--start", from, "--end", to])
        .args(["--source", "flatfiles"]);
    // Earlier runs' files are written back first, so that their writeback
    // does not compete with this run (a nightly run starts from a quiet disk).
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
    let rows = stdout
        .split("bars_new=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let files = parquet_files(&data);
    Figures {
        wall,
        usage,
        rows,
        files,
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

    let day = benchmark_day();
    let month = benchmark_month();
    let generating = Instant::now();
    let (_, day_bytes) = generate(&cache, &server.bucket, &[day]);
    let (month_files, month_bytes) = generate(&cache, &server.bucket, &month);
    println!(
        "day files ready in {:.1} s (cached in {})",
        generating.elapsed().as_secs_f64(),
        cache.display()
    );

    // FLATFILES_BENCH_DIR puts the outputs elsewhere (another volume, tmpfs).
    let out_root =
        std::env::var_os("FLATFILES_BENCH_DIR").map_or_else(|| cache.clone(), PathBuf::from);
    common::settle(&out_root, "FLATFILES_BENCH_NOWAIT");
    let work = tempfile::tempdir_in(&out_root).expect("work dir");
    let universe = work.path().join("universe.json");
    let market = benchmark_world();
    let names: Vec<&str> = market
        .reference()
        .tickers()
        .iter()
        .map(|t| t.ticker.as_str())
        .collect();
    std::fs::write(&universe, serde_json::to_vec(&names).expect("json")).expect("universe");

    // The machine is a VM whose speed varies run to run: the day is run
    // FLATFILES_BENCH_REPEAT times (default 3), each into a new library, and
    // the median run (by wall time) is reported beside the fastest and slowest.
    let repeat = std::env::var("FLATFILES_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let day_text = day.to_string();
    let mut days: Vec<Figures> = (0..repeat)
        .map(|i| {
            let tag = format!("day-{i}");
            backfill(
                &server,
                work.path(),
                &universe,
                (&day_text, &day_text),
                &tag,
            )
        })
        .collect();
    // The same day into a library on S3 (FLATFILES_BENCH_S3 or
    // FINPIPE_TEST_S3: an S3 server in another process, e.g. moto), beside
    // the local library: finpipe's own CPU-seconds and peak RSS.
    let s3_endpoint = std::env::var("FLATFILES_BENCH_S3")
        .or_else(|_| std::env::var("FINPIPE_TEST_S3"))
        .ok()
        .map(|e| e.trim_end_matches('/').to_owned());
    let remote = s3_endpoint.as_deref().map(|endpoint| {
        let bucket = s3::create_bucket(endpoint);
        let library = Library::S3 {
            endpoint,
            bucket: &bucket,
        };
        backfill_into(
            &server,
            work.path(),
            &universe,
            (&day_text, &day_text),
            "day-s3",
            &library,
        )
    });
    days.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let walls: Vec<String> = days.iter().map(|f| format!("{:.2}", f.wall)).collect();
    let one = days.swap_remove(days.len() / 2);
    let first = month.first().expect("a month").to_string();
    let last = month.last().expect("a month").to_string();
    // FLATFILES_BENCH=day skips the month (for profiling).
    let day_only = std::env::var("FLATFILES_BENCH").is_ok_and(|v| v == "day");
    let many = if day_only {
        Figures {
            wall: f64::NAN,
            usage: Usage {
                user: f64::NAN,
                sys: f64::NAN,
                rss_mb: f64::NAN,
            },
            rows: 0,
            files: (0, 0),
        }
    } else {
        backfill(&server, work.path(), &universe, (&first, &last), "month")
    };
    runtime.block_on(async { drop(server) });

    println!(
        "flat-file benchmark: {} tickers, us_stocks_sip minute aggregates, output on {}",
        names.len(),
        fs_type(work.path())
    );
    println!(
        "  day   {day}: {:.1} MB gz, {} rows -> per-ticker Parquet ({} files, {:.1} MB): wall {:.2} s, CPU {:.2} s (user {:.2}, sys {:.2}), peak RSS {:.0} MB (median of {repeat} runs by wall; walls {})",
        day_bytes as f64 / 1e6,
        one.rows,
        one.files.0,
        one.files.1 as f64 / 1e6,
        one.wall,
        one.usage.cpu(),
        one.usage.user,
        one.usage.sys,
        one.usage.rss_mb,
        walls.join(", ")
    );
    println!(
        "  month {first}..{last}: {month_files} files, {:.0} MB gz, {} rows -> monthly partitions ({} files, {:.0} MB): wall {:.1} s ({:.1} x the day), CPU {:.1} s (user {:.1}, sys {:.1}), peak RSS {:.0} MB",
        month_bytes as f64 / 1e6,
        many.rows,
        many.files.0,
        many.files.1 as f64 / 1e6,
        many.wall,
        many.wall / one.wall,
        many.usage.cpu(),
        many.usage.user,
        many.usage.sys,
        many.usage.rss_mb
    );
    match &remote {
        Some(s3) => println!(
            "  day into an s3:// library: {} rows: wall {:.2} s (the S3 server's pace, in another process), finpipe's CPU {:.2} s (user {:.2}, sys {:.2}) vs {:.2} s into the local library, peak RSS {:.0} MB vs {:.0} MB",
            s3.rows,
            s3.wall,
            s3.usage.cpu(),
            s3.usage.user,
            s3.usage.sys,
            one.usage.cpu(),
            s3.usage.rss_mb,
            one.usage.rss_mb
        ),
        None => println!(
            "  day into an s3:// library: not measured (set FLATFILES_BENCH_S3 or FINPIPE_TEST_S3 to an S3 server, e.g. moto)"
        ),
    }
    println!(
        "  targets: day <= 2.3 s wall, <= 4 CPU-s, <= 150 MB; month <= 25 x the day, same memory bound"
    );
    let removed = Instant::now();
    drop(work);
    common::removed_outputs(&out_root);
    println!(
        "  (outputs removed in {:.1} s)",
        removed.elapsed().as_secs_f64()
    );
}
