use std::path::Path;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, NaiveDate};
use chrono_tz::America::New_York;
use chrono_tz::Tz;

use super::csv::RowFormat;
use super::plan::{Plan, qlib_symbol, zipline_name};
use super::*;
use crate::model::{AssetClass, Bar, Basis, Ticker, Timeframe};
use crate::store::{Source, Store};

fn t(s: &str) -> Ticker {
    Ticker::new(s).unwrap()
}

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn bar(timestamp: i64) -> Bar {
    Bar {
        timestamp,
        open: 10.5,
        high: 11.25,
        low: 10.0,
        close: 11.0,
        volume: Some(1500.0),
        vwap: Some(10.7512),
        transactions: Some(42),
    }
}

fn rows(format: &mut RowFormat, bars: &[Bar]) -> Vec<String> {
    let mut out = String::new();
    let kept = bars.iter().filter(|b| format.push(b, &mut out)).count();
    let lines: Vec<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), kept);
    lines
}

fn request(out: &Path) -> ExportRequest {
    ExportRequest {
        timeframe: Timeframe::MINUTE,
        tickers: Vec::new(),
        start: None,
        end: None,
        format: Format::Csv,
        layout: Layout::Finpipe,
        zone: None,
        out: out.to_path_buf(),
    }
}

#[test]
fn polygon_rows_carry_the_offset_in_force_across_a_dst_change() {
    let mut format = RowFormat::polygon(New_York);
    assert_eq!(format.header(), "t,o,h,l,c,v,vw,n");
    let lines = rows(
        &mut format,
        &[
            bar(ms("2024-11-01T13:30:00Z")),     // Friday 09:30 EDT
            bar(ms("2024-11-03T05:30:00Z")),     // 01:30 EDT, the first time
            bar(ms("2024-11-03T06:30:00Z")),     // 01:30 EST, the second time
            bar(ms("2024-11-04T14:30:00Z")),     // Monday 09:30 EST
            bar(ms("2024-03-10T07:00:00.250Z")), // 03:00 EDT, just after the gap
        ],
    );
    let stamps: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(
        stamps,
        [
            "2024-11-01T09:30:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-04T09:30:00-05:00",
            "2024-03-10T03:00:00.250-04:00",
        ]
    );
    // Each reads back as the instant it was written from.
    for (line, b) in lines.iter().zip([
        "2024-11-01T13:30:00Z",
        "2024-11-03T05:30:00Z",
        "2024-11-03T06:30:00Z",
        "2024-11-04T14:30:00Z",
        "2024-03-10T07:00:00.250Z",
    ]) {
        let stamp = line.split(',').next().unwrap();
        assert_eq!(ms(stamp), ms(b), "{stamp}");
    }
    assert_eq!(
        lines[0],
        "2024-11-01T09:30:00-04:00,10.5,11.25,10,11,1500,10.7512,42"
    );
    let mut utc = RowFormat::polygon(Tz::UTC);
    assert_eq!(
        rows(&mut utc, &[bar(ms("2024-11-01T13:30:00Z"))])[0],
        "2024-11-01T13:30:00+00:00,10.5,11.25,10,11,1500,10.7512,42"
    );
    let mut kolkata = RowFormat::polygon(chrono_tz::Asia::Kolkata);
    assert!(
        rows(&mut kolkata, &[bar(ms("2024-11-01T13:30:00Z"))])[0]
            .starts_with("2024-11-01T19:00:00+05:30,")
    );
}

#[test]
fn missing_values_are_empty_fields() {
    let index = Bar {
        volume: None,
        vwap: None,
        transactions: None,
        ..bar(ms("2024-11-04T14:30:00Z"))
    };
    let mut format = RowFormat::polygon(New_York);
    assert_eq!(
        rows(&mut format, &[index])[0],
        "2024-11-04T09:30:00-05:00,10.5,11.25,10,11,,,"
    );
    let mut qlib = RowFormat::qlib("I~SPX".into(), AssetClass::Indices, New_York, false);
    assert_eq!(
        rows(&mut qlib, &[index])[0],
        "2024-11-04,I~SPX,10.5,11.25,10,11,,"
    );
    // zipline stores volumes as integers: a missing one is 0.
    let mut zipline = RowFormat::zipline_daily(AssetClass::Indices);
    assert_eq!(
        rows(&mut zipline, &[index])[0],
        "2024-11-04,10.5,11.25,10,11,0,0,1"
    );
}

#[test]
fn numbers_read_back_as_the_same_doubles() {
    let mut rng = fastrand::Rng::with_seed(16);
    let mut values = vec![
        0.1,
        1.0 / 3.0,
        1e-7,
        123_456_789.012_345_67,
        1e21,
        f64::MIN_POSITIVE,
        f64::MAX,
        -0.0,
        4930.0,
        69.8616,
        0.000_012_34,
    ];
    values.extend(
        (0..4000)
            .map(|_| f64::from_bits(rng.u64(..)))
            .filter(|v| v.is_finite()),
    );
    values.extend((0..2000).map(|_| (rng.f64() * 1e6).round() / 1e4));
    let mut format = RowFormat::polygon(Tz::UTC);
    for v in values {
        let b = Bar {
            open: v,
            high: v,
            low: v,
            close: v,
            volume: Some(v),
            vwap: Some(v),
            transactions: Some(i64::MAX),
            ..bar(0)
        };
        let line = rows(&mut format, &[b]).remove(0);
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 8, "{line}");
        for field in &fields[1..7] {
            let back: f64 = field.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?} written as {field}");
        }
        assert_eq!(fields[7], i64::MAX.to_string());
    }
}

#[test]
fn zipline_minutes_are_labelled_by_their_end_in_utc_and_only_in_the_regular_session() {
    let mut format = RowFormat::zipline_minute();
    assert_eq!(
        format.header(),
        "date,open,high,low,close,volume,dividend,split"
    );
    let bars = [
        bar(ms("2024-11-04T14:29:00Z")), // 09:29 EST: pre-market, left out
        bar(ms("2024-11-04T14:30:00Z")), // 09:30: zipline's 09:31 minute
        bar(ms("2024-11-04T20:59:00Z")), // 15:59: the last regular minute
        bar(ms("2024-11-04T21:00:00Z")), // 16:00: after hours, left out
        bar(ms("2024-11-01T13:30:00Z")), // 09:30 EDT
        bar(ms("2024-11-29T17:59:00Z")), // 12:59 EST on an early-close day
        bar(ms("2024-11-29T18:00:00Z")), // 13:00 that day: closed
        bar(ms("2024-11-28T15:00:00Z")), // Thanksgiving: no session
        bar(ms("2024-11-02T15:00:00Z")), // a Saturday
    ];
    assert_eq!(
        rows(&mut format, &bars),
        [
            "2024-11-04 14:31:00,10.5,11.25,10,11,1500,0,1",
            "2024-11-04 21:00:00,10.5,11.25,10,11,1500,0,1",
            "2024-11-01 13:31:00,10.5,11.25,10,11,1500,0,1",
            "2024-11-29 18:00:00,10.5,11.25,10,11,1500,0,1",
        ]
    );
}

#[test]
fn zipline_days_and_qlib_rows_are_named_by_their_trading_day() {
    // Daily bars start at midnight of the day zone: New York, or UTC for forex.
    let stock_day = bar(ms("2024-11-04T05:00:00Z"));
    let fx_day = bar(ms("2024-11-04T00:00:00Z"));
    let mut zipline = RowFormat::zipline_daily(AssetClass::Stocks);
    assert_eq!(
        rows(&mut zipline, &[stock_day])[0],
        "2024-11-04,10.5,11.25,10,11,1500,0,1"
    );
    let mut zipline_fx = RowFormat::zipline_daily(AssetClass::Fx);
    assert!(rows(&mut zipline_fx, &[fx_day])[0].starts_with("2024-11-04,"));

    let mut qlib = RowFormat::qlib("AAPL".into(), AssetClass::Stocks, New_York, false);
    assert_eq!(qlib.header(), "date,symbol,open,high,low,close,volume,vwap");
    assert_eq!(
        rows(&mut qlib, &[stock_day])[0],
        "2024-11-04,AAPL,10.5,11.25,10,11,1500,10.7512"
    );
    let mut qlib_minutes = RowFormat::qlib("AAPL".into(), AssetClass::Stocks, New_York, true);
    assert_eq!(
        rows(
            &mut qlib_minutes,
            &[
                bar(ms("2024-11-01T13:30:00Z")),
                bar(ms("2024-11-04T14:30:00Z"))
            ]
        ),
        [
            "2024-11-01 09:30:00,AAPL,10.5,11.25,10,11,1500,10.7512",
            "2024-11-04 09:30:00,AAPL,10.5,11.25,10,11,1500,10.7512",
        ]
    );
}

#[test]
fn requests_that_cannot_be_written_are_refused_before_anything_is() {
    let out = Path::new("out");
    let with = |f: &dyn Fn(&mut ExportRequest)| {
        let mut r = request(out);
        f(&mut r);
        check(&r)
    };
    assert!(with(&|_| {}).is_ok());
    let err = with(&|r| {
        r.start = Some(day("2024-11-05"));
        r.end = Some(day("2024-11-04"));
    })
    .unwrap_err();
    assert!(err.is_usage());
    assert_eq!(
        err.to_string(),
        "--start 2024-11-05 is after --end 2024-11-04"
    );
    for (layout, format, ok) in [
        (Layout::Finpipe, Format::Csv, true),
        (Layout::Finpipe, Format::CsvGz, true),
        (Layout::Finpipe, Format::Parquet, true),
        (Layout::Zipline, Format::Csv, true),
        (Layout::Zipline, Format::CsvGz, true),
        (Layout::Zipline, Format::Parquet, false),
        (Layout::Qlib, Format::Csv, true),
        (Layout::Qlib, Format::CsvGz, false),
        (Layout::Qlib, Format::Parquet, false),
    ] {
        let result = with(&|r| {
            r.layout = layout;
            r.format = format;
        });
        assert_eq!(result.is_ok(), ok, "{layout} {format}: {result:?}");
        if let Err(e) = result {
            assert!(e.is_usage());
            assert!(e.to_string().contains(layout.name()), "{e}");
        }
    }
    let err = with(&|r| {
        r.layout = Layout::Zipline;
        r.timeframe = "5m".parse().unwrap();
    })
    .unwrap_err();
    assert!(err.to_string().contains("not 5m"), "{err}");
    assert!(
        with(&|r| {
            r.layout = Layout::Zipline;
            r.timeframe = Timeframe::DAY;
        })
        .is_ok()
    );
    for (layout, format, timeframe, ok) in [
        (Layout::Finpipe, Format::Csv, Timeframe::MINUTE, true),
        (Layout::Finpipe, Format::Csv, Timeframe::DAY, true),
        (Layout::Finpipe, Format::Parquet, Timeframe::MINUTE, false),
        (Layout::Zipline, Format::Csv, Timeframe::MINUTE, false),
        (Layout::Qlib, Format::Csv, Timeframe::MINUTE, true),
        (Layout::Qlib, Format::Csv, Timeframe::DAY, false),
    ] {
        let result = with(&|r| {
            r.layout = layout;
            r.format = format;
            r.timeframe = timeframe;
            r.zone = Some(Tz::UTC);
        });
        assert_eq!(
            result.is_ok(),
            ok,
            "--tz with {layout} {format} {timeframe}"
        );
    }
    assert_eq!("CSV.GZ".parse::<Format>(), Ok(Format::CsvGz));
    let err = "xlsx".parse::<Format>().unwrap_err().to_string();
    assert_eq!(err, "unknown format \"xlsx\": use csv, csv.gz, parquet");
    let err = "backtrader".parse::<Layout>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown layout \"backtrader\": use finpipe, zipline, qlib"
    );
}

#[test]
fn file_names_are_the_stores_portable_names() {
    let out = Path::new("out");
    let mut r = request(out);
    let path = |r: &ExportRequest, ticker: &str| {
        Plan::new(r)
            .unwrap()
            .output_path(&t(ticker))
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(path(&r, "AAPL"), "out/AAPL/1m.csv");
    assert_eq!(path(&r, "X:BTCUSD"), "out/X~BTCUSD/1m.csv");
    r.format = Format::CsvGz;
    assert_eq!(path(&r, "KIMpL"), "out/KIM_pL/1m.csv.gz");
    r.format = Format::Parquet;
    r.timeframe = Timeframe::DAY;
    assert_eq!(path(&r, "BRK.A"), "out/BRK.A/1d.parquet");
    r.layout = Layout::Zipline;
    r.format = Format::Csv;
    assert_eq!(path(&r, "BRK.A"), "out/daily/BRK_2EA.csv");
    r.timeframe = Timeframe::MINUTE;
    assert_eq!(path(&r, "AAPL"), "out/minute/AAPL.csv");
    r.layout = Layout::Qlib;
    assert_eq!(path(&r, "KIMpL"), "out/KIM_pL.csv");
    assert_eq!(path(&r, "BRK.A"), "out/BRK.A.csv");
    // zipline cuts a name at its first dot; qlib uppercases the file name.
    assert_eq!(zipline_name(&t(".A.B")), "_2EA_2EB");
    assert_eq!(qlib_symbol(&t("KIMpL")), "KIM_PL");
    assert_ne!(qlib_symbol(&t("KIMpL")), qlib_symbol(&t("KIMPL")));
    assert_eq!(qlib_symbol(&t("X:BTCUSD")), "X~BTCUSD");
}

#[test]
fn the_range_is_in_trading_days_of_the_tickers_market() {
    let out = Path::new("out");
    let mut r = request(out);
    r.start = Some(day("2024-11-04"));
    r.end = Some(day("2024-11-04"));
    let plan = Plan::new(&r).unwrap();
    // 03:00Z on the 5th is still the 4th in New York, already the 5th in UTC.
    let bars: Vec<Bar> = [
        "2024-11-04T04:59:00Z",
        "2024-11-04T05:00:00Z",
        "2024-11-05T03:00:00Z",
        "2024-11-05T05:00:00Z",
    ]
    .iter()
    .map(|s| bar(ms(s)))
    .collect();
    let stamps = |ticker: &str| -> Vec<i64> {
        plan.in_range(&t(ticker), &bars)
            .iter()
            .map(|b| b.timestamp)
            .collect()
    };
    assert_eq!(
        stamps("AAPL"),
        [ms("2024-11-04T05:00:00Z"), ms("2024-11-05T03:00:00Z")]
    );
    assert_eq!(
        stamps("C:EURUSD"),
        [ms("2024-11-04T04:59:00Z"), ms("2024-11-04T05:00:00Z")]
    );
    r.start = None;
    r.end = None;
    assert_eq!(Plan::new(&r).unwrap().in_range(&t("AAPL"), &bars).len(), 4);
}

/// Minute bars of every NYSE minute 04:00–20:00 of `days`.
fn minutes(days: &[&str]) -> Vec<Bar> {
    let mut out = Vec::new();
    for d in days {
        let s = crate::calendar::nyse_session(day(d)).unwrap();
        let mut ts = s.extended_start_ms;
        let mut i = 0.0;
        while ts < s.extended_end_ms {
            out.push(Bar {
                timestamp: ts,
                open: 100.0 + i / 100.0,
                ..bar(ts)
            });
            ts += 60_000;
            i += 1.0;
        }
    }
    out
}

fn library(dir: &Path) -> Store {
    let store = Store::open(&dir.join("data"), Basis::Unadjusted, "test").unwrap();
    let aapl = minutes(&["2024-10-31", "2024-11-01", "2024-11-04"]);
    store
        .merge(&t("AAPL"), Timeframe::MINUTE, aapl, Source::Rest)
        .unwrap();
    store
        .merge(
            &t("MSFT"),
            Timeframe::DAY,
            vec![bar(ms("2024-11-04T05:00:00Z"))],
            Source::Rest,
        )
        .unwrap();
    store
}

fn names_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_export_streams_periods_into_whole_files_and_a_rerun_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = library(dir.path());
    let out = dir.path().join("out");
    let mut r = request(&out);
    r.tickers = vec![t("AAPL"), t("MSFT"), t("aapl"), t("AAPL")];
    r.start = Some(day("2024-10-31"));
    r.end = Some(day("2024-11-01"));
    let stop = AtomicBool::new(false);
    let summary = export(&store, &r, &stop).unwrap();
    assert_eq!(summary.written.len(), 1);
    assert_eq!(summary.rows, 2 * 16 * 60);
    assert_eq!(summary.written[0].path, out.join("AAPL/1m.csv"));
    let reported: Vec<String> = summary.reported.iter().map(ToString::to_string).collect();
    assert_eq!(
        reported,
        [
            "MSFT: no bars of this timeframe in the library (it has 1d)",
            "aapl: not in the library (did you mean AAPL? tickers are case-sensitive)",
        ]
    );
    assert!(!summary.has_failures());
    let text = std::fs::read_to_string(out.join("AAPL/1m.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t,o,h,l,c,v,vw,n");
    assert_eq!(lines.len(), 1 + 2 * 16 * 60);
    assert!(
        lines[1].starts_with("2024-10-31T04:00:00-04:00,100,"),
        "{}",
        lines[1]
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("2024-11-01T19:59:00-04:00,")
    );

    // A re-run with another range replaces the file; the library's months
    // (October and November) are read in order.
    r.start = Some(day("2024-11-01"));
    r.end = None;
    r.format = Format::CsvGz;
    export(&store, &r, &stop).unwrap();
    r.format = Format::Csv;
    let summary = export(&store, &r, &stop).unwrap();
    assert_eq!(summary.rows, 2 * 16 * 60);
    let text = std::fs::read_to_string(out.join("AAPL/1m.csv")).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("2024-11-01T04:00:00-04:00,")
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("2024-11-04T19:59:00-05:00,")
    );
    let mut gz = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(out.join("AAPL/1m.csv.gz")).unwrap()),
        &mut gz,
    )
    .unwrap();
    assert_eq!(gz, text);
    assert_eq!(names_below(&out), ["AAPL/1m.csv", "AAPL/1m.csv.gz"]);

    // An empty range is reported and writes nothing.
    r.start = Some(day("2024-11-02"));
    r.end = Some(day("2024-11-03"));
    let summary = export(&store, &r, &stop).unwrap();
    assert!(summary.written.is_empty());
    assert!(matches!(summary.reported[0].reason, Reason::NothingInRange));

    // Interrupted: nothing written, no temporary file left.
    let stopped = AtomicBool::new(true);
    let mut r2 = request(&dir.path().join("out2"));
    r2.tickers = vec![t("AAPL")];
    assert!(matches!(
        export(&store, &r2, &stopped),
        Err(ExportError::Interrupted)
    ));
    assert!(names_below(&dir.path().join("out2")).is_empty());

    // Never inside the library.
    let inside = request(&dir.path().join("data/export"));
    let err = export(&store, &inside, &stop).unwrap_err();
    assert!(matches!(err, ExportError::OutInsideLibrary { .. }), "{err}");
    assert!(!dir.path().join("data/export").exists());
}

#[test]
fn parquet_exports_hold_the_stores_schema_one_row_group_per_period() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let store = library(dir.path());
    let out = dir.path().join("out");
    let mut r = request(&out);
    r.format = Format::Parquet;
    let summary = export(&store, &r, &AtomicBool::new(false)).unwrap();
    // Every ticker of the library; MSFT has no 1m bars.
    assert_eq!(summary.written.len(), 1);
    assert_eq!(summary.reported.len(), 1);
    let file = std::fs::File::open(out.join("AAPL/1m.parquet")).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(
        builder.schema().fields(),
        crate::store::bar_schema().fields()
    );
    assert_eq!(builder.metadata().num_row_groups(), 2, "October, November");
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let get = |key: &str| {
        kv.iter()
            .find(|e| e.key == key)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(get(crate::store::KEY_TICKER).as_deref(), Some("AAPL"));
    assert_eq!(get(crate::store::KEY_TIMEFRAME).as_deref(), Some("1m"));
    let rows: usize = builder
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows as u64, summary.rows);
    assert_eq!(rows, 3 * 16 * 60);
}

#[test]
fn zones_are_iana_names_in_any_case_with_a_suggestion() {
    assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
    assert_eq!(parse_zone(" america/new_york "), Ok(New_York));
    let err = parse_zone("America/NewYork").unwrap_err().to_string();
    assert!(err.contains("did you mean America/New_York?"), "{err}");
    let err = parse_zone("Mars/Olympus").unwrap_err().to_string();
    assert!(
        err.starts_with("unknown time zone \"Mars/Olympus\""),
        "{err}"
    );
}
