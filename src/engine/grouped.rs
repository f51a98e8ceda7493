//! A grouped-daily job: one request for the daily bars of a whole market on
//! one date, fanned out to the job's target tickers. The endpoint stamps stock
//! bars 16:00 ET; they are stored at 00:00 of the date in the asset class's
//! day zone, exactly as the range endpoint stamps them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{Finish, JobFailure, Shared, db};
use crate::calendar::complete_days;
use crate::jobs::{Closing, FailReason, Job};
use crate::model::{Bar, Ticker, Timeframe};
use crate::plan::GroupedMarket;
use crate::polygon::{ApiError, GroupedBar, endpoint};
use crate::store::{Source, StoreError};

pub(super) async fn run(shared: &Arc<Shared>, job: &Job) -> Result<Finish, JobFailure> {
    let market = GroupedMarket::from_name(job.ticker.as_str()).ok_or_else(|| {
        JobFailure::Permanent(
            FailReason::Other,
            format!("unknown grouped market {:?}", job.ticker.as_str()),
        )
    })?;
    let date = job.range.end;
    // Complete days as of before the request: what it returns is final only
    // for sessions that had ended by then.
    let now = shared.options.clock.now();
    let covered = complete_days(job.range, market.asset_class().calendar(), now);
    let id = job.id;
    let targets = db(shared, move |t| t.targets(id)).await?;
    let adjusted = job.basis.is_adjusted().to_string();
    let mut params = vec![("adjusted", adjusted.as_str())];
    if market == GroupedMarket::UsStocks {
        params.push(("include_otc", "true"));
    }
    let url = endpoint(&market.path(date), &params);
    let Some(place) = super::rest::take_place(shared).await else {
        return Ok(Finish::Stopped);
    };
    let page = shared
        .client
        .get_json_in::<crate::polygon::Envelope<GroupedBar>>(&url, place)
        .await;
    if page.as_ref().is_err_and(ApiError::is_fatal) {
        shared.stop.trigger();
    }
    if matches!(page, Err(ApiError::Stopped)) {
        return Ok(Finish::Stopped);
    }
    let page = page?;
    if let Some(answered) = page.adjusted.filter(|a| *a != job.basis.is_adjusted()) {
        return Err(ApiError::Inconsistent {
            endpoint: url,
            detail: format!("the answer says adjusted={answered}"),
        }
        .into());
    }
    let wanted_count = targets.len();
    let wanted: HashSet<&str> = targets.iter().map(Ticker::as_str).collect();
    let stamp = market.asset_class().midnight_ms(date);
    let mut bars: BTreeMap<String, Bar> = BTreeMap::new();
    for grouped in page.results.unwrap_or_default() {
        if wanted.contains(grouped.ticker.as_str()) {
            let bar = Bar {
                timestamp: stamp,
                ..Bar::from(&grouped.bar)
            };
            bars.insert(grouped.ticker, bar);
        }
    }
    let count = bars.len() as u64;
    let store = Arc::clone(&shared.store);
    let rows_new = tokio::task::spawn_blocking(move || {
        let mut rows_new = 0u64;
        for (name, bar) in bars {
            let Ok(ticker) = Ticker::new(name) else {
                continue;
            };
            rows_new += store
                .merge_covered(&ticker, Timeframe::DAY, &[bar], Source::Rest, covered)?
                .rows_new as u64;
        }
        Ok::<_, StoreError>(rows_new)
    })
    .await
    .map_err(|e| JobFailure::task_died("writer task", e))??;
    shared.reporter.page_stored(job, count, rows_new);
    let finish: Result<Finish, JobFailure> = async {
        if let Some(range) = covered {
            let basis = job.basis;
            db(shared, move |t| {
                t.add_coverage_all(&targets, &[Timeframe::DAY], basis, range)
            })
            .await?;
        }
        if super::flat::targets_grew(shared, id, wanted_count).await? {
            return Ok(Finish::Stopped);
        }
        Ok(Finish::Done {
            rows_new,
            closing: Closing::default(),
        })
    }
    .await;
    if !matches!(finish, Ok(Finish::Done { .. })) {
        // Stored all the same: the run's count of new bars includes them.
        shared
            .rows_new
            .fetch_add(rows_new, std::sync::atomic::Ordering::Relaxed);
    }
    finish
}
