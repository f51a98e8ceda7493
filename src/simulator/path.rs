//! The price and activity model behind the simulated market: a smooth daily level per
//! ticker, the minute layout of a day per asset class, and the generation of one day's
//! unadjusted minute bars as a pure function of (ticker seed, date, minute).

use chrono::{Datelike, Duration, NaiveDate};

use crate::calendar::{et_midnight_ms, nyse_session, utc_midnight_ms};
use crate::simulator::hash::{exponential, mix, mix3, normal, splitmix64, unit};
use crate::simulator::market::Bar;
use crate::simulator::reference::{AssetClass, TickerInfo};

const MINUTE_MS: i64 = 60_000;

/// The minutes of one day that can carry bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayLayout {
    /// UTC ms of the first minute.
    pub start_ms: i64,
    /// Number of minutes from `start_ms`.
    pub minutes: u32,
    /// Regular-session minutes are `regular_from..regular_to`.
    pub regular_from: u32,
    pub regular_to: u32,
}

/// The layout of `date` for `info`, or `None` when it cannot have bars (closed market,
/// not listed yet, delisted).
pub fn day_layout(info: &TickerInfo, date: NaiveDate) -> Option<DayLayout> {
    if !info.is_listed_on(date) || !info.asset_class.calendar().is_open(date) {
        return None;
    }
    let span = |from: i64, to: i64| ((to - from) / MINUTE_MS) as u32;
    let whole_day = |start: i64, end: i64| {
        let minutes = span(start, end);
        DayLayout {
            start_ms: start,
            minutes,
            regular_from: 0,
            regular_to: minutes,
        }
    };
    match info.asset_class {
        AssetClass::Stocks => {
            let s = nyse_session(date)?;
            Some(DayLayout {
                start_ms: s.extended_start_ms,
                minutes: span(s.extended_start_ms, s.extended_end_ms),
                regular_from: span(s.extended_start_ms, s.regular_start_ms),
                regular_to: span(s.extended_start_ms, s.regular_end_ms),
            })
        }
        AssetClass::Otc | AssetClass::Options | AssetClass::Indices => {
            let s = nyse_session(date)?;
            Some(whole_day(s.regular_start_ms, s.regular_end_ms))
        }
        AssetClass::Crypto => {
            let next = date + Duration::days(1);
            Some(whole_day(et_midnight_ms(date), et_midnight_ms(next)))
        }
        AssetClass::Fx => {
            let next = date + Duration::days(1);
            Some(whole_day(utc_midnight_ms(date), utc_midnight_ms(next)))
        }
    }
}

/// Per-ticker constants of the price model.
struct Dynamics {
    /// Typical daily log-return standard deviation.
    daily_vol: f64,
    /// Log drift per year.
    drift: f64,
    /// Amplitudes (log) and periods (days) of the smooth cycles, and their phases.
    cycles: [(f64, f64, f64); 3],
    /// Lowest and highest price level.
    floor: f64,
    ceiling: f64,
}

fn dynamics(info: &TickerInfo) -> Dynamics {
    let h = |k: u64| unit(mix(info.seed, 0xD1A0 + k));
    let (vol_lo, vol_hi, drift_lo, drift_hi, floor) = match info.asset_class {
        AssetClass::Stocks | AssetClass::Otc => (0.012, 0.035, -0.04, 0.16, 0.01),
        AssetClass::Crypto => (0.03, 0.06, -0.05, 0.3, 0.05),
        AssetClass::Fx => (0.003, 0.008, -0.01, 0.01, 0.001),
        AssetClass::Indices => (0.008, 0.015, 0.0, 0.08, 1.0),
        AssetClass::Options => (0.05, 0.09, 0.0, 0.0, 0.01),
    };
    let daily_vol = vol_lo + h(0) * (vol_hi - vol_lo);
    let scale = daily_vol / 0.02;
    let tau = std::f64::consts::TAU;
    Dynamics {
        daily_vol,
        drift: drift_lo + h(1) * (drift_hi - drift_lo),
        cycles: [
            (0.25 * scale, 700.0 + 400.0 * h(2), tau * h(3)),
            (0.10 * scale, 120.0 + 130.0 * h(4), tau * h(5)),
            (0.04 * scale, 25.0 + 25.0 * h(6), tau * h(7)),
        ],
        floor,
        ceiling: info.base_price * 1_000.0,
    }
}

/// Days since 1970-01-01 (negative before).
pub fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// The price level at the start of `date`, on the current split-adjusted basis.
pub fn day_level(info: &TickerInfo, date: NaiveDate) -> f64 {
    log_level(info, &dynamics(info), date).exp()
}

fn log_level(info: &TickerInfo, d: &Dynamics, date: NaiveDate) -> f64 {
    let n = day_number(date);
    let years = (n - 19_723) as f64 / 365.25; // 19 723 = 2024-01-01
    let cycles: f64 = d
        .cycles
        .iter()
        .map(|(amp, period, phase)| amp * (std::f64::consts::TAU * n as f64 / period + phase).sin())
        .sum();
    let noise = 0.3 * d.daily_vol * normal(mix3(info.seed, n as u64, 0x0015E));
    let x = info.base_price.max(1e-6).ln() + d.drift * years + cycles + noise;
    x.clamp(d.floor.ln(), d.ceiling.max(d.floor * 10.0).ln())
}

/// Unadjusted prices are adjusted ones times this factor on `date`: the product of
/// `split_to / split_from` over the splits executed after `date`.
pub fn split_factor(info: &TickerInfo, date: NaiveDate) -> f64 {
    info.splits
        .iter()
        .filter(|s| s.execution_date > date && s.split_from > 0.0)
        .map(|s| s.split_to / s.split_from)
        .product()
}

/// Powers of ten for the usual rounding places.
const POW10: [f64; 9] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

fn pow10(decimals: i32) -> f64 {
    usize::try_from(decimals)
        .ok()
        .and_then(|i| POW10.get(i).copied())
        .unwrap_or_else(|| 10_f64.powi(decimals))
}

/// Rounds to the nearest integer, ties to even, with two additions (`f64::round` is a
/// libm call on baseline x86-64 and dominated the minute generation).
pub fn round_nearest(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 × 2^52
    if x.abs() < 2_251_799_813_685_248.0 {
        (x + MAGIC) - MAGIC
    } else {
        x.round_ties_even()
    }
}

/// Rounds `x` to `decimals` places.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = pow10(decimals);
    round_nearest(x * scale) / scale
}

/// Rounds a traded price the way the asset class quotes it (at least one tick).
pub fn round_price(class: AssetClass, p: f64) -> f64 {
    let decimals = match class {
        AssetClass::Stocks | AssetClass::Otc | AssetClass::Options => {
            if p >= 1.0 {
                2
            } else {
                4
            }
        }
        AssetClass::Crypto if p >= 1_000.0 => 2,
        AssetClass::Crypto if p >= 1.0 => 4,
        AssetClass::Crypto => 6,
        AssetClass::Fx => 5,
        AssetClass::Indices => 2,
    };
    // Never below one tick: a traded price is positive.
    round_to(p, decimals).max(1.0 / pow10(decimals))
}

/// Calls `sink` with the unadjusted minute bars of `date`, ascending. For the
/// tickers with trades ([`super::trades::TRADE_TICKERS`]) they are the
/// aggregation of the day's trades; for the others, the minute model's.
pub fn generate_day(info: &TickerInfo, date: NaiveDate, sink: &mut impl FnMut(Bar)) {
    if super::trades::has_trades(info) {
        super::trades::minute_bars_from_trades(info, date)
            .into_iter()
            .for_each(sink);
    } else {
        generate_template_day(info, date, sink);
    }
}

/// Calls `sink` with the minute model's unadjusted minute bars of `date`,
/// ascending (the templates of the trades of tickers that have trades).
pub fn generate_template_day(info: &TickerInfo, date: NaiveDate, sink: &mut impl FnMut(Bar)) {
    let Some(layout) = day_layout(info, date) else {
        return;
    };
    let dynamics = dynamics(info);
    let x_open = log_level(info, &dynamics, date);
    let x_next = log_level(info, &dynamics, date + Duration::days(1));
    let factor = split_factor(info, date);
    let ctx = DayContext {
        info,
        layout,
        p_regular: trade_probability(info, true),
        p_extended: trade_probability(info, false),
    };
    let minute_vol = dynamics.daily_vol / 390_f64.sqrt();
    let trend = (x_next - x_open) / f64::from(layout.minutes.max(1));
    let day_seed = mix(info.seed, day_number(date) as u64);
    let mut x = x_open;
    // The last log price turned into a price, so consecutive bars share one `exp`.
    let mut known = (x, x.exp() * factor);
    for m in 0..layout.minutes {
        let h = splitmix64(day_seed ^ u64::from(m).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let regular = (layout.regular_from..layout.regular_to).contains(&m);
        let vol = if regular {
            minute_vol
        } else {
            0.35 * minute_vol
        };
        let x_start = x;
        x += trend + vol * normal(h);
        let p_trade = if regular {
            ctx.p_regular
        } else {
            ctx.p_extended
        };
        if unit(splitmix64(h ^ 0x7EAD)) < p_trade {
            let open = if known.0 == x_start {
                known.1
            } else {
                x_start.exp() * factor
            };
            known = (x, x.exp() * factor);
            sink(ctx.bar(m, regular, (open, known.1), vol, h));
        }
    }
}

/// Chance that a minute (regular session or not) has at least one trade.
fn trade_probability(info: &TickerInfo, regular: bool) -> f64 {
    let l = info.liquidity;
    match info.asset_class {
        AssetClass::Indices | AssetClass::Fx => 1.0,
        AssetClass::Stocks => {
            let p = (0.05 + 2.5 * l).min(1.0);
            if regular { p } else { 0.8 * p * p }
        }
        AssetClass::Crypto => (0.05 + 2.5 * l).min(1.0),
        AssetClass::Otc => (0.03 + 2.0 * l).min(1.0),
        AssetClass::Options => (0.01 + l).min(1.0),
    }
}

/// What one day's minute generation needs besides the minute itself.
struct DayContext<'a> {
    info: &'a TickerInfo,
    layout: DayLayout,
    /// Trade probabilities of regular and extended-hours minutes.
    p_regular: f64,
    p_extended: f64,
}

/// A cheap positive random factor with mean 1 (product of two uniforms, times 4).
fn wiggle(h: u64) -> f64 {
    let a = (h >> 40) as f64 / 16_777_216.0;
    let b = (h & 0xFF_FFFF) as f64 / 16_777_216.0;
    4.0 * a * b
}

impl DayContext<'_> {
    /// More trades near the open and the close of the regular session.
    fn intraday_shape(&self, m: u32, regular: bool) -> f64 {
        if !regular {
            return 0.05;
        }
        let from_open = f64::from(m - self.layout.regular_from);
        let to_close = f64::from(self.layout.regular_to - m);
        1.0 + 30.0 / (20.0 + from_open) + 30.0 / (20.0 + to_close)
    }

    /// The bar of traded minute `m` whose unrounded price went from `open` to `close`.
    fn bar(&self, m: u32, regular: bool, (open, close): (f64, f64), vol: f64, h: u64) -> Bar {
        let class = self.info.asset_class;
        let (h1, h2, h3) = (splitmix64(h ^ 1), splitmix64(h ^ 2), splitmix64(h ^ 3));
        let (o, c) = (round_price(class, open), round_price(class, close));
        let high = round_price(class, open.max(close) * (1.0 + 0.5 * vol * wiggle(h2)));
        let low = round_price(
            class,
            open.min(close) * (1.0 - 0.5 * vol * wiggle(h3)).max(0.5),
        );
        let mut bar = Bar {
            t: self.layout.start_ms + i64::from(m) * MINUTE_MS,
            o,
            h: high.max(o).max(c),
            l: low.min(o).min(c),
            c,
            v: None,
            vw: None,
            n: None,
        };
        if class == AssetClass::Indices {
            return bar;
        }
        let trades = self.trade_count(m, regular, h1);
        let raw_vw = if trades == 1 && class != AssetClass::Fx {
            // One trade: open, high, low, close and vwap are its price.
            (bar.o, bar.h, bar.l) = (c, c, c);
            c
        } else {
            (bar.o + bar.h + bar.l + c) / 4.0 + 0.25 * (bar.h - bar.l) * (unit(h1 ^ h2) - 0.5)
        };
        let v = self.volume(trades, raw_vw, h2 ^ h3);
        bar.v = Some(v);
        bar.n = Some(if class == AssetClass::Fx {
            v as i64
        } else {
            trades
        });
        bar.vw = Some(round_to(raw_vw, 4));
        with_vwap_in_range(bar)
    }

    /// Number of trades in a traded minute (≥ 1).
    fn trade_count(&self, m: u32, regular: bool, h: u64) -> i64 {
        let l = self.info.liquidity;
        let rate = match self.info.asset_class {
            AssetClass::Options => 1.0 + 3.0 * l,
            AssetClass::Fx => 10.0 + 150.0 * l,
            AssetClass::Crypto => 1.0 + 150.0 * l * l,
            _ => 1.0 + 300.0 * l * l * self.intraday_shape(m, regular),
        };
        (round_nearest(rate * exponential(h)) as i64).max(1)
    }

    /// Volume of `trades` trades at about `price`: shares/contracts (integers), coins
    /// (fractional, 8 decimals) or, for FX, the quote count itself.
    fn volume(&self, trades: i64, price: f64, h: u64) -> f64 {
        let size = 0.3 + 1.4 * unit(h);
        match self.info.asset_class {
            AssetClass::Fx => trades as f64,
            AssetClass::Crypto => {
                let dollars = 400.0 * size * trades as f64;
                round_to(dollars / price.max(1e-6), 8).max(1e-8)
            }
            AssetClass::Options => (trades as f64 * round_nearest(1.0 + 4.0 * size)).max(1.0),
            _ => {
                let lot = (10_000.0 / price.max(0.01)).clamp(1.0, 200.0);
                (trades as f64 * round_nearest(lot * size)).max(1.0)
            }
        }
    }
}

/// Widens high/low to contain the 4-decimal vwap (a vwap is an average of trade prices,
/// so trades happened at or beyond it on both sides). Aggregated vwaps then stay inside
/// [l, h] too: a rounded weighted mean of 4-decimal values lies between them.
fn with_vwap_in_range(mut bar: Bar) -> Bar {
    if let Some(vw) = bar.vw {
        bar.h = bar.h.max(vw);
        bar.l = bar.l.min(vw);
    }
    bar
}
