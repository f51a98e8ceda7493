//! `finpipe export`: one timeframe of the library's bars written out, one
//! file per ticker, as CSV, gzip CSV or Parquet, in finpipe's own layout or in
//! the layouts zipline's `csvdir` bundle and qlib's `dump_bin.py` read.
//!
//! A series streams through memory one period file at a time, in time
//! order, into a temporary file beside its target that is renamed into place
//! once complete: a reader sees the previous export or the new one, never a
//! part, and a re-run replaces. Requested tickers that the library lacks, or
//! whose bars all fall outside the range, are reported rather than skipped
//! silently. What to export is decided in `plan`, how a row is spelled in
//! `csv`, and the output files in `sink`.

mod csv;
mod plan;
mod sink;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::fsutil;
use crate::model::{Ticker, Timeframe};
use crate::store::{Store, StoreError};

use plan::{Plan, Series};
use sink::Sink;

/// The file format written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    CsvGz,
    Parquet,
}

impl Format {
    pub const ALL: [Self; 3] = [Self::Csv, Self::CsvGz, Self::Parquet];

    /// The name on the command line, which is also the files' extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::CsvGz => "csv.gz",
            Self::Parquet => "parquet",
        }
    }
}

/// Which directory layout and columns the files have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// `<out>/<TICKER_DIR>/<tf>.<ext>`, Polygon's column names.
    #[default]
    Finpipe,
    /// zipline's csvdir bundle: `<out>/daily|minute/<SYMBOL>.csv`.
    Zipline,
    /// qlib's `dump_bin.py` input: `<out>/<SYMBOL>.csv`.
    Qlib,
}

impl Layout {
    pub const ALL: [Self; 3] = [Self::Finpipe, Self::Zipline, Self::Qlib];

    pub fn name(self) -> &'static str {
        match self {
            Self::Finpipe => "finpipe",
            Self::Zipline => "zipline",
            Self::Qlib => "qlib",
        }
    }
}

/// A name that is not one of the choices.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} {given:?}: use {choices}")]
pub struct UnknownChoice {
    what: &'static str,
    given: String,
    choices: String,
}

fn parse_choice<T: Copy>(
    what: &'static str,
    text: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownChoice> {
    let key = text.trim().to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|c| name(*c) == key)
        .ok_or_else(|| UnknownChoice {
            what,
            given: text.to_owned(),
            choices: all.iter().map(|c| name(*c)).collect::<Vec<_>>().join(", "),
        })
}

impl FromStr for Format {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice("format", s, &Self::ALL, Self::name)
    }
}

impl FromStr for Layout {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice("layout", s, &Self::ALL, Self::name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A time zone name that is not in the IANA database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown time zone {given:?}{hint}: use an IANA name such as America/New_York, \
     Europe/London or UTC"
)]
pub struct UnknownZone {
    given: String,
    hint: String,
}

/// An IANA time zone (`America/New_York`, `UTC`), in any letter case.
pub fn parse_zone(text: &str) -> Result<Tz, UnknownZone> {
    let name = text.trim();
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
    if let Some(found) = names().find(|n| n.eq_ignore_ascii_case(name)) {
        return found.parse().map_err(|_| UnknownZone {
            given: text.to_owned(),
            hint: String::new(),
        });
    }
    let hint = crate::suggest::nearest(name, names())
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    Err(UnknownZone {
        given: text.to_owned(),
        hint,
    })
}

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub timeframe: Timeframe,
    /// In this order, duplicates dropped; empty: every ticker in the library.
    pub tickers: Vec<Ticker>,
    /// First and last trading day (inclusive), in the day zone of each
    /// ticker's market as the store files bars; `None`: unbounded.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub format: Format,
    pub layout: Layout,
    /// The zone CSV timestamps are written in; `None`: each ticker's
    /// market day zone (America/New_York, UTC for forex).
    pub zone: Option<Tz>,
    /// The output directory (created if needed).
    pub out: PathBuf,
}

/// One file written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub ticker: Ticker,
    pub path: PathBuf,
    pub rows: u64,
}

/// Why a ticker got no file.
#[derive(Debug)]
pub enum Reason {
    /// No folder in the library; `hint` is the ticker in capitals when it
    /// was given all in lowercase.
    NotInLibrary { hint: Option<Ticker> },
    /// The ticker has bars of other timeframes only.
    NoTimeframe { stored: Vec<Timeframe> },
    /// Bars of the timeframe exist, none on a day of the range.
    NothingInRange,
    /// A period file could not be read; nothing was written for the ticker.
    Unreadable(StoreError),
}

/// A ticker that got no file, and why.
#[derive(Debug)]
pub struct Reported {
    pub ticker: Ticker,
    pub reason: Reason,
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticker = &self.ticker;
        match &self.reason {
            Reason::NotInLibrary { hint } => {
                write!(f, "{ticker}: not in the library")?;
                if let Some(hint) = hint {
                    write!(f, " (did you mean {hint}? tickers are case-sensitive)")?;
                }
                Ok(())
            }
            Reason::NoTimeframe { stored } => {
                let stored: Vec<String> = stored.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{ticker}: no bars of this timeframe in the library (it has {})",
                    stored.join(", ")
                )
            }
            Reason::NothingInRange => write!(f, "{ticker}: no bars in the range"),
            Reason::Unreadable(e) => write!(f, "{ticker}: nothing written: {e}"),
        }
    }
}

/// What an export did.
#[derive(Debug, Default)]
pub struct ExportSummary {
    /// One per ticker exported, in the order exported.
    pub written: Vec<Written>,
    /// Tickers without a file.
    pub reported: Vec<Reported>,
    /// Rows written, all files together.
    pub rows: u64,
    /// Bars the layout cannot hold and left out: zipline's minute bars are
    /// those of the NYSE regular session only.
    pub left_out: u64,
}

impl ExportSummary {
    /// Whether a file could not be written for a reason other than the
    /// data (an unreadable period file).
    pub fn has_failures(&self) -> bool {
        self.reported
            .iter()
            .any(|r| matches!(r.reason, Reason::Unreadable(_)))
    }
}

/// Why an export could not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--start {start} is after --end {end}")]
    StartAfterEnd { start: NaiveDate, end: NaiveDate },
    #[error(
        "the {layout} layout is CSV files{allowed}, not {format}",
        allowed = if *layout == Layout::Zipline { " (csv or csv.gz)" } else { " (--format csv)" }
    )]
    LayoutFormat { layout: Layout, format: Format },
    #[error(
        "zipline's csvdir bundle holds daily and minute bars only, not {timeframe}: use \
         --timeframe 1d or --timeframe 1m"
    )]
    ZiplineTimeframe { timeframe: Timeframe },
    #[error("--tz does not apply to {what}")]
    ZoneNotApplicable { what: &'static str },
    #[error(
        "--out {} is inside the library {}: choose a folder outside it, so that readers of \
         the library do not pick up the export",
        out.display(),
        library.display()
    )]
    OutInsideLibrary { out: PathBuf, library: PathBuf },
    #[error("cannot list the library: {0}")]
    Library(#[source] StoreError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {detail}", path.display())]
    Parquet { path: PathBuf, detail: String },
    #[error("interrupted; every file written so far is complete, and no partial file is left")]
    Interrupted,
}

impl ExportError {
    /// Whether the command must change (bad input), rather than storage
    /// having failed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::StartAfterEnd { .. }
                | Self::LayoutFormat { .. }
                | Self::ZiplineTimeframe { .. }
                | Self::ZoneNotApplicable { .. }
                | Self::OutInsideLibrary { .. }
        )
    }

    pub(crate) fn write(path: &Path, source: io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks `request` without touching the disk: the errors `export` would
/// give before writing anything.
pub fn check(request: &ExportRequest) -> Result<(), ExportError> {
    Plan::new(request).map(|_| ())
}

/// Exports `request` from `store`, ticker after ticker; `stop` set (by
/// Ctrl-C) ends it after the file in progress is abandoned, with
/// [`ExportError::Interrupted`]. Files are made durable with one sync at
/// the end. A period file that cannot be read costs its ticker's file (it is
/// reported); a write that fails stops the export.
pub fn export(
    store: &Store,
    request: &ExportRequest,
    stop: &AtomicBool,
) -> Result<ExportSummary, ExportError> {
    let plan = Plan::new(request)?;
    plan.check_out_dir(store.root())?;
    let tickers = plan.tickers(store)?;
    fsutil::create_dirs(&request.out, true).map_err(|e| ExportError::write(&request.out, e))?;
    let deferral =
        fsutil::defer_durability(&request.out).map_err(|e| ExportError::write(&request.out, e))?;
    let mut summary = ExportSummary::default();
    for ticker in tickers {
        if stop.load(Ordering::Relaxed) {
            return Err(ExportError::Interrupted);
        }
        let periods = match plan.periods(store, &ticker) {
            Ok(periods) => periods,
            Err(reason) => {
                summary.reported.push(Reported { ticker, reason });
                continue;
            }
        };
        match export_series(store, &plan, &ticker, &periods, stop)? {
            Series::Written {
                path,
                rows,
                left_out,
            } => {
                summary.rows += rows;
                summary.left_out += left_out;
                summary.written.push(Written { ticker, path, rows });
            }
            Series::Empty { left_out } => {
                summary.left_out += left_out;
                summary.reported.push(Reported {
                    ticker,
                    reason: Reason::NothingInRange,
                });
            }
            Series::Unreadable(e) => summary.reported.push(Reported {
                ticker,
                reason: Reason::Unreadable(e),
            }),
        }
    }
    if let Some(deferral) = deferral {
        deferral
            .sync()
            .map_err(|e| ExportError::write(&request.out, e))?;
    }
    Ok(summary)
}

/// One ticker's periods, oldest first, into one file opened at its first
/// row (no rows, no file).
fn export_series(
    store: &Store,
    plan: &Plan<'_>,
    ticker: &Ticker,
    periods: &[String],
    stop: &AtomicBool,
) -> Result<Series, ExportError> {
    let path = plan.output_path(ticker);
    let mut rows = plan.row_format(ticker);
    let mut sink: Option<Sink> = None;
    let (mut written, mut left_out) = (0, 0);
    for period in periods {
        if stop.load(Ordering::Relaxed) {
            return Err(ExportError::Interrupted); // the sink's drop removes its file
        }
        let bars = match store.read_period(ticker, plan.timeframe(), period) {
            Ok(bars) => bars,
            Err(e) => return Ok(Series::Unreadable(e)),
        };
        let bars = plan.in_range(ticker, &bars);
        if bars.is_empty() {
            continue;
        }
        let out = match &mut sink {
            Some(out) => out,
            None => sink.insert(Sink::create(
                &path,
                plan.format(),
                (ticker, plan.timeframe(), store.basis()),
                &rows,
            )?),
        };
        let (kept, dropped) = out.write(bars, &mut rows)?;
        written += kept;
        left_out += dropped;
    }
    match sink {
        Some(out) if written > 0 => {
            out.commit()?;
            Ok(Series::Written {
                path,
                rows: written,
                left_out,
            })
        }
        // Every bar left out by the layout: no file (the sink's drop removes it).
        _ => Ok(Series::Empty { left_out }),
    }
}

#[cfg(test)]
mod tests;
