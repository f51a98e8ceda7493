//! `plan --dry-run` and `backfill --dry-run`: what a plan would add and what
//! the queue would then cost, with nothing written anywhere.
//!
//! The plan runs for real, the same [`plan`] code, against a private
//! in-memory copy of what planning reads from the job table (every open and
//! failed job with its targets, the coverage of the request's tickers), so
//! the preview cannot drift from what planning does; the real table is only
//! read, through the same [`JobTable`] seam, whatever its backend. (A write
//! transaction rolled back at the end would need a rollback in that seam,
//! and would hold the table's write lock for the whole preview, blocking a
//! running `finpipe run`.) The check of coverage against the library's files
//! that precedes planning ([`crate::reindex::reconcile`]) is previewed the
//! same way: its coverage changes land in the copy, and an unreadable file
//! is reported as one that would be moved to the quarantine, not moved.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::estimate::{Estimate, Queued};
use super::{PlanError, PlanOutcome, PlanRequest, plan};
use crate::jobs::{FailReason, Job, JobError, JobKind, JobState, JobTable, NewJob};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;
use crate::reindex::{
    Quarantined, Rebuilt, Reconciled, ReindexError, covered_by_files, lost_periods,
};
use crate::store::{FileSummary, Store, StoreError};

/// What a plan would do, and the queue it would leave.
#[derive(Debug)]
pub struct DryRun {
    /// What the check of coverage against the files would do.
    pub reconciled: Reconciled,
    /// What planning would add.
    pub outcome: PlanOutcome,
    /// Jobs already pending or running in the table.
    pub queued_before: usize,
    /// The cost of every job pending after planning (what `run` drains).
    pub queue: Estimate,
}

/// Why a dry run failed.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Reindex(#[from] ReindexError),
}

impl From<JobError> for DryRunError {
    fn from(error: JobError) -> Self {
        Self::Plan(PlanError::Jobs(error))
    }
}

/// Plans `request` without writing: against a copy of `real` (`None`: no
/// job table yet, an empty one), after a preview of the coverage check
/// against `store` (`None`: no library yet, nothing to check).
pub fn dry_run(
    real: Option<&JobTable>,
    store: Option<&Store>,
    request: &PlanRequest,
    now_ms: i64,
) -> Result<DryRun, DryRunError> {
    let mut copy = JobTable::open_in_memory()?;
    let progress = match real {
        Some(real) => copy_for_planning(real, &mut copy, &request.tickers)?,
        None => HashMap::new(),
    };
    let queued_before = copy.pending_or_running()?;
    let reconciled = match store {
        Some(store) => preview_reconcile(
            &mut copy,
            store,
            &request.tickers,
            &request.timeframes,
            request.basis,
        )?,
        None => Reconciled::default(),
    };
    let outcome = plan(&mut copy, request, now_ms)?;
    let mut queue = Estimate::default();
    for state in [JobState::Pending, JobState::Running] {
        for mut job in copy.list(Some(state), usize::MAX)? {
            job.progress_ts = progress.get(&key_of(&job)).copied();
            queue.add(Queued::from(&job));
        }
    }
    Ok(DryRun {
        reconciled,
        outcome,
        queued_before,
        queue,
    })
}

/// A job's identity in the table (what `insert` deduplicates on).
type JobKey = (JobKind, Ticker, Timeframe, Basis, DateRange);

fn key_of(job: &Job) -> JobKey {
    (
        job.kind,
        job.ticker.clone(),
        job.timeframe,
        job.basis,
        job.range,
    )
}

/// Copies into the empty `copy` what planning `tickers` reads from `real`:
/// failed jobs (failed again in the copy, so that planning re-queues them as
/// it would), pending and running jobs (as pending), each with its targets,
/// and the coverage of `tickers`. Done jobs are left out: planning treats a
/// done job's key as new work either way. Returns the progress of the open
/// jobs, which the copy does not keep.
fn copy_for_planning(
    real: &JobTable,
    copy: &mut JobTable,
    tickers: &[Ticker],
) -> Result<HashMap<JobKey, i64>, JobError> {
    let snapshot = real.read_snapshot()?;
    let failed = real.list(Some(JobState::Failed), usize::MAX)?;
    let mut open = real.list(Some(JobState::Pending), usize::MAX)?;
    open.extend(real.list(Some(JobState::Running), usize::MAX)?);
    let mut targets = HashMap::new();
    for job in failed.iter().chain(&open) {
        if job.kind.has_targets() {
            targets.insert(job.id, real.targets(job.id)?);
        }
    }
    let wanted: HashSet<&Ticker> = tickers.iter().collect();
    let coverage: Vec<_> = real
        .all_coverage()?
        .into_iter()
        .filter(|(ticker, ..)| wanted.contains(ticker))
        .collect();
    snapshot.end()?;

    // The failed jobs first, into the empty copy: each is the only ready job
    // when it is claimed and failed again.
    for job in &failed {
        add(copy, job, &targets)?;
        if let Some(claimed) = copy.claim("dry-run", 0, 1)? {
            let error = job.last_error.as_deref().unwrap_or("failed");
            let reason = job.fail_reason.unwrap_or(FailReason::Other);
            copy.fail(claimed.id, "dry-run", error, reason, None, 0, 0)?;
        }
    }
    let mut progress = HashMap::new();
    for job in &open {
        add(copy, job, &targets)?;
        if let Some(ts) = job.progress_ts {
            progress.insert(key_of(job), ts);
        }
    }
    for (ticker, timeframe, basis, range) in coverage {
        copy.add_coverage_all(&[ticker], &[timeframe], basis, range)?;
    }
    Ok(progress)
}

/// Adds `job` to `copy` as pending, with its targets.
fn add(
    copy: &mut JobTable,
    job: &Job,
    targets: &HashMap<i64, Vec<Ticker>>,
) -> Result<(), JobError> {
    let new = NewJob {
        kind: job.kind,
        ticker: job.ticker.clone(),
        timeframe: job.timeframe,
        derived: job.derived.clone(),
        basis: job.basis,
        range: job.range,
    };
    match targets.get(&job.id) {
        Some(targets) => copy.insert_fanout(&new, targets, 0).map(drop),
        None => copy.insert(&[new], 0).map(drop),
    }
}

/// What [`crate::reindex::reconcile`] would do, done to `table` (the copy)
/// only: the store is read, never changed. A file that cannot be read is
/// reported with the quarantine folder it would be moved to, and counts as
/// gone.
fn preview_reconcile(
    table: &mut JobTable,
    store: &Store,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
) -> Result<Reconciled, ReindexError> {
    let mut out = Reconciled::default();
    for ticker in tickers {
        let mut files: BTreeMap<Timeframe, Vec<FileSummary>> = BTreeMap::new();
        let mut moved: BTreeSet<(Timeframe, String)> = BTreeSet::new();
        for file in store.scan_all(Some(ticker))? {
            match file {
                Ok(file) if file.basis == basis => {
                    files.entry(file.timeframe).or_default().push(file);
                }
                Ok(_) => {}
                Err(error @ StoreError::Corrupt { .. }) => {
                    if let Some((_, tf, period)) = store.locate(error.path()) {
                        moved.insert((tf, period));
                    }
                    out.quarantined.push(Quarantined {
                        path: error.path().to_path_buf(),
                        // The folder: the name there is chosen as it moves.
                        moved_to: store.quarantine_dir(),
                        reason: error.to_string(),
                    });
                }
                Err(_) => out.unreadable += 1,
            }
        }
        for &tf in timeframes {
            out.series += 1;
            let mut covered = table.coverage(ticker, tf, basis)?;
            if covered.is_empty()
                && let Some(series) = files.get(&tf)
            {
                covered = covered_by_files(series);
                for range in &covered {
                    table.add_coverage(ticker, tf, basis, *range)?;
                }
                if !covered.is_empty() {
                    out.rebuilt.push(Rebuilt {
                        ticker: ticker.to_string(),
                        timeframe: tf.to_string(),
                        files: series.len(),
                        rows: series.iter().map(|f| f.rows).sum(),
                        covered: covered.clone(),
                    });
                }
            }
            if covered.is_empty() {
                continue;
            }
            let stored: BTreeSet<String> = store
                .periods(ticker, tf)?
                .into_iter()
                .filter(|period| !moved.contains(&(tf, period.clone())))
                .collect();
            for lost in lost_periods(store, ticker, tf, &covered, &stored) {
                table.remove_coverage(ticker, tf, basis, lost.days)?;
                out.lost.push(lost);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::model::Bar;
    use crate::reindex::reconcile;
    use crate::store::Source;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> DateRange {
        DateRange::new(d(a), d(b)).unwrap()
    }

    fn bar_on(day: NaiveDate) -> Bar {
        let ts = Utc
            .from_utc_datetime(&day.and_hms_opt(15, 0, 0).unwrap())
            .timestamp_millis();
        Bar {
            timestamp: ts,
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.5,
            volume: Some(100.0),
            vwap: Some(10.2),
            transactions: Some(3),
        }
    }

    fn request(tickers: &[&Ticker], timeframes: &str, from: &str, to: &str) -> PlanRequest {
        PlanRequest {
            tickers: tickers.iter().map(|t| (*t).clone()).collect(),
            timeframes: crate::model::parse_timeframes(timeframes).unwrap(),
            range: range(from, to),
            basis: Basis::Unadjusted,
            starts: HashMap::new(),
            flat: None,
            from_trades: false,
        }
    }

    /// Everything a table holds that a plan could change, for comparison.
    fn contents(table: &JobTable) -> (Vec<Job>, Vec<crate::jobs::CoverageRow>) {
        let mut jobs = table.list(None, usize::MAX).unwrap();
        jobs.sort_by_key(|j| j.id);
        (jobs, table.all_coverage().unwrap())
    }

    #[test]
    fn a_dry_run_says_what_planning_adds_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut real = JobTable::open(dir.path().join("finpipe.db")).unwrap();
        let (aapl, msft, spx) = (
            Ticker::new("AAPL").unwrap(),
            Ticker::new("MSFT").unwrap(),
            Ticker::new("I:SPX").unwrap(),
        );
        // AAPL's 1m is known until mid-November; an index's job failed;
        // MSFT's 1m job is queued and half done.
        real.add_coverage(
            &aapl,
            Timeframe::MINUTE,
            Basis::Unadjusted,
            range("2024-11-01", "2024-11-15"),
        )
        .unwrap();
        plan(
            &mut real,
            &request(&[&spx], "1m", "2024-11-01", "2024-11-29"),
            0,
        )
        .unwrap();
        let spx_job = real.claim("w", 0, 60_000).unwrap().unwrap();
        real.fail(spx_job.id, "w", "boom", FailReason::Other, None, 0, 0)
            .unwrap();
        plan(
            &mut real,
            &request(&[&msft], "1m", "2024-11-01", "2024-11-29"),
            0,
        )
        .unwrap();
        let msft_job = real.claim("w", 0, 60_000).unwrap().unwrap();
        assert_eq!(msft_job.ticker, msft);
        real.record_progress(msft_job.id, "w", 1, 1, 1, 0, 60_000)
            .unwrap();
        real.release(msft_job.id, "w", 0).unwrap();
        let before = contents(&real);

        let wanted = request(
            &[&aapl, &msft, &spx],
            "1m,5m,1d",
            "2024-11-01",
            "2024-11-29",
        );
        let preview = dry_run(Some(&real), None, &wanted, 0).unwrap();
        assert_eq!(contents(&real), before, "the real table is unchanged");
        assert_eq!(preview.queued_before, 1, "MSFT's 1m job");

        // The real plan, on the real table, does what the preview said.
        let done = plan(&mut real, &wanted, 0).unwrap();
        assert_eq!(preview.outcome, done);
        assert_eq!(done.requeued, 1, "the index's failed job");
        assert!(done.rest_jobs >= 3 && done.derive_jobs == 1, "{done:?}");
        let queued = real.pending_or_running().unwrap();
        assert_eq!(preview.queue.jobs(), queued);
        assert_eq!(
            preview.queue.requests(),
            (preview.queue.rest_jobs + preview.queue.grouped_jobs) as u64
        );
        assert_eq!(
            preview.queue.derive_jobs, 1,
            "AAPL's stored 1m bars give its 5m"
        );
    }

    #[test]
    fn without_a_table_or_a_library_everything_is_new() {
        let aapl = Ticker::new("AAPL").unwrap();
        let preview = dry_run(
            None,
            None,
            &request(&[&aapl], "1d", "2024-11-01", "2024-11-29"),
            0,
        )
        .unwrap();
        assert_eq!(preview.queued_before, 0);
        assert_eq!(preview.outcome.rest_jobs, 1);
        assert_eq!(preview.queue.requests(), 1);
    }

    #[test]
    fn the_coverage_check_is_previewed_as_reconcile_would_do_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Basis::Unadjusted, "test").unwrap();
        let (aapl, msft) = (Ticker::new("AAPL").unwrap(), Ticker::new("MSFT").unwrap());
        let calendar = aapl.asset_class().calendar();
        for ticker in [&aapl, &msft] {
            let bars: Vec<Bar> = calendar
                .open_days(d("2024-01-01"), d("2024-03-14"))
                .map(bar_on)
                .collect();
            store
                .merge_covered(
                    ticker,
                    Timeframe::MINUTE,
                    bars,
                    Source::Rest,
                    Some(range("2024-01-01", "2024-03-14")),
                )
                .unwrap();
        }
        // AAPL is known to the table but its January file is gone and its
        // February file is cut short; MSFT has files and no coverage.
        let mut real = JobTable::open(dir.path().join("finpipe.db")).unwrap();
        real.add_coverage(
            &aapl,
            Timeframe::MINUTE,
            Basis::Unadjusted,
            range("2024-01-01", "2024-03-14"),
        )
        .unwrap();
        std::fs::remove_file(store.period_path(&aapl, Timeframe::MINUTE, "2024-01")).unwrap();
        let february = store.period_path(&aapl, Timeframe::MINUTE, "2024-02");
        let bytes = std::fs::read(&february).unwrap();
        std::fs::write(&february, &bytes[..bytes.len() / 2]).unwrap();
        let table_before = contents(&real);

        let wanted = request(&[&aapl, &msft], "1m", "2024-01-01", "2024-03-14");
        let preview = dry_run(Some(&real), Some(&store), &wanted, 0).unwrap();
        assert_eq!(contents(&real), table_before);
        assert!(february.exists(), "nothing is moved");
        assert!(store.quarantined().unwrap().is_empty());

        // What the real check does, on the real table and files.
        let found = reconcile(
            &mut real,
            &store,
            &wanted.tickers,
            &wanted.timeframes,
            Basis::Unadjusted,
        )
        .unwrap();
        let mut found = found;
        for file in &mut found.quarantined {
            assert!(file.moved_to.starts_with(store.quarantine_dir()));
            file.moved_to = store.quarantine_dir();
        }
        assert_eq!(preview.reconciled, found);
        assert_eq!(found.quarantined.len(), 1);
        assert_eq!(
            found.lost.len(),
            2,
            "January (gone) and February (quarantined)"
        );
        assert_eq!(found.rebuilt.len(), 1, "MSFT");
        assert_eq!(preview.outcome, plan(&mut real, &wanted, 0).unwrap());
    }
}
