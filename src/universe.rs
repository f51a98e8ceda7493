//! Universe files: the list of tickers a backfill works on.
//!
//! Format (`format: "finpipe-universe"`, `version: 1`), written by `discover`:
//! ```json
//! { "format": "finpipe-universe", "version": 1, "category": "etf",
//!   "created_at": "2024-12-01T06:00:00Z", "source": "https://api.massive.com",
//!   "filters": { "market": "stocks", "type": "ETF", "include_inactive": false, "limit": 500 },
//!   "count": 500,
//!   "tickers": [ { "ticker": "SPY", "name": "…", "market": "stocks", "type": "ETF", … } ] }
//! ```
//! Each ticker keeps every reference field the API returned. For hand-written
//! lists, a bare JSON array of symbols (`["AAPL", "MSFT"]`) or an object with
//! a `tickers` array is read too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::model::{Category, Ticker};
use crate::polygon::TickerRecord;

/// The `format` tag of universe files.
pub const FORMAT: &str = "finpipe-universe";
/// The newest format version this build reads and the one it writes.
pub const VERSION: u32 = 1;

/// The filters a universe was discovered with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub underlyings: Vec<String>,
    #[serde(default)]
    pub include_inactive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A universe: a category's tickers at one point in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Universe {
    pub format: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub filters: Filters,
    pub count: usize,
    pub tickers: Vec<TickerRecord>,
}

/// Why a universe file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UniverseError {
    #[error("cannot read universe file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "universe file {path} is not valid JSON: {detail}. Re-create it with `finpipe discover`, or write a JSON array of tickers"
    )]
    Json { path: PathBuf, detail: String },
    #[error("universe file {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("cannot write universe file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{word:?} is neither a universe file (no such file; universe files end in .json) nor a \
         ticker (1 to 64 visible characters without spaces, `/` or `\\`, not only dots, as \
         Polygon spells it: AAPL, BRK.A, X:BTCUSD)"
    )]
    NotATicker { word: String },
}

/// One word of a command line that names tickers (`backfill`, `plan`): a
/// universe file or one ticker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Universe(PathBuf),
    Ticker(Ticker),
}

impl Selection {
    /// `word` as `backfill` and `plan` read it: a universe when it ends in
    /// `.json` (any case) or names an existing file (`is_file`), anything
    /// else a ticker, checked by the ticker rules.
    pub fn parse(word: &str, is_file: impl Fn(&Path) -> bool) -> Result<Self, UniverseError> {
        let path = Path::new(word);
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json || is_file(path) {
            return Ok(Self::Universe(path.to_owned()));
        }
        Ticker::new(word)
            .map(Self::Ticker)
            .map_err(|_| UniverseError::NotATicker {
                word: word.to_owned(),
            })
    }
}

/// Every ticker that `words` name (tickers, and universe files read), in
/// order, without repeats.
pub fn tickers_of(words: &[String]) -> Result<Vec<Ticker>, UniverseError> {
    let mut tickers: Vec<Ticker> = Vec::new();
    let mut seen = HashSet::new();
    for word in words {
        let found = match Selection::parse(word, Path::is_file)? {
            Selection::Ticker(ticker) => vec![ticker],
            Selection::Universe(path) => Universe::read(&path)?.symbols(),
        };
        for ticker in found {
            if seen.insert(ticker.clone()) {
                tickers.push(ticker);
            }
        }
    }
    Ok(tickers)
}

/// What a file may hold: our format, a bare list, or an object with `tickers`.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyUniverse {
    List(Vec<Entry>),
    Object {
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        version: Option<u32>,
        tickers: Vec<Entry>,
    },
}

/// A ticker entry: a bare symbol or a record.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Symbol(String),
    Record(Box<TickerRecord>),
}

impl Universe {
    /// A new universe of `tickers`, stamped `created_at`.
    pub fn new(
        category: Option<Category>,
        created_at: DateTime<Utc>,
        source: Option<String>,
        filters: Filters,
        tickers: Vec<TickerRecord>,
    ) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            category,
            created_at: Some(created_at.trunc_subsecs(0)),
            source,
            filters,
            count: tickers.len(),
            tickers,
        }
    }

    /// The tickers, validated.
    pub fn symbols(&self) -> Vec<Ticker> {
        // Invariant: `read` and `validate` accepted every symbol.
        self.tickers
            .iter()
            .filter_map(|r| Ticker::new(r.ticker.clone()).ok())
            .collect()
    }

    /// Reads and validates a universe file.
    pub fn read(path: &Path) -> Result<Self, UniverseError> {
        let bytes = std::fs::read(path).map_err(|source| UniverseError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json = |detail: String| UniverseError::Json {
            path: path.to_owned(),
            detail,
        };
        let invalid = |problem: String| UniverseError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| json(e.to_string()))?;
        let universe = if value.get("format").and_then(|f| f.as_str()) == Some(FORMAT) {
            let version = value.get("version").and_then(serde_json::Value::as_u64);
            if version.is_none_or(|v| v > u64::from(VERSION)) {
                return Err(invalid(format!(
                    "format version {} is not supported by this finpipe (reads up to {VERSION}); upgrade finpipe",
                    version.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
                )));
            }
            serde_json::from_value::<Self>(value).map_err(|e| json(e.to_string()))?
        } else {
            let any: AnyUniverse = serde_json::from_value(value).map_err(|_| {
                json("expected a finpipe universe, a JSON array of tickers, or an object with a \"tickers\" array".to_owned())
            })?;
            Self::from_any(any).map_err(invalid)?
        };
        universe.validate().map_err(invalid)?;
        Ok(universe)
    }

    fn from_any(any: AnyUniverse) -> Result<Self, String> {
        let entries = match any {
            AnyUniverse::List(entries) => entries,
            AnyUniverse::Object {
                format, tickers, ..
            } if format.is_none() => tickers,
            AnyUniverse::Object {
                format, version, ..
            } => {
                return Err(format!(
                    "unknown format {:?} (version {version:?}); expected {FORMAT:?}",
                    format.unwrap_or_default()
                ));
            }
        };
        let tickers: Vec<TickerRecord> = entries
            .into_iter()
            .map(|entry| match entry {
                Entry::Symbol(ticker) => TickerRecord {
                    ticker,
                    ..TickerRecord::default()
                },
                Entry::Record(record) => *record,
            })
            .collect();
        Ok(Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            category: None,
            created_at: None,
            source: None,
            filters: Filters::default(),
            count: tickers.len(),
            tickers,
        })
    }

    /// Every ticker valid, none twice, `count` right.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for (index, record) in self.tickers.iter().enumerate() {
            Ticker::new(record.ticker.clone()).map_err(|e| format!("entry {index}: {e}"))?;
            if !seen.insert(record.ticker.as_str()) {
                return Err(format!("ticker {:?} is listed twice", record.ticker));
            }
        }
        if self.count != self.tickers.len() {
            return Err(format!(
                "\"count\" says {} but {} tickers are listed",
                self.count,
                self.tickers.len()
            ));
        }
        Ok(())
    }

    /// `<dir>/<category>_<YYYYMMDD>.json`.
    pub fn default_path(dir: &Path, category: Category, created_at: DateTime<Utc>) -> PathBuf {
        dir.join(format!(
            "{}_{}.json",
            category.name(),
            created_at.format("%Y%m%d")
        ))
    }

    /// Writes the universe atomically (a re-run the same day replaces the file).
    pub fn write(&self, path: &Path) -> Result<(), UniverseError> {
        let write_error = |source| UniverseError::Write {
            path: path.to_owned(),
            source,
        };
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| write_error(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        write_atomic(path, &bytes).map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("u.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let record = TickerRecord {
            ticker: "SPY".into(),
            name: Some("SPDR S&P 500".into()),
            type_code: Some("ETF".into()),
            ..TickerRecord::default()
        };
        let created = "2024-12-01T06:00:00Z".parse().unwrap();
        let universe = Universe::new(
            Some(Category::Etf),
            created,
            None,
            Filters::default(),
            vec![record],
        );
        let path = Universe::default_path(dir.path(), Category::Etf, created);
        assert!(path.ends_with("etf_20241201.json"));
        universe.write(&path).unwrap();
        assert_eq!(Universe::read(&path).unwrap(), universe);
    }

    #[test]
    fn reads_hand_written_lists() {
        let dir = tempfile::tempdir().unwrap();
        let u = Universe::read(&write(dir.path(), r#"["AAPL", {"ticker": "X:BTCUSD"}]"#)).unwrap();
        let symbols: Vec<String> = u.symbols().into_iter().map(String::from).collect();
        assert_eq!(symbols, ["AAPL", "X:BTCUSD"]);
        let u = Universe::read(&write(dir.path(), r#"{"tickers": ["KIMpL", "KIMPL"]}"#)).unwrap();
        assert_eq!(u.count, 2);
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("{\"tickers\": [", "not valid JSON"),
            ("[\"AAPL\", \"AAPL\"]", "listed twice"),
            ("[\"A B\"]", "invalid ticker"),
            (
                "{\"format\":\"finpipe-universe\",\"version\":9,\"count\":0,\"tickers\":[]}",
                "upgrade finpipe",
            ),
            (
                "{\"format\":\"finpipe-universe\",\"version\":1,\"count\":3,\"tickers\":[]}",
                "\"count\" says 3",
            ),
            ("{\"symbols\": []}", "expected a finpipe universe"),
        ];
        for (text, expected) in cases {
            let err = Universe::read(&write(dir.path(), text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let missing = Universe::read(&dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read universe file"), "{missing}");
    }

    #[test]
    fn command_line_words_are_universes_or_tickers() {
        let no_file = |_: &Path| false;
        let ticker = |s: &str| Selection::Ticker(Ticker::new(s).unwrap());
        assert_eq!(Selection::parse("AAPL", no_file).unwrap(), ticker("AAPL"));
        assert_eq!(Selection::parse("BRK.A", no_file).unwrap(), ticker("BRK.A"));
        assert_eq!(
            Selection::parse("X:BTCUSD", no_file).unwrap(),
            ticker("X:BTCUSD")
        );
        // A .json name is a universe even when missing (reading it says so).
        assert_eq!(
            Selection::parse("universe/etf_20241201.JSON", no_file).unwrap(),
            Selection::Universe("universe/etf_20241201.JSON".into())
        );
        // An existing file is a universe whatever its name.
        assert_eq!(
            Selection::parse("my-list", |p: &Path| p == Path::new("my-list")).unwrap(),
            Selection::Universe("my-list".into())
        );
        for bad in ["universe/etf", "..", "A B", ""] {
            let err = Selection::parse(bad, no_file).unwrap_err().to_string();
            assert!(err.contains("neither a universe file"), "{bad}: {err}");
        }
    }

    #[test]
    fn tickers_and_universes_mix_in_order_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(dir.path(), r#"["MSFT", "AAPL", "X:BTCUSD"]"#);
        let words = [
            "AAPL".to_owned(),
            list.display().to_string(),
            "SPY".to_owned(),
            "MSFT".to_owned(),
        ];
        let tickers: Vec<String> = tickers_of(&words)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(tickers, ["AAPL", "MSFT", "X:BTCUSD", "SPY"]);
        let missing = tickers_of(&["nope.json".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read universe file"), "{missing}");
    }
}
