//! The run lock. Beside a SQLite job table it is an OS file lock on
//! `<db>.lock`, which the kernel releases when the process dies, even by
//! SIGKILL; on a PostgreSQL job table it is a session-level advisory lock
//! (`jobs::postgres::advisory`) held on a connection of its own, which the
//! server releases when that connection closes, so runners on several
//! machines exclude each other the same way. With the
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
//! [`acquire`] takes either from the table's [`DbLocation`], with the same
//! modes, the same `wait` and the same [`LockError::Held`].

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::jobs::postgres::advisory::{self, AdvisoryLock};
use crate::jobs::{DbLocation, ErrorClass, JobError};

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
        "another finpipe run holds {what}; wait for it to finish, pass --wait, \
         or pass --shared to every runner that should drain the job table together"
    )]
    Held { what: String },
    #[error("cannot use the run lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot take the run lock of the job table: {source}")]
    Table { source: JobError },
}

impl LockError {
    /// Whether the job table's settings must change (a refused login, a
    /// database that does not exist), not the lock's state.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::Table { source } if source.class() == ErrorClass::Configuration)
    }
}

/// A held run lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    held: Held,
    mode: LockMode,
}

/// What holds the lock.
#[derive(Debug)]
enum Held {
    File {
        file: File,
        path: PathBuf,
    },
    /// Held while its connection is open.
    Advisory {
        _connection: AdvisoryLock,
    },
}

impl RunLock {
    /// How the lock is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The lock file (`None` for PostgreSQL's advisory lock).
    pub fn path(&self) -> Option<&Path> {
        match &self.held {
            Held::File { path, .. } => Some(path),
            Held::Advisory { .. } => None,
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file (the connection) releases the lock anyway;
        // unlocking first just makes the release explicit. Nothing useful
        // can be done on error.
        if let Held::File { file, .. } = &self.held {
            let _ = file.unlock();
        }
    }
}

/// The lock file of the job table at `db_path`: `<db_path>.lock`.
pub fn lock_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the run lock of the job table at `db`: its lock file, or its
/// advisory lock on PostgreSQL. With `wait`, blocks until the lock is free;
/// without, fails at once with [`LockError::Held`] if a conflicting holder
/// exists.
pub fn acquire(db: &DbLocation, mode: LockMode, wait: bool) -> Result<RunLock, LockError> {
    match db {
        DbLocation::Sqlite(path) => acquire_file(path, mode, wait),
        DbLocation::Postgres(url) => {
            let shared = mode == LockMode::Shared;
            match advisory::acquire(url, shared, wait) {
                Ok(Some(lock)) => Ok(RunLock {
                    held: Held::Advisory { _connection: lock },
                    mode,
                }),
                Ok(None) => Err(LockError::Held {
                    what: format!("the run lock (an advisory lock) of {url}"),
                }),
                Err(source) => Err(LockError::Table { source }),
            }
        }
    }
}

/// Takes the lock file of the SQLite job table at `db_path` (creating it
/// and its directory if needed), then writes this process's pid into it.
fn acquire_file(db_path: &Path, mode: LockMode, wait: bool) -> Result<RunLock, LockError> {
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
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Held {
                what: path.display().to_string(),
            });
        }
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    // From here on, returning an error drops `file`, which releases the lock.
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(RunLock {
        held: Held::File { file, path },
        mode,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    fn db(dir: &tempfile::TempDir) -> DbLocation {
        DbLocation::Sqlite(crate::store::default_db_path(&dir.path().join("data")))
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
            held.path().unwrap(),
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
        let path = held.path().unwrap().to_owned();
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
