//! `finpipe update`: brings every series of the library (or every ticker of
//! the given universes) up to the last complete day, then runs the jobs.
//! Made for cron: with nothing new it sends no aggregate request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use finpipe::engine::wall_ms;
use finpipe::jobs::JobTable;
use finpipe::model::{AssetClass, Basis, Ticker, Timeframe};
use finpipe::plan::{PlanOutcome, PlanRequest, last_complete_day, market_today, plan};
use finpipe::polygon::{SplitRecord, endpoint};
use finpipe::ranges::DateRange;

use super::backfill::{
    RunArgs, TimeframeList, drain, parse_timeframe_list, print_plan, read_universe_files, take_lock,
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
pub struct UpdateArgs {
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

/// Tickers planned together: same timeframes, same asset class (which decides
/// the last complete day).
type GroupKey = (Vec<Timeframe>, AssetClass);

/// One ticker's work: its timeframes and its first day.
struct Series {
    timeframes: BTreeSet<Timeframe>,
    start: Option<NaiveDate>,
}

pub async fn run(context: &Context, args: UpdateArgs) -> Result<Exit, Failure> {
    context.api_key()?;
    let library = context.library(args.adjusted);
    let basis = Basis::from_adjusted(args.adjusted);
    let _lock = take_lock(&library, &args.run)?;
    let mut table = context.open_table(&library)?;
    let coverage = table
        .all_coverage()
        .map_err(|e| Failure::failed(e.to_string()))?;
    let mut stored: BTreeMap<Ticker, Series> = BTreeMap::new();
    let mut firsts: BTreeMap<(Ticker, Timeframe), NaiveDate> = BTreeMap::new();
    let mut lasts: BTreeMap<Ticker, NaiveDate> = BTreeMap::new();
    // The library's files are the truth for series the coverage does not
    // know (a lost job table, coverage forgotten for a refetch that failed):
    // those start at their first stored day.
    let store = context.open_store(&library)?;
    let mut known: BTreeSet<(Ticker, Timeframe)> = coverage
        .iter()
        .filter(|c| c.2 == basis)
        .map(|c| (c.0.clone(), c.1))
        .collect();
    let mut on_disk = Vec::new();
    for file in store
        .scan(None)
        .map_err(|e| Failure::failed(e.to_string()))?
    {
        if let (Some(first), Some(last)) = (file.first, file.last)
            && !known.contains(&(file.ticker.clone(), file.timeframe))
        {
            let class = file.ticker.asset_class();
            on_disk.push((
                file.ticker.clone(),
                file.timeframe,
                DateRange::new(class.date_of(first), class.date_of(last)),
            ));
        }
    }
    let mut series_ranges: Vec<(Ticker, Timeframe, DateRange)> = coverage
        .into_iter()
        .filter(|c| c.2 == basis)
        .map(|(t, tf, _, r)| (t, tf, r))
        .collect();
    for (ticker, tf, range) in on_disk {
        if let Some(range) = range {
            known.insert((ticker.clone(), tf));
            series_ranges.push((ticker, tf, range));
        }
    }
    for (ticker, tf, range) in series_ranges {
        let ticker_key = ticker.clone();
        let last = lasts.entry(ticker.clone()).or_insert(range.end);
        *last = (*last).max(range.end);
        let entry = stored.entry(ticker).or_insert(Series {
            timeframes: BTreeSet::new(),
            start: None,
        });
        entry.timeframes.insert(tf);
        // Each series' own first day, then the latest of them: update adds
        // new days, it does not extend a timeframe back to another's start.
        let first = firsts.entry((ticker_key, tf)).or_insert(range.start);
        *first = (*first).min(range.start);
    }
    for ((ticker, _), first) in firsts {
        if let Some(series) = stored.get_mut(&ticker) {
            series.start = Some(series.start.map_or(first, |s| s.max(first)));
        }
    }
    let library_timeframes: BTreeSet<Timeframe> = stored
        .values()
        .flat_map(|s| s.timeframes.iter().copied())
        .collect();
    let chosen: Option<BTreeSet<Timeframe>> = args
        .timeframes
        .as_ref()
        .map(|list| list.0.iter().copied().collect());
    let tickers: Vec<Ticker> = if args.universes.is_empty() {
        stored.keys().cloned().collect()
    } else {
        read_universe_files(&args.universes)?
    };
    if tickers.is_empty() {
        return Err(Failure::usage(format!(
            "the library {} holds nothing yet: run `finpipe backfill` first, or give \
             `finpipe update` universe files with --start",
            library.data_dir.display()
        )));
    }

    // Tickers grouped by timeframes and asset class (which decides the last
    // complete day), each with its own first day.
    let mut groups: BTreeMap<GroupKey, Vec<(Ticker, NaiveDate)>> = BTreeMap::new();
    let mut no_start = Vec::new();
    for ticker in tickers {
        let known = stored.get(&ticker);
        let timeframes: BTreeSet<Timeframe> = match (&chosen, known) {
            (Some(list), _) => list.clone(),
            (None, Some(series)) if args.universes.is_empty() => series.timeframes.clone(),
            (None, _) => library_timeframes.clone(),
        };
        let Some(start) = known.and_then(|s| s.start).or(args.start) else {
            no_start.push(ticker.to_string());
            continue;
        };
        if timeframes.is_empty() {
            no_start.push(ticker.to_string());
            continue;
        }
        groups
            .entry((timeframes.into_iter().collect(), ticker.asset_class()))
            .or_default()
            .push((ticker, start));
    }
    if !no_start.is_empty() {
        let shown: Vec<&str> = no_start.iter().take(5).map(String::as_str).collect();
        return Err(Failure::usage(format!(
            "{} ticker{} ha{} nothing stored yet ({}{}): pass --start (and --timeframes if the \
             library is empty)",
            no_start.len(),
            if no_start.len() == 1 { "" } else { "s" },
            if no_start.len() == 1 { "s" } else { "ve" },
            shown.join(", "),
            if no_start.len() > 5 { ", …" } else { "" },
        )));
    }

    let now = context.clock.now();
    let mut requests = Vec::new();
    for ((timeframes, class), members) in groups {
        let end = last_complete_day(class, now).min(market_today(now));
        let Some(first) = members.iter().map(|(_, s)| *s).min() else {
            continue;
        };
        let Some(range) = DateRange::new(first, end) else {
            continue;
        };
        let starts: HashMap<Ticker, NaiveDate> = members.iter().cloned().collect();
        requests.push(PlanRequest {
            tickers: members.into_iter().map(|(t, _)| t).collect(),
            timeframes,
            range,
            basis,
            starts,
            flat: None,
        });
    }
    // Adjusted prices of a ticker that split since are refetched whole, now
    // that the request is valid (its files keep it known to later updates
    // should the refetch fail).
    if basis.is_adjusted() {
        refetch_split_tickers(context, &mut table, &stored, &lasts).await?;
    }
    // One listing of the flat files for every group (and one note).
    if let Some(union) = union_request(&requests, basis) {
        let flat = flat_choice(context, &union, &args.sources, &table).await?;
        for request in &mut requests {
            request.flat = flat.clone();
        }
    }
    let mut total = PlanOutcome::default();
    for request in &requests {
        let outcome =
            plan(&mut table, request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
        add(&mut total, &outcome);
    }
    context.close_table(table, &library)?;
    if !context.quiet {
        print_plan(&total, &library);
    }
    drain(context, &library, &args.run).await
}

/// Adjusted prices change after every split: a ticker with a split executed
/// after its last covered day has its adjusted history fetched again (its
/// coverage is forgotten, so the plan asks for all of it and the new bars
/// replace the stored ones). One listing of the splits endpoint for every
/// ticker at once, from the oldest last covered day on.
async fn refetch_split_tickers(
    context: &Context,
    table: &mut JobTable,
    stored: &BTreeMap<Ticker, Series>,
    lasts: &BTreeMap<Ticker, NaiveDate>,
) -> Result<(), Failure> {
    let Some(since) = lasts.values().min().copied() else {
        return Ok(());
    };
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
    let mut split: BTreeMap<Ticker, NaiveDate> = BTreeMap::new();
    while let Some(page) = pages.next_page().await? {
        for record in page.results {
            let Ok(ticker) = Ticker::new(record.ticker.as_str()) else {
                continue;
            };
            if lasts
                .get(&ticker)
                .is_some_and(|last| record.execution_date > *last)
            {
                split.insert(ticker, record.execution_date);
            }
        }
    }
    for (ticker, date) in split {
        let Some(series) = stored.get(&ticker) else {
            continue;
        };
        // Every day the series could hold (the epoch: before any data).
        let (Some(epoch), Some(last)) = (NaiveDate::from_ymd_opt(1970, 1, 1), lasts.get(&ticker))
        else {
            continue;
        };
        let Some(range) = DateRange::new(epoch, *last) else {
            continue;
        };
        for tf in &series.timeframes {
            table
                .remove_coverage(&ticker, *tf, Basis::Adjusted, range)
                .map_err(|e| Failure::failed(e.to_string()))?;
        }
        output::note(&format!(
            "{ticker} split on {date}, after its adjusted files were written: \
             its whole adjusted history is fetched again"
        ));
    }
    Ok(())
}

/// A request spanning every group: all tickers, all timeframes, the widest range.
fn union_request(requests: &[PlanRequest], basis: Basis) -> Option<PlanRequest> {
    let start = requests.iter().map(|r| r.range.start).min()?;
    let end = requests.iter().map(|r| r.range.end).max()?;
    let timeframes: BTreeSet<Timeframe> = requests
        .iter()
        .flat_map(|r| r.timeframes.iter().copied())
        .collect();
    Some(PlanRequest {
        tickers: requests.iter().flat_map(|r| r.tickers.clone()).collect(),
        timeframes: timeframes.into_iter().collect(),
        range: DateRange::new(start, end)?,
        basis,
        starts: HashMap::new(),
        flat: None,
    })
}

fn add(total: &mut PlanOutcome, outcome: &PlanOutcome) {
    total.rest_jobs += outcome.rest_jobs;
    total.derive_jobs += outcome.derive_jobs;
    total.flat_jobs += outcome.flat_jobs;
    total.flat_days += outcome.flat_days;
    total.missing_days += outcome.missing_days;
    total.grouped_jobs += outcome.grouped_jobs;
    total.closed_ranges += outcome.closed_ranges;
    total.requeued += outcome.requeued;
    total.up_to_date += outcome.up_to_date;
}
