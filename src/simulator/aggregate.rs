//! The range-aggregates endpoint's logic (`/v2/aggs/ticker/{ticker}/range/{multiplier}/
//! {timespan}/{from}/{to}`) as a pure function: the window grid of each timespan
//! (epoch-aligned minutes and hours; calendar days, weeks, months, quarters and years
//! in the ticker's day zone), whole-window aggregation of base bars (minute bars, or
//! day bars for day and longer), the `limit` cap on base aggregates, and the next
//! page's `from`.

use chrono::{Datelike, Duration, NaiveDate};

use crate::calendar::{zone_date_of_ms, zone_midnight_ms};
use crate::simulator::market::{Bar, BarAccumulator, Market};
use crate::simulator::path::day_number;
use crate::simulator::reference::TickerInfo;
use crate::simulator::trades::{bars_from_trades, day_trades, has_trades};

pub use crate::model::Timespan;

/// The width of one unit in ms for minute and hour; `None` for calendar units
/// (and for seconds, served only for the tickers with trades, from their trades).
fn fixed_ms(timespan: Timespan) -> Option<i64> {
    match timespan {
        Timespan::Minute | Timespan::Hour => timespan.fixed_millis(),
        _ => None,
    }
}

/// A `from` or `to` path segment: a date in the ticker's day zone or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeBound {
    Date(NaiveDate),
    /// UTC epoch milliseconds.
    Millis(i64),
}

impl RangeBound {
    /// Parses `YYYY-MM-DD` or integer milliseconds.
    pub fn parse(s: &str) -> Option<RangeBound> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(RangeBound::Date(d));
        }
        s.parse::<i64>().ok().map(RangeBound::Millis)
    }
}

/// One range-aggregates request.
#[derive(Clone, Debug, PartialEq)]
pub struct AggQuery {
    pub multiplier: u32,
    pub timespan: Timespan,
    /// Inclusive: the start of a date, or an instant snapped down to the bar grid.
    pub from: RangeBound,
    /// Inclusive: the end of a date (through 24:00), or the last allowed window start.
    pub to: RangeBound,
    pub adjusted: bool,
    /// Cap on base aggregates (minute bars for minute/hour, day bars for longer).
    pub limit: usize,
}

/// One page of the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct AggPage {
    pub bars: Vec<Bar>,
    /// The `from` (UTC ms) of the next page when base bars remain in the range.
    pub next_from_ms: Option<i64>,
}

/// The bars of `q` for `info`, ascending, capped at `q.limit` base aggregates.
pub fn range_aggregates(market: &Market, info: &TickerInfo, q: &AggQuery) -> AggPage {
    let mut pager = Pager::new(q.limit);
    if q.multiplier > 0 && q.timespan == Timespan::Second && has_trades(info) {
        seconds(info, q, 1_000 * i64::from(q.multiplier), &mut pager);
    } else if q.multiplier > 0 && q.timespan != Timespan::Second {
        match fixed_ms(q.timespan) {
            Some(unit_ms) => intraday(
                market,
                info,
                q,
                unit_ms * i64::from(q.multiplier),
                &mut pager,
            ),
            None => calendar(market, info, q, &mut pager),
        }
    }
    pager.into_page()
}

/// Collects whole windows until the next one would exceed the limit.
struct Pager {
    limit: usize,
    bars: Vec<Bar>,
    base_count: usize,
    /// Start of the window after the last emitted one.
    after_last: i64,
    next_from_ms: Option<i64>,
}

impl Pager {
    fn new(limit: usize) -> Pager {
        Pager {
            limit,
            bars: Vec::new(),
            base_count: 0,
            after_last: 0,
            next_from_ms: None,
        }
    }

    /// Offers the finished window `[start, next_start)`; `false` once the page is full
    /// (the caller stops generating).
    fn offer(&mut self, acc: &BarAccumulator, start: i64, next_start: i64) -> bool {
        let Some(bar) = acc.finish(start) else {
            return true;
        };
        if !self.bars.is_empty() && self.base_count + acc.count() > self.limit {
            self.next_from_ms = Some(self.after_last);
            return false;
        }
        self.base_count += acc.count();
        self.bars.push(bar);
        self.after_last = next_start;
        true
    }

    fn into_page(self) -> AggPage {
        AggPage {
            bars: self.bars,
            next_from_ms: self.next_from_ms,
        }
    }
}

/// Minute and hour multiples: windows of `width` ms aligned to the Unix epoch.
fn intraday(market: &Market, info: &TickerInfo, q: &AggQuery, width: i64, pager: &mut Pager) {
    let zone = info.asset_class.day_zone();
    let from_ms = match q.from {
        RangeBound::Date(d) => zone_midnight_ms(zone, d),
        RangeBound::Millis(ms) => ms,
    };
    let to_ms = match q.to {
        RangeBound::Date(d) => zone_midnight_ms(zone, d + Duration::days(1)) - 1,
        RangeBound::Millis(ms) => ms,
    };
    let start = from_ms.div_euclid(width) * width;
    if to_ms < start {
        return;
    }
    let end = to_ms.div_euclid(width) * width + width;
    let Some((first, last)) = listed_span(
        info,
        zone_date_of_ms(zone, start),
        zone_date_of_ms(zone, end - 1),
    ) else {
        return;
    };
    let mut acc = BarAccumulator::default();
    let mut window = start;
    for day in first.iter_days().take_while(|d| *d <= last) {
        for bar in market.minute_bars(info, day, q.adjusted) {
            if bar.t < start || bar.t >= end {
                continue;
            }
            let bar_window = bar.t.div_euclid(width) * width;
            if bar_window != window {
                if !pager.offer(&acc, window, window + width) {
                    return;
                }
                acc = BarAccumulator::default();
                window = bar_window;
            }
            acc.push(&bar);
        }
    }
    pager.offer(&acc, window, window + width);
}

/// Second multiples, for the tickers with trades: the day's trades aggregated
/// into windows of `width` ms (unadjusted: trades carry no adjustment).
fn seconds(info: &TickerInfo, q: &AggQuery, width: i64, pager: &mut Pager) {
    let zone = info.asset_class.day_zone();
    let from_ms = match q.from {
        RangeBound::Date(d) => zone_midnight_ms(zone, d),
        RangeBound::Millis(ms) => ms,
    };
    let to_ms = match q.to {
        RangeBound::Date(d) => zone_midnight_ms(zone, d + Duration::days(1)) - 1,
        RangeBound::Millis(ms) => ms,
    };
    let start = from_ms.div_euclid(width) * width;
    if to_ms < start {
        return;
    }
    let end = to_ms.div_euclid(width) * width + width;
    let Some((first, last)) = listed_span(
        info,
        zone_date_of_ms(zone, start),
        zone_date_of_ms(zone, end - 1),
    ) else {
        return;
    };
    for day in first.iter_days().take_while(|d| *d <= last) {
        for bar in bars_from_trades(&day_trades(info, day), width) {
            if bar.t < start || bar.t >= end {
                continue;
            }
            let mut acc = BarAccumulator::default();
            acc.push(&bar);
            if !pager.offer(&acc, bar.t, bar.t + width) {
                return;
            }
        }
    }
}

/// Day and longer: calendar windows in the day zone, built from day bars.
fn calendar(market: &Market, info: &TickerInfo, q: &AggQuery, pager: &mut Pager) {
    let zone = info.asset_class.day_zone();
    let as_date = |b: RangeBound| match b {
        RangeBound::Date(d) => d,
        RangeBound::Millis(ms) => zone_date_of_ms(zone, ms),
    };
    let grid = Grid {
        timespan: q.timespan,
        multiplier: i64::from(q.multiplier),
    };
    let (start, _) = grid.window_of(as_date(q.from));
    let to_date = as_date(q.to);
    if to_date < start {
        return;
    }
    let (_, end) = grid.window_of(to_date);
    let Some((first, last)) = listed_span(info, start, end - Duration::days(1)) else {
        return;
    };
    let midnight = |d: NaiveDate| zone_midnight_ms(zone, d);
    let mut acc = BarAccumulator::default();
    let mut window = grid.window_of(first);
    for day in first.iter_days().take_while(|d| *d <= last) {
        let Some(bar) = market.day_bar(info, day, q.adjusted) else {
            continue;
        };
        if day >= window.1 {
            if !pager.offer(&acc, midnight(window.0), midnight(window.1)) {
                return;
            }
            acc = BarAccumulator::default();
            window = grid.window_of(day);
        }
        acc.push(&bar);
    }
    pager.offer(&acc, midnight(window.0), midnight(window.1));
}

/// `[first, last]` narrowed to the dates on which the ticker is listed, if any.
fn listed_span(
    info: &TickerInfo,
    first: NaiveDate,
    last: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let first = first.max(info.list_date);
    let last = match info.delist_date {
        Some(end) => last.min(end - Duration::days(1)),
        None => last,
    };
    (first <= last).then_some((first, last))
}

/// The calendar window grid of a day-or-longer timespan with a multiplier.
struct Grid {
    timespan: Timespan,
    multiplier: i64,
}

impl Grid {
    /// The window holding `d`: (first date, first date of the next window).
    fn window_of(&self, d: NaiveDate) -> (NaiveDate, NaiveDate) {
        let k = self.multiplier.max(1);
        match self.timespan {
            Timespan::Week => {
                // Weeks start on Sunday; 1969-12-28 (day -4) is the Sunday before the epoch.
                let idx = (day_number(d) + 4).div_euclid(7 * k);
                (
                    from_day_number(idx * 7 * k - 4),
                    from_day_number((idx + 1) * 7 * k - 4),
                )
            }
            Timespan::Month => months_window(d, k),
            Timespan::Quarter => months_window(d, 3 * k),
            Timespan::Year => months_window(d, 12 * k),
            _ => {
                let idx = day_number(d).div_euclid(k);
                (from_day_number(idx * k), from_day_number((idx + 1) * k))
            }
        }
    }
}

/// The window of `months` calendar months (counted from January 1970) holding `d`.
fn months_window(d: NaiveDate, months: i64) -> (NaiveDate, NaiveDate) {
    let index = (i64::from(d.year()) - 1970) * 12 + i64::from(d.month0());
    let first = index.div_euclid(months) * months;
    (first_of_month(first), first_of_month(first + months))
}

/// The first day of the month `index` months after January 1970.
fn first_of_month(index: i64) -> NaiveDate {
    let year = 1970 + index.div_euclid(12);
    let month = index.rem_euclid(12) + 1;
    // Invariant: month is 1..=12 and day 1 always exists; years stay far inside chrono's range.
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month as u32, 1))
        .unwrap_or_default()
}

/// The date `n` days after 1970-01-01.
fn from_day_number(n: i64) -> NaiveDate {
    NaiveDate::default() + Duration::days(n)
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
