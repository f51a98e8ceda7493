//! Tests of the S3 client (`s3.rs`, `read.rs`) over object_store's in-memory store.

use std::convert::Infallible;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;
use crate::flatfiles::{DayFile, DecodeError};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn store_with(keys: &[(&str, Vec<u8>)]) -> FlatFiles {
    let store = InMemory::new();
    for (key, bytes) in keys {
        store
            .put(&Path::from(*key), PutPayload::from(bytes.clone()))
            .await
            .unwrap();
    }
    FlatFiles::from_store(Arc::new(store), "memory")
}

fn gz(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn months_list_sorted_and_ignore_foreign_keys() {
    let files = store_with(&[
        (
            "global_crypto/day_aggs_v1/2024/08/2024-08-09.csv.gz",
            vec![1],
        ),
        (
            "global_crypto/day_aggs_v1/2024/08/2024-08-07.csv.gz",
            vec![1, 2],
        ),
        ("global_crypto/day_aggs_v1/2024/08/notes.txt", vec![]),
        (
            "global_crypto/day_aggs_v1/2024/08/2024-09-01.csv.gz",
            vec![],
        ),
        (
            "global_crypto/day_aggs_v1/2024/09/2024-09-01.csv.gz",
            vec![],
        ),
        (
            "global_crypto/minute_aggs_v1/2024/08/2024-08-08.csv.gz",
            vec![],
        ),
    ])
    .await;
    let listed = files
        .list_month(Dataset::GlobalCrypto, FileKind::DayAggs, 2024, 8)
        .await
        .unwrap();
    let dates: Vec<NaiveDate> = listed.iter().map(|f| f.date).collect();
    assert_eq!(dates, [d("2024-08-07"), d("2024-08-09")]);
    assert_eq!(listed[0].size, 2);
    assert!(listed[0].etag.is_some());
    assert_eq!(
        listed[0].key,
        "global_crypto/day_aggs_v1/2024/08/2024-08-07.csv.gz"
    );

    let range = files
        .list_range(
            Dataset::GlobalCrypto,
            FileKind::DayAggs,
            d("2024-08-08"),
            d("2024-09-30"),
        )
        .await
        .unwrap();
    let dates: Vec<NaiveDate> = range.iter().map(|f| f.date).collect();
    assert_eq!(dates, [d("2024-08-09"), d("2024-09-01")]);

    let err = files
        .list_month(Dataset::GlobalCrypto, FileKind::DayAggs, 2024, 13)
        .await
        .unwrap_err();
    assert!(matches!(err, FlatFileError::Config { .. }), "{err}");
}

#[test]
fn months_between_spans_years() {
    assert_eq!(
        months_between(d("2023-11-30"), d("2024-02-01")),
        [(2023, 11), (2023, 12), (2024, 1), (2024, 2)]
    );
    assert!(months_between(d("2024-02-01"), d("2024-01-01")).is_empty());
}

#[tokio::test]
async fn head_tells_a_missing_day_from_a_present_one() {
    let key = "us_stocks_sip/day_aggs_v1/2024/01/2024-01-02.csv.gz";
    let files = store_with(&[(key, vec![0; 10])]).await;
    let found = files
        .head(Dataset::UsStocksSip, FileKind::DayAggs, d("2024-01-02"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.key.as_str(), found.size), (key, 10));
    let missing = files
        .head(Dataset::UsStocksSip, FileKind::DayAggs, d("2024-01-01"))
        .await
        .unwrap();
    assert_eq!(missing, None);
}

#[tokio::test]
async fn read_day_streams_runs_and_reports_the_etag() {
    let text = "ticker,open,close,high,low,window_start\n\
                I:A,1,2,3,0.5,1679988600000000000\nI:B,1,2,3,0.5,1679988600000000000\n";
    let key = "us_indices/minute_aggs_v1/2023/03/2023-03-28.csv.gz";
    let files = store_with(&[(key, gz(text))]).await;
    let file = files
        .head(Dataset::UsIndices, FileKind::MinuteAggs, d("2023-03-28"))
        .await
        .unwrap()
        .unwrap();
    let mut runs = Vec::new();
    let stats = files
        .read_day(
            &file,
            |t| t == "I:B",
            |run| {
                runs.push(run);
                Ok::<(), Infallible>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].ticker.as_str(), "I:B");
    assert_eq!(runs[0].bars[0].timestamp, 1_679_988_600_000);
    assert_eq!(stats.rows, 2);
    assert_eq!(stats.etag, file.etag);
    assert_eq!(stats.compressed_bytes, file.size);
}

#[tokio::test]
async fn reading_a_missing_day_is_not_found() {
    let files = store_with(&[]).await;
    let file = DayFile::new(Dataset::UsIndices, FileKind::DayAggs, d("2024-01-01"));
    let err = files
        .read_day(&file, |_| true, |_| Ok::<(), Infallible>(()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::File(FlatFileError::NotFound { .. })),
        "{err}"
    );
}

#[test]
fn settings_are_checked_and_never_shown() {
    let settings = S3Settings::new(
        Secret::new("AKIAEXAMPLEACCESS"),
        Secret::new("very-secret-value-123"),
    );
    assert_eq!(settings.endpoint, "https://files.massive.com");
    assert_eq!(
        (settings.bucket.as_str(), settings.region.as_str()),
        ("flatfiles", "us-east-1")
    );
    let shown = format!("{settings:?}");
    assert!(
        !shown.contains("very-secret") && !shown.contains("AKIAEXAMPLE"),
        "{shown}"
    );
    let client = FlatFiles::new(settings.clone()).unwrap();
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("very-secret") && !shown.contains("AKIAEXAMPLE"),
        "{shown}"
    );

    let bad = S3Settings {
        endpoint: "files.massive.com".into(),
        ..settings.clone()
    };
    assert!(matches!(
        FlatFiles::new(bad),
        Err(FlatFileError::Config {
            what: "endpoint",
            ..
        })
    ));
    let empty = S3Settings {
        secret_key: Secret::new(" "),
        ..settings
    };
    let err = FlatFiles::new(empty).unwrap_err();
    assert!(err.to_string().contains("MASSIVE_S3_SECRET_KEY"), "{err}");
}

#[test]
fn status_codes_are_found_in_error_texts() {
    assert_eq!(
        status_of("Generic S3 error: Server returned non-2xx status code: 503 Service Unavailable"),
        Some(503)
    );
    assert_eq!(status_of("no status here"), None);
}

#[test]
fn futures_can_move_between_threads() {
    fn is_send<T: Send>(_: T) {}
    let files = FlatFiles::from_store(Arc::new(InMemory::new()), "memory");
    let file = DayFile::new(Dataset::UsIndices, FileKind::DayAggs, d("2024-01-02"));
    is_send(files.head(Dataset::UsIndices, FileKind::DayAggs, d("2024-01-02")));
    is_send(files.list_range(
        Dataset::UsIndices,
        FileKind::DayAggs,
        d("2024-01-02"),
        d("2024-03-02"),
    ));
    is_send(files.read_day(&file, |_| true, |_| Ok::<(), Infallible>(())));
}

#[test]
fn errors_are_classified_for_retrying() {
    let context = ErrorContext {
        endpoint: "https://files.example".into(),
        scrub: vec![Secret::new("s3cr3t")],
    };
    let connect = object_store::Error::Generic {
        store: "S3",
        source: Box::new(HttpError::new(
            HttpErrorKind::Connect,
            std::io::Error::other("connection refused"),
        )),
    };
    let err = context.map("k", connect);
    assert!(
        matches!(err, FlatFileError::S3 { .. }) && err.is_transient(),
        "{err}"
    );

    let unavailable = object_store::Error::Generic {
        store: "S3",
        source: "Server returned non-2xx status code: 503 Service Unavailable: s3cr3t".into(),
    };
    let err = context.map("k", unavailable);
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");

    let denied = object_store::Error::Generic {
        store: "S3",
        source: "Server returned non-2xx status code: 403 Forbidden: <Code>AccessDenied</Code>"
            .into(),
    };
    let err = context.map("k", denied);
    assert!(
        matches!(&err, FlatFileError::Forbidden { reason, .. } if reason == "AccessDenied"),
        "{err}"
    );

    let bucket = object_store::Error::NotFound {
        path: "k".into(),
        source: "<Code>NoSuchBucket</Code>".into(),
    };
    let err = context.map("k", bucket);
    assert!(
        matches!(
            err,
            FlatFileError::S3 {
                transient: false,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn settings_come_from_the_configuration_when_both_keys_are_set() {
    use crate::config::{Config, Environment, Overrides};
    use std::collections::HashMap;
    let env = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Environment::from_maps(map, HashMap::new())
    };
    let config = Config::resolve(
        &Overrides::default(),
        &env(&[
            ("MASSIVE_S3_ACCESS_KEY", "ak"),
            ("MASSIVE_S3_SECRET_KEY", "sk"),
            ("MASSIVE_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]),
    )
    .unwrap();
    let settings = S3Settings::from_config(&config).unwrap();
    assert_eq!(settings.endpoint, "http://127.0.0.1:9000");
    assert_eq!(settings.secret_key.expose(), "sk");
    assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
    let config = Config::resolve(
        &Overrides::default(),
        &env(&[("MASSIVE_S3_ACCESS_KEY", "ak")]),
    )
    .unwrap();
    assert_eq!(S3Settings::from_config(&config), None);
}
