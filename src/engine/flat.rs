//! A flat-file job: the day files of one dataset for a run of days inside one
//! period, each downloaded once and fanned out to the job's target tickers.
//!
//! 1. Every day file is streamed from S3, decoded while it downloads, and the
//!    targets' rows are staged on disk (`<data>/.finpipe/staging/job-<id>-<targets>/<day>.day`,
//!    renamed into place only once the whole file was read and its gzip
//!    trailer checked, so a truncated file stages nothing). Progress is the
//!    last staged day, so a restart downloads only the days not yet staged.
//! 2. Once every day is staged, each target's bars of all the days are merged
//!    into its period file in one write (and its derived timeframes
//!    recomputed), with memory bounded by one ticker's bars of the period.
//! 3. Coverage is recorded for every target, the files' ETags are remembered
//!    (a republished file is planned again), and the staging is removed.
//!
//! A job of a single day (a nightly update) skips the staging when this
//! runner holds the exclusive lock: its tickers are written while the file
//! downloads and shown once it checked out (`flat_day.rs`).
//!
//! Flat-file downloads do not spend the REST rate limit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use super::flat_day::{self, DayOutcome, flat_failure, merge_ticker};
use super::{Finish, JobFailure, Shared, db, lease_ms, on_lanes, wall_ms};
use crate::calendar::complete_days;
use crate::flatfiles::{Dataset, DayFile, DecodeError, FileKind, FlatFiles};
use crate::jobs::{Closing, FailReason, Job};
use crate::model::{Ticker, Timeframe};
use crate::sources::FlatChoice;
use crate::store::Source;
use crate::store::staging::{StagedDay, StagedWriter};

pub(super) async fn run(shared: &Arc<Shared>, job: &Job) -> Result<Finish, JobFailure> {
    let Some(flat) = shared.options.flat.clone() else {
        return Err(JobFailure::Permanent(
            FailReason::Other,
            "this flat-file job needs S3 keys: set MASSIVE_S3_ACCESS_KEY and \
             MASSIVE_S3_SECRET_KEY (or plan again with --source rest)"
                .to_owned(),
        ));
    };
    let (dataset, kind) = source_of(job)?;
    let id = job.id;
    let targets = db(shared, move |t| t.targets(id)).await?;
    // Staged days hold only the rows of the targets they were staged for:
    // the directory is named after the target set, and one staged for
    // another set (targets added by a later plan) is dropped.
    let staging = staging_dir(&shared.store.staging_dir(), id, &targets);
    discard_other_staging(&shared.store.staging_dir(), id, &staging);
    let files = flat
        .list_range(dataset, kind, job.range.start, job.range.end)
        .await
        .map_err(flat_failure)?;
    let staged_path = |file: &DayFile| staging.join(format!("{}.day", file.date));
    // The ETag of the bytes each day was read from (the GET's), else the listing's.
    let mut etags: Vec<(NaiveDate, Option<String>)> =
        files.iter().map(|f| (f.date, f.etag.clone())).collect();
    let rows_new = match files.as_slice() {
        // One day (not staged by an earlier attempt), no other runner:
        // written while it downloads.
        [file] if shared.options.exclusive && !staged_path(file).exists() => {
            let class = dataset.asset_class();
            match flat_day::ingest(shared, job, &flat, file, class, &targets).await? {
                DayOutcome::Written { rows_new, etag } => {
                    if etag.is_some() {
                        etags[0].1 = etag;
                    }
                    rows_new
                }
                DayOutcome::Lost => return Ok(Finish::Lost),
                DayOutcome::Stopped => return Ok(Finish::Stopped),
            }
        }
        _ => {
            let want: Arc<HashSet<String>> =
                Arc::new(targets.iter().map(|t| t.as_str().to_owned()).collect());
            let mut staged = Vec::new();
            for (file, etag) in files.iter().zip(etags.iter_mut()) {
                let path = staged_path(file);
                if !path.exists() {
                    if shared.stop.is_set() {
                        return Ok(Finish::Stopped);
                    }
                    let (rows, got) = stage_day(&flat, file, &want, &path).await?;
                    if got.is_some() {
                        etag.1 = got;
                    }
                    if !day_staged(shared, job, dataset, file.date, rows).await? {
                        return Ok(Finish::Lost);
                    }
                }
                staged.push(path);
            }
            let series = Series {
                timeframe: job.timeframe,
                derived: &job.derived,
                source: Source::FlatFiles,
            };
            merge_staged(shared, job, &targets, &staged, series).await?
        }
    };
    record_flat_coverage(shared, job, &targets).await?;
    let ingested: Vec<(NaiveDate, String)> = etags
        .into_iter()
        .filter_map(|(day, etag)| etag.map(|e| (day, e)))
        .collect();
    db(shared, move |t| {
        for (day, etag) in &ingested {
            t.record_ingested(dataset.name(), kind.name(), *day, etag)?;
        }
        Ok(())
    })
    .await?;
    // Leftovers would only cost disk: the next attempt re-stages anyway.
    let _ = std::fs::remove_dir_all(&staging);
    if targets_grew(shared, id, targets.len()).await? {
        return Ok(Finish::Stopped);
    }
    Ok(Finish::Done {
        rows_new,
        closing: Closing::default(),
    })
}

/// Whether a plan added targets while the job ran: then it is given back
/// (pending) instead of done, and runs again for all of them.
/// A day file of `job` is staged (`rows` rows): reports it, and records
/// the job's progress up to that day, which renews its lease. `false` when
/// the job was lost to another runner. (Flat-file and trades jobs.)
pub(super) async fn day_staged(
    shared: &Shared,
    job: &Job,
    dataset: Dataset,
    day: NaiveDate,
    rows: u64,
) -> Result<bool, JobFailure> {
    shared.reporter.page_stored(job, rows, 0);
    let (id, owner, lease) = (job.id, shared.options.owner.clone(), lease_ms(shared));
    let day_ts = dataset.asset_class().midnight_ms(day);
    Ok(db(shared, move |t| {
        t.record_progress(id, &owner, day_ts, 0, 0, wall_ms(), lease)
    })
    .await?)
}

pub(super) async fn targets_grew(
    shared: &Arc<Shared>,
    id: i64,
    had: usize,
) -> Result<bool, JobFailure> {
    let now = db(shared, move |t| t.targets(id)).await?;
    Ok(now.len() > had)
}

/// `job-<id>-<fingerprint of the targets>`.
pub(super) fn staging_dir(root: &Path, id: i64, targets: &[Ticker]) -> PathBuf {
    // FNV-1a over the sorted target names: stable across runs and builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for ticker in targets {
        for byte in ticker.as_str().bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    root.join(format!("job-{id}-{hash:016x}"))
}

/// Removes this job's staging directories other than `keep`.
pub(super) fn discard_other_staging(root: &Path, id: i64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let prefix = format!("job-{id}-");
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        if ours && path != keep {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The dataset and file kind a job reads.
fn source_of(job: &Job) -> Result<(Dataset, FileKind), JobFailure> {
    let dataset = Dataset::from_name(job.ticker.as_str()).ok_or_else(|| {
        JobFailure::Permanent(
            FailReason::Other,
            format!("unknown flat-file dataset {:?}", job.ticker.as_str()),
        )
    })?;
    let kind = FlatChoice::kind_for(job.timeframe).ok_or_else(|| {
        JobFailure::Permanent(
            FailReason::Other,
            format!("flat files hold 1m and 1d bars, not {}", job.timeframe),
        )
    })?;
    Ok((dataset, kind))
}

/// Downloads one day file and stages the wanted rows at `path`. Returns the
/// rows kept and the object's ETag. On any error nothing is left at `path`.
async fn stage_day(
    flat: &FlatFiles,
    file: &DayFile,
    want: &Arc<HashSet<String>>,
    path: &Path,
) -> Result<(u64, Option<String>), JobFailure> {
    let mut writer = StagedWriter::create(path)?;
    let wanted = Arc::clone(want);
    let read = flat
        .read_day(
            file,
            move |ticker| wanted.contains(ticker),
            |run| writer.push(&run.ticker, &run.bars),
        )
        .await;
    match read {
        Ok(stats) => {
            writer.finish()?;
            Ok((stats.kept_rows, stats.etag))
        }
        Err(error) => {
            writer.abandon();
            Err(match error {
                DecodeError::File(e) => flat_failure(e),
                DecodeError::Sink(e) => e.into(),
            })
        }
    }
}

/// What staged days hold and where their bars go: the series staged, the
/// timeframes derived from it, and the source recorded in the files.
#[derive(Clone, Copy, Debug)]
pub(super) struct Series<'a> {
    pub(super) timeframe: Timeframe,
    pub(super) derived: &'a [Timeframe],
    pub(super) source: Source,
}

/// Merges every target's staged bars of one series into the library, one
/// write per ticker and period, on as many blocking threads as there are
/// cores. Returns the new rows.
pub(super) async fn merge_staged(
    shared: &Arc<Shared>,
    job: &Job,
    targets: &[Ticker],
    staged: &[PathBuf],
    series: Series<'_>,
) -> Result<u64, JobFailure> {
    if staged.is_empty() || targets.is_empty() {
        return Ok(0);
    }
    let days: Arc<Vec<StagedDay>> = Arc::new(
        staged
            .iter()
            .map(|p| StagedDay::open(p))
            .collect::<Result<_, _>>()?,
    );
    let store = Arc::clone(&shared.store);
    let (tf, derived, source) = (series.timeframe, series.derived.to_vec(), series.source);
    let now = shared.options.clock.now();
    let covered = complete_days(job.range, targets[0].asset_class().calendar(), now);
    let rows_new: u64 = on_lanes(targets.to_vec(), move |part| {
        let mut rows_new = 0u64;
        let mut bars = Vec::new();
        for ticker in &part {
            bars.clear();
            for day in days.iter() {
                day.read_into(ticker.as_str(), &mut bars)?;
            }
            rows_new += merge_ticker(&store, ticker, tf, &derived, &bars, source, covered)?;
        }
        Ok(rows_new)
    })
    .await?
    .into_iter()
    .sum();
    shared.reporter.page_stored(job, 0, rows_new);
    Ok(rows_new)
}

/// Marks the job's days covered for every target, up to the last day whose
/// session has ended.
pub(super) async fn record_flat_coverage(
    shared: &Arc<Shared>,
    job: &Job,
    targets: &[Ticker],
) -> Result<(), JobFailure> {
    let Some(first) = targets.first() else {
        return Ok(());
    };
    let now = shared.options.clock.now();
    let Some(range) = complete_days(job.range, first.asset_class().calendar(), now) else {
        return Ok(());
    };
    let mut series = vec![job.timeframe];
    series.extend(job.derived.iter().copied());
    let (targets, basis) = (targets.to_vec(), job.basis);
    db(shared, move |t| {
        t.add_coverage_all(&targets, &series, basis, range)
    })
    .await?;
    Ok(())
}
