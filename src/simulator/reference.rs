//! The deterministic ticker world of the simulator: asset classes and their day zones
//! and calendars, the reference data Polygon returns for each ticker (plus the fields
//! that drive the simulated market), and `Reference`, the sorted, searchable world.
//! Real well-known tickers come first, then generated ones; every attribute of a
//! ticker derives from the hash of its own symbol, so it never depends on world size.

use std::collections::HashSet;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use crate::calendar::{Calendar, nyse_is_trading_day};
use crate::simulator::hash::{Stream, hash_str, mix};
use crate::simulator::names::{
    COMMON_STOCKS, COMPANY_SUFFIXES, COMPANY_WORDS, ETFS, FUND_THEMES, NAME_WORDS, OTHER_STOCKS,
    REAL_SPLITS, RealListing,
};
use crate::simulator::world::{self, Generated};

pub use crate::simulator::options::OptionContract;

/// A Polygon market, which decides a ticker's day zone, calendar and sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetClass {
    Stocks,
    Otc,
    Crypto,
    Fx,
    Indices,
    Options,
}

impl AssetClass {
    /// The Polygon `market` string.
    pub fn market(self) -> &'static str {
        match self {
            AssetClass::Stocks => "stocks",
            AssetClass::Otc => "otc",
            AssetClass::Crypto => "crypto",
            AssetClass::Fx => "fx",
            AssetClass::Indices => "indices",
            AssetClass::Options => "options",
        }
    }

    /// The Polygon `locale` string.
    pub fn locale(self) -> &'static str {
        match self {
            AssetClass::Crypto | AssetClass::Fx => "global",
            _ => "us",
        }
    }

    /// The zone whose dates are the ticker's days (daily bars start at its midnight).
    pub fn day_zone(self) -> Tz {
        match self {
            AssetClass::Fx => chrono_tz::UTC,
            _ => chrono_tz::America::New_York,
        }
    }

    /// The calendar of days on which the ticker can have bars.
    pub fn calendar(self) -> Calendar {
        match self {
            AssetClass::Stocks | AssetClass::Otc | AssetClass::Options | AssetClass::Indices => {
                Calendar::Nyse
            }
            AssetClass::Crypto => Calendar::Crypto,
            AssetClass::Fx => Calendar::Forex,
        }
    }
}

/// A stock split: before `execution_date` unadjusted prices are `split_to / split_from`
/// times the adjusted ones (1-for-10 reverse: `split_from` 10, `split_to` 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub execution_date: NaiveDate,
    pub split_from: f64,
    pub split_to: f64,
}

/// One ticker: the reference fields of `/v3/reference/tickers` plus simulation fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TickerInfo {
    pub ticker: String,
    pub name: String,
    /// Polygon market: `stocks otc crypto fx indices options`.
    pub market: String,
    /// `us` or `global`.
    pub locale: String,
    /// MIC code such as `XNAS`.
    pub primary_exchange: Option<String>,
    /// Polygon `type`, e.g. `CS`, `ETF`, `PFD`, `INDEX`.
    pub type_code: Option<String>,
    pub active: bool,
    pub currency_name: String,
    /// SEC CIK, ten digits.
    pub cik: Option<String>,
    pub composite_figi: Option<String>,
    pub share_class_figi: Option<String>,
    /// RFC 3339 UTC, e.g. `2025-03-04T00:00:00Z`.
    pub last_updated_utc: String,
    /// RFC 3339 UTC midnight of `delist_date`.
    pub delisted_utc: Option<String>,
    /// Crypto and FX: quote currency code.
    pub currency_symbol: Option<String>,
    /// Crypto and FX: base currency code.
    pub base_currency_symbol: Option<String>,
    /// Crypto and FX: base currency name.
    pub base_currency_name: Option<String>,
    pub asset_class: AssetClass,
    /// First date (in the day zone) that can have bars.
    pub list_date: NaiveDate,
    /// First date without bars any more; bars exist on `list_date <= d < delist_date`.
    pub delist_date: Option<NaiveDate>,
    /// 0..=1: how often the ticker trades (a few names near 1, a long tail near 0).
    pub liquidity: f64,
    /// Price level (current, split-adjusted basis) around 2024-01-01.
    pub base_price: f64,
    /// Splits, ascending by execution date.
    pub splits: Vec<Split>,
    /// Hash of the ticker string: the root of every random choice about it.
    pub seed: u64,
}

impl TickerInfo {
    /// A ticker with the given identity and neutral defaults for everything else.
    pub(crate) fn new(ticker: &str, name: &str, class: AssetClass, list_date: NaiveDate) -> Self {
        let seed = hash_str(ticker);
        TickerInfo {
            ticker: ticker.to_string(),
            name: name.to_string(),
            market: class.market().to_string(),
            locale: class.locale().to_string(),
            primary_exchange: None,
            type_code: None,
            active: true,
            currency_name: "usd".to_string(),
            cik: None,
            composite_figi: None,
            share_class_figi: None,
            last_updated_utc: last_updated(seed),
            delisted_utc: None,
            currency_symbol: None,
            base_currency_symbol: None,
            base_currency_name: None,
            asset_class: class,
            list_date,
            delist_date: None,
            liquidity: 0.1,
            base_price: 10.0,
            splits: Vec::new(),
            seed,
        }
    }

    /// Whether the ticker is listed on `d` (not whether its market is open).
    pub fn is_listed_on(&self, d: NaiveDate) -> bool {
        d >= self.list_date && self.delist_date.is_none_or(|end| d < end)
    }

    /// Marks the ticker delisted from `date` on.
    pub(crate) fn delist(&mut self, date: NaiveDate) {
        self.active = false;
        self.delist_date = Some(date);
        self.delisted_utc = Some(format!("{date}T00:00:00Z"));
        self.last_updated_utc = format!("{date}T00:00:00Z");
    }

    /// A stream of random choices private to this ticker and `purpose`.
    pub(crate) fn stream(&self, purpose: u64) -> Stream {
        Stream::new(mix(self.seed, purpose))
    }
}

fn last_updated(seed: u64) -> String {
    let day = date(2025, 1, 2) + Duration::days((seed % 300) as i64);
    format!("{day}T00:00:00Z")
}

/// How many tickers of each kind the world holds (real ones included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldSize {
    pub stocks_cs: usize,
    pub etf: usize,
    pub other_stock_types: usize,
    pub otc: usize,
    pub crypto: usize,
    pub fx: usize,
    pub indices: usize,
}

impl Default for WorldSize {
    fn default() -> Self {
        WorldSize {
            stocks_cs: 2600,
            etf: 1100,
            other_stock_types: 300,
            otc: 1200,
            crypto: 250,
            fx: 300,
            indices: 400,
        }
    }
}

/// The simulated ticker world, sorted by ticker in byte order.
#[derive(Clone, Debug)]
pub struct Reference {
    tickers: Vec<TickerInfo>,
}

/// Purposes of per-ticker random streams (any distinct constants).
const ATTRS: u64 = 0xA77E;
const DELIST: u64 = 0xDE15;
const SPLITS: u64 = 0x5B17;

impl Reference {
    /// Builds the world: real tickers first, then generated ones up to each count.
    pub fn generate(size: &WorldSize) -> Reference {
        let mut used: HashSet<String> = world::reserved_tickers();
        let mut tickers = Vec::new();
        tickers.extend(real_stocks(COMMON_STOCKS, size.stocks_cs, 0.98));
        tickers.extend(real_stocks(ETFS, size.etf, 0.95));
        tickers.extend(real_stocks(OTHER_STOCKS, size.other_stock_types, 0.5));
        let kinds = [
            (
                world::StockKind::Common,
                size.stocks_cs.saturating_sub(COMMON_STOCKS.len()),
            ),
            (world::StockKind::Etf, size.etf.saturating_sub(ETFS.len())),
            (
                world::StockKind::Other,
                size.other_stock_types.saturating_sub(OTHER_STOCKS.len()),
            ),
            (world::StockKind::Otc, size.otc),
        ];
        for (kind, count) in kinds {
            for g in world::generated_stocks(kind, count, &mut used) {
                tickers.push(generated_stock(&g));
            }
        }
        tickers.extend(world::crypto_pairs(size.crypto, &mut used));
        tickers.extend(world::fx_pairs(size.fx));
        tickers.extend(world::indices(size.indices, &mut used));
        Reference::from_tickers(tickers)
    }

    /// A world of exactly these tickers (sorted here).
    pub fn from_tickers(mut tickers: Vec<TickerInfo>) -> Reference {
        tickers.sort_by(|a, b| a.ticker.cmp(&b.ticker));
        tickers.dedup_by(|a, b| a.ticker == b.ticker);
        Reference { tickers }
    }

    /// All tickers, sorted by ticker in byte order (`KIMPL` < `KIMpL`).
    pub fn tickers(&self) -> &[TickerInfo] {
        &self.tickers
    }

    /// The ticker spelled exactly `ticker` (case-sensitive).
    pub fn find(&self, ticker: &str) -> Option<&TickerInfo> {
        self.tickers
            .binary_search_by(|t| t.ticker.as_str().cmp(ticker))
            .ok()
            .map(|i| &self.tickers[i])
    }
}

/// The first `count` listings of a real table, as tickers; liquidity falls from `top`.
fn real_stocks(table: &[RealListing], count: usize, top: f64) -> Vec<TickerInfo> {
    table
        .iter()
        .take(count)
        .enumerate()
        .map(|(rank, l)| real_stock(l, (top - 0.006 * rank as f64).max(0.2)))
        .collect()
}

fn real_stock(l: &RealListing, liquidity: f64) -> TickerInfo {
    let class = AssetClass::Stocks;
    let mut info = TickerInfo::new(l.ticker, l.name, class, parse_date(l.listed));
    info.type_code = Some(l.type_code.to_string());
    info.primary_exchange = Some(l.exchange.to_string());
    info.base_price = l.price;
    info.liquidity = liquidity;
    set_identifiers(&mut info);
    if !l.cik.is_empty() {
        info.cik = Some(l.cik.to_string());
    }
    if info.ticker == "AAPL" {
        info.composite_figi = Some("BBG000B9XRY4".to_string());
        info.share_class_figi = Some("BBG001S5N8V8".to_string());
    }
    if !l.delisted.is_empty() {
        info.delist(parse_date(l.delisted));
    }
    info.splits = REAL_SPLITS
        .iter()
        .filter(|(t, ..)| *t == l.ticker)
        .map(|(_, d, from, to)| Split {
            execution_date: parse_date(d),
            split_from: *from,
            split_to: *to,
        })
        .collect();
    info
}

/// A generated stock-market ticker (CS, ETF, other types, OTC) from its symbol.
fn generated_stock(g: &Generated) -> TickerInfo {
    let class = if g.kind == world::StockKind::Otc {
        AssetClass::Otc
    } else {
        AssetClass::Stocks
    };
    let mut info = TickerInfo::new(&g.ticker, "", class, date(2000, 1, 1));
    let mut s = info.stream(ATTRS);
    info.name = stock_name(&mut s, g.type_code);
    info.type_code = Some(g.type_code.to_string());
    info.primary_exchange = g.exchange.map(str::to_string);
    info.list_date = stock_list_date(&mut s);
    info.liquidity = generated_liquidity(&mut s, g.kind);
    info.base_price = generated_price(&mut s, g.type_code, class);
    set_identifiers(&mut info);
    maybe_delist(&mut info, date(2015, 1, 1));
    if g.type_code == "CS" && class == AssetClass::Stocks {
        info.splits = generated_splits(&info);
    }
    info
}

/// Mostly before 2004, some recent listings (so early requests come back empty).
fn stock_list_date(s: &mut Stream) -> NaiveDate {
    if s.next_unit() < 0.85 {
        date_between(s, date(1975, 1, 2), date(2003, 12, 31))
    } else {
        date_between(s, date(2004, 1, 2), date(2025, 6, 30))
    }
}

/// Zipf-like: most names trade rarely, a few almost every minute.
fn generated_liquidity(s: &mut Stream, kind: world::StockKind) -> f64 {
    let u = s.next_unit();
    match kind {
        world::StockKind::Common | world::StockKind::Etf => 0.9 * u.powi(8),
        world::StockKind::Other => 0.5 * u.powi(10),
        world::StockKind::Otc => 0.4 * u.powi(10),
    }
}

fn generated_price(s: &mut Stream, type_code: &str, class: AssetClass) -> f64 {
    let (lo, hi): (f64, f64) = match (class, type_code) {
        (AssetClass::Otc, _) => (0.05, 30.0),
        (_, "PFD") => (18.0, 26.0),
        (_, "WARRANT") => (0.1, 3.0),
        (_, "RIGHT") => (0.05, 0.5),
        (_, "UNIT") => (9.0, 11.0),
        (_, "ETF") | (_, "ETN") => (10.0, 300.0),
        (_, "FUND") => (5.0, 25.0),
        _ => (2.0, 400.0),
    };
    (lo.ln() + s.next_unit() * (hi.ln() - lo.ln())).exp()
}

fn stock_name(s: &mut Stream, type_code: &str) -> String {
    let word = s.pick(NAME_WORDS);
    let company = format!(
        "{word} {} {}",
        s.pick(COMPANY_WORDS),
        s.pick(COMPANY_SUFFIXES)
    );
    let theme = s.pick(FUND_THEMES);
    let series = (b'A' + (s.next_u64() % 26) as u8) as char;
    match type_code {
        "ETF" => format!("{word} {theme} ETF"),
        "ETN" => format!("{word} {theme} ETN"),
        "FUND" => format!("{word} {theme} Fund"),
        "ADRC" => format!("{company} American Depositary Shares"),
        "PFD" => format!("{company} Series {series} Preferred Stock"),
        "WARRANT" => format!("{company} Warrants"),
        "UNIT" => format!("{company} Units"),
        "RIGHT" => format!("{company} Rights"),
        _ => company,
    }
}

/// CIK and FIGIs in their real formats, from the ticker's seed.
fn set_identifiers(info: &mut TickerInfo) {
    let mut s = info.stream(0xF161);
    info.cik = Some(format!("{:010}", s.next_range(1_000, 1_999_999)));
    info.composite_figi = Some(figi("BBG00", 6, &mut s));
    info.share_class_figi = Some(figi("BBG001S", 4, &mut s));
}

/// A FIGI: `prefix`, `n` random characters from the FIGI alphabet, a check digit.
fn figi(prefix: &str, n: usize, s: &mut Stream) -> String {
    const ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";
    let mut body = prefix.to_string();
    for _ in 0..n {
        body.push(*s.pick(ALPHABET) as char);
    }
    let check = figi_check_digit(&body);
    body.push(check);
    body
}

/// The FIGI check digit of the first 11 characters (Luhn over letter values A=10…).
pub(crate) fn figi_check_digit(body: &str) -> char {
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let v = c.to_digit(36).unwrap_or(0);
            let v = if i % 2 == 1 { v * 2 } else { v };
            v / 10 + v % 10
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0')
}

/// About 5 % of generated tickers are delisted, on a date from `earliest` to 2025.
pub(crate) fn maybe_delist(info: &mut TickerInfo, earliest: NaiveDate) {
    let mut s = info.stream(DELIST);
    if s.next_unit() >= 0.05 {
        return;
    }
    let lo = (info.list_date + Duration::days(365)).max(earliest);
    let hi = date(2025, 12, 31);
    if lo <= hi {
        let d = date_between(&mut s, lo, hi);
        info.delist(d);
    }
}

/// About 3 % forward splits (2:1, 3:1) from 2010 and 2 % 1-for-10 reverse splits from 2019.
fn generated_splits(info: &TickerInfo) -> Vec<Split> {
    let mut s = info.stream(SPLITS);
    let u = s.next_unit();
    let (from, to, earliest) = if u < 0.03 {
        (1.0, s.next_range(2, 3) as f64, date(2010, 1, 4))
    } else if u < 0.05 {
        (10.0, 1.0, date(2019, 1, 2))
    } else {
        return Vec::new();
    };
    let lo = (info.list_date + Duration::days(730)).max(earliest);
    let hi = info
        .delist_date
        .map_or(date(2025, 12, 31), |d| d - Duration::days(30));
    if lo > hi {
        return Vec::new();
    }
    let mut d = date_between(&mut s, lo, hi);
    while !nyse_is_trading_day(d) {
        d += Duration::days(1);
    }
    vec![Split {
        execution_date: d,
        split_from: from,
        split_to: to,
    }]
}

/// A uniform date in `lo..=hi` (requires `lo <= hi`).
pub(crate) fn date_between(s: &mut Stream, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let span = (hi - lo).num_days().max(0) as u64;
    lo + Duration::days(s.next_range(0, span) as i64)
}

/// A date from constant parts; the epoch if they were invalid (they never are).
pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` constant from the tables (the epoch if malformed).
pub(crate) fn parse_date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
