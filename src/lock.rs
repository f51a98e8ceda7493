//! The run lock: an OS file lock on `<db>.lock` beside the job table, which
//! the kernel releases when the process dies, even by SIGKILL. With the
//! default job table that is `<data-dir>/.finpipe/finpipe.db.lock`, inside
//! the library's state folder, never in the library root (dataset readers
//! such as `pd.read_parquet('data/')` would trip over it there).
//!
//! `run`, `backfill` and `update` take it exclusively, so an overlapping cron
//! start stops at once (or waits with `--wait`). `--shared` runners, which
//! deliberately drain one table together, take it shared: they admit each
//! other but not an exclusive runner, and an exclusive runner keeps them out.
//! The file stays on disk (deleting a lock file races); it holds the last
//! holder's pid for humans, but only the lock itself is the truth.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How the run lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// The only runner on this job table (the default).
    Exclusive,
    /// One of several runners draining the table together (`--shared`).
    Shared,
}

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another finpipe run holds {path}; wait for it to finish, pass --wait, \
         or pass --shared to every runner that should drain the job table together"
    )]
    Held { path: PathBuf },
    #[error("cannot use the run lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held run lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    mode: LockMode,
    path: PathBuf,
}

impl RunLock {
    /// How the lock is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first just
        // makes the release explicit. Nothing useful can be done on error.
        let _ = self.file.unlock();
    }
}

/// The lock file of the job table at `db_path`: `<db_path>.lock`.
pub fn lock_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the run lock of the job table at `db_path` (creating the lock file
/// and its directory if needed). With `wait`, blocks until the lock is free;
/// without, fails at once with [`LockError::Held`] if a conflicting holder
/// exists. Then writes this process's pid into the file.
pub fn acquire(db_path: &Path, mode: LockMode, wait: bool) -> Result<RunLock, LockError> {
    let path = lock_path(db_path);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false) // the content may be another holder's pid; truncate only once locked
        .open(&path)
        .map_err(io)?;
    let locked = match (mode, wait) {
        (LockMode::Exclusive, true) => file.lock().map_err(TryLockError::Error),
        (LockMode::Shared, true) => file.lock_shared().map_err(TryLockError::Error),
        (LockMode::Exclusive, false) => file.try_lock(),
        (LockMode::Shared, false) => file.try_lock_shared(),
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(LockError::Held { path }),
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    // From here on, returning an error drops `file`, which releases the lock.
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(RunLock { file, mode, path })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    fn db(dir: &tempfile::TempDir) -> PathBuf {
        crate::store::default_db_path(&dir.path().join("data"))
    }

    fn is_held(result: Result<RunLock, LockError>) -> bool {
        matches!(result, Err(LockError::Held { .. }))
    }

    #[test]
    fn exclusive_blocks_exclusive_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let held = acquire(&db, LockMode::Exclusive, false).unwrap();
        assert_eq!(held.mode(), LockMode::Exclusive);
        assert_eq!(
            held.path(),
            dir.path().join("data/.finpipe/finpipe.db.lock"),
            "the lock is in the state folder, created if needed"
        );
        assert!(is_held(acquire(&db, LockMode::Exclusive, false)));
        assert!(is_held(acquire(&db, LockMode::Shared, false)));
        let message = acquire(&db, LockMode::Exclusive, false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("finpipe.db.lock"), "{message}");
        assert!(
            message.contains("--wait") && message.contains("--shared"),
            "{message}"
        );
    }

    #[test]
    fn shared_allows_shared_but_not_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let first = acquire(&db, LockMode::Shared, false).unwrap();
        let second = acquire(&db, LockMode::Shared, false).unwrap();
        assert!(is_held(acquire(&db, LockMode::Exclusive, false)));
        drop(first);
        assert!(is_held(acquire(&db, LockMode::Exclusive, false)));
        drop(second);
        acquire(&db, LockMode::Exclusive, false).unwrap();
    }

    #[test]
    fn dropping_releases_and_the_file_stays_with_a_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let held = acquire(&db, LockMode::Exclusive, false).unwrap();
        let path = held.path().to_owned();
        let pid = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(held);
        assert!(path.exists(), "the lock file is never deleted");
        let again = acquire(&db, LockMode::Exclusive, false).unwrap();
        drop(again);
        acquire(&db, LockMode::Shared, false).unwrap();
    }

    #[test]
    fn waiting_blocks_until_the_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let held = acquire(&db, LockMode::Exclusive, false).unwrap();
        let (tx, rx) = mpsc::channel();
        let releaser = thread::spawn(move || {
            rx.recv().unwrap();
            thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let started = Instant::now();
        tx.send(()).unwrap();
        let waited = acquire(&db, LockMode::Exclusive, true).unwrap();
        let elapsed = started.elapsed();
        releaser.join().unwrap();
        assert!(
            elapsed >= Duration::from_millis(150),
            "returned after {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert!(is_held(acquire(&db, LockMode::Shared, false)));
        drop(waited);
    }

    #[test]
    fn shared_waiter_waits_for_an_exclusive_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let held = acquire(&db, LockMode::Exclusive, false).unwrap();
        let started = Instant::now();
        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let shared = acquire(&db, LockMode::Shared, true).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        releaser.join().unwrap();
        assert_eq!(shared.mode(), LockMode::Shared);
    }

    #[test]
    fn lock_path_appends_to_the_file_name() {
        assert_eq!(
            lock_path(Path::new("data/finpipe.db")),
            PathBuf::from("data/finpipe.db.lock")
        );
        assert_eq!(lock_path(Path::new("jobs")), PathBuf::from("jobs.lock"));
    }
}
