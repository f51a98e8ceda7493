//! The engine: drains the job table with a bounded pool of tokio tasks that
//! share one REST client (and so one rate limiter) and one Parquet store.
//!
//! Each task claims a job atomically (a lease in the table), runs it page by
//! page recording progress after every page, and completes, fails or releases
//! it. A stop request (Ctrl-C) ends claiming at once; jobs in flight give
//! their job back after the page they are on, keeping its progress.
//!
//! Durable before vouched for: the library's writes skip their own fsyncs
//! ([`fsutil::defer_durability`]), and every call that records something in
//! the job table ([`db`]) first waits until every file written so far is on
//! disk (one `syncfs`, shared by the calls waiting at the same time). So a
//! power loss never leaves progress, coverage or a completion that vouches
//! for bars in no file.
//!
//! Failures are classed by what the user must do ([`JobFailure`]): retry
//! later, fix one job's input, or stop everything: a refused key, and a full
//! or read-only disk, stop the run at once and give every job in flight back.

mod derive;
mod failure;
mod flat;
mod flat_day;
mod grouped;
mod report;
mod rest;
mod table;
mod trades;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

pub(crate) use failure::JobFailure;
pub use report::{FailedJob, Fatal, FatalKind, JobOutcome, Reporter, RunSummary, Silent};

use crate::clock::Clock;
use crate::flatfiles::FlatFiles;
use crate::fsutil::{self, Deferral, StorageFault};
use crate::jobs::{Closing, Job, JobError, JobKind, JobState, JobTable};
use crate::polygon::Client;
use crate::store::{Store, StoreError};
use table::TableThread;

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Requests in flight at once. A few more jobs than this run, so that
    /// while some decode and write, `concurrency` requests stay in flight.
    pub concurrency: usize,
    /// Stop after claiming this many jobs.
    pub max_jobs: Option<usize>,
    /// How long a claimed job stays ours without progress.
    pub lease: Duration,
    /// Times a job is tried before it fails for good.
    pub max_attempts: u32,
    /// First delay before a failed job is tried again (doubles per attempt).
    pub retry_delay: Duration,
    /// This runner's name in the table (`host:pid:start`).
    pub owner: String,
    /// Decides "today" (dates, completeness of days); leases use the system clock.
    pub clock: Clock,
    /// The flat-file client for `flatfile` jobs (`None`: no S3 keys; such
    /// jobs fail with a message saying so).
    pub flat: Option<FlatFiles>,
    /// Whether this runner holds the exclusive run lock (no other process
    /// writes the library). Only then are a day's files written while it
    /// downloads: the files such a write holds back are held back only from
    /// this process's writers.
    pub exclusive: bool,
}

/// A stop request shared between the CLI (Ctrl-C) and the engine.
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<(AtomicBool, Notify)>);

impl StopSignal {
    pub fn trigger(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Resolves once the stop was requested.
    pub async fn stopped(&self) {
        let notified = self.0.1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.is_set() {
            notified.await;
        }
    }
}

/// Why the engine could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// (Every job table error says that it is one.)
    #[error(transparent)]
    Jobs(#[from] JobError),
    /// The disk under the job table is full or read-only.
    #[error("{}", fault.advice(path, "--db", &source.to_string()))]
    TableStorage {
        fault: StorageFault,
        path: PathBuf,
        source: JobError,
    },
    /// The library's files could not be made durable (or the library could
    /// not be set up for it).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a worker task died: {0}")]
    Worker(String),
}

impl EngineError {
    /// The storage fault under this error (a full or read-only disk, under
    /// the library or the job table), if it is one.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            Self::Store(error) => error.storage_fault(),
            Self::Jobs(error) => storage_fault_in(error),
            Self::TableStorage { fault, .. } => Some(*fault),
            Self::Worker(_) => None,
        }
    }
}

/// The storage fault at the root of `error`, found by walking its sources:
/// an `io::Error` of a fault's kind, or SQLite's "database or disk is full".
fn storage_fault_in(error: &(dyn std::error::Error + 'static)) -> Option<StorageFault> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(fault) = StorageFault::of(io.kind())
        {
            return Some(fault);
        }
        if let Some(rusqlite::Error::SqliteFailure(code, _)) =
            error.downcast_ref::<rusqlite::Error>()
            && code.code == rusqlite::ErrorCode::DiskFull
        {
            return Some(StorageFault::Full);
        }
        next = error.source();
    }
    None
}

/// How a job's run ended, short of failing.
#[derive(Debug)]
pub(crate) enum Finish {
    Done {
        rows_new: u64,
        /// Recorded with the job's completion, in the same transaction.
        closing: Closing,
    },
    /// The stop signal came: give the job back.
    Stopped,
    /// Another runner owns the job now.
    Lost,
}

/// Everything the worker tasks share.
pub(crate) struct Shared {
    pub(crate) table: TableThread,
    pub(crate) client: Client,
    pub(crate) store: Arc<Store>,
    /// The library's writes, made durable by [`durable`] (`None`: no
    /// `syncfs` here, so every write is durable by itself).
    durability: Option<Arc<Deferral>>,
    /// Whose turn it is to sync: callers wait here without a thread each,
    /// and one whose writes the sync before it covered returns at once.
    sync_turn: tokio::sync::Mutex<()>,
    /// Where the job table is, for messages.
    table_path: PathBuf,
    pub(crate) options: EngineOptions,
    pub(crate) reporter: Arc<dyn Reporter>,
    pub(crate) stop: StopSignal,
    /// One permit per request in flight (`concurrency`), handed to the
    /// client with each request ([`crate::polygon::Place`]).
    pub(crate) in_flight: Arc<Semaphore>,
    claimed: AtomicUsize,
    summary: Mutex<RunSummary>,
    rows_new: AtomicU64,
    /// The trade conditions' rules, read (or fetched) once per run by the
    /// first trades job.
    conditions: tokio::sync::OnceCell<crate::trades::ConditionTable>,
}

/// The job runner.
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    pub fn new(
        table: JobTable,
        client: Client,
        store: Arc<Store>,
        options: EngineOptions,
        reporter: Arc<dyn Reporter>,
        stop: StopSignal,
    ) -> Result<Self, EngineError> {
        let options_concurrency = options.concurrency.max(1);
        let table_path = table.path().to_path_buf();
        let table = TableThread::start(table).map_err(|e| {
            EngineError::Worker(format!("cannot start the job table's thread: {e}"))
        })?;
        // An object store's PUT is durable when it returns: nothing to defer.
        let durability = if store.is_local() {
            fsutil::defer_durability(store.root())
                .map_err(|e| StoreError::io("open", store.root(), e))?
                .map(Arc::new)
        } else {
            None
        };
        Ok(Self {
            shared: Arc::new(Shared {
                table,
                client,
                store,
                durability,
                sync_turn: tokio::sync::Mutex::new(()),
                table_path,
                options,
                reporter,
                stop,
                in_flight: Arc::new(Semaphore::new(options_concurrency)),
                claimed: AtomicUsize::new(0),
                summary: Mutex::new(RunSummary::default()),
                rows_new: AtomicU64::new(0),
                conditions: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// Runs jobs until none is left (or the stop signal, or `max_jobs`).
    pub async fn run(&self) -> Result<RunSummary, EngineError> {
        let shared = &self.shared;
        let counts = db_no_barrier(shared, |t| t.counts()).await?;
        shared
            .reporter
            .run_started((counts.pending + counts.running) as u64);
        let planned = db_no_barrier(shared, |t| {
            let mut requests = 0u64;
            for state in [JobState::Pending, JobState::Running] {
                let jobs = t.list(Some(state), usize::MAX)?;
                requests += jobs
                    .iter()
                    .filter(|job| matches!(job.kind, JobKind::Rest | JobKind::Grouped))
                    .count() as u64;
            }
            Ok(requests)
        })
        .await?;
        shared.reporter.requests_planned(planned);
        let mut workers = JoinSet::new();
        for _ in 0..workers_for(shared.options.concurrency) {
            workers.spawn(worker(Arc::clone(shared)));
        }
        let keeper = tokio::spawn(keep_leases(Arc::clone(shared)));
        // A stop ends every wait for the rate limit, a request slot or a
        // retry at once: only requests already on the wire finish.
        let stopper = {
            let (stop, client) = (shared.stop.clone(), shared.client.clone());
            tokio::spawn(async move {
                stop.stopped().await;
                client.stop_sending();
            })
        };
        let mut first_error = None;
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    shared.stop.trigger();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    shared.stop.trigger();
                    first_error.get_or_insert(EngineError::Worker(e.to_string()));
                }
            }
        }
        keeper.abort();
        stopper.abort();
        if let Some(error) = first_error {
            // A full or read-only disk under the job table ends the run as
            // one under the library does: with its summary and advice.
            if let Some(fault) = error.storage_fault() {
                stop_run(shared, FatalKind::Storage(fault), &error.to_string());
            }
            // A fatal stop already says why the run ended; what failed while
            // the jobs were given back (the job table on the same full disk)
            // is secondary.
            if lock(&shared.summary).fatal.is_none() {
                return Err(error);
            }
            tracing::warn!("while stopping: {error}");
        }
        let mut summary = lock(&shared.summary).clone();
        summary.rows_new = shared.rows_new.load(Ordering::Relaxed);
        summary.interrupted = shared.stop.is_set() && summary.fatal.is_none();
        Ok(summary)
    }
}

/// Jobs run at once for `concurrency` requests in flight: twice as many, so
/// that while half decode and write, the others keep every connection busy.
/// (Waiting for a request slot is safe: [`keep_leases`] renews the leases.)
fn workers_for(concurrency: usize) -> usize {
    let concurrency = concurrency.max(1);
    concurrency + concurrency.div_ceil(2)
}

/// Renews the leases of this runner's jobs every third of a lease, so a job
/// waiting for a request slot or the rate limit is never taken for dead.
/// Runs until aborted; a failed renewal is retried at the next tick (the
/// page-by-page renewals still hold).
async fn keep_leases(shared: Arc<Shared>) {
    let lease_ms = lease_ms(&shared);
    let mut tick = tokio::time::interval((shared.options.lease / 3).max(Duration::from_secs(1)));
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let owner = shared.options.owner.clone();
        if let Err(e) = db_no_barrier(&shared, move |t| {
            t.renew_leases(&owner, wall_ms(), lease_ms)
        })
        .await
        {
            tracing::warn!("could not renew job leases: {e}");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch on the system clock (leases, retries).
pub fn wall_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Runs `f` on the job table's thread (off the async threads), retrying
/// while SQLite is busy (another process holds the write lock for a moment),
/// once every file the library wrote so far is on disk ([`durable`]): what
/// `f` records (progress, coverage, a completion) may vouch for them.
pub(crate) async fn db<T: Send + 'static>(
    shared: &Shared,
    f: impl Fn(&mut JobTable) -> Result<T, JobError> + Send + Sync + 'static,
) -> Result<T, EngineError> {
    durable(shared).await?;
    db_no_barrier(shared, f).await
}

/// Waits until every file the library wrote so far is on disk: one `syncfs`
/// on a blocking thread when something was written since the last one.
/// Callers queue for their turn; the syncs of callers that arrive while one
/// runs are one sync after it (group commit).
pub(crate) async fn durable(shared: &Shared) -> Result<(), EngineError> {
    let Some(deferral) = shared.durability.as_ref().filter(|d| d.is_dirty()) else {
        return Ok(());
    };
    let wanted = deferral.written();
    let _turn = shared.sync_turn.lock().await;
    if deferral.covers(wanted) {
        return Ok(());
    }
    let deferral = Arc::clone(deferral);
    tokio::task::spawn_blocking(move || {
        deferral
            .sync()
            .map_err(|e| StoreError::io("write back the files below", deferral.root(), e))
    })
    .await
    .map_err(|e| EngineError::Worker(format!("the task syncing the library died: {e}")))??;
    Ok(())
}

/// [`db`] without waiting for the library's files: for calls that vouch for
/// no file (claims, counts, leases, giving a job back, a failure).
async fn db_no_barrier<T: Send + 'static>(
    shared: &Shared,
    f: impl Fn(&mut JobTable) -> Result<T, JobError> + Send + Sync + 'static,
) -> Result<T, EngineError> {
    let f = Arc::new(f);
    let mut delay = Duration::from_millis(20);
    loop {
        let call = Arc::clone(&f);
        let result = shared
            .table
            .run(move |table| call(table))
            .await
            .ok_or_else(|| {
                EngineError::Worker("the job table's thread stopped (a call panicked)".into())
            })?;
        match result {
            Err(e) if e.is_busy() && delay < Duration::from_secs(5) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(error) => {
                return Err(match storage_fault_in(&error) {
                    Some(fault) => EngineError::TableStorage {
                        fault,
                        path: shared.table_path.clone(),
                        source: error,
                    },
                    None => EngineError::Jobs(error),
                });
            }
            Ok(value) => return Ok(value),
        }
    }
}

/// One pool task: claim, run, repeat.
async fn worker(shared: Arc<Shared>) -> Result<(), EngineError> {
    let lease_ms = lease_ms(&shared);
    while !shared.stop.is_set() {
        if let Some(max) = shared.options.max_jobs
            && shared.claimed.fetch_add(1, Ordering::SeqCst) >= max
        {
            return Ok(());
        }
        let owner = shared.options.owner.clone();
        let claimed = db_no_barrier(&shared, move |t| t.claim(&owner, wall_ms(), lease_ms)).await?;
        let Some(job) = claimed else {
            if shared.options.max_jobs.is_some() {
                shared.claimed.fetch_sub(1, Ordering::SeqCst);
            }
            // Pending jobs waiting for a retry time keep the pool alive. So
            // do, for a runner sharing the table, jobs other runners run:
            // if one of them died, its jobs come back when its lease ends,
            // and this runner takes them over. (An exclusive runner's
            // running jobs are all its own.)
            let counts = db_no_barrier(&shared, |t| t.counts()).await?;
            let others_may_fail = !shared.options.exclusive && counts.running > 0;
            if counts.pending == 0 && !others_may_fail {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = shared.stop.0.1.notified() => {}
            }
            continue;
        };
        shared.reporter.job_started(&job);
        let outcome = execute(&shared, &job).await?;
        shared.reporter.job_finished(&job, &outcome);
    }
    Ok(())
}

fn lease_ms(shared: &Shared) -> i64 {
    i64::try_from(shared.options.lease.as_millis()).unwrap_or(i64::MAX)
}

/// Blocking threads a job's file work is spread over: one per core.
pub(super) fn lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Splits `items` into [`lanes`] parts and runs `work` on each part on its
/// own blocking thread; returns the parts' results, in order.
pub(super) async fn on_lanes<T, R>(
    items: Vec<T>,
    work: impl Fn(Vec<T>) -> Result<R, StoreError> + Send + Sync + 'static,
) -> Result<Vec<R>, JobFailure>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let chunk = items.len().div_ceil(lanes()).max(1);
    let work = Arc::new(work);
    let mut items = items.into_iter();
    let mut tasks = Vec::new();
    loop {
        let part: Vec<T> = items.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        let work = Arc::clone(&work);
        tasks.push(tokio::task::spawn_blocking(move || work(part)));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .map_err(|e| JobFailure::task_died("writer task", e))??,
        );
    }
    Ok(results)
}

/// Runs one job and settles it in the table.
async fn execute(shared: &Arc<Shared>, job: &Job) -> Result<JobOutcome, EngineError> {
    let result = match job.kind {
        JobKind::Rest => rest::run(shared, job).await,
        JobKind::Derive => derive::run(shared, job).await,
        JobKind::Flat => flat::run(shared, job).await,
        JobKind::Grouped => grouped::run(shared, job).await,
        JobKind::Trades => trades::run(shared, job).await,
    };
    let owner = shared.options.owner.clone();
    let id = job.id;
    let outcome = match result {
        Ok(Finish::Done { rows_new, closing }) => {
            // The bars are in the library whatever the table records next.
            shared.rows_new.fetch_add(rows_new, Ordering::Relaxed);
            // `db` waits for the job's files to be on disk first.
            let completed = db(shared, move |t| {
                t.complete_with(id, &owner, &closing, wall_ms())
            })
            .await;
            match completed {
                Ok(true) => {
                    lock(&shared.summary).done += 1;
                    JobOutcome::Done { rows_new }
                }
                Ok(false) => JobOutcome::Lost,
                // The completion (its coverage, say) could not be recorded:
                // the job is tried again later, as any other failed step.
                Err(EngineError::Jobs(error)) => {
                    let failure = JobFailure::Transient(
                        failure::table_reason(&error),
                        format!("cannot record the finished job: {error}"),
                    );
                    settle_failure(shared, job, failure).await?
                }
                // The disk under the table is full, or the job's files could
                // not be made durable (nothing vouched for): stop the run.
                Err(error @ (EngineError::TableStorage { .. } | EngineError::Store(_))) => {
                    settle_failure(shared, job, JobFailure::from(error)).await?
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Finish::Stopped) => {
            db_no_barrier(shared, move |t| t.release(id, &owner, wall_ms())).await?;
            lock(&shared.summary).released += 1;
            JobOutcome::Released
        }
        Ok(Finish::Lost) => JobOutcome::Lost,
        Err(failure) => settle_failure(shared, job, failure).await?,
    };
    Ok(outcome)
}

async fn settle_failure(
    shared: &Arc<Shared>,
    job: &Job,
    failure: JobFailure,
) -> Result<JobOutcome, EngineError> {
    let owner = shared.options.owner.clone();
    let id = job.id;
    let reason = failure.reason();
    let (error, retry_at) = match failure {
        JobFailure::Fatal(FatalKind::Refused, error) => {
            stop_run(shared, FatalKind::Refused, &error);
            db_no_barrier(shared, move |t| t.release(id, &owner, wall_ms())).await?;
            return Ok(JobOutcome::Failed { error, retry: true });
        }
        JobFailure::Fatal(kind, error) => {
            // Not this job's fault: it is given back with its progress, to
            // run again once the user made room.
            stop_run(shared, kind, &error);
            let released = db_no_barrier(shared, move |t| t.release(id, &owner, wall_ms())).await;
            if let Err(e) = released {
                // The table may sit on the same full disk: the job keeps its
                // lease until it runs out or the next exclusive run
                // reclaims it.
                tracing::warn!("cannot give job #{id} back: {e}");
            }
            lock(&shared.summary).released += 1;
            return Ok(JobOutcome::Released);
        }
        JobFailure::Transient(_, error) if job.attempts < shared.options.max_attempts => {
            let factor = 1u32 << job.attempts.min(10);
            let delay = shared
                .options
                .retry_delay
                .saturating_mul(factor)
                .min(Duration::from_secs(300));
            let retry_at = wall_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            (error, Some(retry_at))
        }
        JobFailure::Transient(_, error) | JobFailure::Permanent(_, error) => (error, None),
    };
    let message = error.clone();
    db_no_barrier(shared, move |t| {
        t.fail(id, &owner, &message, reason, retry_at, 0, wall_ms())
    })
    .await?;
    let retry = retry_at.is_some();
    let mut summary = lock(&shared.summary);
    if retry {
        summary.retried += 1;
    } else {
        summary.failed.push(FailedJob {
            id,
            ticker: job.ticker.clone(),
            description: describe(job),
            error: error.clone(),
        });
    }
    Ok(JobOutcome::Failed { error, retry })
}

/// Records the first failure that stops the run and stops it: no job is
/// claimed any more, and the jobs in flight give theirs back.
fn stop_run(shared: &Shared, kind: FatalKind, message: &str) {
    lock(&shared.summary).fatal.get_or_insert_with(|| Fatal {
        kind,
        message: message.to_owned(),
    });
    shared.stop.trigger();
}

/// `#12 AAPL 1m 2024-01-02..2024-01-31 (+5m,1h)`
pub fn describe(job: &Job) -> String {
    let derived = if job.derived.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = job.derived.iter().map(ToString::to_string).collect();
        format!(" (+{})", names.join(","))
    };
    let kind = match job.kind {
        JobKind::Rest => "",
        JobKind::Derive => " derive",
        JobKind::Flat => " flat files",
        JobKind::Grouped => " grouped daily",
        JobKind::Trades => " from trades",
    };
    format!(
        "#{} {} {}{kind} {}..{}{derived}",
        job.id, job.ticker, job.timeframe, job.range.start, job.range.end
    )
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;

    use super::*;
    use crate::jobs::FailReason;

    fn store_error(kind_or_errno: Result<io::ErrorKind, i32>) -> StoreError {
        let source = match kind_or_errno {
            Ok(kind) => io::Error::from(kind),
            Err(errno) => io::Error::from_raw_os_error(errno),
        };
        StoreError::io("write", Path::new("data/AAPL/1m/2024-11.parquet"), source)
    }

    #[test]
    fn a_full_or_read_only_disk_stops_the_run_other_store_errors_fail_the_job() {
        // ENOSPC, EDQUOT and EROFS as the kernel reports them.
        for (errno, fault) in [
            (28, StorageFault::Full),
            (122, StorageFault::Full),
            (30, StorageFault::ReadOnly),
        ] {
            let failure = JobFailure::from(store_error(Err(errno)));
            let JobFailure::Fatal(FatalKind::Storage(got), message) = failure else {
                panic!("errno {errno}: {failure:?}");
            };
            assert_eq!(got, fault, "errno {errno}");
            assert!(
                message.contains("data/AAPL/1m/2024-11.parquet"),
                "{message}"
            );
            assert!(!FatalKind::Storage(got).is_usage(), "exit 1, not 2");
        }
        let failure = JobFailure::from(store_error(Ok(io::ErrorKind::PermissionDenied)));
        assert!(
            matches!(failure, JobFailure::Permanent(FailReason::Disk, _)),
            "{failure:?}"
        );
        // The same through the engine's own errors (a sync that hit ENOSPC).
        let failure = JobFailure::from(EngineError::Store(store_error(Err(28))));
        assert!(
            matches!(
                failure,
                JobFailure::Fatal(FatalKind::Storage(StorageFault::Full), _)
            ),
            "{failure:?}"
        );
        // A write-back that failed otherwise (EIO) stops the run too: nothing
        // written since can be vouched for.
        let failure = JobFailure::from(EngineError::Store(store_error(Err(5))));
        assert!(
            matches!(failure, JobFailure::Fatal(FatalKind::WriteBack, _)),
            "{failure:?}"
        );
        // A refused key is the configuration's.
        assert!(FatalKind::Refused.is_usage());
    }

    /// An error whose source is another, as the job table wraps SQLite's.
    #[derive(Debug, thiserror::Error)]
    #[error("job table: recording progress: {source}")]
    struct Wrapped {
        source: rusqlite::Error,
    }

    #[test]
    fn sqlite_full_under_the_job_table_is_a_full_disk() {
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), None);
        let wrapped = Wrapped { source: full };
        assert_eq!(storage_fault_in(&wrapped), Some(StorageFault::Full));
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert_eq!(storage_fault_in(&Wrapped { source: busy }), None);
        let erofs = io::Error::from_raw_os_error(30);
        assert_eq!(storage_fault_in(&erofs), Some(StorageFault::ReadOnly));
    }
}
