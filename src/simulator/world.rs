//! The synthetic part of the ticker world: unique generated symbols for stocks, ETFs,
//! other stock types and OTC names, and the crypto, forex and index tickers (real
//! ones first). Symbol streams are per kind, so growing one kind never renames another.

use std::collections::HashSet;

use crate::simulator::hash::{Stream, hash_str, splitmix64};
use crate::simulator::names::{
    COMMON_STOCKS, CRYPTO_ASSETS, CRYPTO_OTHER_QUOTES, CRYPTO_SUFFIXES, CURRENCIES, ETFS,
    FUND_THEMES, FX_MAJORS, INDICES, NAME_WORDS, OTHER_STOCKS,
};
use crate::simulator::reference::{
    AssetClass, TickerInfo, date, date_between, maybe_delist, parse_date,
};

/// Which generated stock-market family a symbol belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockKind {
    Common,
    Etf,
    Other,
    Otc,
}

/// A generated stock-market symbol with its type and exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub ticker: String,
    pub kind: StockKind,
    pub type_code: &'static str,
    pub exchange: Option<&'static str>,
}

/// Every real ticker in the tables, so that no generated symbol takes one of them.
pub fn reserved_tickers() -> HashSet<String> {
    let stocks = COMMON_STOCKS
        .iter()
        .chain(ETFS)
        .chain(OTHER_STOCKS)
        .map(|l| l.ticker.to_string());
    let crypto = real_crypto_specs()
        .into_iter()
        .map(|c| format!("X:{}{}", c.base, c.quote));
    let indices = INDICES.iter().map(|(t, ..)| t.to_string());
    stocks.chain(crypto).chain(indices).collect()
}

/// `count` new unique symbols of `kind` (fewer only if the symbol space ran out).
pub fn generated_stocks(
    kind: StockKind,
    count: usize,
    used: &mut HashSet<String>,
) -> Vec<Generated> {
    let mut s = Stream::new(hash_str(&format!("{kind:?} symbols")));
    let mut out = Vec::with_capacity(count);
    let mut attempts = 0;
    while out.len() < count && attempts < 100 * count + 1_000 {
        attempts += 1;
        let g = candidate(kind, &mut s);
        if used.insert(g.ticker.clone()) {
            out.push(g);
        }
    }
    out
}

fn letters(s: &mut Stream, n: usize) -> String {
    (0..n)
        .map(|_| (b'A' + (s.next_u64() % 26) as u8) as char)
        .collect()
}

fn candidate(kind: StockKind, s: &mut Stream) -> Generated {
    let (ticker, type_code, exchange) = match kind {
        StockKind::Common => common_candidate(s),
        StockKind::Etf => {
            let n = s.next_range(3, 4) as usize;
            (
                letters(s, n),
                "ETF",
                Some(*s.pick(&["ARCX", "ARCX", "ARCX", "BATS", "XNAS"])),
            )
        }
        StockKind::Other => other_candidate(s),
        StockKind::Otc => {
            let base = letters(s, 4);
            match s.next_range(0, 2) {
                0 => (format!("{base}F"), "OS", None),
                1 => (format!("{base}Y"), "ADRC", None),
                _ => (base, "CS", None),
            }
        }
    };
    Generated {
        ticker,
        kind,
        type_code,
        exchange,
    }
}

fn common_candidate(s: &mut Stream) -> (String, &'static str, Option<&'static str>) {
    let u = s.next_unit();
    let len = if u < 0.01 {
        1
    } else if u < 0.06 {
        2
    } else if u < 0.46 {
        3
    } else {
        4
    };
    let exchange = if len <= 3 {
        *s.pick(&[
            "XNYS", "XNYS", "XNYS", "XNYS", "XNYS", "XNYS", "XNYS", "XNAS", "XNAS", "XASE",
        ])
    } else {
        *s.pick(&[
            "XNAS", "XNAS", "XNAS", "XNAS", "XNAS", "XNAS", "XNAS", "XNYS", "XNYS", "XASE",
        ])
    };
    (letters(s, len), "CS", Some(exchange))
}

fn other_candidate(s: &mut Stream) -> (String, &'static str, Option<&'static str>) {
    const TYPES: [&str; 7] = ["ADRC", "PFD", "WARRANT", "UNIT", "RIGHT", "ETN", "FUND"];
    let type_code = *s.pick(&TYPES);
    let n = s.next_range(3, 4) as usize;
    let base = letters(s, n);
    let ticker = match type_code {
        "PFD" => format!("{base}p{}", letters(s, 1)),
        "WARRANT" => format!("{base}.WS"),
        "UNIT" => format!("{base}.U"),
        "RIGHT" => format!("{base}.RT"),
        _ => base,
    };
    let exchange = match type_code {
        "ETN" => *s.pick(&["ARCX", "BATS"]),
        "ADRC" => *s.pick(&["XNYS", "XNAS"]),
        _ => "XNYS",
    };
    (ticker, type_code, Some(exchange))
}

/// A crypto or currency pair before it becomes a ticker.
struct PairSpec {
    base: String,
    base_name: String,
    quote: &'static str,
    quote_name: &'static str,
    listed: chrono::NaiveDate,
    price: f64,
    liquidity: f64,
}

fn real_crypto_specs() -> Vec<PairSpec> {
    let usd = CRYPTO_ASSETS
        .iter()
        .enumerate()
        .map(|(rank, (sym, name, listed, price))| PairSpec {
            base: sym.to_string(),
            base_name: name.to_string(),
            quote: "USD",
            quote_name: "United States Dollar",
            listed: parse_date(listed),
            price: *price,
            liquidity: (1.0 - 0.04 * rank as f64).max(0.2),
        });
    let others = CRYPTO_OTHER_QUOTES
        .iter()
        .flat_map(|(quote, quote_name, per_usd)| {
            CRYPTO_ASSETS
                .iter()
                .take(2)
                .map(move |(sym, name, listed, price)| PairSpec {
                    base: sym.to_string(),
                    base_name: name.to_string(),
                    quote,
                    quote_name,
                    listed: parse_date(listed).max(date(2015, 1, 1)),
                    price: price * per_usd,
                    liquidity: 0.5,
                })
        });
    usd.chain(others).collect()
}

fn pair_info(prefix: &str, class: AssetClass, p: &PairSpec) -> TickerInfo {
    let ticker = format!("{prefix}{}{}", p.base, p.quote);
    let name = format!("{} - {}", p.base_name, p.quote_name);
    let mut info = TickerInfo::new(&ticker, &name, class, p.listed);
    info.currency_name = p.quote_name.to_string();
    info.currency_symbol = Some(p.quote.to_string());
    info.base_currency_symbol = Some(p.base.clone());
    info.base_currency_name = Some(p.base_name.clone());
    info.base_price = p.price;
    info.liquidity = p.liquidity;
    info
}

/// Crypto pairs: the real ones, then generated coins quoted in USD.
pub fn crypto_pairs(count: usize, used: &mut HashSet<String>) -> Vec<TickerInfo> {
    let mut out: Vec<TickerInfo> = real_crypto_specs()
        .iter()
        .take(count)
        .map(|p| pair_info("X:", AssetClass::Crypto, p))
        .collect();
    let mut s = Stream::new(hash_str("crypto symbols"));
    let mut attempts = 0;
    while out.len() < count && attempts < 100 * count + 1_000 {
        attempts += 1;
        let n = s.next_range(3, 5) as usize;
        let base = letters(&mut s, n);
        let ticker = format!("X:{base}USD");
        if used.insert(ticker.clone()) {
            out.push(generated_crypto(&ticker, &base));
        }
    }
    out
}

fn generated_crypto(ticker: &str, base: &str) -> TickerInfo {
    let mut s = Stream::new(splitmix64(hash_str(ticker)));
    let word: String = s
        .pick(NAME_WORDS)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let spec = PairSpec {
        base: base.to_string(),
        base_name: format!("{word}{}", s.pick(CRYPTO_SUFFIXES)),
        quote: "USD",
        quote_name: "United States Dollar",
        listed: date_between(&mut s, date(2014, 1, 1), date(2024, 6, 30)),
        price: (0.05_f64.ln() + s.next_unit() * (200.0_f64.ln() - 0.05_f64.ln())).exp(),
        liquidity: 0.5 * s.next_unit().powi(6),
    };
    let mut info = pair_info("X:", AssetClass::Crypto, &spec);
    maybe_delist(&mut info, date(2015, 1, 1));
    info
}

/// Currency pairs: the majors, then other pairs in a fixed hashed order.
pub fn fx_pairs(count: usize) -> Vec<TickerInfo> {
    let currency = |code: &str| CURRENCIES.iter().find(|(c, ..)| *c == code);
    let majors: Vec<(&str, &str)> = FX_MAJORS.to_vec();
    let mut others: Vec<(&str, &str)> = CURRENCIES
        .iter()
        .flat_map(|(b, ..)| CURRENCIES.iter().map(move |(q, ..)| (*b, *q)))
        .filter(|(b, q)| b != q && !majors.contains(&(*b, *q)))
        .collect();
    others.sort_by_key(|(b, q)| hash_str(&format!("C:{b}{q}")));
    let mut out = Vec::new();
    for (i, (b, q)) in majors.iter().chain(others.iter()).enumerate() {
        if out.len() >= count {
            break;
        }
        let (Some(base), Some(quote)) = (currency(b), currency(q)) else {
            continue;
        };
        let price = quote.2 / base.2;
        if !(0.05..=100_000.0).contains(&price) {
            continue;
        }
        let major = i < majors.len();
        out.push(fx_info(base, quote, price, major));
    }
    out
}

fn fx_info(
    base: &(&str, &str, f64),
    quote: &(&'static str, &'static str, f64),
    price: f64,
    major: bool,
) -> TickerInfo {
    let ticker = format!("C:{}{}", base.0, quote.0);
    let mut s = Stream::new(splitmix64(hash_str(&ticker)));
    let first = date(2009, 9, 25);
    let spec = PairSpec {
        base: base.0.to_string(),
        base_name: base.1.to_string(),
        quote: quote.0,
        quote_name: quote.1,
        listed: if major {
            first
        } else {
            date_between(&mut s, first, date(2018, 12, 31))
        },
        price,
        liquidity: if major {
            1.0
        } else {
            0.05 + 0.45 * s.next_unit()
        },
    };
    let mut info = pair_info("C:", AssetClass::Fx, &spec);
    if !major {
        maybe_delist(&mut info, date(2015, 1, 1));
    }
    info
}

/// Indices: the real ones, then generated `I:` symbols.
pub fn indices(count: usize, used: &mut HashSet<String>) -> Vec<TickerInfo> {
    let mut out: Vec<TickerInfo> = INDICES
        .iter()
        .take(count)
        .map(|(t, name, level)| index_info(t, name, date(1990, 1, 2), *level))
        .collect();
    let mut s = Stream::new(hash_str("index symbols"));
    let mut attempts = 0;
    while out.len() < count && attempts < 100 * count + 1_000 {
        attempts += 1;
        let n = s.next_range(3, 5) as usize;
        let ticker = format!("I:{}", letters(&mut s, n));
        if used.insert(ticker.clone()) {
            out.push(generated_index(&ticker));
        }
    }
    out
}

fn index_info(ticker: &str, name: &str, listed: chrono::NaiveDate, level: f64) -> TickerInfo {
    let mut info = TickerInfo::new(ticker, name, AssetClass::Indices, listed);
    info.type_code = Some("INDEX".to_string());
    info.base_price = level;
    info.liquidity = 1.0;
    info
}

fn generated_index(ticker: &str) -> TickerInfo {
    let mut s = Stream::new(splitmix64(hash_str(ticker)));
    let name = format!("{} {} Index", s.pick(NAME_WORDS), s.pick(FUND_THEMES));
    let listed = date_between(&mut s, date(1990, 1, 2), date(2022, 12, 30));
    let level = (100.0_f64.ln() + s.next_unit() * (5_000.0_f64.ln() - 100.0_f64.ln())).exp();
    let mut info = index_info(ticker, &name, listed, level);
    maybe_delist(&mut info, date(2015, 1, 1));
    info
}
