//! `finpipe verify`: checks the library and, with `--fix`, fetches the
//! missing trading days again.

use std::sync::Arc;

use clap::Args;
use finpipe::engine::wall_ms;
use finpipe::lock::{LockMode, acquire};
use finpipe::model::{Basis, Ticker, Timeframe};
use finpipe::plan::PlanError;
use finpipe::reindex::{reconcile_library, reindex};
use finpipe::verify::{Coverage, Problem, Report, plan_fixes, verify};

use super::backfill::{
    Library, RunArgs, drain, lock_failure, print_plan, print_reconciled, take_lock,
};
use super::{Context, Exit, Failure};

const REINDEX_EXAMPLES: &str = "\
Examples:
  finpipe reindex                  # after restoring a library without its job table
  finpipe reindex --json | jq '.lost'";

#[derive(Debug, Args)]
#[command(after_help = REINDEX_EXAMPLES)]
pub(super) struct ReindexArgs {
    /// Reindex the split-adjusted library
    #[arg(long)]
    adjusted: bool,
    /// Print what was found as JSON
    #[arg(long)]
    json: bool,
    /// If a run holds the lock, wait for it instead of exiting with code 3
    #[arg(long)]
    wait: bool,
}

/// `finpipe reindex`: the job table's coverage rebuilt from the library's
/// file footers, and covered periods whose file is gone forgotten. Local
/// state only: no key, no request.
pub(super) async fn run_reindex(context: &Context, args: ReindexArgs) -> Result<Exit, Failure> {
    let library = context.existing_library(args.adjusted)?;
    let _lock = acquire(&library.db, LockMode::Exclusive, args.wait).map_err(lock_failure)?;
    let mut table = context.open_table(&library)?;
    let store = context.open_store(&library)?;
    let basis = Basis::from_adjusted(args.adjusted);
    let found = tokio::task::block_in_place(|| reindex(&mut table, &store, basis))
        .map_err(|e| Failure::failed(e.to_string()))?;
    if args.json {
        let text = serde_json::to_string_pretty(&found)
            .map_err(|e| Failure::failed(format!("cannot write JSON: {e}")))?;
        outln!("{text}");
        return Ok(Exit::Ok);
    }
    for series in &found.rebuilt {
        let ranges: Vec<String> = series.covered.iter().map(ToString::to_string).collect();
        outln!(
            "{} {}: {} file{}, {} bars, covered {}",
            series.ticker,
            series.timeframe,
            series.files,
            if series.files == 1 { "" } else { "s" },
            series.rows,
            ranges.join(", ")
        );
    }
    for moved in &found.quarantined {
        outln!(
            "{}: unreadable, moved to {} ({})",
            moved.path.display(),
            moved.moved_to.display(),
            moved.reason
        );
    }
    for lost in &found.lost {
        outln!(
            "{} {} {}: lost: covered {} but {} is gone (the next run fetches it again)",
            lost.ticker,
            lost.timeframe,
            lost.period,
            lost.days,
            lost.path.display()
        );
    }
    outln!(
        "reindex: {} series with files in {}, {} covered series, {} lost period{}, {} file{} quarantined, {} unreadable",
        found.rebuilt.len(),
        library.data_dir.display(),
        found.series,
        found.lost.len(),
        if found.lost.len() == 1 { "" } else { "s" },
        found.quarantined.len(),
        if found.quarantined.len() == 1 {
            ""
        } else {
            "s"
        },
        found.unreadable,
    );
    Ok(Exit::Ok)
}

const VERIFY_EXAMPLES: &str = "\
Examples:
  finpipe verify                          # the whole library
  finpipe verify AAPL X:BTCUSD --timeframe 1m
  finpipe verify --fix                    # fetch the missing trading days again
  finpipe verify --json | jq '.problems[] | select(.kind == \"missing_days\")'";

#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXAMPLES)]
pub(super) struct VerifyArgs {
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

pub(super) async fn run(context: &Context, args: VerifyArgs) -> Result<Exit, Failure> {
    // Only --fix asks the API for anything.
    if args.fix {
        context.api_key()?;
    }
    let library = context.existing_library(args.adjusted)?;
    let tickers = args
        .tickers
        .iter()
        .map(|t| Ticker::new(t.as_str()).map_err(|e| Failure::usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = check(context, &library, &tickers, args.timeframe).await?;
    let fixable = |p: &Problem| p.hole().is_some() || p.kind == "unreadable";
    if args.fix && report.problems.iter().any(fixable) {
        let planned = fix(context, &library, &report, &args).await?;
        if !args.json {
            outln!(
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
        outln!("{text}");
    } else {
        for p in &report.problems {
            let place = p
                .period
                .as_deref()
                .map(|period| format!(" {period}"))
                .unwrap_or_default();
            outln!(
                "{} {}{place}: {}: {}",
                p.ticker,
                p.timeframe,
                p.kind,
                p.detail
            );
        }
        outln!(
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
    let coverage = read_coverage(context, library)?;
    let tickers = tickers.to_vec();
    tokio::task::spawn_blocking(move || verify(&store, &coverage, &tickers, timeframe))
        .await
        .map_err(|e| Failure::failed(format!("verify stopped: {e}")))?
        .map_err(|e| Failure::failed(e.to_string()))
}

/// The job table's coverage of the library's basis, by series; none when
/// there is no job table yet.
fn read_coverage(context: &Context, library: &Library) -> Result<Coverage, Failure> {
    let mut coverage = Coverage::new();
    if !library.db.may_exist() {
        return Ok(coverage);
    }
    let table = context.open_table(library)?;
    for (ticker, tf, basis, range) in table
        .all_coverage()
        .map_err(|e| Failure::failed(e.to_string()))?
    {
        if basis == library.basis {
            coverage.entry((ticker, tf)).or_default().push(range);
        }
    }
    Ok(coverage)
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
    // Unreadable files moved aside and covered periods without a file
    // forgotten first: both are planned with the report's holes.
    let store = context.open_store(library)?;
    let found =
        reconcile_library(&mut table, &store, basis).map_err(|e| Failure::failed(e.to_string()))?;
    print_reconciled(&found, context.quiet || args.json);
    let mut report = report.clone();
    report.problems.extend(found.lost.iter().map(Problem::from));
    let fixes = plan_fixes(&mut table, &report, basis, wall_ms()).map_err(|e| match e {
        PlanError::Jobs(e) => Failure::failed(e.to_string()),
        other => Failure::usage(other.to_string()),
    })?;
    let total = fixes.outcome;
    let planned = fixes.ranges;
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
