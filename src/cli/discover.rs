//! `finpipe discover <category>`: list a category's tickers and write a
//! universe file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use finpipe::discover::{DiscoverError, DiscoverRequest, Discovery, discover};
use finpipe::model::Category;
use finpipe::polygon::Client;
use finpipe::universe::Universe;

use super::{Context, Exit, Failure, output};

const EXAMPLES: &str = "\
Examples:
  finpipe discover etf --limit 500
  finpipe discover us_equities --exchange XNAS --include-inactive
  finpipe discover options --underlying AAPL,MSFT --type call
  finpipe discover crypto --out universe/";

/// A category as the command line spells it; `--help` lists them with a line each.
#[derive(Clone, Copy, Debug)]
pub(super) struct CategoryArg(pub Category);

impl ValueEnum for CategoryArg {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self(Category::UsEquities),
            Self(Category::Etf),
            Self(Category::Crypto),
            Self(Category::Fx),
            Self(Category::Options),
            Self(Category::Indices),
            Self(Category::Otc),
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.describe()))
    }
}

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(super) struct DiscoverArgs {
    /// What to list
    #[arg(value_enum)]
    category: CategoryArg,
    /// Stop after N tickers (no request is spent on more)
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Ticker type code instead of the category's (CS, ETF, ADRC, PFD…); call or put for options
    #[arg(long = "type", value_name = "CODE")]
    type_code: Option<String>,
    /// Primary exchange as a MIC code (XNAS, XNYS, ARCX, BATS)
    #[arg(long, value_name = "MIC")]
    exchange: Option<String>,
    /// Also list delisted tickers (expired contracts for options)
    #[arg(long)]
    include_inactive: bool,
    /// Underlying tickers whose option contracts to list (options only)
    #[arg(long, value_name = "TICKERS", value_delimiter = ',')]
    underlying: Vec<String>,
    /// Directory of the universe file
    #[arg(long, value_name = "DIR", default_value = "universe")]
    out: PathBuf,
}

/// What one discovery did, for summaries.
pub(super) struct Outcome {
    pub universe: Universe,
    pub path: PathBuf,
    pub pages: usize,
}

pub(super) async fn run(context: &Context, args: DiscoverArgs) -> Result<Exit, Failure> {
    let client = context.client()?;
    let category = args.category.0;
    let request = DiscoverRequest {
        limit: args.limit,
        type_code: args.type_code,
        exchange: args.exchange,
        include_inactive: args.include_inactive,
        underlyings: args.underlying,
    };
    let outcome = discover_and_write(context, &client, category, &request, &args.out).await?;
    print_summary(&outcome, client.stats().requests());
    Ok(Exit::Ok)
}

/// Discovers `category` and writes its universe file under `out`.
pub(super) async fn discover_and_write(
    context: &Context,
    client: &Client,
    category: Category,
    request: &DiscoverRequest,
    out: &Path,
) -> Result<Outcome, Failure> {
    let spinner = output::spinner(context.quiet, &format!("discovering {category}"));
    let found = discover(client, category, request, |n| {
        spinner.set_message(format!("discovering {category}: {n} tickers"));
    })
    .await;
    spinner.finish_and_clear();
    let Discovery {
        tickers,
        filters,
        pages,
    } = found.map_err(|e| match e {
        DiscoverError::Usage(message) => Failure::usage(message),
        DiscoverError::Api(api) => Failure::from(api),
    })?;
    let now = context.clock.now();
    let universe = Universe::new(
        Some(category),
        now,
        Some(client.base_url().to_owned()),
        filters,
        tickers,
    );
    let path = Universe::default_path(out, category, now);
    universe
        .write(&path)
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(Outcome {
        universe,
        path,
        pages,
    })
}

/// `etf: 500 tickers (ETF 500) in 1 page, 1 request → universe/etf_20241201.json`
pub(super) fn print_summary(outcome: &Outcome, requests: u64) {
    let universe = &outcome.universe;
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &universe.tickers {
        let kind = record
            .type_code
            .as_deref()
            .or(record.contract_type.as_deref())
            .or(record.market.as_deref())
            .unwrap_or("?");
        *by_type.entry(kind).or_default() += 1;
    }
    let breakdown: Vec<String> = by_type.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let inactive = universe
        .tickers
        .iter()
        .filter(|r| r.active == Some(false))
        .count();
    let category = universe.category.map_or("universe", |c| c.name());
    let pages = outcome.pages;
    outln!(
        "{category}: {} tickers ({}{}) in {pages} page{}, {requests} request{} -> {}",
        universe.count,
        if breakdown.is_empty() {
            "none".to_owned()
        } else {
            breakdown.join(", ")
        },
        if inactive > 0 {
            format!("; {inactive} inactive")
        } else {
            String::new()
        },
        if pages == 1 { "" } else { "s" },
        if requests == 1 { "" } else { "s" },
        outcome.path.display()
    );
}
