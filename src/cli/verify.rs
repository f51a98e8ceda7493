//! `finpipe verify`: checks the library and, with `--fix`, fetches the
//! missing trading days again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use clap::Args;
use finpipe::engine::wall_ms;
use finpipe::model::{Basis, Ticker, Timeframe};
use finpipe::plan::{PlanOutcome, PlanRequest, plan};
use finpipe::ranges::DateRange;
use finpipe::resample::derivable_from_minutes;
use finpipe::verify::{Report, verify};

use super::backfill::{Library, RunArgs, drain, print_plan, take_lock};
use super::{Context, Exit, Failure};

const VERIFY_EXAMPLES: &str = "\
Examples:
  finpipe verify                          # the whole library
  finpipe verify AAPL X:BTCUSD --timeframe 1m
  finpipe verify --fix                    # fetch the missing trading days again
  finpipe verify --json | jq '.problems[] | select(.kind == \"missing_days\")'";

#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXAMPLES)]
pub struct VerifyArgs {
    /// Tickers to check (default: every ticker in the library)
    #[arg(value_name = "TICKER")]
    tickers: Vec<String>,
    /// Only this timeframe
    #[arg(long, value_name = "TF")]
    timeframe: Option<Timeframe>,
    /// Plan and run jobs for the missing trading days, then check again
    #[arg(long)]
    fix: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Check the split-adjusted library
    #[arg(long)]
    adjusted: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub async fn run(context: &Context, args: VerifyArgs) -> Result<Exit, Failure> {
    context.api_key()?;
    let library = context.library(args.adjusted);
    let tickers = args
        .tickers
        .iter()
        .map(|t| Ticker::new(t.as_str()).map_err(|e| Failure::usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = check(context, &library, &tickers, args.timeframe).await?;
    if args.fix && report.problems.iter().any(|p| p.hole().is_some()) {
        let planned = fix(context, &library, &report, &args).await?;
        if !args.json {
            println!(
                "fix: {} missing range{} planned again",
                planned,
                if planned == 1 { "" } else { "s" }
            );
        }
        report = check(context, &library, &tickers, args.timeframe).await?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::failed(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        for p in &report.problems {
            let place = p
                .period
                .as_deref()
                .map(|period| format!(" {period}"))
                .unwrap_or_default();
            println!(
                "{} {}{place}: {}: {}",
                p.ticker, p.timeframe, p.kind, p.detail
            );
        }
        println!(
            "verify: {} series, {} files, {} bars checked in {}: {} problem{}",
            report.series,
            report.files,
            report.bars,
            library.data_dir.display(),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        );
    }
    Ok(if report.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

async fn check(
    context: &Context,
    library: &Library,
    tickers: &[Ticker],
    timeframe: Option<Timeframe>,
) -> Result<Report, Failure> {
    let store = Arc::new(context.open_store(library)?);
    let tickers = tickers.to_vec();
    tokio::task::spawn_blocking(move || verify(&store, &tickers, timeframe))
        .await
        .map_err(|e| Failure::failed(format!("verify stopped: {e}")))?
        .map_err(|e| Failure::failed(e.to_string()))
}

/// Forgets the coverage of every hole and plans it again (a derived
/// timeframe's hole with its 1m bars), then runs the jobs. Returns how many
/// holes were planned.
async fn fix(
    context: &Context,
    library: &Library,
    report: &Report,
    args: &VerifyArgs,
) -> Result<usize, Failure> {
    let _lock = take_lock(library, &args.run)?;
    let mut table = context.open_table(library)?;
    let basis = Basis::from_adjusted(args.adjusted);
    // The timeframes missing each (ticker, range): planned together, so a
    // derived timeframe is rebuilt from 1m fetched in the same plan.
    let mut holes: BTreeMap<(Ticker, DateRange), BTreeSet<Timeframe>> = BTreeMap::new();
    for problem in &report.problems {
        if let (Some(range), Ok(ticker), Ok(tf)) = (
            problem.hole(),
            Ticker::new(problem.ticker.as_str()),
            problem.timeframe.parse::<Timeframe>(),
        ) {
            holes.entry((ticker, range)).or_default().insert(tf);
        }
    }
    // Forget every hole's coverage first, so each plan sees the same state.
    for ((ticker, range), timeframes) in &holes {
        for tf in timeframes {
            table
                .remove_coverage(ticker, *tf, basis, *range)
                .map_err(|e| Failure::failed(e.to_string()))?;
        }
    }
    let mut total = PlanOutcome::default();
    for ((ticker, range), timeframes) in &holes {
        let mut timeframes = timeframes.clone();
        let derived = timeframes
            .iter()
            .any(|tf| *tf != Timeframe::MINUTE && derivable_from_minutes(*tf));
        // Rebuilding a derived file from 1m needs the ticker's 1m series: a
        // library without it fetches the derived timeframe itself.
        let has_minutes = !table
            .coverage(ticker, Timeframe::MINUTE, basis)
            .map_err(|e| Failure::failed(e.to_string()))?
            .is_empty();
        if derived && has_minutes {
            timeframes.insert(Timeframe::MINUTE);
        }
        let request = PlanRequest {
            tickers: vec![ticker.clone()],
            timeframes: timeframes.into_iter().collect(),
            range: *range,
            basis,
            starts: Default::default(),
            flat: None,
        };
        let outcome =
            plan(&mut table, &request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
        total.rest_jobs += outcome.rest_jobs;
        total.derive_jobs += outcome.derive_jobs;
        total.grouped_jobs += outcome.grouped_jobs;
        total.closed_ranges += outcome.closed_ranges;
    }
    let planned = holes.len();
    context.close_table(table, library)?;
    if !context.quiet && !args.json {
        print_plan(&total, library);
    }
    let mut run = args.run.clone();
    // With --json, stdout holds the report alone.
    run.summary_to_stderr = args.json;
    // A failed job shows in the check that follows.
    drain(context, library, &run).await?;
    Ok(planned)
}
