//! Time bars from trades: windows of a fixed width aligned to the Unix epoch
//! (as Polygon's and [`crate::resample`]'s minute and hour windows are),
//! each stamped at its start, in UTC milliseconds, from the trade's
//! `sip_timestamp` (nanoseconds, rounded down to the millisecond, then down
//! to the window). UTC windows make daylight-saving changes irrelevant: a
//! 1m bar at 01:59 ET before the fall-back hour and the one an hour later
//! are different instants.
//!
//! A window's bar, under the condition rules ([`super::conditions`]):
//! - open and close: the prices of its first and last trade that may update
//!   open/close, first and last by `sip_timestamp`, ties in file order;
//! - high and low: the extremes of its trades that may update high/low, and
//!   of the open and close (so `low ≤ open, close ≤ high` always holds);
//! - volume: Σ size of the trades that may update volume; `transactions`
//!   (`n`): how many they are; vwap: Σ price × size / Σ size over those same
//!   trades, summed in file order, rounded to 4 decimals (ties to even) as
//!   Polygon's `vw` and [`crate::resample`] are, `None` when the volume is 0.
//!
//! A window with no trade that may update open/close gives no bar (there is
//! no price to give it), even if it holds volume, e.g. odd lots alone; that
//! volume is counted in [`super::TradeStats::volume_without_bar`].
//!
//! Windows stay open until the ticker's trades end, so trades out of time
//! order within a ticker still land in their window; memory is one
//! accumulator per window of the ticker being read.

use super::conditions::UpdateRules;
use super::record::Trade;
use crate::model::Bar;

/// The running aggregate of one window.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    /// (sip ns, arrival, price) of the first and last open/close trades.
    open: Option<(i64, u64, f64)>,
    close: Option<(i64, u64, f64)>,
    high: f64,
    low: f64,
    volume: f64,
    dollars: f64,
    n: i64,
}

impl Window {
    fn new(start: i64) -> Self {
        Self {
            start,
            open: None,
            close: None,
            high: f64::NEG_INFINITY,
            low: f64::INFINITY,
            volume: 0.0,
            dollars: 0.0,
            n: 0,
        }
    }

    fn add(&mut self, trade: &Trade, rules: UpdateRules, arrival: u64) {
        if rules.volume {
            self.volume += trade.size;
            self.dollars += trade.price * trade.size;
            self.n += 1;
        }
        if rules.high_low {
            self.high = self.high.max(trade.price);
            self.low = self.low.min(trade.price);
        }
        if rules.open_close {
            let key = (trade.sip_ns, arrival, trade.price);
            if self.open.is_none_or(|o| (key.0, key.1) < (o.0, o.1)) {
                self.open = Some(key);
            }
            if self.close.is_none_or(|c| (key.0, key.1) > (c.0, c.1)) {
                self.close = Some(key);
            }
        }
    }

    fn bar(&self) -> Option<Bar> {
        let (open, close) = (self.open?.2, self.close?.2);
        Some(Bar {
            timestamp: self.start,
            open,
            high: self.high.max(open).max(close),
            low: self.low.min(open).min(close),
            close,
            volume: Some(self.volume),
            vwap: (self.volume > 0.0).then(|| round4(self.dollars / self.volume)),
            transactions: Some(self.n),
        })
    }
}

/// Rounds to 4 decimals, ties to even (Polygon's `vw`).
pub(super) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round_ties_even() / 10_000.0
}

/// The open windows of one ticker at one width.
#[derive(Clone, Debug)]
pub(super) struct TimeBars {
    width_ms: i64,
    /// Ascending by start.
    windows: Vec<Window>,
}

impl TimeBars {
    /// Windows of `width_ms` (> 0).
    pub(super) fn new(width_ms: i64) -> Self {
        Self {
            width_ms: width_ms.max(1),
            windows: Vec::new(),
        }
    }

    /// Adds a trade the rules let update something; `arrival` orders trades
    /// of equal time.
    pub(super) fn push(&mut self, trade: &Trade, rules: UpdateRules, arrival: u64) {
        let start = trade.sip_ms().div_euclid(self.width_ms) * self.width_ms;
        let index = match self.windows.last() {
            Some(last) if last.start == start => self.windows.len() - 1,
            Some(last) if last.start > start => {
                match self.windows.binary_search_by_key(&start, |w| w.start) {
                    Ok(found) => found,
                    Err(at) => {
                        self.windows.insert(at, Window::new(start));
                        at
                    }
                }
            }
            _ => {
                self.windows.push(Window::new(start));
                self.windows.len() - 1
            }
        };
        self.windows[index].add(trade, rules, arrival);
    }

    /// The bars, ascending, and the volume of windows that gave none.
    pub(super) fn finish(self) -> (Vec<Bar>, f64) {
        let mut lost = 0.0;
        let bars = self
            .windows
            .iter()
            .filter_map(|w| {
                let bar = w.bar();
                if bar.is_none() {
                    lost += w.volume;
                }
                bar
            })
            .collect();
        (bars, lost)
    }
}
