//! Tests of the Parquet library on real files in temporary directories:
//! round trips, merging, periods, the basis guard, metadata and footers.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use chrono::{TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::ParquetMetaDataReader;

use super::rows::same_bar;
use super::*;

mod files;
mod prepared;
mod writers;

pub(super) const VERSION: &str = "0.1.0-test";
pub(super) const MIN: i64 = 60_000;

pub(super) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

pub(super) fn t(s: &str) -> Ticker {
    Ticker::new(s).unwrap()
}

pub(super) fn tf(s: &str) -> Timeframe {
    s.parse().unwrap()
}

pub(super) fn bar(ts: i64, price: f64) -> Bar {
    Bar {
        timestamp: ts,
        open: price,
        high: price + 1.0,
        low: price - 1.0,
        close: price + 0.5,
        volume: Some(1_000.0 + price),
        vwap: Some(price + 0.25),
        transactions: Some(7),
    }
}

pub(super) fn open(dir: &Path, basis: Basis) -> Store {
    Store::open(dir, basis, VERSION).unwrap()
}

/// File key/value metadata of the file at `path`, read with the plain parquet API.
pub(super) fn kv(path: &Path) -> BTreeMap<String, String> {
    let file = fs::File::open(path).unwrap();
    let md = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .unwrap();
    md.file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

fn assert_same(a: &[Bar], b: &[Bar]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(same_bar(x, y), "{x:?} != {y:?}");
    }
}

#[test]
fn store_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

#[test]
fn every_column_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let ticker = t("X:BTCUSD");
    let t0 = utc(2024, 3, 4, 0, 0);
    let bars = vec![
        Bar {
            timestamp: t0,
            open: 0.1 + 0.2,
            high: f64::MAX,
            low: f64::MIN_POSITIVE / 4.0, // subnormal
            close: -0.0,
            volume: Some(0.000_123_456_789),
            vwap: Some(f64::NAN),
            transactions: Some(i64::MAX),
        },
        Bar {
            timestamp: t0 + MIN,
            open: 1.0 / 3.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: None,
            vwap: None,
            transactions: None,
        },
        Bar {
            timestamp: t0 + 2 * MIN,
            open: 61_234.56,
            high: 61_300.0,
            low: 61_200.0,
            close: 61_250.01,
            volume: Some(12.345_678_9),
            vwap: None,
            transactions: Some(0),
        },
    ];
    let summary = store.merge(&ticker, tf("1m"), &bars, Source::Rest).unwrap();
    assert_eq!(
        summary,
        WriteSummary {
            files: 1,
            rows_total: 3,
            rows_new: 3
        }
    );
    let back = store.read_period(&ticker, tf("1m"), "2024-03").unwrap();
    assert_same(&back, &bars);
    assert!(back[0].vwap.unwrap().is_nan());
    assert!(back[0].close.is_sign_negative());
    assert_eq!(back[1].volume, None);
    assert_eq!(back[2].vwap, None);
}

#[test]
fn merging_deduplicates_and_new_bars_replace_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let t0 = utc(2024, 3, 4, 14, 30);
    let first: Vec<Bar> = (0..5).map(|k| bar(t0 + k * MIN, 100.0)).collect();
    store.merge(&ticker, m, &first, Source::FlatFiles).unwrap();

    // Out of order, overlapping, with a duplicate inside the new batch: the last wins.
    let second = vec![
        bar(t0 + 6 * MIN, 300.0),
        bar(t0 + 3 * MIN, 200.0),
        bar(t0 + 5 * MIN, 250.0),
        bar(t0 + 3 * MIN, 201.0),
    ];
    let summary = store.merge(&ticker, m, &second, Source::Rest).unwrap();
    assert_eq!(
        summary,
        WriteSummary {
            files: 1,
            rows_total: 7,
            rows_new: 2
        }
    );
    let back = store.read_period(&ticker, m, "2024-03").unwrap();
    let ts: Vec<i64> = back.iter().map(|b| b.timestamp).collect();
    assert_eq!(ts, (0..7).map(|k| t0 + k * MIN).collect::<Vec<_>>());
    assert_eq!(back[3].open, 201.0);
    assert_eq!(back[2].open, 100.0);
    assert_eq!(back[6].open, 300.0);

    // The same bars again change nothing, and the file is left alone.
    let before = fs::metadata(store.period_path(&ticker, m, "2024-03"))
        .unwrap()
        .modified()
        .unwrap();
    let again = store.merge(&ticker, m, &back, Source::Rest).unwrap();
    assert_eq!(
        again,
        WriteSummary {
            files: 0,
            rows_total: 7,
            rows_new: 0
        }
    );
    let after = fs::metadata(store.period_path(&ticker, m, "2024-03"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        store.merge(&ticker, m, &[], Source::Rest).unwrap(),
        WriteSummary::default()
    );
}

#[test]
fn bars_land_in_the_period_of_their_day_zone_date() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let m = tf("1m");
    // 2024-03-01 02:00Z is still February 29 in New York, already March in UTC.
    let edge = utc(2024, 3, 1, 2, 0);
    let stock = t("AAPL");
    let summary = store
        .merge(
            &stock,
            m,
            &[
                bar(edge, 1.0),
                bar(utc(2024, 3, 1, 15, 0), 2.0),
                bar(utc(2024, 2, 10, 15, 0), 3.0),
            ],
            Source::Rest,
        )
        .unwrap();
    assert_eq!(summary.files, 2);
    assert_eq!(store.periods(&stock, m).unwrap(), ["2024-02", "2024-03"]);
    let feb = store.read_period(&stock, m, "2024-02").unwrap();
    assert_eq!(
        feb.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
        [utc(2024, 2, 10, 15, 0), edge]
    );

    let fx = t("C:EURUSD");
    store
        .merge(&fx, m, &[bar(edge, 1.0)], Source::Rest)
        .unwrap();
    assert_eq!(store.periods(&fx, m).unwrap(), ["2024-03"]);
    let crypto = t("X:BTCUSD");
    store
        .merge(&crypto, m, &[bar(edge, 1.0)], Source::Rest)
        .unwrap();
    assert_eq!(store.periods(&crypto, m).unwrap(), ["2024-02"]);
    assert!(dir.path().join("C~EURUSD/1m/2024-03.parquet").is_file());
    assert!(dir.path().join("X~BTCUSD/1m/2024-02.parquet").is_file());
}

#[test]
fn daily_bars_go_to_yearly_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, d) = (t("BRK.A"), tf("1d"));
    let class = ticker.asset_class();
    let day = |y, m, dd| class.midnight_ms(chrono::NaiveDate::from_ymd_opt(y, m, dd).unwrap());
    let bars = [
        bar(day(2023, 12, 29), 1.0),
        bar(day(2024, 1, 2), 2.0),
        bar(day(2024, 7, 1), 3.0),
    ];
    store.merge(&ticker, d, &bars, Source::Rest).unwrap();
    assert_eq!(store.periods(&ticker, d).unwrap(), ["2023", "2024"]);
    assert!(dir.path().join("BRK.A/1d/2024.parquet").is_file());
    assert_eq!(store.read_period(&ticker, d, "2024").unwrap().len(), 2);
}

#[test]
fn the_other_basis_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (ticker, d) = (t("AAPL"), tf("1d"));
    let ts = utc(2024, 1, 2, 5, 0);
    open(dir.path(), Basis::Unadjusted)
        .merge(&ticker, d, &[bar(ts, 1.0)], Source::FlatFiles)
        .unwrap();
    let adjusted = open(dir.path(), Basis::Adjusted);
    let path = adjusted.period_path(&ticker, d, "2024");
    let before = fs::read(&path).unwrap();

    let err = adjusted
        .merge(&ticker, d, &[bar(ts + 86_400_000, 2.0)], Source::Rest)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::BasisMismatch { stored: Basis::Unadjusted, wanted: Basis::Adjusted, path: p } if *p == path),
        "{err:?}"
    );
    let text = err.to_string();
    let shown = path.display().to_string();
    for part in [
        shown.as_str(),
        "holds unadjusted",
        "stores adjusted",
        "--data-dir",
        "--adjusted",
    ] {
        assert!(text.contains(part), "{text}");
    }
    assert!(matches!(
        adjusted.replace_period(&ticker, d, "2024", &[bar(ts, 3.0)], Source::Derived),
        Err(StoreError::BasisMismatch { .. })
    ));
    assert!(matches!(
        adjusted.read_period(&ticker, d, "2024"),
        Err(StoreError::BasisMismatch { .. })
    ));
    assert!(matches!(
        adjusted.watermark(&ticker, d),
        Err(StoreError::BasisMismatch { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn metadata_records_ticker_timeframe_basis_version_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Adjusted);
    let (ticker, m) = (t("KIMpL"), tf("1m"));
    let t0 = utc(2024, 3, 4, 14, 30);
    store
        .merge(&ticker, m, &[bar(t0, 1.0)], Source::Rest)
        .unwrap();
    let path = store.period_path(&ticker, m, "2024-03");
    assert!(path.starts_with(dir.path().join("KIM_pL").join("1m")));
    let meta = kv(&path);
    assert_eq!(meta[KEY_SCHEMA], "1");
    assert_eq!(meta[KEY_TICKER], "KIMpL");
    assert_eq!(meta[KEY_TIMEFRAME], "1m");
    assert_eq!(meta[KEY_ADJUSTED], "true");
    assert_eq!(meta[KEY_SOURCE], "rest");
    assert_eq!(meta[KEY_VERSION], VERSION);

    // A second source joins the set, sorted; the same source again changes nothing.
    store
        .merge(&ticker, m, &[bar(t0, 1.0)], Source::FlatFiles)
        .unwrap();
    assert_eq!(kv(&path)[KEY_SOURCE], "flatfiles+rest");
    store
        .merge(&ticker, m, &[bar(t0 + MIN, 1.0)], Source::Rest)
        .unwrap();
    assert_eq!(kv(&path)[KEY_SOURCE], "flatfiles+rest");

    // Replacing a whole period records only the source that wrote it.
    let five = tf("5m");
    store
        .merge(&ticker, five, &[bar(t0, 1.0)], Source::Rest)
        .unwrap();
    store
        .replace_period(&ticker, five, "2024-03", &[bar(t0, 2.0)], Source::Derived)
        .unwrap();
    assert_eq!(
        kv(&store.period_path(&ticker, five, "2024-03"))[KEY_SOURCE],
        "derived"
    );
}

#[test]
fn replacing_a_period_rewrites_removes_and_checks_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, five) = (t("MSFT"), tf("5m"));
    let t0 = utc(2024, 3, 4, 14, 30);
    let old = [bar(t0, 1.0), bar(t0 + 5 * MIN, 2.0)];
    store.merge(&ticker, five, &old, Source::Derived).unwrap();

    let new = [bar(t0 + 10 * MIN, 4.0), bar(t0 + 5 * MIN, 3.0)];
    let summary = store
        .replace_period(&ticker, five, "2024-03", &new, Source::Derived)
        .unwrap();
    assert_eq!(
        summary,
        WriteSummary {
            files: 1,
            rows_total: 2,
            rows_new: 1
        }
    );
    let back = store.read_period(&ticker, five, "2024-03").unwrap();
    assert_same(&back, &[new[1], new[0]]);

    // Unchanged content: nothing written.
    let same = store
        .replace_period(&ticker, five, "2024-03", &back, Source::Derived)
        .unwrap();
    assert_eq!(same.files, 0);

    // A bar of another period is refused before anything is touched.
    let err = store
        .replace_period(
            &ticker,
            five,
            "2024-03",
            &[bar(t0, 1.0), bar(utc(2024, 4, 2, 14, 0), 1.0)],
            Source::Derived,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfPeriod { .. }), "{err:?}");
    let err = store
        .replace_period(&ticker, five, "2024-04", &[bar(t0, 1.0)], Source::Derived)
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfPeriod { .. }), "{err:?}");
    assert_eq!(
        store.read_period(&ticker, five, "2024-03").unwrap().len(),
        2
    );

    // Empty bars remove the file.
    let removed = store
        .replace_period(&ticker, five, "2024-03", &[], Source::Derived)
        .unwrap();
    assert_eq!(removed.files, 1);
    assert!(store.periods(&ticker, five).unwrap().is_empty());
    assert!(
        store
            .read_period(&ticker, five, "2024-03")
            .unwrap()
            .is_empty()
    );
    let nothing = store
        .replace_period(&ticker, five, "2024-03", &[], Source::Derived)
        .unwrap();
    assert_eq!(nothing, WriteSummary::default());
}

#[test]
fn watermark_is_the_last_timestamp_of_the_newest_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    assert_eq!(store.watermark(&ticker, m).unwrap(), None);
    let feb = utc(2024, 2, 20, 15, 0);
    let mar = utc(2024, 3, 20, 15, 0);
    // Written out of order, and the February file written last.
    store
        .merge(
            &ticker,
            m,
            &[bar(mar + 9 * MIN, 1.0), bar(mar, 1.0)],
            Source::Rest,
        )
        .unwrap();
    store
        .merge(&ticker, m, &[bar(feb + 30 * MIN, 1.0)], Source::Rest)
        .unwrap();
    assert_eq!(store.watermark(&ticker, m).unwrap(), Some(mar + 9 * MIN));
    assert_eq!(store.watermark(&ticker, tf("5m")).unwrap(), None);
    assert_eq!(store.watermark(&t("MSFT"), m).unwrap(), None);
}

#[test]
fn the_file_is_plain_parquet_with_the_bar_schema() {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_schema::{DataType, TimeUnit};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("BRK.A"), tf("1m"));
    let t0 = utc(2024, 3, 4, 14, 30);
    let bars: Vec<Bar> = (0..2_500)
        .rev()
        .map(|k| bar(t0 + k * MIN, k as f64))
        .collect();
    store.merge(&ticker, m, &bars, Source::FlatFiles).unwrap();
    let path = store.period_path(&ticker, m, "2024-03");
    // A small file is written uncompressed (see codec::SMALL_FILE_ROWS).
    let small = t("SMALL");
    store.merge(&small, m, &bars[..100], Source::Rest).unwrap();
    let small_file = fs::File::open(store.period_path(&small, m, "2024-03")).unwrap();
    let small_md = ParquetRecordBatchReaderBuilder::try_new(small_file)
        .unwrap()
        .metadata()
        .clone();
    assert!(matches!(
        small_md.row_group(0).column(1).compression(),
        Compression::UNCOMPRESSED
    ));
    let small_volume = small_md.row_group(0).column(6);
    assert!(
        small_volume
            .encodings()
            .all(|e| e != Encoding::BYTE_STREAM_SPLIT)
    );

    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap();
    let md = builder.metadata().clone();
    assert_eq!(md.num_row_groups(), 1);
    let rg = md.row_group(0);
    let sorting = rg.sorting_columns().unwrap();
    assert_eq!(sorting.len(), 1);
    assert_eq!((sorting[0].column_idx, sorting[0].descending), (1, false));
    assert!(matches!(rg.column(1).compression(), Compression::ZSTD(_)));
    assert!(rg.column(1).statistics().is_some());
    // The ticker's min and max (the one ticker of the file) let a reader of
    // a glob skip other tickers' files; the prices carry none.
    let ticker_stats = rg.column(0).statistics().expect("ticker statistics");
    assert_eq!(ticker_stats.min_bytes_opt(), Some(&b"BRK.A"[..]));
    assert_eq!(ticker_stats.max_bytes_opt(), Some(&b"BRK.A"[..]));
    let small_ticker = small_md.row_group(0).column(0).statistics().unwrap();
    assert_eq!(small_ticker.min_bytes_opt(), Some(&b"SMALL"[..]));
    assert_eq!(small_ticker.max_bytes_opt(), Some(&b"SMALL"[..]));
    for price in 2..=7 {
        assert!(rg.column(price).statistics().is_none(), "column {price}");
    }
    // Each column's encoding and codec, as the README's performance section
    // explains them.
    let uses =
        |column: usize, encoding: Encoding| rg.column(column).encodings().any(|e| e == encoding);
    assert!(uses(1, Encoding::DELTA_BINARY_PACKED), "timestamp");
    for price in 2..=5 {
        assert!(uses(price, Encoding::RLE_DICTIONARY), "column {price}");
        assert!(matches!(
            rg.column(price).compression(),
            Compression::ZSTD(_)
        ));
    }
    assert!(uses(6, Encoding::BYTE_STREAM_SPLIT), "volume");
    assert!(!uses(7, Encoding::RLE_DICTIONARY), "vwap");
    assert!(matches!(rg.column(7).compression(), Compression::ZSTD(_)));
    assert!(uses(8, Encoding::DELTA_BINARY_PACKED), "transactions");
    assert!(matches!(
        rg.column(8).compression(),
        Compression::UNCOMPRESSED
    ));

    let schema = builder.schema().clone();
    let expect: [(&str, DataType, bool); 9] = [
        (
            "ticker",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        (
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        ("open", DataType::Float64, false),
        ("high", DataType::Float64, false),
        ("low", DataType::Float64, false),
        ("close", DataType::Float64, false),
        ("volume", DataType::Float64, true),
        ("vwap", DataType::Float64, true),
        ("transactions", DataType::Int64, true),
    ];
    assert_eq!(schema.fields().len(), expect.len());
    for (field, (name, ty, nullable)) in schema.fields().iter().zip(expect) {
        assert_eq!(
            (
                field.name().as_str(),
                field.data_type(),
                field.is_nullable()
            ),
            (name, &ty, nullable)
        );
    }
    let DataType::Timestamp(_, Some(zone)) = schema.field(1).data_type() else {
        panic!("timestamp has no zone");
    };
    assert_eq!(&**zone, "UTC");

    let batches: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2_500);
    let tickers = batches[0].column(0).as_dictionary::<Int32Type>();
    assert_eq!(tickers.values().as_string::<i32>().value(0), "BRK.A");
    assert_eq!(tickers.values().len(), 1);
    let ts = batches[0]
        .column(1)
        .as_primitive::<arrow_array::types::TimestampMillisecondType>();
    assert_eq!(ts.value(0), t0);
    assert!(ts.values().windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn covered_days_accumulate_in_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, m) = (t("AAPL"), tf("1m"));
    let r = |a: &str, b: &str| {
        crate::ranges::DateRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    };
    let bars = || vec![bar(utc(2024, 3, 5, 15, 0), 1.0)];
    store
        .merge_covered(
            &aapl,
            m,
            bars(),
            Source::Rest,
            Some(r("2024-03-01", "2024-03-05")),
        )
        .unwrap();
    // The same bars with more days covered: rewritten to say so.
    let more = store
        .merge_covered(
            &aapl,
            m,
            bars(),
            Source::Rest,
            Some(r("2024-03-06", "2024-03-08")),
        )
        .unwrap();
    assert_eq!(more.files, 1);
    let path = store.period_path(&aapl, m, "2024-03");
    assert_eq!(kv(&path)[KEY_COVERED], "2024-03-01..2024-03-08");
    // Nothing new to say: left alone.
    let same = store
        .merge_covered(
            &aapl,
            m,
            bars(),
            Source::Rest,
            Some(r("2024-03-02", "2024-03-03")),
        )
        .unwrap();
    assert_eq!(same.files, 0);
    // A plain merge keeps what the file records.
    store
        .merge(
            &aapl,
            m,
            vec![bar(utc(2024, 3, 11, 15, 0), 2.0)],
            Source::Rest,
        )
        .unwrap();
    assert_eq!(kv(&path)[KEY_COVERED], "2024-03-01..2024-03-08");
    assert_eq!(
        codec::parse_covered("2024-01-01..2024-01-05,garbage,2024-01-06..2024-01-09"),
        [r("2024-01-01", "2024-01-09")],
        "a part that does not parse is left out; adjacent ranges merge"
    );
}

#[test]
fn period_files_are_recognised_as_the_store_names_them() {
    let (m, d) = (tf("1m"), tf("1d"));
    assert_eq!(
        period_of_file_name("2024-11.parquet", m).as_deref(),
        Some("2024-11")
    );
    assert_eq!(
        period_of_file_name("2024.parquet", d).as_deref(),
        Some("2024")
    );
    assert_eq!(period_of_file_name("2024.parquet", m), None);
    assert_eq!(period_of_file_name("2024-13.parquet", m), None);
    assert_eq!(period_of_file_name("2024-11.parquet.tmp-abc", m), None);
}
