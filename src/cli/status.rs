//! `finpipe status` and `finpipe jobs …`: the job table and the library's
//! coverage, read from Parquet footers (no data pages).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use finpipe::engine::{describe, wall_ms};
use finpipe::jobs::JobState;
use finpipe::jobs::runners::{Runner, runners};
use finpipe::model::{Basis, Ticker, Timeframe};
use finpipe::ranges::DateRange;
use serde_json::json;

use super::{Context, Exit, Failure};

const STATUS_EXAMPLES: &str = "\
Examples:
  finpipe status
  finpipe status AAPL --interval 1m
  finpipe status --summary                  # one screen, whatever the library's size
  finpipe status --json | jq '.series[] | select(.rows == 0)'";

#[derive(Debug, Args)]
#[command(after_help = STATUS_EXAMPLES)]
pub(super) struct StatusArgs {
    /// Only this ticker
    ticker: Option<String>,
    /// Only this timeframe
    #[arg(long, alias = "timeframe", value_name = "TF")]
    interval: Option<Timeframe>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// One screen: job counts, per timeframe tickers, files, bars and coverage, totals,
    /// unreadable and quarantined files (no line per series)
    #[arg(long)]
    summary: bool,
    /// The split-adjusted library
    #[arg(long)]
    adjusted: bool,
}

/// One series' coverage on disk.
#[derive(Default)]
struct Series {
    files: usize,
    rows: usize,
    first: Option<i64>,
    last: Option<i64>,
}

/// Coverage of one timeframe: tickers per last covered day, largest holes.
struct TimeframeCoverage {
    timeframe: Timeframe,
    tickers: usize,
    /// Last covered day → tickers covered up to it (oldest first).
    up_to: BTreeMap<NaiveDate, usize>,
    /// The largest gaps between covered ranges, largest first (at most 5).
    holes: Vec<Hole>,
}

struct Hole {
    ticker: String,
    range: DateRange,
}

/// Per timeframe, from the job table's coverage of one basis.
fn coverage_view(
    all: &[(Ticker, Timeframe, Basis, DateRange)],
    basis: Basis,
    ticker: Option<&Ticker>,
    interval: Option<Timeframe>,
) -> Vec<TimeframeCoverage> {
    let mut per_series: BTreeMap<(Timeframe, &Ticker), Vec<DateRange>> = BTreeMap::new();
    for (t, tf, b, range) in all {
        if *b == basis && ticker.is_none_or(|x| x == t) && interval.is_none_or(|i| i == *tf) {
            per_series.entry((*tf, t)).or_default().push(*range);
        }
    }
    let mut out: BTreeMap<Timeframe, TimeframeCoverage> = BTreeMap::new();
    for ((tf, t), mut ranges) in per_series {
        ranges.sort_by_key(|r| r.start);
        let view = out.entry(tf).or_insert_with(|| TimeframeCoverage {
            timeframe: tf,
            tickers: 0,
            up_to: BTreeMap::new(),
            holes: Vec::new(),
        });
        view.tickers += 1;
        if let Some(last) = ranges.iter().map(|r| r.end).max() {
            *view.up_to.entry(last).or_default() += 1;
        }
        for pair in ranges.windows(2) {
            let gap = DateRange::new(
                pair[0].end.succ_opt().unwrap_or(pair[0].end),
                pair[1].start.pred_opt().unwrap_or(pair[1].start),
            );
            if let Some(range) = gap {
                view.holes.push(Hole {
                    ticker: t.to_string(),
                    range,
                });
            }
        }
    }
    out.into_values()
        .map(|mut view| {
            view.holes
                .sort_by_key(|h| (std::cmp::Reverse(h.range.days()), h.range.start));
            view.holes.truncate(5);
            view
        })
        .collect()
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
}

pub(super) async fn run_status(context: &Context, args: StatusArgs) -> Result<Exit, Failure> {
    let ticker = args
        .ticker
        .map(Ticker::new)
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let library = context.existing_library(args.adjusted)?;
    let table = context.open_table(&library)?;
    let store = context.open_store(&library)?;
    let counts = table.counts().map_err(|e| Failure::failed(e.to_string()))?;
    let failed = table
        .list(Some(JobState::Failed), 50)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let runners = runners(
        &table
            .list(Some(JobState::Running), MAX_RUNNING)
            .map_err(|e| Failure::failed(e.to_string()))?,
    );
    let now = wall_ms();
    // One unreadable file must not hide the rest of the library.
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for file in store
        .scan_all(ticker.as_ref())
        .map_err(|e| Failure::failed(e.to_string()))?
    {
        match file {
            Ok(file) => files.push(file),
            Err(e) => unreadable.push((e.path().display().to_string(), e.to_string())),
        }
    }
    let quarantined: Vec<String> = store
        .quarantined()
        .map_err(|e| Failure::failed(e.to_string()))?
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut series: BTreeMap<(String, Timeframe), Series> = BTreeMap::new();
    for file in files
        .iter()
        .filter(|f| args.interval.is_none_or(|tf| f.timeframe == tf))
    {
        let entry = series
            .entry((file.ticker.to_string(), file.timeframe))
            .or_default();
        entry.files += 1;
        entry.rows += file.rows;
        entry.first = entry.first.min(file.first).or(entry.first).or(file.first);
        entry.last = entry.last.max(file.last);
    }
    let coverage = coverage_view(
        &table
            .all_coverage()
            .map_err(|e| Failure::failed(e.to_string()))?,
        library.basis,
        ticker.as_ref(),
        args.interval,
    );
    context.close_table(table, &library)?;
    if args.summary {
        let view = SummaryView {
            library: &library,
            counts,
            coverage: &coverage,
            series: &series,
            unreadable: unreadable.len(),
            quarantined: quarantined.len(),
            quarantine_dir: store.quarantine_dir(),
        };
        return view.print(args.json);
    }
    if args.json {
        let body = json!({
            "library": library.data_dir.display().to_string(),
            "basis": library.basis.name(),
            "coverage": coverage.iter().map(|c| json!({
                "timeframe": c.timeframe.to_string(),
                "tickers": c.tickers,
                "complete_up_to": c.up_to.iter().rev().map(|(date, n)| json!({"date": date, "tickers": n})).collect::<Vec<_>>(),
                "largest_holes": c.holes.iter().map(|h| json!({
                    "ticker": h.ticker, "from": h.range.start, "to": h.range.end, "days": h.range.days(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "jobs": {"pending": counts.pending, "running": counts.running, "done": counts.done, "failed": counts.failed},
            "runners": runners.iter().map(|r| json!({
                "owner": r.owner, "host": r.host, "jobs": r.jobs,
                "last_heartbeat": time(Some(r.last_heartbeat)), "lease_until": time(Some(r.lease_until)),
                "expired": r.expired(now),
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|j| json!({
                "id": j.id, "job": describe(j), "attempts": j.attempts, "error": j.last_error,
            })).collect::<Vec<_>>(),
            "unreadable": unreadable.iter().map(|(path, error)| json!({"path": path, "error": error})).collect::<Vec<_>>(),
            "quarantine": {"dir": store.quarantine_dir().display().to_string(), "files": quarantined},
            "series": series.iter().map(|((t, tf), s)| json!({
                "ticker": t, "timeframe": tf.to_string(), "files": s.files, "rows": s.rows,
                "first": s.first.map(|_| time(s.first)), "last": s.last.map(|_| time(s.last)),
            })).collect::<Vec<_>>(),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&body).map_err(|e| Failure::failed(e.to_string()))?
        );
        return Ok(Exit::Ok);
    }
    outln!(
        "jobs: {} pending, {} running, {} done, {} failed ({})",
        counts.pending,
        counts.running,
        counts.done,
        counts.failed,
        library.db
    );
    for runner in &runners {
        outln!("  {}", runner_line(runner, now));
    }
    for job in &failed {
        outln!(
            "  failed {} after {} attempts: {}",
            describe(job),
            job.attempts,
            job.last_error.as_deref().unwrap_or("?")
        );
    }
    for (path, error) in &unreadable {
        outln!(
            "unreadable: {path}: {error} (the next backfill or update moves it to the \
             quarantine and fetches its period again)"
        );
    }
    if !quarantined.is_empty() {
        outln!(
            "quarantine: {} file{} moved aside in {} (kept, not deleted): {}{}",
            quarantined.len(),
            if quarantined.len() == 1 { "" } else { "s" },
            store.quarantine_dir().display(),
            quarantined
                .iter()
                .take(5)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            if quarantined.len() > 5 { ", …" } else { "" }
        );
    }
    for c in &coverage {
        let mut dates = c.up_to.iter().rev();
        let mut line = format!(
            "{:>4}: {} ticker{}",
            c.timeframe.to_string(),
            c.tickers,
            if c.tickers == 1 { "" } else { "s" }
        );
        if let Some((date, n)) = dates.next() {
            line.push_str(&format!("; {n} complete up to {date}"));
        }
        for (date, n) in dates.take(2) {
            line.push_str(&format!(", {n} up to {date}"));
        }
        if c.up_to.len() > 3 {
            line.push_str(", …");
        }
        outln!("{line}");
        for h in &c.holes {
            outln!(
                "        hole: {} {}..{} ({} day{})",
                h.ticker,
                h.range.start,
                h.range.end,
                h.range.days(),
                if h.range.days() == 1 { "" } else { "s" }
            );
        }
    }
    outln!(
        "library {} ({}): {} series",
        library.data_dir.display(),
        library.basis.name(),
        series.len()
    );
    if !series.is_empty() {
        outln!(
            "  {:<24} {:>4} {:>6} {:>10}  {:<20}  {:<20}",
            "ticker",
            "tf",
            "files",
            "rows",
            "first",
            "last"
        );
    }
    for ((ticker, tf), s) in &series {
        outln!(
            "  {:<24} {:>4} {:>6} {:>10}  {:<20}  {:<20}",
            ticker,
            tf.to_string(),
            s.files,
            s.rows,
            time(s.first),
            time(s.last)
        );
    }
    Ok(Exit::Ok)
}

/// `status --summary`: totals per timeframe and for the library, never a
/// line per series.
struct SummaryView<'a> {
    library: &'a super::backfill::Library,
    counts: finpipe::jobs::StateCounts,
    coverage: &'a [TimeframeCoverage],
    series: &'a BTreeMap<(String, Timeframe), Series>,
    unreadable: usize,
    quarantined: usize,
    quarantine_dir: std::path::PathBuf,
}

/// One timeframe's totals.
#[derive(Default)]
struct TimeframeTotals {
    tickers: usize,
    files: usize,
    bars: usize,
    /// Last covered day → tickers covered up to it.
    up_to: Vec<(NaiveDate, usize)>,
}

impl SummaryView<'_> {
    fn per_timeframe(&self) -> BTreeMap<Timeframe, TimeframeTotals> {
        let mut out: BTreeMap<Timeframe, TimeframeTotals> = BTreeMap::new();
        for ((_, tf), s) in self.series {
            let totals = out.entry(*tf).or_default();
            totals.tickers += 1;
            totals.files += s.files;
            totals.bars += s.rows;
        }
        for c in self.coverage {
            let totals = out.entry(c.timeframe).or_default();
            // Series known to the job table but without files count too.
            totals.tickers = totals.tickers.max(c.tickers);
            totals.up_to = c.up_to.iter().rev().map(|(d, n)| (*d, *n)).collect();
        }
        out
    }

    fn print(&self, json: bool) -> Result<Exit, Failure> {
        let per_tf = self.per_timeframe();
        let tickers: std::collections::BTreeSet<&String> =
            self.series.keys().map(|(t, _)| t).collect();
        let files: usize = self.series.values().map(|s| s.files).sum();
        let bars: usize = self.series.values().map(|s| s.rows).sum();
        let counts = self.counts;
        if json {
            let body = json!({
                "library": self.library.data_dir.display().to_string(),
                "basis": self.library.basis.name(),
                "jobs": {"pending": counts.pending, "running": counts.running, "done": counts.done, "failed": counts.failed},
                "tickers": tickers.len(),
                "series": self.series.len(),
                "files": files,
                "bars": bars,
                "timeframes": per_tf.iter().map(|(tf, t)| json!({
                    "timeframe": tf.to_string(), "tickers": t.tickers, "files": t.files, "bars": t.bars,
                    "complete_up_to": t.up_to.iter().map(|(date, n)| json!({"date": date, "tickers": n})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "unreadable": self.unreadable,
                "quarantined": self.quarantined,
            });
            outln!(
                "{}",
                serde_json::to_string_pretty(&body).map_err(|e| Failure::failed(e.to_string()))?
            );
            return Ok(Exit::Ok);
        }
        outln!(
            "jobs: {} pending, {} running, {} done, {} failed ({})",
            counts.pending,
            counts.running,
            counts.done,
            counts.failed,
            self.library.db
        );
        if counts.failed > 0 {
            outln!("  the failed ones: finpipe jobs list --state failed");
        }
        outln!(
            "library {} ({}): {} ticker{}, {} series, {} file{}, {} bars",
            self.library.data_dir.display(),
            self.library.basis.name(),
            tickers.len(),
            plural(tickers.len()),
            self.series.len(),
            files,
            plural(files),
            bars
        );
        for (tf, t) in &per_tf {
            let mut line = format!(
                "  {:>4}: {} ticker{}, {} file{}, {} bars",
                tf.to_string(),
                t.tickers,
                plural(t.tickers),
                t.files,
                plural(t.files),
                t.bars
            );
            let mut dates = t.up_to.iter();
            if let Some((date, n)) = dates.next() {
                line.push_str(&format!("; {n} complete up to {date}"));
            }
            for (date, n) in dates.by_ref().take(2) {
                line.push_str(&format!(", {n} up to {date}"));
            }
            if dates.next().is_some() {
                line.push_str(", …");
            }
            outln!("{line}");
        }
        outln!(
            "unreadable: {} file{}; quarantine: {} file{} ({})",
            self.unreadable,
            plural(self.unreadable),
            self.quarantined,
            plural(self.quarantined),
            self.quarantine_dir.display()
        );
        Ok(Exit::Ok)
    }
}

/// At most this many running jobs are read to show the runners.
const MAX_RUNNING: usize = 10_000;

/// `runner box-a (box-a:41:1733…): 3 jobs, last heartbeat 12 s ago`.
fn runner_line(runner: &Runner, now_ms: i64) -> String {
    let ago = Duration::from_millis((now_ms - runner.last_heartbeat).max(0).unsigned_abs());
    let mut line = format!(
        "runner {} ({}): {} job{}, last heartbeat {} ago",
        runner.host,
        runner.owner,
        runner.jobs,
        plural(runner.jobs),
        super::progress::human(ago)
    );
    if runner.expired(now_ms) {
        line.push_str(
            "; its leases have ended (the process is likely gone): the next runner to claim \
             takes its jobs over",
        );
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A job state on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    Pending,
    Running,
    Done,
    Failed,
}

impl From<StateArg> for JobState {
    fn from(state: StateArg) -> Self {
        match state {
            StateArg::Pending => Self::Pending,
            StateArg::Running => Self::Running,
            StateArg::Done => Self::Done,
            StateArg::Failed => Self::Failed,
        }
    }
}

const JOBS_EXAMPLES: &str = "\
Examples:
  finpipe jobs list --state failed
  finpipe jobs retry --failed
  finpipe jobs clear --done";

#[derive(Debug, Args)]
#[command(after_help = JOBS_EXAMPLES)]
pub(super) struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
    /// The split-adjusted library's job table
    #[arg(long, global = true)]
    adjusted: bool,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List jobs, newest first
    List {
        /// Only jobs in this state
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put failed jobs back in the queue (run them with `finpipe run`)
    Retry {
        /// Retry the failed jobs (the only kind there is to retry)
        #[arg(long)]
        failed: bool,
    },
    /// Delete finished jobs from the table (coverage is kept)
    Clear {
        /// Delete the done jobs
        #[arg(long, required = true)]
        done: bool,
    },
}

pub(super) async fn run_jobs(context: &Context, args: JobsArgs) -> Result<Exit, Failure> {
    let library = context.existing_library(args.adjusted)?;
    let mut table = context.open_table(&library)?;
    let db_error = |e: finpipe::jobs::JobError| Failure::failed(e.to_string());
    match args.command {
        JobsCommand::List { state, limit } => {
            let jobs = table
                .list(state.map(JobState::from), limit)
                .map_err(db_error)?;
            for job in &jobs {
                outln!(
                    "{:<8} {} attempts={} rows={} requests={}{}",
                    job.state.as_str(),
                    describe(job),
                    job.attempts,
                    job.rows,
                    job.requests,
                    job.last_error
                        .as_deref()
                        .map(|e| format!(" error: {e}"))
                        .unwrap_or_default()
                );
            }
            if jobs.is_empty() {
                outln!("no jobs");
            }
        }
        JobsCommand::Retry { .. } => {
            let n = table
                .requeue_failed(None, finpipe::engine::wall_ms())
                .map_err(db_error)?;
            outln!(
                "{n} failed job{} re-queued; `finpipe run` runs them",
                if n == 1 { "" } else { "s" }
            );
        }
        JobsCommand::Clear { .. } => {
            let n = table.clear_done().map_err(db_error)?;
            outln!("{n} done job{} deleted", if n == 1 { "" } else { "s" });
        }
    }
    context.close_table(table, &library)?;
    Ok(Exit::Ok)
}
