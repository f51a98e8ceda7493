//! `finpipe verify`: silent on a complete library across NYSE holidays, an
//! early close and a DST change (stocks, crypto, forex, an index); finds a
//! hole made on purpose, exits 1, and `--fix` fetches exactly that day.

use finpipe::model::{AssetClass, Basis, Ticker, Timeframe};
use finpipe::store::{Source, Store};

use crate::common::{Workspace, aggregate_requests, simulator};

/// Removes AAPL's 1m bars of `day` (in 2024-11) from its file; returns the
/// bars the file held before.
fn remove_day(ws: &Workspace, day: &str) -> Vec<finpipe::model::Bar> {
    let store = Store::open(&ws.join("data"), Basis::Unadjusted, "test").unwrap();
    let aapl = Ticker::new("AAPL").unwrap();
    let hole = day.parse().unwrap();
    let bars = store
        .read_period(&aapl, Timeframe::MINUTE, "2024-11")
        .unwrap();
    let kept: Vec<_> = bars
        .iter()
        .copied()
        .filter(|b| AssetClass::Stocks.date_of(b.timestamp) != hole)
        .collect();
    assert!(kept.len() < bars.len(), "{day} had bars");
    store
        .replace_period(&aapl, Timeframe::MINUTE, "2024-11", &kept, Source::Rest)
        .unwrap();
    bars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_hole_and_fix_fills_it() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "X:BTCUSD", "C:EURUSD", "I:SPX"]);
    // DST ends 2024-11-03; Thanksgiving 11-28 closed, 11-29 an early close.
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m,5m,1d",
            "--start",
            "2024-10-28",
            "--end",
            "2024-11-30",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let complete = ws.library("data");

    let run = ws.run(&["verify"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("12 series"), "{}", run.stdout);
    assert!(run.stdout.contains(": 0 problems"), "{}", run.stdout);

    // A hole on purpose: AAPL's 1m bars of 2024-11-12 removed from its file.
    remove_day(&ws, "2024-11-12");

    let run = ws.run(&["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("AAPL 1m: lost: no bars on 2024-11-12, a trading day, though the job table calls them covered"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": 1 problem"), "{}", run.stdout);
    let json = ws
        .run(&["verify", "AAPL", "--timeframe", "1m", "--json"])
        .await;
    assert_eq!(json.code, 1, "{json:?}");
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["series"], 1);
    assert_eq!(report["problems"][0]["kind"], "lost");
    assert_eq!(report["problems"][0]["from"], "2024-11-12");

    let before = aggregate_requests(&sim).len();
    let run = ws.run(&["verify", "--fix"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("/AAPL/range/1/minute/2024-11-12/2024-11-12"),
        "{asked:?}"
    );
    assert_eq!(ws.library("data"), complete, "the library is whole again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_refetches_a_day_whose_own_job_is_done() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL"]);
    // The middle day first, alone: its job's key is 2024-11-12..2024-11-12.
    for (start, end) in [("2024-11-12", "2024-11-12"), ("2024-11-11", "2024-11-13")] {
        let run = ws
            .run(&[
                "backfill",
                &universe,
                "--timeframes",
                "1m",
                "--start",
                start,
                "--end",
                end,
            ])
            .await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let bars = remove_day(&ws, "2024-11-12");
    let before = aggregate_requests(&sim).len();
    let run = ws.run(&["verify", "--fix"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("/2024-11-12/2024-11-12"), "{asked:?}");
    let store = Store::open(&ws.join("data"), Basis::Unadjusted, "test").unwrap();
    let aapl = Ticker::new("AAPL").unwrap();
    assert_eq!(
        store
            .read_period(&aapl, Timeframe::MINUTE, "2024-11")
            .unwrap(),
        bars
    );
}
