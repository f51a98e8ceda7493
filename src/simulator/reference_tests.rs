//! Tests of the ticker world (`reference.rs`, `world.rs`, `names.rs`).

use std::sync::OnceLock;

use chrono::Datelike;

use super::*;

fn world() -> &'static Reference {
    static WORLD: OnceLock<Reference> = OnceLock::new();
    WORLD.get_or_init(|| Reference::generate(&WorldSize::default()))
}

fn count(pred: impl Fn(&TickerInfo) -> bool) -> usize {
    world().tickers().iter().filter(|t| pred(t)).count()
}

fn is_type(t: &TickerInfo, market: &str, code: &str) -> bool {
    t.market == market && t.type_code.as_deref() == Some(code)
}

#[test]
fn world_has_the_requested_counts() {
    let size = WorldSize::default();
    assert_eq!(count(|t| is_type(t, "stocks", "CS")), size.stocks_cs);
    assert_eq!(count(|t| is_type(t, "stocks", "ETF")), size.etf);
    let other = count(|t| t.market == "stocks") - size.stocks_cs - size.etf;
    assert_eq!(other, size.other_stock_types);
    assert_eq!(count(|t| t.market == "otc"), size.otc);
    assert_eq!(count(|t| t.market == "crypto"), size.crypto);
    assert_eq!(count(|t| t.market == "fx"), size.fx);
    assert_eq!(count(|t| t.market == "indices"), size.indices);
    for code in ["ADRC", "PFD", "WARRANT", "UNIT", "RIGHT", "ETN", "FUND"] {
        assert!(count(|t| is_type(t, "stocks", code)) >= 10, "{code}");
    }
}

#[test]
fn tickers_are_sorted_unique_and_case_sensitive() {
    let tickers = world().tickers();
    assert!(
        tickers
            .windows(2)
            .all(|w| w[0].ticker.as_bytes() < w[1].ticker.as_bytes())
    );
    let upper = world().find("KIMPL").unwrap();
    let preferred = world().find("KIMpL").unwrap();
    assert_eq!(preferred.type_code.as_deref(), Some("PFD"));
    assert_ne!(upper.type_code, preferred.type_code);
    let pos = |t: &str| tickers.iter().position(|x| x.ticker == t).unwrap();
    assert!(pos("KIMPL") < pos("KIMpL"));
    assert!(world().find("kimpl").is_none());
    assert!(world().find("aapl").is_none());
    assert!(world().find("NOPE1").is_none());
}

#[test]
fn real_names_and_fields() {
    for t in [
        "AAPL", "MSFT", "NVDA", "BRK.A", "BRK.B", "JPM", "SPY", "QQQ", "IWM", "DIA", "VTI",
    ] {
        let info = world().find(t).unwrap();
        assert_eq!(info.market, "stocks");
        assert_eq!(info.locale, "us");
        assert!(info.active, "{t}");
    }
    let real_large_caps = crate::simulator::names::COMMON_STOCKS
        .iter()
        .filter(|l| {
            world()
                .find(l.ticker)
                .is_some_and(|t| t.active && t.liquidity > 0.5)
        })
        .count();
    assert!(real_large_caps >= 40, "{real_large_caps}");
    let aapl = world().find("AAPL").unwrap();
    assert_eq!(aapl.name, "Apple Inc.");
    assert_eq!(aapl.primary_exchange.as_deref(), Some("XNAS"));
    assert_eq!(aapl.cik.as_deref(), Some("0000320193"));
    assert_eq!(aapl.composite_figi.as_deref(), Some("BBG000B9XRY4"));
    let btc = world().find("X:BTCUSD").unwrap();
    assert_eq!(
        (btc.market.as_str(), btc.locale.as_str()),
        ("crypto", "global")
    );
    assert_eq!(btc.base_currency_symbol.as_deref(), Some("BTC"));
    assert_eq!(btc.currency_symbol.as_deref(), Some("USD"));
    assert!(btc.cik.is_none());
    for t in [
        "X:ETHUSD", "X:SOLUSD", "C:EURUSD", "C:GBPUSD", "C:USDJPY", "I:SPX", "I:NDX", "I:DJI",
        "I:VIX", "I:RUT",
    ] {
        assert!(world().find(t).is_some(), "{t}");
    }
    let eurusd = world().find("C:EURUSD").unwrap();
    assert_eq!(eurusd.base_currency_name.as_deref(), Some("Euro"));
    assert_eq!(eurusd.asset_class.day_zone(), chrono_tz::UTC);
    assert_eq!(
        world().find("I:SPX").unwrap().type_code.as_deref(),
        Some("INDEX")
    );
}

#[test]
fn asset_class_properties() {
    use crate::calendar::Calendar;
    assert_eq!(AssetClass::Otc.market(), "otc");
    assert_eq!(AssetClass::Fx.calendar(), Calendar::Forex);
    assert_eq!(AssetClass::Crypto.calendar(), Calendar::Crypto);
    assert_eq!(AssetClass::Indices.calendar(), Calendar::Nyse);
    assert_eq!(AssetClass::Options.day_zone(), chrono_tz::America::New_York);
    assert_eq!(AssetClass::Crypto.day_zone(), chrono_tz::America::New_York);
}

fn split(t: &str, date: &str) -> Option<(f64, f64)> {
    let d = parse_date(date);
    world()
        .find(t)?
        .splits
        .iter()
        .find(|s| s.execution_date == d)
        .map(|s| (s.split_from, s.split_to))
}

#[test]
fn splits() {
    assert_eq!(split("AAPL", "2020-08-31"), Some((1.0, 4.0)));
    assert_eq!(split("TSLA", "2022-08-25"), Some((1.0, 3.0)));
    assert_eq!(split("NVDA", "2024-06-10"), Some((1.0, 10.0)));
    assert_eq!(split("GE", "2021-08-02"), Some((8.0, 1.0)));
    let generated_reverse_2023 = world().tickers().iter().any(|t| {
        t.splits
            .iter()
            .any(|s| s.split_from == 10.0 && s.split_to == 1.0 && s.execution_date.year() == 2023)
    });
    assert!(generated_reverse_2023);
    for t in world().tickers() {
        for s in &t.splits {
            assert!(
                crate::calendar::nyse_is_trading_day(s.execution_date),
                "{}",
                t.ticker
            );
            assert!(t.is_listed_on(s.execution_date), "{}", t.ticker);
        }
    }
}

#[test]
fn about_five_percent_delisted_per_class() {
    for market in ["stocks", "otc", "crypto", "fx", "indices"] {
        let all = count(|t| t.market == market) as f64;
        let gone = count(|t| t.market == market && !t.active) as f64;
        let share = gone / all;
        assert!((0.02..0.09).contains(&share), "{market}: {share}");
    }
    for t in world().tickers().iter().filter(|t| !t.active) {
        let d = t.delist_date.unwrap();
        assert!((2015..=2025).contains(&d.year()), "{}", t.ticker);
        assert_eq!(
            t.delisted_utc.as_deref(),
            Some(format!("{d}T00:00:00Z").as_str())
        );
        assert!(d > t.list_date);
    }
    assert!(
        world()
            .tickers()
            .iter()
            .filter(|t| t.active)
            .all(|t| t.delist_date.is_none() && t.delisted_utc.is_none())
    );
}

#[test]
fn list_dates_mostly_old_some_recent() {
    let stocks: Vec<&TickerInfo> = world()
        .tickers()
        .iter()
        .filter(|t| t.market == "stocks")
        .collect();
    let old =
        stocks.iter().filter(|t| t.list_date.year() < 2004).count() as f64 / stocks.len() as f64;
    let recent = stocks.iter().filter(|t| t.list_date.year() >= 2015).count();
    assert!(old > 0.7, "{old}");
    assert!(recent > 50, "{recent}");
}

#[test]
fn identifiers_have_real_formats() {
    assert_eq!(figi_check_digit("BBG000B9XRY"), '4');
    assert_eq!(figi_check_digit("BBG001S5N8V"), '8');
    assert_eq!(figi_check_digit("BBG000C2V3D"), '6');
    for t in world()
        .tickers()
        .iter()
        .filter(|t| t.market == "stocks" || t.market == "otc")
    {
        let cik = t.cik.as_deref().unwrap();
        assert!(
            cik.len() == 10 && cik.bytes().all(|b| b.is_ascii_digit()),
            "{cik}"
        );
        for figi in [
            t.composite_figi.as_deref().unwrap(),
            t.share_class_figi.as_deref().unwrap(),
        ] {
            assert_eq!(figi.len(), 12);
            assert!(figi.starts_with("BBG"));
            assert_eq!(
                figi.chars().last(),
                Some(figi_check_digit(&figi[..11])),
                "{figi}"
            );
        }
        assert!(t.last_updated_utc.ends_with("T00:00:00Z"));
    }
}

#[test]
fn symbol_styles() {
    for t in world().tickers() {
        let s = t.ticker.as_str();
        match (t.market.as_str(), t.type_code.as_deref()) {
            ("crypto", _) => assert!(s.starts_with("X:") && s.len() >= 8, "{s}"),
            ("fx", _) => assert!(s.starts_with("C:") && s.len() == 8, "{s}"),
            ("indices", _) => assert!(s.starts_with("I:"), "{s}"),
            (_, Some("WARRANT")) => assert!(s.ends_with(".WS"), "{s}"),
            (_, Some("PFD")) => assert!(s.contains('p'), "{s}"),
            (_, Some("CS")) | (_, Some("ETF")) => {
                let body = s.replace('.', "");
                assert!(
                    (1..=5).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_uppercase()),
                    "{s}"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn liquidity_is_skewed() {
    let cs: Vec<f64> = world()
        .tickers()
        .iter()
        .filter(|t| is_type(t, "stocks", "CS"))
        .map(|t| t.liquidity)
        .collect();
    let liquid = cs.iter().filter(|l| **l > 0.3).count() as f64 / cs.len() as f64;
    let mut sorted = cs.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(liquid < 0.2, "{liquid}");
    assert!(sorted[sorted.len() / 2] < 0.05);
    assert!(cs.iter().all(|l| (0.0..=1.0).contains(l)));
}

#[test]
fn tickers_do_not_depend_on_world_size() {
    let small = Reference::generate(&WorldSize {
        stocks_cs: 80,
        etf: 40,
        other_stock_types: 20,
        otc: 10,
        crypto: 30,
        fx: 25,
        indices: 20,
    });
    assert_eq!(small.tickers().len(), 225);
    for t in small.tickers() {
        assert_eq!(Some(t), world().find(&t.ticker), "{}", t.ticker);
    }
    assert_eq!(
        Reference::generate(&WorldSize::default()).tickers(),
        world().tickers()
    );
}
