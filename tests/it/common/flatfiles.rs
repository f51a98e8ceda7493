//! Helpers for the flat-file tests: fixtures, gzip, generated minute files,
//! and a client for an in-process S3 server.

use std::convert::Infallible;
use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;
use finpipe::config::Secret;
use finpipe::flatfiles::{
    Dataset, DayFile, DecodeError, FileKind, FlatFileError, FlatFiles, S3Settings, TickerRun,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::TempDir;

use super::s3::{S3Server, start_s3};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/flatfiles");

pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

pub fn gz(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// A server on a fresh directory, and a client for it.
pub async fn server() -> (TempDir, S3Server, FlatFiles) {
    let dir = TempDir::new().unwrap();
    let server = start_s3(dir.path()).await;
    let client = FlatFiles::new(settings(&server, &server.secret_key)).unwrap();
    (dir, server, client)
}

pub fn settings(server: &S3Server, secret: &str) -> S3Settings {
    S3Settings {
        endpoint: server.endpoint.clone(),
        bucket: server.bucket.clone(),
        ..S3Settings::new(Secret::new(&server.access_key), Secret::new(secret))
    }
}

/// Every run of `file`, all tickers wanted.
pub async fn read_all(client: &FlatFiles, file: &DayFile) -> Result<Vec<TickerRun>, FlatFileError> {
    let mut runs = Vec::new();
    let result = client
        .read_day(
            file,
            |_| true,
            |run| {
                runs.push(run);
                Ok::<(), Infallible>(())
            },
        )
        .await;
    match result {
        Ok(_) => Ok(runs),
        Err(DecodeError::File(err)) => Err(err),
        Err(DecodeError::Sink(never)) => match never {},
    }
}

pub async fn head(client: &FlatFiles, dataset: Dataset, kind: FileKind, date: &str) -> DayFile {
    client
        .head(dataset, kind, d(date))
        .await
        .unwrap()
        .expect("the file exists")
}

/// A minute file of `tickers` × `minutes` rows sorted by ticker then time,
/// and the rows it holds as (ticker, window start in ms).
pub fn minute_file(tickers: usize, minutes: usize) -> (String, Vec<(String, i64)>) {
    let mut text = String::from("ticker,volume,open,close,high,low,window_start,transactions\n");
    let mut rows = Vec::new();
    let open_ms: i64 = 1_704_205_800_000; // 2024-01-02 09:30 ET
    for t in 0..tickers {
        let ticker = format!("T{t:05}");
        for m in 0..minutes {
            let ms = open_ms + m as i64 * 60_000;
            let price = 10.0 + (t % 500) as f64 + m as f64 * 0.01;
            text.push_str(&format!(
                "{ticker},{},{price:.2},{:.2},{:.2},{:.2},{},{}\n",
                100 + m,
                price + 0.01,
                price + 0.02,
                price - 0.01,
                ms * 1_000_000,
                1 + m % 7
            ));
            rows.push((ticker.clone(), ms));
        }
    }
    (text, rows)
}
