//! The simulated market's trades, for the tickers in [`TRADE_TICKERS`]: a
//! deterministic function of (ticker seed, date), from which those tickers'
//! minute bars are *derived* under [`crate::trades`]' rules (Polygon's
//! conditions). So for them every aggregate the simulator serves (REST
//! minutes and longer, `minute_aggs_v1` and `day_aggs_v1`, REST seconds) is
//! exactly the aggregation of the `trades_v1` file it serves. Every other
//! ticker keeps the minute-level model of [`super::path`] unchanged, and has
//! no trades.
//!
//! Each traded minute of the minute model serves as a template: its `n`
//! trades open at its open, close at its close and visit its high and low
//! (so the derived bar is the template whenever `n ≥ 4`), as round lots
//! (multiples of 100 shares) with a regular, ISO (14) or ISO + trade-through
//! exempt (14, 41) condition, Form T (12) outside regular hours. Around them,
//! trades that must not move the bar's prices: odd lots (37) before the open
//! at another price, average-price trades (2) after the close, official
//! open/close prints (16/15, which update nothing), a cancelled trade
//! (correction 8) with its cancel record (10) at a wild price, and a
//! corrected trade (1, counted) with its correction record (12, the old
//! data, dropped). The first traded regular minute of each day holds every
//! kind; later minutes draw them by chance.

use std::io::{self, Write};

use chrono::{Datelike, NaiveDate};
use flate2::{Compression, GzBuilder};

use super::hash::{mix, splitmix64, unit};
use super::market::{Bar, Market};
use super::path::{day_layout, day_number, generate_template_day, round_price};
use super::reference::TickerInfo;
use crate::trades::conditions::correction;
use crate::trades::{ConditionTable, Conditions, Trade};

/// The tickers whose bars derive from trades. Real listings that no other
/// simulator test relies on.
pub const TRADE_TICKERS: &[&str] = &["CSCO", "INTC", "KO"];

/// The header of a `trades_v1` file (RUST-NOTES §3).
pub const TRADES_HEADER: &str = "ticker,conditions,correction,exchange,id,participant_timestamp,\
                                 price,sequence_number,sip_timestamp,size,tape,trf_id,trf_timestamp";

/// Whether `info`'s bars derive from trades.
pub fn has_trades(info: &TickerInfo) -> bool {
    TRADE_TICKERS.contains(&info.ticker.as_str())
}

/// The key of a day's trades file: `us_stocks_sip/trades_v1/YYYY/MM/YYYY-MM-DD.csv.gz`.
pub fn trades_key(date: NaiveDate) -> String {
    format!(
        "us_stocks_sip/trades_v1/{:04}/{:02}/{date}.csv.gz",
        date.year(),
        date.month()
    )
}

/// The date of a trades file's key.
pub fn parse_trades_key(key: &str) -> Option<NaiveDate> {
    let file = key
        .strip_prefix("us_stocks_sip/trades_v1/")?
        .rsplit('/')
        .next()?;
    let date = NaiveDate::parse_from_str(file.strip_suffix(".csv.gz")?, "%Y-%m-%d").ok()?;
    (trades_key(date) == key).then_some(date)
}

/// One simulated trade with the columns only a file shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimTrade {
    pub trade: Trade,
    /// Polygon exchange id (4 = FINRA TRF, 11 = NYSE Arca, 12 = Nasdaq…).
    pub exchange: u8,
}

/// The trades of `info` on `date`, in time order (unadjusted); empty for a
/// ticker without trades or a day without a session.
pub fn day_trades(info: &TickerInfo, date: NaiveDate) -> Vec<SimTrade> {
    let mut out = Vec::new();
    let Some(layout) = day_layout(info, date).filter(|_| has_trades(info)) else {
        return out;
    };
    let day_seed = mix(info.seed, day_number(date) as u64 ^ 0x007E_ADE5);
    let mut showcase_done = false;
    generate_template_day(info, date, &mut |bar| {
        let m = ((bar.t - layout.start_ms) / 60_000) as u32;
        let regular = (layout.regular_from..layout.regular_to).contains(&m);
        let showcase = regular && !showcase_done;
        showcase_done |= showcase;
        let h = splitmix64(day_seed ^ u64::from(m).wrapping_mul(0x9E37_79B9));
        let first_regular = m == layout.regular_from;
        let last_regular = m + 1 == layout.regular_to;
        minute_trades(
            info,
            &bar,
            regular,
            showcase,
            (first_regular, last_regular),
            h,
            &mut out,
        );
    });
    out
}

/// A trade before its time is set.
struct Draft {
    price: f64,
    size: f64,
    correction: u8,
    conditions: &'static [u16],
}

fn minute_trades(
    info: &TickerInfo,
    bar: &Bar,
    regular: bool,
    showcase: bool,
    (first_regular, last_regular): (bool, bool),
    h: u64,
    out: &mut Vec<SimTrade>,
) {
    let class = info.asset_class;
    let price = |p: f64| round_price(class, p);
    let chance = |salt: u64, p: f64| showcase || unit(splitmix64(h ^ salt)) < p;
    let n = usize::try_from(bar.n.unwrap_or(1))
        .unwrap_or(1)
        .clamp(1, 500);
    let per_trade = bar.v.unwrap_or(100.0) / n as f64;
    let lot = ((per_trade / 100.0).round().max(1.0)) * 100.0;
    let core: &'static [u16] = if !regular {
        &[12]
    } else {
        match splitmix64(h ^ 0xC0) % 8 {
            0 => &[14],
            1 => &[14, 41],
            _ => &[],
        }
    };
    let odd: &'static [u16] = if regular { &[37] } else { &[12, 37] };
    let mut drafts = Vec::with_capacity(n + 8);
    if regular && first_regular {
        drafts.push(Draft {
            price: bar.o,
            size: 0.0,
            correction: 0,
            conditions: &[16],
        });
    }
    if chance(0x0DD, 0.4) {
        // Before the open, at the high: moves neither.
        drafts.push(Draft {
            price: bar.h,
            size: (1 + splitmix64(h ^ 0x51) % 99) as f64,
            correction: 0,
            conditions: odd,
        });
    }
    for k in 0..n {
        let p = match k {
            0 => bar.o,
            _ if k == n - 1 => bar.c,
            1 => bar.h,
            2 => bar.l,
            _ => price(bar.l + (bar.h - bar.l) * unit(splitmix64(h ^ k as u64))),
        };
        drafts.push(Draft {
            price: p,
            size: lot,
            correction: 0,
            conditions: core,
        });
        if k == 0 && regular && chance(0xCA, 0.02) {
            // Cancelled at a wild price, then its cancel record: both dropped.
            let wild = price(bar.h * 1.2);
            drafts.push(Draft {
                price: wild,
                size: lot,
                correction: correction::CANCELLED,
                conditions: core,
            });
            drafts.push(Draft {
                price: wild,
                size: lot,
                correction: correction::CANCEL_RECORD,
                conditions: core,
            });
        }
        if k == 0 && n >= 3 && regular && chance(0xC0C, 0.02) {
            // A corrected trade (counted, inside the range) and its correction
            // record holding the old, wrong data (dropped).
            let p = price((bar.h + bar.l) / 2.0);
            drafts.push(Draft {
                price: p,
                size: lot,
                correction: correction::CORRECTED,
                conditions: core,
            });
            drafts.push(Draft {
                price: price(bar.l * 0.8),
                size: lot,
                correction: correction::CORRECTION_RECORD,
                conditions: core,
            });
        }
    }
    if regular && chance(0xA7, 0.1) {
        // After the close, at the low: moves neither.
        drafts.push(Draft {
            price: bar.l,
            size: lot * 3.0,
            correction: 0,
            conditions: &[2],
        });
    }
    if regular && last_regular {
        drafts.push(Draft {
            price: bar.c,
            size: 0.0,
            correction: 0,
            conditions: &[15],
        });
    }
    let start_ns = bar.t * 1_000_000;
    let spacing = 60_000_000_000 / (drafts.len() as i64 + 1);
    for (i, draft) in drafts.into_iter().enumerate() {
        let jitter = (splitmix64(h ^ (0x100 + i as u64)) % 1_000) as i64;
        let conditions = Conditions::new(draft.conditions).unwrap_or(Conditions::NONE);
        out.push(SimTrade {
            trade: Trade {
                sip_ns: start_ns + (i as i64 + 1) * spacing - jitter,
                price: draft.price,
                size: draft.size,
                correction: draft.correction,
                conditions,
            },
            exchange: [4, 11, 12, 10][(splitmix64(h ^ i as u64) % 4) as usize],
        });
    }
}

/// The minute bars of `info` on `date` derived from its trades.
pub fn minute_bars_from_trades(info: &TickerInfo, date: NaiveDate) -> Vec<Bar> {
    bars_from_trades(&day_trades(info, date), 60_000)
}

/// The time bars of `width_ms` of `trades` under the default conditions table.
pub fn bars_from_trades(trades: &[SimTrade], width_ms: i64) -> Vec<Bar> {
    let trades: Vec<Trade> = trades.iter().map(|t| t.trade).collect();
    crate::trades::time_bars(&trades, &ConditionTable::polygon_default(), width_ms)
        .into_iter()
        .map(|b| Bar {
            t: b.timestamp,
            o: b.open,
            h: b.high,
            l: b.low,
            c: b.close,
            v: b.volume,
            vw: b.vwap,
            n: b.transactions,
        })
        .collect()
}

/// Writes the gzip `trades_v1` file of `date` (the tickers of
/// [`TRADE_TICKERS`] in `market`, narrowed to `only` when given) to `out`.
pub fn write_trades_gz(
    market: &Market,
    date: NaiveDate,
    only: Option<&[&str]>,
    out: impl Write,
) -> io::Result<u64> {
    let mut gz = GzBuilder::new().mtime(0).write(out, Compression::new(6));
    let rows = write_trades_csv(market, date, only, &mut gz)?;
    gz.finish()?.flush()?;
    Ok(rows)
}

/// Writes the CSV of `date`'s trades file to `out`, ticker by ticker in byte
/// order, each in time order; returns the number of rows.
pub fn write_trades_csv(
    market: &Market,
    date: NaiveDate,
    only: Option<&[&str]>,
    mut out: impl Write,
) -> io::Result<u64> {
    writeln!(out, "{TRADES_HEADER}")?;
    let mut tickers: Vec<&str> = TRADE_TICKERS
        .iter()
        .copied()
        .filter(|t| only.is_none_or(|o| o.contains(t)))
        .collect();
    tickers.sort_unstable();
    let mut rows = 0;
    for ticker in tickers {
        let Some(info) = market.reference().find(ticker) else {
            continue;
        };
        for (sequence, sim) in (1_u64..).zip(day_trades(info, date)) {
            let t = sim.trade;
            let codes = t.conditions.as_slice();
            let conditions = match codes {
                [] => String::new(),
                [one] => one.to_string(),
                _ => {
                    let list: Vec<String> = codes.iter().map(u16::to_string).collect();
                    format!("\"{}\"", list.join(","))
                }
            };
            let participant = t.sip_ns - 150_000;
            let trf = if sim.exchange == 4 {
                participant + 50_000
            } else {
                0
            };
            writeln!(
                out,
                "{ticker},{conditions},{},{},{},{participant},{},{sequence},{},{},{},{},{trf}",
                t.correction,
                sim.exchange,
                mix(info.seed, sequence) % 100_000_000_000_000,
                t.price,
                t.sip_ns,
                t.size,
                if info.primary_exchange.as_deref() == Some("XNYS") {
                    1
                } else {
                    3
                },
                u8::from(sim.exchange == 4) * 201,
            )?;
            rows += 1;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatfiles::{Dataset, DayFile, FileKind, decode_day};
    use crate::simulator::aggregate::{AggQuery, RangeBound, Timespan, range_aggregates};
    use crate::simulator::flatfiles::{FlatDataset, FlatKind, write_day_gz};
    use crate::simulator::reference::{Reference, WorldSize};
    use crate::trades::{BarSpec, aggregate_csv};

    fn market() -> &'static Market {
        static MARKET: std::sync::OnceLock<Market> = std::sync::OnceLock::new();
        MARKET.get_or_init(|| Market::new(Reference::generate(&WorldSize::default())))
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn to_sim(b: &crate::model::Bar) -> Bar {
        Bar {
            t: b.timestamp,
            o: b.open,
            h: b.high,
            l: b.low,
            c: b.close,
            v: b.volume,
            vw: b.vwap,
            n: b.transactions,
        }
    }

    /// The bars finpipe's library builds from the simulator's trades file.
    fn from_file(date: NaiveDate, spec: &str) -> Vec<Bar> {
        let mut csv = Vec::new();
        write_trades_csv(market(), date, Some(&["KO"]), &mut csv).unwrap();
        let mut bars = Vec::new();
        aggregate_csv(
            csv.as_slice(),
            &trades_key(date),
            ConditionTable::polygon_default(),
            &[spec.parse::<BarSpec>().unwrap()],
            |_| true,
            |t| {
                bars.extend(t.series[0].bars.iter().map(to_sim));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        bars
    }

    fn rest(date: NaiveDate, multiplier: u32, timespan: Timespan) -> Vec<Bar> {
        let ko = market().reference().find("KO").unwrap();
        let q = AggQuery {
            multiplier,
            timespan,
            from: RangeBound::Date(date),
            to: RangeBound::Date(date),
            adjusted: false,
            limit: 50_000,
        };
        range_aggregates(market(), ko, &q).bars
    }

    #[test]
    fn minute_aggregates_are_the_aggregation_of_the_trades_across_dst() {
        for day in ["2024-03-08", "2024-03-11", "2024-11-01", "2024-11-04"] {
            let date = d(day);
            let from_trades = from_file(date, "1m");
            assert!(from_trades.len() > 100, "{day}: {}", from_trades.len());
            // REST minute aggregates, every column.
            assert_eq!(rest(date, 1, Timespan::Minute), from_trades, "{day}");
            // minute_aggs_v1: every column it carries (no vwap).
            let mut gz = Vec::new();
            write_day_gz(
                market(),
                FlatDataset::UsStocksSip,
                FlatKind::MinuteAggs,
                date,
                Some(&["KO"]),
                &mut gz,
            )
            .unwrap();
            let file = DayFile::new(Dataset::UsStocksSip, FileKind::MinuteAggs, date);
            let mut flat = Vec::new();
            decode_day(
                gz.as_slice(),
                &file,
                |_| true,
                |run| {
                    flat.extend(run.bars);
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            let strip = |b: &Bar| (b.t, b.o, b.h, b.l, b.c, b.v, b.n);
            let flat: Vec<_> = flat
                .iter()
                .map(|b| {
                    (
                        b.timestamp,
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.transactions,
                    )
                })
                .collect();
            let expected: Vec<_> = from_trades.iter().map(strip).collect();
            assert_eq!(flat, expected, "{day}");
        }
    }

    #[test]
    fn second_aggregates_are_the_aggregation_of_the_trades() {
        let date = d("2024-03-11");
        for (multiplier, spec) in [(1, "1s"), (10, "10s"), (30, "30s")] {
            let from_trades = from_file(date, spec);
            assert!(!from_trades.is_empty());
            assert_eq!(
                rest(date, multiplier, Timespan::Second),
                from_trades,
                "{spec}"
            );
        }
    }

    #[test]
    fn the_trades_include_those_that_must_not_move_prices() {
        let ko = market().reference().find("KO").unwrap();
        let trades = day_trades(ko, d("2024-03-11"));
        let has = |code: u16| {
            trades
                .iter()
                .any(|t| t.trade.conditions.as_slice().contains(&code))
        };
        for code in [2, 12, 15, 16, 37] {
            assert!(has(code), "condition {code}");
        }
        for c in [
            correction::CANCELLED,
            correction::CANCEL_RECORD,
            correction::CORRECTED,
            correction::CORRECTION_RECORD,
        ] {
            assert!(
                trades.iter().any(|t| t.trade.correction == c),
                "correction {c}"
            );
        }
        assert!(trades.is_sorted_by_key(|t| t.trade.sip_ns));
        // Deterministic, and absent for tickers without trades.
        assert_eq!(trades, day_trades(ko, d("2024-03-11")));
        let aapl = market().reference().find("AAPL").unwrap();
        assert!(day_trades(aapl, d("2024-03-11")).is_empty());
        assert_eq!(
            parse_trades_key(&trades_key(d("2024-03-11"))),
            Some(d("2024-03-11"))
        );
    }
}
