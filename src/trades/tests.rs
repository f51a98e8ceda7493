use std::fmt::Write as _;

use chrono::NaiveDate;

use super::conditions::{STOCK_TRADE_CONDITIONS, correction, default_conditions_json};
use super::*;
use crate::calendar::et_ms;
use crate::model::{Bar, Timeframe};

/// The real head of `us_stocks_sip/trades_v1/2024/04/2024-04-05.csv.gz`
/// (fixtures README: Polygon's blog, verbatim).
const REAL_HEAD_GZ: &[u8] =
    include_bytes!("../../tests/fixtures/flatfiles/us_stocks_sip_trades_v1_2024-04-05_head.csv.gz");

const HEADER: &str = "ticker,conditions,correction,exchange,id,participant_timestamp,price,\
                      sequence_number,sip_timestamp,size,tape,trf_id,trf_timestamp\n";

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A hand-made trade: `ms` after `hh:mm` ET on `date`.
struct T {
    ticker: &'static str,
    conditions: &'static str,
    correction: u8,
    price: &'static str,
    size: u32,
    sip_ns: i64,
}

fn at(date: &str, hour: u32, minute: u32, ms: i64) -> i64 {
    (et_ms(d(date), hour, minute) + ms) * 1_000_000
}

fn t(conditions: &'static str, correction: u8, price: &'static str, size: u32, sip_ns: i64) -> T {
    T {
        ticker: "AAPL",
        conditions,
        correction,
        price,
        size,
        sip_ns,
    }
}

fn csv(trades: &[T]) -> String {
    let mut out = HEADER.to_owned();
    for (i, tr) in trades.iter().enumerate() {
        let conditions = if tr.conditions.contains(',') {
            format!("\"{}\"", tr.conditions)
        } else {
            tr.conditions.to_owned()
        };
        writeln!(
            out,
            "{},{conditions},{},4,{i},{},{},{i},{},{},3,0,0",
            tr.ticker, tr.correction, tr.sip_ns, tr.price, tr.sip_ns, tr.size
        )
        .unwrap();
    }
    out
}

fn run(text: &str, specs: &[&str]) -> (Vec<TickerBars>, TradeStats) {
    let specs: Vec<BarSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
    let mut out = Vec::new();
    let stats = aggregate_csv(
        text.as_bytes(),
        "k",
        ConditionTable::polygon_default(),
        &specs,
        |_| true,
        |bars| {
            out.push(bars);
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    (out, stats)
}

fn bars_of(text: &str, spec: &str) -> Vec<Bar> {
    let (mut out, _) = run(text, &[spec]);
    assert_eq!(out.len(), 1);
    out.remove(0).series.remove(0).bars
}

fn bar(timestamp_ms: i64, ohlc: [f64; 4], volume: f64, vwap: f64, n: i64) -> Bar {
    Bar {
        timestamp: timestamp_ms,
        open: ohlc[0],
        high: ohlc[1],
        low: ohlc[2],
        close: ohlc[3],
        volume: Some(volume),
        vwap: Some(vwap),
        transactions: Some(n),
    }
}

// ---- conditions ----

#[test]
fn the_default_table_holds_polygons_consolidated_rules() {
    let table = ConditionTable::polygon_default();
    let rules = |code| table.consolidated(code).unwrap();
    assert_eq!(rules(0), UpdateRules::ALL);
    assert_eq!(
        rules(2),
        UpdateRules::new(false, false, true),
        "average price"
    );
    assert_eq!(rules(37), UpdateRules::new(false, false, true), "odd lot");
    assert_eq!(rules(10), UpdateRules::new(true, false, true));
    assert_eq!(rules(15), UpdateRules::NONE);
    assert_eq!(rules(38), UpdateRules::new(true, true, false));
    assert_eq!(rules(12), UpdateRules::new(false, false, true));
    // Extended hours update minute bars (Polygon's knowledge base).
    assert_eq!(table.intraday(12), Some(UpdateRules::ALL));
    assert_eq!(
        table.intraday(13),
        Some(UpdateRules::new(true, false, true))
    );
    assert_eq!(table.consolidated(17), None);
}

#[test]
fn several_conditions_combine_and_a_no_wins() {
    let table = ConditionTable::polygon_default();
    let odd_form_t = table.trade_rules(&[12, 37]);
    assert_eq!(odd_form_t.rules, UpdateRules::new(false, false, true));
    assert!(!odd_form_t.unknown);
    assert_eq!(table.trade_rules(&[]).rules, UpdateRules::ALL);
    assert_eq!(table.trade_rules(&[14, 41]).rules, UpdateRules::ALL);
    let unknown = table.trade_rules(&[14, 99]);
    assert_eq!(unknown.rules, UpdateRules::ALL);
    assert!(unknown.unknown);
}

/// Rows in the shape of a live `/v3/reference/conditions` answer: 41 is both
/// a trade condition and a settlement condition, and quote conditions have
/// no update rules.
const LIVE_SHAPE: &str = r#"{"results": [
 {"id": 6, "type": "sale_condition", "name": "CAP Election", "asset_class": "stocks", "sip_mapping": {"CTA": "I"}, "update_rules": {"consolidated": {"updates_high_low": true, "updates_open_close": true, "updates_volume": true}, "market_center": {"updates_high_low": true, "updates_open_close": true, "updates_volume": true}}, "data_types": ["trade"], "legacy": true},
 {"id": 10, "type": "sale_condition", "name": "Derivatively Priced", "asset_class": "stocks", "sip_mapping": {"CTA": "4", "UTP": "4"}, "update_rules": {"consolidated": {"updates_high_low": true, "updates_open_close": false, "updates_volume": true}, "market_center": {"updates_high_low": true, "updates_open_close": false, "updates_volume": true}}, "data_types": ["trade"]},
 {"id": 37, "type": "sale_condition", "name": "Odd Lot Trade", "asset_class": "stocks", "sip_mapping": {"CTA": "I", "UTP": "I", "FINRA_TDDS": "I"}, "update_rules": {"consolidated": {"updates_high_low": false, "updates_open_close": false, "updates_volume": true}, "market_center": {"updates_high_low": false, "updates_open_close": false, "updates_volume": true}}, "data_types": ["trade"]},
 {"id": 41, "type": "trade_thru_exempt", "name": "Trade Thru Exempt", "asset_class": "stocks", "sip_mapping": {"CTA": "1", "UTP": "X"}, "update_rules": {"consolidated": {"updates_high_low": true, "updates_open_close": true, "updates_volume": true}, "market_center": {"updates_high_low": true, "updates_open_close": true, "updates_volume": true}}, "data_types": ["trade"]},
 {"id": 41, "type": "settlement_condition", "name": "Cash Only Settlement", "asset_class": "stocks", "sip_mapping": {"CTA": "A"}, "data_types": ["bbo", "nbbo"]},
 {"id": 1, "type": "quote_condition", "name": "Regular Two-Sided Open", "asset_class": "stocks", "sip_mapping": {"CTA": "R", "UTP": "R"}, "data_types": ["bbo", "nbbo"]}
], "status": "OK", "request_id": "x", "count": 6, "next_url": "https://api.polygon.io/v3/reference/conditions?cursor=abc"}"#;

#[test]
fn the_endpoints_json_is_read_keeping_trade_rules_only() {
    let mut table = ConditionTable::from_json(b"{\"results\": []}").unwrap();
    let next = table.extend_from_json(LIVE_SHAPE.as_bytes()).unwrap();
    assert!(next.unwrap().contains("cursor=abc"));
    let codes: Vec<u16> = table.iter().map(|(id, _)| id).collect();
    assert_eq!(codes, [6, 10, 37, 41]);
    assert_eq!(
        table.consolidated(37),
        Some(UpdateRules::new(false, false, true))
    );
    assert_eq!(table.consolidated(41), Some(UpdateRules::ALL));
    assert_eq!(table.consolidated(1), None, "a quote condition");

    let conflicting = LIVE_SHAPE.replacen(r#""id": 6,"#, r#""id": 37,"#, 1);
    let err = ConditionTable::from_json(conflicting.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("condition 37 is listed twice"),
        "{err}"
    );
    let err = ConditionTable::from_json(b"<html>").unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn the_default_table_served_as_json_reads_back_the_same() {
    let body = serde_json::to_vec(&default_conditions_json()).unwrap();
    let table = ConditionTable::from_json(&body).unwrap();
    assert_eq!(table, ConditionTable::polygon_default());
    assert_eq!(table.iter().count(), STOCK_TRADE_CONDITIONS.len());
}

#[test]
fn corrections_keep_the_trade_as_it_finally_stands() {
    assert!(correction_counts(correction::REGULAR));
    assert!(correction_counts(correction::CORRECTED));
    for dropped in [
        correction::ERRONEOUS,
        correction::CANCELLED,
        correction::CANCEL_RECORD,
        correction::ERROR_RECORD,
        correction::CORRECTION_RECORD,
        2,
        99,
    ] {
        assert!(!correction_counts(dropped), "{dropped}");
    }
}

// ---- time bars ----

/// One minute of AAPL at the open of 2024-04-05 (EDT) exercising every rule,
/// and a second minute of odd lots only.
fn rule_minute() -> Vec<T> {
    let ms = |m: u32, x: i64| at("2024-04-05", 9, 30 + m, x);
    vec![
        t("", 0, "10.00", 100, ms(0, 100)),       // open
        t("37", 0, "10.50", 5, ms(0, 200)),       // odd lot above: volume only
        t("2", 0, "9.00", 200, ms(0, 300)),       // average price below: volume only
        t("14", 8, "20.00", 100, ms(0, 400)),     // cancelled: dropped
        t("", 10, "20.00", 100, ms(0, 450)),      // its cancel record: dropped
        t("", 1, "10.10", 100, ms(0, 500)),       // corrected data: counted, the high
        t("", 12, "30.00", 100, ms(0, 600)),      // correction record (old data): dropped
        t("14,41", 0, "9.95", 50, ms(0, 700)),    // the low
        t("14", 0, "10.05", 100, ms(0, 800)),     // close
        t("15", 0, "11.00", 100, ms(0, 900)),     // official close: nothing
        t("37", 0, "10.20", 7, ms(1, 0)),         // next minute: odd lots only
        t("12,37", 0, "10.30", 3, ms(1, 10_000)), // (and in the next 10 s)
    ]
}

#[test]
fn a_minute_follows_every_rule() {
    let text = csv(&rule_minute());
    let (out, stats) = run(&text, &["1m", "1s"]);
    assert_eq!(out.len(), 1);
    let start = et_ms(d("2024-04-05"), 9, 30);
    let vwap: f64 = (1000.0 + 52.5 + 1800.0 + 1010.0 + 497.5 + 1005.0) / 555.0;
    let expected = bar(
        start,
        [10.00, 10.10, 9.95, 10.05],
        555.0,
        (vwap * 10_000.0).round_ties_even() / 10_000.0,
        6,
    );
    assert_eq!(expected.vwap, Some(9.6667));
    let series = &out[0].series;
    assert_eq!(series[0].spec.to_string(), "1m");
    assert_eq!(
        series[0].bars,
        [expected],
        "the odd-lot minute gives no bar"
    );
    // The same trades all fall in the first second of the minute.
    assert_eq!(series[1].bars, [expected]);
    assert_eq!(stats.rows, 12);
    assert_eq!(stats.corrections_dropped, 3);
    assert_eq!(stats.updating_nothing, 1);
    assert_eq!(
        stats.volume_without_bar,
        2.0 * 10.0,
        "7 + 3 shares, in 1m and 1s"
    );
}

#[test]
fn open_and_close_follow_sip_time_not_file_order() {
    let ms = |x: i64| at("2024-04-05", 10, 0, x);
    let text = csv(&[
        t("", 0, "10.00", 100, ms(500)),
        t("", 0, "11.00", 100, ms(900)),
        t("", 0, "12.00", 100, ms(100)), // late in the file, first in time
    ]);
    let bars = bars_of(&text, "1m");
    assert_eq!(bars.len(), 1);
    assert_eq!((bars[0].open, bars[0].close), (12.0, 11.0));
    // Second bars: an earlier window arriving later is still ordered.
    let text = csv(&[
        t("", 0, "10.00", 100, ms(2_000)),
        t("", 0, "11.00", 100, ms(1_000)),
    ]);
    let stamps: Vec<i64> = bars_of(&text, "1s").iter().map(|b| b.timestamp).collect();
    assert_eq!(stamps, [ms(1_000) / 1_000_000, ms(2_000) / 1_000_000]);
}

#[test]
fn bars_are_stamped_in_utc_across_daylight_saving_changes() {
    // 09:30 ET is 14:30Z before 2024-03-10 and 13:30Z after; 13:30Z before
    // 2024-11-03 and 14:30Z after.
    let z = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    for (date, utc) in [
        ("2024-03-08", "2024-03-08T14:30:00Z"),
        ("2024-03-11", "2024-03-11T13:30:00Z"),
        ("2024-11-01", "2024-11-01T13:30:00Z"),
        ("2024-11-04", "2024-11-04T14:30:00Z"),
    ] {
        let text = csv(&[t("", 0, "10.00", 100, at(date, 9, 30, 59_999))]);
        assert_eq!(bars_of(&text, "1m")[0].timestamp, z(utc), "{date}");
        assert_eq!(
            bars_of(&text, "30s")[0].timestamp,
            z(utc) + 30_000,
            "{date}"
        );
        assert_eq!(bars_of(&text, "5m")[0].timestamp, z(utc), "{date}");
    }
    // The night of the change itself: 01:59:59 EST and 03:00:00 EDT are one
    // second apart in UTC, in two minutes.
    let before = z("2024-03-10T06:59:59Z") * 1_000_000;
    let after = z("2024-03-10T07:00:00Z") * 1_000_000;
    let text = csv(&[t("", 0, "10.00", 1, before), t("", 0, "10.00", 1, after)]);
    let stamps: Vec<i64> = bars_of(&text, "1m").iter().map(|b| b.timestamp).collect();
    assert_eq!(
        stamps,
        [z("2024-03-10T06:59:00Z"), z("2024-03-10T07:00:00Z")]
    );
}

// ---- information-driven bars ----

/// Two sessions of hand-computed trades; the second starts on a Monday.
fn activity_trades() -> Vec<T> {
    let fri = |x: i64| at("2024-04-05", 19, 59, x); // after hours, EDT
    let mon = |x: i64| at("2024-04-08", 4, 0, x); // pre-market
    vec![
        t("", 0, "10.00", 100, fri(1)),   // $1000, vol 100
        t("", 0, "10.00", 200, fri(2)),   // $2000, vol 300
        t("12", 0, "10.20", 200, fri(3)), // $2040, vol 500 (Form T updates all)
        t("", 0, "9.80", 700, fri(4)),    // $6860, vol 700
        t("37", 0, "9.90", 50, fri(5)),   // odd lot: counted, no price
        t("15", 0, "12.00", 100, fri(6)), // updates nothing: ignored
        t("", 8, "50.00", 100, fri(7)),   // cancelled: ignored
        t("", 0, "10.00", 100, fri(8)),   // $1000, vol 100
        t("", 0, "10.10", 100, mon(0)),   // next session
    ]
}

fn ms_of(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

#[test]
fn volume_bars_close_at_the_threshold_and_at_the_session_end() {
    let trades = activity_trades();
    let bars = bars_of(&csv(&trades), "500v");
    assert_eq!(
        bars,
        [
            // Exactly 500: closes on the third trade.
            bar(
                ms_of(trades[0].sip_ns),
                [10.0, 10.2, 10.0, 10.2],
                500.0,
                10.08,
                3
            ),
            // One trade crosses alone; the excess is not carried.
            bar(ms_of(trades[3].sip_ns), [9.8, 9.8, 9.8, 9.8], 700.0, 9.8, 1),
            // Short: the session ended. The odd lot counts but sets no price.
            bar(
                ms_of(trades[4].sip_ns),
                [10.0, 10.0, 10.0, 10.0],
                150.0,
                9.9667,
                2
            ),
            // The last bar of the file.
            bar(
                ms_of(trades[8].sip_ns),
                [10.1, 10.1, 10.1, 10.1],
                100.0,
                10.1,
                1
            ),
        ]
    );
}

#[test]
fn tick_bars_count_trades_that_update_volume() {
    let trades = activity_trades();
    let bars = bars_of(&csv(&trades), "2t");
    let shape: Vec<(i64, i64, f64)> = bars
        .iter()
        .map(|b| (b.timestamp, b.transactions.unwrap(), b.volume.unwrap()))
        .collect();
    assert_eq!(
        shape,
        [
            (ms_of(trades[0].sip_ns), 2, 300.0),
            (ms_of(trades[2].sip_ns), 2, 900.0),
            (ms_of(trades[4].sip_ns), 2, 150.0),
            (ms_of(trades[8].sip_ns), 1, 100.0),
        ]
    );
    // A bar of one odd lot takes its price from the odd lot.
    let one = bars_of(&csv(&trades), "1t");
    assert_eq!(one.len(), 7);
    assert_eq!(one[4], bar(ms_of(trades[4].sip_ns), [9.9; 4], 50.0, 9.9, 1));
}

#[test]
fn dollar_bars_close_at_the_threshold() {
    let trades = activity_trades();
    let bars = bars_of(&csv(&trades), "3e3$");
    assert_eq!(
        bars,
        [
            // $1000 + $2000 = $3000 exactly.
            bar(
                ms_of(trades[0].sip_ns),
                [10.0, 10.0, 10.0, 10.0],
                300.0,
                10.0,
                2
            ),
            // $2040 + $6860 = $8900.
            bar(
                ms_of(trades[2].sip_ns),
                [10.2, 10.2, 9.8, 9.8],
                900.0,
                9.8889,
                2
            ),
            // $495 + $1000, cut by the session.
            bar(
                ms_of(trades[4].sip_ns),
                [10.0, 10.0, 10.0, 10.0],
                150.0,
                9.9667,
                2
            ),
            bar(ms_of(trades[8].sip_ns), [10.1; 4], 100.0, 10.1, 1),
        ]
    );
}

#[test]
fn a_session_is_the_new_york_date_not_the_utc_one() {
    // 2024-11-04 19:59 EST is 00:59Z on 11-05; 11-05 04:00 EST is 09:00Z.
    let a = at("2024-11-04", 19, 59, 0);
    let b = at("2024-11-05", 4, 0, 0);
    let c = at("2024-11-05", 4, 1, 0);
    let text = csv(&[
        t("", 0, "10.00", 10, a),
        t("", 0, "10.00", 10, b),
        t("", 0, "10.00", 10, c),
    ]);
    let stamps: Vec<i64> = bars_of(&text, "1000v")
        .iter()
        .map(|b| b.timestamp)
        .collect();
    assert_eq!(stamps, [ms_of(a), ms_of(b)]);
}

// ---- notation ----

#[test]
fn bar_notation_parses_and_prints_canonically() {
    for (text, shown) in [
        ("1s", "1s"),
        ("5s", "5s"),
        ("10s", "10s"),
        ("30s", "30s"),
        ("1m", "1m"),
        ("60s", "1m"),
        ("1h", "1h"),
        ("1000t", "1000t"),
        ("1e3t", "1000t"),
        ("50000v", "50000v"),
        ("5e4v", "50000v"),
        ("1e6$", "1e6$"),
        ("1000000$", "1e6$"),
        ("1e6usd", "1e6$"),
        ("2.5e6$", "2.5e6$"),
        ("1234567v", "1234567v"),
    ] {
        let spec: BarSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(spec.to_string(), shown, "{text}");
        assert_eq!(shown.parse::<BarSpec>().unwrap(), spec, "{shown}");
    }
    assert_eq!(
        "1e6$".parse::<BarSpec>().unwrap(),
        BarSpec::Info(InfoBarSpec {
            activity: Activity::Dollars,
            threshold: 1_000_000
        })
    );
    assert_eq!(
        "1m".parse::<BarSpec>().unwrap(),
        BarSpec::Time(Timeframe::MINUTE)
    );
}

#[test]
fn bad_bar_notation_says_why() {
    for (text, says) in [
        ("0t", "is zero"),
        ("-5v", "is negative"),
        ("1.5t", "not a whole number"),
        ("1e6x", "activity bar"),
        ("1e-3v", "bad exponent"),
        ("t", "activity bar"),
        ("$", "activity bar"),
        ("1e20$", "larger than 1e15"),
        ("1d", "daily and longer"),
        ("abc", "timeframe"),
    ] {
        let err = text.parse::<BarSpec>().unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
        assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
    }
}

// ---- the CSV reader ----

#[test]
fn the_real_head_reads_and_aggregates() {
    let mut csv = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(REAL_HEAD_GZ),
        &mut csv,
    )
    .unwrap();
    let mut reader = TradesReader::new(csv.as_slice(), "head").unwrap();
    let (ticker, first) = reader.next_trade().unwrap().unwrap();
    assert_eq!(ticker, "A");
    assert_eq!(first.conditions.as_slice(), [12, 37]);
    assert_eq!(
        (first.price, first.size, first.sip_ns, first.correction),
        (142.99, 5.0, 1_712_306_654_208_740_096, 0)
    );
    let (_, second) = reader.next_trade().unwrap().unwrap();
    assert_eq!(second.conditions.as_slice(), [12, 37]);
    let (_, third) = reader.next_trade().unwrap().unwrap();
    assert_eq!(third.conditions.as_slice(), [12]);
    assert_eq!((third.price, third.size), (143.0, 187.0));
    assert!(reader.next_trade().unwrap().is_none());
    assert_eq!(reader.line(), 4);

    // 04:44 ET: the two odd lots (Form T + odd lot) add volume only; the
    // Form T round lot sets every price.
    let mut out = Vec::new();
    let stats = aggregate_gzip(
        REAL_HEAD_GZ,
        "head",
        ConditionTable::polygon_default(),
        &[BarSpec::Time(Timeframe::MINUTE)],
        |_| true,
        |b| {
            out.push(b);
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    assert_eq!(stats.rows, 3);
    let vwap = (142.99 * 5.0 + 143.0 * 8.0 + 143.0 * 187.0) / 200.0;
    assert_eq!(
        out[0].series[0].bars,
        [bar(
            1_712_306_640_000,
            [143.0; 4],
            200.0,
            (vwap * 10_000.0_f64).round_ties_even() / 10_000.0,
            3
        )]
    );
    assert_eq!(out[0].ticker.as_str(), "A");
}

fn read_error(text: &str) -> String {
    let mut reader = match TradesReader::new(text.as_bytes(), "k") {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    loop {
        match reader.next_trade() {
            Ok(Some(_)) => {}
            Ok(None) => return "no error".to_owned(),
            Err(e) => return e.to_string(),
        }
    }
}

#[test]
fn malformed_rows_are_errors_naming_line_and_column() {
    let good = "A,,0,4,1,1,10.5,1,1712306654208740096,100,1,0,0\n";
    for (bad, says) in [
        (
            "A,\"12,37,0,4,1,1,10.5,1,1,100,1,0,0\n",
            "line 3: a quoted field without its closing quote",
        ),
        (
            "A,12,0,4,1,1,10.5,1\n",
            "line 3: the row does not have the header's 13 fields",
        ),
        (
            "A,12,0,4,1,1,10.5,1,1,100,1,0,0,9\n",
            "line 3: the row does not have",
        ),
        (
            "A,12,0,4,1,1,abc,1,1,100,1,0,0\n",
            "line 3, column `price`: \"abc\" is not a positive number",
        ),
        (
            "A,\"12,x\",0,4,1,1,10,1,1,100,1,0,0\n",
            "line 3, column `conditions`: \"x\" is not a condition code",
        ),
        (
            "A,12,300,4,1,1,10,1,1,100,1,0,0\n",
            "line 3, column `correction`",
        ),
        (
            "A,12,0,4,1,1,10,1,1.5,100,1,0,0\n",
            "line 3, column `sip_timestamp`",
        ),
        ("A,12,0,4,1,1,10,1,1,-3,1,0,0\n", "line 3, column `size`"),
        (
            ",12,0,4,1,1,10,1,1,3,1,0,0\n",
            "line 3, column `ticker`: the ticker is empty",
        ),
        (
            "A,\"12\"x,0,4,1,1,10,1,1,3,1,0,0\n",
            "text after a closing quote",
        ),
    ] {
        let err = read_error(&format!("{HEADER}{good}{bad}"));
        assert!(err.contains("trades file k"), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let err = read_error("ticker,price,size\n");
    assert!(err.contains("no `conditions` column"), "{err}");
    assert!(read_error("").contains("is empty"));
    assert_eq!(read_error(&format!("{HEADER}{good}\n{good}")), "no error");
    let long = format!("{HEADER}{}\n", "x".repeat(MAX_TRADE_LINE + 10));
    assert!(read_error(&long).contains("a line longer than"));
}

#[test]
fn a_truncated_gzip_file_is_an_error_not_fewer_bars() {
    let cut = &REAL_HEAD_GZ[..REAL_HEAD_GZ.len() - 12];
    let err = aggregate_gzip(
        cut,
        "us_stocks_sip/trades_v1/2024/04/2024-04-05.csv.gz",
        ConditionTable::polygon_default(),
        &[BarSpec::Time(Timeframe::MINUTE)],
        |_| true,
        |_| Ok::<(), &str>(()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("reading trades file us_stocks_sip/trades_v1/2024/04/2024-04-05.csv.gz"),
        "{err}"
    );
}

#[test]
fn tickers_come_out_one_by_one_and_a_regrouped_file_is_refused() {
    let ms = |x: i64| at("2024-04-05", 10, 0, x);
    let mut trades = vec![t("", 0, "10", 1, ms(0)), t("", 0, "10", 1, ms(1))];
    trades[1].ticker = "MSFT";
    let mut unwanted = t("", 0, "10", 1, ms(2));
    unwanted.ticker = "ZZZ";
    trades.push(unwanted);
    let mut seen = Vec::new();
    let mut asked = Vec::new();
    let stats = aggregate_csv(
        csv(&trades).as_bytes(),
        "k",
        ConditionTable::polygon_default(),
        &["1m".parse().unwrap()],
        |name| {
            asked.push(name.to_owned());
            name != "ZZZ"
        },
        |b| {
            seen.push(b.ticker.to_string());
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    assert_eq!(seen, ["AAPL", "MSFT"]);
    assert_eq!(asked, ["AAPL", "MSFT", "ZZZ"]);
    assert_eq!((stats.rows, stats.wanted_rows, stats.tickers), (3, 2, 2));

    let mut again = t("", 0, "10", 1, ms(3));
    again.ticker = "AAPL";
    trades.push(again);
    let err = aggregate_csv(
        csv(&trades).as_bytes(),
        "k",
        ConditionTable::polygon_default(),
        &["1m".parse().unwrap()],
        |_| true,
        |_| Ok::<(), &str>(()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("line 5: ticker AAPL appears again after other tickers"),
        "{err}"
    );
    // A sink error stops the aggregation and comes back as it was.
    let err = aggregate_csv(
        csv(&trades[..1]).as_bytes(),
        "k",
        ConditionTable::polygon_default(),
        &["1m".parse().unwrap()],
        |_| true,
        |_| Err("disk full"),
    )
    .unwrap_err();
    assert!(matches!(err, AggregateError::Sink("disk full")));
}
