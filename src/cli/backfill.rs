//! `finpipe plan`, `run`, `backfill` and `run-once`: fill the job table and
//! drain it into the Parquet library.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use finpipe::calendar::market_today;
use finpipe::engine::{Engine, EngineOptions, RunSummary, StopSignal, wall_ms};
use finpipe::jobs::JobTable;
use finpipe::lock::{LockError, LockMode, RunLock, acquire};
use finpipe::model::{Basis, Ticker, Timeframe, parse_timeframes};
use finpipe::plan::{PlanError, PlanOutcome, PlanRequest, plan};
use finpipe::ranges::DateRange;
use finpipe::reindex::{Reconciled, reconcile};
use finpipe::store::Store;
use finpipe::universe::Universe;

use super::progress::Bars;
use super::sources::{SourceArgs, flat_choice};
use super::{Context, Exit, Failure, output};

/// Which work to plan: tickers, timeframes, dates, basis.
#[derive(Debug, Args)]
pub(super) struct WorkArgs {
    /// Timeframes, comma-separated: 1m,5m,15m,1h,1d (5m/15m/1h are derived from 1m when 1m is listed)
    #[arg(long, value_name = "LIST", value_parser = parse_timeframe_list)]
    pub timeframes: TimeframeList,
    /// First day (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub start: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD) [default: today; later dates are clamped to today]
    #[arg(long, value_name = "DATE")]
    pub end: Option<NaiveDate>,
    /// Split-adjusted prices, kept in their own library (default data-adjusted/)
    #[arg(long)]
    pub adjusted: bool,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// A comma-separated timeframe list, sorted and deduplicated.
#[derive(Clone, Debug)]
pub(super) struct TimeframeList(pub Vec<Timeframe>);

pub(super) fn parse_timeframe_list(text: &str) -> Result<TimeframeList, String> {
    parse_timeframes(text)
        .map(TimeframeList)
        .map_err(|e| e.to_string())
}

/// Which slice of a universe to take.
#[derive(Debug, Args)]
pub(super) struct BatchArgs {
    /// Tickers per batch [env: BATCH_SIZE; default: the whole universe]
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// First batch to take, counting from 0
    #[arg(long, value_name = "K", default_value_t = 0)]
    start_batch: usize,
    /// How many batches to take [default: all from --start-batch on]
    #[arg(long, value_name = "M")]
    max_batches: Option<usize>,
}

/// The tickers to work on: universe files and a batch slice of them.
#[derive(Debug, Args)]
pub(super) struct UniverseArgs {
    /// Universe files (from `finpipe discover`, or JSON arrays of tickers)
    #[arg(required = true, value_name = "UNIVERSE")]
    universes: Vec<PathBuf>,
    #[command(flatten)]
    batch: BatchArgs,
}

/// How to run the queue.
#[derive(Clone, Debug, Args, Default)]
pub(super) struct RunArgs {
    /// The summary line goes to stderr (stdout carries JSON).
    #[arg(skip)]
    pub summary_to_stderr: bool,
    /// Stop after this many jobs
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,
    /// If another run holds the lock, wait for it instead of exiting with code 3
    #[arg(long)]
    pub wait: bool,
    /// Drain the table together with other --shared runners (a shared lock instead of the exclusive one)
    #[arg(long)]
    pub shared: bool,
}

const PLAN_EXAMPLES: &str = "\
Examples:
  finpipe plan universe/etf_20241201.json --timeframes 1m,5m,1h,1d --start 2024-01-01
  finpipe plan universe/us_equities_20241201.json --timeframes 1d --start 2020-01-01 --batch-size 500 --start-batch 2 --max-batches 1";

#[derive(Debug, Args)]
#[command(after_help = PLAN_EXAMPLES)]
pub(super) struct PlanArgs {
    #[command(flatten)]
    work: WorkArgs,
    #[command(flatten)]
    universe: UniverseArgs,
}

const RUN_EXAMPLES: &str = "\
Examples:
  finpipe run
  finpipe run --concurrency 16 --max-jobs 100
  finpipe run --shared      # a second runner on the same table";

#[derive(Debug, Args)]
#[command(after_help = RUN_EXAMPLES)]
pub(super) struct RunCmdArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Run the split-adjusted library's queue
    #[arg(long)]
    adjusted: bool,
}

const BACKFILL_EXAMPLES: &str = "\
Examples:
  finpipe backfill universe/etf_20241201.json --timeframes 1m,1d --start 2024-01-01
  finpipe backfill universe/crypto_20241201.json --timeframes 1h --start 2023-01-01 --end 2023-12-31";

#[derive(Debug, Args)]
#[command(after_help = BACKFILL_EXAMPLES)]
pub(super) struct BackfillArgs {
    #[command(flatten)]
    work: WorkArgs,
    #[command(flatten)]
    universe: UniverseArgs,
    #[command(flatten)]
    run: RunArgs,
}

const RUN_ONCE_EXAMPLES: &str = "\
Examples:
  finpipe run-once AAPL --timeframes 1h,1d --start 2024-11-01
  finpipe run-once X:BTCUSD --timeframes 1m --start 2024-11-01 --end 2024-11-07";

#[derive(Debug, Args)]
#[command(after_help = RUN_ONCE_EXAMPLES)]
pub(super) struct RunOnceArgs {
    /// The ticker, as Polygon spells it (AAPL, BRK.A, X:BTCUSD)
    ticker: String,
    #[command(flatten)]
    work: WorkArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// The library a command works on.
pub(crate) struct Library {
    pub data_dir: PathBuf,
    pub db: PathBuf,
    pub basis: Basis,
}

impl Context {
    /// The data directory and job table for `basis`: `--adjusted` defaults to
    /// `data-adjusted/`, so the two bases never mix.
    pub(crate) fn library(&self, adjusted: bool) -> Library {
        let config = &self.config;
        let basis = Basis::from_adjusted(adjusted);
        let data_dir = if adjusted && config.data_dir.origin == finpipe::config::Origin::Default {
            PathBuf::from("data-adjusted")
        } else {
            config.data_dir.value.clone()
        };
        let db = if config.db.origin == finpipe::config::Origin::Default {
            data_dir.join("finpipe.db")
        } else {
            config.db.value.clone()
        };
        Library {
            data_dir,
            db,
            basis,
        }
    }

    pub(crate) fn open_table(&self, library: &Library) -> Result<JobTable, Failure> {
        JobTable::open(&library.db)
            .map_err(|e| Failure::failed(format!("job table {}: {e}", library.db.display())))
    }

    /// The library for a command that only reads local state (`status`,
    /// `jobs`, `verify`, `reindex`): it must exist already, so a mistyped
    /// `--data-dir` is a usage error (exit 2) and never an empty new library.
    pub(crate) fn existing_library(&self, adjusted: bool) -> Result<Library, Failure> {
        let library = self.library(adjusted);
        if library.data_dir.is_dir() {
            return Ok(library);
        }
        Err(Failure::usage(format!(
            "there is no library at {}: check --data-dir (or FINPIPE_DATA_DIR{}); \
             `finpipe backfill` creates one",
            library.data_dir.display(),
            if adjusted {
                "; --adjusted reads data-adjusted/ by default"
            } else {
                ""
            }
        )))
    }

    /// Closes a table from [`Context::open_table`] when a command is done
    /// with it: its WAL folded into the file, a failure reported. (A table
    /// dropped on an early return is closed too, silently.)
    pub(crate) fn close_table(&self, table: JobTable, library: &Library) -> Result<(), Failure> {
        table
            .close()
            .map_err(|e| Failure::failed(format!("job table {}: {e}", library.db.display())))
    }

    pub(crate) fn open_store(&self, library: &Library) -> Result<Store, Failure> {
        Store::open(&library.data_dir, library.basis, env!("CARGO_PKG_VERSION"))
            .map_err(|e| Failure::failed(e.to_string()))
    }
}

pub(super) async fn run_plan(context: &Context, args: PlanArgs) -> Result<Exit, Failure> {
    context.api_key()?;
    let tickers = read_universes(&args.universe, context)?;
    let library = context.library(args.work.adjusted);
    let mut request = plan_request(context, tickers, &args.work)?;
    let mut table = context.open_table(&library)?;
    check_coverage(context, &library, &mut table, &request)?;
    request.flat = flat_choice(context, &request, &args.work.sources, &table).await?;
    let outcome =
        plan(&mut table, &request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
    context.close_table(table, &library)?;
    print_plan(&outcome, &library);
    Ok(Exit::Ok)
}

pub(super) async fn run_queue(context: &Context, args: RunCmdArgs) -> Result<Exit, Failure> {
    let library = context.library(args.adjusted);
    let _lock = take_lock(&library, &args.run)?;
    drain(context, &library, &args.run).await
}

pub(super) async fn run_backfill(context: &Context, args: BackfillArgs) -> Result<Exit, Failure> {
    context.api_key()?;
    let tickers = read_universes(&args.universe, context)?;
    plan_and_drain(context, tickers, &args.work, &args.run).await
}

pub(super) async fn run_once(context: &Context, args: RunOnceArgs) -> Result<Exit, Failure> {
    context.api_key()?;
    let ticker = Ticker::new(args.ticker).map_err(|e| Failure::usage(e.to_string()))?;
    plan_and_drain(context, vec![ticker], &args.work, &args.run).await
}

pub(super) async fn plan_and_drain(
    context: &Context,
    tickers: Vec<Ticker>,
    work: &WorkArgs,
    run: &RunArgs,
) -> Result<Exit, Failure> {
    let library = context.library(work.adjusted);
    let mut request = plan_request(context, tickers, work)?;
    let _lock = take_lock(&library, run)?;
    let mut table = context.open_table(&library)?;
    check_coverage(context, &library, &mut table, &request)?;
    request.flat = flat_choice(context, &request, &work.sources, &table).await?;
    let outcome =
        plan(&mut table, &request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
    context.close_table(table, &library)?;
    if !context.quiet {
        // --quiet leaves warnings and the one summary line of the run.
        print_plan(&outcome, &library);
    }
    drain(context, &library, run).await
}

/// Checks the request's series' coverage against the library's files before
/// planning (rebuilt where the table has none, forgotten where a covered
/// file is gone) and says what it did.
fn check_coverage(
    context: &Context,
    library: &Library,
    table: &mut JobTable,
    request: &PlanRequest,
) -> Result<(), Failure> {
    let store = context.open_store(library)?;
    let found = reconcile(
        table,
        &store,
        &request.tickers,
        &request.timeframes,
        request.basis,
    )
    .map_err(|e| Failure::failed(e.to_string()))?;
    print_reconciled(&found, context.quiet);
    Ok(())
}

/// Says what a check of coverage against the files did (warnings only when
/// `quiet`).
pub(super) fn print_reconciled(found: &Reconciled, quiet: bool) {
    for moved in &found.quarantined {
        output::warn(&format!(
            "{} cannot be read and was moved to {} (kept, not deleted); its period is \
             fetched again. Why: {}",
            moved.path.display(),
            moved.moved_to.display(),
            moved.reason
        ));
    }
    for lost in &found.lost {
        output::warn(&format!(
            "{} {} {}: covered ({}) but its file {} is gone: fetched again",
            lost.ticker,
            lost.timeframe,
            lost.period,
            lost.days,
            lost.path.display()
        ));
    }
    if !found.rebuilt.is_empty() && !quiet {
        let files: usize = found.rebuilt.iter().map(|r| r.files).sum();
        output::note(&format!(
            "the job table knew nothing of {} series that have files: their coverage \
             was rebuilt from {} file footer{}, so they are not fetched again",
            found.rebuilt.len(),
            files,
            plural(files)
        ));
    }
}

/// The validated plan request: dates checked, `--end` clamped to today.
fn plan_request(
    context: &Context,
    tickers: Vec<Ticker>,
    work: &WorkArgs,
) -> Result<PlanRequest, Failure> {
    // Checked here too, before the lock and the table are created.
    if tickers.is_empty() {
        return Err(Failure::usage(PlanError::NoTickers.to_string()));
    }
    let today = market_today(context.clock.now());
    let mut end = work.end.unwrap_or(today);
    if end > today {
        output::note(&format!(
            "--end {end} is in the future; using today, {today}"
        ));
        end = today;
    }
    if work.start > end {
        return Err(Failure::usage(if work.start > today {
            format!("--start {} is in the future (today is {today})", work.start)
        } else {
            format!(
                "--start {} is after --end {end}: swap them or fix one",
                work.start
            )
        }));
    }
    Ok(PlanRequest {
        tickers,
        timeframes: work.timeframes.0.clone(),
        range: DateRange {
            start: work.start,
            end,
        },
        basis: Basis::from_adjusted(work.adjusted),
        starts: Default::default(),
        flat: None,
    })
}

/// Every ticker of the universes, in order, without repeats, then the batch slice.
fn read_universes(args: &UniverseArgs, context: &Context) -> Result<Vec<Ticker>, Failure> {
    let tickers = read_universe_files(&args.universes)?;
    let batch = &args.batch;
    let batch_size = match batch.batch_size {
        Some(n) => Some(n),
        None => match context.env.var("BATCH_SIZE") {
            Some(text) => Some(text.parse().map_err(|_| {
                Failure::usage(format!("BATCH_SIZE={text:?} is not a whole number"))
            })?),
            None => None,
        },
    };
    let Some(size) = batch_size else {
        return Ok(tickers);
    };
    if size == 0 {
        return Err(Failure::usage("--batch-size must be at least 1"));
    }
    let first = batch.start_batch.saturating_mul(size);
    let count = batch
        .max_batches
        .map_or(usize::MAX, |m| m.saturating_mul(size));
    Ok(tickers.into_iter().skip(first).take(count).collect())
}

/// Every ticker of the universe files, in order, without repeats.
pub(super) fn read_universe_files(paths: &[PathBuf]) -> Result<Vec<Ticker>, Failure> {
    let mut tickers: Vec<Ticker> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let universe = Universe::read(path).map_err(|e| Failure::usage(e.to_string()))?;
        for ticker in universe.symbols() {
            if seen.insert(ticker.clone()) {
                tickers.push(ticker);
            }
        }
    }
    Ok(tickers)
}

pub(super) fn print_plan(outcome: &PlanOutcome, library: &Library) {
    if outcome.missing_days > 0 {
        output::warn(&format!(
            "{} open day{} {} no flat file and {} left out (--source flatfiles)",
            outcome.missing_days,
            plural(outcome.missing_days),
            if outcome.missing_days == 1 {
                "has"
            } else {
                "have"
            },
            if outcome.missing_days == 1 {
                "is"
            } else {
                "are"
            },
        ));
    }
    outln!(
        "planned {} REST job{}, {} flat-file job{} ({} day file{}), {} grouped-daily job{} and {} derive job{}; {} series already up to date; {} failed job{} re-queued ({})",
        outcome.rest_jobs,
        plural(outcome.rest_jobs),
        outcome.flat_jobs,
        plural(outcome.flat_jobs),
        outcome.flat_days,
        plural(outcome.flat_days),
        outcome.grouped_jobs,
        plural(outcome.grouped_jobs),
        outcome.derive_jobs,
        plural(outcome.derive_jobs),
        outcome.up_to_date,
        outcome.requeued,
        plural(outcome.requeued),
        library.db.display()
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(super) fn take_lock(library: &Library, run: &RunArgs) -> Result<RunLock, Failure> {
    let mode = if run.shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    acquire(&library.db, mode, run.wait).map_err(|e| match e {
        LockError::Held { .. } => Failure {
            exit: Exit::Locked,
            message: e.to_string(),
        },
        other => Failure::failed(other.to_string()),
    })
}

/// Runs the queue of `library` and reports.
pub(super) async fn drain(
    context: &Context,
    library: &Library,
    run: &RunArgs,
) -> Result<Exit, Failure> {
    context.api_key()?;
    let client = context.client()?;
    let store = Arc::new(context.open_store(library)?);
    let mut table = context.open_table(library)?;
    if !run.shared {
        // We hold the exclusive lock: no other runner is alive, so jobs left
        // running and temporary files belong to a dead process.
        table
            .reclaim_orphans(wall_ms())
            .map_err(|e| Failure::failed(e.to_string()))?;
        store
            .remove_all_temporaries()
            .map_err(|e| Failure::failed(e.to_string()))?;
    }
    let stop = StopSignal::default();
    let bars = Arc::new(Bars::new(client.clone(), context.quiet));
    let options = EngineOptions {
        concurrency: context.config.concurrency.value,
        max_jobs: run.max_jobs,
        lease: Duration::from_secs(300),
        max_attempts: 3,
        retry_delay: context.config.retry_base.value.saturating_mul(10),
        owner: format!("{}:{}:{}", hostname(), std::process::id(), wall_ms()),
        clock: context.clock,
        flat: context.flat_files()?,
        exclusive: !run.shared,
    };
    let engine = Engine::new(
        table,
        client.clone(),
        store,
        options,
        bars.clone(),
        stop.clone(),
    )
    .map_err(|e| Failure::failed(e.to_string()))?;
    let started = std::time::Instant::now();
    let watcher = tokio::spawn(interrupt(stop.clone()));
    let summary = engine.run().await;
    watcher.abort();
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            bars.finish();
            return Err(Failure::failed(e.to_string()));
        }
    };
    bars.finish();
    report(
        &summary,
        library,
        client.stats().requests(),
        started.elapsed(),
        run.summary_to_stderr,
    )
}

/// Waits for Ctrl-C, asks the engine to stop, and keeps waiting: a second
/// Ctrl-C exits at once.
async fn interrupt(stop: StopSignal) {
    if tokio::signal::ctrl_c().await.is_ok() {
        output::note(
            "stopping: no new jobs; jobs in flight give back their progress (Ctrl-C again to quit now)",
        );
        stop.trigger();
        if tokio::signal::ctrl_c().await.is_ok() {
            // Asked twice: the user wants out now. Leases expire and the
            // job table recovers its WAL on the next open.
            #[allow(clippy::exit)]
            std::process::exit(Exit::Interrupted as i32);
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn report(
    summary: &RunSummary,
    library: &Library,
    requests: u64,
    elapsed: Duration,
    to_stderr: bool,
) -> Result<Exit, Failure> {
    for failed in &summary.failed {
        output::error(&format!(
            "job {} failed: {}",
            failed.description, failed.error
        ));
    }
    let line = format!(
        "finpipe: jobs done={} failed={} retried={} bars_new={} requests={} duration={:.1}s library={}",
        summary.done,
        summary.failed.len(),
        summary.retried,
        summary.rows_new,
        requests,
        elapsed.as_secs_f64(),
        library.data_dir.display()
    );
    if to_stderr {
        errln!("{line}");
    } else {
        outln!("{line}");
    }
    if let Some(fatal) = &summary.fatal {
        // A refused key is the configuration's (2); a full or read-only disk
        // is a storage failure (1). Either way the jobs were given back.
        return Err(if fatal.kind.is_usage() {
            Failure::usage(fatal.message.clone())
        } else {
            Failure::failed(fatal.message.clone())
        });
    }
    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    if summary.failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Failed)
    }
}
