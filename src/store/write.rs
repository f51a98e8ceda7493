//! Writing the library: merging bars into period files (read with the
//! version → merge → conditional write, merged again when another writer got
//! there first), prepared writes shown later, and replacing a period whole.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::rows::{
    self, count_new, group_by_period, merge_sorted, normalize, period_bounds, same_bars,
};
use super::{
    FileMeta, Footer, MERGE_ATTEMPTS, PreparedMerge, PreparedWrite, Source, Store, StoreError,
    WriteSummary, codec,
};
use crate::model::{Bar, Ticker, Timeframe, period_of};
use crate::ranges::{DateRange, union};

impl Store {
    /// Merges `bars` (any order, any periods) into the library. Each period
    /// file is read, checked to hold this library's basis, merged (a new bar
    /// replaces a stored bar of the same timestamp; among new bars of one
    /// timestamp the last wins), sorted and replaced atomically. Periods are
    /// written oldest first; on an error, the periods before it are written
    /// and the failing one is untouched. The cost of a write grows with the
    /// file, so merging many days of a period at once is much cheaper than
    /// one call per day. Bars given by value are not copied when they all
    /// belong to one period.
    pub fn merge<'b>(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: impl Into<Cow<'b, [Bar]>>,
        source: Source,
    ) -> Result<WriteSummary, StoreError> {
        self.merge_covered(ticker, tf, bars, source, None)
    }

    /// [`Store::merge`], recording in each written file that the series is
    /// complete over `covered` (added to what the file already records; see
    /// [`KEY_COVERED`]). Give only days fetched to completion, as they will
    /// be when the job table records them.
    pub fn merge_covered<'b>(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: impl Into<Cow<'b, [Bar]>>,
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        let mut summary = WriteSummary::default();
        for (period, group) in group_by_period(ticker.asset_class(), tf, bars.into()) {
            let path = self.period_path(ticker, tf, &period);
            let _guard = self.lock(&path);
            let group = normalize(group);
            summary.add(self.merge_into(&path, ticker, tf, &group, source, covered)?);
        }
        Ok(summary)
    }

    /// Merges sorted unique `group` into the file at `path` and writes it
    /// if it changes, on the condition that nobody replaced the file since
    /// it was read; when somebody did, reads and merges again (up to
    /// [`MERGE_ATTEMPTS`] times). Call under the file's lock.
    fn merge_into(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        group: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        for attempt in 1..=MERGE_ATTEMPTS {
            let (stored, condition) = self.read_versioned(path, ticker, tf)?;
            let (merged, meta) = merge_period(stored.as_ref(), group, source, covered);
            let mut summary = WriteSummary {
                files: 0,
                rows_total: merged.bars.len(),
                rows_new: merged.new,
            };
            let Some((sources, covered)) = meta else {
                return Ok(summary);
            };
            let bytes = self.encode(path, ticker, tf, &sources, &covered, &merged.bars)?;
            match self.blobs.write(path, bytes.into(), condition) {
                Ok(_) => {
                    summary.files = 1;
                    return Ok(summary);
                }
                Err(e) if e.is_conflict() => back_off(attempt),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict {
            path: path.to_path_buf(),
            attempts: MERGE_ATTEMPTS,
        })
    }

    /// Like [`Store::merge`], but each changed period file is written to a
    /// temporary name and only renamed into place by
    /// [`PreparedWrite::commit`]; until then other writers of this store wait
    /// for the file, so the merge stays right. `Ok(None)` when another
    /// prepared write holds one of the files (merge later, once yours are
    /// committed: waiting here could deadlock). Dropping the result discards
    /// the writes.
    pub fn prepare_merge(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        bars: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<Option<PreparedMerge>, StoreError> {
        let mut prepared = PreparedMerge::default();
        for (period, group) in group_by_period(ticker.asset_class(), tf, Cow::Borrowed(bars)) {
            let path = self.period_path(ticker, tf, &period);
            let _guard = self.locks.stripe(&path);
            if self.locks.is_reserved(&path) {
                return Ok(None);
            }
            let group = normalize(group);
            let (stored, condition) = self.read_versioned(&path, ticker, tf)?;
            let (merged, meta) = merge_period(stored.as_ref(), &group, source, covered);
            if let Some((sources, covered)) = meta {
                let bytes = self.encode(&path, ticker, tf, &sources, &covered, &merged.bars)?;
                let file = self.blobs.prepare(&path, &bytes)?;
                let span = match (group.first(), group.last()) {
                    (Some(first), Some(last)) => (first.timestamp, last.timestamp),
                    _ => (i64::MAX, i64::MIN), // no bars: an empty span
                };
                prepared.writes.push(PreparedWrite::reserve(
                    &self.locks,
                    &self.blobs,
                    path,
                    file,
                    condition,
                    span,
                ));
                prepared.summary.files += 1;
            }
            prepared.summary.add(WriteSummary {
                files: 0,
                rows_total: merged.bars.len(),
                rows_new: merged.new,
            });
        }
        Ok(Some(prepared))
    }

    /// Shows a prepared write (see [`PreparedWrite::commit`]); when another
    /// process replaced the file since it was merged from, merges the
    /// write's bars into the file as it is now instead (its bars win on the
    /// timestamps of the span it merged in; the other writer's bars
    /// elsewhere stay), with the same conditional retries as a merge.
    pub fn commit(&self, mut write: PreparedWrite) -> Result<(), StoreError> {
        match write.try_commit() {
            Err(StoreError::Conflict { .. }) => {}
            done => return done,
        }
        let path = write.path().to_path_buf();
        let Some((ticker, tf, _)) = self.locate(&path) else {
            return Err(StoreError::corrupt(
                &path,
                "not a period file of this library",
            ));
        };
        let (footer, ours) = codec::decode_file(write.content()?, &path, |_| Ok(()))?;
        let (lo, hi) = write.span;
        let group: Vec<Bar> = ours
            .into_iter()
            .filter(|b| (lo..=hi).contains(&b.timestamp))
            .collect();
        let sources = footer.sources();
        for attempt in 1..=MERGE_ATTEMPTS {
            back_off(attempt);
            let (stored, condition) = self.read_versioned(&path, &ticker, tf)?;
            let merged = merge_sorted(stored.as_ref().map_or(&[], |(_, bars)| bars), &group);
            let mut all_sources = sources.clone();
            let mut covered = footer.covered.clone();
            if let Some((stored, _)) = &stored {
                all_sources.extend(stored.sources());
                covered = union(covered.into_iter().chain(stored.covered.iter().copied()));
            }
            let bytes = self.encode(&path, &ticker, tf, &all_sources, &covered, &merged.bars)?;
            match self.blobs.write(&path, bytes.into(), condition) {
                Ok(_) => {
                    write.end();
                    return Ok(());
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict {
            path,
            attempts: MERGE_ATTEMPTS,
        })
    }

    /// Replaces one period file's whole content with `bars` (any order; the
    /// last of equal timestamps wins), written by `source` alone. Every bar
    /// must belong to `period`. An empty `bars` removes the file.
    pub fn replace_period(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
        bars: &[Bar],
        source: Source,
    ) -> Result<WriteSummary, StoreError> {
        self.replace_period_covered(ticker, tf, period, bars, source, None)
    }

    /// [`Store::replace_period`], recording `covered` in the file as
    /// [`Store::merge_covered`] does.
    pub fn replace_period_covered(
        &self,
        ticker: &Ticker,
        tf: Timeframe,
        period: &str,
        bars: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        let path = self.period_path(ticker, tf, period);
        let class = ticker.asset_class();
        if let Some(first) = bars.first() {
            let (lo, hi) = period_bounds(class, tf, first.timestamp);
            let bad = if period_of(class, tf, first.timestamp) == period {
                bars.iter().find(|b| !(lo..hi).contains(&b.timestamp))
            } else {
                Some(first)
            };
            if let Some(bad) = bad {
                return Err(StoreError::OutOfPeriod {
                    path,
                    period: period.to_owned(),
                    timestamp: bad.timestamp,
                });
            }
        }
        let _guard = self.lock(&path);
        let bars = normalize(bars.to_vec());
        for attempt in 1..=MERGE_ATTEMPTS {
            match self.replace_once(&path, ticker, tf, &bars, source, covered) {
                Err(StoreError::Conflict { .. }) => back_off(attempt),
                done => return done,
            }
        }
        Err(StoreError::Conflict {
            path,
            attempts: MERGE_ATTEMPTS,
        })
    }

    /// One attempt of [`Store::replace_period_covered`] (`bars` normalized).
    fn replace_once(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        bars: &[Bar],
        source: Source,
        covered: Option<DateRange>,
    ) -> Result<WriteSummary, StoreError> {
        let (stored, condition) = self.read_versioned(path, ticker, tf)?;
        let (old_footer, old_bars) = match stored {
            Some((footer, bars)) => (Some(footer), bars),
            None => (None, Vec::new()),
        };
        let rows_new = count_new(&old_bars, bars);
        if bars.is_empty() {
            if old_footer.is_none() {
                return Ok(WriteSummary::default());
            }
            self.blobs.remove(path)?;
            return Ok(WriteSummary {
                files: 1,
                rows_total: 0,
                rows_new: 0,
            });
        }
        let sources = BTreeSet::from([source.name().to_owned()]);
        let stored_covered = old_footer
            .as_ref()
            .map(|f| f.covered.clone())
            .unwrap_or_default();
        let covered = covered_with(&stored_covered, covered);
        let unchanged = old_footer.is_some_and(|f| f.sources() == sources && f.covered == covered)
            && same_bars(&old_bars, bars);
        if !unchanged {
            let bytes = self.encode(path, ticker, tf, &sources, &covered, bars)?;
            self.blobs.write(path, bytes.into(), condition)?;
        }
        Ok(WriteSummary {
            files: usize::from(!unchanged),
            rows_total: bars.len(),
            rows_new,
        })
    }

    /// `bars` as the bytes of the Parquet file at `path`.
    fn encode(
        &self,
        path: &Path,
        ticker: &Ticker,
        tf: Timeframe,
        sources: &BTreeSet<String>,
        covered: &[DateRange],
        bars: &[Bar],
    ) -> Result<Vec<u8>, StoreError> {
        let meta = FileMeta {
            ticker,
            timeframe: tf,
            basis: self.basis,
            sources,
            version: &self.version,
            covered,
        };
        let props = if bars.len() < codec::SMALL_FILE_ROWS {
            &self.small_props
        } else {
            &self.props
        };
        codec::encode(&self.schema, props, &meta, bars).map_err(|e| StoreError::Parquet {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }
}

/// The sources and covered days a file is written with.
type FileMetaOwned = (BTreeSet<String>, Vec<DateRange>);

/// The covered days a file recorded plus `covered`, merged.
fn covered_with(stored: &[DateRange], covered: Option<DateRange>) -> Vec<DateRange> {
    match covered {
        Some(range) => union(stored.iter().copied().chain([range])),
        None => stored.to_vec(),
    }
}

/// The stored sources plus `source`.
fn sources_with(footer: Option<&Footer>, source: Source) -> BTreeSet<String> {
    let mut sources = footer.map(Footer::sources).unwrap_or_default();
    sources.insert(source.name().to_owned());
    sources
}

/// `group` (sorted unique bars of one period) merged with the file as read
/// (`stored`), and the sources and covered days to record if the file must
/// be written (`None`: the file would not change).
fn merge_period<'a>(
    stored: Option<&(Footer, Vec<Bar>)>,
    group: &'a [Bar],
    source: Source,
    covered: Option<DateRange>,
) -> (rows::Merged<'a>, Option<FileMetaOwned>) {
    let stored_footer = stored.map(|(footer, _)| footer);
    let merged = merge_sorted(stored.map_or(&[], |(_, bars)| bars), group);
    let sources = sources_with(stored_footer, source);
    let stored_covered = stored_footer.map(|f| f.covered.clone()).unwrap_or_default();
    let covered = covered_with(&stored_covered, covered);
    let unchanged = !merged.changed
        && stored_footer.is_some_and(|f| f.sources() == sources && f.covered == covered);
    (merged, (!unchanged).then_some((sources, covered)))
}

/// A short random pause before trying a write again that lost a race, so
/// that writers which collided do not collide again at once.
fn back_off(attempt: usize) {
    if attempt > 1 {
        let most = 5 * attempt as u64;
        std::thread::sleep(Duration::from_millis(fastrand::u64(1..=most)));
    }
}
