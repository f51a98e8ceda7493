//! A flat-file job of a single day (a nightly update's case), written while
//! the day downloads: each target's bars are merged into its period file on
//! as many writer threads as there are cores, beside the download and the
//! decoder, into temporary files; they are renamed into place only once the
//! whole object arrived and its gzip trailer checked out, so a truncated
//! file changes nothing. Until then the files are reserved in the store
//! (other writers of this process wait for them), so no merge is lost.
//!
//! A job of several days stages them first (`flat.rs`) so that each ticker's
//! period file is written once, not once per day.
//!
//! `flat.rs` is the parent and this module the child: the helpers both use
//! ([`merge_ticker`], [`flat_failure`]) live here, and nothing here imports
//! `flat`.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::derive::rederive;
use super::failure::flat_reason;
use super::{JobFailure, Shared, db, lanes, lease_ms, on_lanes, wall_ms};
use crate::calendar::complete_days;
use crate::flatfiles::{DayFile, DayStats, FlatFileError, FlatFiles, TickerRun};
use crate::fsutil;
use crate::jobs::Job;
use crate::model::{AssetClass, Bar, Ticker, Timeframe, period_of};
use crate::ranges::DateRange;
use crate::sources::Unreachable;
use crate::store::{PreparedWrite, Source, Store, StoreError};

/// How a one-day job ended.
pub(super) enum DayOutcome {
    /// The day is in the library.
    Written {
        rows_new: u64,
        /// The ETag of the bytes read (the GET's).
        etag: Option<String>,
    },
    /// Another runner took the job; nothing was shown.
    Lost,
    /// A stop was asked; nothing was shown.
    Stopped,
}

/// Reads `file` and merges its rows of `targets` into the library.
pub(super) async fn ingest(
    shared: &Arc<Shared>,
    job: &Job,
    flat: &FlatFiles,
    file: &DayFile,
    class: AssetClass,
    targets: &[Ticker],
) -> Result<DayOutcome, JobFailure> {
    // The job's days whose session has ended: what its files record as
    // complete.
    let covered = complete_days(job.range, class.calendar(), shared.options.clock.now());
    let lanes = lanes();
    let (runs_tx, runs_rx) = mpsc::channel::<Vec<TickerRun>>(lanes * 2);
    let runs_rx = Arc::new(Mutex::new(runs_rx));
    let writers: Vec<_> = (0..lanes)
        .map(|_| {
            let (runs, store, tf) = (
                Arc::clone(&runs_rx),
                Arc::clone(&shared.store),
                job.timeframe,
            );
            tokio::task::spawn_blocking(move || prepare_runs(&store, tf, covered, &runs))
        })
        .collect();
    // The writers hold the receiver now: once they all failed it is gone, and
    // `dispatch`'s sends fail instead of waiting for ever.
    drop(runs_rx);
    let want: HashSet<String> = targets.iter().map(|t| t.as_str().to_owned()).collect();
    let read = dispatch(shared, flat, file, want, runs_tx).await;
    // Every writer ends once `dispatch` dropped the sender.
    let mut prepared = Prepared::default();
    let mut failure = None;
    for writer in writers {
        match writer.await {
            Ok(Ok(lane)) => prepared.absorb(lane),
            Ok(Err(error)) => {
                failure.get_or_insert(JobFailure::from(error));
            }
            Err(error) => {
                failure.get_or_insert(JobFailure::task_died("writer task", error));
            }
        }
    }
    // On any early return below, dropping `prepared` removes its temporary
    // files and frees the files it reserved.
    let Some((stats, late)) = read.map_err(flat_failure)? else {
        return Ok(DayOutcome::Stopped);
    };
    if let Some(failure) = failure {
        return Err(failure);
    }
    let (id, owner, lease) = (job.id, shared.options.owner.clone(), lease_ms(shared));
    let day_ts = class.midnight_ms(file.date);
    let still_ours = db(shared, move |t| {
        t.record_progress(id, &owner, day_ts, 0, 0, wall_ms(), lease)
    })
    .await?;
    if !still_ours {
        return Ok(DayOutcome::Lost);
    }
    let period = period_of(class, job.timeframe, day_ts);
    let rows_new = show(shared, job, prepared, late, period, covered).await?;
    shared.reporter.page_stored(job, stats.kept_rows, rows_new);
    Ok(DayOutcome::Written {
        rows_new,
        etag: stats.etag,
    })
}

/// Bars handed to a writer at once: whole tickers, batched so that the
/// threads wake a few hundred times a day rather than once per ticker.
const BATCH_BARS: usize = 8192;

/// Reads the day and hands the writers whole tickers (runs of one ticker
/// that the decoder split are joined again), in batches. A ticker met again
/// further on (a file not sorted by ticker) is kept aside for a plain merge
/// once the prepared files are shown. `None`: a stop was asked.
async fn dispatch(
    shared: &Shared,
    flat: &FlatFiles,
    file: &DayFile,
    want: HashSet<String>,
    writers: mpsc::Sender<Vec<TickerRun>>,
) -> Result<Option<(DayStats, Vec<TickerRun>)>, FlatFileError> {
    let mut reader = flat.open_day(file, move |t| want.contains(t)).await;
    let mut seen = HashSet::new();
    let mut late = Vec::new();
    let mut batch: Vec<TickerRun> = Vec::new();
    let mut batch_bars = 0;
    while let Some(run) = reader.next_run().await? {
        if shared.stop.is_set() {
            return Ok(None);
        }
        if let Some(open) = batch.last_mut().filter(|c| c.ticker == run.ticker) {
            batch_bars += run.bars.len();
            open.bars.extend(run.bars);
            continue;
        }
        // A new ticker: the batch's last one is whole.
        if batch_bars >= BATCH_BARS {
            batch_bars = 0;
            if writers.send(std::mem::take(&mut batch)).await.is_err() {
                // Every writer failed; their errors are what the job reports.
                return Ok(Some((DayStats::default(), late)));
            }
        }
        if seen.insert(run.ticker.clone()) {
            batch_bars += run.bars.len();
            batch.push(run);
        } else {
            late.push(run);
        }
    }
    // An error means every writer failed, as above.
    let _ = writers.send(batch).await;
    // `next_run` returned `None`: the file was read whole and verified.
    Ok(Some((reader.stats().cloned().unwrap_or_default(), late)))
}

/// What the writers prepared.
#[derive(Default)]
struct Prepared {
    writes: Vec<PreparedWrite>,
    tickers: Vec<Ticker>,
    /// Runs whose file another job's prepared write holds.
    busy: Vec<TickerRun>,
    rows_new: u64,
}

impl Prepared {
    fn absorb(&mut self, other: Prepared) {
        self.writes.extend(other.writes);
        self.tickers.extend(other.tickers);
        self.busy.extend(other.busy);
        self.rows_new += other.rows_new;
    }
}

/// One writer thread: prepares each run it receives until the channel ends.
fn prepare_runs(
    store: &Store,
    tf: Timeframe,
    covered: Option<DateRange>,
    runs: &Mutex<mpsc::Receiver<Vec<TickerRun>>>,
) -> Result<Prepared, StoreError> {
    // 11 000 files in a burst, then one wait for all of them.
    let _eager = fsutil::EagerWriteBack::enter();
    let mut out = Prepared::default();
    loop {
        // Only this lock's holder waits on the channel; the others wait for it.
        let batch = runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(batch) = batch else {
            return Ok(out);
        };
        for run in batch {
            match store.prepare_merge(&run.ticker, tf, &run.bars, Source::FlatFiles, covered)? {
                Some(merge) => {
                    out.rows_new += merge.summary.rows_new as u64;
                    out.writes.extend(merge.writes);
                    out.tickers.push(run.ticker);
                }
                None => out.busy.push(run),
            }
        }
    }
}

/// Renames the prepared files into place, then merges the runs kept aside
/// and recomputes derived timeframes. Returns the new rows.
async fn show(
    shared: &Arc<Shared>,
    job: &Job,
    prepared: Prepared,
    late: Vec<TickerRun>,
    period: String,
    covered: Option<DateRange>,
) -> Result<u64, JobFailure> {
    let Prepared {
        writes,
        tickers,
        mut busy,
        mut rows_new,
    } = prepared;
    // Renames first, all of them: a run kept aside may be for a file this
    // job holds, and its merge waits for the file to be free.
    let store = Arc::clone(&shared.store);
    on_lanes(writes, move |part| {
        part.into_iter().try_for_each(|write| store.commit(write))
    })
    .await?;
    // In file order: a busy ticker's first run before its later ones, so that
    // of two rows of one timestamp the later wins, as in a staged job.
    let late = {
        busy.extend(late);
        busy
    };
    let derive = !job.derived.is_empty() && job.timeframe == Timeframe::MINUTE;
    if late.is_empty() && !derive {
        return Ok(rows_new);
    }
    let (store, tf, derived) = (
        Arc::clone(&shared.store),
        job.timeframe,
        job.derived.clone(),
    );
    rows_new += tokio::task::spawn_blocking(move || {
        let mut rows_new = 0;
        for run in &late {
            rows_new += merge_ticker(
                &store,
                &run.ticker,
                tf,
                &derived,
                &run.bars,
                Source::FlatFiles,
                covered,
            )?;
        }
        if derive {
            let periods = [period].into();
            for ticker in &tickers {
                rederive(&store, ticker, &derived, &periods, None, covered)?;
            }
        }
        Ok::<_, StoreError>(rows_new)
    })
    .await
    .map_err(|e| JobFailure::task_died("writer task", e))??;
    Ok(rows_new)
}

/// One ticker's bars of the job into its period file(s) and derived files,
/// which record `covered` as complete.
pub(super) fn merge_ticker(
    store: &Store,
    ticker: &Ticker,
    tf: Timeframe,
    derived: &[Timeframe],
    bars: &[Bar],
    source: Source,
    covered: Option<DateRange>,
) -> Result<u64, StoreError> {
    if bars.is_empty() {
        return Ok(0);
    }
    let summary = store.merge_covered(ticker, tf, bars, source, covered)?;
    if !derived.is_empty() && tf == Timeframe::MINUTE {
        let class = ticker.asset_class();
        let periods: BTreeSet<String> = bars
            .iter()
            .map(|b| period_of(class, tf, b.timestamp))
            .collect();
        rederive(store, ticker, derived, &periods, None, covered)?;
    }
    Ok(summary.rows_new as u64)
}

/// A flat-file error as a job failure: retried when transient. An endpoint
/// that cannot be reached is said as such, naming it (the run falls back to
/// REST on that message, see [`Unreachable::in_text`]).
pub(super) fn flat_failure(error: FlatFileError) -> JobFailure {
    let reason = flat_reason(&error);
    if let Some(unreachable) = Unreachable::of(&error) {
        return JobFailure::Transient(reason, unreachable.to_string());
    }
    if error.is_transient() {
        JobFailure::Transient(reason, error.to_string())
    } else {
        JobFailure::Permanent(reason, error.to_string())
    }
}
