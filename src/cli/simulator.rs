//! `finpipe simulator`: serve the built-in simulator until Ctrl-C, so finpipe
//! (or anything else) can be pointed at it with `--api-url`.

use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use finpipe::config::parse_duration;
use finpipe::polygon::RateLimit;
use finpipe::simulator::{DEFAULT_SIM_KEY, SimConfig, SimRateLimit, Simulator};

use super::{Context, Exit, Failure};

const EXAMPLES: &str = "\
Examples:
  finpipe simulator --port 8099 &
  finpipe --api-url http://127.0.0.1:8099 --api-key sim-key --rate-limit unlimited discover etf
  finpipe simulator --server-limit 5/min --latency 50ms";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(super) struct SimulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 8099)]
    port: u16,
    /// The API key the simulator accepts
    #[arg(long, value_name = "KEY", default_value = DEFAULT_SIM_KEY)]
    key: String,
    /// The server's "today" (later dates answer 403) [default: today]
    #[arg(long, value_name = "YYYY-MM-DD")]
    today: Option<NaiveDate>,
    /// Answer 429 beyond this many requests: 5/min, 10/s
    #[arg(long, value_name = "RATE")]
    server_limit: Option<RateLimit>,
    /// Send 429s without a Retry-After header
    #[arg(long)]
    no_retry_after: bool,
    /// Delay added to every answer: 50ms
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    latency: Option<Duration>,
    /// Keep up to this many MB of aggregate answers and serve repeats from memory (benchmarks)
    #[arg(long, value_name = "MB", default_value_t = 0)]
    cache_mb: usize,
}

pub(super) async fn run(context: &Context, args: SimulatorArgs) -> Result<Exit, Failure> {
    let mut config = SimConfig::new(
        args.today
            .unwrap_or_else(|| context.clock.now().date_naive()),
    );
    config.api_key = args.key;
    config.latency = args.latency.unwrap_or_default();
    config.cache_bytes = args.cache_mb.saturating_mul(1 << 20);
    config.rate_limit = match args.server_limit {
        None | Some(RateLimit::Unlimited) => None,
        Some(RateLimit::Window { requests, window }) => Some(SimRateLimit {
            requests,
            window,
            retry_after: !args.no_retry_after,
        }),
    };
    let sim = Simulator::start_on(config, args.port)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    outln!("simulator listening on {}", sim.base_url());
    outln!(
        "point finpipe at it: --api-url {} --api-key {}",
        sim.base_url(),
        sim.api_key()
    );
    outln!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    outln!("{} requests served", sim.requests().len());
    sim.stop().await;
    Ok(Exit::Ok)
}
