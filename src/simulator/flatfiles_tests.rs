//! Tests of the simulated flat files: headers as in the real files, rows equal to the
//! unadjusted REST bars, calendars per dataset, order, deterministic bytes, key layout.

use std::io::Read;

use chrono::NaiveDate;
use flate2::read::GzDecoder;

use super::*;
use crate::simulator::reference::{Reference, WorldSize};

/// The header lines of the fixtures `us_stocks_sip_minute_aggs_v1_example.csv`,
/// `us_stocks_sip_day_aggs_v1_example.csv` and `us_indices_*_aggs_v1_example.csv`.
const FIXTURE_STOCKS_HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions";
const FIXTURE_INDICES_HEADER: &str = "ticker,open,close,high,low,window_start";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

fn small_market() -> Market {
    Market::new(Reference::generate(&WorldSize {
        stocks_cs: 25,
        etf: 8,
        other_stock_types: 8,
        otc: 5,
        crypto: 6,
        fx: 6,
        indices: 6,
    }))
}

/// The day file of `dataset` decompressed, with its stats.
fn csv_of(
    market: &Market,
    dataset: FlatDataset,
    kind: FlatKind,
    date: NaiveDate,
    only: Option<&[&str]>,
) -> (String, DayFileStats) {
    let mut gz = Vec::new();
    let stats = write_day_gz(market, dataset, kind, date, only, &mut gz).expect("written");
    let mut text = String::new();
    GzDecoder::new(gz.as_slice())
        .read_to_string(&mut text)
        .expect("a valid gzip member");
    (text, stats)
}

/// One parsed aggregates row.
#[derive(Debug)]
struct Row {
    ticker: String,
    bar: Bar,
    window_start: i64,
}

fn parse_rows(text: &str, dataset: FlatDataset) -> Vec<Row> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(dataset.header()));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().expect("a number");
            let int = |i: usize| f[i].parse::<i64>().expect("an integer");
            if dataset == FlatDataset::UsIndices {
                assert_eq!(f.len(), 6, "{line}");
                let ns = int(5);
                let bar = Bar {
                    t: ns / 1_000_000,
                    o: num(1),
                    h: num(3),
                    l: num(4),
                    c: num(2),
                    v: None,
                    vw: None,
                    n: None,
                };
                Row {
                    ticker: f[0].to_string(),
                    bar,
                    window_start: ns,
                }
            } else {
                assert_eq!(f.len(), 8, "{line}");
                let ns = int(6);
                let bar = Bar {
                    t: ns / 1_000_000,
                    o: num(2),
                    h: num(4),
                    l: num(5),
                    c: num(3),
                    v: Some(num(1)),
                    vw: None,
                    n: Some(int(7)),
                };
                Row {
                    ticker: f[0].to_string(),
                    bar,
                    window_start: ns,
                }
            }
        })
        .collect()
}

/// Equal bit for bit on every field a flat file carries (no vwap).
fn assert_same_bar(row: &Bar, rest: &Bar, what: &str) {
    assert_eq!(row.o.to_bits(), rest.o.to_bits(), "open {what}");
    assert_eq!(row.h.to_bits(), rest.h.to_bits(), "high {what}");
    assert_eq!(row.l.to_bits(), rest.l.to_bits(), "low {what}");
    assert_eq!(row.c.to_bits(), rest.c.to_bits(), "close {what}");
    assert_eq!(
        row.v.map(f64::to_bits),
        rest.v.map(f64::to_bits),
        "volume {what}"
    );
    assert_eq!(row.n, rest.n, "transactions {what}");
}

#[test]
fn headers_equal_the_real_files() {
    assert_eq!(FlatDataset::UsStocksSip.header(), FIXTURE_STOCKS_HEADER);
    assert_eq!(FlatDataset::GlobalCrypto.header(), FIXTURE_STOCKS_HEADER);
    assert_eq!(FlatDataset::GlobalForex.header(), FIXTURE_STOCKS_HEADER);
    assert_eq!(FlatDataset::UsIndices.header(), FIXTURE_INDICES_HEADER);
    let market = small_market();
    for dataset in FlatDataset::ALL {
        for kind in FlatKind::ALL {
            let (text, _) = csv_of(&market, dataset, kind, d(2024, 3, 5), None);
            assert_eq!(text.lines().next(), Some(dataset.header()));
            assert!(text.ends_with('\n'));
        }
    }
}

#[test]
fn minute_rows_are_the_unadjusted_rest_bars() {
    let market = small_market();
    // 2024-03-05: a trading day; NVDA and AVGO have later splits, so adjusted ≠ unadjusted.
    let date = d(2024, 3, 5);
    let (text, stats) = csv_of(
        &market,
        FlatDataset::UsStocksSip,
        FlatKind::MinuteAggs,
        date,
        None,
    );
    let rows = parse_rows(&text, FlatDataset::UsStocksSip);
    let mut expected = Vec::new();
    for info in market.reference().tickers() {
        if info.asset_class == AssetClass::Stocks {
            for bar in market.minute_bars(info, date, false) {
                expected.push((info.ticker.clone(), bar));
            }
        }
    }
    assert!(!expected.is_empty());
    assert_eq!(rows.len(), expected.len());
    assert_eq!(stats.rows, expected.len() as u64);
    for (row, (ticker, bar)) in rows.iter().zip(&expected) {
        assert_eq!(&row.ticker, ticker);
        assert_eq!(row.window_start % 1_000_000, 0);
        assert_eq!(row.window_start / 1_000_000, bar.t, "{ticker}");
        assert_same_bar(&row.bar, bar, ticker);
    }
    let nvda = market.reference().find("NVDA").expect("NVDA");
    let adjusted = market.minute_bars(nvda, date, true);
    let unadjusted = market.minute_bars(nvda, date, false);
    assert_ne!(
        adjusted[0].o, unadjusted[0].o,
        "a split makes the difference visible"
    );
    // OTC tickers are not in us_stocks_sip.
    let otc: Vec<&str> = market
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.asset_class == AssetClass::Otc)
        .map(|t| t.ticker.as_str())
        .collect();
    assert!(!otc.is_empty());
    assert!(rows.iter().all(|r| !otc.contains(&r.ticker.as_str())));
}

#[test]
fn day_rows_are_the_unadjusted_day_bars() {
    let market = small_market();
    for (dataset, date) in [
        (FlatDataset::UsStocksSip, d(2024, 3, 5)),
        (FlatDataset::GlobalCrypto, d(2024, 3, 9)),
        (FlatDataset::GlobalForex, d(2024, 3, 10)),
        (FlatDataset::UsIndices, d(2024, 3, 5)),
    ] {
        let (text, stats) = csv_of(&market, dataset, FlatKind::DayAggs, date, None);
        let rows = parse_rows(&text, dataset);
        let expected: Vec<(&str, Bar)> = market
            .reference()
            .tickers()
            .iter()
            .filter(|t| t.asset_class == dataset.asset_class())
            .filter_map(|t| Some((t.ticker.as_str(), market.day_bar(t, date, false)?)))
            .collect();
        assert!(!expected.is_empty(), "{dataset:?}");
        assert_eq!(rows.len(), expected.len(), "{dataset:?}");
        assert_eq!(stats.tickers, expected.len() as u64);
        let stamp = day_window_start_ms(dataset, date) * 1_000_000;
        for (row, (ticker, bar)) in rows.iter().zip(&expected) {
            assert_eq!(row.ticker, *ticker);
            assert_eq!(row.window_start, stamp);
            assert_same_bar(&row.bar, bar, ticker);
        }
    }
    // Stocks: 16:00 New York as in the real example (1680033600 s = 2023-03-28 16:00 EDT).
    assert_eq!(
        day_window_start_ms(FlatDataset::UsStocksSip, d(2023, 3, 28)),
        1_680_033_600_000
    );
    // Indices: 1701756000 s = 2023-12-05 06:00Z as in the real example.
    assert_eq!(
        day_window_start_ms(FlatDataset::UsIndices, d(2023, 12, 5)),
        1_701_756_000_000
    );
}

#[test]
fn numbers_parse_back_bit_equal_and_integers_print_plainly() {
    let market = small_market();
    let (text, _) = csv_of(
        &market,
        FlatDataset::UsStocksSip,
        FlatKind::MinuteAggs,
        d(2024, 3, 5),
        Some(&["AAPL"]),
    );
    let first = text.lines().nth(1).expect("a row");
    let volume = first.split(',').nth(1).expect("volume");
    assert!(!volume.contains('.'), "integer volume printed as {volume}");
    for line in text.lines().skip(1) {
        let numbers = line.split_once(',').expect("fields").1;
        assert!(!numbers.contains(['e', 'E']), "no exponents: {line}");
    }
    // Crypto volumes are fractional and must survive the round trip too.
    let (text, _) = csv_of(
        &market,
        FlatDataset::GlobalCrypto,
        FlatKind::MinuteAggs,
        d(2024, 3, 9),
        Some(&["X:BTCUSD"]),
    );
    let btc = market.reference().find("X:BTCUSD").expect("BTC");
    let bars = market.minute_bars(btc, d(2024, 3, 9), false);
    let rows = parse_rows(&text, FlatDataset::GlobalCrypto);
    assert_eq!(rows.len(), bars.len());
    for (row, bar) in rows.iter().zip(&bars) {
        assert_same_bar(&row.bar, bar, "X:BTCUSD");
    }
    assert!(
        text.lines()
            .skip(1)
            .any(|l| l.split(',').nth(1).is_some_and(|v| v.contains('.')))
    );
}

#[test]
fn rows_are_sorted_by_ticker_then_time() {
    let market = small_market();
    for dataset in FlatDataset::ALL {
        let date = d(2024, 3, 5);
        let (text, stats) = csv_of(&market, dataset, FlatKind::MinuteAggs, date, None);
        let rows = parse_rows(&text, dataset);
        assert!(!rows.is_empty(), "{dataset:?}");
        for pair in rows.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                (a.ticker.as_bytes(), a.bar.t) < (b.ticker.as_bytes(), b.bar.t),
                "{dataset:?}: {} {} then {} {}",
                a.ticker,
                a.bar.t,
                b.ticker,
                b.bar.t
            );
        }
        let mut tickers: Vec<&str> = rows.iter().map(|r| r.ticker.as_str()).collect();
        tickers.dedup();
        assert_eq!(stats.tickers, tickers.len() as u64);
    }
}

#[test]
fn calendars_per_dataset() {
    let labor_day = d(2024, 9, 2);
    let saturday = d(2024, 9, 7);
    let sunday = d(2024, 9, 8);
    let monday = d(2024, 9, 9);
    assert!(!has_file(FlatDataset::UsStocksSip, labor_day));
    assert!(has_file(FlatDataset::UsIndices, labor_day));
    assert!(has_file(FlatDataset::GlobalForex, labor_day));
    assert!(has_file(FlatDataset::GlobalCrypto, labor_day));
    assert!(has_file(FlatDataset::GlobalCrypto, saturday));
    assert!(!has_file(FlatDataset::GlobalForex, saturday));
    assert!(has_file(FlatDataset::GlobalForex, sunday));
    for dataset in [FlatDataset::UsStocksSip, FlatDataset::UsIndices] {
        assert!(!has_file(dataset, saturday));
        assert!(!has_file(dataset, sunday));
        assert!(has_file(dataset, monday));
    }
    // The fixture listing of us_indices minute aggs for 2024-09: every weekday.
    let september: Vec<NaiveDate> = FlatDataset::UsIndices
        .calendar()
        .open_days(d(2024, 9, 1), d(2024, 9, 30))
        .collect();
    assert_eq!(september.len(), 21);
    assert_eq!(september[0], labor_day);
    // No simulated index trades on an NYSE holiday: the file is header only.
    let market = small_market();
    let (text, stats) = csv_of(
        &market,
        FlatDataset::UsIndices,
        FlatKind::MinuteAggs,
        labor_day,
        None,
    );
    assert_eq!(text, format!("{INDICES_HEADER}\n"));
    assert_eq!(stats, DayFileStats::default());
    // A crypto Saturday and a forex Sunday have rows.
    let (_, crypto) = csv_of(
        &market,
        FlatDataset::GlobalCrypto,
        FlatKind::MinuteAggs,
        saturday,
        None,
    );
    assert!(crypto.rows > 0);
    let (_, forex) = csv_of(
        &market,
        FlatDataset::GlobalForex,
        FlatKind::DayAggs,
        sunday,
        None,
    );
    assert!(forex.rows > 0);
}

#[test]
fn bytes_are_deterministic_gzip() {
    let market = small_market();
    let write = |m: &Market| {
        let mut out = Vec::new();
        write_day(
            m,
            FlatDataset::UsStocksSip,
            FlatKind::MinuteAggs,
            d(2024, 3, 5),
            &mut out,
        )
        .expect("written");
        out
    };
    let first = write(&market);
    assert_eq!(first, write(&market));
    assert_eq!(
        first,
        write(&small_market()),
        "a fresh market gives the same bytes"
    );
    // gzip magic, deflate, no flags, mtime 0, no extra flags at level 6, OS unknown.
    assert_eq!(&first[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    // One member only: decoding the whole buffer consumes it all.
    let mut decoder = GzDecoder::new(first.as_slice());
    let mut text = Vec::new();
    decoder.read_to_end(&mut text).expect("decodes");
    assert!(decoder.into_inner().is_empty());
}

#[test]
fn only_restricts_and_sorts_tickers() {
    let market = small_market();
    let only = ["MSFT", "AAPL", "NOPE", "X:BTCUSD", "AAPL"];
    let (text, stats) = csv_of(
        &market,
        FlatDataset::UsStocksSip,
        FlatKind::DayAggs,
        d(2024, 3, 5),
        Some(&only),
    );
    let tickers: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(tickers, ["AAPL", "MSFT"]);
    assert_eq!(
        stats,
        DayFileStats {
            rows: 2,
            tickers: 2
        }
    );
}

#[test]
fn keys_round_trip() {
    let key = day_key(
        FlatDataset::UsStocksSip,
        FlatKind::MinuteAggs,
        d(2024, 1, 2),
    );
    assert_eq!(
        key,
        "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz"
    );
    assert_eq!(
        day_key(FlatDataset::GlobalForex, FlatKind::DayAggs, d(2024, 9, 8)),
        "global_forex/day_aggs_v1/2024/09/2024-09-08.csv.gz"
    );
    for dataset in FlatDataset::ALL {
        for kind in FlatKind::ALL {
            let date = d(2024, 12, 31);
            assert_eq!(
                parse_key(&day_key(dataset, kind, date)),
                Some((dataset, kind, date))
            );
        }
    }
    for bad in [
        "us_stocks_sip/minute_aggs_v1/2024/02/2024-01-02.csv.gz",
        "us_stocks_sip/trades_v1/2024/01/2024-01-02.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv",
        "us_stocks_sip/minute_aggs_v1/2024/01/",
        "us_options_opra/day_aggs_v1/2024/01/2024-01-02.csv.gz",
    ] {
        assert_eq!(parse_key(bad), None, "{bad}");
    }
}

#[test]
fn populate_lays_out_the_keys() {
    let market = small_market();
    let root = tempfile::tempdir().expect("temp dir");
    let only = ["AAPL", "X:BTCUSD", "C:EURUSD", "I:SPX"];
    let datasets = [
        (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
        (FlatDataset::UsStocksSip, FlatKind::DayAggs),
        (FlatDataset::GlobalCrypto, FlatKind::DayAggs),
        (FlatDataset::GlobalForex, FlatKind::DayAggs),
        (FlatDataset::UsIndices, FlatKind::MinuteAggs),
    ];
    // Friday 2024-08-30 to Tuesday 2024-09-03 (Labor Day Monday).
    let written = populate(
        &market,
        root.path(),
        "flatfiles",
        &datasets,
        d(2024, 8, 30),
        d(2024, 9, 3),
        Some(&only),
    )
    .expect("populated");
    let bucket = root.path().join("flatfiles");
    let keys: Vec<String> = written
        .iter()
        .map(|p| {
            p.strip_prefix(&bucket)
                .expect("inside the bucket")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected = [
        "us_stocks_sip/minute_aggs_v1/2024/08/2024-08-30.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2024/09/2024-09-03.csv.gz",
        "us_stocks_sip/day_aggs_v1/2024/08/2024-08-30.csv.gz",
        "us_stocks_sip/day_aggs_v1/2024/09/2024-09-03.csv.gz",
        "global_crypto/day_aggs_v1/2024/08/2024-08-30.csv.gz",
        "global_crypto/day_aggs_v1/2024/08/2024-08-31.csv.gz",
        "global_crypto/day_aggs_v1/2024/09/2024-09-01.csv.gz",
        "global_crypto/day_aggs_v1/2024/09/2024-09-02.csv.gz",
        "global_crypto/day_aggs_v1/2024/09/2024-09-03.csv.gz",
        "global_forex/day_aggs_v1/2024/08/2024-08-30.csv.gz",
        "global_forex/day_aggs_v1/2024/09/2024-09-01.csv.gz",
        "global_forex/day_aggs_v1/2024/09/2024-09-02.csv.gz",
        "global_forex/day_aggs_v1/2024/09/2024-09-03.csv.gz",
        "us_indices/minute_aggs_v1/2024/08/2024-08-30.csv.gz",
        "us_indices/minute_aggs_v1/2024/09/2024-09-02.csv.gz",
        "us_indices/minute_aggs_v1/2024/09/2024-09-03.csv.gz",
    ];
    assert_eq!(keys, expected);
    // Nothing else (no temporary files) is left in the bucket.
    let mut on_disk = Vec::new();
    let mut stack = vec![bucket.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                on_disk.push(path);
            }
        }
    }
    on_disk.sort();
    let mut sorted = written.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted);
    // The objects are the bytes write_day_gz gives.
    let path = bucket.join(expected[1]);
    let mut direct = Vec::new();
    write_day_gz(
        &market,
        FlatDataset::UsStocksSip,
        FlatKind::MinuteAggs,
        d(2024, 9, 3),
        Some(&only),
        &mut direct,
    )
    .expect("written");
    assert_eq!(fs::read(path).expect("readable"), direct);
}
