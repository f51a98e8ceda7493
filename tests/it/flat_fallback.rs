//! A flat-file outage does not fail the night: with S3 keys set and the
//! flat-file endpoint unreachable (a closed port, a name that does not
//! resolve, 503 answers after the S3 client's retries), `auto` takes the
//! days from REST with one warning naming the endpoint, and `--source
//! flatfiles` fails (exit 1) with that message. Both when the listing fails
//! before planning and when the downloads fail during the run.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use finpipe::simulator::Simulator;
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, populate};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::{GetObjectInput, GetObjectOutput, ListObjectsV2Input, ListObjectsV2Output};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::flatfiles::d;
use crate::common::s3::{ACCESS_KEY, BUCKET, SECRET_KEY};
use crate::common::{Run, Workspace, aggregate_requests, sim_bars, simulator};

/// An endpoint nothing listens on: a port bound a moment ago and let go.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn workspace(sim: &Simulator, endpoint: &str) -> Workspace {
    Workspace::for_sim(sim)
        .env("MASSIVE_S3_ENDPOINT", endpoint)
        .env("MASSIVE_S3_ACCESS_KEY", ACCESS_KEY)
        .env("MASSIVE_S3_SECRET_KEY", SECRET_KEY)
}

/// AAPL's bars of `timeframes` from the first to the last day, every day
/// old enough for flat files (`--cutoff-days 0`), from `source`.
async fn backfill(ws: &Workspace, timeframes: &str, first: &str, last: &str, source: &str) -> Run {
    ws.run(&[
        "backfill",
        "AAPL",
        "--timeframes",
        timeframes,
        "--start",
        first,
        "--end",
        last,
        "--cutoff-days",
        "0",
        "--source",
        source,
    ])
    .await
}

/// The library holds exactly what the simulator's REST API has for AAPL.
fn assert_rest_bars(ws: &Workspace, sim: &Simulator, timeframes: &[&str], first: &str, last: &str) {
    let library = ws.library("data");
    for tf in timeframes {
        let want = sim_bars(sim, "AAPL", tf, first, last, false);
        assert!(!want.is_empty());
        assert_eq!(
            library.get(&("AAPL".to_owned(), (*tf).to_owned())),
            Some(&want),
            "{tf}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_before_planning_sends_auto_to_rest() {
    let sim = simulator().await;
    let endpoint = closed_endpoint();
    let (first, last) = ("2024-10-28", "2024-11-08");
    // Three outages at once (each waits out the S3 client's retries): auto
    // and flat files only against a closed port, auto against a name that
    // does not resolve.
    let nowhere = "http://finpipe-test.invalid";
    let (ws, only, dns) = (
        workspace(&sim, &endpoint),
        workspace(&sim, &endpoint),
        workspace(&sim, nowhere),
    );
    let (run, flat_only, unresolved) = tokio::join!(
        backfill(&ws, "1m,1d", first, last, "auto"),
        backfill(&only, "1d", first, last, "flatfiles"),
        backfill(&dns, "1d", first, last, "auto"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let said = format!("the flat-file endpoint {endpoint} cannot be reached (connection refused");
    assert_eq!(
        run.stderr.matches(&said).count(),
        1,
        "one warning:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("MASSIVE_S3_ENDPOINT")
            && run.stderr.contains("every day comes from REST"),
        "{}",
        run.stderr
    );
    assert!(!aggregate_requests(&sim).is_empty());
    assert_rest_bars(&ws, &sim, &["1m", "1d"], first, last);

    // Flat files only: nothing else may serve the days.
    let run = flat_only;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert!(!run.stderr.contains("comes from REST"), "{}", run.stderr);

    // A name that does not resolve is the same outage.
    let run = unresolved;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "the flat-file endpoint {nowhere} cannot be reached"
        )),
        "{}",
        run.stderr
    );
}

/// An S3 server that lists its directory (SigV4 checked) but answers every
/// download with 503: the endpoint fails after planning, during the run.
struct ListsOnly(FileSystem);

// `S3` is an `async_trait`; without that macro here, its methods are
// written as it expands them.
type Answer<'a, T> = Pin<Box<dyn Future<Output = S3Result<S3Response<T>>> + Send + 'a>>;

impl S3 for ListsOnly {
    fn list_objects_v2<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<ListObjectsV2Input>,
    ) -> Answer<'async_trait, ListObjectsV2Output>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.0.list_objects_v2(req)
    }

    fn get_object<'life0, 'async_trait>(
        &'life0 self,
        _req: S3Request<GetObjectInput>,
    ) -> Answer<'async_trait, GetObjectOutput>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Err(s3_error!(ServiceUnavailable, "down for the test")) })
    }
}

/// Serves AAPL's stock day files of `first..=last` from a [`ListsOnly`]
/// server; returns its endpoint. The server stops with the handle.
async fn lists_only(
    sim: &Simulator,
    root: &Path,
    first: &str,
    last: &str,
) -> (String, JoinHandle<()>) {
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let datasets = [
        (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
        (FlatDataset::UsStocksSip, FlatKind::DayAggs),
    ];
    populate(
        sim.market(),
        root,
        BUCKET,
        &datasets,
        d(first),
        d(last),
        Some(&["AAPL"]),
    )
    .unwrap();
    let service = {
        let mut builder = S3ServiceBuilder::new(ListsOnly(FileSystem::new(root).unwrap()));
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accept = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    (endpoint, accept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_that_fail_during_the_run_fall_back_to_rest_in_auto() {
    let sim = simulator().await;
    let dir = TempDir::new().unwrap();
    let (first, last) = ("2024-11-04", "2024-11-05");
    let (endpoint, server) = lists_only(&sim, dir.path(), first, last).await;
    let said = format!("the flat-file endpoint {endpoint} cannot be reached (HTTP 503");

    // Both wait out the S3 client's retries on each of a job's attempts:
    // run side by side.
    let (ws, only) = (workspace(&sim, &endpoint), workspace(&sim, &endpoint));
    let (run, flat_only) = tokio::join!(
        backfill(&ws, "1d", first, last, "auto"),
        backfill(&only, "1d", first, last, "flatfiles"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 flat-file job"), "{}", run.stdout);
    assert_eq!(
        run.stderr.matches("come from REST instead").count(),
        1,
        "one warning:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert!(run.stdout.contains("failed=0"), "{}", run.stdout);
    assert!(!aggregate_requests(&sim).is_empty());
    assert_rest_bars(&ws, &sim, &["1d"], first, last);

    // Flat files only: the job fails, naming the endpoint.
    let run = flat_only;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert!(run.stdout.contains("failed=1"), "{}", run.stdout);
    server.abort();
}
