//! Information-driven bars (tick, volume, dollar) from one ticker's trades.
//!
//! Rules, exact:
//! - Only trades that may update volume ([`super::conditions`]) count, and
//!   only they make the bar: a trade that updates nothing but high/low or
//!   open/close (e.g. 38, or 15/16) is ignored.
//! - Trades are taken in file order (a day file is in time order per ticker).
//! - A bar closes on the trade that makes its count reach the threshold:
//!   `1000t` after its 1 000th trade; `50000v` once Σ size ≥ 50 000;
//!   `1e6$` once Σ price × size ≥ 1 000 000. The trade that crosses is
//!   included, and the excess is not carried into the next bar.
//! - A bar never spans two sessions: a session is one trading day in
//!   America/New_York, i.e. the ET date of the trade's `sip_timestamp`
//!   (the 04:00–20:00 ET day, extended hours included, lies within one
//!   date). The first trade of a new session closes the open bar, which is
//!   then short of its threshold; so is the ticker's last bar of the file.
//! - A bar is stamped at its first trade's `sip_timestamp`, in UTC
//!   milliseconds (rounded down). Two bars may share a millisecond when
//!   trades are dense and the threshold small; before they are stored,
//!   [`unique_stamps`] moves the later one to the next free millisecond
//!   (a library file holds one bar per timestamp).
//! - Prices: open and close are the first and last of its trades that may
//!   update open/close, high and low the extremes of those that may update
//!   high/low and of the open and close; when none of its trades may (a bar
//!   of odd lots only), its counted trades give them. Volume is Σ size, `n`
//!   the number of trades, vwap Σ price × size / Σ size to 4 decimals.

use chrono::NaiveDate;

use super::conditions::UpdateRules;
use super::record::Trade;
use super::spec::{Activity, InfoBarSpec};
use super::time_bars::round4;
use crate::calendar::{et_date_of_ms, et_midnight_ms};
use crate::model::Bar;

/// The ET date of an instant, with the current date's bounds cached so the
/// zone is consulted once per date, not once per trade.
#[derive(Clone, Copy, Debug)]
pub(super) struct SessionClock {
    from_ms: i64,
    to_ms: i64,
    date: NaiveDate,
}

impl SessionClock {
    pub(super) fn new() -> Self {
        Self {
            from_ms: 0,
            to_ms: 0,
            date: NaiveDate::default(),
        }
    }

    /// The America/New_York date of `ms`.
    pub(super) fn date_of(&mut self, ms: i64) -> NaiveDate {
        if !(self.from_ms..self.to_ms).contains(&ms) {
            self.date = et_date_of_ms(ms);
            self.from_ms = et_midnight_ms(self.date);
            self.to_ms = self.date.succ_opt().map_or(i64::MAX, et_midnight_ms);
        }
        self.date
    }
}

/// Prices seen by a bar: first, last, extremes.
#[derive(Clone, Copy, Debug)]
struct Prices {
    open: f64,
    close: f64,
    high: f64,
    low: f64,
}

impl Prices {
    fn new(price: f64) -> Self {
        Self {
            open: price,
            close: price,
            high: price,
            low: price,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Open {
    date: NaiveDate,
    first_ms: i64,
    trades: u64,
    volume: f64,
    dollars: f64,
    /// Open/close from eligible trades.
    open_close: Option<(f64, f64)>,
    /// High/low from eligible trades.
    high_low: Option<(f64, f64)>,
    /// Every counted trade, for bars no eligible trade priced.
    all: Prices,
}

impl Open {
    fn bar(&self) -> Bar {
        let (open, close) = self.open_close.unwrap_or((self.all.open, self.all.close));
        let (high, low) = match (self.high_low, self.open_close) {
            (Some(hl), _) => hl,
            (None, Some(_)) => (open.max(close), open.min(close)),
            (None, None) => (self.all.high, self.all.low),
        };
        Bar {
            timestamp: self.first_ms,
            open,
            high: high.max(open).max(close),
            low: low.min(open).min(close),
            close,
            volume: Some(self.volume),
            vwap: (self.volume > 0.0).then(|| round4(self.dollars / self.volume)),
            transactions: i64::try_from(self.trades).ok(),
        }
    }

    fn full(&self, spec: InfoBarSpec) -> bool {
        match spec.activity {
            Activity::Ticks => self.trades >= spec.threshold,
            Activity::Volume => self.volume >= spec.threshold as f64,
            Activity::Dollars => self.dollars >= spec.threshold as f64,
        }
    }
}

/// The information-driven bars of one ticker.
#[derive(Clone, Debug)]
pub(super) struct InfoBars {
    spec: InfoBarSpec,
    clock: SessionClock,
    open: Option<Open>,
    bars: Vec<Bar>,
}

impl InfoBars {
    pub(super) fn new(spec: InfoBarSpec) -> Self {
        Self {
            spec,
            clock: SessionClock::new(),
            open: None,
            bars: Vec::new(),
        }
    }

    /// Adds the next trade of the ticker, in file order.
    pub(super) fn push(&mut self, trade: &Trade, rules: UpdateRules) {
        if !rules.volume {
            return;
        }
        let ms = trade.sip_ms();
        let date = self.clock.date_of(ms);
        if let Some(open) = self.open.take_if(|o| o.date != date) {
            self.bars.push(open.bar());
        }
        let price = trade.price;
        let open = self.open.get_or_insert(Open {
            date,
            first_ms: ms,
            trades: 0,
            volume: 0.0,
            dollars: 0.0,
            open_close: None,
            high_low: None,
            all: Prices::new(price),
        });
        open.trades += 1;
        open.volume += trade.size;
        open.dollars += price * trade.size;
        open.all.close = price;
        open.all.high = open.all.high.max(price);
        open.all.low = open.all.low.min(price);
        if rules.open_close {
            open.open_close = Some(match open.open_close {
                None => (price, price),
                Some((first, _)) => (first, price),
            });
        }
        if rules.high_low {
            open.high_low = Some(match open.high_low {
                None => (price, price),
                Some((high, low)) => (high.max(price), low.min(price)),
            });
        }
        if open.full(self.spec) {
            let bar = open.bar();
            self.bars.push(bar);
            self.open = None;
        }
    }

    /// Every bar, the last one short of its threshold if it was still open.
    pub(super) fn finish(mut self) -> Vec<Bar> {
        if let Some(open) = self.open.take() {
            self.bars.push(open.bar());
        }
        self.bars
    }
}

/// Makes the timestamps of one ticker's activity bars (ascending) unique, as
/// the library requires of a file: a bar stamped in the millisecond of the
/// bar before it (dense trades, a small threshold) is stamped one
/// millisecond after that bar instead. Each bar keeps its own trades and
/// threshold; only such a bar's stamp moves, by as many milliseconds as
/// bars shared its first trade's millisecond. Returns how many moved.
pub fn unique_stamps(bars: &mut [Bar]) -> usize {
    let mut moved = 0;
    let mut last: Option<i64> = None;
    for bar in bars {
        if let Some(previous) = last
            && bar.timestamp <= previous
        {
            bar.timestamp = previous + 1;
            moved += 1;
        }
        last = Some(bar.timestamp);
    }
    moved
}
