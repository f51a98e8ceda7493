//! What the in-process S3 test server (s3s-fs 0.14.1) does with the
//! library's conditional writes (`If-None-Match: *`, `If-Match: <etag>`),
//! which a server must honour atomically for two writers never to lose each
//! other's bars. Measured: s3s-fs honours both headers one request at a
//! time, but checks and writes without a lock, so writers racing with the
//! same ETag all win (8 of 8 here, every run). That is why the conformance
//! suite and the two-writer test run on moto (`FINPIPE_TEST_S3`, see
//! `src/store/blobs/conformance.rs`), which lets exactly one win.

use bytes::Bytes;
use finpipe::config::Secret;
use finpipe::store::blobs::{Blobs, Condition, S3Blobs, S3Config};

use crate::common::s3::start_s3;

fn config(server: &crate::common::s3::S3Server) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint.clone()),
        region: "us-east-1".into(),
        access_key: Some(Secret::new(server.access_key.clone())),
        secret_key: Some(Secret::new(server.secret_key.clone())),
        session_token: None,
        timeout: std::time::Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_honours_if_none_match_and_if_match() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_s3(dir.path()).await;
    let scratch = tempfile::tempdir().unwrap();
    let root = std::path::PathBuf::from(format!("s3://{}/lib", server.bucket));
    // Called from inside this runtime's worker thread, as the CLI does.
    let blobs = S3Blobs::new(&root, &config(&server), scratch.path()).unwrap();
    let path = root.join("A/1d/2024.parquet");

    let first = blobs
        .write(&path, Bytes::from_static(b"one"), Condition::Absent)
        .unwrap();
    let again = blobs.write(&path, Bytes::from_static(b"two"), Condition::Absent);
    assert!(
        again.as_ref().is_err_and(|e| e.is_conflict()),
        "a second If-None-Match: * PUT: {again:?}"
    );
    let second = blobs
        .write(
            &path,
            Bytes::from_static(b"three"),
            Condition::Matches(first.clone()),
        )
        .unwrap();
    let stale = blobs.write(
        &path,
        Bytes::from_static(b"four"),
        Condition::Matches(first),
    );
    assert!(
        stale.as_ref().is_err_and(|e| e.is_conflict()),
        "a stale If-Match PUT: {stale:?}"
    );
    assert_eq!(&blobs.read(&path).unwrap().unwrap().bytes[..], b"three");

    // Writers racing with the same version: how many does s3s-fs let through?
    let barrier = std::sync::Barrier::new(8);
    let winners = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let (blobs, path, second, barrier) = (&blobs, &path, second.clone(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    blobs
                        .write(
                            path,
                            Bytes::from(vec![i; 1 << 16]),
                            Condition::Matches(second),
                        )
                        .is_ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert!(winners >= 1, "at least one racing writer wins");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("s3s-fs 0.14.1: {winners} of 8 racing If-Match writers won");
    }
    drop(blobs); // inside the runtime: must neither block nor panic
}

/// `--data-dir s3://bucket/prefix`: a backfill writes the same library as
/// into a local directory, row for row; `status` and `verify` read it by
/// footers; without `--db` the command says an S3 library keeps no job table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_into_s3_equals_one_into_a_local_directory() {
    let Some(endpoint) = crate::common::s3::moto_endpoint() else {
        return;
    };
    let root = format!(
        "s3://{}/lib/v1",
        crate::common::s3::create_bucket(&endpoint)
    );
    let sim = crate::common::simulator().await;
    let ws = crate::common::Workspace::for_sim(&sim)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
        .env("AWS_REGION", "us-east-1");
    let universe = ws.universe("u", &["AAPL", "X:BTCUSD"]);
    let scratch = ws.join("scratch");
    let scratch = scratch.to_str().unwrap();
    let work = [
        "--timeframes",
        "1m,5m,1d",
        "--start",
        "2024-11-04",
        "--end",
        "2024-11-08",
    ];
    let s3_args = [
        "--data-dir",
        root.as_str(),
        "--db",
        "s3.db",
        "--scratch",
        scratch,
    ];

    let refused = ws
        .run(&[&["backfill", &universe, "--data-dir", &root][..], &work].concat())
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--db"), "{}", refused.stderr);

    let remote = ws
        .run(&[&["backfill", &universe][..], &work, &s3_args].concat())
        .await;
    assert_eq!(remote.code, 0, "{remote:?}");
    assert!(
        !remote.all_output().contains("testing-secret-value"),
        "{remote:?}"
    );
    let local = ws
        .run(&[&["backfill", &universe][..], &work].concat())
        .await;
    assert_eq!(local.code, 0, "{local:?}");

    let s3_library = read_s3_library(&endpoint, &root, &ws.join("reader"));
    let local_library = ws.library("data");
    assert!(!local_library.is_empty());
    assert_eq!(
        s3_library.keys().collect::<Vec<_>>(),
        local_library.keys().collect::<Vec<_>>()
    );
    for (series, bars) in &local_library {
        assert_eq!(&s3_library[series], bars, "{series:?}");
    }
    // Nothing was left in the scratch directory, nothing local under "s3:".
    assert!(!ws.join("s3:").exists());

    let status = ws.run(&[&["status"][..], &s3_args].concat()).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("AAPL"), "{}", status.stdout);
    let verify = ws.run(&[&["verify"][..], &s3_args].concat()).await;
    assert_eq!(verify.code, 0, "{verify:?}");
}

/// The S3 library at `root` as `{(ticker, timeframe): bars}`, read through
/// the store as finpipe reads it.
pub fn read_s3_library(
    endpoint: &str,
    root: &str,
    scratch: &std::path::Path,
) -> std::collections::BTreeMap<(String, String), Vec<finpipe::model::Bar>> {
    let config = S3Config {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".into(),
        access_key: Some(Secret::new("testing")),
        secret_key: Some(Secret::new("testing-secret-value")),
        session_token: None,
        timeout: std::time::Duration::from_secs(30),
    };
    let blobs = S3Blobs::new(std::path::Path::new(root), &config, scratch).unwrap();
    let store = finpipe::store::Store::with_blobs(
        std::sync::Arc::new(blobs),
        finpipe::model::Basis::Unadjusted,
        "test",
    );
    let mut out = std::collections::BTreeMap::new();
    for file in store.scan(None).unwrap() {
        let bars = store
            .read_period(&file.ticker, file.timeframe, &file.period)
            .unwrap();
        out.entry((file.ticker.to_string(), file.timeframe.to_string()))
            .or_insert_with(Vec::new)
            .extend(bars);
    }
    out
}

/// Flat files into an `s3://` library (days staged and files prepared in
/// the local scratch directory, shown with conditional PUTs): the same
/// library as into a local directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_files_into_s3_equal_flat_files_into_a_local_directory() {
    use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, populate};
    let Some(endpoint) = crate::common::s3::moto_endpoint() else {
        return;
    };
    let root = format!("s3://{}/flat", crate::common::s3::create_bucket(&endpoint));
    let sim = crate::common::simulator().await;
    let files = tempfile::tempdir().unwrap();
    let flat = start_s3(files.path()).await;
    let datasets = [
        (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
        (FlatDataset::UsStocksSip, FlatKind::DayAggs),
    ];
    let (from, to) = ("2024-11-04", "2024-11-08");
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    populate(
        sim.market(),
        files.path(),
        &flat.bucket,
        &datasets,
        day(from),
        day(to),
        Some(&["AAPL", "MSFT"]),
    )
    .unwrap();
    let ws = crate::common::Workspace::for_sim(&sim)
        .env("MASSIVE_S3_ENDPOINT", &flat.endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", &flat.access_key)
        .env("MASSIVE_S3_SECRET_KEY", &flat.secret_key)
        .env("FINPIPE_S3_ENDPOINT", &endpoint)
        .env("FINPIPE_S3_ACCESS_KEY_ID", "testing")
        .env("FINPIPE_S3_SECRET_ACCESS_KEY", "testing-secret-value");
    let universe = ws.universe("u", &["AAPL", "MSFT"]);
    let scratch = ws.join("scratch");
    let work = [
        "backfill",
        universe.as_str(),
        "--timeframes",
        "1m,5m,1d",
        "--start",
        from,
        "--end",
        to,
        "--source",
        "flatfiles",
    ];
    let remote = ws
        .run(
            &[
                &work[..],
                &[
                    "--data-dir",
                    &root,
                    "--db",
                    "s3.db",
                    "--scratch",
                    scratch.to_str().unwrap(),
                ],
            ]
            .concat(),
        )
        .await;
    assert_eq!(remote.code, 0, "{remote:?}");
    assert!(remote.stdout.contains("flat-file job"), "{}", remote.stdout);
    let local = ws.run(&work).await;
    assert_eq!(local.code, 0, "{local:?}");
    let local_library = ws.library("data");
    assert_eq!(local_library.len(), 6, "{:?}", local_library.keys());
    let s3_library = read_s3_library(&endpoint, &root, &ws.join("reader"));
    assert_eq!(s3_library, local_library);
    // Nothing prepared is left behind in the scratch directory.
    let left: Vec<_> = walk(&scratch)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
