//! Bars from trades through the engine (`--from-trades`, second and activity
//! bars), from the simulator's `trades_v1` day files on a real S3 server on
//! loopback: minute bars equal the simulator's minute aggregates (REST and
//! `minute_aggs_v1`) in every column across a DST change; second bars equal
//! its REST second aggregates; activity bars hold their thresholds, stay in
//! one session and are exactly the aggregation of the file; a truncated
//! trades file fails its job with the key and writes nothing; a re-run
//! plans nothing and so downloads nothing.

use std::collections::BTreeMap;
use std::path::Path;

use finpipe::model::Bar;
use finpipe::simulator::Simulator;
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, populate};
use finpipe::simulator::trades::{trades_key, write_trades_gz};
use finpipe::trades::{BarSpec, ConditionTable, aggregate_gzip, unique_stamps};
use tempfile::TempDir;

use crate::common::flatfiles::d;
use crate::common::s3::{S3Server, start_s3};
use crate::common::{Workspace, sim_bars, simulator, temporaries};

const TICKER: &str = "KO";
/// 2024-11-01 (EDT) to 2024-11-05 (EST): the DST change of November 3.
const START: &str = "2024-11-01";
const END: &str = "2024-11-05";

async fn s3_with_trades(sim: &Simulator, from: &str, to: &str) -> (TempDir, S3Server) {
    let dir = TempDir::new().unwrap();
    let server = start_s3(dir.path()).await;
    populate(
        sim.market(),
        dir.path(),
        &server.bucket,
        &[
            (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
            (FlatDataset::UsStocksSip, FlatKind::DayAggs),
        ],
        d(from),
        d(to),
        Some(&[TICKER]),
    )
    .unwrap();
    let mut day = d(from);
    while day <= d(to) {
        if finpipe::calendar::Calendar::Nyse.is_open(day) {
            let path = server.object_path(&trades_key(day));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = std::fs::File::create(&path).unwrap();
            write_trades_gz(sim.market(), day, Some(&[TICKER]), file).unwrap();
        }
        day = day.succ_opt().unwrap();
    }
    (dir, server)
}

fn workspace(sim: &Simulator, s3: &S3Server) -> Workspace {
    Workspace::for_sim(sim)
        .env("MASSIVE_S3_ENDPOINT", &s3.endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", &s3.access_key)
        .env("MASSIVE_S3_SECRET_KEY", &s3.secret_key)
}

async fn backfill(ws: &Workspace, timeframes: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec![
        "backfill",
        TICKER,
        "--timeframes",
        timeframes,
        "--start",
        START,
        "--end",
        END,
    ];
    args.extend_from_slice(extra);
    ws.run(&args).await
}

fn series(library: &BTreeMap<(String, String), Vec<Bar>>, tf: &str) -> Vec<Bar> {
    library
        .get(&(TICKER.to_owned(), tf.to_owned()))
        .cloned()
        .unwrap_or_else(|| panic!("no {TICKER} {tf} in {:?}", library.keys()))
}

/// The `finpipe.source` of every Parquet file below `dir`.
fn sources(dir: &Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            let meta = reader
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .cloned();
            for kv in meta.unwrap_or_default() {
                if kv.key == "finpipe.source" {
                    out.push(kv.value.unwrap_or_default());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minute_bars_from_trades_equal_the_aggregates_across_a_dst_change() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_trades(&sim, START, END).await;

    let trades = workspace(&sim, &s3);
    let run = backfill(&trades, "1m", &["--from-trades"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("1 trades job (3 trades files)"),
        "{}",
        run.stdout
    );
    let from_trades = series(&trades.library("data"), "1m");
    let rest = sim_bars(&sim, TICKER, "1m", START, END, false);
    assert!(rest.len() > 1000, "{}", rest.len());
    assert_eq!(
        from_trades, rest,
        "trades = REST minute aggregates, every column"
    );
    let files = trades.join(&format!("data/{TICKER}/1m"));
    let found = sources(&files);
    assert!(
        !found.is_empty() && found.iter().all(|s| s == "trades"),
        "{found:?}"
    );

    // Minute aggregates from the flat files: the same bars (they carry no vwap).
    let flat = workspace(&sim, &s3);
    let run = backfill(&flat, "1m", &["--source", "flatfiles"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let from_files = series(&flat.library("data"), "1m");
    let without_vwap: Vec<Bar> = from_trades
        .iter()
        .map(|b| Bar { vwap: None, ..*b })
        .collect();
    assert_eq!(from_files, without_vwap, "trades = minute_aggs_v1");

    // Resume: everything is covered, nothing is planned, so nothing is
    // downloaded, and the library is unchanged.
    let run = backfill(&trades, "1m", &["--from-trades"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("planned 0 REST jobs, 0 flat-file jobs (0 day files), 0 grouped"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("trades job"), "{}", run.stdout);
    assert_eq!(series(&trades.library("data"), "1m"), from_trades);
    assert!(temporaries(&trades.join("data")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_bars_equal_the_rest_second_aggregates() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_trades(&sim, START, END).await;
    let ws = workspace(&sim, &s3);
    // Second bars need no --from-trades: they are always built from trades.
    let run = backfill(&ws, "1s,30s", &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    for tf in ["1s", "30s"] {
        let rest = sim_bars(&sim, TICKER, tf, START, END, false);
        assert!(!rest.is_empty());
        assert_eq!(series(&library, tf), rest, "{tf}");
    }
    // Without flat-file access, second bars are refused with the fix.
    let rest_only = Workspace::for_sim(&sim);
    let run = backfill(&rest_only, "1s", &[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.all_output().contains("MASSIVE_S3_ACCESS_KEY"),
        "{}",
        run.all_output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_bars_hold_their_thresholds_within_one_session() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_trades(&sim, START, END).await;
    let ws = workspace(&sim, &s3);
    let run = backfill(&ws, "1000t,50000v,1e6$", &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    // `$` is spelled `usd` in the library (a directory name).
    assert!(ws.join(&format!("data/{TICKER}/1e6usd")).is_dir());
    let sessions = 3;
    let class = finpipe::model::AssetClass::Stocks;
    for (tf, spec) in [("1000t", "1000t"), ("50000v", "50000v"), ("1e6usd", "1e6$")] {
        let bars = series(&library, tf);
        assert!(bars.len() > sessions, "{tf}: {}", bars.len());
        assert!(bars.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        let short: Vec<&Bar> = bars
            .iter()
            .filter(|b| match tf {
                "1000t" => b.transactions != Some(1000),
                "50000v" => b.volume.unwrap() < 50_000.0,
                _ => b.vwap.unwrap() * b.volume.unwrap() < 1e6 * (1.0 - 1e-6),
            })
            .collect();
        // Only the last bar of each session may fall short of the threshold.
        assert!(short.len() <= sessions, "{tf}: {} short bars", short.len());
        for bar in &short {
            let date = class.date_of(bar.timestamp);
            let later_same_day = bars
                .iter()
                .any(|b| b.timestamp > bar.timestamp && class.date_of(b.timestamp) == date);
            assert!(!later_same_day, "{tf}: a short bar inside a session");
        }
        // Exactly the aggregation of the files, bar for bar.
        let spec: BarSpec = spec.parse().unwrap();
        let mut expected = Vec::new();
        let mut day = d(START);
        while day <= d(END) {
            let path = s3.object_path(&trades_key(day));
            if path.exists() {
                aggregate_gzip(
                    std::fs::File::open(&path).unwrap(),
                    "k",
                    ConditionTable::polygon_default(),
                    &[spec],
                    |t| t == TICKER,
                    |mut t| {
                        unique_stamps(&mut t.series[0].bars);
                        expected.extend(t.series.remove(0).bars);
                        Ok::<(), ()>(())
                    },
                )
                .unwrap();
            }
            day = day.succ_opt().unwrap();
        }
        assert_eq!(bars, expected, "{tf}");
    }
    // A wrong notation is refused with a clear message.
    let run = backfill(&ws, "1.5t", &[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.all_output().contains("not a whole number"),
        "{}",
        run.all_output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_trades_file_fails_its_job_with_the_key_and_writes_nothing() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_trades(&sim, "2024-11-04", "2024-11-04").await;
    let key = trades_key(d("2024-11-04"));
    let path = s3.object_path(&key);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();

    let ws = workspace(&sim, &s3);
    let args = [
        "backfill",
        TICKER,
        "--timeframes",
        "1s,1m",
        "--from-trades",
        "--start",
        "2024-11-04",
        "--end",
        "2024-11-04",
    ];
    let run = ws.run(&args).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.all_output().contains(&key), "{}", run.all_output());
    assert!(ws.library("data").is_empty(), "nothing written");
    assert!(temporaries(&ws.join("data")).is_empty());

    // The whole file again: the failed job is planned again and succeeds.
    std::fs::write(&path, &whole).unwrap();
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    assert_eq!(
        series(&library, "1m"),
        sim_bars(&sim, TICKER, "1m", "2024-11-04", "2024-11-04", false)
    );
}
