//! The REST client against the simulator: the shared limiter measured from the
//! server's own request log, a 429 storm, 5xx bursts, garbled and cut bodies.

use std::time::Duration;

use chrono::NaiveDate;
use finpipe::config::Secret;
use finpipe::polygon::{AggBar, ApiError, Client, ClientOptions, RateLimit, RetryPolicy, endpoint};
use finpipe::simulator::aggregate::{AggQuery, RangeBound, Timespan, range_aggregates};
use finpipe::simulator::{Fault, FaultKind, SimRateLimit, Simulator};
use tokio::time::Instant;

use crate::common::{max_in_window, simulator_with};

fn client(sim: &Simulator, rate_limit: RateLimit) -> Client {
    Client::new(ClientOptions {
        base_url: sim.base_url(),
        api_key: Secret::new(sim.api_key()),
        rate_limit,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
        shared_rate: None,
    })
    .unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// Every minute bar of `ticker` over the week, page by page (1000 bars a page).
async fn minute_pages(client: &Client, ticker: &str) -> Result<(Vec<AggBar>, usize), ApiError> {
    let path = format!("/v2/aggs/ticker/{ticker}/range/1/minute/2024-11-04/2024-11-08");
    let first = endpoint(
        &path,
        &[("adjusted", "false"), ("sort", "asc"), ("limit", "1000")],
    );
    let mut pages = client.pages::<AggBar>(first, vec![("adjusted", "false".into())]);
    let (mut bars, mut count) = (Vec::new(), 0);
    while let Some(page) = pages.next_page().await? {
        assert_eq!(
            page.adjusted,
            Some(false),
            "adjusted is sent again on every page"
        );
        bars.extend(page.results);
        count += 1;
    }
    Ok((bars, count))
}

/// The same bars straight from the simulator's market, in one piece.
fn expected_minutes(sim: &Simulator, ticker: &str) -> Vec<AggBar> {
    let info = sim.market().reference().find(ticker).unwrap();
    let query = AggQuery {
        multiplier: 1,
        timespan: Timespan::Minute,
        from: RangeBound::Date(date("2024-11-04")),
        to: RangeBound::Date(date("2024-11-08")),
        adjusted: false,
        limit: usize::MAX,
    };
    range_aggregates(sim.market(), info, &query)
        .bars
        .into_iter()
        .map(|b| AggBar {
            t: b.t,
            o: b.o,
            h: b.h,
            l: b.l,
            c: b.c,
            v: b.v,
            vw: b.vw,
            n: b.n,
        })
        .collect()
}

const TICKERS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_limiter_never_exceeds_its_rate_in_any_window_of_the_server() {
    let sim = simulator_with(|_| {}).await;
    let client = client(&sim, RateLimit::per_second(10));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                let types: serde_json::Value = client
                    .get_json("/v3/reference/tickers/types")
                    .await
                    .unwrap();
                assert_eq!(types["status"], "OK");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let times: Vec<Duration> = sim.requests().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 32);
    assert_eq!(client.stats().requests(), 32);
    let busiest = max_in_window(&times, Duration::from_secs(1));
    assert_eq!(
        busiest, 10,
        "at most 10 in any second, and the budget is used"
    );
    // 32 requests at 10 a second need three more windows after the first burst.
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

async fn storm(retry_after: bool) {
    let sim = simulator_with(|c| {
        c.rate_limit = Some(SimRateLimit {
            requests: 10,
            window: Duration::from_secs(1),
            retry_after,
        });
    })
    .await;
    // Our limit is four times what the server allows.
    let client = client(&sim, RateLimit::per_second(40));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ticker in TICKERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            (ticker, minute_pages(&client, ticker).await)
        }));
    }
    let mut pages_total = 0;
    for task in tasks {
        let (ticker, result) = task.await.unwrap();
        let (bars, pages) = result.unwrap_or_else(|e| panic!("{ticker}: {e}"));
        assert!(pages >= 3, "{ticker}: {pages} pages");
        assert_eq!(
            bars,
            expected_minutes(&sim, ticker),
            "{ticker}: every bar once, in order"
        );
        pages_total += pages;
    }
    let elapsed = started.elapsed();
    let log = sim.requests();
    let ok = log.iter().filter(|r| r.status == 200).count();
    let limited = log.iter().filter(|r| r.status == 429).count();
    assert_eq!(ok, pages_total, "every page arrived exactly once");
    assert!(limited > 0, "the storm happened");
    assert_eq!(client.stats().rate_limited() as usize, limited);
    // The server lets 10 through per second: the floor is (pages/10 - 1) s.
    let floor = Duration::from_secs_f64(pages_total as f64 / 10.0 - 1.0);
    assert!(elapsed >= floor, "{elapsed:?} < {floor:?}");
    assert!(
        elapsed <= floor * 3 + Duration::from_secs(2),
        "{elapsed:?} for {pages_total} pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_with_retry_after_loses_nothing_and_runs_near_the_server_limit() {
    storm(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_without_retry_after_loses_nothing_and_runs_near_the_server_limit() {
    storm(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_5xx_drops_and_cut_bodies_are_survived() {
    let sim = simulator_with(|_| {}).await;
    let client = client(&sim, RateLimit::Unlimited);
    for kind in [
        FaultKind::ServerError,
        FaultKind::BadGateway,
        FaultKind::Status(503),
        FaultKind::DropConnection,
        FaultKind::TruncatedBody,
        FaultKind::MalformedJson,
    ] {
        sim.clear_requests();
        sim.inject(Fault::next(kind.clone(), 3).on("/v2/aggs/").after(1));
        let before = client.stats().retries();
        let (bars, _) = minute_pages(&client, "AAPL")
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(bars, expected_minutes(&sim, "AAPL"), "{kind:?}");
        assert_eq!(client.stats().retries() - before, 3, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_end_with_clear_errors_after_the_retry_budget() {
    let sim = simulator_with(|_| {}).await;
    let client = client(&sim, RateLimit::Unlimited);
    let cases = [
        (
            FaultKind::MalformedJson,
            "malformed response from /v2/aggs/ticker/AAPL/range/1/minute/2024-11-04/2024-11-08",
        ),
        (FaultKind::TruncatedBody, "EOF while parsing"),
        (FaultKind::ServerError, "HTTP 500"),
        (FaultKind::DropConnection, "request to /v2/aggs/"),
    ];
    for (kind, expected) in cases {
        sim.clear_faults();
        sim.clear_requests();
        sim.inject(Fault::next(kind.clone(), 100));
        let error = minute_pages(&client, "AAPL").await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains(expected), "{kind:?}: {text}");
        assert!(
            text.contains("gave up after 6 attempts"),
            "{kind:?}: {text}"
        );
        assert_eq!(sim.requests().len(), 6, "{kind:?}: 1 try + 5 retries");
    }
    sim.clear_faults();
    for (status, expected) in [
        (403, "plan does not cover"),
        (404, "HTTP 404"),
        (400, "HTTP 400"),
    ] {
        sim.clear_requests();
        sim.inject(Fault::next(FaultKind::Status(status), 1));
        let error = minute_pages(&client, "AAPL").await.unwrap_err();
        assert_eq!(error.status(), Some(status));
        assert!(error.to_string().contains(expected), "{error}");
        assert!(error.to_string().contains("request_id"), "{error}");
        assert_eq!(sim.requests().len(), 1, "{status} is not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_fatal_at_once() {
    let sim = simulator_with(|_| {}).await;
    let bad = Client::new(ClientOptions {
        base_url: sim.base_url(),
        api_key: Secret::new("not-the-key"),
        rate_limit: RateLimit::Unlimited,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy::default(),
        shared_rate: None,
    })
    .unwrap();
    let error = minute_pages(&bad, "AAPL").await.unwrap_err();
    assert!(error.is_fatal());
    let text = error.to_string();
    assert!(
        text.contains("Unknown API Key") && text.contains("MASSIVE_API_KEY or POLYGON_API_KEY"),
        "{text}"
    );
    assert_eq!(sim.requests().len(), 1);

    // Many callers sharing two places: once the key was refused, the requests
    // waiting for a place are not sent.
    let places = std::sync::Arc::new(tokio::sync::Semaphore::new(2));
    let calls = (0..8).map(|_| {
        let (bad, places) = (bad.clone(), std::sync::Arc::clone(&places));
        tokio::spawn(async move {
            let place = places.acquire_owned().await.ok();
            bad.get_json_in::<serde_json::Value>("/v3/reference/tickers/types", place)
                .await
        })
    });
    for call in futures_util::future::join_all(calls).await {
        assert!(matches!(call.unwrap(), Err(ApiError::Unauthorized(_))));
    }
    assert_eq!(
        sim.requests().len(),
        1,
        "nothing sent after the first refusal"
    );
}

/// A place (the caller's bound on requests in flight) is given back with
/// every answer, and a retry takes a new one: with one place, an attempt that
/// kept its place across the retry would wait for itself forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_place_comes_back_and_a_retry_takes_a_new_one() {
    let sim = simulator_with(|_| {}).await;
    let client = client(&sim, RateLimit::Unlimited);
    let places = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let place = std::sync::Arc::clone(&places).acquire_owned().await.ok();
    let _: serde_json::Value = client
        .get_json_in("/v3/reference/tickers/types", place)
        .await
        .unwrap();
    assert_eq!(places.available_permits(), 1, "given back after the answer");
    sim.inject(Fault::next(FaultKind::Status(500), 2));
    let place = std::sync::Arc::clone(&places).acquire_owned().await.ok();
    let _: serde_json::Value = client
        .get_json_in("/v3/reference/tickers/types", place)
        .await
        .unwrap();
    assert_eq!(
        places.available_permits(),
        1,
        "retries give theirs back too"
    );
    assert_eq!(sim.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_and_are_retried() {
    let sim = simulator_with(|_| {}).await;
    let client = Client::new(ClientOptions {
        base_url: sim.base_url(),
        api_key: Secret::new(sim.api_key()),
        rate_limit: RateLimit::Unlimited,
        timeout: Duration::from_millis(300),
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            max_retries: 2,
            ..RetryPolicy::default()
        },
        shared_rate: None,
    })
    .unwrap();
    sim.inject(Fault::next(FaultKind::Slow(Duration::from_secs(2)), 1));
    let types: Result<serde_json::Value, _> = client.get_json("/v3/reference/tickers/types").await;
    assert!(types.is_ok(), "{types:?}");
    sim.inject(Fault::next(FaultKind::Slow(Duration::from_secs(2)), 3));
    let error = client
        .get_json::<serde_json::Value>("/v3/reference/tickers/types")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no complete answer within 300ms"), "{error}");
}
