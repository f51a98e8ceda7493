//! Atomic file writes: a temporary file beside the target, then a rename.
//! Temporary names never end in the target's extension, so a crash leaves
//! nothing that a reader's glob (`*.json`, `*.parquet`) would pick up.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Marker in the names of temporary files (`name.ext.tmp-<random>`).
pub const TMP_MARKER: &str = ".tmp-";

/// Writes `bytes` to `path` atomically: readers see the old file or the new
/// one, never a part. Creates the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    let renamed = fs::rename(&tmp, path);
    if renamed.is_err() {
        // Best effort: the write already failed; a leftover is swept later.
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Writes `bytes` to a fresh temporary file beside `path` (creating the
/// parent directory if needed) and returns its name; renaming it to `path`
/// is the caller's. On an error nothing is left behind.
pub fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    let written = fs::File::create(&tmp).and_then(|mut file| file.write_all(bytes));
    if written.is_err() {
        // Best effort, as above.
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| tmp)
}

/// A fresh temporary path beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{TMP_MARKER}{:016x}", fastrand::u64(..)));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("u.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["u.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.json");
        write_atomic(&path, b"old").unwrap();
        // A directory in the way of the rename target makes the rename fail.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
