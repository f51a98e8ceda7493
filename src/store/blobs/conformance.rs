//! The behaviour every [`Blobs`] implementation must show, written once and
//! run against each (the local directory here; S3 against a real server,
//! moto, through `FINPIPE_TEST_S3`). One function per behaviour; the
//! [`conformance_tests`] macro makes one test of each for a backend.
//!
//! Each function gets a fresh, empty library and may write anywhere below
//! its root.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Barrier;

use bytes::Bytes;

use super::*;

fn at(blobs: &dyn Blobs, relative: &str) -> PathBuf {
    blobs.root().join(relative)
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn read_text(blobs: &dyn Blobs, path: &Path) -> Option<(String, Version)> {
    blobs.read(path).unwrap().map(|blob| {
        (
            String::from_utf8(blob.bytes.to_vec()).unwrap(),
            blob.version,
        )
    })
}

pub(crate) fn read_missing_is_none(blobs: &dyn Blobs) {
    let path = at(blobs, "AAPL/1m/2024-01.parquet");
    assert!(blobs.read(&path).unwrap().is_none());
    assert!(blobs.read_tail(&path, 100).unwrap().is_none());
    assert!(!blobs.exists(&path).unwrap());
}

pub(crate) fn write_any_then_read_back(blobs: &dyn Blobs) {
    let path = at(blobs, "AAPL/1m/2024-01.parquet");
    let written = blobs.write(&path, bytes("first"), Condition::Any).unwrap();
    let (text, version) = read_text(blobs, &path).unwrap();
    assert_eq!(text, "first");
    assert_eq!(
        version, written,
        "the write returns the version a read sees"
    );
    assert!(blobs.exists(&path).unwrap());
    let again = blobs
        .write(&path, bytes("second!"), Condition::Any)
        .unwrap();
    assert_ne!(again, written);
    assert_eq!(read_text(blobs, &path).unwrap().0, "second!");
}

pub(crate) fn absent_on_existing_conflicts(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1d/2024.parquet");
    blobs.write(&path, bytes("one"), Condition::Absent).unwrap();
    let err = blobs
        .write(&path, bytes("two"), Condition::Absent)
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(matches!(err, BlobError::Conflict { .. }));
    assert_eq!(read_text(blobs, &path).unwrap().0, "one");
}

pub(crate) fn matches_stale_conflicts(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1d/2024.parquet");
    let old = blobs.write(&path, bytes("one"), Condition::Any).unwrap();
    blobs.write(&path, bytes("two"), Condition::Any).unwrap();
    let err = blobs
        .write(&path, bytes("three"), Condition::Matches(old.clone()))
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(read_text(blobs, &path).unwrap().0, "two");
    // A version of a file that is gone conflicts too.
    blobs.remove(&path).unwrap();
    let err = blobs
        .write(&path, bytes("four"), Condition::Matches(old))
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(blobs.read(&path).unwrap().is_none());
}

pub(crate) fn matches_current_succeeds_and_changes_version(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1d/2024.parquet");
    blobs.write(&path, bytes("one"), Condition::Any).unwrap();
    let (_, current) = read_text(blobs, &path).unwrap();
    let next = blobs
        .write(&path, bytes("two"), Condition::Matches(current.clone()))
        .unwrap();
    assert_ne!(next, current);
    let (text, read) = read_text(blobs, &path).unwrap();
    assert_eq!((text.as_str(), &read), ("two", &next));
    // (The same bytes again may keep the version: an S3 ETag is the MD5 of
    // the content. A merge based on equal content is still right.)
    let third = blobs
        .write(&path, bytes("three"), Condition::Matches(next.clone()))
        .unwrap();
    assert_ne!(third, next);
}

/// Writers that all read the same version: exactly one replaces the file.
pub(crate) fn concurrent_matches_exactly_one_wins(blobs: &dyn Blobs) {
    const WRITERS: usize = 4;
    let path = at(blobs, "A/1m/2024-03.parquet");
    let base = blobs.write(&path, bytes("base"), Condition::Any).unwrap();
    let barrier = Barrier::new(WRITERS);
    let outcomes: Vec<Result<Version, BlobError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (barrier, path, base) = (&barrier, &path, base.clone());
                scope.spawn(move || {
                    barrier.wait();
                    blobs.write(
                        path,
                        bytes(&format!("writer {i}")),
                        Condition::Matches(base),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(e) = outcome {
            assert!(e.is_conflict(), "{e}");
        }
    }
    let (text, _) = read_text(blobs, &path).unwrap();
    assert_eq!(text, format!("writer {}", winners[0]));
}

pub(crate) fn list_one_level_with_folders(blobs: &dyn Blobs) {
    for name in [
        "AAPL/1m/2024-01.parquet",
        "AAPL/1m/2024-02.parquet",
        "AAPL/1d/2024.parquet",
        "MSFT/1d/2024.parquet",
        "top.txt",
    ] {
        blobs
            .write(&at(blobs, name), bytes(name), Condition::Any)
            .unwrap();
    }
    let mut root = blobs.list(blobs.root()).unwrap();
    root.sort();
    let entry = |name: &str, is_dir| Entry {
        name: name.to_owned(),
        is_dir,
    };
    assert_eq!(
        root,
        [
            entry("AAPL", true),
            entry("MSFT", true),
            entry("top.txt", false)
        ]
    );
    let mut aapl = blobs.list(&at(blobs, "AAPL")).unwrap();
    aapl.sort();
    assert_eq!(aapl, [entry("1d", true), entry("1m", true)]);
    let mut months = blobs.list(&at(blobs, "AAPL/1m")).unwrap();
    months.sort();
    assert_eq!(
        months,
        [
            entry("2024-01.parquet", false),
            entry("2024-02.parquet", false)
        ]
    );
    assert!(blobs.list(&at(blobs, "NONE")).unwrap().is_empty());
    // A prefix of a name is not a folder.
    assert!(blobs.list(&at(blobs, "AAP")).unwrap().is_empty());
}

pub(crate) fn remove_is_idempotent(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1d/2024.parquet");
    blobs.write(&path, bytes("x"), Condition::Any).unwrap();
    blobs.remove(&path).unwrap();
    assert!(!blobs.exists(&path).unwrap());
    blobs.remove(&path).unwrap();
    blobs.remove(&at(blobs, "never/there.parquet")).unwrap();
}

pub(crate) fn rename_moves_the_file(blobs: &dyn Blobs) {
    let from = at(blobs, "A/1d/2024.parquet");
    let to = at(blobs, ".finpipe/quarantine/A/1d/2024.parquet.quarantined");
    blobs.write(&from, bytes("bad"), Condition::Any).unwrap();
    blobs.rename(&from, &to).unwrap();
    assert!(!blobs.exists(&from).unwrap());
    assert_eq!(read_text(blobs, &to).unwrap().0, "bad");
    // Replacing a target that exists.
    blobs.write(&from, bytes("worse"), Condition::Any).unwrap();
    blobs.rename(&from, &to).unwrap();
    assert_eq!(read_text(blobs, &to).unwrap().0, "worse");
}

pub(crate) fn tail_reads_give_size_and_end(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1d/2024.parquet");
    blobs
        .write(&path, bytes("0123456789"), Condition::Any)
        .unwrap();
    let tail = blobs.read_tail(&path, 4).unwrap().unwrap();
    assert_eq!((tail.size, &tail.bytes[..]), (10, &b"6789"[..]));
    let tail = blobs.read_tail(&path, 10).unwrap().unwrap();
    assert_eq!((tail.size, &tail.bytes[..]), (10, &b"0123456789"[..]));
    let tail = blobs.read_tail(&path, 1 << 20).unwrap().unwrap();
    assert_eq!((tail.size, &tail.bytes[..]), (10, &b"0123456789"[..]));
}

pub(crate) fn prepared_writes_show_at_commit_or_never(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1m/2024-03.parquet");
    let prepared = blobs.prepare(&path, b"prepared").unwrap();
    assert!(
        !blobs.exists(&path).unwrap(),
        "nothing shows before the commit"
    );
    assert_eq!(&blobs.read_prepared(&prepared).unwrap()[..], b"prepared");
    let version = blobs.commit(&prepared, &path, Condition::Absent).unwrap();
    let (text, read) = read_text(blobs, &path).unwrap();
    assert_eq!((text.as_str(), read), ("prepared", version));
    assert!(!prepared.temp.exists(), "the prepared file is gone");

    let discarded = blobs.prepare(&path, b"discarded").unwrap();
    let temp = discarded.temp.clone();
    blobs.discard(discarded);
    assert!(!temp.exists());
    assert_eq!(read_text(blobs, &path).unwrap().0, "prepared");
    // Nothing but the file itself in its folder.
    let names: Vec<String> = blobs
        .list(&at(blobs, "A/1m"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["2024-03.parquet"]);
}

pub(crate) fn prepared_commit_conflicts_when_the_file_changed(blobs: &dyn Blobs) {
    let path = at(blobs, "A/1m/2024-03.parquet");
    let base = blobs.write(&path, bytes("base"), Condition::Any).unwrap();
    let prepared = blobs.prepare(&path, b"mine").unwrap();
    blobs
        .write(&path, bytes("theirs"), Condition::Matches(base.clone()))
        .unwrap();
    let err = blobs
        .commit(&prepared, &path, Condition::Matches(base))
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(read_text(blobs, &path).unwrap().0, "theirs");
    // Kept for a retry: still readable, then discarded.
    assert_eq!(&blobs.read_prepared(&prepared).unwrap()[..], b"mine");
    let absent = blobs
        .commit(&prepared, &path, Condition::Absent)
        .unwrap_err();
    assert!(absent.is_conflict(), "{absent}");
    blobs.discard(prepared);
}

/// One `#[test]` per behaviour above for the backend `setup` gives:
/// `setup()` returns `Option<(blobs, guard)>` (`None`: skipped, see
/// [`s3_endpoint`]); the guard keeps the library alive for the test.
macro_rules! conformance_tests {
    ($setup:expr) => {
        $crate::store::blobs::conformance::conformance_tests!(@each $setup;
            read_missing_is_none,
            write_any_then_read_back,
            absent_on_existing_conflicts,
            matches_stale_conflicts,
            matches_current_succeeds_and_changes_version,
            concurrent_matches_exactly_one_wins,
            list_one_level_with_folders,
            remove_is_idempotent,
            rename_moves_the_file,
            tail_reads_give_size_and_end,
            prepared_writes_show_at_commit_or_never,
            prepared_commit_conflicts_when_the_file_changed,
        );
    };
    (@each $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some((blobs, _guard)) = $setup() {
                    $crate::store::blobs::conformance::$name(&blobs);
                }
            }
        )*
    };
}
pub(crate) use conformance_tests;

/// The S3 endpoint tests use (`FINPIPE_TEST_S3`, e.g. `http://127.0.0.1:5055`,
/// a moto server). Missing: under `CI=true` the test fails saying how to
/// start one; elsewhere it says so and the test returns (`None`).
pub(crate) fn s3_endpoint() -> Option<String> {
    if let Some(url) = std::env::var("FINPIPE_TEST_S3")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Some(url.trim().trim_end_matches('/').to_owned());
    }
    let how = "FINPIPE_TEST_S3 is not set: start an S3 server that honours If-Match, e.g. \
               `python3 -m venv /tmp/moto && /tmp/moto/bin/pip install 'moto[server]' && \
               /tmp/moto/bin/moto_server -H 127.0.0.1 -p 5055 &`, then \
               `export FINPIPE_TEST_S3=http://127.0.0.1:5055` (.ci/run does this)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{how}");
    #[allow(clippy::print_stderr)] // a test's notice that it did not run
    {
        eprintln!("skipped: {how}");
    }
    None
}

/// Creates a fresh bucket on the test server (moto accepts unsigned
/// requests) and returns its name.
pub(crate) fn create_bucket(endpoint: &str) -> String {
    let bucket = format!("fp-{:016x}", fastrand::u64(..));
    let host = endpoint
        .strip_prefix("http://")
        .expect("the test server speaks plain http");
    let mut stream = TcpStream::connect(host).expect("connect to the test S3 server");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket: {answer}"
    );
    bucket
}

/// Settings for the test server: path-style over http, any keys.
pub(crate) fn test_config(endpoint: &str) -> S3Config {
    S3Config {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".into(),
        access_key: Some(crate::secret::Secret::new("testing-access")),
        secret_key: Some(crate::secret::Secret::new("testing-secret")),
        session_token: None,
        timeout: std::time::Duration::from_secs(30),
    }
}

/// A fresh S3 library (its own bucket, prefix `lib/v1`) on the test server,
/// scratch in a temporary directory (the guard).
pub(crate) fn s3_library() -> Option<(S3Blobs, tempfile::TempDir)> {
    let endpoint = s3_endpoint()?;
    let bucket = create_bucket(&endpoint);
    let scratch = tempfile::tempdir().unwrap();
    let root = PathBuf::from(format!("s3://{bucket}/lib/v1"));
    let blobs = S3Blobs::new(&root, &test_config(&endpoint), scratch.path()).unwrap();
    Some((blobs, scratch))
}

mod local_suite {
    fn setup() -> Option<(super::LocalBlobs, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let blobs = super::LocalBlobs::new(&dir.path().join("library"));
        Some((blobs, dir))
    }
    super::conformance_tests!(setup);
}

mod s3_suite {
    super::conformance_tests!(super::s3_library);
}
