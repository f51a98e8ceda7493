//! `finpipe update` for cron: it fetches exactly the days that completed since
//! the last run (daily stock bars through grouped daily, one request per date
//! for the whole market), nothing when nothing is new, and two started
//! together never run the same job.

use finpipe::model::AssetClass;

use crate::common::{Workspace, aggregate_requests, sim_bars, simulator, simulator_with};

const SIX: [&str; 6] = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META"];

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_update_in_a_row_sends_no_aggregate_request() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "X:BTCUSD", "C:EURUSD", "I:SPX"]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m,5m,1d",
            "--start",
            "2024-11-18",
            "--end",
            "2024-11-22",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let before = aggregate_requests(&sim).len();
    let run = ws.run(&["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|r| !r.contains("2024-11-22/") && !r.contains("/range/5/")),
        "only days after the backfill, 5m derived: {asked:?}"
    );
    let library = ws.library("data");
    let aapl = &library[&("AAPL".to_owned(), "1d".to_owned())];
    let last = AssetClass::Stocks.date_of(aapl.last().unwrap().timestamp);
    assert_eq!(
        last,
        day("2024-11-29"),
        "up to the last complete trading day"
    );

    let before = aggregate_requests(&sim).len();
    let run = ws.run(&["-q", "update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        aggregate_requests(&sim).len(),
        before,
        "nothing new: no request"
    );
    assert!(run.stdout.contains("requests=0"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_day_is_fetched_exactly_with_grouped_daily_for_1d() {
    let sim = simulator_with(|c| c.today = day("2024-12-03")).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &SIX);
    // 2024-12-02 20:30 ET: the Monday session is over.
    let monday_evening = Some("2024-12-03T01:30:00Z");
    let run = ws
        .run_at(
            monday_evening,
            &[
                "backfill",
                &universe,
                "--timeframes",
                "1m,1d",
                "--start",
                "2024-11-25",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let before = aggregate_requests(&sim).len();
    let tuesday_evening = Some("2024-12-04T01:30:00Z");
    let run = ws.run_at(tuesday_evening, &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 grouped-daily job"), "{}", run.stdout);
    let asked = aggregate_requests(&sim)[before..].to_vec();
    let grouped: Vec<&String> = asked.iter().filter(|r| r.contains("/grouped/")).collect();
    assert_eq!(grouped.len(), 1, "{asked:?}");
    assert!(
        grouped[0].contains("/locale/us/market/stocks/2024-12-03"),
        "{asked:?}"
    );
    let ranges: Vec<&String> = asked.iter().filter(|r| r.contains("/range/")).collect();
    assert_eq!(ranges.len(), SIX.len(), "{asked:?}");
    assert!(
        ranges
            .iter()
            .all(|r| r.contains("/range/1/minute/2024-12-03/2024-12-03")),
        "{asked:?}"
    );
    let library = ws.library("data");
    for ticker in SIX {
        let daily = &library[&(ticker.to_owned(), "1d".to_owned())];
        assert_eq!(
            daily,
            &sim_bars(&sim, ticker, "1d", "2024-11-25", "2024-12-03", false),
            "{ticker}: grouped bars stored exactly as the range endpoint gives them"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_daily_bars_equal_the_range_endpoint_across_a_holiday() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &SIX);
    // Thanksgiving (11-28) is closed, 11-29 closes early: 4 dates < 6 tickers.
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-25",
            "--end",
            "2024-11-29",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim);
    assert_eq!(
        asked.len(),
        4,
        "one grouped request per open date: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .all(|r| r.contains("/grouped/") && r.contains("adjusted=false"))
    );
    let library = ws.library("data");
    for ticker in SIX {
        assert_eq!(
            library[&(ticker.to_owned(), "1d".to_owned())],
            sim_bars(&sim, ticker, "1d", "2024-11-25", "2024-11-29", false),
            "{ticker}"
        );
    }
    // Covered, the closed day included: nothing to plan again.
    let again = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-25",
            "--end",
            "2024-11-29",
        ])
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(aggregate_requests(&sim).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_started_together_one_runs_the_other_exits_3() {
    let sim = simulator_with(|c| c.latency = std::time::Duration::from_millis(150)).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &SIX);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m",
            "--start",
            "2024-11-18",
            "--end",
            "2024-11-19",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let before = aggregate_requests(&sim).len();
    let first = ws.command(None, &["update", "--concurrency", "1"]).output();
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ws.command(None, &["update", "--concurrency", "1"])
            .output()
            .await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (
        crate::common::Run::from_output(first.unwrap()),
        crate::common::Run::from_output(second.unwrap()),
    );
    let mut codes = [first.code, second.code];
    codes.sort();
    assert_eq!(codes, [0, 3], "{first:?}\n{second:?}");
    let loser = if first.code == 3 { &first } else { &second };
    assert!(loser.stderr.contains("--wait"), "{}", loser.stderr);
    let asked = aggregate_requests(&sim)[before..].to_vec();
    let mut unique = asked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), asked.len(), "no job ran twice: {asked:?}");
    assert_eq!(asked.len(), SIX.len(), "{asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_per_timeframe_how_far_tickers_are_complete_and_the_holes() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let both = ws.universe("both", &["AAPL", "MSFT"]);
    let msft = ws.universe("msft", &["MSFT"]);
    let backfill = |universe: &str, start: &str, end: &str| {
        let args: Vec<String> = [
            "backfill",
            universe,
            "--timeframes",
            "1d",
            "--start",
            start,
            "--end",
            end,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args
    };
    for args in [
        backfill(&both, "2024-11-04", "2024-11-08"),
        backfill(&msft, "2024-11-18", "2024-11-22"),
    ] {
        let run = ws
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let run = ws.run(&["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("1d: 2 tickers; 1 complete up to 2024-11-22, 1 up to 2024-11-08"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("hole: MSFT 2024-11-09..2024-11-17 (9 days)"),
        "{}",
        run.stdout
    );
    let json = ws.run(&["status", "--json"]).await;
    let body: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let daily = &body["coverage"][0];
    assert_eq!(daily["timeframe"], "1d");
    assert_eq!(daily["tickers"], 2);
    assert_eq!(daily["complete_up_to"][0]["date"], "2024-11-22");
    assert_eq!(daily["largest_holes"][0]["ticker"], "MSFT");
    assert_eq!(daily["largest_holes"][0]["days"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjusted_update_refetches_a_ticker_that_split_since() {
    let sim = simulator_with(|c| c.today = day("2024-06-14")).await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["NVDA", "MSFT"]);
    let run = ws
        .run_at(
            Some("2024-06-07T01:30:00Z"),
            &[
                "backfill",
                &universe,
                "--adjusted",
                "--timeframes",
                "1d",
                "--start",
                "2024-05-20",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    // Stand-in for prices adjusted before NVDA's 10:1 split of 2024-06-10.
    let store = finpipe::store::Store::open(
        &ws.join("data-adjusted"),
        finpipe::model::Basis::Adjusted,
        "test",
    )
    .unwrap();
    let nvda = finpipe::model::Ticker::new("NVDA").unwrap();
    let day_tf = finpipe::model::Timeframe::DAY;
    let old: Vec<_> = store
        .read_period(&nvda, day_tf, "2024")
        .unwrap()
        .iter()
        .map(|b| finpipe::model::Bar {
            close: b.close * 10.0,
            high: b.high * 10.0,
            ..*b
        })
        .collect();
    store
        .replace_period(&nvda, day_tf, "2024", &old, finpipe::store::Source::Rest)
        .unwrap();

    let before = aggregate_requests(&sim).len();
    let run = ws
        .run_at(Some("2024-06-15T01:30:00Z"), &["update", "--adjusted"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("NVDA split on 2024-06-10"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("MSFT split"), "{}", run.stderr);
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert!(
        asked
            .iter()
            .any(|r| r.contains("/NVDA/range/1/day/2024-05-20/2024-06-14")),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|r| r.contains("/MSFT/range/1/day/2024-06-07/2024-06-14")),
        "{asked:?}"
    );
    let library = ws.library("data-adjusted");
    assert_eq!(
        library[&("NVDA".to_owned(), "1d".to_owned())],
        sim_bars(&sim, "NVDA", "1d", "2024-05-20", "2024-06-14", true),
        "the whole adjusted history replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekend_update_asks_nothing_for_closed_markets() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "C:EURUSD", "X:BTCUSD"]);
    let friday_night = Some("2024-11-23T04:00:00Z");
    let run = ws
        .run_at(
            friday_night,
            &[
                "backfill",
                &universe,
                "--timeframes",
                "1m,1d",
                "--start",
                "2024-11-18",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    // Sunday 2024-11-24, 23:00 UTC: Saturday is over everywhere, and only
    // crypto traded on it.
    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(Some("2024-11-24T23:00:00Z"), &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = aggregate_requests(&sim)[before..].to_vec();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|r| r.contains("X:BTCUSD")), "{asked:?}");
    // And nothing is asked again for those days.
    let before = aggregate_requests(&sim).len();
    let run = ws.run_at(Some("2024-11-24T23:00:00Z"), &["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(aggregate_requests(&sim).len(), before);
}
