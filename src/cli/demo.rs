//! `finpipe demo`: the real code paths against the built-in simulator on
//! loopback. Needs no key and no network.

use std::path::PathBuf;

use clap::Args;
use finpipe::config::{Origin, Secret};
use finpipe::discover::DiscoverRequest;
use finpipe::model::Category;
use finpipe::polygon::RateLimit;
use finpipe::simulator::{SimConfig, Simulator};

use super::discover::{discover_and_write, print_summary};
use super::{Context, Exit, Failure};

const EXAMPLES: &str = "\
Examples:
  finpipe demo
  finpipe demo --dir /tmp/finpipe-demo";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct DemoArgs {
    /// Where the demo writes its universe files
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

pub async fn run(context: &Context, args: DemoArgs) -> Result<Exit, Failure> {
    let today = context.clock.now().date_naive();
    let sim = Simulator::start(SimConfig::new(today))
        .await
        .map_err(|e| Failure::failed(format!("cannot start the simulator on 127.0.0.1: {e}")))?;
    println!(
        "finpipe demo: a deterministic Polygon simulator is listening on {} (today is {today} there)",
        sim.base_url()
    );
    // The free plan's 5 requests a minute would make the demo crawl; unless a
    // rate was chosen explicitly, the demo allows 50 a second.
    let mut demo_context_rate = context.config.rate_limit.clone();
    if demo_context_rate.origin == Origin::Default {
        demo_context_rate.value = RateLimit::per_second(50);
    }
    let client = {
        let mut limited = context.config.clone();
        limited.rate_limit = demo_context_rate;
        let demo = Context {
            config: limited,
            env: context.env.clone(),
            clock: context.clock,
            quiet: context.quiet,
        };
        demo.client_for(sim.base_url(), Secret::new(sim.api_key()))?
    };
    println!(
        "rate limit {}; universe files go to {}\n",
        client.limiter().limit(),
        args.dir.join("universe").display()
    );

    let out = args.dir.join("universe");
    for (category, request) in discoveries() {
        let before = client.stats().requests();
        let outcome = discover_and_write(context, &client, category, &request, &out).await?;
        print_summary(&outcome, client.stats().requests() - before);
    }
    let served = sim.requests().len();
    println!(
        "\n{} requests sent, {served} served by the simulator, {} retried, {} rate limited.",
        client.stats().requests(),
        client.stats().retries(),
        client.stats().rate_limited()
    );
    println!(
        "Universe files are in {}/. With a real key, the same command reads:",
        out.display()
    );
    println!("  MASSIVE_API_KEY=... finpipe discover etf --limit 500");
    sim.stop().await;
    Ok(Exit::Ok)
}
