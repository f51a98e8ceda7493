//! What an export writes: the request checked (layout, format, timeframe,
//! zone and range fit together), the tickers and their period files that
//! hold days of the range, the bars of a period inside the range, and the
//! path of each ticker's file.
//!
//! The range is in trading days as the store files bars: a bar's day is its
//! date in its market's day zone (America/New_York; UTC for forex), the day
//! that also names its period file. So only the period files of the range's
//! periods are read, and within them the bars from midnight of the first day
//! to midnight after the last, in that zone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::csv::RowFormat;
use super::{ExportError, ExportRequest, Format, Layout, Reason};
use crate::model::{Bar, Ticker, Timeframe, Timespan, period_of_date};
use crate::store::{Store, StoreError, ticker_dir};

/// What became of one ticker's series.
pub(super) enum Series {
    Written {
        path: PathBuf,
        rows: u64,
        left_out: u64,
    },
    /// No bar in the range (or none the layout holds).
    Empty {
        left_out: u64,
    },
    Unreadable(StoreError),
}

/// A checked request.
pub(super) struct Plan<'r> {
    request: &'r ExportRequest,
    /// The first and last period names (`YYYY-MM` or `YYYY`) of the range.
    first_period: Option<String>,
    last_period: Option<String>,
}

impl<'r> Plan<'r> {
    /// Checks that the request's parts fit together.
    pub(super) fn new(request: &'r ExportRequest) -> Result<Self, ExportError> {
        let tf = request.timeframe;
        if let (Some(start), Some(end)) = (request.start, request.end)
            && start > end
        {
            return Err(ExportError::StartAfterEnd { start, end });
        }
        match (request.layout, request.format) {
            (Layout::Finpipe, _) | (Layout::Zipline, Format::Csv | Format::CsvGz) => {}
            (Layout::Qlib, Format::Csv) => {}
            (layout, format) => return Err(ExportError::LayoutFormat { layout, format }),
        }
        if request.layout == Layout::Zipline && tf != Timeframe::MINUTE && tf != Timeframe::DAY {
            return Err(ExportError::ZiplineTimeframe { timeframe: tf });
        }
        if request.zone.is_some() {
            let refused = if request.format == Format::Parquet {
                Some("Parquet files: their timestamps are instants, stored in UTC")
            } else if request.layout == Layout::Zipline {
                Some("the zipline layout: zipline reads minutes in UTC and days as dates")
            } else if request.layout == Layout::Qlib && tf.fixed_millis().is_none() {
                Some("qlib's daily and longer bars, which are named by their trading day")
            } else {
                None
            };
            if let Some(what) = refused {
                return Err(ExportError::ZoneNotApplicable { what });
            }
        }
        Ok(Self {
            request,
            first_period: request.start.map(|d| period_of_date(tf, d)),
            last_period: request.end.map(|d| period_of_date(tf, d)),
        })
    }

    pub(super) fn timeframe(&self) -> Timeframe {
        self.request.timeframe
    }

    pub(super) fn format(&self) -> Format {
        self.request.format
    }

    /// Refuses an output folder inside the library (`library`): its files
    /// would show up in every reader's glob of the library.
    pub(super) fn check_out_dir(&self, library: &Path) -> Result<(), ExportError> {
        let (Some(out), Some(library)) = (resolved(&self.request.out), resolved(library)) else {
            return Ok(()); // cannot tell: the write itself says what is wrong
        };
        if out.starts_with(&library) {
            return Err(ExportError::OutInsideLibrary {
                out: self.request.out.clone(),
                library,
            });
        }
        Ok(())
    }

    /// The tickers to export: those requested, in their order without
    /// repeats, or every ticker of the library.
    pub(super) fn tickers(&self, store: &Store) -> Result<Vec<Ticker>, ExportError> {
        if self.request.tickers.is_empty() {
            return store.tickers().map_err(ExportError::Library);
        }
        let mut seen = HashSet::new();
        Ok(self
            .request
            .tickers
            .iter()
            .filter(|t| seen.insert(*t))
            .cloned()
            .collect())
    }

    /// The ticker's period files of the timeframe that may hold days of the
    /// range, oldest first; why there are none otherwise.
    pub(super) fn periods(&self, store: &Store, ticker: &Ticker) -> Result<Vec<String>, Reason> {
        let tf = self.timeframe();
        let stored = store.periods(ticker, tf).map_err(Reason::Unreadable)?;
        if stored.is_empty() {
            let timeframes = store.timeframes(ticker).map_err(Reason::Unreadable)?;
            return Err(if timeframes.is_empty() {
                Reason::NotInLibrary {
                    hint: ticker.uppercase_hint(),
                }
            } else {
                Reason::NoTimeframe { stored: timeframes }
            });
        }
        let inside = |p: &String| {
            self.first_period.as_ref().is_none_or(|first| p >= first)
                && self.last_period.as_ref().is_none_or(|last| p <= last)
        };
        let periods: Vec<String> = stored.into_iter().filter(inside).collect();
        if periods.is_empty() {
            return Err(Reason::NothingInRange);
        }
        Ok(periods)
    }

    /// The bars of sorted `bars` whose trading day is in the range.
    pub(super) fn in_range<'b>(&self, ticker: &Ticker, bars: &'b [Bar]) -> &'b [Bar] {
        let class = ticker.asset_class();
        let lo = self
            .request
            .start
            .map_or(i64::MIN, |day| class.midnight_ms(day));
        let hi = self
            .request
            .end
            .and_then(|day| day.succ_opt())
            .map_or(i64::MAX, |day| class.midnight_ms(day));
        let first = bars.partition_point(|b| b.timestamp < lo);
        let last = bars.partition_point(|b| b.timestamp < hi);
        &bars[first..last.max(first)]
    }

    /// Where the ticker's file goes (README, `finpipe export`):
    /// `<out>/<TICKER_DIR>/<tf>.<ext>`, `<out>/daily|minute/<NAME>.<ext>`
    /// or `<out>/<TICKER_DIR>.csv`. Names come from the store's ticker
    /// directory names: portable, reversible and distinct on
    /// case-insensitive file systems.
    pub(super) fn output_path(&self, ticker: &Ticker) -> PathBuf {
        let out = &self.request.out;
        let ext = self.format().name();
        match self.request.layout {
            Layout::Finpipe => out
                .join(ticker_dir(ticker))
                .join(format!("{}.{ext}", self.timeframe())),
            Layout::Zipline => {
                let folder = if self.timeframe().timespan == Timespan::Day {
                    "daily"
                } else {
                    "minute"
                };
                out.join(folder)
                    .join(format!("{}.{ext}", zipline_name(ticker)))
            }
            Layout::Qlib => out.join(format!("{}.{ext}", ticker_dir(ticker))),
        }
    }

    /// How the ticker's rows are spelled (CSV formats).
    pub(super) fn row_format(&self, ticker: &Ticker) -> RowFormat {
        let class = ticker.asset_class();
        let zone = self.request.zone.unwrap_or_else(|| class.day_zone());
        let intraday = self.timeframe().is_intraday();
        match self.request.layout {
            Layout::Finpipe => RowFormat::polygon(zone),
            Layout::Zipline if intraday => RowFormat::zipline_minute(),
            Layout::Zipline => RowFormat::zipline_daily(class),
            Layout::Qlib => RowFormat::qlib(qlib_symbol(ticker), class, zone, intraday),
        }
    }
}

/// A zipline csvdir file name (without extension) for `ticker`: its
/// directory name with each `.` written `_2E` (the directory names' own
/// escape for a dot), because csvdir cuts file names at their first dot to
/// find the symbol. `BRK.A` → `BRK_2EA`.
pub(super) fn zipline_name(ticker: &Ticker) -> String {
    ticker_dir(ticker).replace('.', "_2E")
}

/// The instrument code qlib's `dump_bin.py` gives the file of `ticker`: it
/// lowercases the file name for its features folder and uppercases it in
/// `instruments/all.txt`; the `symbol` column says the same.
pub(super) fn qlib_symbol(ticker: &Ticker) -> String {
    ticker_dir(ticker).to_ascii_uppercase()
}

/// `path` made absolute with its symbolic links resolved, for a path that
/// may not exist yet: the longest existing ancestor is resolved and the
/// rest appended. `None` when that cannot be done (a `..` after a missing
/// folder).
fn resolved(path: &Path) -> Option<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        let probe = if existing.as_os_str().is_empty() {
            Path::new(".")
        } else {
            existing
        };
        if let Ok(found) = probe.canonicalize() {
            return Some(rest.iter().rev().fold(found, |acc, part| acc.join(part)));
        }
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
}
