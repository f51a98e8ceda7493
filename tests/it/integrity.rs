//! The library and the job table agree: a deleted partition file is found
//! (`verify`: `lost`) and fetched again (by `verify --fix` or by the next
//! run, which stats the files of what it skips as covered); a deleted job
//! table costs no request, because the files record what they cover.

use crate::common::{Workspace, aggregate_requests, simulator_with};

const FIVE: [&str; 5] = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"];

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// 2024-12-02 20:30 ET: Monday's session is over.
const MONDAY_EVENING: Option<&str> = Some("2024-12-03T01:30:00Z");
/// 2024-12-03 20:30 ET: Tuesday's too.
const TUESDAY_EVENING: Option<&str> = Some("2024-12-04T01:30:00Z");

/// A workspace holding a backfill of FIVE, 1m and 1d, over 45 days ending on
/// Monday 2024-12-02; the simulator's market knows Tuesday too.
async fn backfilled() -> (finpipe::simulator::Simulator, Workspace, String) {
    let sim = simulator_with(|c| c.today = day("2024-12-03")).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &FIVE);
    let run = ws.run_at(MONDAY_EVENING, &backfill_args(&universe)).await;
    assert_eq!(run.code, 0, "{run:?}");
    (sim, ws, universe)
}

fn backfill_args(universe: &str) -> [&str; 6] {
    [
        "backfill",
        universe,
        "--timeframes",
        "1m,1d",
        "--start",
        "2024-10-19",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_partition_is_lost_for_verify_and_fix_restores_it() {
    let (sim, ws, _) = backfilled().await;
    let complete = ws.library("data");
    let gone = ws.join("data/MSFT/1m/2024-10.parquet");
    std::fs::remove_file(&gone).unwrap();

    let run = ws.run_at(MONDAY_EVENING, &["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("MSFT 1m 2024-10: lost: covered 2024-10-19..2024-10-31")
            && run.stdout.contains("MSFT/1m/2024-10.parquet is missing"),
        "{}",
        run.stdout
    );
    let json = ws.run_at(MONDAY_EVENING, &["verify", "--json"]).await;
    assert_eq!(json.code, 1, "{json:?}");
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "lost");
    assert_eq!(problems[0]["ticker"], "MSFT");
    assert_eq!(problems[0]["period"], "2024-10");

    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(MONDAY_EVENING, &["verify", "--fix"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": 0 problems"), "{}", run.stdout);
    // The same summary as a backfill's.
    assert!(run.stdout.contains("planned 1 REST job"), "{}", run.stdout);
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("/MSFT/range/1/minute/2024-10-19/2024-10-31"),
        "{asked:?}"
    );
    assert_eq!(ws.library("data"), complete, "row for row as before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_update_refetches_exactly_a_deleted_partition() {
    let (sim, ws, _) = backfilled().await;
    let complete = ws.library("data");
    std::fs::remove_file(ws.join("data/NVDA/1m/2024-11.parquet")).unwrap();

    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(MONDAY_EVENING, &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("NVDA 1m 2024-11: covered (2024-11-01..2024-11-30)"),
        "says what it refetches: {}",
        run.stderr
    );
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("/NVDA/range/1/minute/2024-11-01/2024-11-30"),
        "{asked:?}"
    );
    assert_eq!(ws.library("data"), complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_job_table_costs_no_request() {
    let (sim, ws, universe) = backfilled().await;
    let complete = ws.library("data");
    remove_job_table(&ws);

    // The same backfill: every series known again from its files.
    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(MONDAY_EVENING, &backfill_args(&universe)).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("the job table knew nothing of 10 series"),
        "{}",
        run.stderr
    );
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(ws.library("data"), complete);

    // Lost again, then a new day: update asks for Tuesday only.
    remove_job_table(&ws);
    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(TUESDAY_EVENING, &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|r| r.contains("2024-12-03/2024-12-03")
            || r.contains("/grouped/locale/us/market/stocks/2024-12-03")),
        "only Tuesday: {asked:?}"
    );
    let minutes = asked.iter().filter(|r| r.contains("/1/minute/")).count();
    assert_eq!(minutes, FIVE.len(), "{asked:?}");

    // reindex reports every series and what it covers.
    remove_job_table(&ws);
    let run = ws.run_at(TUESDAY_EVENING, &["reindex"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for ticker in FIVE {
        for tf in ["1m", "1d"] {
            let line = format!("{ticker} {tf}: ");
            let found = run
                .stdout
                .lines()
                .find(|l| l.starts_with(&line))
                .unwrap_or_else(|| panic!("{line} missing: {}", run.stdout));
            assert!(found.contains("covered 2024-10-19..2024-12-03"), "{found}");
        }
    }
    assert!(
        run.stdout.contains("reindex: 10 series with files"),
        "{}",
        run.stdout
    );
    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(TUESDAY_EVENING, &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(aggregate_requests(&sim).len(), before, "nothing new");
}

/// Removes the job table and its WAL files, as a user losing it would.
fn remove_job_table(ws: &Workspace) {
    let mut removed = 0;
    for dir in [ws.join("data"), ws.join("data/.finpipe")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("finpipe.db") && !name.ends_with(".lock") {
                std::fs::remove_file(&path).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed > 0, "no job table found to remove");
}
