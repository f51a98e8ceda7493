//! The per-ticker Parquet library: `<root>/<TICKER_DIR>/<timeframe>/<period>.parquet`.
//! Owns the layout, merging new bars into period files (dedup, sort, atomic
//! replace), the adjustment-basis guard, and footer-only queries (watermark,
//! scan). The file format itself lives in `codec`, directory names in `dirname`.
//! Every file goes through `blobs` (a local directory or an S3 prefix); a
//! merge is read-with-version → merge → conditional write, redone when
//! another writer got there first, so concurrent writers never lose bars.

pub mod blobs;
mod codec;
mod dirname;
mod error;
mod migrate;
mod prepared;
mod rows;
pub mod staging;
mod sweep;
mod write;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use arrow_schema::SchemaRef;
use parquet::file::properties::WriterProperties;

use crate::model::{Bar, Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

pub use codec::{
    BarFileWriter, KEY_ADJUSTED, KEY_COVERED, KEY_SCHEMA, KEY_SOURCE, KEY_TICKER, KEY_TIMEFRAME,
    KEY_VERSION, SCHEMA_VERSION, bar_schema,
};
pub use dirname::{ticker_dir, ticker_from_dir};
pub use error::StoreError;
pub use migrate::{DB_FILE, MigrateDb, Migration, default_db_path, migrate_state};
pub use prepared::PreparedWrite;
pub use sweep::TMP_GRACE;

use blobs::{Blobs, Condition, LocalBlobs, S3Blobs, S3Config};
use codec::{FileMeta, Footer};
use prepared::FileLocks;
use rows::normalize;

/// The name of finpipe's state folder inside a library (see
/// [`Store::state_dir`]).
pub const STATE_DIR: &str = ".finpipe";

/// Appended to the name of a quarantined file (`2024-11.parquet.quarantined`).
pub const QUARANTINE_SUFFIX: &str = ".quarantined";

/// How many times one period's merge is tried when other writers keep
/// replacing the file between its read and its conditional write.
pub const MERGE_ATTEMPTS: usize = 8;

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

/// A library of bars of one adjustment basis, in a local directory or under
/// an `s3://bucket/prefix`. `Send + Sync`: share it by reference between
/// writer threads. Writes of one period file are serialized within the
/// process; writers in several processes (or machines) are kept apart by
/// conditional writes: a merge that lost the race is merged again.
pub struct Store {
    root: PathBuf,
    blobs: Arc<dyn Blobs>,
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
    /// An `s3://bucket/prefix` root creates nothing: it is reached with the
    /// settings [`S3Config::from_env`] reads, prepared writes go to
    /// [`blobs::default_scratch`].
    pub fn open(root: &Path, basis: Basis, version: &str) -> Result<Store, StoreError> {
        if blobs::is_remote_root(root) {
            return Self::for_reading(root, basis, version);
        }
        fs::create_dir_all(root).map_err(|e| StoreError::io("create", root, e))?;
        sweep::remove_stale_temporaries(root)?;
        Self::for_reading(root, basis, version)
    }

    /// A library at `root` opened for reading only: nothing is created or
    /// removed (for the monitoring page, which runs beside writers and
    /// must never change the library). Its write methods still work; a
    /// reader does not call them. Fails only for an `s3://` root whose
    /// settings are unusable.
    pub fn for_reading(root: &Path, basis: Basis, version: &str) -> Result<Store, StoreError> {
        let blobs: Arc<dyn Blobs> = if blobs::is_remote_root(root) {
            Arc::new(S3Blobs::new(
                root,
                &S3Config::from_env(),
                &blobs::default_scratch(),
            )?)
        } else {
            Arc::new(LocalBlobs::new(root))
        };
        Ok(Self::with_blobs(blobs, basis, version))
    }

    /// A library whose files `blobs` serves (nothing is created or swept).
    pub fn with_blobs(blobs: Arc<dyn Blobs>, basis: Basis, version: &str) -> Store {
        Store {
            root: blobs.root().to_path_buf(),
            blobs,
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

    /// Whether the library is a local directory (durability by fsync or
    /// `syncfs`), not an object store (a PUT is durable when it returns).
    pub fn is_local(&self) -> bool {
        self.blobs.is_local()
    }

    /// Removes every temporary file below the root, however young. Only for a
    /// runner holding the exclusive run lock: then no other writer is alive.
    /// An object-store library has none (prepared writes wait in the local
    /// scratch directory).
    pub fn remove_all_temporaries(&self) -> Result<usize, StoreError> {
        if !self.is_local() {
            return Ok(0);
        }
        sweep::remove_temporaries(&self.root, Duration::ZERO)
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

    /// Where flat-file jobs stage their days (`<root>/.finpipe/staging`;
    /// for an object-store library, `staging/<bucket_prefix>` in its local
    /// scratch directory, so that libraries sharing a scratch directory
    /// never share staged days).
    pub fn staging_dir(&self) -> PathBuf {
        let Some(scratch) = self.blobs.scratch() else {
            return self.state_dir().join("staging");
        };
        let text = self.root.to_string_lossy();
        let name: String = text
            .strip_prefix("s3://")
            .unwrap_or(&text)
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' => c,
                _ => '_',
            })
            .collect();
        scratch.join("staging").join(name)
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
        while self.blobs.exists(&target)? {
            n += 1;
            target = named(n);
        }
        self.blobs.rename(path, &target)?;
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
            for entry in self.blobs.list(&next)? {
                let path = next.join(&entry.name);
                if entry.is_dir {
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
        let Some(blob) = self.blobs.read(&path)? else {
            return Ok(Vec::new());
        };
        let (_, bars) = codec::decode_file(blob.bytes, &path, |footer| {
            check_identity(footer, &path, ticker, tf)?;
            self.check_basis(footer, &path)
        })?;
        Ok(bars)
    }

    /// The periods stored for a ticker and timeframe, sorted (oldest first).
    pub fn periods(&self, ticker: &Ticker, tf: Timeframe) -> Result<Vec<String>, StoreError> {
        let dir = self.timeframe_dir(ticker, tf);
        let mut periods: Vec<String> = self
            .list_dir(&dir)?
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
        let mut names = self.list_dir(&self.root)?;
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
        let mut timeframes: Vec<Timeframe> = self
            .list_dir(&self.root.join(ticker_dir(ticker)))?
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
            let Some(footer) = codec::read_footer(&*self.blobs, &path)? else {
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
        let footer = codec::read_footer(&*self.blobs, &path)?.ok_or_else(|| {
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
    ) -> Result<Stored, StoreError> {
        Ok(self.read_versioned(path, ticker, tf)?.0)
    }

    /// [`Store::read_checked`], with the condition under which a write
    /// replaces exactly what was read: [`Condition::Absent`] when there is
    /// no file, else [`Condition::Matches`] its version.
    fn read_versioned(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
    ) -> Result<(Stored, Condition), StoreError> {
        let Some(blob) = self.blobs.read(path)? else {
            return Ok((None, Condition::Absent));
        };
        let (footer, bars) = codec::decode_file(blob.bytes, path, |footer| {
            check_identity(footer, path, ticker, tf)?;
            self.check_basis(footer, path)
        })?;
        // finpipe writes sorted unique rows; anything else is put in order here.
        let bars = if bars.is_sorted_by(|a, b| a.timestamp < b.timestamp) {
            bars
        } else {
            normalize(bars)
        };
        Ok((Some((footer, bars)), Condition::Matches(blob.version)))
    }

    /// Names of the entries of `dir`; empty when it does not exist.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>, StoreError> {
        Ok(self.blobs.list(dir)?.into_iter().map(|e| e.name).collect())
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

/// A period file as read: its footer and its bars (`None`: no file).
type Stored = Option<(Footer, Vec<Bar>)>;

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

#[cfg(test)]
mod tests;
