//! `finpipe ui`: a monitoring page served by the binary itself, beside any
//! running `run`, `backfill` or `update`.
//!
//! One page (HTML, JS and CSS embedded with `include_str!`, no CDN, no
//! network) and the JSON it polls: jobs by state, request and bar rates
//! against the configured limit, the runners at work, failed jobs grouped by
//! reason with the command that retries them, a coverage heatmap per
//! timeframe and the run history; plus `/metrics` in Prometheus's text
//! format. See `docs-ui.md` for every endpoint and field.
//!
//! It only reads: the job table through [`JobTable`](crate::jobs::JobTable)
//! (opened only once its file exists, so the page never creates one; no
//! lock is taken) and the library through directory listings and, for a
//! series the job table knows nothing of, the files' footers. Error texts
//! are redacted before they are served; every piece of data reaches the page
//! as JSON and is put into the DOM as text.
//!
//! The modules: `source` (the job table and the library, read on blocking
//! threads), `rates` (the sampler behind the rate chart), `api` (the JSON
//! endpoints), `heatmap` (coverage per ticker and month), `metrics`,
//! `query` (strict query parsing), `redact` (secrets out of error texts),
//! `http` (responses, headers, the Host check).

mod api;
mod heatmap;
mod http;
mod metrics;
mod query;
mod rates;
mod redact;
mod source;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::clock::Clock;
use crate::config::Secret;
use crate::jobs::DbLocation;
use crate::model::Basis;

pub use redact::redact;

/// The default `--bind`: loopback only, since the page has no login.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The environment variable that sets `--bind`.
pub const BIND_VAR: &str = "FINPIPE_UI_BIND";

/// What the page shows and how it names it.
#[derive(Clone, Debug)]
pub struct UiSource {
    /// The library's root directory (it may not exist yet).
    pub data_dir: PathBuf,
    /// The job table: a file (it may not exist yet; it is never created) or
    /// a PostgreSQL URL (shown with its password masked).
    pub db: DbLocation,
    /// The library's adjustment basis.
    pub basis: Basis,
    /// The global options every command printed by the page carries, e.g.
    /// `["--data-dir", "/srv/bars"]`: only those the page was started with
    /// that differ from the defaults.
    pub command_flags: Vec<String>,
    /// Values never to serve, wherever they would appear (the API key, the
    /// S3 secret): replaced in every error text.
    pub secrets: Vec<Secret>,
    /// "Today", for the coverage heatmap's last month.
    pub clock: Clock,
    /// finpipe's version, shown in the page's footer.
    pub version: String,
    /// How to reach an `s3://` library (unused for a local one; `None`:
    /// from the process environment).
    pub s3: Option<crate::store::blobs::S3Config>,
}

/// Why the page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve the page on {addr}: {source}")]
    Serve {
        addr: String,
        source: std::io::Error,
    },
}

/// Binds the page's listener.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, UiError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Bind { addr, source })
}

/// Whether serving on `addr` needs a warning that the page has no login:
/// any address but loopback.
pub fn exposed(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// The job table to read: `db`, or, when it is the default and missing, the
/// job table an older finpipe kept in the library's root (read where it is:
/// the page never moves it).
pub fn job_table_path(data_dir: &Path, db: DbLocation, default_db: bool) -> DbLocation {
    if default_db && db.sqlite_path().is_some_and(|path| !path.exists()) {
        let legacy = data_dir.join(crate::store::DB_FILE);
        if legacy.is_file() {
            return DbLocation::Sqlite(legacy);
        }
    }
    db
}

/// Serves the page on `listener` until `shutdown` completes. The rate
/// sampler runs meanwhile and stops with it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    source: UiSource,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    let local = listener.local_addr().ok();
    let addr = local.map_or_else(|| "?".to_owned(), |a| a.to_string());
    let state = Arc::new(api::AppState::new(source, local));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(rates::sample_forever(Arc::clone(&state), stop_rx));
    let app = router(Arc::clone(&state));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    sampler.abort();
    served.map_err(|source| UiError::Serve { addr, source })
}

/// The routes: the page, its assets, the JSON API and `/metrics`; anything
/// else is a 404.
fn router(state: Arc<api::AppState>) -> Router {
    Router::new()
        .route("/", get(http::index))
        .route("/index.html", get(http::index))
        .route("/app.js", get(http::script))
        .route("/app.css", get(http::style))
        .route("/favicon.svg", get(http::favicon))
        .route("/api/jobs", get(api::jobs))
        .route("/api/runs", get(api::runs))
        .route("/api/rates", get(api::rates))
        .route("/api/failures", get(api::failures))
        .route("/api/coverage", get(api::coverage))
        .route("/metrics", get(metrics::metrics))
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            http::guard,
        ))
        .with_state(state)
}

/// Opens `url` in the default browser (`xdg-open`, `open` on macOS,
/// `start` on Windows), without waiting for it. Best effort: the error
/// says why it could not be started.
pub fn open_browser(url: &str) -> std::io::Result<()> {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let mut child = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped on a thread of its own, so no zombie is left behind.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}
