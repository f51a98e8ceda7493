//! Option contracts of the simulated world, generated on demand for active common
//! stocks and ETFs: fixed monthly and weekly expirations (some long expired, some in
//! the future) × strikes around the underlying's price when listed × call/put, in
//! OCC symbology, plus the `TickerInfo` that lets the market simulate their bars.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::calendar::nyse_is_trading_day;
use crate::simulator::hash::unit;
use crate::simulator::path::{day_level, round_to, split_factor};
use crate::simulator::reference::{AssetClass, Reference, TickerInfo, date};

/// One listed option contract, as `/v3/reference/options/contracts` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionContract {
    /// `O:` + OCC symbol, e.g. `O:AAPL250117C00150000`.
    pub ticker: String,
    pub underlying_ticker: String,
    /// `call` or `put`.
    pub contract_type: String,
    /// `american`.
    pub exercise_style: String,
    /// Last trading day.
    pub expiration_date: NaiveDate,
    pub strike_price: f64,
    pub shares_per_contract: u32,
    /// MIC, e.g. `BATO`.
    pub primary_exchange: String,
    /// ISO 10962 code, e.g. `OCASPS`.
    pub cfi: String,
    /// First trading day of the contract.
    pub list_date: NaiveDate,
}

/// Underlyings priced above this have no options (OCC strikes have 5 integer digits).
const MAX_UNDERLYING_PRICE: f64 = 20_000.0;

impl Reference {
    /// The option contracts on `underlying` (an active CS or ETF), sorted by ticker;
    /// empty for anything else. Includes expired contracts: filter on `expiration_date`.
    pub fn option_contracts(&self, underlying: &str) -> Vec<OptionContract> {
        let Some(info) = self.find(underlying).filter(|i| has_options(i)) else {
            return Vec::new();
        };
        let mut out: Vec<OptionContract> = expirations()
            .into_iter()
            .flat_map(|(expiry, weekly)| contracts_for(info, expiry, weekly))
            .collect();
        out.sort_by(|a, b| a.ticker.cmp(&b.ticker));
        out
    }

    /// The simulation `TickerInfo` of an option contract ticker (`O:…`), if it exists.
    pub fn option_info(&self, option_ticker: &str) -> Option<TickerInfo> {
        let (root, _) = split_occ(option_ticker)?;
        let underlying = self.find(root).or_else(|| {
            self.tickers()
                .iter()
                .find(|t| has_options(t) && occ_root(&t.ticker) == root)
        })?;
        let contract = self
            .option_contracts(&underlying.ticker)
            .into_iter()
            .find(|c| c.ticker == option_ticker)?;
        Some(contract.ticker_info(underlying))
    }
}

impl OptionContract {
    /// The ticker the market simulates for this contract: listed from `list_date`
    /// through `expiration_date`, priced around its value when listed.
    pub fn ticker_info(&self, underlying: &TickerInfo) -> TickerInfo {
        let name = format!(
            "{} {} {} {}",
            self.underlying_ticker, self.expiration_date, self.strike_price, self.contract_type
        );
        let mut info = TickerInfo::new(&self.ticker, &name, AssetClass::Options, self.list_date);
        info.type_code = None;
        info.primary_exchange = Some(self.primary_exchange.clone());
        info.cik = None;
        info.delist_date = Some(self.expiration_date + Duration::days(1));
        info.liquidity = underlying.liquidity * 0.2 * (0.3 + unit(info.seed));
        info.base_price = self.value_when_listed(underlying);
        info
    }

    /// Intrinsic value plus a rough time value at listing, at least 0.05.
    fn value_when_listed(&self, underlying: &TickerInfo) -> f64 {
        let spot = unadjusted_level(underlying, self.list_date);
        let k = self.strike_price;
        let intrinsic = if self.contract_type == "call" {
            spot - k
        } else {
            k - spot
        }
        .max(0.0);
        let years = (self.expiration_date - self.list_date).num_days() as f64 / 365.0;
        let time_value = 0.12 * spot * years.sqrt() * (-3.0 * (k / spot).ln().abs()).exp();
        (intrinsic + time_value).max(0.05)
    }
}

fn has_options(info: &TickerInfo) -> bool {
    info.active
        && info.asset_class == AssetClass::Stocks
        && matches!(info.type_code.as_deref(), Some("CS") | Some("ETF"))
        && info.base_price < MAX_UNDERLYING_PRICE
}

/// The underlying's unadjusted price level on `d`.
fn unadjusted_level(info: &TickerInfo, d: NaiveDate) -> f64 {
    day_level(info, d) * split_factor(info, d)
}

/// The fixed expirations: monthlies (third Friday of January and July, 2023–2027) and
/// weeklies (first Friday of March and September, 2024–2027), moved to the previous
/// trading day when that Friday is a holiday. `true` marks a weekly.
fn expirations() -> Vec<(NaiveDate, bool)> {
    let mut out = Vec::new();
    for year in 2023..=2027 {
        for month in [1, 7] {
            out.push((trading_day_on_or_before(friday(year, month, 3)), false));
        }
        if year >= 2024 {
            for month in [3, 9] {
                out.push((trading_day_on_or_before(friday(year, month, 1)), true));
            }
        }
    }
    out
}

fn friday(year: i32, month: u32, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Fri, n)
        // Invariant: every month has at least three Fridays.
        .unwrap_or_else(|| date(year, month, 15))
}

fn trading_day_on_or_before(mut d: NaiveDate) -> NaiveDate {
    while !nyse_is_trading_day(d) {
        d -= Duration::days(1);
    }
    d
}

/// Calls and puts of one expiration: 20 strikes for monthlies, 10 for weeklies.
fn contracts_for(info: &TickerInfo, expiry: NaiveDate, weekly: bool) -> Vec<OptionContract> {
    let listed_days = if weekly { 35 } else { 280 };
    let list_date = (expiry - Duration::days(listed_days)).max(info.list_date);
    if expiry - list_date < Duration::days(7) {
        return Vec::new();
    }
    let spot = unadjusted_level(info, list_date);
    let step = strike_step(spot);
    let count: i64 = if weekly { 10 } else { 20 };
    let center = (spot / step).round();
    let strikes = (0..count)
        .map(|i| round_to((center + (i - count / 2) as f64) * step, 4))
        .filter(|k| *k > 0.0 && *k < 100_000.0);
    strikes
        .flat_map(|k| ["call", "put"].map(|kind| contract(info, expiry, list_date, k, kind)))
        .collect()
}

fn contract(
    info: &TickerInfo,
    expiry: NaiveDate,
    list_date: NaiveDate,
    strike: f64,
    kind: &str,
) -> OptionContract {
    let letter = if kind == "call" { 'C' } else { 'P' };
    let ticker = format!(
        "O:{}{:02}{:02}{:02}{letter}{:08}",
        occ_root(&info.ticker),
        expiry.year() % 100,
        expiry.month(),
        expiry.day(),
        (strike * 1000.0).round() as u64
    );
    OptionContract {
        ticker,
        underlying_ticker: info.ticker.clone(),
        contract_type: kind.to_string(),
        exercise_style: "american".to_string(),
        expiration_date: expiry,
        strike_price: strike,
        shares_per_contract: 100,
        primary_exchange: "BATO".to_string(),
        cfi: if kind == "call" { "OCASPS" } else { "OPASPS" }.to_string(),
        list_date,
    }
}

/// A strike grid of about 1 % of the price, on a 1 / 2.5 / 5 × 10^k step.
fn strike_step(price: f64) -> f64 {
    let raw = (price * 0.01).max(0.05);
    let magnitude = 10_f64.powf(raw.log10().floor());
    let m = raw / magnitude;
    let nice = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.5
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// The OCC root of an underlying ticker (`BRK.B` → `BRKB`).
fn occ_root(ticker: &str) -> String {
    ticker.chars().filter(|c| *c != '.').collect()
}

/// Splits `O:<root><yymmdd><C|P><strike×1000, 8 digits>` into (root, the 15-char tail).
fn split_occ(ticker: &str) -> Option<(&str, &str)> {
    let body = ticker.strip_prefix("O:")?;
    let cut = body.len().checked_sub(15)?;
    let (root, tail) = (body.get(..cut)?, body.get(cut..)?);
    let well_formed = !root.is_empty()
        && tail.bytes().enumerate().all(|(i, b)| match i {
            6 => b == b'C' || b == b'P',
            _ => b.is_ascii_digit(),
        });
    well_formed.then_some((root, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::reference::WorldSize;

    fn world() -> Reference {
        Reference::generate(&WorldSize {
            stocks_cs: 70,
            etf: 10,
            other_stock_types: 8,
            otc: 5,
            crypto: 5,
            fx: 5,
            indices: 5,
        })
    }

    #[test]
    fn aapl_has_a_few_hundred_sorted_occ_contracts() {
        let contracts = world().option_contracts("AAPL");
        assert!(
            (200..=800).contains(&contracts.len()),
            "{}",
            contracts.len()
        );
        assert!(contracts.windows(2).all(|w| w[0].ticker < w[1].ticker));
        let today = date(2026, 11, 25);
        assert!(
            contracts
                .iter()
                .any(|c| c.expiration_date < date(2024, 1, 1))
        );
        assert!(contracts.iter().any(|c| c.expiration_date > today));
        for c in &contracts {
            let (root, tail) = split_occ(&c.ticker).unwrap();
            assert_eq!(root, "AAPL");
            assert_eq!(&tail[..6], c.expiration_date.format("%y%m%d").to_string());
            assert_eq!(tail[6..7] == *"C", c.contract_type == "call");
            assert_eq!(tail[7..].parse::<f64>().unwrap() / 1000.0, c.strike_price);
            assert_eq!(
                c.cfi,
                if c.contract_type == "call" {
                    "OCASPS"
                } else {
                    "OPASPS"
                }
            );
            assert!(nyse_is_trading_day(c.expiration_date));
            assert!(c.list_date < c.expiration_date);
            assert_eq!(
                (c.shares_per_contract, c.exercise_style.as_str()),
                (100, "american")
            );
        }
        let calls = contracts
            .iter()
            .filter(|c| c.contract_type == "call")
            .count();
        assert_eq!(calls * 2, contracts.len());
    }

    #[test]
    fn strikes_surround_the_price_when_listed() {
        let w = world();
        let spy = w.find("SPY").unwrap();
        for c in w.option_contracts("SPY") {
            let spot = unadjusted_level(spy, c.list_date);
            assert!(
                (c.strike_price / spot - 1.0).abs() < 0.35,
                "{} {spot}",
                c.ticker
            );
        }
    }

    #[test]
    fn only_active_cs_and_etf_have_options() {
        let w = world();
        assert!(!w.option_contracts("SPY").is_empty());
        assert!(w.option_contracts("X:BTCUSD").is_empty());
        assert!(w.option_contracts("I:SPX").is_empty());
        assert!(w.option_contracts("TWTR").is_empty());
        assert!(w.option_contracts("BRK.A").is_empty());
        assert!(w.option_contracts("NOPE").is_empty());
        let brk = w.option_contracts("BRK.B");
        assert!(
            brk.iter()
                .all(|c| c.ticker.starts_with("O:BRKB") && c.underlying_ticker == "BRK.B")
        );
    }

    #[test]
    fn option_info_round_trips() {
        let w = world();
        let c = &w.option_contracts("BRK.B")[7];
        let info = w.option_info(&c.ticker).unwrap();
        assert_eq!(info.ticker, c.ticker);
        assert_eq!(info.asset_class, AssetClass::Options);
        assert_eq!(info.list_date, c.list_date);
        assert!(info.is_listed_on(c.expiration_date));
        assert!(!info.is_listed_on(c.expiration_date + Duration::days(1)));
        assert!(info.base_price >= 0.05);
        assert!(w.option_info("O:AAPL250117C00150001").is_none());
        assert!(w.option_info("AAPL").is_none());
        assert!(w.option_info("O:250117C00150000").is_none());
    }
}
