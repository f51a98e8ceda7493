//! A REST job: one ticker, one base timeframe, the whole missing range,
//! followed page by page through `next_url`. After each page the bars are
//! merged into the store, derived timeframes are recomputed for the periods it
//! touched, and the progress (last stored timestamp) is recorded with a
//! renewed lease, so a restart resumes at the next page.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{Days, NaiveDate};

use super::derive::{coverage_earned, rederive};
use super::{Finish, JobFailure, Shared, db, lease_ms, wall_ms};
use crate::calendar::{last_complete_day, market_today};
use crate::jobs::{Closing, Job};
use crate::model::{Bar, Timeframe, period_of};
use crate::polygon::{ApiError, Place, aggregates_endpoint};
use crate::ranges::DateRange;
use crate::store::Source;

pub(super) async fn run(shared: &Arc<Shared>, job: &Job) -> Result<Finish, JobFailure> {
    let mut stored = 0;
    let finish = run_pages(shared, job, &mut stored).await;
    if !matches!(finish, Ok(Finish::Done { .. })) {
        // The pages stored before the job failed, stopped or was lost are
        // in the library: the run's count of new bars includes them (a
        // finished job's are counted with its completion).
        shared.rows_new.fetch_add(stored, Ordering::Relaxed);
    }
    finish
}

/// A place for one request in flight, or `None` once the run is stopping
/// (a job waiting for one gives its job back at once).
pub(super) async fn take_place(shared: &Shared) -> Option<Option<Place>> {
    if shared.stop.is_set() {
        return None;
    }
    // Never closed: the semaphore lives as long as `shared`.
    let place = tokio::select! {
        biased;
        () = shared.stop.stopped() => return None,
        place = Arc::clone(&shared.in_flight).acquire_owned() => place.ok(),
    };
    (!shared.stop.is_set()).then_some(place)
}

/// The job's pages; `stored` counts the new bars stored so far.
async fn run_pages(
    shared: &Arc<Shared>,
    job: &Job,
    stored: &mut u64,
) -> Result<Finish, JobFailure> {
    let class = job.ticker.asset_class();
    let now = shared.options.clock.now();
    let end = job.range.end.min(market_today(now));
    if end < job.range.start {
        // Planned for days that have not happened yet: nothing to ask.
        return Ok(Finish::Done {
            rows_new: 0,
            closing: Closing::default(),
        });
    }
    let start_ms = class.midnight_ms(job.range.start);
    let end_ms = class.midnight_ms(end + Days::new(1));
    let from = resume_from(job, class);
    let adjusted = job.basis.is_adjusted();
    let endpoint = aggregates_endpoint(
        &job.ticker,
        job.timeframe,
        &from,
        &end.format("%Y-%m-%d").to_string(),
        adjusted,
    );
    let mut pages = shared
        .client
        .agg_pages(endpoint.clone(), vec![("adjusted", adjusted.to_string())]);
    let mut rows_new = 0u64;
    // The last page's progress is recorded with the job's completion.
    let mut closing = Closing::default();
    let width = job.timeframe.fixed_millis().unwrap_or(86_400_000);
    // The last day whose session had ended when the job started: the files
    // record what they complete up to there (see `coverage_earned`).
    let complete = end.min(last_complete_day(class.calendar(), now));
    // No place is taken to learn that there is no next page.
    while pages.has_next() {
        let Some(place) = take_place(shared).await else {
            return Ok(Finish::Stopped);
        };
        // The client gives the place up once the body is in, before decoding
        // it, and sends nothing more once the key was refused or the run is
        // stopping (a request waiting for the limiter gives up at once).
        let page = pages.next_page_in(place).await;
        if page.as_ref().is_err_and(ApiError::is_fatal) {
            shared.stop.trigger();
        }
        if matches!(page, Err(ApiError::Stopped)) {
            return Ok(Finish::Stopped);
        }
        let page = page?;
        let Some(page) = page else {
            break;
        };
        if let Some(answered) = page.adjusted.filter(|a| *a != adjusted) {
            return Err(ApiError::Inconsistent {
                endpoint,
                detail: format!("asked adjusted={adjusted}, the page says adjusted={answered}"),
            }
            .into());
        }
        let mut bars = page.results;
        bars.retain(|b| (start_ms..end_ms).contains(&b.timestamp));
        let Some(last) = bars.last().map(|b| b.timestamp) else {
            continue;
        };
        // The next page starts after this page's last bar: a derived window
        // straddling that point is not complete yet.
        let frontier = pages.has_next().then_some(last + width);
        // Pages come in time order: with more to come, the days before this
        // page's last are complete; with none, the whole range is.
        let through = if pages.has_next() {
            class.date_of(last).pred_opt()
        } else {
            Some(complete)
        };
        let covered = through.and_then(|t| DateRange::new(job.range.start, t.min(complete)));
        let written = store_page(shared, job, bars, frontier, covered).await?;
        rows_new += written.0;
        *stored += written.0;
        shared.reporter.page_stored(job, written.1, written.0);
        let added = i64::try_from(written.0).unwrap_or(i64::MAX);
        if !pages.has_next() {
            closing.progress_ts = Some(last);
            closing.rows = added;
            closing.requests = 1;
            break;
        }
        let (id, owner, lease) = (job.id, shared.options.owner.clone(), lease_ms(shared));
        let still_ours = db(shared, move |t| {
            t.record_progress(id, &owner, last, added, 1, wall_ms(), lease)
        })
        .await?;
        if !still_ours {
            return Ok(Finish::Lost);
        }
    }
    // Complete days as of when the job started: a session that ended while
    // its pages came in may have been fetched partly.
    closing.coverage = coverage_earned(job, end, now);
    Ok(Finish::Done { rows_new, closing })
}

/// Where a job starts: its first date, or just after the last stored bar.
fn resume_from(job: &Job, class: crate::model::AssetClass) -> String {
    match (job.progress_ts, job.timeframe.fixed_millis()) {
        (Some(ts), Some(width)) => (ts + width).to_string(),
        (Some(ts), None) => next_date(class.date_of(ts)).format("%Y-%m-%d").to_string(),
        (None, _) => job.range.start.format("%Y-%m-%d").to_string(),
    }
}

fn next_date(date: NaiveDate) -> NaiveDate {
    date + Days::new(1)
}

/// Merges one page into the store and recomputes the derived timeframes of
/// the periods it touched. Returns (new rows, bars in the page).
async fn store_page(
    shared: &Arc<Shared>,
    job: &Job,
    bars: Vec<Bar>,
    frontier: Option<i64>,
    covered: Option<DateRange>,
) -> Result<(u64, u64), JobFailure> {
    let store = Arc::clone(&shared.store);
    let (ticker, timeframe, derived) = (job.ticker.clone(), job.timeframe, job.derived.clone());
    let count = bars.len() as u64;
    let written = tokio::task::spawn_blocking(move || {
        let rederiving = !derived.is_empty() && timeframe == Timeframe::MINUTE;
        let class = ticker.asset_class();
        let periods: BTreeSet<String> = if rederiving {
            bars.iter()
                .map(|b| period_of(class, timeframe, b.timestamp))
                .collect()
        } else {
            BTreeSet::new()
        };
        let summary = store.merge_covered(&ticker, timeframe, bars, Source::Rest, covered)?;
        if rederiving {
            rederive(&store, &ticker, &derived, &periods, frontier, covered)?;
        }
        Ok::<_, crate::store::StoreError>(summary.rows_new as u64)
    })
    .await
    .map_err(|e| JobFailure::task_died("writer task", e))??;
    Ok((written, count))
}
