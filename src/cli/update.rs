//! `finpipe update`: brings every series of the library (or every ticker of
//! the given universes) up to the last complete day, then runs the jobs.
//! Made for cron: with nothing new it sends no aggregate request.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use finpipe::calendar::market_today;
use finpipe::engine::wall_ms;
use finpipe::model::{Basis, Ticker};
use finpipe::plan::{PlanOutcome, plan};
use finpipe::polygon::{SplitRecord, endpoint};
use finpipe::reindex::reconcile_library;
use finpipe::update::{UpdateRequest, forget_split_tickers, plan_update};

use super::backfill::{
    RunArgs, TimeframeList, drain, parse_timeframe_list, print_plan, print_reconciled,
    read_universe_files, take_lock,
};
use super::sources::{SourceArgs, flat_choice};
use super::{Context, Exit, Failure, output};

const UPDATE_EXAMPLES: &str = "\
Examples:
  finpipe update                                   # every series in the library, up to yesterday's close
  finpipe -q update --wait                         # from cron: one summary line, wait for a running job
  finpipe update universe/etf_20241201.json --start 2024-01-01   # also the universe's new tickers";

#[derive(Debug, Args)]
#[command(after_help = UPDATE_EXAMPLES)]
pub(super) struct UpdateArgs {
    /// Universe files whose tickers to update (default: every series already in the library)
    #[arg(value_name = "UNIVERSE")]
    universes: Vec<PathBuf>,
    /// Timeframes [default: those the library holds]
    #[arg(long, value_name = "LIST", value_parser = parse_timeframe_list)]
    timeframes: Option<TimeframeList>,
    /// First day for tickers that have nothing stored yet (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    start: Option<NaiveDate>,
    /// Update the split-adjusted library
    #[arg(long)]
    adjusted: bool,
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    run: RunArgs,
}

pub(super) async fn run(context: &Context, mut args: UpdateArgs) -> Result<Exit, Failure> {
    args.run.command = Some("update");
    context.api_key()?;
    let library = context.library(args.adjusted)?;
    let basis = Basis::from_adjusted(args.adjusted);
    let _lock = take_lock(&library, &args.run)?;
    let mut table = context.open_table(&library)?;
    let store = context.open_store(&library)?;
    let found =
        reconcile_library(&mut table, &store, basis).map_err(|e| Failure::failed(e.to_string()))?;
    print_reconciled(&found, context.quiet);
    let request = UpdateRequest {
        tickers: if args.universes.is_empty() {
            None
        } else {
            Some(read_universe_files(&args.universes)?)
        },
        timeframes: args.timeframes.map(|list| list.0),
        start: args.start,
        basis,
        from_trades: args.sources.from_trades,
        lost: found
            .lost
            .iter()
            .filter_map(|lost| {
                Some((
                    Ticker::new(lost.ticker.as_str()).ok()?,
                    lost.timeframe.parse().ok()?,
                    lost.days,
                ))
            })
            .collect(),
    };
    let mut update = plan_update(&table, &store, &request, context.clock.now()).map_err(|e| {
        if e.is_usage() {
            Failure::usage(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }
    })?;
    // Adjusted prices of a ticker that split since are refetched whole, now
    // that the request is valid (its files keep it known to later updates
    // should the refetch fail).
    if basis.is_adjusted()
        && let Some(since) = update.oldest_last()
    {
        let splits = list_splits(context, since).await?;
        let forgotten = forget_split_tickers(&mut table, &update, &splits)
            .map_err(|e| Failure::failed(e.to_string()))?;
        for (ticker, date) in forgotten {
            output::note(&format!(
                "{ticker} split on {date}, after its adjusted files were written: \
                 its whole adjusted history is fetched again"
            ));
        }
    }
    // One listing of the flat files for every group (and one note).
    if let Some(union) = update.union_request(basis) {
        let flat = flat_choice(context, &union, &args.sources, &table).await?;
        for request in &mut update.requests {
            request.flat = flat.clone();
        }
    }
    let mut total = PlanOutcome::default();
    for request in &update.requests {
        let outcome =
            plan(&mut table, request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
        total += outcome;
    }
    context.close_table(table, &library)?;
    if !context.quiet {
        print_plan(&total, &library);
    }
    drain(context, &library, &args.run).await
}

/// The splits executed after `since` up to today, for every ticker at once
/// (one listing of the splits endpoint, paged).
async fn list_splits(context: &Context, since: NaiveDate) -> Result<Vec<SplitRecord>, Failure> {
    let today = market_today(context.clock.now()).to_string();
    let since = since.to_string();
    let client = context.client()?;
    let query = [
        ("execution_date.gt", since.as_str()),
        ("execution_date.lte", today.as_str()),
        ("limit", "1000"),
    ];
    let mut pages =
        client.pages::<SplitRecord>(endpoint("/v3/reference/splits", &query), Vec::new());
    let mut splits = Vec::new();
    while let Some(page) = pages.next_page().await? {
        splits.extend(page.results);
    }
    Ok(splits)
}
