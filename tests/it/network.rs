//! The network side of the first hour (issue 13): settings that cannot work
//! are refused, credentials in URLs never show, a wrong `--api-url` fails
//! fast, Ctrl-C under a rate limit stops at once, and a 429 storm costs a
//! few 429s, not several per success.

use finpipe::simulator::s3::FlatServe;

use std::time::Duration;

use crate::common::{Workspace, simulator, simulator_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_refused_before_any_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let args = [
        "run-once",
        "AAPL",
        "--timeframes",
        "1d",
        "--start",
        "2024-11-18",
    ];
    let mut with_flag = vec!["--timeout", "0s"];
    with_flag.extend(args);
    let run = ws.run(&with_flag).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("invalid timeout \"0s\" (from flag --timeout)")
            && run.stderr.contains("every request would fail at once"),
        "{}",
        run.stderr
    );
    let ws = Workspace::for_sim(&sim).env("FINPIPE_TIMEOUT", "0");
    let run = ws.run(&args).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("FINPIPE_TIMEOUT"), "{}", run.stderr);
    assert!(sim.requests().is_empty(), "refused before any request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_urls_never_appear_in_output_even_at_trace_level() {
    const S3_KEY: &str = "flat-access";
    let sim = simulator_with(|c| {
        c.flat_files = Some(FlatServe {
            access_key: S3_KEY.to_owned(),
            only: Some(vec!["AAPL".to_owned()]),
            from: "2024-11-01".parse().unwrap(),
        });
    })
    .await;
    let with_user = |url: &str, user: &str, password: &str| {
        url.replacen("://", &format!("://{user}:{password}@"), 1)
    };
    let api_url = with_user(&sim.base_url(), "restuser", "rest-pw-4711");
    let flat_url = with_user(&sim.flatfiles_url().unwrap(), "flatuser", "flat-pw-0815");
    let ws = Workspace::for_sim(&sim)
        .env("MASSIVE_S3_ENDPOINT", &flat_url)
        .env("MASSIVE_S3_ACCESS_KEY", S3_KEY)
        .env("MASSIVE_S3_SECRET_KEY", "flat-secret");
    let config = ws.run(&["-vvv", "config"]).await;
    assert_eq!(config.code, 0, "{config:?}");
    // The flag as well as the environment; flat files for the older days,
    // REST for the rest.
    let backfill = ws
        .run(&[
            "-vvv",
            "--api-url",
            &api_url,
            "run-once",
            "AAPL",
            "--timeframes",
            "1m,1d",
            "--start",
            "2024-11-25",
        ])
        .await;
    assert_eq!(backfill.code, 0, "{backfill:?}");
    assert!(!sim.requests().is_empty(), "REST requests were sent");
    for run in [&config, &backfill] {
        let all = run.all_output();
        for secret in ["rest-pw-4711", "flat-pw-0815", "restuser", "flatuser"] {
            assert!(!all.contains(secret), "{secret} printed:\n{all}");
        }
        assert!(
            all.contains("carries a user name or password"),
            "a warning says the credentials are ignored:\n{}",
            run.stderr
        );
    }
    assert!(
        backfill.stderr.contains("TRACE"),
        "trace lines were printed"
    );
    // Only the key authenticated: the simulator saw no Basic credentials.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.auth == finpipe::simulator::Auth::Bearer),
        "{:?}",
        sim.requests()
    );
}

/// A port on loopback that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_url_fails_within_seconds_naming_the_host() {
    let sim = simulator().await;
    let refused = format!("http://127.0.0.1:{}", closed_port());
    for (url, host) in [
        (refused.as_str(), refused.trim_start_matches("http://")),
        ("http://api.massive.invalid", "api.massive.invalid"),
    ] {
        // The default rate limit (5/min) and retry settings: attempts that
        // never connected cost no slot of the limit.
        let mut ws = Workspace::for_sim(&sim).env("MASSIVE_API_BASE_URL", url);
        ws.unset("POLYGON_RATE_LIMIT");
        ws.unset("FINPIPE_RETRY_BASE");
        let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"]);
        let started = std::time::Instant::now();
        let run = ws
            .run(&[
                "backfill",
                &universe,
                "--timeframes",
                "1h",
                "--start",
                "2024-11-29",
            ])
            .await;
        let took = started.elapsed();
        assert_eq!(run.code, 1, "{url}: {run:?}");
        assert!(took < std::time::Duration::from_secs(8), "{url}: {took:?}");
        let stderr = run.stderr.to_lowercase();
        assert!(
            stderr.contains(&format!("cannot connect to the api at http://{host}"))
                && stderr.contains("check --api-url / massive_api_base_url"),
            "{url}: {}",
            run.stderr
        );
        // One message, not one per job; and no line both gives up and retries.
        assert_eq!(
            stderr.matches("error: cannot connect").count(),
            1,
            "{}",
            run.stderr
        );
        for line in run.stderr.lines() {
            assert!(
                !(line.contains("gave up") && line.contains("retrying")),
                "{line}"
            );
        }
        assert!(run.stdout.contains("finpipe: jobs done=0"), "{run:?}");
    }
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_under_a_rate_limit_stops_sending_at_once() {
    let sim = simulator().await;
    // Two requests a minute: the first two go at once, the other jobs wait
    // about a minute for the limiter.
    let ws = Workspace::for_sim(&sim).env("POLYGON_RATE_LIMIT", "2/min");
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"]);
    let child = ws
        .command(
            None,
            &[
                "backfill",
                &universe,
                "--timeframes",
                "1h",
                "--start",
                "2024-11-29",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.requests().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no request came");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The other jobs are waiting for the limiter now.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sent = sim.requests().len();
    assert_eq!(sent, 2, "{:?}", sim.requests());
    let pid = i32::try_from(child.id().unwrap()).unwrap();
    let signalled = std::time::Instant::now();
    // SAFETY: kill has no memory-safety preconditions; pid is our child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("finpipe exits within 5 s of Ctrl-C")
        .unwrap();
    let took = signalled.elapsed();
    let run = crate::common::Run::from_output(output);
    assert_eq!(run.code, 130, "{run:?}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sim.requests().len(), sent, "no request after Ctrl-C");
    assert!(
        run.stdout.contains("finpipe: jobs done=2 failed=0"),
        "{}",
        run.stdout
    );
    // The jobs given back run next time (at any limit), with nothing lost.
    let again = ws
        .command(None, &["run"])
        .env("POLYGON_RATE_LIMIT", "unlimited")
        .output()
        .await
        .unwrap();
    let again = crate::common::Run::from_output(again);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("jobs done=4 failed=0"),
        "{}",
        again.stdout
    );
}

/// `bars_new=` of the summary line.
fn bars_new(stdout: &str) -> u64 {
    let field = stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix("bars_new="))
        .unwrap_or_else(|| panic!("no bars_new in {stdout}"));
    field.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_new_counts_the_pages_stored_before_a_job_was_retried() {
    use finpipe::simulator::{Fault, FaultKind};
    let sim = simulator().await;
    // Three months of minutes are two pages; the second page fails twice,
    // more than the one retry allowed, so the job is tried again later in
    // the run and resumes at that page.
    let ws = Workspace::for_sim(&sim).env("FINPIPE_RETRIES", "1");
    sim.inject(
        Fault::next(FaultKind::ServerError, 2)
            .on("/v2/aggs/ticker/AAPL/")
            .after(1),
    );
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1m",
            "--start",
            "2024-09-03",
            "--end",
            "2024-11-29",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("retried=1"), "{}", run.stdout);
    assert_eq!(
        crate::common::aggregate_requests(&sim).len(),
        4,
        "page 1, page 2 failing twice, page 2"
    );
    let stored: usize = ws.library("data").values().map(Vec::len).sum();
    assert!(stored > 50_000, "{stored}");
    assert_eq!(bars_new(&run.stdout), stored as u64, "{}", run.stdout);
}

/// `n` stock tickers the simulator lists on 2024-11-29.
fn listed_stocks(sim: &finpipe::simulator::Simulator, n: usize) -> Vec<String> {
    let day = "2024-11-29".parse().unwrap();
    let tickers: Vec<String> = sim
        .market()
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.market == "stocks" && t.is_listed_on(day))
        .map(|t| t.ticker.clone())
        .take(n)
        .collect();
    assert_eq!(tickers.len(), n);
    tickers
}

/// A gate in front of the simulator with the real API's manners when
/// overloaded: it lets `requests` through in any sliding `window` and
/// answers the others 429 with a fixed `Retry-After` (often shorter than the
/// wait, as Polygon's "2" under a per-minute limit).
struct Gate {
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn gate(upstream: String, requests: usize, window: Duration, retry_after: u64) -> Gate {
    use axum::extract::{Request, State};
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    struct Inner {
        upstream: String,
        http: reqwest::Client,
        requests: usize,
        window: Duration,
        retry_after: u64,
        accepted: Mutex<VecDeque<Instant>>,
    }
    async fn pass(State(inner): State<Arc<Inner>>, request: Request) -> Response {
        let now = Instant::now();
        let admitted = {
            let mut accepted = inner.accepted.lock().unwrap();
            while accepted.front().is_some_and(|t| *t + inner.window <= now) {
                accepted.pop_front();
            }
            let admitted = accepted.len() < inner.requests;
            if admitted {
                accepted.push_back(now);
            }
            admitted
        };
        if !admitted {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"status":"ERROR","request_id":"gate","error":"You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue."}"#,
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(inner.retry_after));
            return response;
        }
        let url = format!("{}{}", inner.upstream, request.uri());
        let mut forward = inner.http.get(url);
        if let Some(auth) = request.headers().get(header::AUTHORIZATION) {
            forward = forward.header(header::AUTHORIZATION, auth.clone());
        }
        match forward.send().await {
            Ok(answer) => {
                let status = answer.status();
                let body = answer.bytes().await.unwrap_or_default();
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        }
    }

    let inner = Arc::new(Inner {
        upstream,
        http: reqwest::Client::new(),
        requests,
        window,
        retry_after,
        accepted: Mutex::new(VecDeque::new()),
    });
    let app = axum::Router::new().fallback(pass).with_state(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Gate {
        base_url: format!("http://{addr}"),
        task,
    }
}

/// 429 answers per successful request of a backfill of `tickers` (one
/// request each) against `sim` behind `base_url`, at finpipe's `rate_limit`.
async fn storm_cost(
    sim: &finpipe::simulator::Simulator,
    base_url: &str,
    rate_limit: &str,
    tickers: usize,
) -> (usize, usize, Duration) {
    let ws = Workspace::for_sim(sim)
        .env("MASSIVE_API_BASE_URL", base_url)
        .env("POLYGON_RATE_LIMIT", rate_limit);
    let names = listed_stocks(sim, tickers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let universe = ws.universe("u", &names);
    let started = std::time::Instant::now();
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1h",
            "--start",
            "2024-11-29",
        ])
        .await;
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("failed=0 retried=0"), "{}", run.stdout);
    let ok = sim.requests().iter().filter(|r| r.status == 200).count();
    let limited = run
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("requests="))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap()
        - ok;
    println!(
        "429 storm at {rate_limit}: {ok} successes cost {limited} answers of 429 ({:.2} per success) in {:.1} s",
        limited as f64 / ok as f64,
        took.as_secs_f64()
    );
    (ok, limited, took)
}

/// A server that allows fewer requests than finpipe's limit, "20 a minute
/// with `Retry-After: 2`" scaled to 20 per 10 s with `Retry-After: 1`:
/// after each pause every waiting request used to go at once and meet the
/// limit again (several 429s per success); now requests resume at the pace
/// the server showed, so the run costs a few 429s (README "How requests are
/// spent" keeps the figure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_costs_a_few_429s_not_several_per_success() {
    let sim = simulator().await;
    let gate = gate(sim.base_url(), 20, Duration::from_secs(10), 1).await;
    let (ok, limited, took) = storm_cost(&sim, &gate.base_url, "100/s", 40).await;
    assert_eq!(ok, 40);
    assert!(limited * 2 <= ok, "{limited} 429s for {ok} successes");
    // The server's pace is the floor: 40 requests at 20 per 10 s.
    assert!(took >= Duration::from_secs(10), "{took:?}");
    assert!(took <= Duration::from_secs(40), "{took:?}");
}

/// The simulator's own limit (20 per 2 s, an honest `Retry-After`): the
/// first burst meets it once, later requests come at its pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_retry_after_is_met_once() {
    use finpipe::simulator::SimRateLimit;
    let sim = simulator_with(|c| {
        c.rate_limit = Some(SimRateLimit {
            requests: 20,
            window: Duration::from_secs(2),
            retry_after: true,
        });
    })
    .await;
    let (ok, limited, took) = storm_cost(&sim, &sim.base_url(), "100/s", 80).await;
    assert_eq!(ok, 80);
    assert!(limited * 5 <= ok, "{limited} 429s for {ok} successes");
    assert!(took >= Duration::from_secs(6), "{took:?}");
}
