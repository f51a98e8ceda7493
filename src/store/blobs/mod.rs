//! The files of one library, wherever they live: the one interface
//! ([`Blobs`]) that the store writes and reads through, served by a local
//! directory ([`LocalBlobs`]) and by an S3 bucket prefix ([`S3Blobs`]).
//!
//! Paths stay `Path`s under the store's root, so the store's layout code is
//! the same for both: a local root is a directory, an S3 root is the text
//! `s3://bucket/prefix` (as a `PathBuf`), and a path below it names the
//! object `prefix/<relative components joined by '/'>`.
//!
//! Every whole-file write is atomic (a rename locally, one PUT remotely) and
//! takes a [`Condition`]; a write whose condition no longer holds fails with
//! [`BlobError::Conflict`], so a read–merge–write that lost a race is
//! redone instead of losing the other writer's bars. One conformance suite
//! (`conformance.rs`) holds both implementations to the same behaviour.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

mod local;
mod s3;

#[cfg(test)]
pub(crate) mod conformance;

pub use local::LocalBlobs;
pub use s3::{S3_TIMEOUT, S3Blobs, S3Config, S3Root};

/// How much of a file's end a footer read asks for first: finpipe's footers
/// are a few KiB, so one read (one ranged GET) nearly always suffices.
pub const FOOTER_HINT: u64 = 64 * 1024;

/// The version of a stored file as last read: an ETag remotely; locally the
/// file's device, inode, size and modification time (a replaced file is a
/// new inode). Opaque: compare it, hand it back in [`Condition::Matches`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(pub(crate) String);

impl Version {
    /// The version's text (an ETag, or the local stat fingerprint).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When a write may replace the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Whatever is there.
    Any,
    /// Only when there is no file (`If-None-Match: *`).
    Absent,
    /// Only when the file is still at this version (`If-Match: <etag>`).
    Matches(Version),
}

/// A whole file and the version it was read at.
#[derive(Clone, Debug)]
pub struct Blob {
    pub bytes: Bytes,
    pub version: Version,
}

/// The end of a file: its size and its last `min(asked, size)` bytes.
#[derive(Clone, Debug)]
pub struct Tail {
    pub size: u64,
    pub bytes: Bytes,
}

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub name: String,
    /// A folder (remotely: a common prefix), not a file.
    pub is_dir: bool,
}

/// A file written but not shown yet (see [`Blobs::prepare`]): locally a
/// temporary file beside its target, remotely a file in the scratch
/// directory. Give it back to [`Blobs::commit`] or [`Blobs::discard`].
#[derive(Debug, PartialEq, Eq)]
pub struct PreparedFile {
    pub(crate) temp: PathBuf,
    /// The version the file will have once shown, when known beforehand
    /// (locally: a rename keeps what the version is made of).
    pub(crate) version: Option<Version>,
}

/// What can go wrong with the library's files. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The write's [`Condition`] did not hold: another writer replaced,
    /// created or removed the file since it was read. Read it again.
    #[error("{} changed since it was read: another writer wrote it", path.display())]
    Conflict { path: PathBuf },
    /// A local file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An object-store request failed.
    #[error("cannot {action} {}: {detail}", path.display())]
    Remote {
        action: &'static str,
        path: PathBuf,
        /// The server's or client's words, scrubbed of the keys.
        detail: String,
        /// Retrying later may help (network, 5xx, throttling).
        transient: bool,
    },
    /// The object store refused the credentials.
    #[error("{endpoint} refused access to {} ({reason}): {CREDENTIALS_HINT}", path.display())]
    Denied {
        path: PathBuf,
        endpoint: String,
        reason: String,
    },
    /// The library's location or settings are unusable.
    #[error("invalid library location {}: {detail}", root.display())]
    Config { root: PathBuf, detail: String },
}

/// What to check when S3 refuses the library's requests.
pub const CREDENTIALS_HINT: &str = "check FINPIPE_S3_ACCESS_KEY_ID / FINPIPE_S3_SECRET_ACCESS_KEY \
     (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket's permissions";

impl BlobError {
    pub(crate) fn local(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Local {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether this is a [`BlobError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// The file (or root) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Conflict { path }
            | Self::Local { path, .. }
            | Self::Remote { path, .. }
            | Self::Denied { path, .. } => path,
            Self::Config { root, .. } => root,
        }
    }
}

/// The files of one library. Synchronous: call it from plain threads or
/// from inside a tokio runtime's worker (the S3 implementation runs its
/// requests on a runtime of its own). Paths are below [`Blobs::root`].
pub trait Blobs: Send + Sync + fmt::Debug {
    /// The root every path is below (a directory, or `s3://bucket/prefix`).
    fn root(&self) -> &Path;

    /// Whether files live on a local disk (durability by fsync/syncfs, local
    /// temporaries to sweep), not in an object store (a PUT is durable when
    /// it returns).
    fn is_local(&self) -> bool;

    /// The local directory where remote writes are prepared (and where a
    /// remote library's staging lives); `None` for a local library, whose
    /// temporaries sit beside their targets.
    fn scratch(&self) -> Option<&Path>;

    /// The whole file and its version; `None` when there is none.
    fn read(&self, path: &Path) -> Result<Option<Blob>, BlobError>;

    /// The file's size and its last `len` bytes (all of it when shorter):
    /// footer reads without the pages, one ranged GET remotely. `None` when
    /// there is no file.
    fn read_tail(&self, path: &Path, len: u64) -> Result<Option<Tail>, BlobError>;

    /// Replaces the file with `bytes` at once (readers see the old file or
    /// the new one) if `condition` holds, else [`BlobError::Conflict`].
    /// Returns the new version. Folders are created as needed.
    fn write(&self, path: &Path, bytes: Bytes, condition: Condition) -> Result<Version, BlobError>;

    /// The names in the folder `dir`, one level, files and folders, in no
    /// particular order; empty when there is no such folder.
    fn list(&self, dir: &Path) -> Result<Vec<Entry>, BlobError>;

    /// Removes the file; a file that is not there is not an error.
    fn remove(&self, path: &Path) -> Result<(), BlobError>;

    /// Moves the file `from` to `to` (replacing `to`; remotely a copy, then
    /// a delete). `from` must exist.
    fn rename(&self, from: &Path, to: &Path) -> Result<(), BlobError>;

    /// Whether there is a file at `path`.
    fn exists(&self, path: &Path) -> Result<bool, BlobError>;

    /// Writes `bytes` for `path` without showing them: locally a temporary
    /// file beside it (renamed at commit), remotely a file in the local
    /// scratch directory (PUT at commit), so memory stays bounded.
    fn prepare(&self, path: &Path, bytes: &[u8]) -> Result<PreparedFile, BlobError>;

    /// Shows a prepared file at `path` if `condition` holds, and returns
    /// the new version; the prepared file is then gone. On an error
    /// (a [`BlobError::Conflict`] included) it is kept: commit it again, read
    /// it, or [`Blobs::discard`] it.
    fn commit(
        &self,
        prepared: &PreparedFile,
        path: &Path,
        condition: Condition,
    ) -> Result<Version, BlobError>;

    /// Removes a prepared file that will not be committed (best effort).
    fn discard(&self, prepared: PreparedFile);

    /// The whole content of a prepared file (for redoing a merge after a
    /// conflict at commit).
    fn read_prepared(&self, prepared: &PreparedFile) -> Result<Bytes, BlobError>;
}

/// Whether `root` names an object-store library (`s3://…`).
pub fn is_remote_root(root: &Path) -> bool {
    root.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// The local scratch directory for a remote library's prepared writes when
/// none is given: `<system temp dir>/finpipe-scratch`.
pub fn default_scratch() -> PathBuf {
    std::env::temp_dir().join("finpipe-scratch")
}
