//! The JSON API behind the page: `/api/jobs`, `/api/runs`, `/api/rates`,
//! `/api/failures` and `/api/coverage`. Each reads the job table (and for
//! coverage the library's listing) on a blocking thread and answers JSON;
//! a job table that does not exist or cannot be read is a 503 with
//! `{"error": …}`, a bad query a 400. Field by field in `docs-ui.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::engine::{describe, wall_ms};
use crate::jobs::{CoverageRow, FailReason, Job, JobState, RunRecord};
use crate::model::{Ticker, Timeframe};
use crate::ranges::DateRange;

use super::UiSource;
use super::heatmap::{self, CellState, Grid};
use super::http::{error_response, json_response, render_index};
use super::query::{BadQuery, Query};
use super::rates::Rates;
use super::source::{Listing, Source, Unavailable};

use crate::jobs::runners::LEASE_MS;

/// At most this many running jobs are read (for runners and totals).
const MAX_RUNNING: usize = 10_000;

/// At most this many failed jobs are grouped.
const MAX_FAILED: usize = 10_000;

/// How long a coverage snapshot (listing and coverage) is reused.
const COVERAGE_TTL: Duration = Duration::from_secs(5);

/// Everything the handlers share.
pub(super) struct AppState {
    pub(super) source: Source,
    pub(super) rates: Mutex<Rates>,
    pub(super) index_html: String,
    /// Bound to loopback: answer only to loopback names (see `http::guard`).
    pub(super) loopback_only: bool,
    coverage: Mutex<Option<Arc<CoverageSnapshot>>>,
}

impl AppState {
    pub(super) fn new(settings: UiSource, local: Option<SocketAddr>) -> Self {
        let index_html = render_index(
            &settings.data_dir.display().to_string(),
            &settings.db.to_string(),
            &settings.version,
        );
        Self {
            source: Source::new(settings),
            rates: Mutex::new(Rates::default()),
            index_html,
            loopback_only: local.is_some_and(|a| a.ip().is_loopback()),
            coverage: Mutex::new(None),
        }
    }

    fn settings(&self) -> &UiSource {
        &self.source.settings
    }

    fn rates(&self) -> std::sync::MutexGuard<'_, Rates> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a request failed.
#[derive(Debug)]
pub(super) enum ApiFail {
    BadRequest(String),
    Unavailable(String),
    Internal(String),
}

impl From<Unavailable> for ApiFail {
    fn from(value: Unavailable) -> Self {
        Self::Unavailable(value.0)
    }
}

impl From<BadQuery> for ApiFail {
    fn from(value: BadQuery) -> Self {
        Self::BadRequest(value.0)
    }
}

impl ApiFail {
    fn response(&self) -> Response {
        match self {
            Self::BadRequest(m) => error_response(StatusCode::BAD_REQUEST, m),
            Self::Unavailable(m) => error_response(StatusCode::SERVICE_UNAVAILABLE, m),
            Self::Internal(m) => error_response(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

/// Runs `answer` on a blocking thread and turns it into a response.
async fn blocking(
    state: Arc<AppState>,
    answer: impl FnOnce(&AppState) -> Result<Value, ApiFail> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || answer(&state)).await {
        Ok(Ok(body)) => json_response(StatusCode::OK, &body),
        Ok(Err(fail)) => fail.response(),
        Err(e) => {
            tracing::error!("an API request failed: {e}");
            ApiFail::Internal("internal error while answering".into()).response()
        }
    }
}

/// Milliseconds to RFC 3339, for people reading the JSON.
fn iso(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `GET /api/jobs`.
pub(super) async fn jobs(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    if let Err(e) = Query::parse(raw.as_deref(), &[]) {
        return ApiFail::from(e).response();
    }
    blocking(state, jobs_body).await
}

/// The runners holding `running` jobs, as the page shows them.
fn runners(running: &[Job], now: i64) -> Vec<Value> {
    crate::jobs::runners::runners(running)
        .into_iter()
        .map(|r| {
            json!({
                "owner": r.owner,
                "host": r.host,
                "jobs": r.jobs,
                "last_heartbeat": r.last_heartbeat,
                "last_heartbeat_iso": iso(r.last_heartbeat),
                "lease_until": r.lease_until,
                "expired": r.expired(now),
                "tickers": r.tickers,
            })
        })
        .collect()
}

fn job_json(job: &Job, state: &AppState) -> Value {
    json!({
        "id": job.id,
        "job": describe(job),
        "kind": job.kind.as_str(),
        "ticker": job.ticker.as_str(),
        "timeframe": job.timeframe.to_string(),
        "from": job.range.start,
        "to": job.range.end,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "rows": job.rows,
        "requests": job.requests,
        "owner": job.owner,
        "updated_at": job.updated_at,
        "error": job.last_error.as_deref().map(|e| state.source.redacted(e)),
        "reason": job.fail_reason.map(FailReason::as_str),
    })
}

fn jobs_body(state: &AppState) -> Result<Value, ApiFail> {
    let (counts, totals, running) = state.source.read(|table| {
        Ok((
            table.counts()?,
            table.totals()?,
            table.list(Some(JobState::Running), MAX_RUNNING)?,
        ))
    })?;
    let now = wall_ms();
    let remaining = counts.pending + counts.running;
    let (eta, jobs_per_s) = {
        let rates = state.rates();
        (rates.eta_s(remaining), rates.pace())
    };
    let settings = state.settings();
    Ok(json!({
        "now": now,
        "library": settings.data_dir.display().to_string(),
        "db": settings.db.to_string(),
        "basis": settings.basis.name(),
        "version": settings.version,
        "counts": {
            "pending": counts.pending,
            "running": counts.running,
            "done": counts.done,
            "failed": counts.failed,
            "total": counts.total(),
        },
        "bars": totals.rows,
        "requests": totals.requests,
        "running": {
            "jobs": running.len(),
            "bars": running.iter().map(|j| j.rows).sum::<i64>(),
            "requests": running.iter().map(|j| j.requests).sum::<i64>(),
        },
        "eta_s": eta,
        "jobs_per_s": jobs_per_s,
        "runners": runners(&running, now),
        "active": running.iter().take(50).map(|j| job_json(j, state)).collect::<Vec<_>>(),
    }))
}

/// `GET /api/runs?limit=N`.
pub(super) async fn runs(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let limit =
        match Query::parse(raw.as_deref(), &["limit"]).and_then(|q| q.number("limit", 50, 1000)) {
            Ok(limit) => limit,
            Err(e) => return ApiFail::from(e).response(),
        };
    blocking(state, move |state| runs_body(state, limit)).await
}

/// What became of a run: `running`, `ok`, `failed`, `locked`,
/// `interrupted`, `exit N`, or `unfinished` (no end recorded and no sign of
/// life: the process died or was killed).
fn run_state(run: &RunRecord, live_owners: &BTreeSet<String>, now: i64) -> String {
    match (run.ended_at, run.exit_code) {
        (None, _) if live_owners.contains(&run.owner) || now - run.started_at < LEASE_MS => {
            "running".into()
        }
        (None, _) => "unfinished".into(),
        (Some(_), Some(0)) => "ok".into(),
        (Some(_), Some(1)) => "failed".into(),
        (Some(_), Some(2)) => "usage".into(),
        (Some(_), Some(3)) => "locked".into(),
        (Some(_), Some(130)) => "interrupted".into(),
        (Some(_), Some(code)) => format!("exit {code}"),
        (Some(_), None) => "ended".into(),
    }
}

fn runs_body(state: &AppState, limit: usize) -> Result<Value, ApiFail> {
    let (runs, running) = state.source.read(|table| {
        Ok((
            table.runs(limit)?,
            table.list(Some(JobState::Running), MAX_RUNNING)?,
        ))
    })?;
    let live: BTreeSet<String> = running.iter().filter_map(|j| j.owner.clone()).collect();
    let now = wall_ms();
    let runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            let mut value = serde_json::to_value(run).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("state".into(), json!(run_state(run, &live, now)));
                let end = run.ended_at.unwrap_or(now);
                map.insert(
                    "duration_s".into(),
                    json!((end - run.started_at).max(0) as f64 / 1000.0),
                );
                map.insert("started_at_iso".into(), json!(iso(run.started_at)));
                map.insert("ended_at_iso".into(), json!(run.ended_at.and_then(iso)));
            }
            value
        })
        .collect();
    Ok(json!({ "now": now, "runs": runs }))
}

/// `GET /api/rates`.
pub(super) async fn rates(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    if let Err(e) = Query::parse(raw.as_deref(), &[]) {
        return ApiFail::from(e).response();
    }
    blocking(state, |state| {
        // The table must be readable for rates to mean anything now.
        state.source.read(|table| table.counts())?;
        Ok(state.rates().to_json())
    })
    .await
}

/// `GET /api/failures?limit=N`.
pub(super) async fn failures(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let limit =
        match Query::parse(raw.as_deref(), &["limit"]).and_then(|q| q.number("limit", 20, 500)) {
            Ok(limit) => limit,
            Err(e) => return ApiFail::from(e).response(),
        };
    blocking(state, move |state| failures_body(state, limit)).await
}

/// Quotes `word` for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The command that retries failed jobs and runs them, with the options
/// the page was started with (see [`UiSource::command_flags`]).
pub(super) fn retry_command(settings: &UiSource) -> String {
    let globals: String = settings
        .command_flags
        .iter()
        .map(|f| format!(" {}", shell_word(f)))
        .collect();
    let adjusted = if settings.basis == crate::model::Basis::Adjusted {
        " --adjusted"
    } else {
        ""
    };
    format!("finpipe{globals} jobs retry --failed{adjusted} && finpipe{globals} run{adjusted}")
}

/// What to do about a reason before retrying.
fn hint(reason: FailReason) -> &'static str {
    match reason {
        FailReason::RateLimited => {
            "the server kept answering 429: set --rate-limit (or POLYGON_RATE_LIMIT) to your \
             plan's limit, then retry"
        }
        FailReason::Refused => {
            "the API key was refused: set a valid MASSIVE_API_KEY (or --api-key), then retry"
        }
        FailReason::NotEntitled => {
            "your plan does not include this data (403): retrying fails again until the plan \
             covers it; leave these tickers or timeframes out, or upgrade"
        }
        FailReason::Parse => {
            "an answer or a file could not be read: retry; if it fails again, report it with \
             the error below"
        }
        FailReason::Disk => {
            "the library's or the job table's storage failed: free space or fix permissions \
             where the error says, then retry"
        }
        FailReason::Network => {
            "the server could not be reached or kept failing (timeouts, 5xx): check the \
             network and --api-url / --flatfiles-url, then retry"
        }
        FailReason::Other => "read the error below, then retry",
    }
}

fn failures_body(state: &AppState, limit: usize) -> Result<Value, ApiFail> {
    let failed = state
        .source
        .read(|table| table.list(Some(JobState::Failed), MAX_FAILED))?;
    let mut groups: BTreeMap<FailReason, Vec<&Job>> = BTreeMap::new();
    for job in &failed {
        groups
            .entry(job.fail_reason.unwrap_or(FailReason::Other))
            .or_default()
            .push(job);
    }
    let command = retry_command(state.settings());
    let groups: Vec<Value> = FailReason::ALL
        .into_iter()
        .filter_map(|reason| {
            let jobs = groups.get(&reason)?;
            Some(json!({
                "reason": reason.as_str(),
                "label": reason.label(),
                "count": jobs.len(),
                "hint": hint(reason),
                "retry": command,
                "jobs": jobs.iter().take(limit).map(|j| job_json(j, state)).collect::<Vec<_>>(),
            }))
        })
        .collect();
    Ok(json!({
        "total": failed.len(),
        "truncated": failed.len() >= MAX_FAILED,
        "retry": command,
        "groups": groups,
    }))
}

/// One reading of coverage and files, reused for [`COVERAGE_TTL`].
struct CoverageSnapshot {
    at: Instant,
    /// Timeframe → ticker → covered ranges, of the library's basis.
    coverage: BTreeMap<Timeframe, BTreeMap<Ticker, Vec<DateRange>>>,
    listing: Listing,
    grids: Mutex<HashMap<Timeframe, Arc<Grid>>>,
}

impl CoverageSnapshot {
    /// The timeframes with coverage or files, shortest first (the order of
    /// `Timeframe`: unit, then multiplier).
    fn timeframes(&self) -> Vec<Timeframe> {
        let all: BTreeSet<Timeframe> = self
            .coverage
            .keys()
            .chain(self.listing.keys())
            .copied()
            .collect();
        all.into_iter().collect()
    }
}

fn snapshot(state: &AppState) -> Result<Arc<CoverageSnapshot>, ApiFail> {
    let mut slot = state
        .coverage
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(snap) = slot.as_ref().filter(|s| s.at.elapsed() < COVERAGE_TTL) {
        return Ok(Arc::clone(snap));
    }
    let rows: Vec<CoverageRow> = state.source.read(|table| table.all_coverage())?;
    let basis = state.settings().basis;
    let mut coverage: BTreeMap<Timeframe, BTreeMap<Ticker, Vec<DateRange>>> = BTreeMap::new();
    for (ticker, tf, b, range) in rows {
        if b == basis {
            coverage
                .entry(tf)
                .or_default()
                .entry(ticker)
                .or_default()
                .push(range);
        }
    }
    let listing = state.source.listing().map_err(|e| {
        ApiFail::Unavailable(
            state
                .source
                .redacted(&format!("cannot list the library: {e}")),
        )
    })?;
    let snap = Arc::new(CoverageSnapshot {
        at: Instant::now(),
        coverage,
        listing,
        grids: Mutex::new(HashMap::new()),
    });
    *slot = Some(Arc::clone(&snap));
    Ok(snap)
}

fn grid(state: &AppState, snap: &CoverageSnapshot, tf: Timeframe) -> Arc<Grid> {
    let mut grids = snap.grids.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(grid) = grids.get(&tf) {
        return Arc::clone(grid);
    }
    let empty = BTreeMap::new();
    let series = heatmap::series_of(
        snap.coverage.get(&tf).unwrap_or(&empty),
        snap.listing.get(&tf),
        |ticker| match state.source.covered_by_footers(ticker, tf) {
            Ok(ranges) => ranges,
            Err(e) => {
                tracing::warn!("coverage of {ticker} {tf} from its footers: {e}");
                Vec::new()
            }
        },
    );
    let today = state.settings().clock.now().date_naive();
    let grid = Arc::new(heatmap::build(tf, series, today));
    grids.insert(tf, Arc::clone(&grid));
    grid
}

/// What `/api/coverage` was asked.
struct CoverageQuery {
    timeframe: Option<Timeframe>,
    offset: usize,
    limit: usize,
    ticker: Option<String>,
    problems_only: bool,
}

fn coverage_query(raw: Option<&str>) -> Result<CoverageQuery, BadQuery> {
    let q = Query::parse(raw, &["timeframe", "offset", "limit", "ticker", "only"])?;
    let timeframe = match q.get("timeframe").filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<Timeframe>()
                .ok()
                .filter(|tf| tf.to_string() == text)
                .ok_or_else(|| {
                    BadQuery(format!(
                        "timeframe={:?} is not a timeframe (1m, 5m, 1h, 1d, …)",
                        text.chars().take(20).collect::<String>()
                    ))
                })?,
        ),
    };
    let ticker = q.get("ticker").filter(|t| !t.is_empty()).map(str::to_owned);
    if ticker.as_ref().is_some_and(|t| t.chars().count() > 64) {
        return Err(BadQuery("ticker= is at most 64 characters".into()));
    }
    let problems_only = match q.get("only") {
        None | Some("" | "all") => false,
        Some("problems") => true,
        Some(_) => return Err(BadQuery("only= takes all or problems".into())),
    };
    Ok(CoverageQuery {
        timeframe,
        offset: q.number("offset", 0, 10_000_000)?,
        limit: q.number("limit", 100, 1000)?,
        ticker,
        problems_only,
    })
}

/// `GET /api/coverage?timeframe=1m&offset=0&limit=100&ticker=AA&only=problems`.
pub(super) async fn coverage(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match coverage_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return ApiFail::from(e).response(),
    };
    blocking(state, move |state| coverage_body(state, &query)).await
}

fn coverage_body(state: &AppState, query: &CoverageQuery) -> Result<Value, ApiFail> {
    let snap = snapshot(state)?;
    let timeframes = snap.timeframes();
    let names: Vec<String> = timeframes.iter().map(ToString::to_string).collect();
    let base = json!({
        "timeframes": names,
        "basis": state.settings().basis.name(),
        "offset": query.offset,
        "limit": query.limit,
    });
    let Some(tf) = query.timeframe.or_else(|| timeframes.first().copied()) else {
        let mut body = base;
        body["timeframe"] = Value::Null;
        body["months"] = json!([]);
        body["periods"] = json!([]);
        body["frontier"] = Value::Null;
        body["series"] = json!(0);
        body["total"] = json!(0);
        body["summary"] = json!({});
        body["rows"] = json!([]);
        return Ok(body);
    };
    let grid = grid(state, &snap, tf);
    let needle = query.ticker.as_ref().map(|t| t.to_ascii_lowercase());
    let matching: Vec<&heatmap::Row> = grid
        .rows
        .iter()
        .filter(|row| {
            needle.as_ref().is_none_or(|n| {
                row.ticker
                    .as_str()
                    .to_ascii_lowercase()
                    .contains(n.as_str())
            })
        })
        .filter(|row| !query.problems_only || row.has_problem())
        .collect();
    let summary = grid.summary();
    let mut counted = serde_json::Map::new();
    for (i, cell_state) in CellState::COUNTED.iter().enumerate() {
        counted.insert(
            cell_state.name().into(),
            json!(summary.iter().map(|m| m[i]).collect::<Vec<_>>()),
        );
    }
    let rows: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|row| {
            json!({
                "ticker": row.ticker.as_str(),
                "files": row.files,
                "from_files": row.from_files,
                "cells": row.codes(),
                "covered_days": row.cells.iter().map(|c| c.covered).collect::<Vec<_>>(),
                "open_days": row.cells.iter().map(|c| c.open).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut body = base;
    body["timeframe"] = json!(tf.to_string());
    body["months"] = json!(
        grid.months
            .iter()
            .map(|m| m.format("%Y-%m").to_string())
            .collect::<Vec<_>>()
    );
    body["periods"] = json!(grid.periods);
    body["frontier"] = json!(grid.frontier);
    body["series"] = json!(grid.rows.len());
    body["total"] = json!(matching.len());
    body["summary"] = Value::Object(counted);
    body["rows"] = json!(rows);
    Ok(body)
}

/// What `/metrics` needs from the job table, read in one go.
pub(super) struct MetricsData {
    pub(super) counts: crate::jobs::StateCounts,
    pub(super) totals: crate::jobs::Totals,
    pub(super) failed_by_reason: BTreeMap<FailReason, usize>,
    pub(super) runners: usize,
    pub(super) runs: Vec<RunRecord>,
    /// The answers of 429 every run in the table got, summed.
    pub(super) rate_limited: u64,
    pub(super) requests_per_s: Option<f64>,
    pub(super) limit_per_s: Option<f64>,
}

pub(super) fn metrics_data(state: &AppState) -> Result<MetricsData, Unavailable> {
    let (counts, totals, failed, running, runs, rate_limited) = state.source.read(|table| {
        Ok((
            table.counts()?,
            table.totals()?,
            table.list(Some(JobState::Failed), MAX_FAILED)?,
            table.list(Some(JobState::Running), MAX_RUNNING)?,
            table.runs(200)?,
            table.rate_limited_total()?,
        ))
    })?;
    let mut failed_by_reason = BTreeMap::new();
    for job in &failed {
        *failed_by_reason
            .entry(job.fail_reason.unwrap_or(FailReason::Other))
            .or_insert(0) += 1;
    }
    let runners = running
        .iter()
        .filter_map(|j| j.owner.as_deref())
        .collect::<BTreeSet<_>>()
        .len();
    let (requests_per_s, limit_per_s) = {
        let rates = state.rates();
        let limit = super::rates::configured_limit(&runs);
        (
            rates.requests_now(),
            limit.as_deref().and_then(super::rates::per_second),
        )
    };
    Ok(MetricsData {
        counts,
        totals,
        failed_by_reason,
        runners,
        runs,
        rate_limited,
        requests_per_s,
        limit_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flags: &[&str], adjusted: bool) -> UiSource {
        UiSource {
            s3: None,
            data_dir: "data".into(),
            db: crate::jobs::DbLocation::Sqlite("data/.finpipe/finpipe.db".into()),
            basis: crate::model::Basis::from_adjusted(adjusted),
            command_flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            secrets: Vec::new(),
            clock: crate::clock::Clock::system(),
            version: "test".into(),
        }
    }

    #[test]
    fn retry_commands_carry_only_the_flags_given_quoted() {
        assert_eq!(
            retry_command(&settings(&[], false)),
            "finpipe jobs retry --failed && finpipe run"
        );
        assert_eq!(
            retry_command(&settings(
                &["--data-dir", "/srv/my bars", "--db", "it's.db"],
                true
            )),
            "finpipe --data-dir '/srv/my bars' --db 'it'\\''s.db' jobs retry --failed --adjusted \
             && finpipe --data-dir '/srv/my bars' --db 'it'\\''s.db' run --adjusted"
        );
    }

    #[test]
    fn coverage_queries_are_checked() {
        let q = coverage_query(Some("timeframe=1m&limit=5&only=problems&ticker=aa")).unwrap();
        assert_eq!(q.timeframe.map(|t| t.to_string()).as_deref(), Some("1m"));
        assert!(q.problems_only && q.limit == 5 && q.ticker.as_deref() == Some("aa"));
        for bad in [
            "timeframe=banana",
            "timeframe=1M",
            "only=some",
            "limit=-1",
            "page=2",
        ] {
            assert!(coverage_query(Some(bad)).is_err(), "{bad}");
        }
        let long = format!("ticker={}", "A".repeat(65));
        assert!(coverage_query(Some(&long)).is_err());
    }
}
