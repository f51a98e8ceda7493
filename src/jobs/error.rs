//! What can go wrong with the job table, whatever the backend, and the class
//! of each failure: what the caller should do about it, decided from the
//! error's kind, never from its text.

use std::path::PathBuf;

/// A backend's own error (rusqlite's, a PostgreSQL client's), kept as the
/// source of a [`JobError`] so the chain reaches the user, without making the
/// backend's type part of the job table's interface.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Result of every job table operation.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// What kind of failure a [`JobError`] is: what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Another connection held the table too long (SQLite's BUSY or LOCKED
    /// after the busy timeout; a lock timeout on a server). Retry later:
    /// never fail a job for it.
    Busy,
    /// The storage under the table failed: a full disk, an I/O error, no
    /// permission, a file or server that cannot be opened.
    Storage,
    /// The table holds something finpipe cannot read: a damaged file, a row
    /// or coverage range that does not parse.
    Corrupt,
    /// A newer finpipe wrote the table: upgrade finpipe.
    NewerSchema,
    /// The table cannot work where it is (a SQLite file that cannot use WAL,
    /// on a network file system): move it (`--db`).
    Unsupported,
    /// The table's settings must change: a server that refuses the user or
    /// password, a database that does not exist (`--db`).
    Configuration,
    /// Anything else: a bug in finpipe or in its use of the backend.
    Internal,
}

/// What went wrong with the job table.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot create the directory {path} for the job table: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the job table {location}: {source}")]
    Open {
        location: String,
        class: ErrorClass,
        source: BackendError,
    },
    #[error(
        "the job table {path} cannot use WAL journaling (journal_mode is {mode:?}); \
         keep it on a local file system (--db)"
    )]
    NotWal { path: PathBuf, mode: String },
    #[error("job table: {context}: {source}")]
    Backend {
        context: &'static str,
        class: ErrorClass,
        source: BackendError,
    },
    #[error("migrating the job table to schema version {version}: {source}")]
    Migration {
        version: i64,
        class: ErrorClass,
        source: BackendError,
    },
    #[error(
        "the job table {location} was written by a newer finpipe (schema version {found}; \
         this build knows up to {known}): upgrade finpipe"
    )]
    NewerSchema {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("job {id} in the job table is corrupt: {detail}")]
    Corrupt { id: i64, detail: String },
    #[error("coverage of {series} in the job table is corrupt: {detail}")]
    CorruptCoverage { series: String, detail: String },
}

impl JobError {
    /// What kind of failure this is (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::CreateDir { .. } => ErrorClass::Storage,
            Self::Open { class, .. } | Self::Backend { class, .. } => *class,
            Self::Migration { class, .. } => *class,
            Self::NotWal { .. } => ErrorClass::Unsupported,
            Self::NewerSchema { .. } => ErrorClass::NewerSchema,
            Self::Corrupt { .. } | Self::CorruptCoverage { .. } => ErrorClass::Corrupt,
        }
    }

    /// Whether another connection held the table too long. Retryable: the
    /// engine waits and tries again, never fails a job for it.
    pub fn is_busy(&self) -> bool {
        self.class() == ErrorClass::Busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_class() {
        let io = || std::io::Error::other("disk on fire");
        let boxed = || -> BackendError { Box::new(io()) };
        let cases = [
            (
                JobError::CreateDir {
                    path: "x".into(),
                    source: io(),
                },
                ErrorClass::Storage,
            ),
            (
                JobError::Backend {
                    context: "claiming a job",
                    class: ErrorClass::Busy,
                    source: boxed(),
                },
                ErrorClass::Busy,
            ),
            (
                JobError::NewerSchema {
                    location: "x".into(),
                    found: 9,
                    known: 2,
                },
                ErrorClass::NewerSchema,
            ),
            (
                JobError::NotWal {
                    path: "x".into(),
                    mode: "delete".into(),
                },
                ErrorClass::Unsupported,
            ),
            (
                JobError::Corrupt {
                    id: 1,
                    detail: "bad".into(),
                },
                ErrorClass::Corrupt,
            ),
        ];
        for (error, class) in cases {
            assert_eq!(error.class(), class, "{error}");
            assert_eq!(error.is_busy(), class == ErrorClass::Busy, "{error}");
        }
    }
}
