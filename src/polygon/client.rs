//! The REST client: Bearer auth on every request and every page, the shared
//! limiter before every attempt, retries by [`RetryPolicy`], `next_url`
//! pagination against our own base URL. A caller that bounds its requests in
//! flight hands a request its place ([`Place`]), which is given up as soon
//! as the body has arrived, before it is decoded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};
use url::Url;

use super::bars::decode_agg_page;
use super::error::{ApiError, ServerReply};
use super::limiter::{Limiter, RateLimit, SharedRate};
use super::retry::RetryPolicy;
use super::types::{ErrorBody, PageBody};
use crate::model::Bar;
use crate::secret::Secret;

/// Longest pause a `Retry-After` header may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Everything needed to build a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub base_url: String,
    pub api_key: Secret,
    pub rate_limit: RateLimit,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The budget shared with other processes (runners on one PostgreSQL
    /// job table), if any.
    pub shared_rate: Option<Arc<dyn SharedRate>>,
}

/// A request's place among those a caller lets be in flight at once: a
/// permit of the caller's semaphore, taken before the request and given back
/// once its body has arrived. A retry takes a new place from the same
/// semaphore.
pub type Place = OwnedSemaphorePermit;

/// Counters of what the client sent, for summaries and tests.
#[derive(Debug, Default)]
pub struct ClientStats {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
}

impl ClientStats {
    /// HTTP requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// 429 answers received.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
    /// Retries after 5xx, timeouts, dropped connections and garbled bodies.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// A cheap-to-clone handle; all clones share one limiter and one set of counters.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// The base URL without a trailing slash; endpoints are appended to it.
    base: String,
    key: Secret,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    timeout: Duration,
    stats: ClientStats,
    /// The server's answer to the first request it refused the key for: no
    /// request is sent after it (every later one would be refused too).
    rejected: OnceLock<ServerReply>,
    /// Whether the server ever answered (any status): until it has, a
    /// connection that cannot be made means a wrong URL or no network.
    answered: AtomicBool,
}

/// How one attempt ended.
enum Attempt<T> {
    Done(T),
    RateLimited(ServerReply, Option<Duration>),
    /// No connection could be made (refused, no such host, no route): why.
    Unconnected(String),
    Retry(ApiError),
    Fail(ApiError),
}

/// Attempts at a server that has not answered this client yet before it is
/// taken for unreachable, and the first delay between them (doubled each
/// time): a wrong `--api-url` fails within a second or two, not minutes.
const FIRST_CONTACT_ATTEMPTS: u32 = 3;
const FIRST_CONTACT_DELAY: Duration = Duration::from_millis(250);

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self, ApiError> {
        // Credentials in the base URL are never sent (reqwest would send them
        // as a second Authorization header beside the key's) nor kept.
        let base = without_credentials(&options.base_url).unwrap_or(options.base_url);
        let base = base.trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base).map_err(|e| ApiError::BaseUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(ApiError::BaseUrl {
                url: base,
                reason: "expected http(s)://host[:port][/path] without a query".into(),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("finpipe/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                key: options.api_key,
                limiter: Arc::new(Limiter::sharing(options.rate_limit, options.shared_rate)),
                retry: options.retry,
                timeout: options.timeout,
                stats: ClientStats::default(),
                rejected: OnceLock::new(),
                answered: AtomicBool::new(false),
            }),
        })
    }

    /// The limiter every request of this client (and its clones) waits on.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.inner.limiter
    }

    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// GETs `endpoint` (path and query) and decodes its JSON, retrying as the
    /// policy allows.
    pub async fn get_json<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &str,
    ) -> Result<T, ApiError> {
        self.get_json_in(endpoint, None).await
    }

    /// [`Client::get_json`] in `place` (see [`Place`]).
    pub async fn get_json_in<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &str,
        place: Option<Place>,
    ) -> Result<T, ApiError> {
        self.get_with(endpoint, |body| serde_json::from_slice(body), place)
            .await
    }

    /// Stops sending: requests waiting for the limiter, a place or a retry
    /// give up at once with [`ApiError::Stopped`]; a request on the wire
    /// finishes. For Ctrl-C and fatal errors.
    pub fn stop_sending(&self) {
        self.inner.limiter.stop();
    }

    /// Runs `wait` unless the client stops first (then `None`).
    async fn unless_stopped<F: Future>(&self, wait: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.inner.limiter.stopped() => None,
            done = wait => Some(done),
        }
    }

    /// GETs `endpoint` and turns a 200 body into `T` with `decode`; a decode
    /// error is retried like a garbled answer.
    async fn get_with<T: Send + 'static>(
        &self,
        endpoint: &str,
        decode: fn(&[u8]) -> Result<T, serde_json::Error>,
        mut place: Option<Place>,
    ) -> Result<T, ApiError> {
        let policy = self.inner.retry;
        let places: Option<Arc<Semaphore>> = place.as_ref().map(|p| Arc::clone(p.semaphore()));
        let (mut failures, mut limited, mut unconnected) = (0u32, 0u32, 0u32);
        loop {
            // A retry's place, before the limiter (which counts a request as
            // sent when it lets it go). A closed semaphore means no bound.
            if place.is_none()
                && let Some(places) = &places
            {
                place = self
                    .unless_stopped(Arc::clone(places).acquire_owned())
                    .await
                    .ok_or(ApiError::Stopped)?
                    .ok();
            }
            if let Some(reply) = self.inner.rejected.get() {
                return Err(ApiError::Unauthorized(reply.clone()));
            }
            let sent = self
                .inner
                .limiter
                .acquire()
                .await
                .ok_or(ApiError::Stopped)?;
            // Again: the key may have been refused while this one waited.
            if let Some(reply) = self.inner.rejected.get() {
                return Err(ApiError::Unauthorized(reply.clone()));
            }
            self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
            let attempts = failures + limited + unconnected + 1;
            let delay = match self.attempt(endpoint, sent, decode, place.take()).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error.after(attempts)),
                Attempt::RateLimited(reply, retry_after) => {
                    self.inner
                        .stats
                        .rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                    if limited >= policy.max_rate_limited {
                        return Err(ApiError::RateLimited {
                            endpoint: endpoint.to_owned(),
                            reply,
                            attempts,
                        });
                    }
                    limited += 1;
                    let pause = self
                        .inner
                        .limiter
                        .rate_limited(sent, retry_after, |streak| policy.delay(streak));
                    warn!(
                        endpoint,
                        pause_ms = pause.as_millis() as u64,
                        "rate limited (HTTP 429); pausing all requests"
                    );
                    continue;
                }
                Attempt::Unconnected(detail) if !self.inner.answered.load(Ordering::SeqCst) => {
                    // Never reached the server, and it never answered this
                    // client: a wrong --api-url or no network. The attempt
                    // cost the server nothing, and a few quick tries say
                    // enough.
                    self.inner.limiter.refund(sent);
                    self.inner.stats.requests.fetch_sub(1, Ordering::Relaxed);
                    if unconnected + 1 >= FIRST_CONTACT_ATTEMPTS {
                        return Err(ApiError::Unreachable {
                            base: self.inner.base.clone(),
                            detail,
                            attempts,
                        });
                    }
                    let delay = FIRST_CONTACT_DELAY * (1 << unconnected);
                    unconnected += 1;
                    warn!(
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        "cannot connect to {}: {detail}; trying again",
                        self.inner.base
                    );
                    delay
                }
                Attempt::Unconnected(detail) => {
                    let error = ApiError::Transport {
                        endpoint: endpoint.to_owned(),
                        detail: format!("cannot connect: {detail}"),
                        attempts: 1,
                    };
                    self.retry_delay(error, &mut failures, attempts)?
                }
                Attempt::Retry(error) => self.retry_delay(error, &mut failures, attempts)?,
            };
            self.unless_stopped(tokio::time::sleep(delay))
                .await
                .ok_or(ApiError::Stopped)?;
        }
    }

    /// The delay before retrying after `error`, or the error (saying after
    /// how many attempts) when the policy allows no more retries.
    fn retry_delay(
        &self,
        error: ApiError,
        failures: &mut u32,
        attempts: u32,
    ) -> Result<Duration, ApiError> {
        let policy = self.inner.retry;
        if *failures >= policy.max_retries {
            return Err(error.after(attempts));
        }
        let delay = policy.delay(*failures);
        *failures += 1;
        self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
        // `error` names no attempt count: this line says what happens next.
        warn!(
            retry = *failures,
            of = policy.max_retries,
            delay_ms = delay.as_millis() as u64,
            "{error}; retrying"
        );
        Ok(delay)
    }

    /// Sends one request and sorts the outcome. `place` (in flight) is given
    /// up once the body has arrived, before it is decoded.
    async fn attempt<T: Send + 'static>(
        &self,
        endpoint: &str,
        sent: tokio::time::Instant,
        decode: fn(&[u8]) -> Result<T, serde_json::Error>,
        place: Option<Place>,
    ) -> Attempt<T> {
        let url = format!("{}{endpoint}", self.inner.base);
        let started = tokio::time::Instant::now();
        let sent_request = self
            .inner
            .http
            .get(&url)
            .bearer_auth(self.inner.key.expose())
            .send()
            .await;
        let response = match sent_request {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Attempt::Unconnected(cause_chain(&e)),
            Err(e) => return Attempt::Retry(self.transport_error(endpoint, &e)),
        };
        self.inner.answered.store(true, Ordering::SeqCst);
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Attempt::Retry(self.transport_error(endpoint, &e)),
        };
        if status == 401 {
            // Before the place goes to a waiting request: it must not be sent.
            let _ = self.inner.rejected.set(server_reply(status, &body));
        }
        drop(place);
        debug!(
            endpoint,
            status,
            bytes = body.len(),
            ms = started.elapsed().as_millis() as u64,
            "GET"
        );
        if status == 200 {
            self.inner.limiter.succeeded(sent);
            return match decode_off_runtime(decode, body.clone()).await {
                Ok(value) => Attempt::Done(value),
                Err(e) => Attempt::Retry(ApiError::Decode {
                    endpoint: endpoint.to_owned(),
                    status,
                    bytes: body.len(),
                    request_id: sniff_request_id(&body),
                    detail: e.to_string(),
                    attempts: 1,
                }),
            };
        }
        let reply = server_reply(status, &body);
        let endpoint = endpoint.to_owned();
        match status {
            401 => Attempt::Fail(ApiError::Unauthorized(reply)),
            403 => Attempt::Fail(ApiError::Forbidden { endpoint, reply }),
            404 => Attempt::Fail(ApiError::NotFound { endpoint, reply }),
            429 => Attempt::RateLimited(reply, retry_after),
            408 | 500..=599 => Attempt::Retry(ApiError::Http {
                endpoint,
                reply,
                attempts: 1,
            }),
            _ => Attempt::Fail(ApiError::Http {
                endpoint,
                reply,
                attempts: 1,
            }),
        }
    }

    fn transport_error(&self, endpoint: &str, error: &reqwest::Error) -> ApiError {
        let detail = if error.is_timeout() {
            format!(
                "no complete answer within {:?} (raise --timeout / FINPIPE_TIMEOUT)",
                self.inner.timeout
            )
        } else {
            // reqwest's own message repeats the URL; the endpoint is already named.
            let what = if error.is_body() || error.is_decode() {
                "the answer broke off"
            } else {
                "the request failed"
            };
            match std::error::Error::source(error) {
                Some(cause) => format!("{what}: {}", error_chain(cause)),
                None => what.to_owned(),
            }
        };
        ApiError::Transport {
            endpoint: endpoint.to_owned(),
            detail,
            attempts: 1,
        }
    }

    /// Pages of a paginated endpoint, starting at `endpoint`. `sticky` query
    /// parameters are added to every `next_url` that lacks them (aggregates'
    /// cursors do not carry `adjusted`).
    pub fn pages<T: DeserializeOwned>(
        &self,
        endpoint: String,
        sticky: Vec<(&'static str, String)>,
    ) -> Pages<T> {
        self.pages_with(endpoint, sticky, PageBody::decode)
    }

    /// Pages of aggregate bars, decoded by the fast bar scanner straight
    /// into [`Bar`]s.
    pub fn agg_pages(&self, endpoint: String, sticky: Vec<(&'static str, String)>) -> Pages<Bar> {
        self.pages_with(endpoint, sticky, decode_agg_page)
    }

    fn pages_with<T>(
        &self,
        endpoint: String,
        sticky: Vec<(&'static str, String)>,
        decode: DecodePage<T>,
    ) -> Pages<T> {
        Pages {
            client: self.clone(),
            next: Some(endpoint),
            seen: HashSet::new(),
            sticky,
            decode,
        }
    }
}

/// One page of results.
#[derive(Debug)]
pub struct Page<T> {
    pub results: Vec<T>,
    pub request_id: Option<String>,
    pub adjusted: Option<bool>,
}

/// Decodes the body of a page.
type DecodePage<T> = fn(&[u8]) -> Result<PageBody<T>, serde_json::Error>;

/// Bodies up to this size are decoded on the calling task; larger ones (an
/// aggregates page runs to megabytes) on a blocking thread, so that the
/// runtime's threads stay free to send the next requests meanwhile.
const DECODE_INLINE_BYTES: usize = 64 * 1024;

async fn decode_off_runtime<T: Send + 'static>(
    decode: fn(&[u8]) -> Result<T, serde_json::Error>,
    body: bytes::Bytes,
) -> Result<T, serde_json::Error> {
    if body.len() <= DECODE_INLINE_BYTES {
        return decode(&body);
    }
    match tokio::task::spawn_blocking(move || decode(&body)).await {
        Ok(decoded) => decoded,
        // The decoder panicked (a bug): the page counts as garbled.
        Err(error) => Err(serde::de::Error::custom(format!("decoder failed: {error}"))),
    }
}

/// A cursor over the pages of a paginated endpoint.
#[derive(Debug)]
pub struct Pages<T> {
    client: Client,
    next: Option<String>,
    seen: HashSet<String>,
    sticky: Vec<(&'static str, String)>,
    decode: DecodePage<T>,
}

impl<T: Send + 'static> Pages<T> {
    /// Fetches the next page, or `None` when there is none.
    pub async fn next_page(&mut self) -> Result<Option<Page<T>>, ApiError> {
        self.next_page_in(None).await
    }

    /// [`Pages::next_page`] in `place` (see [`Place`]).
    pub async fn next_page_in(
        &mut self,
        place: Option<Place>,
    ) -> Result<Option<Page<T>>, ApiError> {
        let Some(endpoint) = self.next.take() else {
            return Ok(None);
        };
        self.seen.insert(endpoint.clone());
        let body = self.client.get_with(&endpoint, self.decode, place).await?;
        self.next = body.next_url.as_deref().and_then(|url| self.follow(url));
        Ok(Some(Page {
            results: body.results,
            request_id: body.request_id,
            adjusted: body.adjusted,
        }))
    }

    /// True when another page is due.
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }

    /// The path and query of `next_url`, to be sent to our own base URL (the
    /// host in `next_url` is ignored). `None` ends pagination: an unusable or
    /// repeated `next_url`.
    fn follow(&self, next_url: &str) -> Option<String> {
        let mut url = match Url::parse(next_url) {
            Ok(url) => url,
            Err(e) => {
                warn!("ignoring unparsable next_url ({e}); treating the page as the last");
                return None;
            }
        };
        let present: HashSet<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in &self.sticky {
                if !present.contains(*key) {
                    query.append_pair(key, value);
                }
            }
        }
        let endpoint = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if self.seen.contains(&endpoint) {
            warn!(
                endpoint,
                "the server repeated a next_url; stopping pagination here"
            );
            return None;
        }
        Some(endpoint)
    }
}

/// The range-aggregates endpoint for one ticker and timeframe, asking for the
/// most a request can answer (`limit=50000`), ascending, with `adjusted` set
/// explicitly (the API's default is adjusted). `from`/`to` are `YYYY-MM-DD` or
/// Unix milliseconds, both inclusive.
pub fn aggregates_endpoint(
    ticker: &crate::model::Ticker,
    timeframe: crate::model::Timeframe,
    from: &str,
    to: &str,
    adjusted: bool,
) -> String {
    let path = format!(
        "/v2/aggs/ticker/{}/range/{}/{}/{from}/{to}",
        path_segment(ticker.as_str()),
        timeframe.multiplier,
        timeframe.timespan.as_polygon()
    );
    endpoint(
        &path,
        &[
            ("adjusted", if adjusted { "true" } else { "false" }),
            ("sort", "asc"),
            ("limit", "50000"),
        ],
    )
}

/// `url` without a `user:password@` (or `user@`) before its host, or `None`
/// when it carries none. finpipe never sends such credentials (the API key
/// and the S3 keys authenticate) and so never holds or prints them.
pub fn without_credentials(url: &str) -> Option<String> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some(format!("{}{}", &url[..start], &rest[at + 1..]))
}

/// Builds `path?k=v&…` with each value percent-encoded.
pub fn endpoint(path: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return path.to_owned();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

/// Percent-encodes one path segment (a ticker: `X:BTCUSD` stays readable).
pub fn path_segment(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | '.'
            | '-'
            | '_'
            | '~'
            | ':'
            | '@'
            | '!'
            | '$'
            | '+' => c.to_string(),
            other => {
                let mut buf = [0u8; 4];
                other
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

/// The server's explanation of a non-200 reply.
fn server_reply(status: u16, body: &[u8]) -> ServerReply {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed
        .error
        .or(parsed.message)
        .unwrap_or_else(|| excerpt(body));
    ServerReply {
        status,
        request_id: parsed.request_id,
        message,
    }
}

/// A short, single-line excerpt of a non-JSON body (5xx pages may be HTML).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        _ if flat.is_empty() => "(empty body)".to_owned(),
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The `request_id` of a body that failed to parse as a whole, if visible.
fn sniff_request_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"request_id\"")? + "\"request_id\"".len();
    let rest = text[start..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// Why a connection could not be made, without reqwest's own line (which
/// names the URL): `tcp connect error: Connection refused (os error 111)`.
fn cause_chain(error: &reqwest::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => {
            let chain = error_chain(cause);
            // hyper's outer layer says nothing the words around it do not.
            match chain.strip_prefix("client error (Connect): ") {
                Some(rest) => rest.to_owned(),
                None => chain,
            }
        }
        None => "cannot connect".to_owned(),
    }
}

/// An error and its causes on one line, without any URL.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_yield_message_and_request_id() {
        let reply = server_reply(
            429,
            br#"{"status":"ERROR","request_id":"abc","error":"You've exceeded the maximum requests per minute"}"#,
        );
        assert_eq!(reply.request_id.as_deref(), Some("abc"));
        assert!(reply.message.starts_with("You've exceeded"));
        let reply = server_reply(
            403,
            br#"{"status":"NOT_AUTHORIZED","request_id":"x","message":"Not entitled"}"#,
        );
        assert_eq!(reply.message, "Not entitled");
        assert_eq!(server_reply(502, b"").message, "(empty body)");
        let html = server_reply(500, b"<html>\n<body>Internal   Server Error</body></html>");
        assert_eq!(
            html.message,
            "<html> <body>Internal Server Error</body></html>"
        );
    }

    #[test]
    fn request_ids_are_found_in_truncated_bodies() {
        let body = br#"{"ticker":"AAPL","request_id":"7fea49","results":[{"v":4428,"#;
        assert_eq!(sniff_request_id(body).as_deref(), Some("7fea49"));
        assert_eq!(sniff_request_id(b"{\"results\":["), None);
    }

    #[test]
    fn endpoints_encode_values_and_tickers() {
        assert_eq!(
            endpoint(
                "/v3/reference/tickers",
                &[("market", "stocks"), ("search", "a&b c")]
            ),
            "/v3/reference/tickers?market=stocks&search=a%26b+c"
        );
        assert_eq!(path_segment("X:BTCUSD"), "X:BTCUSD");
        assert_eq!(path_segment("BRK.A"), "BRK.A");
        assert_eq!(path_segment("A#B?"), "A%23B%3F");
    }

    #[test]
    fn credentials_are_cut_out_of_urls() {
        for (url, clean) in [
            ("http://user:pw@127.0.0.1:9/v", Some("http://127.0.0.1:9/v")),
            ("https://u@host", Some("https://host")),
            ("https://a:b@c@host/x@y", Some("https://host/x@y")),
            ("host:1@proxy:2", Some("proxy:2")),
            ("https://api.massive.com/p@th?q=@", None),
            ("https://api.massive.com", None),
        ] {
            assert_eq!(without_credentials(url).as_deref(), clean, "{url}");
        }
    }
}
