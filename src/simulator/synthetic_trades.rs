//! A synthetic `trades_v1` day for the trades benchmark: `tickers` tickers
//! and about `trades` trades, deterministic (a function of the arguments
//! only), written as a stream (one ticker's trades are generated, written
//! and dropped before the next), so a file of tens of millions of rows never
//! sits in memory.
//!
//! Shape, close to a real day's: tickers in byte order, each in time order;
//! trades per ticker skewed (a power law over a shuffled rank: a few tickers
//! hold most trades); 5 % before the open and 5 % after the close, with Form T
//! (12); odd lots (37) and ISO (14, sometimes with 41, a quoted list) among
//! the regular trades; a random walk of prices on a cent grid.

use std::io::{self, Write};

use chrono::NaiveDate;

use super::hash::{mix, unit};
use super::trades::TRADES_HEADER;
use crate::calendar::et_midnight_ms;

/// The benchmark's day: the flat-file benchmark's, 2024-03-05.
pub fn trades_benchmark_day() -> NaiveDate {
    super::synthetic::benchmark_day()
}

/// The `i`-th synthetic ticker name: four letters, in byte order of `i`.
pub fn synthetic_ticker(i: usize) -> String {
    let mut name = [b'A'; 4];
    let mut n = i;
    for slot in name.iter_mut().rev() {
        // Invariant: n % 26 < 26, so the byte is an ASCII capital.
        *slot = b'A' + u8::try_from(n % 26).unwrap_or(0);
        n /= 26;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// How many trades each ticker gets: a power law (exponent 0.9) over a
/// shuffled rank, summing to about `trades`, at least one each.
fn counts(tickers: usize, trades: u64) -> Vec<u64> {
    let weight = |rank: usize| 1.0 / ((rank + 1) as f64).powf(0.9);
    let total: f64 = (0..tickers).map(weight).sum();
    (0..tickers)
        .map(|i| {
            let rank = usize::try_from(mix(0x7ade5, i as u64) % tickers as u64).unwrap_or(0);
            ((trades as f64 * weight(rank) / total) as u64).max(1)
        })
        .collect()
}

/// Writes the synthetic day's CSV (header included) to `out`; returns the
/// number of trade rows.
pub fn write_synthetic_trades(
    date: NaiveDate,
    tickers: usize,
    trades: u64,
    mut out: impl Write,
) -> io::Result<u64> {
    writeln!(out, "{TRADES_HEADER}")?;
    let midnight_ns = et_midnight_ms(date) * 1_000_000;
    let hour_ns: i64 = 3_600_000_000_000;
    // Pre-market 04:00–09:30, regular 09:30–16:00, after hours 16:00–20:00 ET.
    let pre = (
        midnight_ns + 4 * hour_ns,
        midnight_ns + 9 * hour_ns + hour_ns / 2,
    );
    let regular = (pre.1, midnight_ns + 16 * hour_ns);
    let post = (regular.1, midnight_ns + 20 * hour_ns);
    let mut rows = 0u64;
    let mut line = Vec::with_capacity(160);
    for (i, n) in counts(tickers, trades).into_iter().enumerate() {
        let ticker = synthetic_ticker(i);
        let seed = mix(0x5eed, i as u64);
        let mut cents = 1_000 + (mix(seed, 1) % 40_000) as i64; // $10 to $410
        let outside = n / 20;
        let parts = [(pre, outside), (regular, n - 2 * outside), (post, outside)];
        let mut sequence = 0u64;
        for ((from, to), count) in parts {
            if count == 0 {
                continue;
            }
            let step = (to - from) / count as i64;
            let extended = from != regular.0;
            for k in 0..count {
                sequence += 1;
                let r = mix(seed, sequence);
                let sip = from + k as i64 * step + (r % step.max(1) as u64) as i64;
                if unit(mix(r, 1)) < 0.3 {
                    cents = (cents + if r & 1 == 0 { 1 } else { -1 }).max(1);
                }
                let odd = unit(mix(r, 2)) < 0.15;
                let size = if odd {
                    1 + r % 99
                } else {
                    100 * (1 + (r >> 24) % 10)
                };
                let conditions = match (extended, odd, (r >> 32) % 10) {
                    (true, true, _) => "\"12,37\"",
                    (true, false, _) => "12",
                    (false, true, _) => "37",
                    (false, false, 0) => "\"14,41\"",
                    (false, false, 1) => "14",
                    _ => "",
                };
                line.clear();
                writeln!(
                    line,
                    "{ticker},{conditions},0,{},{},{},{}.{:02},{sequence},{sip},{size},{},0,0",
                    4 + (r >> 40) % 8,
                    mix(seed, sequence ^ 0xffff) % 100_000_000,
                    sip - 150_000,
                    cents / 100,
                    cents % 100,
                    1 + (i % 3),
                )?;
                out.write_all(&line)?;
                rows += 1;
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trades::{BarSpec, ConditionTable, aggregate_csv};

    #[test]
    fn the_synthetic_day_is_deterministic_sorted_and_readable() {
        assert_eq!(synthetic_ticker(0), "AAAA");
        assert_eq!(synthetic_ticker(27), "AABB");
        let day = trades_benchmark_day();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let rows = write_synthetic_trades(day, 50, 20_000, &mut a).unwrap();
        write_synthetic_trades(day, 50, 20_000, &mut b).unwrap();
        assert_eq!(a, b);
        assert!((15_000..=21_000).contains(&rows), "{rows}");
        let specs = [BarSpec::Time(crate::model::Timeframe::MINUTE)];
        let (mut tickers, mut with_bars) = (0, 0);
        let stats = aggregate_csv(
            &a[..],
            "synthetic",
            ConditionTable::polygon_default(),
            &specs,
            |_| true,
            |bars| {
                tickers += 1;
                // A ticker of one odd lot has volume but no price-setting trade.
                with_bars += usize::from(!bars.series[0].bars.is_empty());
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(stats.rows, rows);
        assert_eq!(tickers, 50);
        assert!(with_bars >= 45, "{with_bars}");
        assert_eq!(stats.unknown_conditions, 0);
    }
}
