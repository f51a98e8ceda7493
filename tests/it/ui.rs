//! `finpipe ui`: the monitoring page and its JSON, against a job table and a
//! library written by a real backfill against the simulator; and the page in
//! a real headless Chromium over a library with a backfill running.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use finpipe::simulator::{Fault, FaultKind, Simulator};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{Workspace, simulator};

/// A ticker finpipe accepts (no `/`, no space) that would run as a script
/// if the page ever put data into HTML.
const HOSTILE: &str = "<SCRIPT>alert(1)<&\"'>";

/// A running `finpipe ui`, killed when dropped.
struct Ui {
    _child: tokio::process::Child,
    base: String,
}

impl Ui {
    async fn start(ws: &Workspace, extra: &[&str]) -> Ui {
        let mut args = vec!["ui", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = ws
            .command(None, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("finpipe ui starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("finpipe ui: serving ") {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("finpipe ui ended without saying where it serves");
        })
        .await
        .expect("finpipe ui says where it serves");
        // Drain the rest so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ui {
            _child: child,
            base,
        }
    }

    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body, headers) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            headers["content-type"], "application/json",
            "{path} is served as JSON"
        );
        serde_json::from_str(&body).unwrap()
    }
}

/// `finpipe status --json`'s job counts.
async fn status_counts(ws: &Workspace) -> Value {
    let status = ws.run(&["status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let json: Value = serde_json::from_str(&status.stdout).unwrap();
    json["jobs"].clone()
}

/// A workspace whose library holds AAPL and MSFT in 1h over three months,
/// the hostile ticker (done, no bars: its coverage has no file) and NVDA's
/// job failed for good (403: not in the plan).
async fn library_with_a_failure(sim: &Simulator) -> Workspace {
    let ws = Workspace::for_sim(sim).env("FINPIPE_RETRIES", "1");
    sim.inject(Fault::next(FaultKind::Status(403), 1000).on("/v2/aggs/ticker/NVDA/"));
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA", HOSTILE]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1h",
            "--start",
            "2024-09-03",
            "--end",
            "2024-11-29",
        ])
        .await;
    assert_eq!(run.code, 1, "NVDA fails for good: {run:?}");
    ws
}

/// The samples of a Prometheus text exposition: `name{labels}` → value;
/// panics on a line that is not one.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut typed = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap();
            let kind = words.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(typed.contains(name), "{name} has a TYPE line before it");
        let labels = &series[name.len()..];
        assert!(
            labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
            "{line}"
        );
        samples.push((series.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("{series} in {samples:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_job_table_runs_coverage_failures_and_metrics() {
    let sim = simulator().await;
    let ws = library_with_a_failure(&sim).await;
    let counts = status_counts(&ws).await;
    let ui = Ui::start(&ws, &[]).await;

    // Jobs: the same counts as `finpipe status --json`.
    let jobs = ui.json("/api/jobs").await;
    for state in ["pending", "running", "done", "failed"] {
        assert_eq!(jobs["counts"][state], counts[state], "{state}: {jobs}");
    }
    assert_eq!(jobs["counts"]["failed"], 1, "{jobs}");
    assert_eq!(jobs["counts"]["total"], 4, "{jobs}");
    assert!(jobs["bars"].as_u64().unwrap() > 0, "{jobs}");
    assert!(jobs["requests"].as_u64().unwrap() >= 4, "{jobs}");
    assert_eq!(jobs["runners"], serde_json::json!([]), "nobody runs now");
    assert_eq!(jobs["eta_s"], 0.0, "nothing left: {jobs}");

    // Runs: the backfill, ended, with its numbers.
    let runs = ui.json("/api/runs").await;
    let run = &runs["runs"][0];
    assert_eq!(run["command"], "backfill", "{runs}");
    assert_eq!(run["exit_code"], 1, "{runs}");
    assert_eq!(run["state"], "failed", "{runs}");
    assert_eq!(run["jobs_done"], 3, "{runs}");
    assert_eq!(run["jobs_failed"], 1, "{runs}");
    assert!(run["ended_at"].as_i64().unwrap() >= run["started_at"].as_i64().unwrap());
    assert!(run["bars"].as_u64().unwrap() > 0, "{runs}");
    assert_eq!(run["rate_limit"], "unlimited", "{runs}");
    assert_eq!(run["rate_limited"], 0, "no 429 injected: {runs}");

    // Coverage: one row per ticker with coverage, by the rules of verify.
    let coverage = ui.json("/api/coverage").await;
    assert_eq!(coverage["timeframe"], "1h", "{coverage}");
    assert_eq!(coverage["timeframes"], serde_json::json!(["1h"]));
    assert_eq!(
        coverage["months"],
        serde_json::json!(["2024-09", "2024-10", "2024-11"])
    );
    assert_eq!(coverage["frontier"], "2024-11-29");
    let rows = coverage["rows"].as_array().unwrap();
    let tickers: Vec<&str> = rows.iter().map(|r| r["ticker"].as_str().unwrap()).collect();
    assert_eq!(tickers, [HOSTILE, "AAPL", "MSFT"], "{coverage}");
    assert_eq!(coverage["series"], 3);
    let cells = |t: &str| rows.iter().find(|r| r["ticker"] == t).unwrap()["cells"].clone();
    assert_eq!(cells("AAPL"), "ccc");
    assert_eq!(cells("MSFT"), "ccc");
    // Covered (an empty answer) but no file: lost, as verify says.
    assert_eq!(cells(HOSTILE), "lll");
    let lost = ui.json("/api/coverage?timeframe=1h&only=problems").await;
    assert_eq!(lost["total"], 1, "{lost}");
    let page = ui
        .json("/api/coverage?timeframe=1h&ticker=ms&limit=1")
        .await;
    assert_eq!(page["rows"][0]["ticker"], "MSFT", "{page}");
    assert_eq!(page["total"], 1);

    // Failures: NVDA's job, grouped by its reason, with the retry command.
    let failures = ui.json("/api/failures").await;
    assert_eq!(failures["total"], 1, "{failures}");
    let groups = failures["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{failures}");
    assert_eq!(groups[0]["reason"], "not_entitled", "{failures}");
    assert_eq!(groups[0]["label"], "not entitled");
    assert_eq!(groups[0]["count"], 1);
    assert_eq!(groups[0]["jobs"][0]["ticker"], "NVDA");
    assert_eq!(
        groups[0]["retry"],
        "finpipe jobs retry --failed && finpipe run"
    );
    assert!(
        groups[0]["jobs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("NVDA"),
        "{failures}"
    );

    // Rates: the configured limit of the last run.
    let rates = ui.json("/api/rates").await;
    assert_eq!(rates["limit"]["text"], "unlimited", "{rates}");
    assert_eq!(rates["limit"]["requests_per_s"], Value::Null);

    // Metrics: Prometheus text with the same counts.
    let (status, text, headers) = ui.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let samples = parse_prometheus(&text);
    for state in ["pending", "running", "done", "failed"] {
        assert_eq!(
            sample(&samples, &format!("finpipe_jobs{{state=\"{state}\"}}")),
            counts[state].as_f64().unwrap(),
            "{text}"
        );
    }
    assert_eq!(sample(&samples, "finpipe_job_table_up"), 1.0);
    assert_eq!(
        sample(&samples, "finpipe_bars"),
        jobs["bars"].as_f64().unwrap()
    );
    assert_eq!(
        sample(&samples, "finpipe_requests"),
        jobs["requests"].as_f64().unwrap()
    );
    assert_eq!(
        sample(
            &samples,
            "finpipe_failed_jobs{reason=\"not_entitled\",label=\"not entitled\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&samples, "finpipe_rate_limited_answers_total"),
        0.0,
        "no 429 injected: {text}"
    );
    assert!(
        text.contains("# TYPE finpipe_rate_limited_answers_total counter"),
        "{text}"
    );

    // Unknown routes are 404; bad queries 400 with a JSON error.
    let (status, body, _) = ui.get("/api/nope").await;
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    assert_eq!(ui.get("/wp-admin.php").await.0, 404);
    let long = format!("/api/coverage?ticker={}", "A".repeat(1100));
    for bad in [
        "/api/coverage?timeframe=banana",
        "/api/coverage?timeframe=1h&timeframe=1d",
        "/api/coverage?limit=-3",
        "/api/coverage?only=%zz",
        "/api/runs?limit=many",
        "/api/jobs?x=1",
        long.as_str(),
    ] {
        let (status, body, headers) = ui.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(headers["content-type"], "application/json", "{bad}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(!error["error"].as_str().unwrap().is_empty(), "{bad}");
    }

    // The hostile ticker is data: served escaped as JSON, never as HTML; the
    // page builds its DOM with textContent and forbids inline scripts.
    let (_, raw, headers) = ui.get("/api/coverage").await;
    assert!(raw.contains(r#""<SCRIPT>alert(1)<&\"'>""#), "{raw}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let (status, html, _) = ui.get("/").await;
    assert_eq!(status, 200);
    assert!(!html.contains("SCRIPT>alert"), "no data in the page's HTML");
    let (_, script, _) = ui.get("/app.js").await;
    assert!(!script.contains("innerHTML") && !script.contains("outerHTML"));
    assert!(!script.contains("insertAdjacentHTML") && !script.contains("document.write"));

    // No secret is ever served.
    for path in [
        "/api/jobs",
        "/api/runs",
        "/api/failures",
        "/api/coverage",
        "/metrics",
        "/",
    ] {
        let (_, body, _) = ui.get(path).await;
        assert!(!body.contains(sim.api_key()), "{path} shows the API key");
    }

    // A name that is not this machine's cannot read a page bound to loopback.
    let refused = reqwest::Client::new()
        .get(format!("{}/api/jobs", ui.base))
        .header("host", "rebound.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_job_table_the_api_says_so_with_a_503_and_creates_nothing() {
    let ws = Workspace::new();
    // A hostile library name, to see the page's own HTML escape it.
    let dir = "lib<b>&\"'";
    let ui = Ui::start(&ws, &["--data-dir", dir]).await;
    for path in [
        "/api/jobs",
        "/api/runs",
        "/api/failures",
        "/api/coverage",
        "/api/rates",
    ] {
        let (status, body, headers) = ui.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(headers["content-type"], "application/json");
        let error: Value = serde_json::from_str(&body).unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains("no job table") && message.contains("finpipe.db"),
            "{path}: {message}"
        );
    }
    let (status, metrics, _) = ui.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(&parse_prometheus(&metrics), "finpipe_job_table_up"),
        0.0
    );
    let (_, html, _) = ui.get("/").await;
    assert!(html.contains("lib&lt;b&gt;&amp;&quot;&#39;"), "{html}");
    assert!(!html.contains("lib<b>"), "escaped in the server's HTML");
    assert!(
        !ws.join(dir).exists(),
        "neither the library nor its job table is created"
    );
}

/// The Chromium to drive: `FINPIPE_TEST_CHROMIUM`, else one on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FINPIPE_TEST_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `url` with `extra` options; its stdout.
async fn headless(chromium: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    let mut command = tokio::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=8000")
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finishes within 2 minutes")
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The names of the elements of serialized HTML, in order (attribute
/// values skipped, whatever they hold).
fn element_names(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '<' || !chars.peek().is_some_and(char::is_ascii_alphabetic) {
            continue;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if !c.is_ascii_alphanumeric() && c != '-' {
                break;
            }
            name.push(c.to_ascii_lowercase());
            chars.next();
        }
        names.push(name);
        // The rest of the tag: quoted values may hold `<` and `>`.
        let mut quote = None;
        for c in chars.by_ref() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => break,
                _ => {}
            }
        }
    }
    names
}

/// The value of `attr` in the first tag that holds `marker`.
fn attribute<'a>(dom: &'a str, marker: &str, attr: &str) -> Option<&'a str> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!("{attr}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(&tag[from..from + len])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_live_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "no Chromium found (FINPIPE_TEST_CHROMIUM or chromium on the PATH): \
                 .ci/run installs the Debian package chromium"
            );
        }
        eprintln!(
            "skipped: no Chromium (set FINPIPE_TEST_CHROMIUM or install the Debian package \
             chromium; .ci/run installs it)"
        );
        return;
    };
    let sim = simulator().await;
    let ws = library_with_a_failure(&sim).await;
    // Then a slow backfill of other tickers in 1d, left running while the
    // browser looks: the 1h heatmap the page opens on stays as it is.
    let others: Vec<String> = sim
        .market()
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.market == "stocks" && t.active)
        .map(|t| t.ticker.clone())
        .filter(|t| !["AAPL", "MSFT", "NVDA"].contains(&t.as_str()))
        .take(50)
        .collect();
    assert!(others.len() >= 20, "{others:?}");
    let names: Vec<&str> = others.iter().map(String::as_str).collect();
    let universe = ws.universe("others", &names);
    sim.inject(Fault::next(FaultKind::Slow(Duration::from_millis(500)), 10_000).on("/v2/aggs/"));
    let _backfill = ws
        .command(
            None,
            &[
                "-q",
                "backfill",
                &universe,
                "--timeframes",
                "1d",
                "--start",
                "2024-09-03",
                "--end",
                "2024-11-29",
                "--concurrency",
                "1",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ui = Ui::start(&ws, &[]).await;
    // Once a job runs, the plan is in the table: the total stays.
    let started = Instant::now();
    let total = loop {
        let (status, body, _) = ui.get("/api/jobs").await;
        if status == 200 {
            let jobs: Value = serde_json::from_str(&body).unwrap();
            let total = jobs["counts"]["total"].as_u64().unwrap();
            if total > 4 && jobs["counts"]["running"].as_u64() > Some(0) {
                break usize::try_from(total).unwrap();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backfill plans its jobs and runs: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/", ui.base);
    let dom = headless(&chromium, profile.path(), &url, &["--dump-dom".to_owned()]).await;

    // The job counts, summing to the table's jobs; the one failure.
    let count = |state: &str| -> usize {
        attribute(&dom, &format!("id=\"count-{state}\""), "data-count")
            .unwrap_or_else(|| panic!("count-{state} in\n{dom}"))
            .parse()
            .unwrap_or_else(|_| panic!("count-{state} is rendered in\n{dom}"))
    };
    let counted: usize = ["pending", "running", "done", "failed"]
        .iter()
        .map(|s| count(s))
        .sum();
    assert_eq!(counted, total, "{dom}");
    assert_eq!(count("failed"), 1);
    // One heatmap row per ticker of the 1h coverage, the hostile one as text.
    let rows = dom.matches("class=\"hm-row\"").count();
    assert_eq!(rows, 3, "{dom}");
    for ticker in ["AAPL", "MSFT"] {
        assert!(
            dom.contains(&format!("data-ticker=\"{ticker}\"")),
            "{ticker}"
        );
    }
    assert!(
        dom.contains("&lt;SCRIPT&gt;alert(1)&lt;&amp;\"'&gt;"),
        "the hostile ticker is shown as text:\n{dom}"
    );
    let scripts = element_names(&dom)
        .iter()
        .filter(|name| *name == "script")
        .count();
    assert_eq!(scripts, 1, "only the page's own script element:\n{dom}");
    assert!(dom.contains("<script src=\"/app.js\""), "{dom}");
    // The failed job, grouped by reason, with its retry command.
    assert!(dom.contains("data-reason=\"not_entitled\""), "{dom}");
    assert!(
        dom.contains("finpipe jobs retry --failed &amp;&amp; finpipe run"),
        "{dom}"
    );
    assert!(dom.contains("<tr data-job-id="), "{dom}");
    assert!(
        attribute(&dom, "class=\"failure-group\"", "data-reason") == Some("not_entitled"),
        "{dom}"
    );
    // The runner at work and the run history; no error on the page.
    assert!(dom.contains("<tr data-owner="), "a runner: {dom}");
    assert!(dom.contains("<tr data-run-id="), "a run: {dom}");
    assert!(
        attribute(&dom, "id=\"banner\"", "hidden").is_some(),
        "no error banner: {dom}"
    );
    assert_eq!(
        attribute(&dom, "id=\"live\"", "data-live"),
        Some("ok"),
        "{dom}"
    );

    // And a picture of it, for people, once the charts have a few samples.
    let started = Instant::now();
    while ui.json("/api/rates").await["points"]
        .as_array()
        .unwrap()
        .len()
        < 4
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "rates are sampled"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shot = ws.join("ui.png");
    headless(
        &chromium,
        profile.path(),
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_owned(),
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("the screenshot is written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui.png");
    if std::fs::copy(&shot, &kept).is_ok() {
        println!("screenshot: {}", kept.display());
    }
}

/// A job table another process holds locked (exclusive locking mode, as a
/// long write would) is a 503 with a message saying so, not a 500, once
/// the table's busy timeout ran out; the page keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_job_table_is_a_503_that_says_so() {
    let ws = Workspace::new();
    let db = ws.join("data/.finpipe/finpipe.db");
    finpipe::jobs::JobTable::open(&db).unwrap().close().unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .unwrap();
    let ui = Ui::start(&ws, &[]).await;
    let (status, body, _) = ui.get("/api/jobs").await;
    assert_eq!(status, 503, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("locked by another process") && message.contains("finpipe.db"),
        "{message}"
    );
    let (status, _, _) = ui.get("/").await;
    assert_eq!(status, 200, "the page itself is served");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
}
