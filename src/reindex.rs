//! Coverage and files agree. Coverage (the job table's word that days were
//! fetched to completion) is checked against the library's files, which are
//! the truth, before anything is planned:
//!
//! - a series with files but no coverage (a new or lost job table, a library
//!   copied from elsewhere) gets its coverage rebuilt from the files' footers
//!   (`finpipe.covered`, or a file's first to last day when it predates that
//!   key), so it costs no request;
//! - a covered period whose file is gone is *lost*: its coverage is forgotten,
//!   so the next plan fetches it again.
//!
//! Footers and directory listings only: no data page is read. Never prints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::jobs::{JobError, JobTable};
use crate::model::{Basis, Ticker, Timeframe, period_pieces};
use crate::ranges::{DateRange, union};
use crate::store::{FileSummary, Store, StoreError};

/// Why coverage could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One series whose coverage was rebuilt from its files.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rebuilt {
    pub ticker: String,
    pub timeframe: String,
    pub files: usize,
    pub rows: usize,
    /// The days the files vouch for, now recorded as covered.
    pub covered: Vec<DateRange>,
}

/// A covered period whose file is missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lost {
    pub ticker: String,
    pub timeframe: String,
    pub period: String,
    /// The covered days of the period, whose coverage is forgotten.
    pub days: DateRange,
    pub path: PathBuf,
}

/// What a check of coverage against files found and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reconciled {
    /// Series checked.
    pub series: usize,
    pub rebuilt: Vec<Rebuilt>,
    pub lost: Vec<Lost>,
    /// Files that could not be read, moved to the quarantine folder.
    pub quarantined: Vec<Quarantined>,
    /// Files that could not be read for another reason (permissions, the
    /// other basis), left in place.
    pub unreadable: usize,
}

/// A file moved aside because it cannot be read as a bar file (a truncated
/// or foreign file): its period is fetched again.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quarantined {
    pub path: PathBuf,
    pub moved_to: PathBuf,
    pub reason: String,
}

impl Reconciled {
    /// A file that could not be read: a corrupt one is quarantined, anything
    /// else counted.
    fn unreadable_file(&mut self, store: &Store, error: &StoreError) -> Result<(), StoreError> {
        if !matches!(error, StoreError::Corrupt { .. }) {
            self.unreadable += 1;
            return Ok(());
        }
        let moved_to = store.quarantine(error.path())?;
        self.quarantined.push(Quarantined {
            path: error.path().to_path_buf(),
            moved_to,
            reason: error.to_string(),
        });
        Ok(())
    }
}

/// The days a series' files vouch for: what each recorded as covered when it
/// was written, or for a file from before finpipe recorded that, its first to
/// last stored day (`class` gives the day zone).
pub fn covered_by_files(files: &[FileSummary]) -> Vec<DateRange> {
    union(files.iter().flat_map(|file| {
        if file.covered.is_empty() {
            let class = file.ticker.asset_class();
            let span = match (file.first, file.last) {
                (Some(first), Some(last)) => {
                    DateRange::new(class.date_of(first), class.date_of(last))
                }
                _ => None,
            };
            span.into_iter().collect::<Vec<_>>()
        } else {
            file.covered.clone()
        }
    }))
}

/// The covered periods of `(ticker, tf)` with an open day whose file is not
/// among `stored` (the periods on disk).
pub fn lost_periods(
    store: &Store,
    ticker: &Ticker,
    tf: Timeframe,
    covered: &[DateRange],
    stored: &BTreeSet<String>,
) -> Vec<Lost> {
    let calendar = ticker.asset_class().calendar();
    let mut lost = Vec::new();
    for range in covered {
        for (period, days) in period_pieces(tf, *range) {
            if stored.contains(&period) {
                continue;
            }
            if calendar.open_days(days.start, days.end).next().is_none() {
                continue; // nothing could be in it: no file is right
            }
            lost.push(Lost {
                ticker: ticker.to_string(),
                timeframe: tf.to_string(),
                path: store.period_path(ticker, tf, &period),
                period,
                days,
            });
        }
    }
    lost
}

/// Checks the coverage of every `(ticker, timeframe)` of `tickers` ×
/// `timeframes` in `basis` against the files before planning: moves
/// unreadable files to the quarantine, rebuilds coverage from the files where
/// the table has none, and forgets it where a covered period's file is gone
/// (or was just quarantined).
pub fn reconcile(
    table: &mut JobTable,
    store: &Store,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
    basis: Basis,
) -> Result<Reconciled, ReindexError> {
    let mut out = Reconciled::default();
    for ticker in tickers {
        // The ticker's footers, read once: an unreadable file is moved
        // aside here, before a job would fail on it.
        let files = footers(store, ticker, basis, &mut out)?;
        for &tf in timeframes {
            out.series += 1;
            let mut covered = table.coverage(ticker, tf, basis)?;
            if covered.is_empty()
                && let Some(series) = files.get(&tf)
            {
                covered = rebuild(table, ticker, tf, basis, series, &mut out)?;
            }
            forget_lost(table, store, ticker, tf, basis, &covered, &mut out)?;
        }
    }
    Ok(out)
}

/// The whole library before `update`: every series with files but no
/// coverage gets it rebuilt from its files, and every covered period of
/// `basis` whose file is gone is forgotten.
pub fn reconcile_library(
    table: &mut JobTable,
    store: &Store,
    basis: Basis,
) -> Result<Reconciled, ReindexError> {
    library(table, store, basis, false)
}

/// `finpipe reindex`: as [`reconcile_library`], but every series with files
/// gets the coverage its files vouch for added, whatever the table has.
pub fn reindex(
    table: &mut JobTable,
    store: &Store,
    basis: Basis,
) -> Result<Reconciled, ReindexError> {
    library(table, store, basis, true)
}

fn library(
    table: &mut JobTable,
    store: &Store,
    basis: Basis,
    every_series: bool,
) -> Result<Reconciled, ReindexError> {
    let mut out = Reconciled::default();
    let mut files: BTreeMap<(Ticker, Timeframe), Vec<FileSummary>> = BTreeMap::new();
    for file in store.scan_all(None)? {
        match file {
            Ok(file) if file.basis == basis => files
                .entry((file.ticker.clone(), file.timeframe))
                .or_default()
                .push(file),
            Ok(_) => {}
            Err(error) => out.unreadable_file(store, &error)?,
        }
    }
    let mut coverage: BTreeMap<(Ticker, Timeframe), Vec<DateRange>> = BTreeMap::new();
    for (ticker, tf, b, range) in table.all_coverage()? {
        if b == basis {
            coverage.entry((ticker, tf)).or_default().push(range);
        }
    }
    for ((ticker, tf), series) in &files {
        let known = coverage.contains_key(&(ticker.clone(), *tf));
        if every_series || !known {
            let rebuilt = rebuild(table, ticker, *tf, basis, series, &mut out)?;
            let entry = coverage.entry((ticker.clone(), *tf)).or_default();
            *entry = union(entry.iter().copied().chain(rebuilt));
        }
    }
    out.series = coverage.len();
    for ((ticker, tf), covered) in &coverage {
        forget_lost(table, store, ticker, *tf, basis, covered, &mut out)?;
    }
    Ok(out)
}

/// The ticker's readable files of `basis`, by timeframe.
fn footers(
    store: &Store,
    ticker: &Ticker,
    basis: Basis,
    out: &mut Reconciled,
) -> Result<BTreeMap<Timeframe, Vec<FileSummary>>, StoreError> {
    let mut by_tf: BTreeMap<Timeframe, Vec<FileSummary>> = BTreeMap::new();
    for file in store.scan_all(Some(ticker))? {
        match file {
            Ok(file) if file.basis == basis => by_tf.entry(file.timeframe).or_default().push(file),
            Ok(_) => {}
            Err(error) => out.unreadable_file(store, &error)?,
        }
    }
    Ok(by_tf)
}

/// Records as covered what `files` vouch for; returns it.
fn rebuild(
    table: &mut JobTable,
    ticker: &Ticker,
    tf: Timeframe,
    basis: Basis,
    files: &[FileSummary],
    out: &mut Reconciled,
) -> Result<Vec<DateRange>, JobError> {
    let covered = covered_by_files(files);
    for range in &covered {
        table.add_coverage(ticker, tf, basis, *range)?;
    }
    if !covered.is_empty() {
        out.rebuilt.push(Rebuilt {
            ticker: ticker.to_string(),
            timeframe: tf.to_string(),
            files: files.len(),
            rows: files.iter().map(|f| f.rows).sum(),
            covered: covered.clone(),
        });
    }
    Ok(covered)
}

/// Forgets the coverage of covered periods whose file is gone.
fn forget_lost(
    table: &mut JobTable,
    store: &Store,
    ticker: &Ticker,
    tf: Timeframe,
    basis: Basis,
    covered: &[DateRange],
    out: &mut Reconciled,
) -> Result<(), ReindexError> {
    if covered.is_empty() {
        return Ok(());
    }
    let stored: BTreeSet<String> = store.periods(ticker, tf)?.into_iter().collect();
    for lost in lost_periods(store, ticker, tf, covered, &stored) {
        table.remove_coverage(ticker, tf, basis, lost.days)?;
        out.lost.push(lost);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::model::Bar;
    use crate::store::Source;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> DateRange {
        DateRange::new(d(a), d(b)).unwrap()
    }

    /// A 1m bar at 15:00 UTC (10:00 in New York) of `day`.
    fn bar_on(day: &str) -> Bar {
        let date = d(day);
        let ts = Utc
            .from_utc_datetime(&date.and_hms_opt(15, 0, 0).unwrap())
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

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        table: JobTable,
        aapl: Ticker,
    }

    /// A library holding AAPL 1m bars on the trading days of 2024-01-02 to
    /// 2024-02-14, written as a job covering 2024-01-01..2024-02-14 writes
    /// them, and a job table on a real file.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Basis::Unadjusted, "test").unwrap();
        let table = JobTable::open(dir.path().join("finpipe.db")).unwrap();
        let aapl = Ticker::new("AAPL").unwrap();
        let calendar = aapl.asset_class().calendar();
        let bars: Vec<Bar> = calendar
            .open_days(d("2024-01-01"), d("2024-02-14"))
            .map(|day| bar_on(&day.to_string()))
            .collect();
        let covered = Some(range("2024-01-01", "2024-02-14"));
        store
            .merge_covered(&aapl, Timeframe::MINUTE, bars, Source::Rest, covered)
            .unwrap();
        Fixture {
            _dir: dir,
            store,
            table,
            aapl,
        }
    }

    impl Fixture {
        /// The check before planning AAPL's 1m bars.
        fn reconcile(&mut self) -> Reconciled {
            reconcile(
                &mut self.table,
                &self.store,
                std::slice::from_ref(&self.aapl),
                &[Timeframe::MINUTE],
                Basis::Unadjusted,
            )
            .unwrap()
        }
    }

    #[test]
    fn files_record_what_they_cover_and_coverage_is_rebuilt_from_them() {
        let mut f = fixture();
        let files = f.store.scan(Some(&f.aapl)).unwrap();
        assert_eq!(files.len(), 2, "January and February");
        for file in &files {
            assert_eq!(file.covered, [range("2024-01-01", "2024-02-14")]);
        }
        // A new job table: nothing known, so the files' word is taken.
        let found = f.reconcile();
        assert_eq!(found.rebuilt.len(), 1);
        assert_eq!(found.rebuilt[0].files, 2);
        assert!(found.lost.is_empty());
        assert_eq!(
            f.table
                .coverage(&f.aapl, Timeframe::MINUTE, Basis::Unadjusted)
                .unwrap(),
            [range("2024-01-01", "2024-02-14")],
            "the holiday on the first day is covered too: asked, and there was nothing"
        );
        // Known now: a second check rebuilds nothing.
        let again = f.reconcile();
        assert!(again.rebuilt.is_empty() && again.lost.is_empty());
    }

    #[test]
    fn a_covered_period_whose_file_is_gone_is_lost_and_forgotten() {
        let mut f = fixture();
        f.table
            .add_coverage(
                &f.aapl,
                Timeframe::MINUTE,
                Basis::Unadjusted,
                range("2024-01-01", "2024-02-14"),
            )
            .unwrap();
        let january = f.store.period_path(&f.aapl, Timeframe::MINUTE, "2024-01");
        std::fs::remove_file(&january).unwrap();
        let found = f.reconcile();
        assert_eq!(found.lost.len(), 1);
        assert_eq!(found.lost[0].period, "2024-01");
        assert_eq!(found.lost[0].days, range("2024-01-01", "2024-01-31"));
        assert_eq!(found.lost[0].path, january);
        assert_eq!(
            f.table
                .coverage(&f.aapl, Timeframe::MINUTE, Basis::Unadjusted)
                .unwrap(),
            [range("2024-02-01", "2024-02-14")]
        );
    }

    #[test]
    fn a_covered_period_without_a_trading_day_needs_no_file() {
        let f = fixture();
        // 2024-03-30..31 is a weekend: no bars, no file, nothing lost.
        let covered = [
            range("2024-01-01", "2024-02-14"),
            range("2024-03-30", "2024-03-31"),
        ];
        let stored: BTreeSet<String> = f
            .store
            .periods(&f.aapl, Timeframe::MINUTE)
            .unwrap()
            .into_iter()
            .collect();
        assert!(lost_periods(&f.store, &f.aapl, Timeframe::MINUTE, &covered, &stored).is_empty());
    }

    #[test]
    fn reindex_adds_what_files_vouch_for_and_reports_every_series() {
        let mut f = fixture();
        let day = Timeframe::DAY;
        f.store
            .merge_covered(
                &f.aapl,
                day,
                vec![bar_on("2024-01-02")],
                Source::Rest,
                Some(range("2024-01-01", "2024-01-05")),
            )
            .unwrap();
        // The table knows part of the daily series only.
        f.table
            .add_coverage(
                &f.aapl,
                day,
                Basis::Unadjusted,
                range("2024-01-01", "2024-01-02"),
            )
            .unwrap();
        let found = reindex(&mut f.table, &f.store, Basis::Unadjusted).unwrap();
        assert_eq!(found.rebuilt.len(), 2, "1m and 1d");
        assert_eq!(found.series, 2);
        assert_eq!(
            f.table.coverage(&f.aapl, day, Basis::Unadjusted).unwrap(),
            [range("2024-01-01", "2024-01-05")]
        );
    }

    #[test]
    fn files_from_before_the_covered_key_vouch_for_their_first_to_last_day() {
        let f = fixture();
        let old = Ticker::new("MSFT").unwrap();
        f.store
            .merge(
                &old,
                Timeframe::MINUTE,
                vec![bar_on("2024-01-03"), bar_on("2024-01-09")],
                Source::Rest,
            )
            .unwrap();
        let files = f.store.scan(Some(&old)).unwrap();
        assert!(files[0].covered.is_empty());
        assert_eq!(
            covered_by_files(&files),
            [range("2024-01-03", "2024-01-09")]
        );
    }

    #[test]
    fn an_unreadable_file_is_quarantined_and_its_period_fetched_again() {
        let mut f = fixture();
        f.table
            .add_coverage(
                &f.aapl,
                Timeframe::MINUTE,
                Basis::Unadjusted,
                range("2024-01-01", "2024-02-14"),
            )
            .unwrap();
        let january = f.store.period_path(&f.aapl, Timeframe::MINUTE, "2024-01");
        let bytes = std::fs::read(&january).unwrap();
        std::fs::write(&january, &bytes[..bytes.len() / 2]).unwrap();
        let found = f.reconcile();
        assert_eq!(found.quarantined.len(), 1);
        assert_eq!(found.quarantined[0].path, january);
        assert!(!january.exists());
        let kept = &found.quarantined[0].moved_to;
        assert_eq!(
            std::fs::read(kept).unwrap().len(),
            bytes.len() / 2,
            "never deleted"
        );
        assert!(kept.starts_with(f.store.quarantine_dir()));
        assert_eq!(
            f.store.quarantined().unwrap(),
            [std::path::PathBuf::from(
                "AAPL/1m/2024-01.parquet.quarantined"
            )]
        );
        assert_eq!(found.lost.len(), 1, "its period is fetched again");
        assert_eq!(
            f.table
                .coverage(&f.aapl, Timeframe::MINUTE, Basis::Unadjusted)
                .unwrap(),
            [range("2024-02-01", "2024-02-14")]
        );
    }
}
