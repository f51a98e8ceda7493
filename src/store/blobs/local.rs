//! [`Blobs`] on a local directory: today's writes exactly (a temporary file
//! beside the target, fsynced or deferred to one `syncfs`, renamed into
//! place; see `fsutil`), plus conditions checked at the rename:
//!
//! - [`Condition::Absent`]: `renameat2(RENAME_NOREPLACE)` (a hard link where
//!   the file system lacks it), atomic against every other writer.
//! - [`Condition::Matches`]: the target is opened and `flock`ed, its path
//!   stat'ed again and compared with the version, then the temporary file is
//!   renamed over it, all under the lock. Every conditional writer locks the
//!   file at the path before replacing it, so of two writers holding the
//!   same version exactly one wins, in one process or several.
//!
//! A version is the file's device, inode, size and modification time in
//! nanoseconds: a replaced file is a new inode.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Blob, BlobError, Blobs, Condition, Entry, PreparedFile, Tail, Version};
use crate::fsutil;

/// The library's files in a local directory.
#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// The files below `root` (which need not exist yet).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
}

fn version_of(meta: &fs::Metadata) -> Version {
    Version(format!(
        "{:x}:{:x}:{}:{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// Opens an existing regular file; `None` when there is none.
fn open_existing(path: &Path) -> Result<Option<(File, fs::Metadata)>, BlobError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BlobError::local("read", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| BlobError::local("read", path, e))?;
    // On Linux a directory opens like a file, and fails only when read.
    if meta.is_dir() {
        let e = io::Error::from(io::ErrorKind::IsADirectory);
        return Err(BlobError::local("read", path, e));
    }
    Ok(Some((file, meta)))
}

/// Moves the prepared file to `path` if `condition` holds. On an error it
/// is left where it is.
fn place(
    prepared: &PreparedFile,
    path: &Path,
    condition: &Condition,
) -> Result<Version, BlobError> {
    let temp = &prepared.temp;
    let write = |e| BlobError::local("write", path, e);
    match condition {
        Condition::Any => fs::rename(temp, path).map_err(write)?,
        Condition::Absent => rename_noreplace(temp, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                conflict(path)
            } else {
                write(e)
            }
        })?,
        Condition::Matches(version) => {
            // Held until the rename is done: see the module comment.
            let Some((locked, _)) = open_existing(path)? else {
                return Err(conflict(path));
            };
            lock_exclusive(&locked).map_err(write)?;
            match fs::metadata(path) {
                Ok(meta) if version_of(&meta) == *version => {}
                Ok(_) => return Err(conflict(path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(conflict(path)),
                Err(e) => return Err(write(e)),
            }
            fs::rename(temp, path).map_err(write)?;
            drop(locked);
        }
    }
    fsutil::placed(path).map_err(write)?;
    match &prepared.version {
        Some(version) => Ok(version.clone()),
        None => Ok(version_of(&fs::metadata(path).map_err(write)?)),
    }
}

fn conflict(path: &Path) -> BlobError {
    BlobError::Conflict {
        path: path.to_path_buf(),
    }
}

/// `flock(LOCK_EX)`, released when `file` is closed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: `flock` only reads the descriptor, which `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lock_exclusive(file: &File) -> io::Result<()> {
    file.lock()
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // The file system cannot do it: a hard link fails the same way.
        Some(libc::EINVAL | libc::ENOSYS) => link_noreplace(from, to),
        _ => Err(e),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    link_noreplace(from, to)
}

/// A hard link (which never replaces), then the old name removed.
fn link_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

impl Blobs for LocalBlobs {
    fn root(&self) -> &Path {
        &self.root
    }

    fn is_local(&self) -> bool {
        true
    }

    fn scratch(&self) -> Option<&Path> {
        None
    }

    fn read(&self, path: &Path) -> Result<Option<Blob>, BlobError> {
        let Some((mut file, meta)) = open_existing(path)? else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| BlobError::local("read", path, e))?;
        Ok(Some(Blob {
            bytes: Bytes::from(bytes),
            version: version_of(&meta),
        }))
    }

    fn read_tail(&self, path: &Path, len: u64) -> Result<Option<Tail>, BlobError> {
        let Some((file, meta)) = open_existing(path)? else {
            return Ok(None);
        };
        let size = meta.len();
        let take = len.min(size);
        let mut bytes = vec![0u8; usize::try_from(take).unwrap_or(0)];
        file.read_exact_at(&mut bytes, size - take)
            .map_err(|e| BlobError::local("read", path, e))?;
        Ok(Some(Tail {
            size,
            bytes: Bytes::from(bytes),
        }))
    }

    fn write(&self, path: &Path, bytes: Bytes, condition: Condition) -> Result<Version, BlobError> {
        let prepared = self.prepare(path, &bytes)?;
        let placed = self.commit(&prepared, path, condition);
        if placed.is_err() {
            self.discard(prepared);
        }
        placed
    }

    fn list(&self, dir: &Path) -> Result<Vec<Entry>, BlobError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Nothing stored yet, or a stray file where a folder would be
            // (skipped; a write there fails and says so).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(BlobError::local("list", dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| BlobError::local("list", dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                out.push(Entry { name, is_dir });
            }
        }
        Ok(out)
    }

    fn remove(&self, path: &Path) -> Result<(), BlobError> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(BlobError::local("remove", path, e))
            }
            _ => Ok(()),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), BlobError> {
        fsutil::create_parent(to).map_err(|e| BlobError::local("create", to, e))?;
        fs::rename(from, to).map_err(|e| BlobError::local("move", from, e))
    }

    fn exists(&self, path: &Path) -> Result<bool, BlobError> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(!meta.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::local("read", path, e)),
        }
    }

    fn prepare(&self, path: &Path, bytes: &[u8]) -> Result<PreparedFile, BlobError> {
        let (temp, meta) =
            fsutil::write_temp_stat(path, bytes).map_err(|e| BlobError::local("write", path, e))?;
        Ok(PreparedFile {
            temp,
            version: Some(version_of(&meta)),
        })
    }

    fn commit(
        &self,
        prepared: &PreparedFile,
        path: &Path,
        condition: Condition,
    ) -> Result<Version, BlobError> {
        place(prepared, path, &condition)
    }

    fn discard(&self, prepared: PreparedFile) {
        // Best effort: a leftover temporary is swept at the next start.
        let _ = fs::remove_file(&prepared.temp);
    }

    fn read_prepared(&self, prepared: &PreparedFile) -> Result<Bytes, BlobError> {
        fs::read(&prepared.temp)
            .map(Bytes::from)
            .map_err(|e| BlobError::local("read", &prepared.temp, e))
    }
}
