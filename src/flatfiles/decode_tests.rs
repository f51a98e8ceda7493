//! Tests of the day-file decoder (`decode.rs`) on gzip built in memory.

use std::convert::Infallible;
use std::io::Write;

use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;
use crate::flatfiles::keys::{Dataset, FileKind};

fn gz(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn file(dataset: Dataset, kind: FileKind, date: &str) -> DayFile {
    DayFile::new(dataset, kind, date.parse::<NaiveDate>().unwrap())
}

fn stocks_minute() -> DayFile {
    file(Dataset::UsStocksSip, FileKind::MinuteAggs, "2025-04-16")
}

/// Decodes everything, returning the runs.
fn decode_all(bytes: &[u8], file: &DayFile) -> Result<(Vec<TickerRun>, DayStats), FlatFileError> {
    let mut runs = Vec::new();
    let stats = decode_day(
        bytes,
        file,
        |_| true,
        |run| {
            runs.push(run);
            Ok::<(), Infallible>(())
        },
    )
    .map_err(|e| match e {
        DecodeError::File(e) => e,
        DecodeError::Sink(never) => match never {},
    })?;
    Ok((runs, stats))
}

const MINUTES: &str = "ticker,volume,open,close,high,low,window_start,transactions\n\
    AAPL,4930,200.29,200.5,200.63,200.29,1744792500000000000,129\n\
    AAPL,1815.5,200.39,200.34,200.61,200.34,1744792560000000000,57\n\
    MSFT,10,1,2,3,0.5,1744792500000000000,\n\
    AAPL,1,1,1,1,1,1744792620000000000,1\n";

#[test]
fn minute_rows_keep_window_start_in_ms_and_group_into_runs() {
    let (runs, stats) = decode_all(&gz(MINUTES), &stocks_minute()).unwrap();
    let tickers: Vec<&str> = runs.iter().map(|r| r.ticker.as_str()).collect();
    assert_eq!(tickers, ["AAPL", "MSFT", "AAPL"]);
    let first = runs[0].bars[0];
    assert_eq!(first.timestamp, 1_744_792_500_000);
    assert_eq!(
        (first.open, first.high, first.low, first.close),
        (200.29, 200.63, 200.29, 200.5)
    );
    assert_eq!(first.volume, Some(4930.0));
    assert_eq!(first.transactions, Some(129));
    assert_eq!(first.vwap, None);
    assert_eq!(runs[0].bars[1].volume, Some(1815.5));
    assert_eq!(runs[1].bars[0].transactions, None, "an empty field is None");
    assert_eq!((stats.rows, stats.kept_rows, stats.runs), (4, 4, 3));
    assert_eq!(stats.csv_bytes, MINUTES.len() as u64);
}

#[test]
fn day_rows_are_stamped_at_midnight_of_the_key_date_in_the_day_zone() {
    let text = "ticker,volume,open,close,high,low,window_start,transactions\n\
                BCC,248274,61.68,61.99,62.565,61.41,-1,4073\n";
    let day = file(Dataset::UsStocksSip, FileKind::DayAggs, "2023-03-28");
    let (runs, _) = decode_all(&gz(text), &day).unwrap();
    assert_eq!(runs[0].bars[0].timestamp, 1_679_976_000_000);

    let fx = file(Dataset::GlobalForex, FileKind::DayAggs, "2023-03-28");
    let (runs, _) = decode_all(&gz(text.replace("BCC", "C:EUR-USD").as_str()), &fx).unwrap();
    assert_eq!(runs[0].bars[0].timestamp, 1_679_961_600_000);
}

#[test]
fn indices_have_no_volume_and_columns_are_found_by_name() {
    let text = "window_start,low,high,close,open,ticker\r\n\
                1679988600000000000,1,4,3,2,I:SPX\r\n\
                1679988660000000000,1,4,3,2,I:SPX";
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2023-03-28");
    let (runs, _) = decode_all(&gz(text), &day).unwrap();
    assert_eq!(runs.len(), 1);
    let bar = runs[0].bars[1];
    assert_eq!(
        bar.timestamp, 1_679_988_660_000,
        "a last line without newline"
    );
    assert_eq!(
        (bar.open, bar.high, bar.low, bar.close),
        (2.0, 4.0, 1.0, 3.0)
    );
    assert_eq!((bar.volume, bar.transactions), (None, None));
}

#[test]
fn unwanted_tickers_are_skipped_and_want_is_asked_once_per_run() {
    let mut asked = Vec::new();
    let mut kept = Vec::new();
    let stats = decode_day(
        &gz(MINUTES)[..],
        &stocks_minute(),
        |t| {
            asked.push(t.to_owned());
            t == "MSFT"
        },
        |run| {
            kept.push(run);
            Ok::<(), Infallible>(())
        },
    )
    .unwrap();
    assert_eq!(asked, ["AAPL", "MSFT", "AAPL"]);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].ticker.as_str(), "MSFT");
    assert_eq!((stats.rows, stats.kept_rows), (4, 1));
}

#[test]
fn long_runs_are_split_at_the_cap() {
    let mut text = String::from("ticker,open,close,high,low,window_start\n");
    for i in 0..(RUN_CAP + 10) {
        text.push_str(&format!("I:X,1,1,1,1,{}\n", i * 60_000_000_000));
    }
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let (runs, stats) = decode_all(&gz(&text), &day).unwrap();
    let sizes: Vec<usize> = runs.iter().map(|r| r.bars.len()).collect();
    assert_eq!(sizes, [RUN_CAP, 10]);
    assert_eq!(stats.peak_run_bars, RUN_CAP);
}

#[test]
fn missing_columns_are_named() {
    let no_close = "ticker,volume,open,high,low,window_start,transactions\nA,1,1,1,1,1,1\n";
    let err = decode_all(&gz(no_close), &stocks_minute()).unwrap_err();
    assert!(
        matches!(
            err,
            FlatFileError::MissingColumn {
                column: "close",
                ..
            }
        ),
        "{err}"
    );
    let no_volume = "ticker,open,close,high,low,window_start\n";
    let err = decode_all(&gz(no_volume), &stocks_minute()).unwrap_err();
    assert!(
        matches!(
            err,
            FlatFileError::MissingColumn {
                column: "volume",
                ..
            }
        ),
        "stocks need volume: {err}"
    );
    let day = file(Dataset::UsStocksSip, FileKind::DayAggs, "2024-01-02");
    let no_window = "ticker,volume,open,close,high,low,transactions\nA,1,1,1,1,1,1\n";
    assert!(
        decode_all(&gz(no_window), &day).is_ok(),
        "day files ignore window_start"
    );
}

#[test]
fn bad_rows_name_line_and_column() {
    let text = "ticker,volume,open,close,high,low,window_start,transactions\n\
                A,1,1,1,1,1,60000000000,1\n\
                A,1,1,x,1,1,120000000000,1\n";
    let err = decode_all(&gz(text), &stocks_minute()).unwrap_err();
    match &err {
        FlatFileError::BadRow { line, column, .. } => {
            assert_eq!((*line, *column), (3, Some("close")));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("line 3, column `close`"), "{err}");

    let short = "ticker,volume,open,close,high,low,window_start,transactions\nA,1,1\n";
    let err = decode_all(&gz(short), &stocks_minute()).unwrap_err();
    assert!(
        matches!(
            err,
            FlatFileError::BadRow {
                line: 2,
                column: None,
                ..
            }
        ),
        "{err}"
    );

    let nan = "ticker,volume,open,close,high,low,window_start,transactions\nA,1,NaN,1,1,1,1,1\n";
    let err = decode_all(&gz(nan), &stocks_minute()).unwrap_err();
    assert!(
        matches!(
            err,
            FlatFileError::BadRow {
                column: Some("open"),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_cut_stream_is_truncated_never_a_shorter_result() {
    let mut text = String::from("ticker,open,close,high,low,window_start\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "I:T{},1.5,2.5,3.5,0.5,{}\n",
            i / 100,
            i * 60_000_000_000_i64
        ));
    }
    let bytes = gz(&text);
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    for cut in [
        0,
        5,
        10,
        100,
        bytes.len() / 2,
        bytes.len() - 8,
        bytes.len() - 1,
    ] {
        let err = decode_all(&bytes[..cut], &day).unwrap_err();
        assert!(
            matches!(err, FlatFileError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.is_transient());
    }
    assert_eq!(decode_all(&bytes, &day).unwrap().1.rows, 5000);
}

#[test]
fn damaged_gzip_is_corrupt() {
    let text = "ticker,open,close,high,low,window_start\nI:A,1,1,1,1,0\n";
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let err = decode_all(text.as_bytes(), &day).unwrap_err();
    assert!(
        matches!(err, FlatFileError::Corrupt { .. }),
        "plain CSV: {err}"
    );

    let mut bytes = gz(text);
    let crc_at = bytes.len() - 8;
    bytes[crc_at] ^= 0xFF;
    let err = decode_all(&bytes, &day).unwrap_err();
    assert!(
        matches!(err, FlatFileError::Corrupt { .. }),
        "bad checksum: {err}"
    );

    let mut trailing = gz(text);
    trailing.extend_from_slice(b"junk after the member");
    let err = decode_all(&trailing, &day).unwrap_err();
    assert!(
        matches!(err, FlatFileError::Corrupt { .. }),
        "trailing junk: {err}"
    );
}

#[test]
fn an_empty_member_has_no_header() {
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let err = decode_all(&gz(""), &day).unwrap_err();
    assert!(matches!(err, FlatFileError::Corrupt { .. }), "{err}");
}

#[test]
fn concatenated_members_are_one_file() {
    let header = "ticker,open,close,high,low,window_start\n";
    let mut bytes = gz(&format!("{header}I:A,1,1,1,1,0\n"));
    bytes.extend(gz("I:B,2,2,2,2,60000000000\n"));
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let (runs, _) = decode_all(&bytes, &day).unwrap();
    assert_eq!(runs.len(), 2);
}

#[test]
fn an_overlong_line_is_a_bad_row() {
    let text = format!(
        "ticker,open,close,high,low,window_start\n{}\n",
        "x".repeat(MAX_LINE + 1)
    );
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let err = decode_all(&gz(&text), &day).unwrap_err();
    assert!(
        matches!(err, FlatFileError::BadRow { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_failing_sink_stops_the_decode_with_its_own_error() {
    let mut calls = 0;
    let result = decode_day(
        &gz(MINUTES)[..],
        &stocks_minute(),
        |_| true,
        |_| {
            calls += 1;
            Err("disk full")
        },
    );
    assert!(matches!(result, Err(DecodeError::Sink("disk full"))));
    assert_eq!(calls, 1);
}

#[test]
fn memory_stays_within_the_line_buffer() {
    let mut text = String::from("ticker,open,close,high,low,window_start\n");
    for i in 0..50_000 {
        text.push_str(&format!(
            "I:T{},1.25,2.5,3.75,0.5,{}\n",
            i / 500,
            i * 60_000_000_000_i64
        ));
    }
    let day = file(Dataset::UsIndices, FileKind::MinuteAggs, "2024-01-02");
    let (_, stats) = decode_all(&gz(&text), &day).unwrap();
    assert!(stats.csv_bytes > LINE_BUFFER as u64);
    assert!(stats.peak_line_bytes <= LINE_BUFFER);
    assert_eq!(stats.peak_run_bars, 500);
}
