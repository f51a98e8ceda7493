//! `finpipe export` on a library backfilled from the simulator: CSV, gzip
//! CSV and Parquet read back and compared with the library's bars row for
//! row in every column (and the README's pandas line run on the CSV), the
//! zipline and qlib layouts checked against their documented formats, a
//! re-run replacing, and unknown tickers, empty ranges and bad input
//! reported.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use chrono::DateTime;
use finpipe::calendar::nyse_session;
use finpipe::model::{Bar, Ticker};
use finpipe::store::ticker_dir;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::common::{Workspace, simulator, temporaries};
use crate::readers::python;

/// Stocks (one with a dot, one with a lowercase letter), crypto, forex and
/// an index (no volume), over the end of daylight saving time (2024-11-03).
const TICKERS: [&str; 6] = ["AAPL", "BRK.A", "KIMpL", "X:BTCUSD", "C:EURUSD", "I:SPX"];
const START: &str = "2024-10-30";
const END: &str = "2024-11-06";

type Library = BTreeMap<(String, String), Vec<Bar>>;

fn series<'l>(library: &'l Library, ticker: &str, tf: &str) -> &'l [Bar] {
    library
        .get(&(ticker.to_owned(), tf.to_owned()))
        .unwrap_or_else(|| panic!("{ticker} {tf} in the library"))
}

fn dir(ticker: &str) -> String {
    ticker_dir(&Ticker::new(ticker).unwrap())
}

fn number(field: &str, what: &str) -> Option<f64> {
    (!field.is_empty()).then(|| {
        field
            .parse()
            .unwrap_or_else(|e| panic!("{what}: {field:?}: {e}"))
    })
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

fn same_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_f64(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Bars parsed back from a finpipe-layout CSV, checking each timestamp's
/// offset with `offset`.
fn parse_polygon_csv(text: &str, what: &str, offset: impl Fn(i64) -> &'static str) -> Vec<Bar> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t,o,h,l,c,v,vw,n"), "{what}: header");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 8, "{what}: {line}");
            let t = DateTime::parse_from_rfc3339(f[0])
                .unwrap_or_else(|e| panic!("{what}: {line}: {e}"))
                .timestamp_millis();
            assert!(
                f[0].ends_with(offset(t)),
                "{what}: {} should end in {}",
                f[0],
                offset(t)
            );
            let price = |s: &str| number(s, what).expect("a price");
            Bar {
                timestamp: t,
                open: price(f[1]),
                high: price(f[2]),
                low: price(f[3]),
                close: price(f[4]),
                volume: number(f[5], what),
                vwap: number(f[6], what),
                transactions: (!f[7].is_empty()).then(|| f[7].parse().unwrap()),
            }
        })
        .collect()
}

fn assert_same_bars(got: &[Bar], want: &[Bar], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (g, w) in got.iter().zip(want) {
        let same = g.timestamp == w.timestamp
            && same_f64(g.open, w.open)
            && same_f64(g.high, w.high)
            && same_f64(g.low, w.low)
            && same_f64(g.close, w.close)
            && same_opt(g.volume, w.volume)
            && same_opt(g.vwap, w.vwap)
            && g.transactions == w.transactions;
        assert!(same, "{what}: {g:?} != {w:?}");
    }
}

/// New York's offset at `ms` in the autumn of 2024.
fn new_york(ms: i64) -> &'static str {
    if ms < 1_730_613_600_000 {
        "-04:00" // before 2024-11-03 06:00Z
    } else {
        "-05:00"
    }
}

fn utc(_: i64) -> &'static str {
    "+00:00"
}

/// The bars of a Parquet file of the bar schema.
fn read_parquet(path: &Path) -> Vec<Bar> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut bars = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap();
        let f = |name: &str| col(name).as_primitive::<Float64Type>().clone();
        let ts = col("timestamp").as_primitive::<TimestampMillisecondType>();
        let (o, h, l, c, v, vw) = (
            f("open"),
            f("high"),
            f("low"),
            f("close"),
            f("volume"),
            f("vwap"),
        );
        let n = col("transactions").as_primitive::<Int64Type>();
        let opt = |a: &arrow_array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..batch.num_rows() {
            bars.push(Bar {
                timestamp: ts.value(i),
                open: o.value(i),
                high: h.value(i),
                low: l.value(i),
                close: c.value(i),
                volume: opt(&v, i),
                vwap: opt(&vw, i),
                transactions: n.is_valid(i).then(|| n.value(i)),
            });
        }
    }
    bars
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ny_date(ms: i64) -> String {
    finpipe::model::AssetClass::Stocks.date_of(ms).to_string()
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The rows zipline's csvdir should get from daily or minute bars.
fn zipline_rows(bars: &[Bar], minute: bool) -> Vec<String> {
    bars.iter()
        .filter_map(|b| {
            let date = if minute {
                let date = finpipe::model::AssetClass::Stocks.date_of(b.timestamp);
                let s = nyse_session(date)?;
                let end = b.timestamp + 60_000;
                if b.timestamp < s.regular_start_ms || end > s.regular_end_ms {
                    return None;
                }
                DateTime::from_timestamp_millis(end)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            } else {
                ny_date(b.timestamp)
            };
            Some(format!(
                "{date},{},{},{},{},{},0,1",
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume.unwrap_or(0.0)
            ))
        })
        .collect()
}

/// The README's pandas example: the fenced block after
/// `<!-- export example: pandas -->`.
fn readme_pandas_example() -> String {
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let (_, rest) = readme
        .split_once("<!-- export example: pandas -->\n```python\n")
        .expect("the README's export section has a marked pandas example");
    let (code, _) = rest.split_once("\n```").expect("the block ends");
    assert!(code.contains("export/AAPL/1m.csv"), "{code}");
    code.to_owned()
}

/// Runs the README's pandas example on each CSV (its path swapped in), and
/// reads zipline's and qlib's files the way csvdir and dump_bin do; writes
/// what pandas saw as JSON.
const HARNESS: &str = r#"
import json, sys
import pandas as pd

code, paths, zipline, qlib, answer = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out = {"csv": {}, "zipline": {}, "qlib": {}}
def value(x):
    return None if pd.isna(x) else float(x)
for path in paths:
    namespace = {}
    exec(code.replace("export/AAPL/1m.csv", path), namespace)
    bars = namespace["bars"]
    assert str(bars["t"].dtype).startswith("datetime64["), bars["t"].dtype
    out["csv"][path] = {
        "columns": list(bars.columns),
        "t": [int(x.value // 10**6) for x in bars["t"]],
        **{c: [value(x) for x in bars[c]] for c in ["o", "h", "l", "c", "v", "vw", "n"]},
    }
import os
for folder in ["daily", "minute"]:
    for name in sorted(os.listdir(os.path.join(zipline, folder))):
        # As csvdir reads them.
        df = pd.read_csv(os.path.join(zipline, folder, name), parse_dates=[0], index_col=0).sort_index()
        assert df.index.is_unique and df.index.is_monotonic_increasing, name
        assert list(df.columns) == ["open", "high", "low", "close", "volume", "dividend", "split"], df.columns
        assert (df["split"] == 1.0).all() and (df["dividend"] == 0.0).all()
        out["zipline"][folder + "/" + name] = [str(df.index[0]), len(df), str(df.index.dtype)]
for name in sorted(os.listdir(qlib)):
    # As dump_bin reads them: the date parsed, the code from the file name.
    df = pd.read_csv(os.path.join(qlib, name), low_memory=False)
    dates = pd.to_datetime(df["date"])
    assert (dates.dt.strftime("%Y-%m-%d") == df["date"]).all(), name
    code = name[: -len(".csv")].strip().lower().upper()
    assert (df["symbol"] == code).all(), (name, df["symbol"].unique())
    out["qlib"][name] = [code, len(df)]
with open(answer, "w") as f:
    json.dump(out, f)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_what_the_library_holds_in_every_format_and_layout() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &TICKERS);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m,1d",
            "--start",
            START,
            "--end",
            END,
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    sim.stop().await;
    let library = ws.library("data");
    // No key needed: export reads local state only.
    let mut ws = ws;
    ws.unset("MASSIVE_API_KEY");

    // CSV, every ticker of the library, in each market's zone.
    let run = ws
        .run(&["export", "--timeframe", "1m", "--out", "export"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let total: usize = TICKERS
        .iter()
        .map(|t| series(&library, t, "1m").len())
        .sum();
    assert!(
        run.stdout
            .contains(&format!("export: 6 files with {total} rows of 1m bars")),
        "{}",
        run.stdout
    );
    for ticker in TICKERS {
        let path = ws.join(&format!("export/{}/1m.csv", dir(ticker)));
        let offset = if ticker.starts_with("C:") {
            utc
        } else {
            new_york
        };
        let got = parse_polygon_csv(&read(&path), ticker, offset);
        assert_same_bars(&got, series(&library, ticker, "1m"), ticker);
    }
    let aapl = read(&ws.join("export/AAPL/1m.csv"));
    assert!(aapl.contains("\n2024-11-01T09:30:00-04:00,"), "EDT before");
    assert!(aapl.contains("\n2024-11-04T09:30:00-05:00,"), "EST after");
    let spx = read(&ws.join("export/I~SPX/1m.csv"));
    assert!(
        spx.lines().nth(1).unwrap().ends_with(",,,"),
        "an index has no volume, vwap or transactions: {}",
        spx.lines().nth(1).unwrap()
    );

    // csv.gz in the zone chosen, daily bars too.
    for tf in ["1m", "1d"] {
        let run = ws
            .run(&[
                "export",
                "--timeframe",
                tf,
                "--format",
                "csv.gz",
                "--tz",
                "UTC",
                "--out",
                "gz",
            ])
            .await;
        assert_eq!(run.code, 0, "{run:?}");
        for ticker in TICKERS {
            let text = gunzip(&ws.join(&format!("gz/{}/{tf}.csv.gz", dir(ticker))));
            let got = parse_polygon_csv(&text, ticker, utc);
            assert_same_bars(
                &got,
                series(&library, ticker, tf),
                &format!("{ticker} {tf}"),
            );
        }
    }

    // Parquet: the store's schema and the same bars.
    let run = ws
        .run(&[
            "export",
            "--timeframe",
            "1m",
            "AAPL",
            "X:BTCUSD",
            "I:SPX",
            "--format",
            "parquet",
            "--out",
            "pq",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    for ticker in ["AAPL", "X:BTCUSD", "I:SPX"] {
        let got = read_parquet(&ws.join(&format!("pq/{}/1m.parquet", dir(ticker))));
        assert_same_bars(&got, series(&library, ticker, "1m"), ticker);
    }

    // zipline: csvdir's daily and minute folders.
    for tf in ["1d", "1m"] {
        let run = ws
            .run(&[
                "export",
                "--timeframe",
                tf,
                "AAPL",
                "BRK.A",
                "--layout",
                "zipline",
                "--out",
                "csvdir",
            ])
            .await;
        assert_eq!(run.code, 0, "{run:?}");
        if tf == "1m" {
            assert!(
                run.stderr
                    .contains("outside the NYSE regular session left out"),
                "{}",
                run.stderr
            );
        }
        let folder = if tf == "1d" { "daily" } else { "minute" };
        for (ticker, name) in [("AAPL", "AAPL"), ("BRK.A", "BRK_2EA")] {
            let text = read(&ws.join(&format!("csvdir/{folder}/{name}.csv")));
            let mut lines = text.lines();
            assert_eq!(
                lines.next(),
                Some("date,open,high,low,close,volume,dividend,split")
            );
            let want = zipline_rows(series(&library, ticker, tf), tf == "1m");
            let got: Vec<&str> = lines.collect();
            assert!(!got.is_empty(), "{ticker} {tf}");
            assert_eq!(got, want, "{ticker} {tf}");
        }
    }
    let minute = read(&ws.join("csvdir/minute/AAPL.csv"));
    assert_eq!(
        minute.lines().nth(1).unwrap().split(',').next(),
        Some("2024-10-30 13:31:00"),
        "zipline's first minute of a session is 09:31 New York time"
    );

    // qlib: one CSV per symbol, dated by trading day.
    let run = ws
        .run(&[
            "export",
            "--timeframe",
            "1d",
            "--layout",
            "qlib",
            "--out",
            "qlib",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    for (ticker, name, symbol) in [
        ("AAPL", "AAPL", "AAPL"),
        ("KIMpL", "KIM_pL", "KIM_PL"),
        ("X:BTCUSD", "X~BTCUSD", "X~BTCUSD"),
        ("I:SPX", "I~SPX", "I~SPX"),
    ] {
        let text = read(&ws.join(&format!("qlib/{name}.csv")));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("date,symbol,open,high,low,close,volume,vwap")
        );
        let want: Vec<String> = series(&library, ticker, "1d")
            .iter()
            .map(|b| {
                let date = if ticker.starts_with("C:") {
                    finpipe::model::AssetClass::Fx
                        .date_of(b.timestamp)
                        .to_string()
                } else {
                    ny_date(b.timestamp)
                };
                format!(
                    "{date},{symbol},{},{},{},{},{},{}",
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    fmt_opt(b.volume),
                    fmt_opt(b.vwap)
                )
            })
            .collect();
        assert_eq!(lines.collect::<Vec<_>>(), want, "{ticker}");
    }

    // pandas: the README's line reads the same rows; csvdir's and dump_bin's
    // reads of the zipline and qlib files succeed.
    if let Some(python) = python() {
        let paths: Vec<String> = TICKERS
            .iter()
            .map(|t| format!("export/{}/1m.csv", dir(t)))
            .collect();
        let harness = ws.join("export_harness.py");
        std::fs::write(&harness, HARNESS).unwrap();
        let output = tokio::process::Command::new(&python)
            .arg(&harness)
            .arg(readme_pandas_example())
            .arg(serde_json::to_string(&paths).unwrap())
            .args(["csvdir", "qlib", "answer.json"])
            .current_dir(ws.path())
            .env("TZ", "UTC")
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "the pandas harness failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_str(&read(&ws.join("answer.json"))).unwrap();
        for (ticker, path) in TICKERS.iter().zip(&paths) {
            let seen = &answer["csv"][path];
            let column = |name: &str| -> Vec<Option<f64>> {
                seen[name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(Value::as_f64)
                    .collect()
            };
            let t: Vec<i64> = seen["t"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let (o, h, l, c, v, vw, n) = (
                column("o"),
                column("h"),
                column("l"),
                column("c"),
                column("v"),
                column("vw"),
                column("n"),
            );
            let got: Vec<Bar> = (0..t.len())
                .map(|i| Bar {
                    timestamp: t[i],
                    open: o[i].unwrap(),
                    high: h[i].unwrap(),
                    low: l[i].unwrap(),
                    close: c[i].unwrap(),
                    volume: v[i],
                    vwap: vw[i],
                    transactions: n[i].map(|n| n as i64),
                })
                .collect();
            assert_same_bars(
                &got,
                series(&library, ticker, "1m"),
                &format!("pandas {ticker}"),
            );
        }
        let zipline = answer["zipline"].as_object().unwrap();
        assert_eq!(zipline.len(), 4, "{zipline:?}");
        assert_eq!(
            answer["zipline"]["minute/AAPL.csv"][0],
            "2024-10-30 13:31:00"
        );
        assert_eq!(answer["qlib"]["KIM_pL.csv"][0], "KIM_PL");
        assert_eq!(answer["qlib"].as_object().unwrap().len(), TICKERS.len());
    }

    // A re-run replaces: another range, fewer rows, no temporary left.
    let run = ws
        .run(&[
            "export",
            "--timeframe",
            "1m",
            "AAPL",
            "--start",
            "2024-11-04",
            "--out",
            "export",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let got = parse_polygon_csv(&read(&ws.join("export/AAPL/1m.csv")), "AAPL", new_york);
    let want: Vec<Bar> = series(&library, "AAPL", "1m")
        .iter()
        .filter(|b| ny_date(b.timestamp).as_str() >= "2024-11-04")
        .copied()
        .collect();
    assert!(!want.is_empty());
    assert_same_bars(&got, &want, "AAPL from 2024-11-04");
    for out in ["export", "gz", "pq", "csvdir", "qlib"] {
        assert!(temporaries(&ws.join(out)).is_empty(), "{out}");
    }

    // An unknown ticker is reported; what exists is still exported (exit 0).
    let run = ws
        .run(&[
            "export",
            "--timeframe",
            "1m",
            "AAPL",
            "NOPE",
            "aapl",
            "--out",
            "some",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("warning: NOPE: not in the library"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("aapl: not in the library (did you mean AAPL?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("2 tickers without a file"),
        "{}",
        run.stdout
    );
    assert!(ws.join("some/AAPL/1m.csv").exists());

    // An empty range: a weekend for a stock, a month with no file.
    for (start, end) in [("2024-11-02", "2024-11-03"), ("2024-12-10", "2024-12-20")] {
        let run = ws
            .run(&[
                "export",
                "--timeframe",
                "1m",
                "AAPL",
                "--start",
                start,
                "--end",
                end,
                "--out",
                "empty",
            ])
            .await;
        assert_eq!(run.code, 1, "nothing exported: {run:?}");
        assert!(
            run.stderr.contains("warning: AAPL: no bars in the range"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.contains("export: 0 files"), "{}", run.stdout);
        assert!(!ws.join("empty/AAPL").exists());
    }
    // The weekend does hold crypto bars.
    let run = ws
        .run(&[
            "export",
            "--timeframe",
            "1m",
            "AAPL",
            "X:BTCUSD",
            "--start",
            "2024-11-02",
            "--end",
            "2024-11-03",
            "--out",
            "weekend",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let got = parse_polygon_csv(
        &read(&ws.join("weekend/X~BTCUSD/1m.csv")),
        "X:BTCUSD",
        new_york,
    );
    let want: Vec<Bar> = series(&library, "X:BTCUSD", "1m")
        .iter()
        .filter(|b| ("2024-11-02".."2024-11-04").contains(&ny_date(b.timestamp).as_str()))
        .copied()
        .collect();
    // 2024-11-03 has 25 hours in New York.
    assert!(want.len() > 48 * 60, "{}", want.len());
    assert_same_bars(&got, &want, "X:BTCUSD over the weekend");

    // A closed stdout (a pipe to `head`) ends quietly, with the files whole.
    let mut child = ws
        .command(
            None,
            &["export", "--timeframe", "1d", "AAPL", "--out", "piped"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let got = parse_polygon_csv(&read(&ws.join("piped/AAPL/1d.csv")), "AAPL", new_york);
    assert_same_bars(&got, series(&library, "AAPL", "1d"), "piped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_export_input_is_refused_with_a_clear_error_and_writes_nothing() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.join("data")).unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--timeframe", "1x"], 2, "unknown timeframe \"1x\""),
        (
            &[
                "--timeframe",
                "1m",
                "--start",
                "2024-11-06",
                "--end",
                "2024-11-01",
            ],
            2,
            "--start 2024-11-06 is after --end 2024-11-01",
        ),
        (
            &["--timeframe", "1m", "--format", "xlsx"],
            2,
            "unknown format \"xlsx\": use csv, csv.gz, parquet",
        ),
        (
            &["--timeframe", "1m", "--layout", "backtrader"],
            2,
            "unknown layout \"backtrader\"",
        ),
        (
            &[
                "--timeframe",
                "1m",
                "--layout",
                "zipline",
                "--format",
                "parquet",
            ],
            2,
            "the zipline layout is CSV files (csv or csv.gz), not parquet",
        ),
        (
            &[
                "--timeframe",
                "1m",
                "--layout",
                "qlib",
                "--format",
                "csv.gz",
            ],
            2,
            "the qlib layout is CSV files (--format csv), not csv.gz",
        ),
        (
            &["--timeframe", "5m", "--layout", "zipline"],
            2,
            "daily and minute bars only, not 5m",
        ),
        (
            &["--timeframe", "1m", "--format", "parquet", "--tz", "UTC"],
            2,
            "--tz does not apply to Parquet files",
        ),
        (
            &["--timeframe", "1m", "--tz", "Mars/Olympus"],
            2,
            "Mars/Olympus",
        ),
        (
            &["--timeframe", "1m", "--data-dir", "nowhere"],
            2,
            "there is no library at nowhere",
        ),
        (
            &["--timeframe", "1m", "--out", "data/export"],
            2,
            "is inside the library",
        ),
    ];
    for (args, code, message) in cases {
        let mut full = vec!["export"];
        full.extend_from_slice(args);
        if !args.contains(&"--out") {
            full.extend(["--out", "out"]);
        }
        let run = ws.run(&full).await;
        assert_eq!(run.code, *code, "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(!ws.join("out").exists(), "{args:?}");
        assert!(!ws.join("data/export").exists(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_folder_that_cannot_be_written_fails_without_a_partial_file() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1d",
            "--start",
            START,
            "--end",
            END,
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    sim.stop().await;
    // A file where the output folder would be.
    std::fs::write(ws.join("blocked"), b"not a folder").unwrap();
    let run = ws
        .run(&["export", "--timeframe", "1d", "--out", "blocked/out"])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("error: cannot write blocked/out"),
        "{}",
        run.stderr
    );
    // A file where a ticker's folder would be: nothing half-written beside it.
    std::fs::create_dir(ws.join("out")).unwrap();
    std::fs::write(ws.join("out/AAPL"), b"in the way").unwrap();
    let run = ws
        .run(&["export", "--timeframe", "1d", "--out", "out"])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot write out/AAPL/1d.csv"),
        "{}",
        run.stderr
    );
    assert!(temporaries(&ws.join("out")).is_empty());
    assert_eq!(std::fs::read(ws.join("out/AAPL")).unwrap(), b"in the way");
}
