//! Pure domain types shared by every module: tickers, timeframes, categories.
//! No I/O lives here.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::suggest::nearest;

/// A ticker exactly as Polygon spells it (`AAPL`, `BRK.A`, `KIMpL`, `X:BTCUSD`,
/// `O:AAPL250117C00150000`). Tickers are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ticker(String);

/// Why a string is not a ticker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid ticker {0:?}: a ticker is 1 to 64 visible characters without spaces, '/' or '\\', \
     and not only dots"
)]
pub struct InvalidTicker(pub String);

impl Ticker {
    /// Validates and wraps a ticker symbol.
    pub fn new(symbol: impl Into<String>) -> Result<Self, InvalidTicker> {
        let symbol = symbol.into();
        // Only dots (`.`, `..`) would name another endpoint in a URL path.
        let valid = !symbol.is_empty()
            && symbol.len() <= 64
            && !symbol.bytes().all(|b| b == b'.')
            && symbol
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '/' && c != '\\');
        if valid {
            Ok(Self(symbol))
        } else {
            Err(InvalidTicker(symbol))
        }
    }

    /// The symbol as Polygon spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The likely intended ticker when every letter of this one is
    /// lowercase (`aapl`, `x:btcusd`): markets spell tickers in capitals,
    /// and lowercase letters appear only beside capitals (`KIMpL`, a
    /// preferred share), so such a symbol asks for nothing. `None` when the
    /// ticker has a capital letter or no letter at all.
    pub fn uppercase_hint(&self) -> Option<Ticker> {
        let letters = || self.0.chars().filter(char::is_ascii_alphabetic);
        let all_lower = letters().next().is_some() && letters().all(|c| c.is_ascii_lowercase());
        all_lower.then(|| Ticker(self.0.to_ascii_uppercase()))
    }
}

impl Ticker {
    /// The asset class, from Polygon's ticker prefixes (`X:` crypto, `C:` fx,
    /// `I:` indices, `O:` options; anything else is a stock, OTC included).
    pub fn asset_class(&self) -> AssetClass {
        match self.0.split_once(':').map(|(prefix, _)| prefix) {
            Some("X") => AssetClass::Crypto,
            Some("C") => AssetClass::Fx,
            Some("I") => AssetClass::Indices,
            Some("O") => AssetClass::Options,
            _ => AssetClass::Stocks,
        }
    }
}

impl TryFrom<String> for Ticker {
    type Error = InvalidTicker;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Ticker> for String {
    fn from(value: Ticker) -> Self {
        value.0
    }
}

impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit of a timeframe, named as Polygon's `timespan` path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timespan {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    /// Activity bars built from trades (issue #16): a bar closes once it
    /// holds `multiplier` trades (`1000t`).
    Trades,
    /// … once its volume reaches `multiplier` shares (`50000v`).
    Volume,
    /// … once its dollar value (Σ price × size) reaches `multiplier`
    /// (`1e6usd`, also written `1e6$`).
    Dollars,
}

impl Timespan {
    /// Polygon's path segment for this unit.
    pub fn as_polygon(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
            // Not Polygon units: activity bars are never asked of the API.
            Self::Trades => "trades",
            Self::Volume => "volume",
            Self::Dollars => "dollars",
        }
    }

    /// Whether bars of this unit close on activity (trades, volume,
    /// dollars) rather than on time.
    pub fn is_activity(self) -> bool {
        matches!(self, Self::Trades | Self::Volume | Self::Dollars)
    }

    /// Parses Polygon's path segment (`minute`, `day`, …; lowercase only).
    pub fn from_polygon(segment: &str) -> Option<Self> {
        [
            Self::Second,
            Self::Minute,
            Self::Hour,
            Self::Day,
            Self::Week,
            Self::Month,
            Self::Quarter,
            Self::Year,
        ]
        .into_iter()
        .find(|t| t.as_polygon() == segment)
    }

    /// The short suffix used in finpipe's timeframe names (`1m`, `1h`, `1mo`).
    fn suffix(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "m",
            Self::Hour => "h",
            Self::Day => "d",
            Self::Week => "w",
            Self::Month => "mo",
            Self::Quarter => "q",
            Self::Year => "y",
            Self::Trades => "t",
            Self::Volume => "v",
            // `usd`, not `$`: the name is also a directory name, and `$` is
            // awkward in shells and globs. `1e6$` is accepted as input.
            Self::Dollars => "usd",
        }
    }

    /// Length of one unit in milliseconds, for units of fixed length.
    pub fn fixed_millis(self) -> Option<i64> {
        match self {
            Self::Second => Some(1_000),
            Self::Minute => Some(60_000),
            Self::Hour => Some(3_600_000),
            _ => None,
        }
    }
}

/// A bar width: `multiplier × timespan`, written `1m`, `5m`, `1h`, `1d`, `30s`, `1w`, `1mo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeframe {
    // Field order makes the derived `Ord` sort by unit first: 1m < 5m < 1h < 1d.
    pub timespan: Timespan,
    pub multiplier: u32,
}

/// Timeframes users ask for most; used for "did you mean" suggestions.
pub const COMMON_TIMEFRAMES: &[&str] = &["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1mo"];

/// Why a string is not a timeframe.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown timeframe {given:?}{hint}: use <N><unit> with unit s, m, h, d, w, mo, q or y (e.g. 1m, 5m, 15m, 1h, 1d)"
)]
pub struct InvalidTimeframe {
    pub given: String,
    hint: String,
}

impl InvalidTimeframe {
    /// `M` alone: pandas and freqtrade read a month, finpipe would read a
    /// minute, so it is refused with both spellings.
    fn ambiguous_month(given: &str) -> Self {
        Self {
            given: given.to_owned(),
            hint: " (M is ambiguous: write 1m for minutes or 1mo for months)".to_owned(),
        }
    }

    /// An activity bar (`1000t`, `50000v`, `1e6$`) whose notation is wrong.
    fn activity(given: &str, why: &str) -> Self {
        Self {
            given: given.to_owned(),
            hint: format!(" ({why})"),
        }
    }

    fn new(given: &str) -> Self {
        let hint = nearest(given, COMMON_TIMEFRAMES.iter().copied())
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default();
        Self {
            given: given.to_owned(),
            hint,
        }
    }
}

impl Timeframe {
    pub const MINUTE: Self = Self::new(1, Timespan::Minute);
    pub const DAY: Self = Self::new(1, Timespan::Day);

    pub const fn new(multiplier: u32, timespan: Timespan) -> Self {
        Self {
            multiplier,
            timespan,
        }
    }

    /// Width in milliseconds when the width is fixed (seconds, minutes, hours).
    pub fn fixed_millis(self) -> Option<i64> {
        self.timespan
            .fixed_millis()
            .map(|unit| unit * i64::from(self.multiplier))
    }

    /// Whether this is an activity bar (`1000t`, `50000v`, `1e6usd`), built
    /// from trades only.
    pub fn is_activity(self) -> bool {
        self.timespan.is_activity()
    }

    /// Whether the bars lie within a day: fixed widths and activity bars,
    /// whose period files are months (`YYYY-MM`); daily and longer bars
    /// have yearly files (`YYYY`).
    pub fn is_intraday(self) -> bool {
        self.fixed_millis().is_some() || self.is_activity()
    }

    /// Whether this series is built from trades whatever the source: second
    /// bars (REST second aggregates are not part of the library's plan) and
    /// activity bars. With `--from-trades`, every fixed-width timeframe is.
    pub fn needs_trades(self) -> bool {
        self.timespan == Timespan::Second || self.is_activity()
    }
}

impl FromStr for Timeframe {
    type Err = InvalidTimeframe;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Some(activity) = activity_timeframe(s, text) {
            return activity;
        }
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let multiplier: u32 = match number.parse() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => return Err(InvalidTimeframe::new(s)),
        };
        if unit == "M" {
            return Err(InvalidTimeframe::ambiguous_month(s));
        }
        let timespan = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" | "seconds" => Timespan::Second,
            "m" | "min" | "minute" | "minutes" => Timespan::Minute,
            "h" | "hour" | "hours" => Timespan::Hour,
            "d" | "day" | "days" => Timespan::Day,
            "w" | "week" | "weeks" => Timespan::Week,
            "mo" | "month" | "months" => Timespan::Month,
            "q" | "quarter" | "quarters" => Timespan::Quarter,
            "y" | "year" | "years" => Timespan::Year,
            _ => return Err(InvalidTimeframe::new(s)),
        };
        Ok(Self::new(multiplier, timespan).canonical())
    }
}

impl Timeframe {
    /// One spelling per series: whole minutes of seconds and whole hours of
    /// minutes in the larger unit (`60m` is `1h`, `120s` is `2m`), so two
    /// spellings never make two libraries of the same bars. Days, weeks and
    /// longer keep their unit (`24h` bars are not `1d` bars: a day bar is a
    /// session).
    fn canonical(self) -> Self {
        let mut tf = self;
        if tf.timespan == Timespan::Second && tf.multiplier.is_multiple_of(60) {
            tf = Self::new(tf.multiplier / 60, Timespan::Minute);
        }
        if tf.timespan == Timespan::Minute && tf.multiplier.is_multiple_of(60) {
            tf = Self::new(tf.multiplier / 60, Timespan::Hour);
        }
        tf
    }
}

/// An activity bar's notation (`1000t`, `50000v`, `1e6$`, `1e6usd`), read
/// by [`crate::trades::InfoBarSpec`]; `None` when `text` is not one (a time
/// unit). Thresholds above `u32::MAX` (about 4.3e9) are refused.
fn activity_timeframe(given: &str, text: &str) -> Option<Result<Timeframe, InvalidTimeframe>> {
    use crate::trades::{Activity, InfoBarSpec};
    let activity_unit = text.ends_with(['t', 'v', '$']) || text.ends_with("usd");
    let numeric = text.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if !(activity_unit && numeric) {
        return None;
    }
    let spec = match text.parse::<InfoBarSpec>() {
        Ok(spec) => spec,
        Err(e) => return Some(Err(InvalidTimeframe::activity(given, e.reason()))),
    };
    let Ok(multiplier) = u32::try_from(spec.threshold) else {
        return Some(Err(InvalidTimeframe::activity(
            given,
            "activity bars in the library take thresholds up to 4e9",
        )));
    };
    let timespan = match spec.activity {
        Activity::Ticks => Timespan::Trades,
        Activity::Volume => Timespan::Volume,
        Activity::Dollars => Timespan::Dollars,
    };
    Some(Ok(Timeframe::new(multiplier, timespan)))
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_activity() {
            let threshold = crate::trades::compact_threshold(u64::from(self.multiplier));
            return write!(f, "{threshold}{}", self.timespan.suffix());
        }
        write!(f, "{}{}", self.multiplier, self.timespan.suffix())
    }
}

/// Parses a comma-separated timeframe list (`1m,5m,1d`), sorted and deduplicated.
pub fn parse_timeframes(list: &str) -> Result<Vec<Timeframe>, InvalidTimeframe> {
    let mut out = list
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<Timeframe>, _>>()?;
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(InvalidTimeframe::new(list));
    }
    Ok(out)
}

/// What kind of instrument a ticker is; decides its day zone and calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetClass {
    Stocks,
    Options,
    Indices,
    Crypto,
    Fx,
}

impl AssetClass {
    /// The zone whose midnight starts a daily bar and whose date names a
    /// bar's day: America/New_York for all but forex, which uses UTC.
    pub fn day_zone(self) -> Tz {
        match self {
            Self::Fx => Tz::UTC,
            _ => chrono_tz::America::New_York,
        }
    }

    /// The date of instant `ms` (UTC milliseconds) in the day zone.
    pub fn date_of(self, ms: i64) -> NaiveDate {
        crate::calendar::zone_date_of_ms(self.day_zone(), ms)
    }

    /// Midnight of `date` in the day zone, as UTC milliseconds.
    /// The days the class has sessions: NYSE days for US stocks, options
    /// and indices, every day for crypto, Sunday to Friday for forex.
    pub fn calendar(self) -> crate::calendar::Calendar {
        use crate::calendar::Calendar;
        match self {
            Self::Stocks | Self::Options | Self::Indices => Calendar::Nyse,
            Self::Crypto => Calendar::Crypto,
            Self::Fx => Calendar::Forex,
        }
    }

    pub fn midnight_ms(self, date: NaiveDate) -> i64 {
        crate::calendar::zone_midnight_ms(self.day_zone(), date)
    }
}

/// Whether prices are split-adjusted. A series never mixes the two. The
/// default library is unadjusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    #[default]
    Unadjusted,
    Adjusted,
}

impl Basis {
    pub fn from_adjusted(adjusted: bool) -> Self {
        if adjusted {
            Self::Adjusted
        } else {
            Self::Unadjusted
        }
    }

    pub fn is_adjusted(self) -> bool {
        self == Self::Adjusted
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Unadjusted => "unadjusted",
            Self::Adjusted => "adjusted",
        }
    }
}

/// One bar in finpipe's schema (README "The bar schema"). `timestamp` is the
/// window start in UTC milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub timestamp: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: Option<f64>,
    pub vwap: Option<f64>,
    pub transactions: Option<i64>,
}

/// The file a bar belongs to: `YYYY-MM` for intraday timeframes, `YYYY` for
/// daily and longer, from the bar's date in its asset class's day zone, so one
/// trading day never straddles two files. Every writer uses this function.
pub fn period_of(class: AssetClass, timeframe: Timeframe, timestamp_ms: i64) -> String {
    period_of_date(timeframe, class.date_of(timestamp_ms))
}

/// The period file holding the bars of `date` (a date in the asset class's
/// day zone): `YYYY-MM` for intraday timeframes, `YYYY` otherwise.
pub fn period_of_date(timeframe: Timeframe, date: chrono::NaiveDate) -> String {
    if timeframe.is_intraday() {
        date.format("%Y-%m").to_string()
    } else {
        date.format("%Y").to_string()
    }
}

/// `range` cut at period boundaries: each period file (as
/// [`period_of_date`] names them) with the days of `range` it holds, oldest
/// first.
pub fn period_pieces(
    timeframe: Timeframe,
    range: crate::ranges::DateRange,
) -> Vec<(String, crate::ranges::DateRange)> {
    use chrono::Datelike;
    let mut pieces = Vec::new();
    let mut start = range.start;
    loop {
        let next = if timeframe.is_intraday() {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            chrono::NaiveDate::from_ymd_opt(y, m, 1)
        } else {
            chrono::NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
        };
        let last = next
            .and_then(|n| n.pred_opt())
            .map_or(range.end, |l| l.min(range.end));
        pieces.push((
            period_of_date(timeframe, start),
            crate::ranges::DateRange { start, end: last },
        ));
        match next {
            Some(next) if last < range.end => start = next,
            _ => return pieces,
        }
    }
}

/// A discovery category: a named slice of Polygon's reference data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    UsEquities,
    Etf,
    Crypto,
    Fx,
    Options,
    Indices,
    Otc,
}

/// Why a string is not a category.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown category {given:?}{hint}; categories: us_equities, etf, crypto, fx, options, indices, otc"
)]
pub struct InvalidCategory {
    pub given: String,
    hint: String,
}

impl Category {
    pub const ALL: [Self; 7] = [
        Self::UsEquities,
        Self::Etf,
        Self::Crypto,
        Self::Fx,
        Self::Options,
        Self::Indices,
        Self::Otc,
    ];

    /// The name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::UsEquities => "us_equities",
            Self::Etf => "etf",
            Self::Crypto => "crypto",
            Self::Fx => "fx",
            Self::Options => "options",
            Self::Indices => "indices",
            Self::Otc => "otc",
        }
    }

    /// One line for `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UsEquities => "US common stocks (market stocks, type CS)",
            Self::Etf => "US exchange-traded funds (market stocks, type ETF)",
            Self::Crypto => "crypto pairs such as X:BTCUSD (market crypto)",
            Self::Fx => "currency pairs such as C:EURUSD (market fx)",
            Self::Options => "option contracts of the underlyings given with --underlying",
            Self::Indices => "indices such as I:SPX (market indices)",
            Self::Otc => "over-the-counter stocks (market otc)",
        }
    }
}

impl FromStr for Category {
    type Err = InvalidCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        if let Some(found) = Self::ALL.into_iter().find(|c| c.name() == key) {
            return Ok(found);
        }
        let hint = nearest(&key, Self::ALL.iter().map(|c| c.name()))
            .map(|n| format!(" (did you mean {n:?}?)"))
            .unwrap_or_default();
        Err(InvalidCategory {
            given: s.to_owned(),
            hint,
        })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeframes_parse_and_print_canonically() {
        for (text, mult, span, shown) in [
            ("1m", 1, Timespan::Minute, "1m"),
            ("15min", 15, Timespan::Minute, "15m"),
            ("1h", 1, Timespan::Hour, "1h"),
            ("30s", 30, Timespan::Second, "30s"),
            ("1D", 1, Timespan::Day, "1d"),
            ("1mo", 1, Timespan::Month, "1mo"),
            ("2w", 2, Timespan::Week, "2w"),
        ] {
            let tf: Timeframe = text.parse().unwrap();
            assert_eq!(tf, Timeframe::new(mult, span), "{text}");
            assert_eq!(tf.to_string(), shown);
        }
    }

    #[test]
    fn bad_timeframes_are_rejected_with_a_suggestion() {
        let err = "1mn".parse::<Timeframe>().unwrap_err();
        assert!(err.to_string().contains("did you mean \"1m\""), "{err}");
        for bad in ["", "m", "0m", "5x", "-1m", "1.5h"] {
            assert!(bad.parse::<Timeframe>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeframe_lists_are_sorted_and_deduplicated() {
        let tfs = parse_timeframes("1d,1m,5m,1m").unwrap();
        let shown: Vec<String> = tfs.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["1m", "5m", "1d"]);
        assert!(parse_timeframes(" , ").is_err());
    }

    #[test]
    fn categories_round_trip_and_suggest() {
        for c in Category::ALL {
            assert_eq!(c.name().parse::<Category>(), Ok(c));
        }
        assert_eq!("US-Equities".parse::<Category>(), Ok(Category::UsEquities));
        let err = "etfs".parse::<Category>().unwrap_err().to_string();
        assert!(err.contains("did you mean \"etf\""), "{err}");
    }

    #[test]
    fn periods_follow_the_day_zone() {
        // 2024-03-01 02:00Z is still February 29 in New York.
        let ms = 1_709_258_400_000;
        let stock = Ticker::new("AAPL").unwrap().asset_class();
        let fx = Ticker::new("C:EURUSD").unwrap().asset_class();
        assert_eq!(period_of(stock, Timeframe::MINUTE, ms), "2024-02");
        assert_eq!(period_of(fx, Timeframe::MINUTE, ms), "2024-03");
        assert_eq!(period_of(stock, Timeframe::DAY, ms), "2024");
        // Daily bars start at midnight of the zone: EST in January, EDT in July.
        let jan = NaiveDate::from_ymd_opt(2005, 4, 1).unwrap();
        assert_eq!(stock.midnight_ms(jan), 1_112_331_600_000);
        assert_eq!(fx.midnight_ms(jan), 1_112_313_600_000);
        assert_eq!(
            Ticker::new("X:BTCUSD").unwrap().asset_class(),
            AssetClass::Crypto
        );
        assert_eq!(
            Ticker::new("O:AAPL250117C00150000").unwrap().asset_class(),
            AssetClass::Options
        );
        assert_eq!(
            Ticker::new("I:SPX").unwrap().asset_class(),
            AssetClass::Indices
        );
    }

    #[test]
    fn tickers_keep_case_and_reject_path_characters() {
        assert_eq!(Ticker::new("KIMpL").unwrap().as_str(), "KIMpL");
        assert!(Ticker::new("X:BTCUSD").is_ok());
        for bad in ["", "A B", "A/B", "a\\b"] {
            assert!(Ticker::new(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod period_tests {
    use super::*;
    use crate::ranges::DateRange;

    fn r(a: &str, b: &str) -> DateRange {
        DateRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    }

    #[test]
    fn ranges_are_cut_at_period_boundaries() {
        let pieces = period_pieces(Timeframe::MINUTE, r("2023-12-30", "2024-02-03"));
        assert_eq!(
            pieces,
            [
                ("2023-12".to_owned(), r("2023-12-30", "2023-12-31")),
                ("2024-01".to_owned(), r("2024-01-01", "2024-01-31")),
                ("2024-02".to_owned(), r("2024-02-01", "2024-02-03")),
            ]
        );
        let years = period_pieces(Timeframe::DAY, r("2023-06-01", "2024-01-01"));
        assert_eq!(
            years,
            [
                ("2023".to_owned(), r("2023-06-01", "2023-12-31")),
                ("2024".to_owned(), r("2024-01-01", "2024-01-01")),
            ]
        );
        assert_eq!(
            period_pieces(Timeframe::MINUTE, r("2024-02-29", "2024-02-29")),
            [("2024-02".to_owned(), r("2024-02-29", "2024-02-29"))]
        );
    }
}

#[cfg(test)]
mod spelling_tests {
    use super::*;

    #[test]
    fn an_all_lowercase_ticker_hints_at_capitals() {
        let hint = |s: &str| {
            Ticker::new(s)
                .unwrap()
                .uppercase_hint()
                .map(|t| t.to_string())
        };
        assert_eq!(hint("aapl").as_deref(), Some("AAPL"));
        assert_eq!(hint("x:btcusd").as_deref(), Some("X:BTCUSD"));
        assert_eq!(hint("AAPL"), None);
        assert_eq!(hint("KIMpL"), None, "a preferred share's lowercase p");
        assert_eq!(hint("123"), None);
    }

    #[test]
    fn dots_alone_are_not_tickers() {
        for bad in [".", "..", "..."] {
            let err = Ticker::new(bad).unwrap_err();
            assert!(err.to_string().contains("not only dots"), "{err}");
        }
        assert!(Ticker::new("BRK.A").is_ok());
    }

    #[test]
    fn capital_m_is_refused_and_one_series_has_one_spelling() {
        let err = "1M".parse::<Timeframe>().unwrap_err();
        assert!(
            err.to_string()
                .contains("write 1m for minutes or 1mo for months"),
            "{err}"
        );
        let tf = |s: &str| s.parse::<Timeframe>().unwrap().to_string();
        assert_eq!(tf("60m"), "1h");
        assert_eq!(tf("1h"), "1h");
        assert_eq!(tf("120s"), "2m");
        assert_eq!(tf("3600s"), "1h");
        assert_eq!(tf("90m"), "90m");
        assert_eq!(tf("24h"), "24h");
        assert_eq!(tf("1mo"), "1mo");
        assert_eq!(tf("1MO"), "1mo");
    }

    #[test]
    fn activity_bars_parse_in_both_dollar_spellings_and_print_for_paths() {
        for (text, shown) in [
            ("1000t", "1000t"),
            ("50000v", "50000v"),
            ("1e6$", "1e6usd"),
            ("1e6usd", "1e6usd"),
            ("1000000$", "1e6usd"),
            ("2.5e6usd", "2.5e6usd"),
        ] {
            let tf: Timeframe = text.parse().unwrap();
            assert!(
                tf.is_activity() && tf.is_intraday() && tf.needs_trades(),
                "{text}"
            );
            assert_eq!(tf.fixed_millis(), None);
            assert_eq!(tf.to_string(), shown);
            assert_eq!(shown.parse::<Timeframe>().unwrap(), tf);
        }
        for bad in ["1.5t", "0v", "1e-6$", "5e9usd"] {
            let error = bad.parse::<Timeframe>().unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
        // Period files: months, like minute and second bars.
        let date = NaiveDate::from_ymd_opt(2024, 11, 4).unwrap();
        assert_eq!(period_of_date("1000t".parse().unwrap(), date), "2024-11");
        assert_eq!(period_of_date("1s".parse().unwrap(), date), "2024-11");
    }
}
