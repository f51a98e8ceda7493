//! Flat files through the engine: backfills from a real S3 server on loopback
//! (the simulator's day files) and from the simulator's REST API give the same
//! library at any cutoff, for minute, derived and daily bars, across a DST
//! change; a day file is downloaded once for every ticker; a truncated file
//! fails its job and writes nothing; a republished file is ingested again; a
//! refused key says the plan lacks flat-file access.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use finpipe::model::Bar;
use finpipe::simulator::Simulator;
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, populate};
use tempfile::TempDir;

use crate::common::flatfiles::d;
use crate::common::s3::{S3Server, start_s3};
use crate::common::{Run, Workspace, aggregate_requests, simulator, temporaries};

const TICKERS: [&str; 3] = ["AAPL", "X:BTCUSD", "I:SPX"];
const START: &str = "2024-10-28";
const END: &str = "2024-11-08";

type Library = BTreeMap<(String, String), Vec<Bar>>;

async fn s3_with_days(sim: &Simulator, from: &str, to: &str) -> (TempDir, S3Server) {
    s3_with(sim, from, to, &TICKERS).await
}

async fn s3_with(sim: &Simulator, from: &str, to: &str, only: &[&str]) -> (TempDir, S3Server) {
    let dir = TempDir::new().unwrap();
    let server = start_s3(dir.path()).await;
    let datasets = [
        (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
        (FlatDataset::UsStocksSip, FlatKind::DayAggs),
        (FlatDataset::GlobalCrypto, FlatKind::MinuteAggs),
        (FlatDataset::GlobalCrypto, FlatKind::DayAggs),
        (FlatDataset::UsIndices, FlatKind::MinuteAggs),
        (FlatDataset::UsIndices, FlatKind::DayAggs),
    ];
    populate(
        sim.market(),
        dir.path(),
        &server.bucket,
        &datasets,
        d(from),
        d(to),
        Some(only),
    )
    .unwrap();
    (dir, server)
}

fn workspace(sim: &Simulator, s3: &S3Server) -> Workspace {
    Workspace::for_sim(sim)
        .env("MASSIVE_S3_ENDPOINT", &s3.endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", &s3.access_key)
        .env("MASSIVE_S3_SECRET_KEY", &s3.secret_key)
}

async fn backfill(ws: &Workspace, timeframes: &str, extra: &[&str]) -> Run {
    let universe = ws.universe("u", &TICKERS);
    let mut args = vec![
        "backfill",
        universe.as_str(),
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

fn without_vwap(library: &Library) -> Library {
    library
        .iter()
        .map(|(k, bars)| {
            (
                k.clone(),
                bars.iter().map(|b| Bar { vwap: None, ..*b }).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seam_is_invisible_at_any_cutoff() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_days(&sim, START, END).await;
    let timeframes = "1m,5m,1h,1d";

    let rest = workspace(&sim, &s3);
    let run = backfill(&rest, timeframes, &["--source", "rest"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let from_rest = rest.library("data");
    assert_eq!(from_rest.len(), TICKERS.len() * 4, "{:?}", from_rest.keys());

    let before = aggregate_requests(&sim).len();
    let flat = workspace(&sim, &s3);
    let run = backfill(&flat, timeframes, &["--source", "flatfiles"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("flat-file job"), "{}", run.stdout);
    assert_eq!(
        aggregate_requests(&sim).len(),
        before,
        "flat files only: not one aggregates request"
    );
    let from_files = flat.library("data");
    assert_eq!(
        without_vwap(&from_rest),
        from_files,
        "flat files = REST without vwap"
    );
    assert!(from_files.values().flatten().all(|b| b.vwap.is_none()));

    // Cutoff 2024-11-05 (27 days before 2024-12-02): inside the month, after
    // the DST change of November 3.
    let before = aggregate_requests(&sim);
    let mixed = workspace(&sim, &s3);
    let run = backfill(&mixed, timeframes, &["--cutoff-days", "27"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked: Vec<String> = aggregate_requests(&sim)[before.len()..].to_vec();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|r| r.contains("/2024-11-05/2024-11-08")),
        "REST only for the days after the cutoff: {asked:?}"
    );
    let from_both = mixed.library("data");
    assert_eq!(without_vwap(&from_rest), without_vwap(&from_both));
    // Days from REST keep their vwap, days from files have none.
    let aapl = &from_both[&("AAPL".to_owned(), "1m".to_owned())];
    let cut = finpipe::model::AssetClass::Stocks.midnight_ms(d("2024-11-05"));
    assert!(
        aapl.iter()
            .filter(|b| b.timestamp < cut)
            .all(|b| b.vwap.is_none())
    );
    assert!(
        aapl.iter()
            .filter(|b| b.timestamp >= cut)
            .all(|b| b.vwap.is_some())
    );

    // Nothing left to do: a second run plans nothing and sends nothing.
    let before = aggregate_requests(&sim).len();
    let run = backfill(&mixed, timeframes, &["--cutoff-days", "27"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("planned 0 REST jobs, 0 flat-file jobs"),
        "{}",
        run.stdout
    );
    assert_eq!(aggregate_requests(&sim).len(), before);
    assert!(temporaries(&mixed.join("data")).is_empty());
    assert!(
        !mixed
            .join("data/.finpipe/staging")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
}

fn rewrite_object(path: &std::path::Path, edit: impl Fn(&str) -> String) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(edit(&text).as_bytes()).unwrap();
    std::fs::write(path, encoder.finish().unwrap()).unwrap();
}

async fn backfill_day(ws: &Workspace, tickers: &[&str], day: &str, source: &str) -> Run {
    let universe = ws.universe("u", tickers);
    let args = [
        "backfill",
        universe.as_str(),
        "--timeframes",
        "1m,5m,1h",
        "--start",
        day,
        "--end",
        day,
        "--source",
        source,
    ];
    ws.run(&args).await
}

/// A one-day job writes each ticker while the file downloads and shows the
/// files once it was read whole. A file not sorted by ticker (a ticker's rows
/// in two places) still gives every bar once, and derived timeframes are
/// recomputed after the files are shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_day_from_an_unsorted_file_equals_rest() {
    let sim = simulator().await;
    let day = "2024-11-05";
    let tickers = ["AAPL", "MSFT", "NVDA"];
    let (_dir, s3) = s3_with(&sim, day, day, &tickers).await;
    let key = "us_stocks_sip/minute_aggs_v1/2024/11/2024-11-05.csv.gz";
    // AAPL's first 100 rows moved to the end, after MSFT and NVDA.
    rewrite_object(&s3.object_path(key), |text| {
        let mut lines = text.lines();
        let header = lines.next().unwrap().to_owned();
        let (mut early, mut rest) = (Vec::new(), Vec::new());
        for (i, line) in lines.enumerate() {
            if i < 100 && line.starts_with("AAPL,") {
                early.push(line);
            } else {
                rest.push(line);
            }
        }
        assert_eq!(early.len(), 100);
        assert!(rest.iter().any(|l| l.starts_with("AAPL,")));
        let mut out = vec![header];
        out.extend(rest.iter().chain(&early).map(|l| (*l).to_owned()));
        out.join("\n") + "\n"
    });
    let rest = workspace(&sim, &s3);
    let run = backfill_day(&rest, &tickers, day, "rest").await;
    assert_eq!(run.code, 0, "{run:?}");
    let flat = workspace(&sim, &s3);
    let run = backfill_day(&flat, &tickers, day, "flatfiles").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 flat-file job"), "{}", run.stdout);
    let from_files = flat.library("data");
    assert_eq!(
        from_files.len(),
        tickers.len() * 3,
        "{:?}",
        from_files.keys()
    );
    assert_eq!(without_vwap(&rest.library("data")), from_files);
    assert!(temporaries(&flat.join("data")).is_empty());
}

/// A day whose files cannot be written fails its job with the reason and
/// leaves nothing behind, however many batches of tickers it holds: writers
/// that all failed must not leave the download waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_that_cannot_be_written_fails_its_job_without_hanging() {
    let sim = simulator().await;
    let day = "2024-11-05";
    let tickers: Vec<String> = sim
        .market()
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.active && t.market == "stocks" && t.type_code.as_deref() == Some("CS"))
        .filter(|t| t.ticker.bytes().all(|b| b.is_ascii_uppercase()))
        .take(400)
        .map(|t| t.ticker.clone())
        .collect();
    assert_eq!(tickers.len(), 400);
    let names: Vec<&str> = tickers.iter().map(String::as_str).collect();
    // About 100 000 rows: a dozen batches, more than the writers' queue holds.
    let (_dir, s3) = s3_with(&sim, day, day, &names).await;
    let ws = workspace(&sim, &s3);
    // A file where each ticker's folder would go: every write fails.
    let data = ws.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for ticker in &tickers {
        std::fs::write(data.join(ticker), b"in the way").unwrap();
    }
    let universe = ws.universe("u", &names);
    let args = [
        "backfill",
        universe.as_str(),
        "--timeframes",
        "1m",
        "--start",
        day,
        "--end",
        day,
        "--source",
        "flatfiles",
    ];
    let run = tokio::time::timeout(std::time::Duration::from_secs(120), ws.run(&args))
        .await
        .expect("the job ends");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.all_output().contains("a file is in the way"),
        "{}",
        run.all_output()
    );
    assert!(temporaries(&data).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_files_write_nothing_and_republished_files_are_ingested_again() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_days(&sim, "2024-11-04", "2024-11-04").await;
    let key = "us_stocks_sip/minute_aggs_v1/2024/11/2024-11-04.csv.gz";
    let path = s3.object_path(key);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();

    let ws = workspace(&sim, &s3);
    let universe = ws.universe("u", &["AAPL"]);
    let args = [
        "backfill",
        universe.as_str(),
        "--timeframes",
        "1m",
        "--start",
        "2024-11-04",
        "--end",
        "2024-11-04",
        "--source",
        "flatfiles",
    ];
    let run = ws.run(&args).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.all_output().contains(key), "{}", run.all_output());
    assert!(ws.library("data").is_empty(), "nothing written");
    assert!(temporaries(&ws.join("data")).is_empty());

    // The whole file again: the failed job is planned again and succeeds.
    std::fs::write(&path, &whole).unwrap();
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let first = ws.library("data")[&("AAPL".to_owned(), "1m".to_owned())].clone();
    assert!(!first.is_empty());

    // Republished with one changed close: the new ETag brings it in again.
    let run = ws.run(&args).await;
    assert!(run.stdout.contains("0 flat-file jobs"), "{}", run.stdout);
    let old_close = format!("{}", first[0].close);
    rewrite_object(&path, |text| {
        text.lines()
            .map(|line| {
                if line.starts_with("AAPL,")
                    && line.contains(&(first[0].timestamp * 1_000_000).to_string())
                {
                    let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
                    cells[3] = "999.5".to_owned(); // ticker,volume,open,close,…
                    cells.join(",")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 flat-file job"), "{}", run.stdout);
    let again = ws.library("data")[&("AAPL".to_owned(), "1m".to_owned())].clone();
    assert_eq!(again[0].close, 999.5, "was {old_close}");
    assert_eq!(again.len(), first.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_says_the_plan_lacks_flat_file_access() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with_days(&sim, "2024-11-04", "2024-11-04").await;
    let ws = workspace(&sim, &s3).env("MASSIVE_S3_SECRET_KEY", "wrong-secret-value");
    let universe = ws.universe("u", &["AAPL"]);
    let args = |source: &'static str| {
        vec![
            "backfill".to_owned(),
            universe.clone(),
            "--timeframes".into(),
            "1d".into(),
            "--start".into(),
            "2024-11-04".into(),
            "--end".into(),
            "2024-11-04".into(),
            "--source".into(),
            source.into(),
        ]
    };
    let only = args("flatfiles");
    let run = ws
        .run(&only.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("lacks flat-file access"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("wrong-secret-value"));
    let mut auto = args("auto");
    auto.extend(["--cutoff-days".to_owned(), "0".to_owned()]);
    let run = ws
        .run(&auto.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("lacks flat-file access"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("every day comes from REST"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.library("data").len(), 1);

    // Without keys: REST only, with one note.
    let plain = Workspace::for_sim(&sim);
    let universe = plain.universe("u", &["AAPL"]);
    let run = plain
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-10-01",
            "--end",
            "2024-11-04",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.matches("no S3 keys").count(),
        1,
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_staged_for_other_targets_are_not_reused() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with(&sim, "2024-11-04", "2024-11-05", &["AAPL", "MSFT"]).await;
    // The second day is broken: the first attempt stages 11-04 for AAPL alone.
    let key = "us_stocks_sip/minute_aggs_v1/2024/11/2024-11-05.csv.gz";
    let path = s3.object_path(key);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 3]).unwrap();
    let ws = workspace(&sim, &s3);
    let args = |universe: &str| {
        [
            "backfill",
            universe,
            "--timeframes",
            "1m",
            "--start",
            "2024-11-04",
            "--end",
            "2024-11-05",
            "--source",
            "flatfiles",
        ]
        .map(str::to_owned)
    };
    let one = ws.universe("one", &["AAPL"]);
    let run = ws.run(&args(&one).each_ref().map(String::as_str)).await;
    assert_eq!(run.code, 1, "{run:?}");

    // Fixed, and planned again for two tickers: MSFT gets both days.
    std::fs::write(&path, &whole).unwrap();
    let two = ws.universe("two", &["AAPL", "MSFT"]);
    let run = ws.run(&args(&two).each_ref().map(String::as_str)).await;
    assert_eq!(run.code, 0, "{run:?}");
    let library = ws.library("data");
    for ticker in ["AAPL", "MSFT"] {
        let Some(bars) = library.get(&(ticker.to_owned(), "1m".to_owned())) else {
            panic!("{ticker} missing: {run:?}");
        };
        let days: std::collections::BTreeSet<_> = bars
            .iter()
            .map(|b| finpipe::model::AssetClass::Stocks.date_of(b.timestamp))
            .collect();
        assert_eq!(days.len(), 2, "{ticker}: {days:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_without_a_file_is_left_uncovered_for_rest() {
    let sim = simulator().await;
    let (_dir, s3) = s3_with(&sim, "2024-11-04", "2024-11-08", &["AAPL"]).await;
    std::fs::remove_file(s3.object_path("us_stocks_sip/minute_aggs_v1/2024/11/2024-11-06.csv.gz"))
        .unwrap();
    let ws = workspace(&sim, &s3);
    let universe = ws.universe("u", &["AAPL"]);
    let args = |source: &'static str| {
        [
            "backfill",
            &universe,
            "--timeframes",
            "1m",
            "--start",
            "2024-11-04",
            "--end",
            "2024-11-08",
            "--source",
            source,
        ]
        .map(str::to_owned)
    };
    let run = ws
        .run(&args("flatfiles").each_ref().map(String::as_str))
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("1 open day has no flat file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("2 flat-file jobs (4 day files)"),
        "{}",
        run.stdout
    );
    let before = aggregate_requests(&sim).len();
    let run = ws.run(&args("rest").each_ref().map(String::as_str)).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("/range/1/minute/2024-11-06/2024-11-06"),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_days_between_flat_runs_are_covered() {
    let sim = simulator().await;
    // Saturday 08-31, Sunday 09-01 and Labor Day 09-02 lie between the
    // August and the September runs.
    let (_dir, s3) = s3_with(&sim, "2024-08-26", "2024-09-06", &["AAPL"]).await;
    let ws = workspace(&sim, &s3);
    let universe = ws.universe("u", &["AAPL"]);
    let args = [
        "backfill",
        &universe,
        "--timeframes",
        "1m",
        "--start",
        "2024-08-26",
        "--end",
        "2024-09-06",
        "--source",
        "flatfiles",
    ];
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("2 flat-file jobs (9 day files)"),
        "{}",
        run.stdout
    );
    let again = ws.run(&args).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("0 flat-file jobs (0 day files), 0 grouped-daily jobs and 0 derive jobs; 1 series already up to date"),
        "{}",
        again.stdout
    );
    let status = ws.run(&["status"]).await;
    assert!(!status.stdout.contains("hole:"), "{}", status.stdout);
}
