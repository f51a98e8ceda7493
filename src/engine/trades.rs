//! A trades job: the `trades_v1` day files of one dataset for a run of days
//! inside one period, each downloaded once, aggregated while it downloads
//! ([`crate::trades`]) and fanned out to the job's target tickers, for every
//! series of the job (its timeframe and its derived list: each one built
//! from the trades, none derived from another).
//!
//! The flat-file job's machinery, reused: a day's bars are staged per series
//! (`<staging>/job-<id>-<targets>/<day>.<series>.day`, renamed into place
//! only once the whole file was read and its gzip trailer checked, so a
//! truncated file stages nothing and writes nothing); progress is the last
//! staged day; once every day is staged each target's bars are merged into
//! its period files (`finpipe.source = trades`), coverage is recorded for
//! every series (after the files are durable: [`super::db`] syncs first),
//! the ETags remembered and the staging removed.
//!
//! Memory: the aggregation holds the open windows of the ticker being read
//! and that ticker's bars (handed to the staging as soon as the file moves
//! past it), plus the download's bounded queue; never the file.
//!
//! The conditions' rules come from `/v3/reference/conditions`, cached in
//! the job table ([`CONDITIONS_CACHE`]) and fetched again once older than
//! [`CONDITIONS_MAX_AGE_MS`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;

use super::flat::{
    Series, day_staged, discard_other_staging, merge_staged, record_flat_coverage, staging_dir,
    targets_grew,
};
use super::flat_day::flat_failure;
use super::{Finish, JobFailure, Shared, db, wall_ms};
use crate::flatfiles::{Dataset, DayFile, FileKind, FlatFileError, FlatFiles};
use crate::jobs::{Closing, FailReason, Job};
use crate::model::Timeframe;
use crate::polygon::endpoint;
use crate::store::staging::StagedWriter;
use crate::store::{Source, StoreError};
use crate::trades::{
    AggregateError, BarSpec, ConditionTable, TickerBars, TradesError, aggregate_gzip, unique_stamps,
};

/// The job table's cache entry holding the stock trade conditions (the
/// `/v3/reference/conditions?asset_class=stocks&data_type=trade` answer,
/// all pages joined).
pub(crate) const CONDITIONS_CACHE: &str = "conditions:stocks:trade";

/// How long a cached conditions answer is used before it is fetched again:
/// seven days. Polygon adds or changes a condition rarely (the list follows
/// the SIPs' specifications); a week bounds how long a change goes unseen
/// at one request a week.
pub(crate) const CONDITIONS_MAX_AGE_MS: i64 = 7 * 24 * 3_600_000;

/// Whether a cached answer fetched at `fetched_at` must be fetched again at
/// `now` (also when the clock went back past it).
pub(crate) fn conditions_stale(fetched_at: i64, now: i64) -> bool {
    now < fetched_at || now - fetched_at >= CONDITIONS_MAX_AGE_MS
}

pub(super) async fn run(shared: &Arc<Shared>, job: &Job) -> Result<Finish, JobFailure> {
    let Some(flat) = shared.options.flat.clone() else {
        return Err(JobFailure::Permanent(
            FailReason::Other,
            "bars from trades read the trades_v1 flat files: set MASSIVE_S3_ACCESS_KEY and \
             MASSIVE_S3_SECRET_KEY (or POLYGON_S3_ACCESS_KEY and POLYGON_S3_SECRET_KEY)"
                .to_owned(),
        ));
    };
    let dataset = Dataset::from_name(job.ticker.as_str()).ok_or_else(|| {
        JobFailure::Permanent(
            FailReason::Other,
            format!("unknown trades dataset {:?}", job.ticker.as_str()),
        )
    })?;
    let series = series_of(job)?;
    let table = conditions(shared).await?;
    let id = job.id;
    let targets = db(shared, move |t| t.targets(id)).await?;
    let staging = staging_dir(&shared.store.staging_dir(), id, &targets);
    discard_other_staging(&shared.store.staging_dir(), id, &staging);
    let files = flat
        .list_range(dataset, FileKind::Trades, job.range.start, job.range.end)
        .await
        .map_err(flat_failure)?;
    let want: Arc<HashSet<String>> =
        Arc::new(targets.iter().map(|t| t.as_str().to_owned()).collect());
    let mut etags: Vec<(NaiveDate, Option<String>)> =
        files.iter().map(|f| (f.date, f.etag.clone())).collect();
    // Per day, one staged file per series, in the order of `series`.
    let mut staged: Vec<Vec<PathBuf>> = Vec::new();
    for (file, etag) in files.iter().zip(etags.iter_mut()) {
        let paths: Vec<PathBuf> = series
            .iter()
            .map(|(tf, _)| staging.join(format!("{}.{tf}.day", file.date)))
            .collect();
        if !paths.iter().all(|p| p.exists()) {
            if shared.stop.is_set() {
                return Ok(Finish::Stopped);
            }
            let specs: Vec<BarSpec> = series.iter().map(|(_, spec)| *spec).collect();
            let (rows, got) =
                stage_day(&flat, file, table.clone(), specs, &want, paths.clone()).await?;
            if got.is_some() {
                etag.1 = got;
            }
            if !day_staged(shared, job, dataset, file.date, rows).await? {
                return Ok(Finish::Lost);
            }
        }
        staged.push(paths);
    }
    let mut rows_new = 0;
    for (index, (tf, _)) in series.iter().enumerate() {
        let days: Vec<PathBuf> = staged.iter().map(|paths| paths[index].clone()).collect();
        let target = Series {
            timeframe: *tf,
            derived: &[],
            source: Source::Trades,
        };
        rows_new += merge_staged(shared, job, &targets, &days, target).await?;
    }
    // Coverage for the job's timeframe and derived list: every series built.
    record_flat_coverage(shared, job, &targets).await?;
    let ingested: Vec<(NaiveDate, String)> = etags
        .into_iter()
        .filter_map(|(day, etag)| etag.map(|e| (day, e)))
        .collect();
    db(shared, move |t| {
        for (day, etag) in &ingested {
            t.record_ingested(dataset.name(), FileKind::Trades.name(), *day, etag)?;
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

/// The job's series (its timeframe, then its derived list) with what each
/// is built as.
fn series_of(job: &Job) -> Result<Vec<(Timeframe, BarSpec)>, JobFailure> {
    std::iter::once(job.timeframe)
        .chain(job.derived.iter().copied())
        .map(|tf| {
            BarSpec::time(tf)
                .map(|spec| (tf, spec))
                .map_err(|e| JobFailure::Permanent(FailReason::Other, e.to_string()))
        })
        .collect()
}

/// Downloads one trades day file and stages the targets' bars of every spec
/// at `paths` (one per spec). Returns the targets' trade rows and the
/// object's ETag. On any error nothing is left at `paths`.
async fn stage_day(
    flat: &FlatFiles,
    file: &DayFile,
    table: ConditionTable,
    specs: Vec<BarSpec>,
    want: &Arc<HashSet<String>>,
    paths: Vec<PathBuf>,
) -> Result<(u64, Option<String>), JobFailure> {
    let mut bytes = flat.stream_object(file);
    let key = file.key.clone();
    let want = Arc::clone(want);
    tokio::task::spawn_blocking(move || {
        let mut writers = paths
            .iter()
            .map(|p| StagedWriter::create(p))
            .collect::<Result<Vec<_>, _>>()?;
        let result = aggregate_gzip(
            &mut bytes,
            &key,
            table,
            &specs,
            |ticker| want.contains(ticker),
            |bars: TickerBars| {
                for (writer, mut series) in writers.iter_mut().zip(bars.series) {
                    if matches!(series.spec, BarSpec::Info(_)) {
                        unique_stamps(&mut series.bars);
                    }
                    writer.push(&bars.ticker, &series.bars)?;
                }
                Ok::<(), StoreError>(())
            },
        );
        match result {
            Ok(stats) => {
                for writer in writers {
                    writer.finish()?;
                }
                Ok((stats.wanted_rows, bytes.etag().map(str::to_owned)))
            }
            Err(error) => {
                for writer in writers {
                    writer.abandon();
                }
                Err(match error {
                    AggregateError::File(e) => trades_failure(e),
                    AggregateError::Sink(e) => JobFailure::from(e),
                })
            }
        }
    })
    .await
    .map_err(|e| JobFailure::task_died("trades reader", e))?
}

/// A trades file that cannot be read, as a job failure naming its key: the
/// download's own errors (a cut-short or damaged object, the network) are
/// classed as a flat file's; a file whose rows cannot be read fails for good.
fn trades_failure(error: TradesError) -> JobFailure {
    match error {
        TradesError::Io { key, source, .. } => flat_failure(FlatFileError::from_read(&key, source)),
        other => JobFailure::Permanent(FailReason::Parse, other.to_string()),
    }
}

/// The conditions' rules for this run: read once, from the job table's
/// cache while it is fresh, else fetched (every page) and cached. A stale
/// cached answer is used when the fetch fails for a reason other than the
/// key.
async fn conditions(shared: &Arc<Shared>) -> Result<ConditionTable, JobFailure> {
    shared
        .conditions
        .get_or_try_init(|| load_conditions(shared))
        .await
        .cloned()
}

async fn load_conditions(shared: &Arc<Shared>) -> Result<ConditionTable, JobFailure> {
    let cached = db(shared, |t| t.cached(CONDITIONS_CACHE)).await?;
    let now = wall_ms();
    let parse = |body: &str| {
        ConditionTable::from_json(body.as_bytes())
            .map_err(|e| JobFailure::Permanent(FailReason::Parse, e.to_string()))
    };
    if let Some((body, fetched_at)) = &cached
        && !conditions_stale(*fetched_at, now)
    {
        return parse(body);
    }
    match fetch_conditions(shared).await {
        Ok(body) => {
            let table = parse(&body)?;
            db(shared, move |t| {
                t.store_cached(CONDITIONS_CACHE, &body, now)
            })
            .await?;
            Ok(table)
        }
        Err(failure) => match (&failure, cached) {
            (JobFailure::Fatal(..), _) | (_, None) => Err(failure),
            (_, Some((body, _))) => {
                tracing::warn!(
                    "could not refresh the trade conditions, using the cached ones: {}",
                    describe(&failure)
                );
                parse(&body)
            }
        },
    }
}

fn describe(failure: &JobFailure) -> &str {
    match failure {
        JobFailure::Transient(_, text)
        | JobFailure::Permanent(_, text)
        | JobFailure::Fatal(_, text) => text,
    }
}

/// Every page of the stock trade conditions, joined into one answer.
async fn fetch_conditions(shared: &Arc<Shared>) -> Result<String, JobFailure> {
    let first = endpoint(
        "/v3/reference/conditions",
        &[
            ("asset_class", "stocks"),
            ("data_type", "trade"),
            ("limit", "1000"),
        ],
    );
    let mut pages = shared.client.pages::<serde_json::Value>(first, Vec::new());
    let mut results = Vec::new();
    while let Some(page) = pages.next_page().await? {
        results.extend(page.results);
    }
    Ok(serde_json::json!({ "results": results }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_fetched_again_after_a_week() {
        let day = 24 * 3_600_000;
        assert!(!conditions_stale(0, 0));
        assert!(!conditions_stale(0, 7 * day - 1));
        assert!(conditions_stale(0, 7 * day));
        // A clock set back past the fetch: fetched again, not trusted.
        assert!(conditions_stale(10, 5));
    }
}
