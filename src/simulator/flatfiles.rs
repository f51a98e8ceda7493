//! Polygon flat files from the simulated market: the daily gzip CSV objects of the
//! `flatfiles` bucket (`<dataset>/<type>/<YYYY>/<MM>/<YYYY-MM-DD>.csv.gz`), written
//! from exactly the bars the REST endpoints serve with `adjusted=false`.
//!
//! Which days have a file follows each dataset's calendar (stocks: NYSE trading days;
//! indices: every weekday, NYSE holidays included; crypto: every day; forex: Sunday to
//! Friday). A file holds every ticker of the dataset's market with bars that day, rows
//! sorted by ticker (byte order) then time, with the real files' header and columns.
//! Files are streamed ticker by ticker into a deterministic gzip member (level 6,
//! mtime 0), so the same market and date always give the same bytes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use flate2::{Compression, GzBuilder};

use crate::calendar::{Calendar, et_ms, zone_midnight_ms};
use crate::simulator::market::{Bar, Market};
use crate::simulator::reference::{AssetClass, TickerInfo};

/// The header of every aggregates file except indices (the real files' order).
pub const AGGS_HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions";

/// The header of the `us_indices` aggregates files: no volume, no transactions.
pub const INDICES_HEADER: &str = "ticker,open,close,high,low,window_start";

/// The gzip level of the written objects.
pub const GZIP_LEVEL: u32 = 6;

/// A flat-file dataset: the first segment of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlatDataset {
    /// Every market stock (CS, ETF and the other stock types; not OTC).
    UsStocksSip,
    GlobalCrypto,
    UsIndices,
    GlobalForex,
}

impl FlatDataset {
    /// Every dataset the simulator writes.
    pub const ALL: [FlatDataset; 4] = [
        FlatDataset::UsStocksSip,
        FlatDataset::GlobalCrypto,
        FlatDataset::UsIndices,
        FlatDataset::GlobalForex,
    ];

    /// The key segment, e.g. `us_stocks_sip`.
    pub fn name(self) -> &'static str {
        match self {
            FlatDataset::UsStocksSip => "us_stocks_sip",
            FlatDataset::GlobalCrypto => "global_crypto",
            FlatDataset::UsIndices => "us_indices",
            FlatDataset::GlobalForex => "global_forex",
        }
    }

    /// The dataset named `name` (a key segment).
    pub fn from_name(name: &str) -> Option<FlatDataset> {
        FlatDataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The days that have a file. Indices have one on every weekday, NYSE holidays
    /// included, even when no index has bars that day (then header only).
    pub fn calendar(self) -> Calendar {
        match self {
            FlatDataset::UsStocksSip => Calendar::Nyse,
            FlatDataset::GlobalCrypto => Calendar::Crypto,
            FlatDataset::UsIndices => Calendar::Weekdays,
            FlatDataset::GlobalForex => Calendar::Forex,
        }
    }

    /// The market whose tickers the files hold; its day zone dates the keys.
    pub fn asset_class(self) -> AssetClass {
        match self {
            FlatDataset::UsStocksSip => AssetClass::Stocks,
            FlatDataset::GlobalCrypto => AssetClass::Crypto,
            FlatDataset::UsIndices => AssetClass::Indices,
            FlatDataset::GlobalForex => AssetClass::Fx,
        }
    }

    /// The CSV header line (without the newline).
    pub fn header(self) -> &'static str {
        match self {
            FlatDataset::UsIndices => INDICES_HEADER,
            _ => AGGS_HEADER,
        }
    }
}

/// A flat-file type: the second segment of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlatKind {
    MinuteAggs,
    DayAggs,
}

impl FlatKind {
    /// Both aggregate types.
    pub const ALL: [FlatKind; 2] = [FlatKind::MinuteAggs, FlatKind::DayAggs];

    /// The key segment, e.g. `minute_aggs_v1`.
    pub fn name(self) -> &'static str {
        match self {
            FlatKind::MinuteAggs => "minute_aggs_v1",
            FlatKind::DayAggs => "day_aggs_v1",
        }
    }

    /// The type named `name` (a key segment).
    pub fn from_name(name: &str) -> Option<FlatKind> {
        FlatKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The object key of one day's file, e.g.
/// `us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz`.
pub fn day_key(dataset: FlatDataset, kind: FlatKind, date: NaiveDate) -> String {
    format!(
        "{}/{}/{:04}/{:02}/{date}.csv.gz",
        dataset.name(),
        kind.name(),
        date.year(),
        date.month()
    )
}

/// The dataset, type and date of a day file's key; `None` for any other key
/// (including a date whose year or month segment disagrees).
pub fn parse_key(key: &str) -> Option<(FlatDataset, FlatKind, NaiveDate)> {
    let mut parts = key.splitn(3, '/');
    let dataset = FlatDataset::from_name(parts.next()?)?;
    let kind = FlatKind::from_name(parts.next()?)?;
    let file = parts.next()?.rsplit('/').next()?;
    let date = NaiveDate::parse_from_str(file.strip_suffix(".csv.gz")?, "%Y-%m-%d").ok()?;
    (day_key(dataset, kind, date) == key).then_some((dataset, kind, date))
}

/// Whether the dataset has a file for `date` (a date in its day zone).
pub fn has_file(dataset: FlatDataset, date: NaiveDate) -> bool {
    dataset.calendar().is_open(date)
}

/// What one day file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayFileStats {
    /// Data rows (the header not counted).
    pub rows: u64,
    /// Tickers with at least one row.
    pub tickers: u64,
}

/// Writes the gzip object of one day file (every ticker of the dataset) to `out`.
/// Writes a file even for a date without one in the calendar (header only, as a
/// closed day has no bars); `has_file` says which dates the bucket holds.
pub fn write_day(
    market: &Market,
    dataset: FlatDataset,
    kind: FlatKind,
    date: NaiveDate,
    out: impl Write,
) -> io::Result<DayFileStats> {
    write_day_gz(market, dataset, kind, date, None, out)
}

/// `write_day`, restricted to the tickers in `only` when given (unknown ones and
/// tickers of other markets are skipped).
pub fn write_day_gz(
    market: &Market,
    dataset: FlatDataset,
    kind: FlatKind,
    date: NaiveDate,
    only: Option<&[&str]>,
    out: impl Write,
) -> io::Result<DayFileStats> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(out, Compression::new(GZIP_LEVEL));
    let stats = write_csv(market, dataset, kind, date, only, &mut gz)?;
    gz.finish()?.flush()?;
    Ok(stats)
}

/// Writes the uncompressed CSV of one day file to `out`, ticker by ticker (at most
/// one ticker's rows are held in memory). Does not flush `out`: a flush of a gzip
/// encoder would add a sync marker to the stream.
pub fn write_csv(
    market: &Market,
    dataset: FlatDataset,
    kind: FlatKind,
    date: NaiveDate,
    only: Option<&[&str]>,
    mut out: impl Write,
) -> io::Result<DayFileStats> {
    let mut stats = DayFileStats::default();
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(dataset.header().as_bytes());
    buf.push(b'\n');
    let day_stamp_ns = day_window_start_ms(dataset, date) * 1_000_000;
    for info in dataset_tickers(market, dataset, only) {
        let rows = match kind {
            FlatKind::MinuteAggs => {
                let bars = market.minute_bars(info, date, false);
                for bar in &bars {
                    push_row(&mut buf, dataset, &info.ticker, bar, bar.t * 1_000_000)?;
                }
                bars.len()
            }
            FlatKind::DayAggs => match market.day_bar(info, date, false) {
                Some(bar) => {
                    push_row(&mut buf, dataset, &info.ticker, &bar, day_stamp_ns)?;
                    1
                }
                None => 0,
            },
        };
        if rows > 0 {
            stats.rows += rows as u64;
            stats.tickers += 1;
        }
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    Ok(stats)
}

/// The tickers of `dataset`'s market in byte order, narrowed to `only` when given.
fn dataset_tickers<'m>(
    market: &'m Market,
    dataset: FlatDataset,
    only: Option<&[&str]>,
) -> Vec<&'m TickerInfo> {
    let reference = market.reference();
    let mut tickers: Vec<&TickerInfo> = match only {
        None => reference.tickers().iter().collect(),
        Some(names) => names.iter().filter_map(|t| reference.find(t)).collect(),
    };
    tickers.retain(|info| info.asset_class == dataset.asset_class());
    tickers.sort_by(|a, b| a.ticker.cmp(&b.ticker));
    tickers.dedup_by(|a, b| a.ticker == b.ticker);
    tickers
}

/// The `window_start` (ms) a day file stamps on `date`'s rows. Real day files are
/// not stamped like REST daily bars: stocks carry 16:00 New York (the official
/// example), indices 06:00Z in the December example, taken as 00:00 America/Chicago;
/// crypto and forex, without an example, carry REST's daily `t` (00:00 of the day zone).
pub fn day_window_start_ms(dataset: FlatDataset, date: NaiveDate) -> i64 {
    match dataset {
        FlatDataset::UsStocksSip => et_ms(date, 16, 0),
        FlatDataset::UsIndices => zone_midnight_ms(chrono_tz::America::Chicago, date),
        FlatDataset::GlobalCrypto | FlatDataset::GlobalForex => {
            zone_midnight_ms(dataset.asset_class().day_zone(), date)
        }
    }
}

/// Appends one CSV row. Numbers use `f64`'s `Display`, the shortest text that parses
/// back to the same value (integral values without a fraction, never an exponent).
fn push_row(
    buf: &mut Vec<u8>,
    dataset: FlatDataset,
    ticker: &str,
    bar: &Bar,
    window_start_ns: i64,
) -> io::Result<()> {
    push_field(buf, ticker);
    if dataset == FlatDataset::UsIndices {
        writeln!(
            buf,
            ",{},{},{},{},{window_start_ns}",
            bar.o, bar.c, bar.h, bar.l
        )
    } else {
        writeln!(
            buf,
            ",{},{},{},{},{},{window_start_ns},{}",
            bar.v.unwrap_or(0.0),
            bar.o,
            bar.c,
            bar.h,
            bar.l,
            bar.n.unwrap_or(0)
        )
    }
}

/// Appends a CSV field, quoted only when it needs it (tickers never do in practice).
fn push_field(buf: &mut Vec<u8>, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(field.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(field.as_bytes());
    }
}

/// Writes the day files of `datasets` for every date from `from` through `to` that has
/// one, at `<root>/<bucket>/<key>` (the layout an s3s-fs server serves), restricted
/// to the tickers in `only` when given. Each file is written beside its target and
/// renamed into place. Returns the written paths in order.
pub fn populate(
    market: &Market,
    root: &Path,
    bucket: &str,
    datasets: &[(FlatDataset, FlatKind)],
    from: NaiveDate,
    to: NaiveDate,
    only: Option<&[&str]>,
) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &(dataset, kind) in datasets {
        for date in dataset.calendar().open_days(from, to) {
            let path = root.join(bucket).join(day_key(dataset, kind, date));
            write_file(market, dataset, kind, date, only, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes one day file at `path` through a temporary sibling.
fn write_file(
    market: &Market,
    dataset: FlatDataset,
    kind: FlatKind,
    date: NaiveDate,
    only: Option<&[&str]>,
    path: &Path,
) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {}", path.display()),
        ));
    };
    fs::create_dir_all(dir)?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = File::create(&tmp)
        .and_then(|file| write_day_gz(market, dataset, kind, date, only, file).map(drop));
    match result.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Best effort: the error being returned matters more than the leftover.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
#[path = "flatfiles_tests.rs"]
mod tests;
