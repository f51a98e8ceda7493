//! `finpipe plan`, `run`, `backfill` and `run-once`: fill the job table and
//! drain it into the Parquet library.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use finpipe::calendar::market_today;
use finpipe::engine::{Engine, EngineOptions, RunSummary, StopSignal, wall_ms};
use finpipe::jobs::{DbLocation, ErrorClass, JobError, JobTable, RunEnd, library_db};
use finpipe::lock::{LockError, LockMode, RunLock, acquire};
use finpipe::model::{Basis, Ticker, Timeframe, parse_timeframes};
use finpipe::no_bars;
use finpipe::plan::{
    DryRun, DryRunError, PAGE_BARS, PlanError, PlanOutcome, PlanRequest, days_before, dry_run,
    human, plan, time_at,
};
use finpipe::polygon::RateLimit;
use finpipe::ranges::DateRange;
use finpipe::reindex::{Reconciled, reconcile};
use finpipe::sources::{SourceChoice, Unreachable};
use finpipe::store::blobs::{self, S3Blobs, S3Config};
use finpipe::store::{DB_FILE, MigrateDb, Store, migrate_state};
use finpipe::universe::{Universe, tickers_of};

use super::progress::Bars;
use super::sources::{SourceArgs, flat_choice};
use super::{Context, Exit, Failure, output};

/// Which work to plan: tickers, timeframes, dates, basis.
#[derive(Debug, Args)]
pub(super) struct WorkArgs {
    /// Timeframes, comma-separated: 1m,5m,15m,1h,1d (5m/15m/1h are derived from 1m when 1m is
    /// listed); from trades (flat-file access): seconds 1s,5s,10s,30s and activity bars 1000t
    /// (trades), 50000v (volume), 1e6usd or 1e6$ (dollars)
    #[arg(long, value_name = "LIST", value_parser = parse_timeframe_list)]
    pub timeframes: TimeframeList,
    /// First day (YYYY-MM-DD)
    #[arg(
        long,
        value_name = "DATE",
        required_unless_present = "days",
        conflicts_with = "days"
    )]
    pub start: Option<NaiveDate>,
    /// Start N days before today instead of at --start (--days 30: the last 30 days and today)
    #[arg(long, value_name = "N")]
    pub days: Option<u64>,
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

/// The tickers to work on: tickers and universe files, and a batch slice
/// of them.
#[derive(Debug, Args)]
pub(super) struct UniverseArgs {
    /// Tickers (AAPL BRK.A X:BTCUSD) and/or universe files (from `finpipe discover`, or JSON
    /// arrays of tickers): a word that ends in .json or names an existing file is a universe,
    /// any other word a ticker
    #[arg(required = true, value_name = "TICKER|UNIVERSE")]
    words: Vec<String>,
    #[command(flatten)]
    batch: BatchArgs,
}

/// How to run the queue.
#[derive(Clone, Debug, Args, Default)]
pub(super) struct RunArgs {
    /// The summary line goes to stderr (stdout carries JSON).
    #[arg(skip)]
    pub summary_to_stderr: bool,
    /// The command recorded in the job table's run history (`run`,
    /// `backfill`, `update`, `run-once`); `None` records no run.
    #[arg(skip)]
    pub command: Option<&'static str>,
    /// Stop after this many jobs
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,
    /// If another run holds the lock, wait for it instead of exiting with code 3
    #[arg(long)]
    pub wait: bool,
    /// Drain the table together with other --shared runners (a shared lock instead of the exclusive one)
    #[arg(long)]
    pub shared: bool,
    /// How long a claimed job stays this runner's between renewals (every third of it): a
    /// runner that dies hands its jobs to the others this long after its last renewal
    /// [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = parse_lease)]
    pub lease: Option<Duration>,
    #[command(flatten)]
    pub summary: SummaryFormat,
}

/// The shortest `--lease`: a runner renews every third of it, and a lease
/// that ran out while its runner lives lets another take a job in flight.
const MIN_LEASE: Duration = Duration::from_secs(10);

/// `--lease`: a duration of at least [`MIN_LEASE`].
fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = finpipe::config::parse_duration(text)?;
    if lease < MIN_LEASE {
        return Err(format!(
            "{text} is too short: a lease must outlast the renewals that keep it (every third of \
             it) under load; use at least {}s",
            MIN_LEASE.as_secs()
        ));
    }
    Ok(lease)
}

/// `--json`: the run's summary line as one JSON object. A command with a
/// `--json` of its own (`verify`'s report) shares that flag: one switch
/// makes all its output machine-readable.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SummaryFormat {
    pub json: bool,
}

const JSON_FLAG: &str = "json";

/// Set once `--json` asked for the JSON summary: stdout then carries that
/// alone, and the plan line (printed by several commands before their run)
/// goes to stderr.
static JSON_SUMMARY: AtomicBool = AtomicBool::new(false);

impl clap::FromArgMatches for SummaryFormat {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let json = matches
            .try_get_one::<bool>(JSON_FLAG)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false);
        if json {
            JSON_SUMMARY.store(true, Ordering::Relaxed);
        }
        Ok(Self { json })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SummaryFormat {
    fn augment_args(command: clap::Command) -> clap::Command {
        if command.get_arguments().any(|a| a.get_id() == JSON_FLAG) {
            return command;
        }
        command.arg(
            clap::Arg::new(JSON_FLAG)
                .long(JSON_FLAG)
                .action(clap::ArgAction::SetTrue)
                .help(
                    "Print the run's summary line as one JSON object (stdout then holds it alone)",
                ),
        )
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

const PLAN_EXAMPLES: &str = "\
Examples:
  finpipe plan universe/etf_20241201.json --timeframes 1m,5m,1h,1d --start 2024-01-01
  finpipe plan AAPL MSFT --timeframes 1m,1d --days 365 --dry-run   # what it would cost
  finpipe plan universe/us_equities_20241201.json --timeframes 1d --start 2020-01-01 --batch-size 500 --start-batch 2 --max-batches 1";

#[derive(Debug, Args)]
#[command(after_help = PLAN_EXAMPLES)]
pub(super) struct PlanArgs {
    #[command(flatten)]
    work: WorkArgs,
    #[command(flatten)]
    universe: UniverseArgs,
    /// Say what would be planned and what it costs (jobs per source, requests, time at
    /// --rate-limit); write nothing
    #[arg(long)]
    dry_run: bool,
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
  finpipe backfill AAPL MSFT --timeframes 1d --days 30
  finpipe backfill universe/etf_20241201.json --timeframes 1m --days 365 --dry-run
  finpipe -q backfill AAPL --timeframes 1d --days 5 --json | jq .bars_new
  finpipe backfill universe/crypto_20241201.json --timeframes 1h --start 2023-01-01 --end 2023-12-31";

#[derive(Debug, Args)]
#[command(after_help = BACKFILL_EXAMPLES)]
pub(super) struct BackfillArgs {
    #[command(flatten)]
    work: WorkArgs,
    #[command(flatten)]
    universe: UniverseArgs,
    /// Say what would be planned and what it costs (jobs per source, requests, time at
    /// --rate-limit); write nothing, fetch nothing
    #[arg(long)]
    dry_run: bool,
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
    /// The job table: a SQLite file or a PostgreSQL URL (shown masked).
    pub db: DbLocation,
    pub basis: Basis,
}

impl Library {
    /// Whether the library exists: a directory, or an `s3://` prefix
    /// (which exists as soon as it is named; an empty one holds no files).
    pub(crate) fn exists(&self) -> bool {
        blobs::is_remote_root(&self.data_dir) || self.data_dir.is_dir()
    }
}

impl Context {
    /// The data directory and job table for `basis`: `--adjusted` defaults to
    /// `data-adjusted/`, so the two bases never mix. An `s3://` library
    /// keeps no job table inside it: it needs an explicit `--db`.
    pub(crate) fn library(&self, adjusted: bool) -> Result<Library, Failure> {
        let config = &self.config;
        let basis = Basis::from_adjusted(adjusted);
        let data_dir = if adjusted && config.data_dir.origin == finpipe::config::Origin::Default {
            PathBuf::from("data-adjusted")
        } else {
            config.data_dir.value.clone()
        };
        let default_db = config.db.origin == finpipe::config::Origin::Default;
        if blobs::is_remote_root(&data_dir) {
            if default_db {
                return Err(Failure::usage(format!(
                    "the library {} is on object storage, which keeps no job table: pass --db \
                     (or FINPIPE_DB): a postgres:// URL shared by the runners, or a file on \
                     this machine, e.g. --db finpipe.db",
                    data_dir.display()
                )));
            }
            return Ok(Library {
                data_dir,
                db: config.db.value.clone(),
                basis,
            });
        }
        let db = library_db(&data_dir, Some(&config.db.value).filter(|_| !default_db));
        let db = self.migrate_state(&data_dir, db, default_db);
        Ok(Library {
            data_dir,
            db,
            basis,
        })
    }

    /// The local scratch directory of an `s3://` library: `--scratch`, else
    /// `FINPIPE_SCRATCH`, else `finpipe-scratch` in the system's temp dir.
    pub(crate) fn scratch(&self) -> PathBuf {
        self.scratch
            .clone()
            .or_else(|| self.env.var("FINPIPE_SCRATCH").map(PathBuf::from))
            .unwrap_or_else(blobs::default_scratch)
    }

    /// Moves an older library's own files (job table, lock, staging) into
    /// its state folder, once, before any of them is opened, with a note;
    /// returns the job table to use (the old one if it could not move).
    fn migrate_state(&self, data_dir: &Path, db: DbLocation, default_db: bool) -> DbLocation {
        let which = if default_db {
            MigrateDb::Yes
        } else {
            MigrateDb::No
        };
        fn names<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> String {
            let names: Vec<_> = paths.filter_map(|p| p.file_name()?.to_str()).collect();
            names.join(", ")
        }
        match migrate_state(data_dir, which) {
            Ok(done) => {
                let state = done.state_dir.display();
                if done.moved_any() && !self.quiet {
                    output::note(&format!(
                        "moved finpipe's state into {state}/ ({}): the library root now holds only \
                         ticker folders, a clean Parquet dataset (once; nothing else changes)",
                        names(done.moved.iter().map(|(old, _)| old))
                    ));
                }
                if !done.left.is_empty() {
                    output::warn(&format!(
                        "left {} in {}: {state}/ has its own, which finpipe uses; \
                         remove the old ones once you no longer need them",
                        names(done.left.iter()),
                        data_dir.display()
                    ));
                }
                db
            }
            Err(e) => {
                let old = data_dir.join(DB_FILE);
                let fallback = default_db
                    && old.is_file()
                    && db.sqlite_path().is_some_and(|path| !path.exists());
                output::warn(&format!(
                    "cannot move finpipe's state into its folder: {e}{}",
                    if fallback {
                        format!("; this run uses {}", old.display())
                    } else {
                        String::new()
                    }
                ));
                if fallback {
                    DbLocation::Sqlite(old)
                } else {
                    db
                }
            }
        }
    }

    pub(crate) fn open_table(&self, library: &Library) -> Result<JobTable, Failure> {
        JobTable::open_at(&library.db).map_err(|e| table_failure(&e, library))
    }

    /// The library for a command that only reads local state (`status`,
    /// `jobs`, `verify`, `reindex`): it must exist already, so a mistyped
    /// `--data-dir` is a usage error (exit 2) and never an empty new library.
    pub(crate) fn existing_library(&self, adjusted: bool) -> Result<Library, Failure> {
        let library = self.library(adjusted)?;
        if library.exists() {
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
        table.close().map_err(|e| table_failure(&e, library))
    }

    /// The library's store for reading only: nothing is created or swept.
    pub(crate) fn read_store(&self, library: &Library) -> Result<Store, Failure> {
        if blobs::is_remote_root(&library.data_dir) {
            return self.open_store(library);
        }
        Store::for_reading(&library.data_dir, library.basis, env!("CARGO_PKG_VERSION"))
            .map_err(|e| Failure::failed(e.to_string()))
    }

    /// The library's store. An `s3://` library is reached with the
    /// `FINPIPE_S3_*` / `AWS_*` settings (environment, then `.env`), its
    /// prepared writes wait in [`Context::scratch`].
    pub(crate) fn open_store(&self, library: &Library) -> Result<Store, Failure> {
        let version = env!("CARGO_PKG_VERSION");
        if !blobs::is_remote_root(&library.data_dir) {
            return Store::open(&library.data_dir, library.basis, version)
                .map_err(|e| Failure::failed(e.to_string()));
        }
        let config = S3Config::from_lookup(|name| self.env.var(name));
        let blobs = S3Blobs::new(&library.data_dir, &config, &self.scratch())
            .map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Store::with_blobs(Arc::new(blobs), library.basis, version))
    }
}

pub(super) async fn run_plan(context: &Context, args: PlanArgs) -> Result<Exit, Failure> {
    if args.dry_run {
        let tickers = read_universes(&args.universe, context)?;
        return preview(context, tickers, &args.work).await;
    }
    context.api_key()?;
    let tickers = read_universes(&args.universe, context)?;
    let library = context.library(args.work.adjusted)?;
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

pub(super) async fn run_queue(context: &Context, mut args: RunCmdArgs) -> Result<Exit, Failure> {
    args.run.command = Some("run");
    let library = context.library(args.adjusted)?;
    let _lock = take_lock(&library, &args.run)?;
    drain(context, &library, &args.run).await
}

pub(super) async fn run_backfill(
    context: &Context,
    mut args: BackfillArgs,
) -> Result<Exit, Failure> {
    args.run.command = Some("backfill");
    if args.dry_run {
        let tickers = read_universes(&args.universe, context)?;
        return preview(context, tickers, &args.work).await;
    }
    context.api_key()?;
    let tickers = read_universes(&args.universe, context)?;
    plan_and_drain(context, tickers, &args.work, &args.run).await
}

pub(super) async fn run_once(context: &Context, mut args: RunOnceArgs) -> Result<Exit, Failure> {
    args.run.command = Some("run-once");
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
    let library = context.library(work.adjusted)?;
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
    let asked = (request.tickers.clone(), request.range);
    let mut history = RunHistory::new(context, run);
    let drained = run_planned(context, &library, work, run, request, &mut history).await;
    history.settle(&library, drained, |drained| {
        warn_tickers_without_bars(context, &library, &drained.summary, asked);
        report(drained, &library, run)
    })
}

/// Runs the queue just planned for `request`; in auto, the days whose flat
/// files could not be read because the endpoint went away during the run
/// come from REST instead.
async fn run_planned(
    context: &Context,
    library: &Library,
    work: &WorkArgs,
    run: &RunArgs,
    request: PlanRequest,
    history: &mut RunHistory,
) -> Result<Drained, Failure> {
    let drained = run_engine(context, library, run, history).await?;
    if work.sources.source == SourceChoice::Auto && request.flat.is_some() {
        return fall_back_to_rest(context, library, run, request, drained, history).await;
    }
    Ok(drained)
}

/// After a run that finished its jobs: warns about each ticker that still
/// has no bar at all (the API answers a ticker it does not know with empty
/// pages), naming the nearest known ticker. Tickers whose jobs failed are
/// reported with their failure instead.
fn warn_tickers_without_bars(
    context: &Context,
    library: &Library,
    summary: &RunSummary,
    (tickers, range): (Vec<Ticker>, DateRange),
) {
    if summary.interrupted || summary.fatal.is_some() {
        return;
    }
    let finished: Vec<Ticker> = tickers
        .iter()
        .filter(|t| !summary.failed.iter().any(|f| &f.ticker == *t))
        .cloned()
        .collect();
    // Read only: one listing of the root, no second sweep for temporaries.
    let store = match context.read_store(library) {
        Ok(store) => store,
        Err(e) => {
            tracing::debug!("cannot look for tickers without bars: {}", e.message);
            return;
        }
    };
    let found = match finpipe::no_bars::tickers_without_bars(&store, &finished) {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("cannot look for tickers without bars: {e}");
            return;
        }
    };
    let (from, to) = (range.start, range.end);
    if found.tickers.len() > no_bars::MAX_SUGGESTED {
        let first: Vec<&str> = found.tickers.iter().take(5).map(Ticker::as_str).collect();
        output::warn(&format!(
            "{} tickers have no bars at all from {from} to {to} (the first: {}): the API \
             answered with nothing, so it may not know them, or they did not trade",
            found.tickers.len(),
            first.join(", ")
        ));
        return;
    }
    for (i, ticker) in found.tickers.iter().enumerate() {
        let hint = found
            .nearest
            .get(i)
            .and_then(Option::as_ref)
            .map(|n| format!("; did you mean {n}?"))
            .unwrap_or_default();
        output::warn(&format!(
            "{ticker}: no bars at all from {from} to {to}: the API answered with nothing, \
             so it may not know this ticker{hint}"
        ));
    }
}

/// After a run in `auto`: when flat-file jobs failed for good because the
/// endpoint could not be reached, says so once (naming it), plans the same
/// request from REST alone (which asks for exactly the days still not
/// covered) and runs that too. The flat-file jobs stay failed in the table;
/// the run's outcome counts the REST jobs that replaced them.
async fn fall_back_to_rest(
    context: &Context,
    library: &Library,
    run: &RunArgs,
    mut request: PlanRequest,
    first: Drained,
    history: &mut RunHistory,
) -> Result<Drained, Failure> {
    let (unreachable, kept): (Vec<_>, Vec<_>) = first
        .summary
        .failed
        .iter()
        .cloned()
        .partition(|failed| Unreachable::in_text(&failed.error).is_some());
    let Some(endpoint) = unreachable
        .first()
        .and_then(|failed| Unreachable::in_text(&failed.error))
    else {
        return Ok(first);
    };
    if first.summary.interrupted || first.summary.fatal.is_some() {
        return Ok(first);
    }
    output::warn(&format!(
        "{endpoint}; the days of {} flat-file job{} come from REST instead",
        unreachable.len(),
        plural(unreachable.len())
    ));
    request.flat = None;
    let mut table = context.open_table(library)?;
    let outcome =
        plan(&mut table, &request, wall_ms()).map_err(|e| Failure::usage(e.to_string()))?;
    context.close_table(table, library)?;
    if !context.quiet {
        print_plan(&outcome, library);
    }
    let second = run_engine(context, library, run, history).await?;
    let mut summary = second.summary;
    summary.done += first.summary.done;
    summary.retried += first.summary.retried;
    summary.released += first.summary.released;
    summary.rows_new += first.summary.rows_new;
    let mut failed = kept;
    failed.append(&mut summary.failed);
    summary.failed = failed;
    Ok(Drained {
        summary,
        requests: first.requests + second.requests,
        rate_limited: first.rate_limited + second.rate_limited,
        elapsed: first.elapsed + second.elapsed,
    })
}

/// `--dry-run`: what planning would add and what the queue would then cost,
/// with nothing written (see [`finpipe::plan::dry_run`]): no lock taken, no
/// job table created or changed, no file of the library moved.
async fn preview(
    context: &Context,
    tickers: Vec<Ticker>,
    work: &WorkArgs,
) -> Result<Exit, Failure> {
    let library = context.library(work.adjusted)?;
    let mut request = plan_request(context, tickers, work)?;
    let table_error = |e: finpipe::jobs::JobError| table_failure(&e, &library);
    let real = if library.db.may_exist() {
        Some(context.open_table(&library)?)
    } else {
        None
    };
    let store = if library.exists() {
        Some(context.open_store(&library)?)
    } else {
        None
    };
    // The flat-file choice reads which day files were ingested already.
    let empty;
    let read_from = match &real {
        Some(table) => table,
        None => {
            empty = JobTable::open_in_memory().map_err(table_error)?;
            &empty
        }
    };
    request.flat = flat_choice(context, &request, &work.sources, read_from).await?;
    let preview =
        dry_run(real.as_ref(), store.as_ref(), &request, wall_ms()).map_err(|e| match e {
            DryRunError::Plan(PlanError::Jobs(e)) => table_error(e),
            DryRunError::Plan(other) => Failure::usage(other.to_string()),
            DryRunError::Reindex(other) => Failure::failed(other.to_string()),
        })?;
    let existed = real.is_some();
    if let Some(table) = real {
        context.close_table(table, &library)?;
    }
    print_preview(&preview, &library, existed, context.config.rate_limit.value);
    Ok(Exit::Ok)
}

/// What a dry run found, said.
fn print_preview(preview: &DryRun, library: &Library, table_existed: bool, limit: RateLimit) {
    let found = &preview.reconciled;
    for file in &found.quarantined {
        output::warn(&format!(
            "{} cannot be read: a run would move it into {} (kept, not deleted) and fetch its \
             period again. Why: {}",
            file.path.display(),
            file.moved_to.display(),
            file.reason
        ));
    }
    for lost in &found.lost {
        output::warn(&format!(
            "{} {} {}: covered ({}) but its file {} is gone: a run would fetch it again",
            lost.ticker,
            lost.timeframe,
            lost.period,
            lost.days,
            lost.path.display()
        ));
    }
    if !found.rebuilt.is_empty() {
        let files: usize = found.rebuilt.iter().map(|r| r.files).sum();
        output::note(&format!(
            "the job table knows nothing of {} series that have files: a run would rebuild \
             their coverage from {} file footer{} first (counted below: they are not fetched)",
            found.rebuilt.len(),
            files,
            plural(files)
        ));
    }
    outln!(
        "dry run: nothing written; the job table {} {}",
        library.db,
        if table_existed {
            "is unchanged"
        } else {
            "does not exist and is not created"
        }
    );
    print_missing_days(&preview.outcome);
    outln!("would plan {}", plan_sentence(&preview.outcome));
    let queue = &preview.queue;
    outln!(
        "the queue would hold {} job{} ({} queued already):",
        queue.jobs(),
        plural(queue.jobs()),
        preview.queued_before
    );
    let jobs = |n: usize| format!("{n} job{}", plural(n));
    outln!(
        "  {:<14} {:>9}  {} request{} at least (one per job; up to {} if every session is full, \
         {} bars a page)",
        "REST",
        jobs(queue.rest_jobs),
        queue.rest_requests,
        plural(queue.rest_requests as usize),
        queue.rest_pages_if_full,
        PAGE_BARS
    );
    outln!(
        "  {:<14} {:>9}  {} request{} (one per market and day, for every ticker at once)",
        "grouped-daily",
        jobs(queue.grouped_jobs),
        queue.grouped_jobs,
        plural(queue.grouped_jobs)
    );
    outln!(
        "  {:<14} {:>9}  {} day file{} downloaded from S3 (not REST requests: outside the rate \
         limit)",
        "flat files",
        jobs(queue.flat_jobs),
        queue.flat_day_files,
        plural(queue.flat_day_files)
    );
    outln!(
        "  {:<14} {:>9}  no requests (computed from stored 1m bars)",
        "derive",
        jobs(queue.derive_jobs)
    );
    let (least, full) = (queue.requests(), queue.requests_if_full());
    let span = if full > least {
        format!("at least {least} (up to {full})")
    } else {
        format!("{least}")
    };
    match (time_at(least, limit), time_at(full, limit)) {
        (Some(low), Some(high)) => outln!(
            "REST requests: {span}; at --rate-limit {limit} they take at least {}{}",
            human(low),
            if high > low {
                format!(" (up to {})", human(high))
            } else {
                String::new()
            }
        ),
        _ => outln!(
            "REST requests: {span}; --rate-limit is unlimited: the server's answers set the pace"
        ),
    }
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

/// Warns about tickers that are probably mistyped: all lowercase where
/// markets use capitals. They are fetched as given (the API decides).
fn warn_unlikely_tickers(tickers: &[Ticker]) {
    for ticker in tickers {
        if let Some(upper) = ticker.uppercase_hint() {
            output::warn(&format!(
                "{ticker}: tickers are spelled in capitals; did you mean {upper}? \
                 ({ticker} is asked for as given)"
            ));
        }
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
    warn_unlikely_tickers(&tickers);
    let today = market_today(context.clock.now());
    let start = match (work.start, work.days) {
        (Some(start), _) => start,
        (None, Some(days)) => days_before(today, days),
        // clap requires one of them.
        (None, None) => return Err(Failure::usage("pass --start DATE or --days N")),
    };
    let mut end = work.end.unwrap_or(today);
    if end > today {
        output::note(&format!(
            "--end {end} is in the future; using today, {today}"
        ));
        end = today;
    }
    if start > end {
        return Err(Failure::usage(if start > today {
            format!("--start {start} is in the future (today is {today})")
        } else if work.start.is_none() {
            format!("--days reaches back to {start}, after --end {end}: fix one of them")
        } else {
            format!("--start {start} is after --end {end}: swap them or fix one")
        }));
    }
    Ok(PlanRequest {
        tickers,
        timeframes: work.timeframes.0.clone(),
        range: DateRange { start, end },
        basis: Basis::from_adjusted(work.adjusted),
        starts: Default::default(),
        flat: None,
        from_trades: work.sources.from_trades,
    })
}

/// Every ticker of the command line's tickers and universes, in order,
/// without repeats, then the batch slice.
fn read_universes(args: &UniverseArgs, context: &Context) -> Result<Vec<Ticker>, Failure> {
    let tickers = tickers_of(&args.words).map_err(|e| Failure::usage(e.to_string()))?;
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
    print_missing_days(outcome);
    let line = format!("planned {} ({})", plan_sentence(outcome), library.db);
    if JSON_SUMMARY.load(Ordering::Relaxed) {
        // With --json, stdout carries the JSON summary alone.
        errln!("{line}");
    } else {
        outln!("{line}");
    }
}

/// Warns about open days that have no flat file (`--source flatfiles`).
fn print_missing_days(outcome: &PlanOutcome) {
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
}

/// What a plan adds, in words: `1 REST job, 0 flat-file jobs (…), …`.
fn plan_sentence(outcome: &PlanOutcome) -> String {
    format!(
        "{} REST job{}, {} flat-file job{} ({} day file{}){}, {} grouped-daily job{} and {} derive job{}; {} series already up to date; {} failed job{} re-queued",
        outcome.rest_jobs,
        plural(outcome.rest_jobs),
        outcome.flat_jobs,
        plural(outcome.flat_jobs),
        outcome.flat_days,
        plural(outcome.flat_days),
        if outcome.trades_jobs > 0 || outcome.trades_days > 0 {
            format!(
                ", {} trades job{} ({} trades file{})",
                outcome.trades_jobs,
                plural(outcome.trades_jobs),
                outcome.trades_days,
                plural(outcome.trades_days)
            )
        } else {
            String::new()
        },
        outcome.grouped_jobs,
        plural(outcome.grouped_jobs),
        outcome.derive_jobs,
        plural(outcome.derive_jobs),
        outcome.up_to_date,
        outcome.requeued,
        plural(outcome.requeued),
    )
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
    acquire(&library.db, mode, run.wait).map_err(lock_failure)
}

/// The failure of a run lock that could not be taken: exit 3 when another
/// run holds it, 2 when the job table's settings must change, else 1.
pub(super) fn lock_failure(error: LockError) -> Failure {
    let exit = match &error {
        LockError::Held { .. } => Exit::Locked,
        other if other.is_configuration() => Exit::Usage,
        _ => Exit::Failed,
    };
    Failure {
        exit,
        message: error.to_string(),
    }
}

/// The failure of a job table that could not be opened, read or closed:
/// exit 2 when its settings must change (a refused login, a database that
/// does not exist), else 1. Names the table (never a password).
pub(crate) fn table_failure(error: &JobError, library: &Library) -> Failure {
    let message = if error.to_string().contains(&library.db.to_string()) {
        error.to_string()
    } else {
        format!("{error} ({})", library.db)
    };
    Failure::of_table(error.class(), message)
}

/// Runs the queue of `library` and reports.
pub(super) async fn drain(
    context: &Context,
    library: &Library,
    run: &RunArgs,
) -> Result<Exit, Failure> {
    let mut history = RunHistory::new(context, run);
    let drained = run_engine(context, library, run, &mut history).await;
    history.settle(library, drained, |drained| report(drained, library, run))
}

/// What one run of the queue did.
struct Drained {
    summary: RunSummary,
    /// REST requests sent.
    requests: u64,
    /// Answers of 429 (rate limited) received.
    rate_limited: u64,
    elapsed: Duration,
}

impl Drained {
    /// What the run history records of it, for a command exiting with `exit_code`.
    fn run_end(&self, exit_code: i32) -> RunEnd {
        RunEnd {
            jobs_done: self.summary.done,
            jobs_failed: u64::try_from(self.summary.failed.len()).unwrap_or(u64::MAX),
            bars: self.summary.rows_new,
            requests: self.requests,
            exit_code,
            rate_limited: self.rate_limited,
        }
    }
}

/// A command's row in the job table's run history: started when its first
/// engine run begins, finished with what the command returns. Recording
/// never changes the command's outcome: a table that cannot record (a full
/// disk, a lock held too long) is logged and passed over.
struct RunHistory {
    /// `None`: the command records no run (`demo`, `verify --fix`).
    command: Option<&'static str>,
    /// The rate limit as configured, `5/min`.
    rate_limit: String,
    /// The run's id once its start is recorded.
    id: Option<i64>,
}

impl RunHistory {
    fn new(context: &Context, run: &RunArgs) -> Self {
        Self {
            command: run.command,
            rate_limit: context.config.rate_limit.value.to_string(),
            id: None,
        }
    }

    /// Records the start in `table`, the table the engine `owner` is about
    /// to run; once per command (a second engine run belongs to the same).
    fn start(&mut self, table: &mut JobTable, owner: &str) {
        let Some(command) = self.command.filter(|_| self.id.is_none()) else {
            return;
        };
        match table.run_started(command, owner, Some(&self.rate_limit), wall_ms()) {
            Ok(id) => self.id = Some(id),
            Err(e) => not_recorded("start", &e),
        }
    }

    /// Turns the drained queue into the command's outcome with `report`,
    /// records the run's end with that outcome's exit code, and returns it.
    fn settle(
        self,
        library: &Library,
        drained: Result<Drained, Failure>,
        report: impl FnOnce(&Drained) -> Result<Exit, Failure>,
    ) -> Result<Exit, Failure> {
        let (outcome, end) = match drained {
            Ok(drained) => {
                let outcome = report(&drained);
                let exit = match &outcome {
                    Ok(exit) => *exit,
                    Err(failure) => failure.exit,
                };
                let end = drained.run_end(exit as i32);
                (outcome, end)
            }
            Err(failure) => {
                let end = RunEnd {
                    exit_code: failure.exit as i32,
                    ..RunEnd::default()
                };
                (Err(failure), end)
            }
        };
        self.finish(library, &end);
        outcome
    }

    /// Records the run's end (when its start was recorded).
    fn finish(&self, library: &Library, end: &RunEnd) {
        let Some(id) = self.id else {
            return;
        };
        let recorded = JobTable::open_at(&library.db).and_then(|mut table| {
            table.run_finished(id, end, wall_ms())?;
            table.close()
        });
        if let Err(e) = recorded {
            not_recorded("end", &e);
        }
    }
}

/// Logs that the run history could not record a run's `what`: at debug
/// level when the table's storage failed (the run says so itself, if it
/// matters), else as a warning.
fn not_recorded(what: &str, error: &JobError) {
    if error.class() == ErrorClass::Storage {
        tracing::debug!("the run history cannot record this run's {what}: {error}");
    } else {
        tracing::warn!("the run history cannot record this run's {what}: {error}");
    }
}

/// Runs the queue of `library` until it is empty (or stopped).
async fn run_engine(
    context: &Context,
    library: &Library,
    run: &RunArgs,
    history: &mut RunHistory,
) -> Result<Drained, Failure> {
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
    let owner = finpipe::jobs::runners::owner_of_this_process(wall_ms());
    history.start(&mut table, &owner);
    let stop = StopSignal::default();
    let bars = Arc::new(Bars::new(client.clone(), context.quiet));
    let options = EngineOptions {
        concurrency: context.config.concurrency.value,
        max_jobs: run.max_jobs,
        lease: run.lease.unwrap_or(finpipe::jobs::runners::LEASE),
        max_attempts: 3,
        retry_delay: context.config.retry_base.value.saturating_mul(10),
        owner,
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
    Ok(Drained {
        summary,
        requests: client.stats().requests(),
        rate_limited: client.stats().rate_limited(),
        elapsed: started.elapsed(),
    })
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

/// Prints the failed jobs and the run's one summary line (`--json`: one
/// JSON object), and turns the run into an exit code.
fn report(drained: &Drained, library: &Library, run: &RunArgs) -> Result<Exit, Failure> {
    let Drained {
        summary,
        requests,
        elapsed,
        ..
    } = drained;
    for failed in &summary.failed {
        output::error(&format!(
            "job {} failed: {}",
            failed.description, failed.error
        ));
    }
    let line = if run.summary.json {
        serde_json::json!({
            "jobs_done": summary.done,
            "jobs_failed": summary.failed.len(),
            "retried": summary.retried,
            "bars_new": summary.rows_new,
            "requests": requests,
            "duration_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "library": library.data_dir.display().to_string(),
            "interrupted": summary.interrupted,
            "fatal": summary.fatal.as_ref().map(|f| f.message.clone()),
            "failed": summary.failed.iter().map(|f| serde_json::json!({
                "id": f.id, "job": f.description, "error": f.error,
            })).collect::<Vec<_>>(),
        })
        .to_string()
    } else {
        format!(
            "finpipe: jobs done={} failed={} retried={} bars_new={} requests={} duration={:.1}s library={}",
            summary.done,
            summary.failed.len(),
            summary.retried,
            summary.rows_new,
            requests,
            elapsed.as_secs_f64(),
            library.data_dir.display()
        )
    };
    if run.summary_to_stderr {
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
