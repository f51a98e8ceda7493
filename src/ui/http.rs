//! The HTTP side of the page: the embedded assets, JSON and error
//! responses, the headers every answer carries, and the guard in front of
//! every route (query size, the Host check that keeps other web sites out of
//! a page bound to loopback).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::AppState;

/// The page, with `{{LIBRARY}}`, `{{DB}}` and `{{VERSION}}` filled in
/// (escaped) when the server starts.
pub(super) const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON: &str = include_str!("assets/favicon.svg");

/// The longest query string accepted (bytes): anything longer is refused.
pub(super) const MAX_QUERY: usize = 1024;

/// Only the page's own files: no inline script, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escapes text for HTML (element content and quoted attribute values).
pub(super) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page with its placeholders filled in, escaped.
pub(super) fn render_index(library: &str, db: &str, version: &str) -> String {
    INDEX_HTML
        .replace("{{LIBRARY}}", &escape_html(library))
        .replace("{{DB}}", &escape_html(db))
        .replace("{{VERSION}}", &escape_html(version))
}

fn asset(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) async fn index(State(state): State<Arc<AppState>>) -> Response {
    asset("text/html; charset=utf-8", state.index_html.clone())
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub(super) async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

/// A JSON answer.
pub(super) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = asset("application/json", bytes);
            *response.status_mut() = status;
            response
        }
        Err(e) => {
            tracing::error!("cannot encode an answer: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the answer",
            )
                .into_response()
        }
    }
}

/// A JSON error: `{"error": message}` with `status`.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// Any other path: 404, as JSON under `/api/` and as text elsewhere.
pub(super) async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        return error_response(
            StatusCode::NOT_FOUND,
            "no such endpoint: the API has /api/jobs, /api/runs, /api/rates, /api/failures \
             and /api/coverage",
        );
    }
    let mut response = asset(
        "text/plain; charset=utf-8",
        "404 not found: the page is at /, its JSON under /api/, metrics at /metrics\n",
    );
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The host a `Host` header names, without its port, lowercased.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::HOST)?.to_str().ok()?.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        value.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
}

/// Whether a request naming `host` may be answered by a page bound to
/// loopback: only names of this machine's loopback, so that a web site the
/// browser visits cannot read the page through a name it points here (DNS
/// rebinding).
fn loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// In front of every route: refuses oversized query strings (400) and, on a
/// loopback bind, foreign `Host` names (403); adds the security headers to
/// every answer.
pub(super) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let query_len = request.uri().query().map_or(0, str::len);
    let mut response = if query_len > MAX_QUERY {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "the query string is {query_len} bytes long; at most {MAX_QUERY} are accepted"
            ),
        )
    } else if state.loopback_only
        && !host_name(request.headers()).is_some_and(|h| loopback_host(&h))
    {
        error_response(
            StatusCode::FORBIDDEN,
            "this page answers only to localhost and loopback addresses (Host header refused)",
        )
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_placeholders_filled() {
        assert_eq!(
            escape_html(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        let page = render_index("<b>lib</b>", "db&", "1.0");
        assert!(page.contains("&lt;b&gt;lib&lt;/b&gt;"));
        assert!(!page.contains("<b>lib"));
        assert!(page.contains("db&amp;"));
        assert!(!page.contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        let name = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            host_name(&headers)
        };
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:8080",
            "LOCALHOST",
            "127.0.0.2",
        ] {
            assert!(loopback_host(&name(ok).unwrap()), "{ok}");
        }
        for bad in ["evil.example:8080", "10.0.0.1", "127.0.0.1.evil.example"] {
            assert!(!loopback_host(&name(bad).unwrap()), "{bad}");
        }
    }
}
