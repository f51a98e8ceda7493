//! The flat-file benchmark's realistic synthetic day, made deterministically from the
//! simulator's own generator: a world of about 11 000 market stocks (CS, ETF and the
//! other stock types) whose `us_stocks_sip` minute-aggs file on a trading day holds
//! about 3.5 M rows, with bars per ticker skewed from a handful to every minute, as in
//! the real files (about 11 000 tickers, several million rows, ~37 MB of gzip).
//!
//! The default world's liquidity is tuned for tests (about 170 minute bars per
//! generated stock a day); the real files average about 320. The benchmark world
//! therefore takes the generated tickers as they are and raises each liquidity to
//! the power [`LIQUIDITY_EXPONENT`] (< 1), which keeps the ordering and the skew but
//! lifts the average. Everything else (symbols, prices, bars) is the generator's.

use std::io::{self, Write};

use chrono::NaiveDate;

use crate::calendar::Calendar;
use crate::simulator::flatfiles::{DayFileStats, FlatDataset, FlatKind, write_day};
use crate::simulator::market::Market;
use crate::simulator::reference::{AssetClass, Reference, WorldSize};

/// Each ticker's liquidity (0..=1) becomes `liquidity^LIQUIDITY_EXPONENT`.
pub const LIQUIDITY_EXPONENT: f64 = 0.42;

/// The benchmark world's size: market stocks only, split about as the real market is.
pub fn benchmark_size() -> WorldSize {
    WorldSize {
        stocks_cs: 5_800,
        etf: 3_600,
        other_stock_types: 2_180,
        otc: 0,
        crypto: 0,
        fx: 0,
        indices: 0,
    }
}

/// The world of `size` with every market stock's liquidity raised to `exponent`
/// (other markets untouched; `exponent` 1 leaves the world as generated).
pub fn skewed_reference(size: &WorldSize, exponent: f64) -> Reference {
    let tickers = Reference::generate(size)
        .tickers()
        .iter()
        .cloned()
        .map(|mut info| {
            if info.asset_class == AssetClass::Stocks {
                info.liquidity = info.liquidity.clamp(0.0, 1.0).powf(exponent);
            }
            info
        })
        .collect();
    Reference::from_tickers(tickers)
}

/// The benchmark's market: [`benchmark_size`] with [`LIQUIDITY_EXPONENT`].
pub fn benchmark_world() -> Market {
    Market::new(skewed_reference(&benchmark_size(), LIQUIDITY_EXPONENT))
}

/// The benchmark's single day: Tuesday 2024-03-05, an ordinary NYSE trading day.
pub fn benchmark_day() -> NaiveDate {
    // Invariant: a valid constant date.
    NaiveDate::from_ymd_opt(2024, 3, 5).unwrap_or_default()
}

/// The benchmark's month: the 21 NYSE trading days of January 2024.
pub fn benchmark_month() -> Vec<NaiveDate> {
    // Invariant: valid constant dates.
    let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap_or_default();
    Calendar::Nyse.open_days(first, last).collect()
}

/// Writes `date`'s `us_stocks_sip` minute-aggs object (gzip level 6) to `out`.
pub fn write_benchmark_day(
    market: &Market,
    date: NaiveDate,
    out: impl Write,
) -> io::Result<DayFileStats> {
    write_day(
        market,
        FlatDataset::UsStocksSip,
        FlatKind::MinuteAggs,
        date,
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_has_21_trading_days() {
        let month = benchmark_month();
        assert_eq!(month.len(), 21);
        assert!(month.contains(&NaiveDate::from_ymd_opt(2024, 1, 2).expect("date")));
        assert!(!month.contains(&NaiveDate::from_ymd_opt(2024, 1, 15).expect("MLK day")));
    }

    #[test]
    fn skew_keeps_symbols_and_raises_liquidity() {
        let size = WorldSize {
            stocks_cs: 120,
            etf: 40,
            other_stock_types: 40,
            otc: 10,
            crypto: 3,
            fx: 3,
            indices: 3,
        };
        let plain = Reference::generate(&size);
        let skewed = skewed_reference(&size, LIQUIDITY_EXPONENT);
        assert_eq!(plain.tickers().len(), skewed.tickers().len());
        for (a, b) in plain.tickers().iter().zip(skewed.tickers()) {
            assert_eq!(a.ticker, b.ticker);
            assert_eq!(a.base_price, b.base_price);
            if a.asset_class == AssetClass::Stocks {
                assert!(b.liquidity >= a.liquidity);
            } else {
                assert_eq!(a.liquidity, b.liquidity);
            }
        }
        assert_eq!(
            skewed_reference(&size, 1.0).tickers(),
            plain.tickers(),
            "exponent 1 is the generator's world"
        );
    }
}
