//! The simulator's flat files over the S3 protocol, on a port of their own
//! (path-style, bucket `flatfiles`): `ListObjectsV2`, `GetObject` and
//! `HeadObject`, enough for finpipe's `object_store` client. Day files are
//! made from the same market as the REST answers ([`super::flatfiles`]),
//! on first request, and kept. A file exists for each open day of its
//! dataset's calendar from `from` until the day before the simulator's
//! "today" (files are published the next morning).
//!
//! Requests must carry a SigV4 `Authorization` header naming the configured
//! access key; the signature itself is not checked (the tests' s3s server
//! does that). A wrong key gets S3's `InvalidAccessKeyId` (403).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Datelike, Days, NaiveDate};

use super::flatfiles::{FlatDataset, FlatKind, day_key, has_file, parse_key, write_day_gz};
use super::market::Market;
use super::trades::{parse_trades_key, write_trades_gz};

/// The bucket, as on Polygon's server.
pub const BUCKET: &str = "flatfiles";

/// What the S3 side serves.
#[derive(Clone, Debug)]
pub struct FlatServe {
    /// The access key requests must name.
    pub access_key: String,
    /// Only these tickers in the files (all when `None`).
    pub only: Option<Vec<String>>,
    /// The first day with files.
    pub from: NaiveDate,
}

pub(crate) struct S3State {
    pub(crate) serve: FlatServe,
    pub(crate) market: Arc<Market>,
    pub(crate) today: NaiveDate,
    files: Mutex<HashMap<String, Bytes>>,
}

impl S3State {
    pub(crate) fn new(serve: FlatServe, market: Arc<Market>, today: NaiveDate) -> Self {
        Self {
            serve,
            market,
            today,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` names a day file that exists.
    fn exists(&self, dataset: FlatDataset, date: NaiveDate) -> bool {
        date >= self.serve.from && date < self.today && has_file(dataset, date)
    }

    /// The bytes of an existing day file, made once.
    fn file(&self, key: &str) -> Option<Bytes> {
        let day = parse_key(key).map(|(dataset, kind, date)| (dataset, Some(kind), date));
        let trades = || parse_trades_key(key).map(|date| (FlatDataset::UsStocksSip, None, date));
        let (dataset, kind, date) = day.or_else(trades)?;
        if !self.exists(dataset, date) {
            return None;
        }
        if let Some(bytes) = self.lock().get(key) {
            return Some(bytes.clone());
        }
        let only: Option<Vec<&str>> = self
            .serve
            .only
            .as_ref()
            .map(|o| o.iter().map(String::as_str).collect());
        let mut out = Vec::new();
        match kind {
            Some(kind) => {
                write_day_gz(&self.market, dataset, kind, date, only.as_deref(), &mut out).ok()?;
            }
            None => {
                write_trades_gz(&self.market, date, only.as_deref(), &mut out).ok()?;
            }
        }
        let bytes = Bytes::from(out);
        self.lock().insert(key.to_owned(), bytes.clone());
        Some(bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn router(state: Arc<S3State>) -> Router {
    Router::new()
        .route("/flatfiles", get(list))
        .route("/flatfiles/", get(list))
        .route("/flatfiles/{*key}", get(object).head(object))
        .fallback(|| async { s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "no such bucket") })
        .with_state(state)
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(&format!("Credential={key}/")))
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn forbidden() -> Response {
    s3_error(
        StatusCode::FORBIDDEN,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    )
}

/// A quoted ETag from the bytes (FNV-1a, 128 bits as two halves).
fn etag(bytes: &[u8]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for &byte in bytes {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    format!("\"{a:016x}{b:016x}\"")
}

/// Files appear the morning after their date.
fn modified(date: NaiveDate) -> NaiveDate {
    date.checked_add_days(Days::new(1)).unwrap_or(date)
}

async fn object(
    State(state): State<Arc<S3State>>,
    Path(key): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.serve.access_key) {
        return forbidden();
    }
    let Some(bytes) = state.file(&key) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let date = parse_key(&key)
        .map(|(_, _, d)| d)
        .or_else(|| parse_trades_key(&key))
        .map_or(state.today, modified);
    let last_modified = date.format("%a, %d %b %Y 11:00:00 GMT").to_string();
    let headers = [
        (header::CONTENT_TYPE, "application/x-gzip".to_owned()),
        (header::CONTENT_LENGTH, bytes.len().to_string()),
        (header::ETAG, etag(&bytes)),
        (header::LAST_MODIFIED, last_modified),
    ];
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    (StatusCode::OK, headers, body).into_response()
}

async fn list(
    State(state): State<Arc<S3State>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.serve.access_key) {
        return forbidden();
    }
    let prefix = params.get("prefix").cloned().unwrap_or_default();
    let mut contents = String::new();
    let mut count = 0;
    for dataset in FlatDataset::ALL {
        for kind in FlatKind::ALL {
            let mut date = state.serve.from;
            while date < state.today {
                let key = day_key(dataset, kind, date);
                // Whole months are skipped when the prefix rules them out.
                let month = format!(
                    "{}/{}/{:04}/{:02}/",
                    dataset.name(),
                    kind.name(),
                    date.year(),
                    date.month()
                );
                if !(month.starts_with(&prefix) || prefix.starts_with(&month)) {
                    date = first_of_next_month(date);
                    continue;
                }
                if key.starts_with(&prefix)
                    && state.exists(dataset, date)
                    && let Some(bytes) = state.file(&key)
                {
                    count += 1;
                    contents.push_str(&format!(
                        "<Contents><Key>{key}</Key><LastModified>{}T11:00:00.000Z</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                        modified(date),
                        etag(&bytes).replace('"', "&quot;"),
                        bytes.len()
                    ));
                }
                date = date.succ_opt().unwrap_or(state.today);
            }
        }
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{BUCKET}</Name><Prefix>{prefix}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

fn first_of_next_month(date: NaiveDate) -> NaiveDate {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX)
}
