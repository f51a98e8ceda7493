//! What the page reads, and how: the job table through one connection kept
//! open while its file stays the same (reopened when the file is replaced,
//! never opened while it does not exist, so the page never creates it), and
//! the library through directory listings, and footers only for a series
//! the job table has no coverage of. Every call blocks: the handlers run
//! them on tokio's blocking threads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::jobs::{ErrorClass, JobError, JobTable};
use crate::model::{Ticker, Timeframe};
use crate::store::blobs::{self, S3Blobs, S3Config};
use crate::store::{Store, StoreError};

use super::UiSource;
use super::redact::redact;

/// Why the job table cannot be read now: shown on the page, answered as a
/// 503 by the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Unavailable(pub(super) String);

/// The job table and the library, read for the page.
pub(super) struct Source {
    pub(super) settings: UiSource,
    table: Mutex<Option<OpenTable>>,
    store: Mutex<Option<Arc<Store>>>,
}

/// An open job table and the identity of the file it was opened on.
struct OpenTable {
    table: JobTable,
    identity: Option<FileId>,
}

/// A file's identity (device and inode on Unix): a job table deleted and
/// created again is a new file, whose contents the old connection would
/// not see.
type FileId = (u64, u64);

fn file_id(path: &Path) -> std::io::Result<Option<FileId>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Some((meta.dev(), meta.ino())))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

/// The library's series on disk: timeframe → ticker → stored periods.
pub(super) type Listing = BTreeMap<Timeframe, BTreeMap<Ticker, BTreeSet<String>>>;

impl Source {
    pub(super) fn new(settings: UiSource) -> Self {
        Self {
            settings,
            table: Mutex::new(None),
            store: Mutex::new(None),
        }
    }

    /// Runs `read` on the job table. The connection is opened on first use
    /// (only if the file exists) and dropped after any error, so the next
    /// call starts afresh.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&JobTable) -> Result<T, JobError>,
    ) -> Result<T, Unavailable> {
        let mut slot = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        // A server is connected to as it is; a file only once it exists.
        let Some(db) = self.settings.db.sqlite_path() else {
            return self.read_open(&mut slot, None, read);
        };
        let identity = match file_id(db) {
            Ok(id) => id,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *slot = None;
                return Err(Unavailable(format!(
                    "there is no job table at {} yet: nothing has been planned in this library \
                     (finpipe backfill or finpipe plan creates it). The page shows it as soon \
                     as it exists.",
                    db.display()
                )));
            }
            Err(e) => {
                *slot = None;
                return Err(Unavailable(self.redacted(&format!(
                    "cannot read the job table {}: {e}",
                    db.display()
                ))));
            }
        };
        if slot.as_ref().is_some_and(|open| open.identity != identity) {
            *slot = None; // replaced since it was opened
        }
        self.read_open(&mut slot, identity, read)
    }

    /// Runs `read` on the open job table, opening it first if needed; an
    /// error drops the connection.
    fn read_open<T>(
        &self,
        slot: &mut Option<OpenTable>,
        identity: Option<FileId>,
        read: impl FnOnce(&JobTable) -> Result<T, JobError>,
    ) -> Result<T, Unavailable> {
        if slot.is_none() {
            let table = JobTable::open_at(&self.settings.db).map_err(|e| self.unavailable(&e))?;
            *slot = Some(OpenTable { table, identity });
        }
        let Some(open) = slot.as_ref() else {
            return Err(Unavailable("the job table is not open".into()));
        };
        match read(&open.table) {
            Ok(value) => Ok(value),
            Err(e) => {
                *slot = None;
                Err(self.unavailable(&e))
            }
        }
    }

    /// The message for a job table that cannot be read.
    fn unavailable(&self, error: &JobError) -> Unavailable {
        let db = &self.settings.db;
        let message = match error.class() {
            ErrorClass::Busy => format!(
                "the job table {db} is locked by another process (still busy after 10 s); \
                 the page tries again: {error}"
            ),
            ErrorClass::NewerSchema => error.to_string(),
            ErrorClass::Corrupt => {
                format!("the job table {db} cannot be read, it looks damaged: {error}")
            }
            _ => format!("cannot read the job table {db}: {error}"),
        };
        Unavailable(self.redacted(&message))
    }

    /// `text` with every secret masked (see `redact`).
    pub(super) fn redacted(&self, text: &str) -> String {
        redact(text, &self.settings.secrets)
    }

    /// The series of the library, from the store's directory listings:
    /// every ticker folder, its timeframe folders and their period files.
    pub(super) fn listing(&self) -> Result<Listing, String> {
        let mut out = Listing::new();
        let Some(store) = self.store()? else {
            return Ok(out); // no library yet
        };
        let listed = |e: StoreError| self.redacted(&e.to_string());
        for ticker in store.tickers().map_err(listed)? {
            for tf in store.timeframes(&ticker).map_err(listed)? {
                let periods: BTreeSet<String> = store
                    .periods(&ticker, tf)
                    .map_err(listed)?
                    .into_iter()
                    .collect();
                if !periods.is_empty() {
                    out.entry(tf).or_default().insert(ticker.clone(), periods);
                }
            }
        }
        Ok(out)
    }

    /// The library's store, opened on first use (only once its root exists).
    fn store(&self) -> Result<Option<Arc<Store>>, String> {
        let mut slot = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() && blobs::is_remote_root(&self.settings.data_dir) {
            // Read-only: the page never writes, so scratch stays unused.
            let config = self.settings.s3.clone().unwrap_or_else(S3Config::from_env);
            let blobs = S3Blobs::new(&self.settings.data_dir, &config, &blobs::default_scratch())
                .map_err(|e| e.to_string())?;
            let store =
                Store::with_blobs(Arc::new(blobs), self.settings.basis, &self.settings.version);
            *slot = Some(Arc::new(store));
        }
        if slot.is_none() && self.settings.data_dir.is_dir() {
            // Read-only: the page never sweeps a writer's temporaries.
            let store = Store::for_reading(
                &self.settings.data_dir,
                self.settings.basis,
                &self.settings.version,
            )
            .map_err(|e| e.to_string())?;
            *slot = Some(Arc::new(store));
        }
        Ok(slot.clone())
    }

    /// The days the files of `(ticker, tf)` vouch for, from their footers:
    /// the coverage `reindex` would rebuild for a series the job table does
    /// not know. Unreadable files are skipped.
    pub(super) fn covered_by_footers(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
    ) -> Result<Vec<crate::ranges::DateRange>, String> {
        let Some(store) = self.store()? else {
            return Ok(Vec::new());
        };
        let files: Vec<_> = store
            .scan_all(Some(ticker))
            .map_err(|e| self.redacted(&e.to_string()))?
            .into_iter()
            .filter_map(Result::ok)
            .filter(|f| f.timeframe == tf && f.basis == self.settings.basis)
            .collect();
        Ok(crate::reindex::covered_by_files(&files))
    }
}
