//! The simulator's HTTP side: binds 127.0.0.1, checks the key, applies the
//! per-minute limit and armed faults, logs every request, and hands the rest
//! to [`routes`](super::routes).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::faults::{Fault, FaultKind, FaultPlan};
use super::market::Market;
use super::reference::{Reference, WorldSize};
use super::routes;
use super::s3::{FlatServe, S3State, router as s3_router};

/// The key the simulator accepts unless told otherwise.
pub const DEFAULT_SIM_KEY: &str = "sim-key";

/// A server-side request budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimRateLimit {
    pub requests: u32,
    pub window: Duration,
    /// Whether 429 answers carry `Retry-After`.
    pub retry_after: bool,
}

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The only API key accepted (Bearer header or `apiKey` query).
    pub api_key: String,
    /// "Today" on the server: ranges ending after it answer 403.
    pub today: NaiveDate,
    pub world: WorldSize,
    pub rate_limit: Option<SimRateLimit>,
    /// Added to every answer (benchmarks).
    pub latency: Duration,
    /// Keep aggregate answers in memory up to this many bytes and serve
    /// repeated requests from there (benchmarks: a warm simulator spends no
    /// CPU generating bars, so the client's share of the machine is measured).
    pub cache_bytes: usize,
    /// The host `next_url` points at, as the real API's does; clients must
    /// follow only its path and query.
    pub next_url_host: String,
    /// Serve flat files over S3 on a second port (see [`super::s3`]).
    pub flat_files: Option<FlatServe>,
}

impl SimConfig {
    /// The default world, with `today` as the server's date.
    pub fn new(today: NaiveDate) -> Self {
        Self {
            api_key: DEFAULT_SIM_KEY.to_owned(),
            today,
            world: WorldSize::default(),
            rate_limit: None,
            latency: Duration::ZERO,
            cache_bytes: 0,
            next_url_host: "https://api.massive.com".to_owned(),
            flat_files: None,
        }
    }
}

/// How the request authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    QueryKey,
    Missing,
    Wrong,
}

/// One request as the simulator saw it. The query has any `apiKey` removed.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub seq: u64,
    /// Arrival time since the simulator started.
    pub at: Duration,
    /// From arrival until the injected latency was over and the answer
    /// began: the latency as served (the timer rounds up to whole
    /// milliseconds, and a busy server wakes late).
    pub waited: Duration,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub auth: Auth,
    pub fault: Option<&'static str>,
}

impl RequestRecord {
    /// True for range, grouped-daily and other `/v2/aggs/` requests.
    pub fn is_aggregates(&self) -> bool {
        self.path.starts_with("/v2/aggs/")
    }
}

pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    pub(crate) market: Arc<Market>,
    started: Instant,
    seq: AtomicU64,
    rate: Mutex<RateState>,
    faults: Mutex<FaultPlan>,
    log: Mutex<Vec<RequestRecord>>,
    cache: Mutex<AnswerCache>,
}

/// Aggregate answers by path and query, bounded in bytes.
#[derive(Default)]
struct AnswerCache {
    answers: std::collections::HashMap<String, Bytes>,
    bytes: usize,
}

#[derive(Default)]
struct RateState {
    limit: Option<SimRateLimit>,
    accepted: VecDeque<Instant>,
}

impl SimState {
    /// A request id in the real format (32 hex digits), unique per request.
    pub(crate) fn request_id(&self, seq: u64) -> String {
        let mut x = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("{:016x}{:016x}", x ^ (x >> 31), seq)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The flat-file server's address and task, when configured.
    flat: Option<(SocketAddr, JoinHandle<()>)>,
}

impl Simulator {
    /// Starts a simulator on 127.0.0.1, on a free port.
    pub async fn start(config: SimConfig) -> io::Result<Self> {
        Self::start_on(config, 0).await
    }

    /// Starts a simulator on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start_on(config: SimConfig, port: u16) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let market = Arc::new(Market::new(Reference::generate(&config.world)));
        let flat = match &config.flat_files {
            Some(serve) => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
                let addr = listener.local_addr()?;
                let s3 = Arc::new(S3State::new(
                    serve.clone(),
                    Arc::clone(&market),
                    config.today,
                ));
                let app = s3_router(s3);
                let task = tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!("simulator flat files stopped: {e}");
                    }
                });
                Some((addr, task))
            }
            None => None,
        };
        let state = Arc::new(SimState {
            rate: Mutex::new(RateState {
                limit: config.rate_limit,
                accepted: VecDeque::new(),
            }),
            config,
            market,
            started: Instant::now(),
            seq: AtomicU64::new(0),
            faults: Mutex::new(FaultPlan::default()),
            log: Mutex::new(Vec::new()),
            cache: Mutex::new(AnswerCache::default()),
        });
        let app: Router = routes::router()
            .layer(middleware::from_fn_with_state(Arc::clone(&state), gate))
            .with_state(Arc::clone(&state));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("simulator stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
            flat,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The flat files' S3 endpoint, when configured (bucket [`super::s3::BUCKET`]).
    pub fn flatfiles_url(&self) -> Option<String> {
        self.flat.as_ref().map(|(addr, _)| format!("http://{addr}"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key the simulator accepts.
    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    /// The simulated market (the same data every answer is built from).
    pub fn market(&self) -> &Market {
        &self.state.market
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.state.log).clear();
    }

    /// Arms a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state.faults).arm(fault);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Changes the server-side request budget.
    pub fn set_rate_limit(&self, limit: Option<SimRateLimit>) {
        let mut rate = lock(&self.state.rate);
        rate.limit = limit;
        rate.accepted.clear();
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((_, task)) = self.flat.take() {
            task.abort();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits until `deadline`. Tokio's timer rounds every sleep up to the next
/// whole millisecond, which made a 50 ms latency 51.4 ms on average under
/// load: the last millisecond is slept on a blocking thread, which the
/// kernel wakes within tens of microseconds, so the latency is what was asked.
async fn serve_latency(deadline: Instant) {
    const TIMER_TICK: Duration = Duration::from_millis(1);
    tokio::time::sleep_until(deadline - TIMER_TICK).await;
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        // An error means the runtime is shutting down: nobody waits for the answer.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// Everything that happens before and after a route: latency, auth, rate
/// limit, faults, logging.
async fn gate(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    let arrived = Instant::now();
    let path = request.uri().path().to_owned();
    let query = redact_key(request.uri().query().unwrap_or(""));
    let auth = authenticate(&request, &state.config.api_key);
    let request_id = state.request_id(seq);

    if !state.config.latency.is_zero() {
        serve_latency(arrived + state.config.latency).await;
    }
    let waited = arrived.elapsed();
    let mut fault_name = None;
    let response = match auth {
        Auth::Missing => routes::error_reply(
            StatusCode::UNAUTHORIZED,
            "ERROR",
            "API Key was not provided",
            &request_id,
        ),
        Auth::Wrong => routes::error_reply(
            StatusCode::UNAUTHORIZED,
            "ERROR",
            "Unknown API Key",
            &request_id,
        ),
        Auth::Bearer | Auth::QueryKey => {
            if let Some(retry_after) = over_limit(&state, arrived) {
                fault_name = Some("rate-limit");
                too_many_requests(&request_id, retry_after)
            } else {
                let fault = lock(&state.faults).take(&path);
                fault_name = fault.as_ref().map(FaultKind::name);
                match fault {
                    None => answer(&state, request, next).await,
                    Some(kind) => apply_fault(kind, request, next, &request_id).await,
                }
            }
        }
    };
    let record = RequestRecord {
        seq,
        at: arrived - state.started,
        waited,
        path,
        query,
        status: response.status().as_u16(),
        auth,
        fault: fault_name,
    };
    lock(&state.log).push(record);
    response
}

/// The route's answer, from the cache when it is on and holds it.
async fn answer(state: &SimState, request: Request, next: Next) -> Response {
    let limit = state.config.cache_bytes;
    let cacheable = limit > 0 && request.uri().path().starts_with("/v2/aggs/");
    if !cacheable {
        return next.run(request).await;
    }
    let key = request.uri().to_string();
    if let Some(body) = lock(&state.cache).answers.get(&key).cloned() {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let body = full_body(response).await;
    let mut cache = lock(&state.cache);
    if cache.bytes + body.len() <= limit {
        cache.bytes += body.len();
        cache.answers.insert(key, body.clone());
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn authenticate(request: &Request, key: &str) -> Auth {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let query_key = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "apiKey")
            .map(|(_, v)| v.into_owned())
    });
    match (bearer, query_key) {
        (Some(given), _) if given == key => Auth::Bearer,
        (_, Some(given)) if given == key => Auth::QueryKey,
        (None, None) => Auth::Missing,
        _ => Auth::Wrong,
    }
}

fn redact_key(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.starts_with("apiKey="))
        .collect::<Vec<_>>()
        .join("&")
}

/// `Some(retry_after_seconds)` when the request exceeds the budget.
fn over_limit(state: &SimState, now: Instant) -> Option<Option<u64>> {
    let mut rate = lock(&state.rate);
    let limit = rate.limit?;
    while rate
        .accepted
        .front()
        .is_some_and(|t| *t + limit.window <= now)
    {
        rate.accepted.pop_front();
    }
    if rate.accepted.len() < limit.requests as usize {
        rate.accepted.push_back(now);
        return None;
    }
    let free_at = rate.accepted.front().map_or(now, |t| *t + limit.window);
    let wait = (free_at - now).as_secs_f64().ceil().max(1.0) as u64;
    Some(limit.retry_after.then_some(wait))
}

fn too_many_requests(request_id: &str, retry_after: Option<u64>) -> Response {
    let mut response = routes::error_reply(
        StatusCode::TOO_MANY_REQUESTS,
        "ERROR",
        "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://massive.com/pricing",
        request_id,
    );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn apply_fault(kind: FaultKind, request: Request, next: Next, request_id: &str) -> Response {
    match kind {
        FaultKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>",
        )
            .into_response(),
        FaultKind::BadGateway => StatusCode::BAD_GATEWAY.into_response(),
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            routes::error_reply(status, "ERROR", "Injected failure.", request_id)
        }
        FaultKind::TooManyRequests { retry_after } => too_many_requests(request_id, retry_after),
        FaultKind::Slow(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        FaultKind::MalformedJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"status\":\"OK\",\"results\":[{\"t\":oops}",
        )
            .into_response(),
        FaultKind::TruncatedBody => {
            let body = full_body(next.run(request).await).await;
            let half = body.slice(..body.len() / 2);
            ([(header::CONTENT_TYPE, "application/json")], half).into_response()
        }
        FaultKind::DropConnection => {
            let body = full_body(next.run(request).await).await;
            let total = body.len();
            let half = body.slice(..total / 2);
            let chunks: Vec<Result<Bytes, io::Error>> = vec![
                Ok(half),
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected drop")),
            ];
            let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            response
        }
    }
}

async fn full_body(response: Response) -> Bytes {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default()
}
