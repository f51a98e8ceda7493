//! The S3 side of flat files: connection settings, the client
//! ([`FlatFiles`]), listing a month or a range of day files, asking whether
//! one day's file exists, and turning object_store's errors into
//! [`FlatFileError`]s that say what to fix without ever showing a secret.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, ObjectMeta, ObjectStore, RetryConfig};

use super::error::FlatFileError;
use super::keys::{Dataset, DayFile, FileKind, month_prefix, object_key, parse_key};
use crate::config::{Config, DEFAULT_FLATFILES_URL, Secret};

/// Polygon's flat-file bucket.
pub const DEFAULT_BUCKET: &str = "flatfiles";
/// The region Polygon's endpoint signs for.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Whole-request timeout, body included: a stocks trades day is ≈1.35 GB.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Months listed at once by [`FlatFiles::list_range`].
const LIST_CONCURRENCY: usize = 4;

/// How to reach the flat-file server. `Debug` masks both keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// `https://files.massive.com` (or the old `https://files.polygon.io`, a
    /// proxy, a local emulator on `http://`).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: Secret,
    pub secret_key: Secret,
    /// Limit for one whole request, body included.
    pub timeout: Duration,
}

impl S3Settings {
    /// Polygon's endpoint, bucket and region, with these keys.
    pub fn new(access_key: Secret, secret_key: Secret) -> Self {
        Self {
            endpoint: DEFAULT_FLATFILES_URL.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            access_key,
            secret_key,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The settings finpipe's configuration gives (flag > env > `.env` >
    /// default for the endpoint), or `None` when either S3 key is not set:
    /// then flat files are simply not used.
    pub fn from_config(config: &Config) -> Option<Self> {
        let access_key = config.s3_access_key.value.clone()?;
        let secret_key = config.s3_secret_key.value.clone()?;
        Some(Self {
            endpoint: config.flatfiles_url.value.clone(),
            ..Self::new(access_key, secret_key)
        })
    }
}

/// A flat-file client. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct FlatFiles {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) context: Arc<ErrorContext>,
}

/// What error mapping needs: where requests go, and what to scrub from texts.
pub(crate) struct ErrorContext {
    endpoint: String,
    /// The S3 keys, removed from every text kept in an error.
    scrub: Vec<Secret>,
}

impl fmt::Debug for FlatFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatFiles")
            .field("endpoint", &self.context.endpoint)
            .finish_non_exhaustive()
    }
}

impl FlatFiles {
    /// A client for `settings`: path-style requests, SigV4, plain HTTP only
    /// when the endpoint says `http://`, object_store's retries (10 within
    /// 3 minutes, mid-body failures resumed with a range request).
    pub fn new(settings: S3Settings) -> Result<Self, FlatFileError> {
        let endpoint = settings.endpoint.trim().trim_end_matches('/').to_owned();
        if http_allowed(&endpoint).is_none() {
            return Err(FlatFileError::Config {
                what: "endpoint",
                detail: format!(
                    "{endpoint:?} is not an http:// or https:// URL; set MASSIVE_S3_ENDPOINT \
                     or --flatfiles-url to e.g. {DEFAULT_FLATFILES_URL}"
                ),
            });
        }
        for (what, secret, name) in [
            ("access key", &settings.access_key, "MASSIVE_S3_ACCESS_KEY"),
            ("secret key", &settings.secret_key, "MASSIVE_S3_SECRET_KEY"),
        ] {
            if secret.expose().trim().is_empty() {
                return Err(FlatFileError::Config {
                    what,
                    detail: format!("it is empty; set {name} (the S3 keys of your plan)"),
                });
            }
        }
        let (store, context) = build_client(&ClientSpec {
            endpoint: Some(&endpoint),
            bucket: &settings.bucket,
            region: &settings.region,
            access_key: Some(&settings.access_key),
            secret_key: Some(&settings.secret_key),
            session_token: None,
            timeout: settings.timeout,
        })
        .map_err(|detail| FlatFileError::Config {
            what: "S3 settings",
            detail,
        })?;
        Ok(Self {
            store,
            context: Arc::new(context),
        })
    }

    /// A client over any object store (tests use `object_store::memory::InMemory`);
    /// `endpoint` only names it in errors.
    pub fn from_store(store: Arc<dyn ObjectStore>, endpoint: &str) -> Self {
        Self {
            store,
            context: Arc::new(ErrorContext {
                endpoint: endpoint.to_owned(),
                scrub: Vec::new(),
            }),
        }
    }

    /// The day files of one month, sorted by date. Keys that are not day
    /// files of `dataset`/`kind` in that month are ignored.
    pub async fn list_month(
        &self,
        dataset: Dataset,
        kind: FileKind,
        year: i32,
        month: u32,
    ) -> Result<Vec<DayFile>, FlatFileError> {
        if !(1..=12).contains(&month) {
            return Err(FlatFileError::Config {
                what: "month",
                detail: format!("{month} is not a month number (1 to 12)"),
            });
        }
        let prefix = month_prefix(dataset, kind, year, month);
        let path = Path::from(prefix.trim_end_matches('/'));
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| self.context.map(&prefix, e))?;
        let mut files: Vec<DayFile> = metas
            .into_iter()
            .filter_map(|meta| day_file(meta, dataset, kind))
            .filter(|f| f.date.year() == year && f.date.month() == month)
            .collect();
        files.sort_by_key(|f| f.date);
        files.dedup_by_key(|f| f.date);
        Ok(files)
    }

    /// The day files dated `from` through `to` inclusive, sorted by date: one
    /// listing per month, a few at a time. Months before the dataset's first
    /// day are not asked for.
    pub async fn list_range(
        &self,
        dataset: Dataset,
        kind: FileKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayFile>, FlatFileError> {
        let from = from.max(dataset.earliest());
        let months = months_between(from, to);
        let listed: Vec<Vec<DayFile>> = futures_util::stream::iter(months)
            .map(|(year, month)| self.list_month(dataset, kind, year, month))
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(listed
            .into_iter()
            .flatten()
            .filter(|f| (from..=to).contains(&f.date))
            .collect())
    }

    /// The file of one day, or `None` when it does not exist (a holiday, a
    /// weekend, a day not published yet: not an error). A HEAD cannot tell a
    /// missing object from a missing bucket; listing can.
    pub async fn head(
        &self,
        dataset: Dataset,
        kind: FileKind,
        date: NaiveDate,
    ) -> Result<Option<DayFile>, FlatFileError> {
        let key = object_key(dataset, kind, date);
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self
            .store
            .get_opts(&Path::from(key.as_str()), options)
            .await
        {
            Ok(found) => Ok(Some(DayFile {
                dataset,
                kind,
                date,
                key,
                size: found.meta.size,
                etag: found.meta.e_tag,
            })),
            Err(e) => match self.context.map(&key, e) {
                FlatFileError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }
}

/// What an S3 client is built from (flat files and an `s3://` library
/// share the builder, the retries and the error mapping).
pub(crate) struct ClientSpec<'a> {
    /// `http(s)://host[:port]`, requests path-style; `None`: AWS itself,
    /// virtual-hosted style, for `region`.
    pub endpoint: Option<&'a str>,
    pub bucket: &'a str,
    pub region: &'a str,
    /// Both keys, or neither (then object_store's own credential chain for
    /// the instance, e.g. an EC2 or ECS role).
    pub access_key: Option<&'a Secret>,
    pub secret_key: Option<&'a Secret>,
    pub session_token: Option<&'a Secret>,
    /// Limit for one whole request, body included.
    pub timeout: Duration,
}

/// Whether `endpoint` is plain HTTP (`Some(true)`), HTTPS (`Some(false)`)
/// or not an HTTP URL at all (`None`).
pub(crate) fn http_allowed(endpoint: &str) -> Option<bool> {
    match endpoint.split_once("://") {
        Some(("https", rest)) if !rest.is_empty() => Some(false),
        Some(("http", rest)) if !rest.is_empty() => Some(true),
        _ => None,
    }
}

/// An S3 client for `spec` (path-style against an endpoint, plain HTTP only
/// when it says `http://`, object_store's retries: 10 within 3 minutes,
/// mid-body failures resumed with a range request) and the context that maps
/// its errors. The error is a text scrubbed of the keys.
pub(crate) fn build_client(
    spec: &ClientSpec<'_>,
) -> Result<(Arc<dyn ObjectStore>, ErrorContext), String> {
    let endpoint = spec.endpoint.map(|e| e.trim().trim_end_matches('/'));
    let context = ErrorContext::new(
        endpoint.map_or_else(
            || format!("s3.{}.amazonaws.com", spec.region),
            str::to_owned,
        ),
        [spec.access_key, spec.secret_key, spec.session_token]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
    );
    let mut options = ClientOptions::new().with_timeout(spec.timeout);
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(spec.bucket)
        .with_region(spec.region)
        .with_retry(RetryConfig::default());
    if let Some(endpoint) = endpoint {
        let Some(allow_http) = http_allowed(endpoint) else {
            return Err(format!("{endpoint:?} is not an http:// or https:// URL"));
        };
        options = options.with_allow_http(allow_http);
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    } else {
        builder = builder.with_virtual_hosted_style_request(true);
    }
    if let (Some(access), Some(secret)) = (spec.access_key, spec.secret_key) {
        builder = builder
            .with_access_key_id(access.expose())
            .with_secret_access_key(secret.expose());
    }
    if let Some(token) = spec.session_token {
        builder = builder.with_token(token.expose());
    }
    let store = builder
        .with_client_options(options)
        .build()
        .map_err(|e| context.scrubbed(&e.to_string()))?;
    Ok((Arc::new(store), context))
}

/// How an S3 request failed, for each user of the client to say in its own
/// words. Texts are scrubbed of the keys.
#[derive(Debug)]
pub(crate) enum S3Failure {
    /// The server refused the credentials or the request (401/403,
    /// AccessDenied, SignatureDoesNotMatch, …); `reason` names which.
    Denied { reason: String },
    /// The object does not exist (its bucket does).
    NotFound,
    /// Anything else; `transient` when retrying later may help.
    Other { detail: String, transient: bool },
}

fn day_file(meta: ObjectMeta, dataset: Dataset, kind: FileKind) -> Option<DayFile> {
    let key = meta.location.to_string();
    let (found_dataset, found_kind, date) = parse_key(&key)?;
    (found_dataset == dataset && found_kind == kind).then_some(DayFile {
        dataset,
        kind,
        date,
        key,
        size: meta.size,
        etag: meta.e_tag,
    })
}

/// The (year, month) pairs from `from`'s month through `to`'s, ascending.
fn months_between(from: NaiveDate, to: NaiveDate) -> Vec<(i32, u32)> {
    let mut months = Vec::new();
    let (Some(mut first), Some(last)) = (from.with_day(1), to.with_day(1)) else {
        return months; // Unreachable: day 1 exists in every month.
    };
    while first <= last {
        months.push((first.year(), first.month()));
        match first.checked_add_months(Months::new(1)) {
            Some(next) => first = next,
            None => break,
        }
    }
    months
}

impl ErrorContext {
    /// `text` with every occurrence of a key replaced by asterisks.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in self.scrub.iter().map(Secret::expose) {
            if !secret.is_empty() {
                out = out.replace(secret, "********");
            }
        }
        out
    }

    pub(crate) fn new(endpoint: String, scrub: Vec<Secret>) -> Self {
        Self { endpoint, scrub }
    }

    /// Where requests go (`https://files.massive.com`, `s3.us-east-1.amazonaws.com`).
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The [`FlatFileError`] for an object_store error on `key` (an object key
    /// or a listing prefix).
    pub(crate) fn map(&self, key: &str, err: object_store::Error) -> FlatFileError {
        match self.classify(&err) {
            S3Failure::Denied { reason } => FlatFileError::Forbidden {
                endpoint: self.endpoint.clone(),
                reason,
            },
            S3Failure::NotFound => FlatFileError::NotFound {
                key: key.to_owned(),
            },
            S3Failure::Other { detail, transient } => FlatFileError::S3 {
                key: key.to_owned(),
                detail,
                transient,
            },
        }
    }

    /// What kind of failure `err` is.
    pub(crate) fn classify(&self, err: &object_store::Error) -> S3Failure {
        let text = self.scrubbed(&error_chain(err));
        let status = status_of(&text);
        let denied = matches!(
            err,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || matches!(status, Some(401 | 403))
            || DENIAL_CODES.iter().any(|code| text.contains(code));
        if denied {
            let reason = DENIAL_CODES
                .iter()
                .find(|code| text.contains(*code))
                .map(|code| (*code).to_owned())
                .or_else(|| status.map(|s| format!("HTTP {s}")))
                .unwrap_or_else(|| "access denied".to_owned());
            return S3Failure::Denied { reason };
        }
        if matches!(err, object_store::Error::NotFound { .. }) && !text.contains("NoSuchBucket") {
            return S3Failure::NotFound;
        }
        let transient = matches!(status, Some(408 | 429 | 500..=599))
            || http_kind(err).is_some_and(|kind| {
                matches!(
                    kind,
                    HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Interrupted
                )
            });
        let detail = if text.contains("NoSuchBucket") {
            format!(
                "the bucket does not exist on {}: check the bucket name ({text})",
                self.endpoint
            )
        } else {
            text
        };
        S3Failure::Other { detail, transient }
    }
}

/// S3 error codes that mean "your credentials or plan do not allow this".
const DENIAL_CODES: [&str; 4] = [
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AccessDenied",
    "InvalidSecurity",
];

/// The error and its sources, one line.
fn error_chain(err: &object_store::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = inner.source();
    }
    text
}

/// The HTTP status in object_store's text (`… status code: 503 Service …`,
/// `… error response: 403 …`), if any.
fn status_of(text: &str) -> Option<u16> {
    for marker in ["status code: ", "error response: ", "Status { status: "] {
        if let Some(at) = text.find(marker) {
            let digits: String = text[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(status) = digits.parse() {
                return Some(status);
            }
        }
    }
    None
}

/// The kind of the transport error under `err`, if one is.
fn http_kind(err: &object_store::Error) -> Option<HttpErrorKind> {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(http) = inner.downcast_ref::<HttpError>() {
            return Some(http.kind());
        }
        source = inner.source();
    }
    None
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;
