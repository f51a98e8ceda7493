//! Removing temporary files (`*.tmp-*`, see `fsutil::TMP_MARKER`) that
//! crashed writers left below the library root.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::StoreError;
use crate::fsutil::TMP_MARKER;

/// A temporary file untouched for this long is a crash's leftover. Younger
/// ones may belong to another runner writing into the same library right now
/// (`--shared`), whose rename would fail if the file vanished; a write takes
/// milliseconds, so the margin is wide.
pub const TMP_GRACE: Duration = Duration::from_secs(15 * 60);

/// Removes stale temporary files anywhere below `root` (symlinks are not
/// followed). Returns how many were removed.
pub(super) fn remove_stale_temporaries(root: &Path) -> Result<usize, StoreError> {
    remove_temporaries(root, TMP_GRACE)
}

/// Removes temporary files untouched for at least `grace` below `root`. A
/// runner that holds the exclusive run lock knows no other writer is alive
/// and passes zero.
pub(super) fn remove_temporaries(root: &Path, grace: Duration) -> Result<usize, StoreError> {
    let now = SystemTime::now();
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A folder that is not ours to read (e.g. `lost+found`) holds no leftovers of ours.
            Err(e) if dir != root && e.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(e) if dir != root && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && entry.file_name().to_string_lossy().contains(TMP_MARKER)
                && is_stale(&entry, now, grace)
            {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove", &path, e)),
                }
            }
        }
    }
    Ok(removed)
}

/// Whether the file was last modified at least `grace` before `now`.
fn is_stale(entry: &fs::DirEntry, now: SystemTime, grace: Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .map(|modified| now.duration_since(modified).unwrap_or_default())
        .is_some_and(|age| age >= grace)
}
