//! `finpipe demo`: the real code paths against the built-in simulator on
//! loopback (discovery of every category, then a small backfill into
//! Parquet). Needs no key and no network.

use std::path::PathBuf;

use chrono::{Days, NaiveDate};
use clap::Args;
use finpipe::calendar::market_today;
use finpipe::config::{Origin, Secret, Setting};
use finpipe::discover::DiscoverRequest;
use finpipe::flatfiles::{Dataset, FileKind};
use finpipe::model::{Category, Ticker, Timeframe};
use finpipe::polygon::RateLimit;
use finpipe::simulator::s3::FlatServe;
use finpipe::simulator::server::RequestRecord;
use finpipe::simulator::{SimConfig, Simulator};
use finpipe::sources::SourceChoice;

use super::backfill::{RunArgs, TimeframeList, WorkArgs, plan_and_drain};
use super::discover::{discover_and_write, print_summary};
use super::sources::SourceArgs;
use super::{Context, Exit, Failure};

const EXAMPLES: &str = "\
Examples:
  finpipe demo
  finpipe demo --dir /tmp/finpipe-demo";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(super) struct DemoArgs {
    /// Where the demo writes its universe files and its library
    #[arg(long, value_name = "DIR", default_value = "finpipe-demo")]
    dir: PathBuf,
}

/// The discoveries the demo runs: every category, small enough to be quick,
/// large enough to page.
fn discoveries() -> Vec<(Category, DiscoverRequest)> {
    let limited = |n| DiscoverRequest {
        limit: Some(n),
        ..DiscoverRequest::default()
    };
    vec![
        (Category::UsEquities, limited(1500)),
        (Category::Etf, limited(200)),
        (Category::Crypto, limited(50)),
        (Category::Fx, limited(50)),
        (Category::Indices, limited(50)),
        (Category::Otc, limited(100)),
        (
            Category::Options,
            DiscoverRequest {
                underlyings: vec!["AAPL".into()],
                ..DiscoverRequest::default()
            },
        ),
    ]
}

/// The dozen tickers the demo backfills: stocks, ETFs, crypto, forex, an index.
const BACKFILL: [&str; 12] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "JPM", "SPY", "QQQ", "X:BTCUSD", "X:ETHUSD",
    "C:EURUSD", "I:SPX",
];

/// The access key the simulator's S3 side accepts in the demo.
const DEMO_S3_ACCESS: &str = "demo-access";

/// Days older than this come from flat files in the demo, newer from REST.
const DEMO_CUTOFF_DAYS: u64 = 10;

/// A context that talks to the simulator and writes under the demo directory.
fn demo_context(context: &Context, sim: &Simulator, dir: &std::path::Path) -> Context {
    let mut config = context.config.clone();
    config.api_url = Setting {
        value: sim.base_url(),
        origin: Origin::Flag("demo"),
    };
    config.api_key = Setting {
        value: Some(Secret::new(sim.api_key())),
        origin: Origin::Flag("demo"),
    };
    // The free plan's 5 requests a minute would make the demo crawl; unless a
    // rate was chosen explicitly, the demo allows 50 a second.
    if config.rate_limit.origin == Origin::Default {
        config.rate_limit.value = RateLimit::per_second(50);
    }
    config.data_dir = Setting {
        value: dir.join("data"),
        origin: Origin::Flag("demo"),
    };
    config.db.origin = Origin::Default;
    if let Some(url) = sim.flatfiles_url() {
        config.flatfiles_url = Setting {
            value: url,
            origin: Origin::Flag("demo"),
        };
        config.s3_access_key = Setting {
            value: Some(Secret::new(DEMO_S3_ACCESS)),
            origin: Origin::Flag("demo"),
        };
        config.s3_secret_key = Setting {
            value: Some(Secret::new("demo-secret-not-checked")),
            origin: Origin::Flag("demo"),
        };
    }
    Context {
        config,
        env: context.env.clone(),
        clock: context.clock,
        quiet: context.quiet,
        scratch: context.scratch.clone(),
    }
}

/// Says what the backfill cost and where each timeframe came from: REST
/// requests (from the simulator's log), flat-file day files (from the job
/// table's record of the files ingested), derived timeframes (no request).
fn explain_sources(
    demo: &Context,
    log: &[RequestRecord],
    start: NaiveDate,
    today: NaiveDate,
) -> Result<(), Failure> {
    let aggregates = log.iter().filter(|r| r.is_aggregates()).count();
    let grouped = log
        .iter()
        .filter(|r| r.path.starts_with("/v2/aggs/grouped/"))
        .count();
    let library = demo.library(false)?;
    let table = demo.open_table(&library)?;
    let mut day_files = 0;
    for dataset in Dataset::ALL {
        for kind in FileKind::ALL {
            day_files += table
                .ingested(dataset.name(), kind.name(), start, today)
                .map_err(|e| Failure::failed(e.to_string()))?
                .len();
        }
    }
    demo.close_table(table, &library)?;
    outln!("\nWhere the bars came from:");
    outln!(
        "  REST: {} requests to the API ({} for aggregates: {} ticker ranges, page by page, and {} \
         grouped-daily, one per market and day for every ticker at once; {} for discovery), all \
         through the one rate limiter ({})",
        log.len(),
        aggregates,
        aggregates - grouped,
        grouped,
        log.len() - aggregates,
        demo.config.rate_limit.value
    );
    outln!(
        "  flat files: {day_files} day files downloaded from S3 ({}), days older than \
         {DEMO_CUTOFF_DAYS} days: one gzip CSV per dataset and day holds every ticker, so each is \
         downloaded once; S3 downloads do not count against the REST rate limit",
        demo.config.flatfiles_url.value
    );
    outln!(
        "  derived: 5m and 1h were computed here from the stored 1m bars (no request, only whole \
         windows); 1d comes from daily aggregates (grouped-daily requests and day files), never \
         from minutes"
    );
    Ok(())
}

pub(super) async fn run(context: &Context, args: DemoArgs) -> Result<Exit, Failure> {
    let today = market_today(context.clock.now());
    let start = today - Days::new(21);
    let mut sim_config = SimConfig::new(today);
    sim_config.flat_files = Some(FlatServe {
        access_key: DEMO_S3_ACCESS.to_owned(),
        only: Some(BACKFILL.iter().map(|t| (*t).to_owned()).collect()),
        from: start,
    });
    let sim = Simulator::start(sim_config)
        .await
        .map_err(|e| Failure::failed(format!("cannot start the simulator on 127.0.0.1: {e}")))?;
    let demo = demo_context(context, &sim, &args.dir);
    outln!(
        "finpipe demo: a deterministic Polygon simulator is listening on {} (today is {today} there); rate limit {}",
        sim.base_url(),
        demo.config.rate_limit.value
    );

    outln!(
        "\n1. discover: every category -> {}",
        args.dir.join("universe").display()
    );
    let client = demo.client()?;
    let out = args.dir.join("universe");
    for (category, request) in discoveries() {
        let before = client.stats().requests();
        let outcome = discover_and_write(&demo, &client, category, &request, &out).await?;
        print_summary(&outcome, client.stats().requests() - before);
    }

    outln!(
        "\n2. backfill: {} tickers, 1m/5m/1h/1d, {start} to {today} -> {}\n   days older than {DEMO_CUTOFF_DAYS} days from S3 flat files ({}), the rest from REST",
        BACKFILL.len(),
        demo.config.data_dir.value.display(),
        demo.config.flatfiles_url.value,
    );
    let tickers = BACKFILL
        .iter()
        .filter_map(|t| Ticker::new(*t).ok())
        .collect();
    let work = WorkArgs {
        timeframes: TimeframeList(
            ["1m", "5m", "1h", "1d"]
                .iter()
                .filter_map(|t| t.parse::<Timeframe>().ok())
                .collect(),
        ),
        start: Some(start),
        days: None,
        end: Some(today),
        adjusted: false,
        sources: SourceArgs {
            source: SourceChoice::Auto,
            cutoff_days: DEMO_CUTOFF_DAYS,
            from_trades: false,
        },
    };
    let exit = plan_and_drain(&demo, tickers, &work, &RunArgs::default()).await?;
    let log = sim.requests();
    sim.stop().await;
    explain_sources(&demo, &log, start, today)?;

    let data = demo.config.data_dir.value.display().to_string();
    outln!("The library is plain Parquet, one file per ticker, timeframe and month:");
    outln!("  {data}/AAPL/1m/{}.parquet", today.format("%Y-%m"));
    // Timestamps are UTC; a market day is a day in New York, so every
    // example that groups by day converts first (tests/it/readers.rs runs
    // these lines with DuckDB and polars, and finds them in the README).
    outln!(
        "\n3. read it with DuckDB's CLI or polars; a market day is a day in New York, so group by timezone('America/New_York', timestamp):"
    );
    outln!(
        "  duckdb -c \"SELECT ticker, count(*) AS days, max(close) FROM read_parquet('{data}/*/1d/*.parquet') GROUP BY ticker ORDER BY ticker\""
    );
    outln!(
        "  duckdb -c \"SELECT timezone('America/New_York', timestamp)::DATE AS day, count(*) AS bars, min(low), max(high) FROM read_parquet('{data}/*/1m/*.parquet') WHERE ticker = 'AAPL' GROUP BY day ORDER BY day\""
    );
    outln!(
        "  python3 -c \"import polars as pl; print(pl.scan_parquet('{data}/AAPL/5m/*.parquet').group_by(day=pl.col('timestamp').dt.convert_time_zone('America/New_York').dt.date()).agg(bars=pl.len(), high=pl.col('high').max()).sort('day').collect())\""
    );
    outln!(
        "\nWith a real key: MASSIVE_API_KEY=... finpipe discover etf --limit 500, then finpipe backfill universe/etf_<date>.json --timeframes 1m,1d --start 2024-01-01"
    );
    Ok(exit)
}
