//! What can go wrong in the Parquet library, each error naming the file it
//! concerns and, where the user can act, what to do.

use std::io;
use std::path::{Path, PathBuf};

use crate::model::Basis;

/// An error of the per-ticker Parquet library.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed. `hint` says what the user can do.
    #[error("cannot {action} {}: {source}{hint}", path.display())]
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

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Parquet { path, .. }
            | Self::BasisMismatch { path, .. }
            | Self::Corrupt { path, .. }
            | Self::OutOfPeriod { path, .. } => path,
        }
    }
}

/// What a user can do about an I/O error of this kind.
fn hint_for(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind as K;
    match kind {
        K::StorageFull | K::QuotaExceeded => {
            "; free space on that disk or choose another --data-dir"
        }
        K::PermissionDenied | K::ReadOnlyFilesystem => {
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
            io::Error::from(io::ErrorKind::StorageFull),
        );
        let text = err.to_string();
        assert!(text.contains("/data/AAPL/1m/2024-03.parquet"), "{text}");
        assert!(text.contains("free space"), "{text}");
        assert!(text.contains("--data-dir"), "{text}");
        assert_eq!(err.path(), Path::new("/data/AAPL/1m/2024-03.parquet"));
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
