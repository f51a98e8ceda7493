//! `finpipe discover` against the simulator: every category, `--limit` with
//! the fewest requests, pagination, the written file, re-runs and bad usage.

use finpipe::model::Category;
use finpipe::universe::Universe;

use crate::common::{Workspace, simulator};

fn universe_file(ws: &Workspace, category: &str) -> Universe {
    let path = ws.join(&format!("universe/{category}_20241202.json"));
    Universe::read(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn reference_requests(sim: &finpipe::simulator::Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v3/reference/"))
        .map(|r| format!("{}?{}", r.path, r.query))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_category_is_discovered_and_written_as_a_valid_universe() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let reference = sim.market().reference();
    for category in Category::ALL {
        let mut args = vec!["discover", category.name()];
        if category == Category::Options {
            args.extend(["--underlying", "AAPL"]);
        }
        let run = ws.run(&args).await;
        assert_eq!(run.code, 0, "{category}: {run:?}");
        assert!(
            run.stdout.contains(&format!("{category}: ")),
            "{}",
            run.stdout
        );
        let universe = universe_file(&ws, category.name());
        assert_eq!(universe.category, Some(category));
        assert_eq!(universe.count, universe.tickers.len());
        assert!(universe.count > 0, "{category} is empty");
        let symbols: Vec<&str> = universe.tickers.iter().map(|t| t.ticker.as_str()).collect();
        let mut sorted = symbols.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(symbols, sorted, "{category}: sorted and unique");

        let expected: Vec<String> = match category {
            Category::Options => reference
                .option_contracts("AAPL")
                .into_iter()
                .filter(|c| c.expiration_date >= crate::common::today())
                .map(|c| c.ticker)
                .collect(),
            _ => {
                let (market, kind) = match category {
                    Category::UsEquities => ("stocks", Some("CS")),
                    Category::Etf => ("stocks", Some("ETF")),
                    Category::Otc => ("otc", None),
                    Category::Crypto => ("crypto", None),
                    Category::Fx => ("fx", None),
                    Category::Indices => ("indices", None),
                    Category::Options => unreachable!(),
                };
                reference
                    .tickers()
                    .iter()
                    .filter(|t| t.active && t.market == market)
                    .filter(|t| kind.is_none_or(|k| t.type_code.as_deref() == Some(k)))
                    .map(|t| t.ticker.clone())
                    .collect()
            }
        };
        assert_eq!(
            symbols, expected,
            "{category}: exactly the simulator's active tickers"
        );
        let first = &universe.tickers[0];
        if category != Category::Options {
            assert!(first.name.is_some() && first.market.is_some(), "{first:?}");
        } else {
            assert_eq!(first.underlying_ticker.as_deref(), Some("AAPL"));
            assert!(first.strike_price.is_some() && first.expiration_date.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_follows_next_url_across_three_pages_against_our_base() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws.run(&["discover", "us_equities"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let requests = reference_requests(&sim);
    assert!(requests.len() >= 3, "{requests:?}");
    assert!(
        requests[0].contains("limit=1000") && requests[0].contains("type=CS"),
        "{requests:?}"
    );
    // Pages after the first carry only the server's cursor.
    assert!(
        requests[1..].iter().all(|r| r.contains("cursor=")),
        "{requests:?}"
    );
    let universe = universe_file(&ws, "us_equities");
    let active_cs = sim
        .market()
        .reference()
        .tickers()
        .iter()
        .filter(|t| t.active && t.market == "stocks" && t.type_code.as_deref() == Some("CS"))
        .count();
    assert_eq!(universe.count, active_cs);
    assert_eq!(requests.len(), active_cs.div_ceil(1000));
    assert!(
        run.stdout.contains(&format!("{} pages", requests.len())),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_stops_paging_with_the_fewest_requests() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    for (limit, expected_requests, page_size) in [
        (10, 1, "limit=10"),
        (1000, 1, "limit=1000"),
        (1500, 2, "limit=1000"),
    ] {
        sim.clear_requests();
        let run = ws
            .run(&["discover", "us_equities", "--limit", &limit.to_string()])
            .await;
        assert_eq!(run.code, 0, "{run:?}");
        let requests = reference_requests(&sim);
        assert_eq!(
            requests.len(),
            expected_requests,
            "--limit {limit}: {requests:?}"
        );
        assert!(requests[0].contains(page_size), "{requests:?}");
        assert_eq!(universe_file(&ws, "us_equities").count, limit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_inactive_adds_delisted_tickers_and_filters_are_recorded() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let run = ws.run(&["discover", "etf", "--include-inactive"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let universe = universe_file(&ws, "etf");
    let inactive = universe
        .tickers
        .iter()
        .filter(|t| t.active == Some(false))
        .count();
    assert!(inactive > 0, "no delisted ETF listed");
    assert!(
        universe
            .tickers
            .iter()
            .filter(|t| t.active == Some(false))
            .all(|t| t.delisted_utc.is_some())
    );
    assert!(universe.filters.include_inactive);
    assert_eq!(universe.filters.type_code.as_deref(), Some("ETF"));
    let requests = reference_requests(&sim);
    assert!(
        requests.iter().any(|r| r.contains("active=false")),
        "{requests:?}"
    );

    let run = ws
        .run(&[
            "discover",
            "us_equities",
            "--exchange",
            "XNAS",
            "--limit",
            "50",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let universe = universe_file(&ws, "us_equities");
    assert_eq!(universe.count, 50);
    assert!(
        universe
            .tickers
            .iter()
            .all(|t| t.primary_exchange.as_deref() == Some("XNAS"))
    );
    assert_eq!(universe.filters.exchange.as_deref(), Some("XNAS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_the_same_day_replaces_the_file_and_leaves_no_temporaries() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    assert_eq!(
        ws.run(&["discover", "crypto", "--limit", "5"]).await.code,
        0
    );
    assert_eq!(universe_file(&ws, "crypto").count, 5);
    assert_eq!(
        ws.run(&["discover", "crypto", "--limit", "7"]).await.code,
        0
    );
    assert_eq!(universe_file(&ws, "crypto").count, 7);
    let names: Vec<String> = std::fs::read_dir(ws.join("universe"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["crypto_20241202.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_before_any_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let cases: [(&[&str], &str); 4] = [
        (&["discover", "options"], "--underlying AAPL"),
        (&["discover", "etfs"], "etf"),
        (
            &["discover", "etf", "--limit", "0"],
            "--limit must be at least 1",
        ),
        (
            &["discover", "etf", "--underlying", "AAPL"],
            "options category only",
        ),
    ];
    for (args, expected) in cases {
        let run = ws.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    let help = ws.run(&["discover", "--help"]).await;
    for category in Category::ALL {
        let listed = help.stdout.lines().any(|line| {
            let line = line.trim();
            line.starts_with(&format!("- {}:", category.name()))
                && line.ends_with(category.describe())
        });
        assert!(listed, "{category} missing from:\n{}", help.stdout);
    }
}
