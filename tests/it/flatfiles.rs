//! Flat files against a real S3 server (s3s-fs, in process): listing, HEAD,
//! decoding the fixture files at the keys they stand for, filters, truncated
//! and malformed files, wrong credentials.

use std::convert::Infallible;
use std::io::Read;

use chrono::NaiveDate;
use finpipe::config::Secret;
use finpipe::flatfiles::{
    Dataset, DayFile, FileKind, FlatFileError, FlatFiles, TickerRun, object_key,
};
use finpipe::model::Bar;
use flate2::read::GzDecoder;

use crate::common::flatfiles::{d, fixture, gz, head, minute_file, read_all, server, settings};

#[tokio::test]
async fn a_month_lists_the_days_that_have_files() {
    let (_dir, server, client) = server().await;
    let listing: serde_json::Value =
        serde_json::from_slice(&fixture("global_crypto_day_aggs_v1_2024-08.json")).unwrap();
    let keys: Vec<&str> = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        let body = format!(
            "ticker,volume,open,close,high,low,window_start,transactions\nX:BTCUSD,{i},1,1,1,1,0,1\n"
        );
        server.seed(key, &gz(&body));
    }
    server.seed("global_crypto/day_aggs_v1/2024/08/README.txt", b"not a day");
    server.seed(
        "global_crypto/day_aggs_v1/2024/09/2024-09-01.csv.gz",
        &gz(""),
    );

    let files = client
        .list_month(Dataset::GlobalCrypto, FileKind::DayAggs, 2024, 8)
        .await
        .unwrap();
    let expected: Vec<NaiveDate> = d("2024-08-07").iter_days().take(25).collect();
    let dates: Vec<NaiveDate> = files.iter().map(|f| f.date).collect();
    assert_eq!(dates, expected, "every calendar day 08-07..08-31");
    assert_eq!(files.len(), keys.len());
    for file in &files {
        assert_eq!(file.key, object_key(file.dataset, file.kind, file.date));
        let on_disk = std::fs::metadata(server.object_path(&file.key))
            .unwrap()
            .len();
        assert_eq!(file.size, on_disk);
    }

    let range = client
        .list_range(
            Dataset::GlobalCrypto,
            FileKind::DayAggs,
            d("2024-08-30"),
            d("2024-09-05"),
        )
        .await
        .unwrap();
    let dates: Vec<NaiveDate> = range.iter().map(|f| f.date).collect();
    assert_eq!(dates, [d("2024-08-30"), d("2024-08-31"), d("2024-09-01")]);

    let empty = client
        .list_month(Dataset::GlobalCrypto, FileKind::DayAggs, 2024, 7)
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn head_of_a_missing_day_is_none() {
    let (_dir, server, client) = server().await;
    let key = object_key(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-03-28"));
    server.seed(&key, &fixture("us_stocks_sip_day_aggs_v1_example.csv.gz"));
    let found = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::DayAggs,
        "2023-03-28",
    )
    .await;
    assert_eq!((found.key.as_str(), found.size), (key.as_str(), 220));
    let holiday = client
        .head(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-04-07"))
        .await
        .unwrap();
    assert_eq!(
        holiday, None,
        "Good Friday has no file, and that is not an error"
    );

    let missing = DayFile::new(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-04-07"));
    let err = read_all(&client, &missing).await.unwrap_err();
    assert!(matches!(err, FlatFileError::NotFound { .. }), "{err}");
    assert!(!err.is_transient());
}

/// The fixture's rows as plain text fields, read without the crate's decoder.
fn fixture_rows(name: &str) -> Vec<Vec<String>> {
    let mut text = String::new();
    GzDecoder::new(&fixture(name)[..])
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

fn field<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let index = header.iter().position(|h| h == name).unwrap();
    &row[index]
}

/// Checks every decoded bar against the fixture's text: prices, volume,
/// transactions, and the timestamp `stamp` gives for a row.
fn check_against_fixture(runs: &[TickerRun], name: &str, stamp: impl Fn(&str) -> i64) {
    let rows = fixture_rows(name);
    let (header, rows) = rows.split_first().unwrap();
    let decoded: Vec<(&str, &Bar)> = runs
        .iter()
        .flat_map(|r| r.bars.iter().map(move |b| (r.ticker.as_str(), b)))
        .collect();
    assert_eq!(decoded.len(), rows.len(), "{name}");
    let has_volume = header.iter().any(|h| h == "volume");
    for ((ticker, bar), row) in decoded.iter().zip(rows) {
        let num = |column: &str| field(header, row, column).parse::<f64>().unwrap();
        assert_eq!(*ticker, field(header, row, "ticker"));
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (num("open"), num("high"), num("low"), num("close"))
        );
        assert_eq!(bar.timestamp, stamp(field(header, row, "window_start")));
        assert_eq!(bar.vwap, None);
        if has_volume {
            assert_eq!(bar.volume, Some(num("volume")));
            let transactions = field(header, row, "transactions").parse::<i64>().unwrap();
            assert_eq!(bar.transactions, Some(transactions));
        } else {
            assert_eq!((bar.volume, bar.transactions), (None, None), "indices");
        }
    }
}

fn minute_stamp(window_start: &str) -> i64 {
    window_start.parse::<i64>().unwrap() / 1_000_000
}

#[tokio::test]
async fn fixture_files_decode_at_the_keys_they_stand_for() {
    let (_dir, server, client) = server().await;
    let cases = [
        (
            "us_stocks_sip_minute_aggs_v1_example.csv.gz",
            Dataset::UsStocksSip,
            FileKind::MinuteAggs,
            "2025-04-16",
        ),
        (
            "us_stocks_sip_day_aggs_v1_example.csv.gz",
            Dataset::UsStocksSip,
            FileKind::DayAggs,
            "2023-03-28",
        ),
        (
            "us_indices_minute_aggs_v1_example.csv.gz",
            Dataset::UsIndices,
            FileKind::MinuteAggs,
            "2023-03-28",
        ),
        (
            "us_indices_day_aggs_v1_example.csv.gz",
            Dataset::UsIndices,
            FileKind::DayAggs,
            "2023-12-05",
        ),
    ];
    for (name, dataset, kind, date) in cases {
        server.seed(&object_key(dataset, kind, d(date)), &fixture(name));
    }

    // Stocks minutes: one AAPL run of 8 bars; t = window_start / 1e6.
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2025-04-16",
    )
    .await;
    let runs = read_all(&client, &file).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].ticker.as_str(), runs[0].bars.len()), ("AAPL", 8));
    assert_eq!(runs[0].bars[0].timestamp, 1_744_792_500_000);
    check_against_fixture(&runs, cases[0].0, minute_stamp);

    // Stocks days: 00:00 New York of the key's date, whatever window_start says.
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::DayAggs,
        "2023-03-28",
    )
    .await;
    let runs = read_all(&client, &file).await.unwrap();
    let tickers: Vec<&str> = runs.iter().map(|r| r.ticker.as_str()).collect();
    assert_eq!(tickers, ["BCC", "CLDX", "TRND", "BFS", "NHTC"]);
    check_against_fixture(&runs, cases[1].0, |_| 1_679_976_000_000);

    // Indices minutes: no volume or transactions.
    let file = head(
        &client,
        Dataset::UsIndices,
        FileKind::MinuteAggs,
        "2023-03-28",
    )
    .await;
    let runs = read_all(&client, &file).await.unwrap();
    assert_eq!((runs.len(), runs[0].bars.len()), (1, 5));
    check_against_fixture(&runs, cases[2].0, minute_stamp);

    // Indices days: 2023-12-05 00:00 EST = 05:00Z (the file says 06:00Z).
    let file = head(&client, Dataset::UsIndices, FileKind::DayAggs, "2023-12-05").await;
    let runs = read_all(&client, &file).await.unwrap();
    assert_eq!(runs.len(), 5);
    check_against_fixture(&runs, cases[3].0, |_| 1_701_752_400_000);
}

#[tokio::test]
async fn a_filter_keeps_only_wanted_tickers() {
    let (_dir, server, client) = server().await;
    let key = object_key(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-03-28"));
    server.seed(&key, &fixture("us_stocks_sip_day_aggs_v1_example.csv.gz"));
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::DayAggs,
        "2023-03-28",
    )
    .await;
    let mut kept = Vec::new();
    let stats = client
        .read_day(
            &file,
            |t| t == "BCC" || t == "NHTC",
            |run| {
                kept.push(run.ticker.to_string());
                Ok::<(), Infallible>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(kept, ["BCC", "NHTC"]);
    assert_eq!((stats.rows, stats.kept_rows, stats.runs), (5, 2, 2));
}

#[tokio::test]
async fn a_truncated_object_is_an_error_not_a_shorter_day() {
    let (_dir, server, client) = server().await;
    let (text, _) = minute_file(200, 60);
    let bytes = gz(&text);
    for (date, cut) in [
        ("2024-01-02", bytes.len() / 2),
        ("2024-01-03", bytes.len() - 4),
    ] {
        let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d(date));
        server.seed(&key, &bytes[..cut]);
        let file = head(&client, Dataset::UsStocksSip, FileKind::MinuteAggs, date).await;
        let err = read_all(&client, &file).await.unwrap_err();
        assert!(
            matches!(err, FlatFileError::Truncated { .. }),
            "{date}: {err}"
        );
        assert!(err.to_string().contains(&key), "{err}");
    }
    let fixture_bytes = fixture("us_indices_minute_aggs_v1_example.csv.gz");
    let key = object_key(Dataset::UsIndices, FileKind::MinuteAggs, d("2023-03-28"));
    server.seed(&key, &fixture_bytes[..fixture_bytes.len() - 20]);
    let file = head(
        &client,
        Dataset::UsIndices,
        FileKind::MinuteAggs,
        "2023-03-28",
    )
    .await;
    let err = read_all(&client, &file).await.unwrap_err();
    assert!(matches!(err, FlatFileError::Truncated { .. }), "{err}");
}

#[tokio::test]
async fn malformed_objects_say_what_is_wrong() {
    let (_dir, server, client) = server().await;
    let no_close = "ticker,volume,open,high,low,window_start,transactions\nA,1,1,1,1,0,1\n";
    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-02"));
    server.seed(&key, &gz(no_close));
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-02",
    )
    .await;
    let err = read_all(&client, &file).await.unwrap_err();
    assert!(
        matches!(&err, FlatFileError::MissingColumn { column: "close", key: k, .. } if *k == key),
        "{err}"
    );

    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-03"));
    server.seed(&key, no_close.as_bytes());
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-03",
    )
    .await;
    let err = read_all(&client, &file).await.unwrap_err();
    assert!(
        matches!(err, FlatFileError::Corrupt { .. }),
        "not gzip: {err}"
    );
}

#[tokio::test]
async fn wrong_keys_are_forbidden_and_never_shown() {
    let (_dir, server, _client) = server().await;
    let key = object_key(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-03-28"));
    server.seed(&key, &fixture("us_stocks_sip_day_aggs_v1_example.csv.gz"));
    let wrong_secret = "WRONG-secret-never-shown-42";
    let client = FlatFiles::new(settings(&server, wrong_secret)).unwrap();
    let mut wrong_access = settings(&server, &server.secret_key);
    wrong_access.access_key = Secret::new("unknown-access-key-77");
    let clients = [client, FlatFiles::new(wrong_access).unwrap()];
    for client in &clients {
        let listed = client
            .list_month(Dataset::UsStocksSip, FileKind::DayAggs, 2023, 3)
            .await
            .unwrap_err();
        let headed = client
            .head(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-03-28"))
            .await
            .unwrap_err();
        let file = DayFile::new(Dataset::UsStocksSip, FileKind::DayAggs, d("2023-03-28"));
        let read = read_all(client, &file).await.unwrap_err();
        for err in [listed, headed, read] {
            let shown = format!("{err} {err:?}");
            assert!(matches!(err, FlatFileError::Forbidden { .. }), "{shown}");
            assert!(!err.is_transient());
            assert!(shown.contains("MASSIVE_S3_SECRET_KEY"), "{shown}");
            for secret in [
                wrong_secret,
                server.secret_key.as_str(),
                "unknown-access-key-77",
            ] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
}
