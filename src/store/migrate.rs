//! Moving an older library's own state into its state folder.
//!
//! Libraries written before the state folder kept the job table, its SQLite
//! side files, the run lock and the flat-file staging folder in the library
//! root (`<root>/finpipe.db`, `-wal`, `-shm`, `finpipe.db.lock`, `.staging/`),
//! where dataset readers trip on them. [`migrate_state`] moves them into
//! `<root>/.finpipe/` once; afterwards it finds nothing to move.
//!
//! It runs before any lock or table is opened, so it cannot take the run lock
//! (which is one of the files it moves). Two processes that race through it
//! are safe: every move is one `rename`, which is atomic, and a source that is
//! gone (`NotFound`) is one the other process moved. The job table moves after
//! its side files, so a crash in between leaves the old `finpipe.db` in place
//! and the next open finishes the move; a SQLite database is never separated
//! from its write-ahead log for longer than that.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{STATE_DIR, StoreError};

/// The job table's file name, in the state folder by default.
pub const DB_FILE: &str = "finpipe.db";

/// The job table's default path for the library at `root`:
/// `<root>/.finpipe/finpipe.db` (its lock, `<db>.lock`, lands beside it).
pub fn default_db_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(DB_FILE)
}

/// The old layout's job table files, side files first: the table itself
/// moves last (see the module comment).
const DB_FILES: [&str; 4] = [
    "finpipe.db-wal",
    "finpipe.db-shm",
    "finpipe.db-journal",
    "finpipe.db",
];
/// The old layout's run lock, and where it goes in the state folder.
const LOCK_FILE: &str = "finpipe.db.lock";
/// The old layout's staging folder, and its name in the state folder.
const OLD_STAGING: &str = ".staging";
const NEW_STAGING: &str = "staging";

/// What [`migrate_state`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    /// The state folder (`<root>/.finpipe`).
    pub state_dir: PathBuf,
    /// Each entry moved, as (old path, new path), in the order moved.
    pub moved: Vec<(PathBuf, PathBuf)>,
    /// Old-layout entries left where they are because the state folder
    /// already holds its own (a job table of the new layout is never
    /// replaced by an old one): the user decides what to keep.
    pub left: Vec<PathBuf>,
}

impl Migration {
    /// Whether anything was moved.
    pub fn moved_any(&self) -> bool {
        !self.moved.is_empty()
    }
}

/// What to move: the job table and its lock only when the job table is at
/// its default place (an explicit `--db` is left alone, wherever it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateDb {
    /// The job table is the default one: move the old layout's table and lock.
    Yes,
    /// The job table was given explicitly: move only the staging folder.
    No,
}

/// Moves finpipe's own files of the old layout from the library root at
/// `root` into its state folder `<root>/.finpipe/` and says what it moved.
/// Creates nothing when there is nothing to move (a library that does not
/// exist stays absent); never prints. Safe to call on every open and from
/// several processes at once (see the module comment).
pub fn migrate_state(root: &Path, db: MigrateDb) -> Result<Migration, StoreError> {
    let state = root.join(STATE_DIR);
    let mut out = Migration {
        state_dir: state.clone(),
        ..Migration::default()
    };
    // Each check looks at the new place before the old one: a process racing
    // through the same moves can make an old entry vanish between the two
    // looks, but never make both exist, so "both exist" is never a race.
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    if db == MigrateDb::Yes {
        let pairs = DB_FILES.map(|name| (root.join(name), state.join(name)));
        let clash = exists(&state.join(DB_FILE))
            || pairs.iter().any(|(old, new)| exists(new) && exists(old));
        if clash {
            // The state folder has a table (or side files) of its own: an old
            // table beside it is another one (a restored copy, an older
            // finpipe run since), never moved over it nor separated from its
            // side files.
            out.left.extend(
                pairs
                    .into_iter()
                    .map(|(old, _)| old)
                    .filter(|old| exists(old)),
            );
        } else {
            moves.extend(pairs);
        }
        moves.push((root.join(LOCK_FILE), state.join(LOCK_FILE)));
    }
    moves.push((root.join(OLD_STAGING), state.join(NEW_STAGING)));

    let mut created = false;
    for (old, new) in moves {
        if exists(&new) {
            if exists(&old) {
                out.left.push(old);
            }
            continue;
        }
        if !exists(&old) {
            continue;
        }
        if !created {
            fs::create_dir_all(&state).map_err(|e| StoreError::io("create", &state, e))?;
            created = true;
        }
        match fs::rename(&old, &new) {
            Ok(()) => out.moved.push((old, new)),
            // Another process moved it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("move", &old, e)),
        }
    }
    Ok(out)
}

/// Whether a directory entry exists at `path` (a dangling symlink counts).
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn old_layout(root: &Path) {
        touch(&root.join("finpipe.db"), "db");
        touch(&root.join("finpipe.db-wal"), "wal");
        touch(&root.join("finpipe.db-shm"), "shm");
        touch(&root.join("finpipe.db.lock"), "123\n");
        touch(&root.join(".staging/job-7-AAPL/2024-01-02.day"), "rows");
        touch(&root.join("AAPL/1m/2024-01.parquet"), "bars");
    }

    fn names(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_default_path_is_in_the_state_folder() {
        assert_eq!(
            default_db_path(Path::new("data")),
            PathBuf::from("data/.finpipe/finpipe.db")
        );
        assert_eq!(
            crate::lock::lock_path(&default_db_path(Path::new("data"))),
            PathBuf::from("data/.finpipe/finpipe.db.lock")
        );
    }

    #[test]
    fn an_old_layout_moves_once_with_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        old_layout(&root);

        let first = migrate_state(&root, MigrateDb::Yes).unwrap();
        assert_eq!(first.state_dir, root.join(".finpipe"));
        let moved: Vec<&Path> = first.moved.iter().map(|(old, _)| old.as_path()).collect();
        let expected = [
            "finpipe.db-wal",
            "finpipe.db-shm",
            "finpipe.db",
            "finpipe.db.lock",
            ".staging",
        ]
        .map(|name| root.join(name));
        assert_eq!(
            moved,
            expected.iter().map(PathBuf::as_path).collect::<Vec<_>>()
        );
        assert!(first.left.is_empty(), "{first:?}");
        assert_eq!(names(&root), [".finpipe", "AAPL"]);
        let state = root.join(".finpipe");
        assert_eq!(
            names(&state),
            [
                "finpipe.db",
                "finpipe.db-shm",
                "finpipe.db-wal",
                "finpipe.db.lock",
                "staging"
            ]
        );
        assert_eq!(fs::read_to_string(state.join("finpipe.db")).unwrap(), "db");
        assert_eq!(
            fs::read_to_string(state.join("staging/job-7-AAPL/2024-01-02.day")).unwrap(),
            "rows"
        );

        let second = migrate_state(&root, MigrateDb::Yes).unwrap();
        assert!(!second.moved_any() && second.left.is_empty(), "{second:?}");
    }

    #[test]
    fn nothing_to_move_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-library");
        let done = migrate_state(&missing, MigrateDb::Yes).unwrap();
        assert!(!done.moved_any() && done.left.is_empty());
        assert!(!missing.exists(), "a missing library stays missing");

        let root = dir.path().join("data");
        touch(&root.join("AAPL/1d/2024.parquet"), "bars");
        migrate_state(&root, MigrateDb::Yes).unwrap();
        assert_eq!(names(&root), ["AAPL"]);
    }

    #[test]
    fn an_explicit_db_moves_only_the_staging_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        old_layout(&root);
        let done = migrate_state(&root, MigrateDb::No).unwrap();
        assert_eq!(
            done.moved,
            [(root.join(".staging"), root.join(".finpipe/staging"))]
        );
        assert!(root.join("finpipe.db").exists() && root.join("finpipe.db.lock").exists());
    }

    #[test]
    fn a_table_in_the_state_folder_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        old_layout(&root);
        touch(&root.join(".finpipe/finpipe.db"), "new");
        let done = migrate_state(&root, MigrateDb::Yes).unwrap();
        for name in ["finpipe.db", "finpipe.db-wal", "finpipe.db-shm"] {
            assert!(done.left.contains(&root.join(name)), "{name}: {done:?}");
            assert!(root.join(name).exists());
        }
        assert_eq!(
            fs::read_to_string(root.join(".finpipe/finpipe.db")).unwrap(),
            "new"
        );
        // The lock and staging have no counterpart yet: they move.
        assert!(root.join(".finpipe/finpipe.db.lock").exists());
        assert!(root.join(".finpipe/staging").exists());
    }

    #[test]
    fn a_crash_between_the_side_files_and_the_table_is_finished_later() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        old_layout(&root);
        // As if a process had moved the WAL and died before the table.
        fs::create_dir_all(root.join(".finpipe")).unwrap();
        fs::rename(
            root.join("finpipe.db-wal"),
            root.join(".finpipe/finpipe.db-wal"),
        )
        .unwrap();
        let done = migrate_state(&root, MigrateDb::Yes).unwrap();
        assert!(done.left.is_empty(), "{done:?}");
        assert_eq!(names(&root), [".finpipe", "AAPL"]);
        assert_eq!(
            fs::read_to_string(root.join(".finpipe/finpipe.db-wal")).unwrap(),
            "wal"
        );
    }

    #[test]
    fn racing_processes_move_everything_once() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("data");
            old_layout(&root);
            let results: Vec<Migration> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| migrate_state(&root, MigrateDb::Yes).unwrap()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut moved: Vec<PathBuf> = results
                .iter()
                .flat_map(|m| m.moved.iter().map(|(old, _)| old.clone()))
                .collect();
            moved.sort();
            moved.dedup();
            assert_eq!(moved.len(), 5, "{results:?}");
            assert!(results.iter().all(|m| m.left.is_empty()), "{results:?}");
            assert_eq!(names(&root), [".finpipe", "AAPL"]);
            assert_eq!(
                fs::read_to_string(root.join(".finpipe/finpipe.db")).unwrap(),
                "db"
            );
        }
    }
}
