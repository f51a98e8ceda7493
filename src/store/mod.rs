//! The per-ticker Parquet library: `<root>/<TICKER_DIR>/<timeframe>/<period>.parquet`.
//! Owns the layout, merging new bars into period files (dedup, sort, atomic
//! replace), the adjustment-basis guard, and footer-only queries (watermark,
//! scan). The file format itself lives in `codec`, directory names in `dirname`.

mod codec;
mod dirname;
mod error;
mod migrate;
mod prepared;
mod rows;
pub mod staging;
mod sweep;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

use arrow_schema::SchemaRef;
use parquet::file::properties::WriterProperties;

use crate::fsutil;
use crate::model::{Bar, Basis, Ticker, Timeframe, period_of};
use crate::ranges::{DateRange, union};

pub use codec::{
    BarFileWriter, KEY_ADJUSTED, KEY_COVERED, KEY_SCHEMA, KEY_SOURCE, KEY_TICKER, KEY_TIMEFRAME,
    KEY_VERSION, SCHEMA_VERSION, bar_schema,
};
pub use dirname::{ticker_dir, ticker_from_dir};
pub use error::StoreError;
pub use migrate::{DB_FILE, MigrateDb, Migration, default_db_path, migrate_state};
pub use prepared::PreparedWrite;
pub use sweep::TMP_GRACE;

use codec::{FileMeta, Footer};
use prepared::FileLocks;
use rows::{count_new, group_by_period, merge_sorted, normalize, period_bounds, same_bars};

/// The name of finpipe's state folder inside a library (see
/// [`Store::state_dir`]).
pub const STATE_DIR: &str = ".finpipe";

/// Appended to the name of a quarantined file (`2024-11.parquet.quarantined`).
pub const QUARANTINE_SUFFIX: &str = ".quarantined";

/// Who wrote bars into a file; recorded in `finpipe.source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Rest,
    FlatFiles,
    Derived,
    /// Built from the `trades_v1` day files (`--from-trades`, second and
    /// activity bars).
    Trades,
}

impl Source {
    /// The name in `finpipe.source`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::FlatFiles => "flatfiles",
            Self::Derived => "derived",
            Self::Trades => "trades",
        }
    }
}

/// What a write changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Period files written or removed (a file whose content and sources
    /// would not change is left as it is and not counted).
    pub files: usize,
    /// Rows now stored in the periods the write touched.
    pub rows_total: usize,
    /// Timestamps that were not stored before.
    pub rows_new: usize,
}

impl WriteSummary {
    fn add(&mut self, other: Self) {
        self.files += other.files;
        self.rows_total += other.rows_total;
        self.rows_new += other.rows_new;
    }
}

/// One period file, described from its footer alone.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSummary {
    pub ticker: Ticker,
    pub timeframe: Timeframe,
    pub period: String,
    pub path: PathBuf,
    pub rows: usize,
    /// First and last timestamp (UTC ms), from the column statistics.
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub basis: Basis,
    /// `finpipe.source`, e.g. `flatfiles+rest`.
    pub source: String,
    /// `finpipe.covered`: the days the series was known complete when the
    /// file was written (empty for files written before finpipe kept it).
    pub covered: Vec<DateRange>,
}

/// A library of bars of one adjustment basis. `Send + Sync`: share it by
/// reference between writer threads. Writes of one period file are
/// serialized within the process; several processes writing the same ticker
/// at once are not coordinated here.
pub struct Store {
    root: PathBuf,
    basis: Basis,
    version: String,
    schema: SchemaRef,
    props: WriterProperties,
    /// For files under [`codec::SMALL_FILE_ROWS`] rows: uncompressed.
    small_props: WriterProperties,
    locks: Arc<FileLocks>,
}

/// A merge written to temporary files by [`Store::prepare_merge`], shown by
/// committing its writes.
#[derive(Debug, Default)]
pub struct PreparedMerge {
    /// One per period file that changes; commit each to show it.
    pub writes: Vec<PreparedWrite>,
    /// What the merge changes once committed.
    pub summary: WriteSummary,
}

impl Store {
    /// Opens (creates) a library rooted at `root` holding `basis` bars, and
    /// removes temporary files left below `root` by crashed writers (those
    /// untouched for [`TMP_GRACE`], so another runner's write in flight is
    /// spared). `version` goes into the metadata of every file written.
    pub fn open(root: &Path, basis: Basis, version: &str) -> Result<Store, StoreError> {
        fs::create_dir_all(root).map_err(|e| StoreError::io("create", root, e))?;
        sweep::remove_stale_temporaries(root)?;
        Ok(Self::for_reading(root, basis, version))
    }

    /// A library at `root` opened for reading only: nothing is created or
    /// removed (for the monitoring page, which runs beside writers and
    /// must never change the library). Its write methods still work; a
    /// reader does not call them.
    pub fn for_reading(root: &Path, basis: Basis, version: &str) -> Store {
        Store {
            root: root.to_path_buf(),
            basis,
            version: version.to_owned(),
            schema: bar_schema(),
            props: codec::writer_properties(false),
            small_props: codec::writer_properties(true),
            locks: FileLocks::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes every temporary file below the root, however young. Only for a
    /// runner holding the exclusive run lock: then no other writer is alive.
    pub fn remove_all_temporaries(&self) -> Result<usize, StoreError> {
        sweep::remove_temporaries(&self.root, std::time::Duration::ZERO)
    }

    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// finpipe's own state inside the library (`<root>/.finpipe`): the job
    /// table by default, its lock, staging and quarantine. A dot folder, so
    /// the root stays a clean Parquet dataset for pandas, polars, pyarrow and
    /// DuckDB, which skip it.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// Where flat-file jobs stage their days (`<root>/.finpipe/staging`).
    pub fn staging_dir(&self) -> PathBuf {
        self.state_dir().join("staging")
    }

    /// Where unreadable files are moved (`<root>/.finpipe/quarantine`).
    pub fn quarantine_dir(&self) -> PathBuf {
        self.state_dir().join("quarantine")
    }

    /// Moves a file of the library that cannot be read into the quarantine
    /// folder, under its path relative to the root with
    /// [`QUARANTINE_SUFFIX`] appended (never deleted: the user may want it),
    /// so the period is fetched again; returns where it went. A file already
    /// quarantined under that name is kept: the newer one gets a numbered
    /// name beside it.
    pub fn quarantine(&self, path: &Path) -> Result<PathBuf, StoreError> {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        // Not `.parquet`: a reader's `data/**/*.parquet` must not find it.
        let named = |n: usize| {
            let mut name = relative.file_name().unwrap_or_default().to_os_string();
            if n > 0 {
                name.push(format!(".{n}"));
            }
            name.push(QUARANTINE_SUFFIX);
            self.quarantine_dir().join(relative).with_file_name(name)
        };
        let mut n = 0;
        let mut target = named(n);
        while target.exists() {
            n += 1;
            target = named(n);
        }
        fsutil::create_parent(&target).map_err(|e| StoreError::io("create", &target, e))?;
        fs::rename(path, &target).map_err(|e| StoreError::io("quarantine", path, e))?;
        Ok(target)
    }

    /// The series and period a path of this library holds
    /// (`<root>/<TICKER_DIR>/<tf>/<period>.parquet`), if it is one.
    pub fn locate(&self, path: &Path) -> Option<(Ticker, Timeframe, String)> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let mut parts = relative.iter().map(|p| p.to_str());
        let (Some(Some(dir)), Some(Some(tf)), Some(Some(file)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let ticker = ticker_from_dir(dir)?;
        let tf = canonical_timeframe(tf)?;
        let period = period_of_file_name(file, tf)?;
        Some((ticker, tf, period))
    }

    /// The files in quarantine, relative to it, sorted.
    pub fn quarantined(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.quarantine_dir();
        let mut out = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(next) = stack.pop() {
            let entries = match fs::read_dir(&next) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("list", &next, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io("list", &next, e))?;
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if let Ok(relative) = path.strip_prefix(&dir) {
                    out.push(relative.to_path_buf());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The directory of one ticker's files of one timeframe.
    pub fn timeframe_dir(&self, ticker: &Ticker, tf: Timeframe) -> PathBuf {
        self.root.join(ticker_dir(ticker)).join(tf.to_string())
    }

    /// Where the bars of `period` (`YYYY-MM` or `YYYY`) are stored.
    pub fn period_path(&self, ticker: &Ticker, tf: Timeframe, period: &str) -> PathBuf {
        self.timeframe_dir(ticker, tf)
            .join(format!("{period}.parquet"))
    }

    /// Merges `bars` (any order, any periods) into the library. Each period
    /// file is read, checked to hold this library's basis, merged (a new bar
    /// replaces a stored bar of the same timestamp; among new bars of one
    /// timestamp the last wins), sorted and replaced atomically. Periods are
    /// written oldest first; on an error, the periods before it are written
    /// and the failing one is untouched. The cost of a write grows with the
    /// file, so merging many days of a period at once is much cheaper than
    /// one call per day. Bars given by value are not copied when they all
    /// belong to one period.
    pub fn merge<'b>(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: impl Into<Cow<'b, [Bar]>>,
        source: Source,
    ) -> Result<WriteSummary, StoreError> {
        self.merge_covered(ticker, tf, bars, source, None)
    }

    /// [`Store::merge`], recording in each written file that the series is
    /// complete over `covered` (added to what the file already records; see
    /// [`KEY_COVERED`]). Give only days fetched to completion, as they will
    /// be when the job table records them.
    pub fn merge_covered<'b>(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: impl Into<Cow<'b, [Bar]>>,
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        let mut summary = WriteSummary::default();
        for (period, group) in group_by_period(ticker.asset_class(), tf, bars.into()) {
            let path = self.period_path(ticker, tf, &period);
            let _guard = self.lock(&path);
            let (merged, meta) = self.merge_period(&path, ticker, tf, group, source, covered)?;
            if let Some((sources, covered)) = meta {
                self.write(&path, ticker, tf, &sources, &covered, &merged.bars)?;
                summary.files += 1;
            }
            summary.add(WriteSummary {
                files: 0,
                rows_total: merged.bars.len(),
                rows_new: merged.new,
            });
        }
        Ok(summary)
    }

    /// Like [`Store::merge`], but each changed period file is written to a
    /// temporary name and only renamed into place by
    /// [`PreparedWrite::commit`]; until then other writers of this store wait
    /// for the file, so the merge stays right. `Ok(None)` when another
    /// prepared write holds one of the files (merge later, once yours are
    /// committed: waiting here could deadlock). Dropping the result discards
    /// the writes.
    pub fn prepare_merge(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<Option<PreparedMerge>, StoreError> {
        let mut prepared = PreparedMerge::default();
        for (period, group) in group_by_period(ticker.asset_class(), tf, Cow::Borrowed(bars)) {
            let path = self.period_path(ticker, tf, &period);
            let _guard = self.locks.stripe(&path);
            if self.locks.is_reserved(&path) {
                return Ok(None);
            }
            let (merged, meta) = self.merge_period(&path, ticker, tf, group, source, covered)?;
            if let Some((sources, covered)) = meta {
                let bytes = self.encode(&path, ticker, tf, &sources, &covered, &merged.bars)?;
                let temp = fsutil::write_temp(&path, &bytes)
                    .map_err(|e| StoreError::io("write", &path, e))?;
                prepared
                    .writes
                    .push(PreparedWrite::reserve(&self.locks, path, temp));
                prepared.summary.files += 1;
            }
            prepared.summary.add(WriteSummary {
                files: 0,
                rows_total: merged.bars.len(),
                rows_new: merged.new,
            });
        }
        Ok(Some(prepared))
    }

    /// `group` (bars of one period) merged with the file at `path`, and the
    /// sources and covered days to record if the file must be written
    /// (`None`: the file would not change). Call under the file's lock.
    fn merge_period(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        group: Vec<Bar>,
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<(rows::Merged, Option<FileMetaOwned>), StoreError> {
        let (stored_footer, stored_bars) = match self.read_checked(path, ticker, tf)? {
            Some((footer, bars)) => (Some(footer), bars),
            None => (None, Vec::new()),
        };
        let merged = merge_sorted(&stored_bars, normalize(group));
        let sources = sources_with(stored_footer.as_ref(), source);
        let stored_covered = stored_footer
            .as_ref()
            .map(|f| f.covered.clone())
            .unwrap_or_default();
        let covered = covered_with(&stored_covered, covered);
        let unchanged = !merged.changed
            && stored_footer
                .as_ref()
                .is_some_and(|f| f.sources() == sources && f.covered == covered);
        Ok((merged, (!unchanged).then_some((sources, covered))))
    }

    /// Replaces one period file's whole content with `bars` (any order; the
    /// last of equal timestamps wins), written by `source` alone. Every bar
    /// must belong to `period`. An empty `bars` removes the file.
    pub fn replace_period(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
        bars: &[Bar],
        source: Source,
    ) -> Result<WriteSummary, StoreError> {
        self.replace_period_covered(ticker, tf, period, bars, source, None)
    }

    /// [`Store::replace_period`], recording `covered` in the file as
    /// [`Store::merge_covered`] does.
    pub fn replace_period_covered(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
        bars: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        let path = self.period_path(ticker, tf, period);
        let class = ticker.asset_class();
        if let Some(first) = bars.first() {
            let (lo, hi) = period_bounds(class, tf, first.timestamp);
            let bad = if period_of(class, tf, first.timestamp) == period {
                bars.iter().find(|b| !(lo..hi).contains(&b.timestamp))
            } else {
                Some(first)
            };
            if let Some(bad) = bad {
                return Err(StoreError::OutOfPeriod {
                    path,
                    period: period.to_owned(),
                    timestamp: bad.timestamp,
                });
            }
        }
        let _guard = self.lock(&path);
        let (old_footer, old_bars) = match self.read_checked(&path, ticker, tf)? {
            Some((footer, bars)) => (Some(footer), bars),
            None => (None, Vec::new()),
        };
        let bars = normalize(bars.to_vec());
        let rows_new = count_new(&old_bars, &bars);
        if bars.is_empty() {
            if old_footer.is_none() {
                return Ok(WriteSummary::default());
            }
            remove_file(&path)?;
            return Ok(WriteSummary {
                files: 1,
                rows_total: 0,
                rows_new: 0,
            });
        }
        let sources = BTreeSet::from([source.name().to_owned()]);
        let stored_covered = old_footer
            .as_ref()
            .map(|f| f.covered.clone())
            .unwrap_or_default();
        let covered = covered_with(&stored_covered, covered);
        let unchanged = old_footer.is_some_and(|f| f.sources() == sources && f.covered == covered)
            && same_bars(&old_bars, &bars);
        if !unchanged {
            self.write(&path, ticker, tf, &sources, &covered, &bars)?;
        }
        Ok(WriteSummary {
            files: usize::from(!unchanged),
            rows_total: bars.len(),
            rows_new,
        })
    }

    /// The bars of one period file, sorted by timestamp; empty when there is
    /// no file. A file of the other basis is refused.
    pub fn read_period(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
    ) -> Result<Vec<Bar>, StoreError> {
        let path = self.period_path(ticker, tf, period);
        Ok(self
            .read_checked(&path, ticker, tf)?
            .map(|(_, bars)| bars)
            .unwrap_or_default())
    }

    /// The bars of one period file in the order they are stored (not put in
    /// order, duplicates kept), for `verify`. Identity and basis are checked.
    pub fn read_as_stored(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
    ) -> Result<Vec<Bar>, StoreError> {
        let path = self.period_path(ticker, tf, period);
        let read = codec::read_file(&path, |footer| {
            check_identity(footer, &path, ticker, tf)?;
            self.check_basis(footer, &path)
        })?;
        Ok(read.map(|(_, bars)| bars).unwrap_or_default())
    }

    /// The periods stored for a ticker and timeframe, sorted (oldest first).
    pub fn periods(&self, ticker: &Ticker, tf: Timeframe) -> Result<Vec<String>, StoreError> {
        let dir = self.timeframe_dir(ticker, tf);
        let mut periods: Vec<String> = list_dir(&dir)?
            .into_iter()
            .filter_map(|name| period_of_file_name(&name, tf))
            .collect();
        periods.sort();
        Ok(periods)
    }

    /// The tickers with a folder in the library (from one directory
    /// listing; folders that are not a ticker's are skipped).
    pub fn tickers(&self) -> Result<Vec<Ticker>, StoreError> {
        Ok(self.ticker_dirs()?.into_iter().map(|(t, _)| t).collect())
    }

    /// Each ticker folder of the root with its ticker, sorted by folder
    /// name. `.finpipe` and other dot folders hold no ticker.
    fn ticker_dirs(&self) -> Result<Vec<(Ticker, PathBuf)>, StoreError> {
        let mut names = list_dir(&self.root)?;
        names.sort();
        Ok(names
            .into_iter()
            .filter(|name| !name.starts_with('.'))
            .filter_map(|name| ticker_from_dir(&name).map(|t| (t, self.root.join(name))))
            .collect())
    }

    /// The timeframes with a folder for `ticker`, sorted; only folders in
    /// the spelling finpipe writes (`1m`, not `1min`).
    pub fn timeframes(&self, ticker: &Ticker) -> Result<Vec<Timeframe>, StoreError> {
        let mut timeframes: Vec<Timeframe> = list_dir(&self.root.join(ticker_dir(ticker)))?
            .iter()
            .filter_map(|name| canonical_timeframe(name))
            .collect();
        timeframes.sort();
        Ok(timeframes)
    }

    /// The last stored timestamp (UTC ms), from the footer statistics of the
    /// newest non-empty period file; no data page is read. A newest file of
    /// the other basis is refused, as a merge into it would be.
    pub fn watermark(&self, ticker: &Ticker, tf: Timeframe) -> Result<Option<i64>, StoreError> {
        for period in self.periods(ticker, tf)?.iter().rev() {
            let path = self.period_path(ticker, tf, period);
            let Some(footer) = codec::read_footer(&path)? else {
                continue; // removed since listing
            };
            check_identity(&footer, &path, ticker, tf)?;
            self.check_basis(&footer, &path)?;
            if footer.rows == 0 {
                continue;
            }
            return match footer.last {
                Some(last) => Ok(Some(last)),
                None => Err(StoreError::corrupt(&path, "no timestamp statistics")),
            };
        }
        Ok(None)
    }

    /// One summary per period file, from footers only, ordered by ticker
    /// directory, timeframe and period; `ticker` limits the scan to one
    /// ticker. Unknown files and folders are skipped; the first file that
    /// cannot be read fails the scan (see [`Store::scan_all`] to get them all).
    pub fn scan(&self, ticker: Option<&Ticker>) -> Result<Vec<FileSummary>, StoreError> {
        self.scan_all(ticker)?.into_iter().collect()
    }

    /// Like [`Store::scan`], but a file that cannot be read is one `Err`
    /// entry of the list instead of failing the scan (for `verify`). Only
    /// failing to list a directory fails the whole scan.
    pub fn scan_all(
        &self,
        ticker: Option<&Ticker>,
    ) -> Result<Vec<Result<FileSummary, StoreError>>, StoreError> {
        let tickers: Vec<Ticker> = match ticker {
            Some(t) => vec![t.clone()],
            None => self.tickers()?,
        };
        let mut out = Vec::new();
        for ticker in tickers {
            for tf in self.timeframes(&ticker)? {
                for period in self.periods(&ticker, tf)? {
                    out.push(self.summarize(&ticker, tf, period));
                }
            }
        }
        Ok(out)
    }

    fn summarize(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: String,
    ) -> Result<FileSummary, StoreError> {
        let path = self.period_path(ticker, tf, &period);
        let footer = codec::read_footer(&path)?.ok_or_else(|| {
            StoreError::io("read", &path, io::Error::from(io::ErrorKind::NotFound))
        })?;
        check_identity(&footer, &path, ticker, tf)?;
        Ok(FileSummary {
            ticker: ticker.clone(),
            timeframe: tf,
            period,
            path,
            rows: footer.rows,
            first: footer.first,
            last: footer.last,
            basis: footer.basis,
            source: footer.source,
            covered: footer.covered,
        })
    }

    /// Reads a period file, refusing one of another basis, ticker or timeframe.
    fn read_checked(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
    ) -> Result<Option<(Footer, Vec<Bar>)>, StoreError> {
        let read = codec::read_file(path, |footer| {
            check_identity(footer, path, ticker, tf)?;
            self.check_basis(footer, path)
        })?;
        // finpipe writes sorted unique rows; anything else is put in order here.
        Ok(read.map(|(footer, bars)| {
            if bars.is_sorted_by(|a, b| a.timestamp < b.timestamp) {
                (footer, bars)
            } else {
                (footer, normalize(bars))
            }
        }))
    }

    /// Refuses a file of the other adjustment basis.
    fn check_basis(&self, footer: &Footer, path: &Path) -> Result<(), StoreError> {
        if footer.basis == self.basis {
            return Ok(());
        }
        Err(StoreError::BasisMismatch {
            path: path.to_path_buf(),
            stored: footer.basis,
            wanted: self.basis,
        })
    }

    /// Encodes `bars` and replaces the file at `path` atomically.
    fn write(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        sources: &BTreeSet<String>,
        covered: &[DateRange],
        bars: &[Bar],
    ) -> Result<(), StoreError> {
        let bytes = self.encode(path, ticker, tf, sources, covered, bars)?;
        fsutil::write_atomic(path, &bytes).map_err(|e| StoreError::io("write", path, e))
    }

    /// `bars` as the bytes of the Parquet file at `path`.
    fn encode(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        sources: &BTreeSet<String>,
        covered: &[DateRange],
        bars: &[Bar],
    ) -> Result<Vec<u8>, StoreError> {
        let meta = FileMeta {
            ticker,
            timeframe: tf,
            basis: self.basis,
            sources,
            version: &self.version,
            covered,
        };
        let props = if bars.len() < codec::SMALL_FILE_ROWS {
            &self.small_props
        } else {
            &self.props
        };
        codec::encode(&self.schema, props, &meta, bars).map_err(|e| StoreError::Parquet {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// The lock serializing writers of the file at `path` in this process;
    /// waits while a prepared write holds the file.
    fn lock(&self, path: &Path) -> MutexGuard<'_, ()> {
        self.locks.lock(path)
    }
}

/// A footer must name the ticker and timeframe of the place it is stored.
fn check_identity(
    footer: &Footer,
    path: &Path,
    ticker: &Ticker,
    tf: Timeframe,
) -> Result<(), StoreError> {
    if footer.ticker != ticker.as_str() || footer.timeframe != tf.to_string() {
        return Err(StoreError::corrupt(
            path,
            format!(
                "it holds {} {} bars, not {ticker} {tf}",
                footer.ticker, footer.timeframe
            ),
        ));
    }
    Ok(())
}

/// The sources and covered days a file is written with.
type FileMetaOwned = (BTreeSet<String>, Vec<DateRange>);

/// The covered days a file recorded plus `covered`, merged.
fn covered_with(stored: &[DateRange], covered: Option<DateRange>) -> Vec<DateRange> {
    match covered {
        Some(range) => union(stored.iter().copied().chain([range])),
        None => stored.to_vec(),
    }
}

/// The stored sources plus `source`.
fn sources_with(footer: Option<&Footer>, source: Source) -> BTreeSet<String> {
    let mut sources = footer.map(Footer::sources).unwrap_or_default();
    sources.insert(source.name().to_owned());
    sources
}

/// The period named by a file name such as `2024-03.parquet` (`YYYY-MM` for
/// intraday timeframes, `YYYY` otherwise); `None` for any other name
/// (temporaries, other files).
fn period_of_file_name(name: &str, tf: Timeframe) -> Option<String> {
    let stem = name.strip_suffix(".parquet")?;
    let digits = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit());
    let valid = if tf.is_intraday() {
        stem.split_once('-').is_some_and(|(y, m)| {
            digits(y) && m.len() == 2 && matches!(m.parse::<u32>(), Ok(1..=12))
        })
    } else {
        digits(stem)
    };
    valid.then(|| stem.to_owned())
}

/// A timeframe directory name, only in the spelling finpipe writes (`1m`, not `1min`).
fn canonical_timeframe(name: &str) -> Option<Timeframe> {
    name.parse::<Timeframe>()
        .ok()
        .filter(|tf| tf.to_string() == name)
}

/// Names of the entries of `dir`; empty when it does not exist.
fn list_dir(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // Nothing stored yet, or a stray file where a folder would be (skipped;
        // a write there fails and says so).
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
