//! Bars as rows of a period file: grouping by period, sorting with the last
//! of equal timestamps winning, merging new rows into stored ones, and
//! bit-exact comparison (to skip writes that would change nothing).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::model::{AssetClass, Bar, Timeframe, period_of};

/// Splits `bars` by period. The period's time bounds are cached so that
/// `period_of` (the one rule) runs once per run of bars in the same period.
/// Owned bars that all fall in one period (a page of a month) are kept as
/// they are, not copied.
pub(super) fn group_by_period(
    class: AssetClass,
    tf: Timeframe,
    bars: Cow<'_, [Bar]>,
) -> BTreeMap<String, Vec<Bar>> {
    let mut groups: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    if let (Cow::Owned(_), Some(first)) = (&bars, bars.first()) {
        let (lo, hi) = period_bounds(class, tf, first.timestamp);
        if bars.iter().all(|b| (lo..hi).contains(&b.timestamp)) {
            groups.insert(period_of(class, tf, first.timestamp), bars.into_owned());
            return groups;
        }
    }
    let mut rest: &[Bar] = &bars;
    while let Some(first) = rest.first() {
        // The run of bars in the same period as the first, copied at once.
        let (lo, hi) = period_bounds(class, tf, first.timestamp);
        let run = rest
            .iter()
            .position(|b| !(lo..hi).contains(&b.timestamp))
            .unwrap_or(rest.len())
            .max(1); // an empty range: one bar at a time
        groups
            .entry(period_of(class, tf, first.timestamp))
            .or_default()
            .extend_from_slice(&rest[..run]);
        rest = &rest[run..];
    }
    groups
}

/// The UTC-ms range `[start, end)` of the period holding `ts`: from midnight
/// of its first date to midnight of the next period's first date, in the day
/// zone. An empty range (never hit) when a date is out of chrono's range.
pub(super) fn period_bounds(class: AssetClass, tf: Timeframe, ts: i64) -> (i64, i64) {
    let date = class.date_of(ts);
    let (first, next) = if tf.is_intraday() {
        let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1);
        let next = if date.month() == 12 {
            NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
        };
        (first, next)
    } else {
        (
            NaiveDate::from_ymd_opt(date.year(), 1, 1),
            NaiveDate::from_ymd_opt(date.year() + 1, 1, 1),
        )
    };
    match (first, next) {
        (Some(first), Some(next)) => (class.midnight_ms(first), class.midnight_ms(next)),
        _ => (0, 0),
    }
}

/// Sorts by timestamp, keeping the last of equal timestamps (input order).
pub(super) fn normalize(mut bars: Vec<Bar>) -> Vec<Bar> {
    // Pages and files come sorted and unique: then there is nothing to do.
    if bars.is_sorted_by(|a, b| a.timestamp < b.timestamp) {
        return bars;
    }
    bars.sort_by_key(|b| b.timestamp); // stable: equal timestamps keep input order
    let mut out: Vec<Bar> = Vec::with_capacity(bars.len());
    for bar in bars {
        match out.last_mut() {
            Some(last) if last.timestamp == bar.timestamp => *last = bar,
            _ => out.push(bar),
        }
    }
    out
}

/// The result of [`merge_sorted`].
pub(super) struct Merged<'a> {
    /// The new bars themselves when nothing was stored (no copy).
    pub bars: Cow<'a, [Bar]>,
    /// Timestamps of `new` absent from `stored`.
    pub new: usize,
    /// Whether the merge differs from `stored`.
    pub changed: bool,
}

/// Merges sorted unique `new` into sorted unique `stored`; `new` wins ties.
/// `new` is only borrowed, so a merge that lost a race can be redone.
pub(super) fn merge_sorted<'a>(stored: &[Bar], new: &'a [Bar]) -> Merged<'a> {
    if stored.is_empty() {
        // A new file: everything is new, nothing to copy.
        return Merged {
            new: new.len(),
            changed: !new.is_empty(),
            bars: Cow::Borrowed(new),
        };
    }
    let mut bars = Vec::with_capacity(stored.len() + new.len());
    let (mut new_count, mut changed) = (0, false);
    let mut old = stored.iter().peekable();
    for bar in new {
        while let Some(o) = old.next_if(|o| o.timestamp < bar.timestamp) {
            bars.push(*o);
        }
        match old.next_if(|o| o.timestamp == bar.timestamp) {
            Some(o) => changed |= !same_bar(o, bar),
            None => {
                new_count += 1;
                changed = true;
            }
        }
        bars.push(*bar);
    }
    bars.extend(old);
    Merged {
        bars: Cow::Owned(bars),
        new: new_count,
        changed,
    }
}

/// Timestamps of sorted `bars` absent from sorted `old`.
pub(super) fn count_new(old: &[Bar], bars: &[Bar]) -> usize {
    let mut old = old.iter().map(|b| b.timestamp).peekable();
    bars.iter()
        .filter(|b| {
            while old.next_if(|&t| t < b.timestamp).is_some() {}
            old.next_if(|&t| t == b.timestamp).is_none()
        })
        .count()
}

pub(super) fn same_bars(a: &[Bar], b: &[Bar]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_bar(x, y))
}

/// Equality of every field, bit for bit (so `NaN` equals itself, `-0.0` differs from `0.0`).
pub(super) fn same_bar(a: &Bar, b: &Bar) -> bool {
    let f = |x: f64, y: f64| x.to_bits() == y.to_bits();
    let of = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => f(x, y),
        (None, None) => true,
        _ => false,
    };
    a.timestamp == b.timestamp
        && f(a.open, b.open)
        && f(a.high, b.high)
        && f(a.low, b.low)
        && f(a.close, b.close)
        && of(a.volume, b.volume)
        && of(a.vwap, b.vwap)
        && a.transactions == b.transactions
}
