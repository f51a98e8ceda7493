//! `/metrics`: the job table in Prometheus's text exposition format (0.0.4):
//! jobs by state, requests and bars recorded by the jobs, answers of 429
//! received by the recorded runs, failed jobs by reason (those that failed
//! on 429s are the `rate_limited` ones), runners at work, the recent
//! request rate and its limit, and when the last
//! successful `update` (and any run) ended. A job table that cannot be read
//! answers `finpipe_job_table_up 0` (still a 200, so the scrape says why).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::api::{AppState, MetricsData, metrics_data};
use super::http::error_response;
use super::query::Query;
use crate::jobs::FailReason;

/// The content type of the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Writes one metric family: its HELP, TYPE and samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The exposition of `data` (`None`: the job table could not be read).
pub(super) fn render(data: Option<&MetricsData>) -> String {
    let mut out = String::new();
    let up = if data.is_some() { 1.0 } else { 0.0 };
    family(
        &mut out,
        "finpipe_job_table_up",
        "gauge",
        "Whether the job table could be read (1) or not (0: missing, locked or damaged).",
        &[(String::new(), up)],
    );
    let Some(data) = data else {
        return out;
    };
    let counts = data.counts;
    family(
        &mut out,
        "finpipe_jobs",
        "gauge",
        "Jobs in the job table by state.",
        &[
            ("state=\"pending\"".into(), counts.pending as f64),
            ("state=\"running\"".into(), counts.running as f64),
            ("state=\"done\"".into(), counts.done as f64),
            ("state=\"failed\"".into(), counts.failed as f64),
        ],
    );
    family(
        &mut out,
        "finpipe_requests",
        "gauge",
        "REST requests recorded by the jobs in the table (drops when done jobs are cleared).",
        &[(String::new(), data.totals.requests as f64)],
    );
    family(
        &mut out,
        "finpipe_bars",
        "gauge",
        "Bars written by the jobs in the table (drops when done jobs are cleared).",
        &[(String::new(), data.totals.rows as f64)],
    );
    family(
        &mut out,
        "finpipe_rate_limited_answers_total",
        "counter",
        "Answers of 429 (rate limited) received by the runs recorded in the job table.",
        &[(String::new(), data.rate_limited as f64)],
    );
    let failed: Vec<(String, f64)> = FailReason::ALL
        .into_iter()
        .map(|reason| {
            let n = data.failed_by_reason.get(&reason).copied().unwrap_or(0);
            (
                format!(
                    "reason=\"{}\",label=\"{}\"",
                    label(reason.as_str()),
                    label(reason.label())
                ),
                n as f64,
            )
        })
        .collect();
    family(
        &mut out,
        "finpipe_failed_jobs",
        "gauge",
        "Failed jobs by reason; rate_limited are jobs that failed on 429s after every retry.",
        &failed,
    );
    family(
        &mut out,
        "finpipe_runners",
        "gauge",
        "Runners holding running jobs.",
        &[(String::new(), data.runners as f64)],
    );
    if let Some(rate) = data.requests_per_s {
        family(
            &mut out,
            "finpipe_request_rate",
            "gauge",
            "Requests per second recorded in the job table over the last 30 seconds.",
            &[(String::new(), rate)],
        );
    }
    if let Some(limit) = data.limit_per_s {
        family(
            &mut out,
            "finpipe_rate_limit",
            "gauge",
            "The configured rate limit of the newest run, in requests per second.",
            &[(String::new(), limit)],
        );
    }
    let ended_ok = |command: Option<&str>| {
        data.runs
            .iter()
            .filter(|r| command.is_none_or(|c| r.command == c) && r.exit_code == Some(0))
            .filter_map(|r| r.ended_at)
            .max()
    };
    if let Some(ms) = ended_ok(Some("update")) {
        family(
            &mut out,
            "finpipe_last_successful_update_timestamp_seconds",
            "gauge",
            "When the last finpipe update that exited 0 ended (Unix seconds).",
            &[(String::new(), ms as f64 / 1000.0)],
        );
    }
    if let Some(ms) = ended_ok(None) {
        family(
            &mut out,
            "finpipe_last_successful_run_timestamp_seconds",
            "gauge",
            "When the last run, backfill or update that exited 0 ended (Unix seconds).",
            &[(String::new(), ms as f64 / 1000.0)],
        );
    }
    out
}

/// `GET /metrics`.
pub(super) async fn metrics(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = Query::parse(raw.as_deref(), &[]) {
        return error_response(StatusCode::BAD_REQUEST, &e.0);
    }
    let text = tokio::task::spawn_blocking(move || match metrics_data(&state) {
        Ok(data) => render(Some(&data)),
        Err(unavailable) => {
            tracing::debug!("metrics: {}", unavailable.0);
            render(None)
        }
    })
    .await
    .unwrap_or_else(|_| render(None));
    let mut response = Response::new(text.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{RunRecord, StateCounts, Totals};
    use std::collections::BTreeMap;

    #[test]
    fn the_exposition_has_every_family_with_help_and_type() {
        let data = MetricsData {
            counts: StateCounts {
                pending: 1,
                running: 2,
                done: 3,
                failed: 4,
            },
            totals: Totals {
                requests: 10,
                rows: 2000,
            },
            failed_by_reason: BTreeMap::from([
                (FailReason::RateLimited, 3),
                (FailReason::Other, 1),
            ]),
            runners: 1,
            runs: vec![RunRecord {
                id: 1,
                command: "update".into(),
                owner: "h:1:1".into(),
                started_at: 1_000,
                ended_at: Some(1_733_000_000_000),
                jobs_done: 1,
                jobs_failed: 0,
                bars: 5,
                requests: 1,
                exit_code: Some(0),
                rate_limit: Some("5/min".into()),
                rate_limited: 2,
            }],
            rate_limited: 6,
            requests_per_s: Some(0.5),
            limit_per_s: Some(5.0 / 60.0),
        };
        let text = render(Some(&data));
        for line in [
            "finpipe_job_table_up 1",
            "finpipe_jobs{state=\"failed\"} 4",
            "finpipe_requests 10",
            "finpipe_bars 2000",
            "finpipe_rate_limited_answers_total 6",
            "finpipe_failed_jobs{reason=\"rate_limited\",label=\"429 storm\"} 3",
            "finpipe_failed_jobs{reason=\"disk\",label=\"disk\"} 0",
            "finpipe_last_successful_update_timestamp_seconds 1733000000",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{l}");
        }
        assert_eq!(
            render(None).trim_end().lines().last(),
            Some("finpipe_job_table_up 0")
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
