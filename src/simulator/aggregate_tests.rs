//! Tests of the range-aggregates logic (`aggregate.rs`).

use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use super::*;
use crate::calendar::{et_midnight_ms, utc_midnight_ms};
use crate::simulator::market::aggregate_bars;
use crate::simulator::reference::{Reference, WorldSize};

fn market() -> &'static Market {
    static MARKET: OnceLock<Market> = OnceLock::new();
    MARKET.get_or_init(|| Market::new(Reference::generate(&WorldSize::default())))
}

fn info(ticker: &str) -> TickerInfo {
    market().reference().find(ticker).unwrap().clone()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn query(mult: u32, span: Timespan, from: RangeBound, to: RangeBound, limit: usize) -> AggQuery {
    AggQuery {
        multiplier: mult,
        timespan: span,
        from,
        to,
        adjusted: true,
        limit,
    }
}

fn dates(mult: u32, span: Timespan, from: &str, to: &str, limit: usize) -> AggQuery {
    query(
        mult,
        span,
        RangeBound::Date(d(from)),
        RangeBound::Date(d(to)),
        limit,
    )
}

fn run(ticker: &str, q: &AggQuery) -> AggPage {
    range_aggregates(market(), &info(ticker), q)
}

/// Every bar of `coarse` equals `aggregate_bars` of the `fine` bars in its whole window
/// [t, end(t)), and every fine bar from the first window start to the last window end
/// falls in some coarse bar.
fn assert_aggregates(fine: &[Bar], coarse: &[Bar], end: impl Fn(i64) -> i64) {
    let mut covered = 0;
    for bar in coarse {
        let window_end = end(bar.t);
        let inside: Vec<Bar> = fine
            .iter()
            .filter(|b| b.t >= bar.t && b.t < window_end)
            .cloned()
            .collect();
        let mut expected = aggregate_bars(&inside).unwrap();
        expected.t = bar.t;
        assert_eq!(bar, &expected);
        covered += inside.len();
    }
    let (first, last) = (coarse.first().unwrap().t, end(coarse.last().unwrap().t));
    assert_eq!(
        covered,
        fine.iter().filter(|b| b.t >= first && b.t < last).count()
    );
}

#[test]
fn parsing() {
    assert_eq!(Timespan::from_polygon("minute"), Some(Timespan::Minute));
    assert_eq!(Timespan::from_polygon("quarter"), Some(Timespan::Quarter));
    assert_eq!(Timespan::from_polygon("Minute"), None);
    assert_eq!(
        RangeBound::parse("2023-07-31"),
        Some(RangeBound::Date(d("2023-07-31")))
    );
    assert_eq!(
        RangeBound::parse("1690791480000"),
        Some(RangeBound::Millis(1_690_791_480_000))
    );
    assert_eq!(RangeBound::parse("2023-13-01"), None);
    assert_eq!(RangeBound::parse("yesterday"), None);
}

#[test]
fn longer_intraday_bars_are_aggregates_of_minutes() {
    let cases = [
        ("AAPL", "2023-07-31", "2023-07-31"),
        ("AAPL", "2024-03-08", "2024-03-11"),
        ("AAPL", "2024-11-01", "2024-11-04"),
        ("AAPL", "2024-11-29", "2024-11-29"),
        ("KIMpL", "2024-07-03", "2024-07-05"),
        ("X:BTCUSD", "2024-03-09", "2024-03-11"),
        ("X:BTCUSD", "2024-11-02", "2024-11-04"),
        ("C:EURUSD", "2024-03-08", "2024-03-11"),
        ("I:SPX", "2024-03-08", "2024-03-11"),
    ];
    for (ticker, from, to) in cases {
        let minutes = run(ticker, &dates(1, Timespan::Minute, from, to, 50_000));
        assert!(minutes.next_from_ms.is_none());
        let minutes_of = |first: NaiveDate, last: NaiveDate| -> Vec<Bar> {
            first
                .iter_days()
                .take_while(|x| *x <= last)
                .flat_map(|x| market().minute_bars(&info(ticker), x, true))
                .collect()
        };
        assert_eq!(minutes.bars, minutes_of(d(from), d(to)), "{ticker}");
        // Windows are whole: edge windows may reach into the neighbouring days.
        let around = minutes_of(d(from) - Duration::days(1), d(to) + Duration::days(1));
        for (mult, span, width) in [
            (5, Timespan::Minute, 300_000),
            (15, Timespan::Minute, 900_000),
            (1, Timespan::Hour, 3_600_000),
            (4, Timespan::Hour, 14_400_000),
        ] {
            let page = run(ticker, &dates(mult, span, from, to, 50_000));
            assert!(page.bars.iter().all(|b| b.t % width == 0));
            assert_aggregates(&around, &page.bars, |t| t + width);
        }
        let info = info(ticker);
        let zone = info.asset_class.day_zone();
        let days = run(ticker, &dates(1, Timespan::Day, from, to, 50_000));
        assert_aggregates(&minutes.bars, &days.bars, |t| {
            let day = crate::calendar::zone_date_of_ms(zone, t);
            zone_midnight_ms(zone, day + Duration::days(1))
        });
    }
}

#[test]
fn daily_t_matches_the_fixture_convention() {
    let page = run(
        "AAPL",
        &dates(1, Timespan::Day, "2005-04-01", "2005-04-04", 5000),
    );
    let ts: Vec<i64> = page.bars.iter().map(|b| b.t).collect();
    assert_eq!(ts, [1_112_331_600_000, 1_112_587_200_000]);
    let fx = run(
        "C:EURUSD",
        &dates(1, Timespan::Day, "2021-07-22", "2021-07-22", 5000),
    );
    assert_eq!(fx.bars[0].t, 1_626_912_000_000);
    let btc = run(
        "X:BTCUSD",
        &dates(1, Timespan::Day, "2020-06-01", "2020-06-02", 5000),
    );
    assert_eq!(
        btc.bars.iter().map(|b| b.t).collect::<Vec<_>>(),
        [1_590_984_000_000, 1_591_070_400_000]
    );
}

fn all_pages(ticker: &str, first: &AggQuery) -> (Vec<Bar>, usize) {
    let mut q = first.clone();
    let mut bars: Vec<Bar> = Vec::new();
    let mut pages = 0;
    loop {
        let page = run(ticker, &q);
        pages += 1;
        assert!(!page.bars.is_empty());
        if let (Some(last), Some(first_new)) = (bars.last(), page.bars.first()) {
            assert!(last.t < first_new.t, "no duplicates");
        }
        bars.extend(page.bars);
        match page.next_from_ms {
            Some(next) => {
                assert!(next > bars.last().unwrap().t);
                q.from = RangeBound::Millis(next);
            }
            None => return (bars, pages),
        }
        assert!(pages < 10_000);
    }
}

#[test]
fn paging_concatenates_to_the_single_answer() {
    let cases = [
        (
            "AAPL",
            dates(1, Timespan::Minute, "2024-03-04", "2024-03-10", 100),
        ),
        (
            "AAPL",
            dates(5, Timespan::Minute, "2024-03-04", "2024-03-10", 100),
        ),
        (
            "X:BTCUSD",
            dates(1, Timespan::Hour, "2024-03-08", "2024-03-12", 500),
        ),
        (
            "C:EURUSD",
            dates(1, Timespan::Minute, "2024-03-08", "2024-03-11", 777),
        ),
        (
            "AAPL",
            dates(1, Timespan::Day, "2020-01-01", "2020-12-31", 10),
        ),
        (
            "AAPL",
            dates(1, Timespan::Week, "2020-01-01", "2020-12-31", 10),
        ),
        (
            "AAPL",
            dates(1, Timespan::Month, "2019-01-01", "2020-12-31", 30),
        ),
        (
            "SPY",
            dates(2, Timespan::Day, "2020-01-01", "2020-03-31", 7),
        ),
        (
            "I:SPX",
            dates(30, Timespan::Minute, "2024-03-04", "2024-03-08", 50),
        ),
    ];
    for (ticker, q) in cases {
        let mut whole_q = q.clone();
        whole_q.limit = 50_000;
        let whole = run(ticker, &whole_q);
        assert!(whole.next_from_ms.is_none());
        let (paged, pages) = all_pages(ticker, &q);
        assert!(pages > 2, "{ticker} {q:?}");
        assert_eq!(paged, whole.bars, "{ticker} {q:?}");
    }
}

#[test]
fn the_limit_counts_base_bars_and_never_splits_a_window() {
    let q = dates(1, Timespan::Minute, "2024-03-04", "2024-03-04", 100);
    let page = run("AAPL", &q);
    assert_eq!(page.bars.len(), 100);
    assert_eq!(page.next_from_ms, Some(page.bars[99].t + 60_000));
    let q = dates(1, Timespan::Hour, "2024-01-02", "2024-05-31", 50_000);
    let page = run("AAPL", &q);
    let next = page.next_from_ms.unwrap();
    assert_eq!(next, page.bars.last().unwrap().t + 3_600_000);
    let minutes = run("AAPL", &query(1, Timespan::Minute, q.from, q.to, 200_000)).bars;
    let on_page = minutes.iter().filter(|b| b.t < next).count();
    assert!(on_page <= 50_000 && on_page > 50_000 - 1_000, "{on_page}");
    assert!(page.bars.len() <= 50_000 / 60 * 2);
    let next_hour = minutes
        .iter()
        .filter(|b| b.t >= next && b.t < next + 3_600_000)
        .count();
    let first_after = minutes.iter().find(|b| b.t >= next).unwrap().t;
    let next_window = minutes
        .iter()
        .filter(|b| {
            b.t >= first_after / 3_600_000 * 3_600_000
                && b.t < first_after / 3_600_000 * 3_600_000 + 3_600_000
        })
        .count();
    assert!(on_page + next_hour.max(next_window) > 50_000);
    // The first window is always emitted, even when larger than the limit.
    let page = run(
        "AAPL",
        &dates(1, Timespan::Day, "2024-03-04", "2024-03-08", 0),
    );
    assert_eq!(page.bars.len(), 1);
    let page = run(
        "AAPL",
        &dates(1, Timespan::Week, "2024-03-04", "2024-03-20", 1),
    );
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.next_from_ms, Some(et_midnight_ms(d("2024-03-10"))));
}

#[test]
fn millis_from_snaps_to_the_grid_and_to_is_inclusive() {
    let open = crate::calendar::et_ms(d("2024-03-04"), 10, 0);
    let q = query(
        5,
        Timespan::Minute,
        RangeBound::Millis(open + 150_000),
        RangeBound::Millis(open + 600_000),
        5000,
    );
    let page = run("AAPL", &q);
    assert_eq!(
        page.bars.iter().map(|b| b.t).collect::<Vec<_>>(),
        [open, open + 300_000, open + 600_000]
    );
    let q = query(
        1,
        Timespan::Minute,
        RangeBound::Millis(open),
        RangeBound::Millis(open),
        5000,
    );
    assert_eq!(run("AAPL", &q).bars.len(), 1);
    // A daily `to` instant inside a day includes that day's bar.
    let q = query(
        1,
        Timespan::Day,
        RangeBound::Millis(et_midnight_ms(d("2024-03-04"))),
        RangeBound::Millis(open),
        5000,
    );
    assert_eq!(run("AAPL", &q).bars.len(), 1);
}

#[test]
fn calendar_windows() {
    let days = run(
        "AAPL",
        &dates(1, Timespan::Day, "2022-12-01", "2025-01-31", 50_000),
    )
    .bars;
    let midnight = |x: NaiveDate| et_midnight_ms(x);
    let weeks = run(
        "AAPL",
        &dates(1, Timespan::Week, "2023-01-01", "2024-12-31", 50_000),
    )
    .bars;
    for w in &weeks {
        assert_eq!(crate::calendar::et_date_of_ms(w.t).weekday(), Weekday::Sun);
    }
    assert_aggregates(&days, &weeks, |t| {
        midnight(crate::calendar::et_date_of_ms(t) + Duration::days(7))
    });
    let next_month = |t: i64| {
        let x = crate::calendar::et_date_of_ms(t);
        let (y, m) = if x.month() == 12 {
            (x.year() + 1, 1)
        } else {
            (x.year(), x.month() + 1)
        };
        midnight(NaiveDate::from_ymd_opt(y, m, 1).unwrap())
    };
    let months = run(
        "AAPL",
        &dates(1, Timespan::Month, "2023-01-01", "2024-12-31", 50_000),
    )
    .bars;
    assert_eq!(months.len(), 24);
    assert_eq!(months[0].t, midnight(d("2023-01-01")));
    assert_aggregates(&days, &months, next_month);
    let quarters = run(
        "AAPL",
        &dates(1, Timespan::Quarter, "2023-02-15", "2024-12-31", 50_000),
    )
    .bars;
    assert_eq!(quarters.len(), 8);
    assert_eq!(quarters[1].t, midnight(d("2023-04-01")));
    let years = run(
        "AAPL",
        &dates(1, Timespan::Year, "2023-06-01", "2024-06-01", 50_000),
    )
    .bars;
    assert_eq!(
        years.iter().map(|b| b.t).collect::<Vec<_>>(),
        [midnight(d("2023-01-01")), midnight(d("2024-01-01"))]
    );
    assert_aggregates(&days, &years, |t| {
        midnight(
            crate::calendar::et_date_of_ms(t)
                .with_day(1)
                .unwrap()
                .with_month(1)
                .unwrap()
                .with_year(crate::calendar::et_date_of_ms(t).year() + 1)
                .unwrap(),
        )
    });
    // Two-day windows count from 1970-01-01 (an even day number starts a window).
    let two = run(
        "X:BTCUSD",
        &dates(2, Timespan::Day, "2024-01-01", "2024-01-10", 5000),
    )
    .bars;
    for b in &two {
        let day = crate::calendar::et_date_of_ms(b.t);
        assert_eq!(crate::simulator::path::day_number(day) % 2, 0);
    }
    let fx_weeks = run(
        "C:EURUSD",
        &dates(1, Timespan::Week, "2024-03-01", "2024-03-31", 5000),
    )
    .bars;
    assert!(
        fx_weeks
            .iter()
            .all(|b| b.t == utc_midnight_ms(crate::calendar::zone_date_of_ms(chrono_tz::UTC, b.t)))
    );
}

#[test]
fn adjusted_differs_only_before_the_split() {
    let mut q = dates(1, Timespan::Day, "2020-08-24", "2020-09-04", 5000);
    let adjusted = run("AAPL", &q).bars;
    q.adjusted = false;
    let raw = run("AAPL", &q).bars;
    assert_eq!(adjusted.len(), raw.len());
    for (a, r) in adjusted.iter().zip(&raw) {
        if a.t < et_midnight_ms(d("2020-08-31")) {
            assert!((r.c / a.c - 4.0).abs() < 1e-3);
            assert_ne!(a.v, r.v);
        } else {
            assert_eq!(a, r);
        }
    }
}

#[test]
fn deterministic_and_world_independent() {
    let q = dates(15, Timespan::Minute, "2024-06-03", "2024-06-07", 300);
    let first = run("NVDA", &q);
    assert_eq!(first, run("NVDA", &q));
    let small = Market::new(Reference::generate(&WorldSize {
        stocks_cs: 10,
        etf: 0,
        other_stock_types: 0,
        otc: 0,
        crypto: 0,
        fx: 0,
        indices: 0,
    }));
    let nvda = small.reference().find("NVDA").unwrap();
    assert_eq!(range_aggregates(&small, nvda, &q), first);
}

#[test]
fn indices_carry_no_volume() {
    for span in [
        Timespan::Minute,
        Timespan::Hour,
        Timespan::Day,
        Timespan::Month,
    ] {
        let page = run("I:SPX", &dates(1, span, "2024-01-01", "2024-02-29", 50_000));
        assert!(!page.bars.is_empty());
        assert!(
            page.bars
                .iter()
                .all(|b| b.v.is_none() && b.vw.is_none() && b.n.is_none())
        );
    }
}

#[test]
fn empty_ranges() {
    let empty = AggPage {
        bars: Vec::new(),
        next_from_ms: None,
    };
    assert_eq!(
        run(
            "AAPL",
            &dates(1, Timespan::Minute, "2024-03-09", "2024-03-10", 10)
        ),
        empty,
        "weekend"
    );
    assert_eq!(
        run(
            "AAPL",
            &dates(1, Timespan::Day, "2024-12-25", "2024-12-25", 10)
        ),
        empty,
        "holiday"
    );
    assert_eq!(
        run(
            "ABNB",
            &dates(1, Timespan::Day, "2015-01-01", "2020-12-09", 10)
        ),
        empty,
        "before listing"
    );
    assert_eq!(
        run(
            "TWTR",
            &dates(1, Timespan::Minute, "2023-01-01", "2023-12-31", 10)
        ),
        empty,
        "after delisting"
    );
    assert_eq!(
        run(
            "AAPL",
            &dates(1, Timespan::Day, "2024-03-10", "2024-03-01", 10)
        ),
        empty,
        "to before from"
    );
    assert_eq!(
        run(
            "AAPL",
            &dates(0, Timespan::Day, "2024-03-01", "2024-03-10", 10)
        ),
        empty,
        "multiplier 0"
    );
    assert_eq!(
        run(
            "I:SPX",
            &dates(1, Timespan::Year, "1970-01-01", "1989-12-31", 10)
        ),
        empty
    );
    let far = dates(1, Timespan::Day, "1900-01-01", "1900-12-31", 10);
    assert_eq!(run("AAPL", &far), empty);
}
