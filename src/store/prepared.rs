//! Who may write a period file, and writes made now but shown later.
//!
//! [`FileLocks`] serialises the writers of one period file within the
//! process (striped mutexes) and keeps the set of files *reserved* by a
//! [`PreparedWrite`]: a file already encoded to its temporary name whose
//! rename waits for something else (a flat-file day is written while it
//! downloads and shown only once its gzip trailer checked out). While a file
//! is reserved every other writer of the store waits for it, so the prepared
//! content, merged from the file as it was, is still right when it is
//! renamed. A prepared write dropped without [`PreparedWrite::commit`]
//! removes its temporary file and frees the file.
//!
//! No deadlock: a thread that holds reservations never waits for another's
//! ([`crate::store::Store::prepare_merge`] answers "busy" instead), and a
//! reservation ends with its commit or drop.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::StoreError;
use super::blobs::{Blobs, Condition, PreparedFile};
#[cfg(doc)]
use crate::fsutil;

/// Number of locks that serialize writers of the same period file in this
/// process (files hash onto them; two files may share one, which only waits).
const LOCK_STRIPES: usize = 64;

/// The in-process locks and reservations of one store's files.
pub(super) struct FileLocks {
    stripes: Box<[Mutex<()>]>,
    reserved: Mutex<HashSet<PathBuf>>,
    released: Condvar,
}

impl FileLocks {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            reserved: Mutex::new(HashSet::new()),
            released: Condvar::new(),
        })
    }

    /// The stripe lock of `path`, whether or not the file is reserved.
    pub(super) fn stripe(&self, path: &Path) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        // The modulo keeps the index below `stripes.len()` (LOCK_STRIPES > 0).
        let stripe = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        // The mutexes guard no data, so a panic elsewhere cannot leave them
        // inconsistent.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock for writing `path`: waits while a prepared write reserves it.
    pub(super) fn lock(&self, path: &Path) -> MutexGuard<'_, ()> {
        loop {
            let guard = self.stripe(path);
            // Reservations are taken and ended under the stripe lock, so this
            // answer holds for as long as `guard` does.
            if !self.is_reserved(path) {
                return guard;
            }
            drop(guard);
            let set = self.reserved_set();
            drop(
                self.released
                    .wait_while(set, |set| set.contains(path))
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }

    /// Whether a prepared write holds `path`. Call under its stripe lock.
    pub(super) fn is_reserved(&self, path: &Path) -> bool {
        self.reserved_set().contains(path)
    }

    /// Reserves `path`. Call under its stripe lock, after checking it is free.
    fn reserve(&self, path: &Path) {
        self.reserved_set().insert(path.to_owned());
    }

    /// Ends the reservation of `path` and wakes the writers waiting for it.
    fn release(&self, path: &Path) {
        self.reserved_set().remove(path);
        self.released.notify_all();
    }

    fn reserved_set(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        // A set of paths stays valid whatever panicked while it was locked.
        self.reserved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One period file written but not shown: a temporary name beside it
/// locally, a scratch file for a remote library (see [`Blobs::prepare`]).
/// [`Self::commit`] shows it if the file is still as it was merged from.
/// Until then the file is reserved (other writers of the store wait);
/// dropping it discards the write.
pub struct PreparedWrite {
    locks: Arc<FileLocks>,
    blobs: Arc<dyn Blobs>,
    path: PathBuf,
    file: Option<PreparedFile>,
    /// The file as it was merged from: absent, or at a version.
    condition: Condition,
    /// First and last timestamp of the bars this write merged in: what it
    /// redoes on top of another writer's file (see `Store::commit`).
    pub(super) span: (i64, i64),
    ended: bool,
}

impl std::fmt::Debug for PreparedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedWrite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PreparedWrite {
    /// Reserves `path` for the write already prepared as `file`, merged
    /// from the file as `condition` says. Call under the stripe lock of
    /// `path`, after [`FileLocks::is_reserved`] said no.
    pub(super) fn reserve(
        locks: &Arc<FileLocks>,
        blobs: &Arc<dyn Blobs>,
        path: PathBuf,
        file: PreparedFile,
        condition: Condition,
        span: (i64, i64),
    ) -> Self {
        locks.reserve(&path);
        Self {
            locks: Arc::clone(locks),
            blobs: Arc::clone(blobs),
            path,
            file: Some(file),
            condition,
            span,
            ended: false,
        }
    }

    /// The file this write replaces.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The prepared content (for redoing the merge after a conflict).
    pub(super) fn content(&self) -> Result<bytes::Bytes, StoreError> {
        match &self.file {
            Some(file) => Ok(self.blobs.read_prepared(file)?),
            None => Err(StoreError::Conflict {
                path: self.path.clone(),
                attempts: 1,
            }),
        }
    }

    /// Shows the prepared file (readers see the old file or the new one,
    /// never a part; locally the new name is made durable as
    /// [`fsutil::rename_into_place`] does) if the file is still as it was
    /// merged from, and frees the file for other writers. When another
    /// process wrote the file meanwhile: [`StoreError::Conflict`] (use
    /// `Store::commit` to merge again instead).
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.try_commit()
    }

    /// [`Self::commit`], keeping the write (reserved, prepared file kept)
    /// on an error.
    pub(super) fn try_commit(&mut self) -> Result<(), StoreError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let committed = {
            let _guard = self.locks.stripe(&self.path);
            self.blobs.commit(file, &self.path, self.condition.clone())
        };
        committed?;
        self.file = None;
        self.end();
        Ok(())
    }

    /// Frees the file (after the caller wrote it another way) and discards
    /// the prepared file.
    pub(super) fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(file) = self.file.take() {
            let _guard = self.locks.stripe(&self.path);
            // Best effort: a leftover temporary is swept at the next start.
            self.blobs.discard(file);
        }
        self.locks.release(&self.path);
    }
}

impl Drop for PreparedWrite {
    fn drop(&mut self) {
        self.end();
    }
}
