//! What can go wrong in the Parquet library, each error naming the file it
//! concerns and, where the user can act, what to do.

use std::io;
use std::path::{Path, PathBuf};

use super::blobs::{self, BlobError};
pub(super) use crate::fsutil::StorageFault;
use crate::model::Basis;

/// An error of the per-ticker Parquet library.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed. `hint` says what the user can do.
    #[error("{}", io_message(action, path, source, hint))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    /// Encoding bars as Parquet failed (a bug, not a property of the data dir).
    #[error("cannot encode Parquet for {}: {detail}", path.display())]
    Parquet { path: PathBuf, detail: String },
    /// A stored file holds bars of the other adjustment basis.
    #[error(
        "{} holds {} bars but this library stores {} bars; a series never mixes the two. \
         Keep each basis in its own library: use a separate --data-dir (the --adjusted library \
         defaults to data-adjusted)",
        path.display(), stored.name(), wanted.name()
    )]
    BasisMismatch {
        path: PathBuf,
        stored: Basis,
        wanted: Basis,
    },
    /// A file in the library cannot be read as one of finpipe's bar files.
    #[error(
        "{} is not a readable finpipe bar file ({detail}); move it away or delete it and fetch \
         the period again",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// Other writers kept replacing the file between this writer's read and
    /// its conditional write, `attempts` times in a row.
    #[error(
        "{} kept changing while this run merged into it ({attempts} attempts): other runners \
         write the same file; run the same command again",
        path.display()
    )]
    Conflict { path: PathBuf, attempts: usize },
    /// An object-store request failed (the library is on S3).
    #[error("cannot {action} {}: {detail}", path.display())]
    Remote {
        action: &'static str,
        path: PathBuf,
        detail: String,
        /// Retrying later may help (network, 5xx, throttling).
        transient: bool,
    },
    /// The object store refused the library's credentials.
    #[error("{endpoint} refused access to {} ({reason}): {}", path.display(), blobs::CREDENTIALS_HINT)]
    Denied {
        path: PathBuf,
        endpoint: String,
        reason: String,
    },
    /// The library's location or its settings are unusable.
    #[error("invalid library location {}: {detail}", root.display())]
    Location { root: PathBuf, detail: String },
    /// A bar handed to `replace_period` does not belong to that period.
    #[error(
        "bar at {timestamp} ms does not belong in {} (period {period}); every bar goes to the \
         period of its date in its day zone",
        path.display()
    )]
    OutOfPeriod {
        path: PathBuf,
        period: String,
        timestamp: i64,
    },
}

impl StoreError {
    /// An I/O error on `path` while doing `action` (`"write"`, `"read"`, …),
    /// with a hint chosen from the error's kind.
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        let hint = hint_for(source.kind());
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
            hint,
        }
    }

    /// A file that cannot be decoded.
    pub(crate) fn corrupt(path: &Path, detail: impl ToString) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    /// The storage fault this error is, if it is one that stops the run (a
    /// full disk, a read-only file system); `None` for every other error.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            Self::Io { source, .. } => StorageFault::of(source.kind()),
            _ => None,
        }
    }

    /// Whether this error stops the whole run: see [`Self::storage_fault`].
    pub fn is_fatal_storage(&self) -> bool {
        self.storage_fault().is_some()
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Parquet { path, .. }
            | Self::BasisMismatch { path, .. }
            | Self::Corrupt { path, .. }
            | Self::OutOfPeriod { path, .. }
            | Self::Conflict { path, .. }
            | Self::Remote { path, .. }
            | Self::Denied { path, .. }
            | Self::Location { root: path, .. } => path,
        }
    }

    /// Whether the same operation may succeed later: a write that lost
    /// races to other writers, or an object-store request that failed for
    /// a passing reason.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } => true,
            Self::Remote { transient, .. } => *transient,
            _ => false,
        }
    }
}

impl From<BlobError> for StoreError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::Conflict { path } => Self::Conflict { path, attempts: 1 },
            BlobError::Local {
                action,
                path,
                source,
            } => Self::io(action, &path, source),
            BlobError::Remote {
                action,
                path,
                detail,
                transient,
            } => Self::Remote {
                action,
                path,
                detail,
                transient,
            },
            BlobError::Denied {
                path,
                endpoint,
                reason,
            } => Self::Denied {
                path,
                endpoint,
                reason,
            },
            BlobError::Config { root, detail } => Self::Location { root, detail },
        }
    }
}

/// The text of [`StoreError::Io`]: a storage fault leads with what to do
/// about it, naming the path; any other error says what failed, then the
/// hint.
fn io_message(action: &str, path: &Path, source: &io::Error, hint: &str) -> String {
    match StorageFault::of(source.kind()) {
        Some(fault) => fault.advice(path, "--data-dir", &format!("cannot {action} it: {source}")),
        None => format!("cannot {action} {}: {source}{hint}", path.display()),
    }
}

/// What a user can do about an I/O error of this kind (a storage fault says
/// it in [`io_message`]).
fn hint_for(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind as K;
    match kind {
        K::PermissionDenied => {
            "; make the directory writable by this user or choose another --data-dir"
        }
        K::IsADirectory | K::DirectoryNotEmpty => {
            "; a directory is in the way of the file: move it away"
        }
        K::NotADirectory => "; a file is in the way of a directory of the library: move it away",
        K::FileTooLarge => "; the file system refuses files this large: choose another --data-dir",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_path_and_the_fix() {
        let err = StoreError::io(
            "write",
            Path::new("/data/AAPL/1m/2024-03.parquet"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("cannot write /data/AAPL/1m/2024-03.parquet: "),
            "{text}"
        );
        assert!(
            text.contains("writable") && text.contains("--data-dir"),
            "{text}"
        );
        assert_eq!(err.path(), Path::new("/data/AAPL/1m/2024-03.parquet"));
        assert_eq!(err.storage_fault(), None);
        assert!(!err.is_fatal_storage());
    }

    #[test]
    fn a_full_disk_is_a_fatal_fault_that_says_what_to_free() {
        // ENOSPC as the kernel reports it, and the kind alone.
        let enospc = io::Error::from_raw_os_error(28);
        assert_eq!(enospc.kind(), io::ErrorKind::StorageFull);
        for source in [enospc, io::Error::from(io::ErrorKind::StorageFull)] {
            let err = StoreError::io("write", Path::new("/data/AAPL/1m/2024-03.parquet"), source);
            assert_eq!(err.storage_fault(), Some(StorageFault::Full));
            assert!(err.is_fatal_storage());
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "the disk holding /data/AAPL/1m/2024-03.parquet is full: free space there \
                     and run the same command again (cannot write it: "
                ),
                "{text}"
            );
        }
        // EDQUOT: the same fault, said as what it is.
        let err = StoreError::io(
            "write",
            Path::new("/d/x"),
            io::Error::from_raw_os_error(122),
        );
        assert_eq!(err.storage_fault(), Some(StorageFault::Full));
        assert!(err.to_string().contains("quota"), "{err}");
    }

    #[test]
    fn a_read_only_file_system_is_a_fatal_fault_that_says_what_to_do() {
        let erofs = io::Error::from_raw_os_error(30);
        assert_eq!(erofs.kind(), io::ErrorKind::ReadOnlyFilesystem);
        let err = StoreError::io("create", Path::new("/mnt/lib/AAPL"), erofs);
        assert_eq!(err.storage_fault(), Some(StorageFault::ReadOnly));
        let text = err.to_string();
        assert!(
            text.starts_with("the file system holding /mnt/lib/AAPL is read-only: remount it"),
            "{text}"
        );
        assert!(text.contains("--data-dir"), "{text}");
        // Errors that are not about the disk do not stop a run.
        let corrupt = StoreError::corrupt(Path::new("/d/x.parquet"), "bad magic");
        assert_eq!(corrupt.storage_fault(), None);
    }

    #[test]
    fn basis_mismatch_names_both_bases_and_the_fix() {
        let err = StoreError::BasisMismatch {
            path: PathBuf::from("d/AAPL/1d/2024.parquet"),
            stored: Basis::Adjusted,
            wanted: Basis::Unadjusted,
        };
        let text = err.to_string();
        for part in [
            "d/AAPL/1d/2024.parquet",
            "holds adjusted",
            "stores unadjusted",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(
            text.contains("--data-dir") && text.contains("--adjusted"),
            "{text}"
        );
    }
}
