//! Names of flat files: the datasets and file kinds Polygon publishes, their
//! object keys (`<dataset>/<kind>/<YYYY>/<MM>/<YYYY-MM-DD>.csv.gz`) both ways,
//! and what a dataset implies (asset class, calendar, day zone, first day).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use crate::calendar::Calendar;
use crate::model::{AssetClass, Timeframe};

/// A flat-file dataset: the first segment of every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    UsStocksSip,
    UsOptionsOpra,
    UsIndices,
    GlobalCrypto,
    GlobalForex,
}

impl Dataset {
    pub const ALL: [Self; 5] = [
        Self::UsStocksSip,
        Self::UsOptionsOpra,
        Self::UsIndices,
        Self::GlobalCrypto,
        Self::GlobalForex,
    ];

    /// The key segment (`us_stocks_sip`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::UsStocksSip => "us_stocks_sip",
            Self::UsOptionsOpra => "us_options_opra",
            Self::UsIndices => "us_indices",
            Self::GlobalCrypto => "global_crypto",
            Self::GlobalForex => "global_forex",
        }
    }

    /// The dataset named by a key segment.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The dataset that holds the bars of an asset class.
    pub fn for_class(class: AssetClass) -> Self {
        match class {
            AssetClass::Stocks => Self::UsStocksSip,
            AssetClass::Options => Self::UsOptionsOpra,
            AssetClass::Indices => Self::UsIndices,
            AssetClass::Crypto => Self::GlobalCrypto,
            AssetClass::Fx => Self::GlobalForex,
        }
    }

    /// The asset class of the dataset's tickers.
    pub fn asset_class(self) -> AssetClass {
        match self {
            Self::UsStocksSip => AssetClass::Stocks,
            Self::UsOptionsOpra => AssetClass::Options,
            Self::UsIndices => AssetClass::Indices,
            Self::GlobalCrypto => AssetClass::Crypto,
            Self::GlobalForex => AssetClass::Fx,
        }
    }

    /// The dates on which the dataset publishes a file: NYSE trading days for
    /// stocks and options, every weekday for indices (holidays included),
    /// every day for crypto, Sunday to Friday for forex.
    pub fn calendar(self) -> Calendar {
        match self {
            Self::UsStocksSip | Self::UsOptionsOpra => Calendar::Nyse,
            Self::UsIndices => Calendar::Weekdays,
            Self::GlobalCrypto => Calendar::Crypto,
            Self::GlobalForex => Calendar::Forex,
        }
    }

    /// The zone whose midnight stamps a day row: UTC for forex, New York otherwise.
    pub fn day_zone(self) -> Tz {
        self.asset_class().day_zone()
    }

    /// The first date with a file (POLYGON.md "Flat files").
    pub fn earliest(self) -> NaiveDate {
        match self {
            Self::UsStocksSip => STOCKS_FIRST,
            Self::UsOptionsOpra => OPTIONS_FIRST,
            Self::UsIndices => INDICES_FIRST,
            Self::GlobalCrypto => CRYPTO_FIRST,
            Self::GlobalForex => FOREX_FIRST,
        }
    }

    /// Whether aggregates rows carry `volume` and `transactions` (all but indices).
    pub fn has_volume(self) -> bool {
        self != Self::UsIndices
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(day) => day,
        // Only reached for an invalid literal below, which fails the build (const evaluation).
        None => panic!("invalid date literal"),
    }
}

const STOCKS_FIRST: NaiveDate = date(2003, 9, 10);
const OPTIONS_FIRST: NaiveDate = date(2014, 6, 2);
const INDICES_FIRST: NaiveDate = date(2023, 2, 14);
const FOREX_FIRST: NaiveDate = date(2009, 9, 25);
const CRYPTO_FIRST: NaiveDate = date(2013, 11, 1);

/// The kind of file within a dataset: the second segment of every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    MinuteAggs,
    DayAggs,
    /// Every trade of the day (`trades_v1`, US stocks): read by the trades
    /// path ([`crate::trades`]), not by the aggregates decoder.
    Trades,
}

impl FileKind {
    pub const ALL: [Self; 3] = [Self::MinuteAggs, Self::DayAggs, Self::Trades];

    /// The key segment (`minute_aggs_v1`, `day_aggs_v1`, `trades_v1`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MinuteAggs => "minute_aggs_v1",
            Self::DayAggs => "day_aggs_v1",
            Self::Trades => "trades_v1",
        }
    }

    /// The kind named by a key segment.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The bar width of the file's rows (`1m` or `1d`); `None` for trades,
    /// which are not bars.
    pub fn timeframe(self) -> Option<Timeframe> {
        match self {
            Self::MinuteAggs => Some(Timeframe::MINUTE),
            Self::DayAggs => Some(Timeframe::DAY),
            Self::Trades => None,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The object key of one day's file: `<dataset>/<kind>/<YYYY>/<MM>/<YYYY-MM-DD>.csv.gz`.
pub fn object_key(dataset: Dataset, kind: FileKind, date: NaiveDate) -> String {
    format!(
        "{}{}.csv.gz",
        month_prefix(dataset, kind, date.year(), date.month()),
        date.format("%Y-%m-%d")
    )
}

/// The key prefix of one month's files, with its trailing slash:
/// `<dataset>/<kind>/<YYYY>/<MM>/`.
pub fn month_prefix(dataset: Dataset, kind: FileKind, year: i32, month: u32) -> String {
    format!("{}/{}/{year:04}/{month:02}/", dataset.name(), kind.name())
}

/// The dataset, kind and date named by a key, or `None` when the key is not a
/// day file of a known dataset and kind (other kinds such as `quotes_v1`,
/// folders, stray objects, or a date that disagrees with its folders).
pub fn parse_key(key: &str) -> Option<(Dataset, FileKind, NaiveDate)> {
    let mut parts = key.split('/');
    let dataset = Dataset::from_name(parts.next()?)?;
    let kind = FileKind::from_name(parts.next()?)?;
    let year = parts.next()?;
    let month = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 {
        return None;
    }
    let day = file.strip_suffix(".csv.gz")?;
    if day.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let folders_agree = year.parse() == Ok(date.year()) && month.parse() == Ok(date.month());
    folders_agree.then_some((dataset, kind, date))
}

/// One day's file as listed on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayFile {
    pub dataset: Dataset,
    pub kind: FileKind,
    /// The ET trading date named by the key.
    pub date: NaiveDate,
    pub key: String,
    /// Compressed size in bytes (0 when not known).
    pub size: u64,
    /// The object's ETag, which changes when Polygon republishes the day.
    pub etag: Option<String>,
}

impl DayFile {
    /// A file known by name only (size 0, no ETag): for decoding a local copy.
    pub fn new(dataset: Dataset, kind: FileKind, date: NaiveDate) -> Self {
        Self {
            dataset,
            kind,
            date,
            key: object_key(dataset, kind, date),
            size: 0,
            etag: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn keys_round_trip() {
        let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-02"));
        assert_eq!(
            key,
            "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz"
        );
        for dataset in Dataset::ALL {
            for kind in FileKind::ALL {
                let date = d("2023-12-31");
                assert_eq!(
                    parse_key(&object_key(dataset, kind, date)),
                    Some((dataset, kind, date))
                );
            }
        }
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        for key in [
            "us_stocks_sip/quotes_v1/2024/04/2024-04-05.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/01/",
            "us_stocks_sip/minute_aggs_v1/2024/02/2024-01-02.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv",
            "us_stocks_sip/minute_aggs_v1/2024/01/2024-1-2.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-32.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/01/x/2024-01-02.csv.gz",
            "eu_stocks/minute_aggs_v1/2024/01/2024-01-02.csv.gz",
            "",
        ] {
            assert_eq!(parse_key(key), None, "{key}");
        }
    }

    #[test]
    fn datasets_follow_their_asset_class() {
        for dataset in Dataset::ALL {
            assert_eq!(Dataset::for_class(dataset.asset_class()), dataset);
            assert_eq!(Dataset::from_name(dataset.name()), Some(dataset));
            assert!(dataset.calendar().is_open(dataset.earliest()), "{dataset}");
        }
        assert_eq!(Dataset::GlobalForex.day_zone(), Tz::UTC);
        assert_eq!(Dataset::UsIndices.day_zone(), chrono_tz::America::New_York);
        assert_eq!(Dataset::UsIndices.calendar(), Calendar::Weekdays);
        assert_eq!(Dataset::UsStocksSip.earliest(), d("2003-09-10"));
        assert!(!Dataset::UsIndices.has_volume());
        assert_eq!(
            month_prefix(Dataset::GlobalCrypto, FileKind::DayAggs, 2024, 8),
            "global_crypto/day_aggs_v1/2024/08/"
        );
    }
}
