//! Tests of the simulated minute market (`market.rs`, `path.rs`).

use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, Timelike};
use chrono_tz::America::New_York;

use super::*;
use crate::calendar::{et_midnight_ms, utc_midnight_ms};
use crate::simulator::reference::WorldSize;

pub(crate) fn market() -> &'static Market {
    static MARKET: OnceLock<Market> = OnceLock::new();
    MARKET.get_or_init(|| Market::new(Reference::generate(&WorldSize::default())))
}

pub(crate) fn info(ticker: &str) -> TickerInfo {
    market().reference().find(ticker).unwrap().clone()
}

pub(crate) fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn et_hm(ms: i64) -> (u32, u32) {
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&New_York);
    (t.hour(), t.minute())
}

fn decimals_at_most(x: f64, places: i32) -> bool {
    let scaled = x * 10_f64.powi(places);
    (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
}

fn check_shape(bars: &[Bar]) {
    assert!(bars.windows(2).all(|w| w[0].t < w[1].t));
    for b in bars {
        assert_eq!(b.t % 60_000, 0);
        assert!(
            b.h >= b.o.max(b.c) && b.l <= b.o.min(b.c) && b.l > 0.0,
            "{b:?}"
        );
        if let Some(vw) = b.vw {
            assert!(b.l <= vw && vw <= b.h, "{b:?}");
            assert!(decimals_at_most(vw, 4), "{b:?}");
        }
        if let Some(n) = b.n {
            assert!(n >= 1);
            assert!(b.v.unwrap() > 0.0);
        }
    }
}

#[test]
fn stock_minutes_cover_extended_hours_with_gaps() {
    let aapl = info("AAPL");
    let bars = market().minute_bars(&aapl, d("2023-07-31"), false);
    check_shape(&bars);
    assert!(bars.len() > 600 && bars.len() < 960, "{}", bars.len());
    assert_eq!(et_hm(bars[0].t), (4, 0));
    assert!(et_hm(bars.last().unwrap().t) <= (19, 59));
    let regular = bars
        .iter()
        .filter(|b| (et_hm(b.t) >= (9, 30)) && et_hm(b.t) < (16, 0))
        .count();
    assert_eq!(regular, 390, "a liquid name trades every regular minute");
    for b in &bars {
        assert!(
            b.v.unwrap().fract() == 0.0 && decimals_at_most(b.o, 2) && decimals_at_most(b.h, 2)
        );
    }
}

#[test]
fn illiquid_names_trade_a_few_dozen_times() {
    let reference = market().reference();
    let tail = reference
        .tickers()
        .iter()
        .find(|t| {
            t.type_code.as_deref() == Some("CS")
                && t.liquidity < 0.001
                && t.is_listed_on(d("2023-07-31"))
        })
        .unwrap();
    let n = market().minute_bars(tail, d("2023-07-31"), false).len();
    assert!((5..=120).contains(&n), "{n}");
}

#[test]
fn closed_days_and_listing_bounds() {
    let aapl = info("AAPL");
    for day in ["2023-07-29", "2023-07-30", "2023-12-25", "2025-01-09"] {
        assert!(
            market().minute_bars(&aapl, d(day), false).is_empty(),
            "{day}"
        );
        assert!(market().day_bar(&aapl, d(day), false).is_none(), "{day}");
    }
    let abnb = info("ABNB");
    assert!(
        market()
            .minute_bars(&abnb, d("2020-12-09"), false)
            .is_empty()
    );
    assert!(
        !market()
            .minute_bars(&abnb, d("2020-12-10"), false)
            .is_empty()
    );
    let twtr = info("TWTR");
    assert!(
        !market()
            .minute_bars(&twtr, d("2022-10-27"), false)
            .is_empty()
    );
    assert!(
        market()
            .minute_bars(&twtr, d("2022-10-28"), false)
            .is_empty()
    );
    assert!(
        market()
            .minute_bars(&twtr, d("2023-03-01"), false)
            .is_empty()
    );
}

#[test]
fn early_close_sessions() {
    let bars = market().minute_bars(&info("AAPL"), d("2024-11-29"), false);
    assert!(et_hm(bars.last().unwrap().t) <= (16, 59));
    assert!(
        bars.iter().any(|b| et_hm(b.t) >= (13, 0)),
        "extended hours continue after 13:00"
    );
    let spx = market().minute_bars(&info("I:SPX"), d("2024-11-29"), false);
    assert_eq!(spx.len(), 210);
    assert_eq!(et_hm(spx.last().unwrap().t), (12, 59));
}

#[test]
fn indices_every_regular_minute_without_volume() {
    let bars = market().minute_bars(&info("I:SPX"), d("2024-03-11"), true);
    check_shape(&bars);
    assert_eq!(bars.len(), 390);
    assert_eq!(et_hm(bars[0].t), (9, 30));
    assert!(
        bars.iter()
            .all(|b| b.v.is_none() && b.vw.is_none() && b.n.is_none())
    );
    assert!(bars.iter().all(|b| decimals_at_most(b.c, 2)));
    let day = market()
        .day_bar(&info("I:SPX"), d("2024-03-11"), true)
        .unwrap();
    assert!(day.v.is_none() && day.vw.is_none() && day.n.is_none());
    assert!(
        market()
            .minute_bars(&info("I:SPX"), d("2024-03-09"), true)
            .is_empty()
    );
}

#[test]
fn crypto_trades_around_the_clock_in_et_days() {
    let btc = info("X:BTCUSD");
    for (day, hours) in [("2024-03-10", 23), ("2024-11-03", 25), ("2024-07-06", 24)] {
        let bars = market().minute_bars(&btc, d(day), false);
        check_shape(&bars);
        let start = et_midnight_ms(d(day));
        let end = et_midnight_ms(d(day) + Duration::days(1));
        assert_eq!(end - start, hours * 3_600_000);
        assert!(bars.iter().all(|b| b.t >= start && b.t < end));
        assert!(bars.len() as i64 > hours * 50, "{day}: {}", bars.len());
        assert!(bars.iter().any(|b| b.v.unwrap().fract() != 0.0));
        assert!(bars.iter().all(|b| decimals_at_most(b.v.unwrap(), 8)));
    }
}

#[test]
fn forex_counts_quotes_on_utc_days_sunday_to_friday() {
    let eur = info("C:EURUSD");
    let bars = market().minute_bars(&eur, d("2021-07-22"), true);
    check_shape(&bars);
    assert_eq!(bars.len(), 1440);
    assert_eq!(bars[0].t, utc_midnight_ms(d("2021-07-22")));
    assert!(
        bars.iter()
            .all(|b| b.v == b.n.map(|n| n as f64) && decimals_at_most(b.c, 5))
    );
    assert!(
        market().minute_bars(&eur, d("2021-07-24"), true).is_empty(),
        "Saturday"
    );
    assert_eq!(
        market().minute_bars(&eur, d("2021-07-25"), true).len(),
        1440,
        "Sunday"
    );
    let day = market().day_bar(&eur, d("2021-07-22"), true).unwrap();
    assert_eq!(day.t, 1_626_912_000_000);
    assert_eq!(day.v, day.n.map(|n| n as f64));
}

#[test]
fn options_trade_sparsely_while_listed() {
    let reference = market().reference();
    let contract = reference
        .option_contracts("AAPL")
        .into_iter()
        .find(|c| c.expiration_date == d("2024-07-19") && c.contract_type == "call")
        .unwrap();
    let opt = reference.option_info(&contract.ticker).unwrap();
    let mut traded = 0;
    for day in contract
        .list_date
        .iter_days()
        .take_while(|x| *x <= contract.expiration_date + Duration::days(5))
    {
        let bars = market().minute_bars(&opt, day, false);
        check_shape(&bars);
        assert!(bars.len() < 390);
        assert!(
            bars.iter()
                .all(|b| et_hm(b.t) >= (9, 30) && et_hm(b.t) < (16, 0))
        );
        assert!(bars.is_empty() || day <= contract.expiration_date);
        traded += bars.len();
    }
    assert!(traded > 0);
    assert!(
        market()
            .minute_bars(&opt, contract.list_date - Duration::days(1), false)
            .is_empty()
    );
}

#[test]
fn day_bar_is_the_aggregate_of_minutes() {
    for (t, day) in [
        ("AAPL", "2024-03-08"),
        ("AAPL", "2024-03-11"),
        ("X:BTCUSD", "2024-11-03"),
        ("C:EURUSD", "2024-03-10"),
        ("KIMpL", "2024-07-03"),
        ("I:NDX", "2023-03-09"),
    ] {
        for adjusted in [false, true] {
            let i = info(t);
            let minutes = market().minute_bars(&i, d(day), adjusted);
            let mut expected = aggregate_bars(&minutes).unwrap();
            expected.t = day_start_ms(i.asset_class, d(day));
            assert_eq!(
                market().day_bar(&i, d(day), adjusted),
                Some(expected.clone()),
                "{t} {day}"
            );
            assert_eq!(
                market().day_bar(&i, d(day), adjusted),
                Some(expected),
                "cached"
            );
        }
    }
    assert_eq!(
        market()
            .day_bar(&info("AAPL"), d("2005-04-01"), true)
            .unwrap()
            .t,
        1_112_331_600_000
    );
    assert_eq!(
        market()
            .day_bar(&info("I:NDX"), d("2023-03-09"), true)
            .unwrap()
            .t,
        1_678_338_000_000
    );
}

#[test]
fn splits_adjust_before_the_execution_date_only() {
    let aapl = info("AAPL");
    let before = d("2020-08-28");
    let raw = market().minute_bars(&aapl, before, false);
    let adj = market().minute_bars(&aapl, before, true);
    assert_eq!(raw.len(), adj.len());
    for (r, a) in raw.iter().zip(&adj) {
        assert_eq!(r.t, a.t);
        assert!((r.c / a.c - 4.0).abs() < 1e-3, "{r:?} {a:?}");
        assert_eq!(a.v.unwrap(), r.v.unwrap() * 4.0);
        assert_eq!(a.n, r.n);
        assert!(a.l <= a.vw.unwrap() && a.vw.unwrap() <= a.h);
    }
    let day_raw = market().day_bar(&aapl, before, false).unwrap();
    let day_adj = market().day_bar(&aapl, before, true).unwrap();
    assert!((day_raw.c / day_adj.c - 4.0).abs() < 1e-3);
    for after in ["2020-08-31", "2020-09-01", "2024-01-02"] {
        assert_eq!(
            market().minute_bars(&aapl, d(after), false),
            market().minute_bars(&aapl, d(after), true)
        );
    }
    // 2005: before three splits (2 × 7 × 4 = 56).
    let old_raw = market().day_bar(&aapl, d("2005-01-03"), false).unwrap();
    let old_adj = market().day_bar(&aapl, d("2005-01-03"), true).unwrap();
    assert!(
        (old_raw.o / old_adj.o - 56.0).abs() < 0.5,
        "{old_raw:?} {old_adj:?}"
    );
    // The series is continuous on the adjusted basis across the split.
    let close_before = market().day_bar(&aapl, before, true).unwrap().c;
    let open_after = market().day_bar(&aapl, d("2020-08-31"), true).unwrap().o;
    assert!((open_after / close_before - 1.0).abs() < 0.1);
    // A reverse split: GE 1-for-8 on 2021-08-02.
    let ge = info("GE");
    let raw = market().day_bar(&ge, d("2021-07-30"), false).unwrap();
    let adj = market().day_bar(&ge, d("2021-07-30"), true).unwrap();
    assert!((adj.c / raw.c - 8.0).abs() < 0.01);
}

#[test]
fn generation_is_deterministic_and_world_independent() {
    let small = Market::new(Reference::generate(&WorldSize {
        stocks_cs: 66,
        etf: 1,
        other_stock_types: 1,
        otc: 0,
        crypto: 1,
        fx: 1,
        indices: 1,
    }));
    for t in ["AAPL", "X:BTCUSD", "C:EURUSD", "I:SPX", "SPY"] {
        let big = info(t);
        let day = d("2024-06-10");
        let first = market().minute_bars(&big, day, true);
        assert_eq!(first, market().minute_bars(&big, day, true));
        let small_info = small.reference().find(t).unwrap();
        assert_eq!(small_info, &big);
        assert_eq!(small.minute_bars(small_info, day, true), first, "{t}");
        assert_eq!(
            small.day_bar(small_info, day, false),
            market().day_bar(&big, day, false)
        );
    }
}

#[test]
fn aggregate_bars_rule() {
    let bar = |t, o, h, l, c, v: Option<f64>, vw: Option<f64>, n| Bar {
        t,
        o,
        h,
        l,
        c,
        v,
        vw,
        n,
    };
    assert_eq!(aggregate_bars(&[]), None);
    let a = bar(0, 10.0, 11.0, 9.0, 10.5, Some(100.0), Some(10.2), Some(3));
    let b = bar(
        60_000,
        10.5,
        12.0,
        10.0,
        11.0,
        Some(300.0),
        Some(11.1),
        Some(5),
    );
    let agg = aggregate_bars(&[a.clone(), b]).unwrap();
    assert_eq!(
        agg,
        bar(0, 10.0, 12.0, 9.0, 11.0, Some(400.0), Some(10.875), Some(8))
    );
    let i = bar(0, 1.0, 2.0, 0.5, 1.5, None, None, None);
    assert_eq!(aggregate_bars(&[i.clone(), i]).unwrap().v, None);
    assert_eq!(aggregate_bars(std::slice::from_ref(&a)), Some(a));
}

#[test]
fn day_bars_are_well_formed_over_a_year() {
    let otc_penny = market()
        .reference()
        .tickers()
        .iter()
        .find(|t| t.market == "otc" && t.base_price < 0.5 && t.is_listed_on(d("2023-01-03")))
        .unwrap()
        .ticker
        .clone();
    for t in [
        "AAPL",
        "GE",
        "X:BTCUSD",
        "X:DOGEUSD",
        "C:EURUSD",
        "C:USDJPY",
        "I:VIX",
        &otc_penny,
    ] {
        for adjusted in [false, true] {
            let i = info(t);
            let bars: Vec<Bar> = d("2021-01-01")
                .iter_days()
                .take_while(|x| x.year() < 2022)
                .filter_map(|x| market().day_bar(&i, x, adjusted))
                .collect();
            assert!(bars.len() >= 250, "{t}");
            check_shape(&bars);
        }
    }
}
