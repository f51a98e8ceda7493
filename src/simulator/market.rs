//! The simulated market: one underlying minute-level market over the reference world.
//! Minute bars are a pure function of (ticker, date, minute); split adjustment is
//! applied to minute bars; day bars are exactly their aggregation (cached); and
//! `aggregate_bars` is the one rule that builds every longer bar.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::NaiveDate;

use crate::calendar::zone_midnight_ms;
use crate::simulator::path::{day_layout, day_number, generate_day, round_to, split_factor};
use crate::simulator::reference::{AssetClass, Reference, TickerInfo};

/// A Polygon aggregate. `t` is the window start in UTC epoch milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    /// Volume: shares, contracts, coins or FX quote counts; `None` for indices.
    pub v: Option<f64>,
    /// Volume-weighted average price, 4 decimals; `None` for indices.
    pub vw: Option<f64>,
    /// Number of transactions; `None` for indices.
    pub n: Option<i64>,
}

/// Day bars kept before the cache is cleared.
const DAY_CACHE_LIMIT: usize = 200_000;

/// Identifies a cached day bar: (ticker seed, day number, adjusted).
type DayKey = (u64, i64, bool);

/// The simulated market over a reference world.
#[derive(Debug)]
pub struct Market {
    reference: Reference,
    day_cache: Mutex<HashMap<DayKey, Option<Bar>>>,
}

impl Market {
    /// A market over `reference`.
    pub fn new(reference: Reference) -> Market {
        Market {
            reference,
            day_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The ticker world.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The minute bars of `date` (a date in the ticker's day zone), ascending by `t`,
    /// only minutes with trades; split-adjusted when `adjusted`.
    pub fn minute_bars(&self, info: &TickerInfo, date: NaiveDate, adjusted: bool) -> Vec<Bar> {
        let mut bars = Vec::new();
        for_each_minute(info, date, adjusted, &mut |b| bars.push(b));
        bars
    }

    /// The daily bar of `date`: `aggregate_bars` of that day's minute bars, stamped at
    /// 00:00 of `date` in the day zone; `None` without minute bars.
    ///
    /// Cached by (ticker seed, date, adjusted): pass `TickerInfo`s from the reference.
    pub fn day_bar(&self, info: &TickerInfo, date: NaiveDate, adjusted: bool) -> Option<Bar> {
        day_layout(info, date)?;
        let key = (info.seed, day_number(date), adjusted);
        if let Some(hit) = self.cache().get(&key) {
            return hit.clone();
        }
        let mut acc = BarAccumulator::default();
        for_each_minute(info, date, adjusted, &mut |b| acc.push(&b));
        let bar = acc.finish(day_start_ms(info.asset_class, date));
        let mut cache = self.cache();
        if cache.len() >= DAY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, bar.clone());
        bar
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<DayKey, Option<Bar>>> {
        // A panic while holding the lock cannot leave a wrong entry (inserts are whole).
        self.day_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Calls `sink` with the minute bars of `date`, split-adjusted when `adjusted`.
fn for_each_minute(info: &TickerInfo, date: NaiveDate, adjusted: bool, sink: &mut impl FnMut(Bar)) {
    let factor = split_factor(info, date);
    if adjusted && factor != 1.0 {
        generate_day(info, date, &mut |b| sink(adjust(b, factor)));
    } else {
        generate_day(info, date, sink);
    }
}

/// An unadjusted bar on the adjusted basis: prices ÷ `factor` (4 decimals), volume ×
/// `factor`, where `factor` is the product of `split_to / split_from` of later splits.
fn adjust(bar: Bar, factor: f64) -> Bar {
    let price = |p: f64| round_to(p / factor, 4);
    Bar {
        t: bar.t,
        o: price(bar.o),
        h: price(bar.h),
        l: price(bar.l),
        c: price(bar.c),
        v: bar.v.map(|v| v * factor),
        vw: bar.vw.map(price),
        n: bar.n,
    }
}

/// 00:00 of `date` in the asset class's day zone (UTC ms): a daily bar's `t`.
pub fn day_start_ms(class: AssetClass, date: NaiveDate) -> i64 {
    zone_midnight_ms(class.day_zone(), date)
}

/// Aggregates bars in time order: open of the first, max high, min low, close of the
/// last, Σv (None if all None), Σn, vw = Σ(vw·v)/Σv to 4 decimals (None without volume).
/// `t` is the first bar's; callers set the window start. `None` for no bars.
pub fn aggregate_bars(bars: &[Bar]) -> Option<Bar> {
    let mut acc = BarAccumulator::default();
    for b in bars {
        acc.push(b);
    }
    acc.finish(bars.first()?.t)
}

/// `aggregate_bars` one bar at a time, for streaming aggregation.
#[derive(Clone, Debug, Default)]
pub struct BarAccumulator {
    count: usize,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: Option<f64>,
    vw_numerator: f64,
    vw_volume: f64,
    n: Option<i64>,
}

impl BarAccumulator {
    /// Adds the next bar (bars must come in time order).
    pub fn push(&mut self, b: &Bar) {
        if self.count == 0 {
            (self.o, self.h, self.l) = (b.o, b.h, b.l);
        } else {
            self.h = self.h.max(b.h);
            self.l = self.l.min(b.l);
        }
        self.c = b.c;
        if let Some(v) = b.v {
            self.v = Some(self.v.unwrap_or(0.0) + v);
            if let Some(vw) = b.vw {
                self.vw_numerator += vw * v;
                self.vw_volume += v;
            }
        }
        if let Some(n) = b.n {
            self.n = Some(self.n.unwrap_or(0) + n);
        }
        self.count += 1;
    }

    /// How many bars were added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The aggregate stamped `t`, or `None` when no bar was added.
    pub fn finish(&self, t: i64) -> Option<Bar> {
        (self.count > 0).then(|| Bar {
            t,
            o: self.o,
            h: self.h,
            l: self.l,
            c: self.c,
            v: self.v,
            vw: (self.vw_volume > 0.0).then(|| round_to(self.vw_numerator / self.vw_volume, 4)),
            n: self.n,
        })
    }
}

#[cfg(test)]
#[path = "market_tests.rs"]
mod tests;
