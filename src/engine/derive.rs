//! Derived timeframes: 5m/15m/1h… recomputed from the stored 1m period files,
//! only for windows whose minutes are all fetched, so a page or a crash inside
//! an hour never leaves a partial bar. Also the `derive` job, which does the
//! same for stored 1m bars without any request.
//!
//! Owns the helpers the REST job (`rest.rs`) shares with it: [`rederive`] and
//! [`coverage_earned`]. The dependency runs one way: `rest` uses `derive`.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use super::{Finish, JobFailure, Shared};
use crate::calendar::{complete_days, market_today};
use crate::jobs::{Closing, CoverageGrant, Job};
use crate::model::{Bar, Ticker, Timeframe, period_of};
use crate::ranges::DateRange;
use crate::resample::derive;
use crate::store::{Source, Store, StoreError};

/// Serialises read-1m-then-write-derived per ticker within the process, so a
/// derive job and a 1m job of one ticker never overwrite each other's newer
/// derived file with an older one (striped by ticker hash).
static TICKER_LOCKS: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn ticker_lock(ticker: &Ticker) -> std::sync::MutexGuard<'static, ()> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    ticker.hash(&mut hasher);
    let stripe = (hasher.finish() % TICKER_LOCKS.len() as u64) as usize;
    TICKER_LOCKS[stripe]
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Rewrites the `targets` period files of `periods` from the 1m files.
/// `frontier` is where the fetch in progress stands (the next page starts
/// there): the one window that straddles it is still being filled and is left
/// out. Windows before it are complete; windows after it hold bars fetched by
/// earlier runs and are complete too. Windows longer than an hour may straddle
/// midnight of the day zone, so the next period's minutes are read too, and
/// each bar goes to its own period.
pub(crate) fn rederive(
    store: &Store,
    ticker: &Ticker,
    targets: &[Timeframe],
    periods: &BTreeSet<String>,
    frontier: Option<i64>,
    covered: Option<DateRange>,
) -> Result<u64, StoreError> {
    let _serialised = ticker_lock(ticker);
    let class = ticker.asset_class();
    let mut written = 0;
    for period in periods {
        let mut minutes = store.read_period(ticker, Timeframe::MINUTE, period)?;
        let long_windows = targets
            .iter()
            .any(|t| t.fixed_millis().is_some_and(|w| w > 3_600_000));
        if long_windows && let Some(next) = next_period(store, ticker, period)? {
            minutes.extend(store.read_period(ticker, Timeframe::MINUTE, &next)?);
        }
        for target in targets {
            let width = target.fixed_millis().unwrap_or(i64::MAX);
            let straddles = |b: &Bar| {
                frontier.is_some_and(|f| b.timestamp < f && f < b.timestamp.saturating_add(width))
            };
            let bars: Vec<Bar> = derive(&minutes, *target, i64::MAX)
                .into_iter()
                .filter(|b| period_of(class, *target, b.timestamp) == *period && !straddles(b))
                .collect();
            written += bars.len() as u64;
            store.replace_period_covered(
                ticker,
                *target,
                period,
                &bars,
                Source::Derived,
                covered,
            )?;
        }
    }
    Ok(written)
}

/// The stored 1m period after `period`, if any.
fn next_period(store: &Store, ticker: &Ticker, period: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .periods(ticker, Timeframe::MINUTE)?
        .into_iter()
        .find(|p| p.as_str() > period))
}

/// A `derive` job: the job's timeframe from the stored 1m bars of its range.
pub(super) async fn run(shared: &Arc<Shared>, job: &Job) -> Result<Finish, JobFailure> {
    let class = job.ticker.asset_class();
    let now = shared.options.clock.now();
    let end = job.range.end.min(market_today(now));
    let store = Arc::clone(&shared.store);
    let (ticker, target, range) = (job.ticker.clone(), job.timeframe, job.range);
    let covered = coverage_earned(job, end, now).map(|grant| grant.range);
    let rows = tokio::task::spawn_blocking(move || {
        let periods: BTreeSet<String> = store
            .periods(&ticker, Timeframe::MINUTE)?
            .into_iter()
            .filter(|p| {
                let first = period_of(class, Timeframe::MINUTE, class.midnight_ms(range.start));
                let last = period_of(class, Timeframe::MINUTE, class.midnight_ms(range.end));
                (first.as_str()..=last.as_str()).contains(&p.as_str())
            })
            .collect();
        rederive(&store, &ticker, &[target], &periods, None, covered)
    })
    .await
    .map_err(|e| JobFailure::task_died("writer task", e))??;
    Ok(Finish::Done {
        rows_new: rows,
        closing: Closing {
            coverage: coverage_earned(job, end, shared.options.clock.now()),
            ..Closing::default()
        },
    })
}

/// The coverage a job earned: its days through `end`, for its timeframe and
/// the derived ones, up to the last day whose session had ended at `as_of`.
/// `None` when no day had.
pub(super) fn coverage_earned(
    job: &Job,
    end: NaiveDate,
    as_of: DateTime<Utc>,
) -> Option<CoverageGrant> {
    let asked = DateRange::new(job.range.start, end)?;
    let range = complete_days(asked, job.ticker.asset_class().calendar(), as_of)?;
    let mut timeframes = vec![job.timeframe];
    timeframes.extend(job.derived.iter().copied());
    Some(CoverageGrant {
        tickers: vec![job.ticker.clone()],
        timeframes,
        basis: job.basis,
        range,
    })
}
