//! Benchmark: claims + completions per second on the job table, with 1, 2,
//! 4 and 8 concurrent claimers (each a handle of its own, as separate
//! runners have), on SQLite (a file on this disk) and on PostgreSQL (a
//! database of its own on the server named by `FINPIPE_TEST_POSTGRES`, or
//! `CLAIMS_BENCH_POSTGRES`). Each claimer claims a job, completes it with a
//! day of coverage, and claims the next, until the table is drained.
//!
//! Run with `cargo bench --bench claims`. Prints figures; asserts nothing
//! about speed (timed tests flake).

// A bench prints its figures; its helper modules' items are `pub` for it.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

#[path = "../src/jobs/postgres/testdb.rs"]
mod testdb;

use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use finpipe::jobs::{Closing, CoverageGrant, DbLocation, JobKind, JobTable, NewJob};
use finpipe::model::{Basis, Ticker, Timeframe};
use finpipe::ranges::DateRange;

/// Jobs drained per measurement.
const JOBS: usize = 2_000;
const CLAIMERS: [usize; 4] = [1, 2, 4, 8];

fn jobs() -> Vec<NewJob> {
    let day = NaiveDate::from_ymd_opt(2024, 11, 1).expect("a date");
    (0..JOBS)
        .map(|i| NewJob {
            kind: JobKind::Rest,
            ticker: Ticker::new(format!("T{i:05}")).expect("a ticker"),
            timeframe: Timeframe::MINUTE,
            derived: Vec::new(),
            basis: Basis::Unadjusted,
            range: DateRange::new(day, day).expect("a range"),
        })
        .collect()
}

/// Plans the jobs into a new table at `location`, then drains it with
/// `claimers` threads; claims + completions per second.
fn drain(location: &DbLocation, claimers: usize) -> f64 {
    let mut table = JobTable::open_at(location).expect("open the table");
    table.insert(&jobs(), 0).expect("plan");
    drop(table);
    let start = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..claimers)
            .map(|c| {
                scope.spawn(move || {
                    let mut table = JobTable::open_at(location).expect("open a handle");
                    let owner = format!("bench:{c}");
                    let mut done = 0;
                    while let Some(job) = table.claim(&owner, 1, 300_000).expect("claim") {
                        let closing = Closing {
                            progress_ts: Some(1),
                            rows: 390,
                            requests: 1,
                            coverage: Some(CoverageGrant {
                                tickers: vec![job.ticker.clone()],
                                timeframes: vec![job.timeframe],
                                basis: job.basis,
                                range: job.range,
                            }),
                        };
                        assert!(
                            table
                                .complete_with(job.id, &owner, &closing, 2)
                                .expect("complete")
                        );
                        done += 1;
                    }
                    table.close().expect("close");
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a claimer"))
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(done, JOBS, "every job claimed and completed once");
    done as f64 / elapsed
}

fn report(name: &str, figures: &[(usize, f64)]) {
    let line: Vec<String> = figures
        .iter()
        .map(|(n, rate)| {
            format!(
                "{n} claimer{}: {rate:>7.0}/s",
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    println!("  {name:<10} {}", line.join("   "));
}

fn main() {
    println!(
        "claims + completions per second ({JOBS} jobs, each completed with a day of coverage)"
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite: Vec<(usize, f64)> = CLAIMERS
        .iter()
        .map(|&n| {
            let path = dir.path().join(format!("claims-{n}.db"));
            (n, drain(&DbLocation::Sqlite(path), n))
        })
        .collect();
    report("SQLite", &sqlite);

    let url = std::env::var("CLAIMS_BENCH_POSTGRES")
        .or_else(|_| std::env::var(testdb::URL_VAR))
        .ok();
    let Some(base) = url else {
        println!(
            "  PostgreSQL: not measured ({} is not set; see .ci/run for how to start it)",
            testdb::URL_VAR
        );
        return;
    };
    let postgres: Vec<(usize, f64)> = CLAIMERS
        .iter()
        .map(|&n| {
            let db = testdb::TempDatabase::new(&base);
            let location = DbLocation::parse(Path::new(&db.url)).expect("a PostgreSQL URL");
            (n, drain(&location, n))
        })
        .collect();
    report("PostgreSQL", &postgres);
}
