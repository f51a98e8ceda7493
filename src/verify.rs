//! Checking a library: every period file readable with the one schema and
//! its metadata (timeframe, basis), timestamps sorted, unique and inside the
//! file's period, OHLC sane, and no trading day missing inside a series' span
//! (NYSE days for US stocks, options and indices, every day for crypto,
//! Sunday to Friday for forex). Returns problems; never prints.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use crate::jobs::JobTable;
use crate::model::{Bar, Basis, Ticker, Timeframe, Timespan, period_of};
use crate::plan::{PlanError, PlanOutcome, PlanRequest, plan};
use crate::ranges::{DateRange, subtract};
use crate::reindex::lost_periods;
use crate::resample::derivable_from_minutes;
use crate::store::{Store, StoreError};

/// The job table's coverage of each series, as `verify` compares it with
/// the files.
pub type Coverage = BTreeMap<(Ticker, Timeframe), Vec<DateRange>>;

/// One problem found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub ticker: String,
    pub timeframe: String,
    /// `unreadable`, `basis` (a file of the other adjustment basis),
    /// `unsorted`, `duplicate`, `wrong_period`, `ohlc`, `negative_volume`,
    /// `missing_days` (trading days without bars inside a series' span),
    /// `lost` (days the job table calls covered that no file holds: a
    /// period file gone, or trading days without bars inside coverage).
    pub kind: &'static str,
    /// The period file, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    pub detail: String,
    /// For `missing_days` and `lost`: the first and last day to fetch again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

impl Problem {
    /// The days to fetch again, for `missing_days` and `lost` problems.
    pub fn hole(&self) -> Option<DateRange> {
        DateRange::new(self.from?, self.to?)
    }
}

/// What a check covered and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub series: usize,
    pub files: usize,
    pub bars: u64,
    pub problems: Vec<Problem>,
}

/// Whether a timeframe has bars on every open day (intraday and daily).
fn daily_or_shorter(tf: Timeframe) -> bool {
    tf.is_intraday() || (tf.timespan == Timespan::Day && tf.multiplier == 1)
}

/// Checks the series of `tickers` (all when empty) and `timeframe` (all when
/// `None`): their files, and `coverage` (the job table's, of the store's
/// basis) against them.
pub fn verify(
    store: &Store,
    coverage: &Coverage,
    tickers: &[Ticker],
    timeframe: Option<Timeframe>,
) -> Result<Report, StoreError> {
    let mut files = Vec::new();
    if tickers.is_empty() {
        files = store.scan_all(None)?;
    } else {
        for ticker in tickers {
            files.extend(store.scan_all(Some(ticker))?);
        }
    }
    let mut report = Report::default();
    let mut series: Vec<(Ticker, Timeframe, Vec<String>)> = Vec::new();
    for file in files {
        let file = match file {
            Ok(file) => file,
            Err(error) => {
                let place = store.locate(error.path());
                report.problems.push(Problem {
                    ticker: place.as_ref().map(|p| p.0.to_string()).unwrap_or_default(),
                    timeframe: place.as_ref().map(|p| p.1.to_string()).unwrap_or_default(),
                    kind: "unreadable",
                    period: place.map(|p| p.2),
                    detail: error.to_string(),
                    from: None,
                    to: None,
                });
                continue;
            }
        };
        if timeframe.is_some_and(|tf| tf != file.timeframe) {
            continue;
        }
        match series.last_mut() {
            Some((t, tf, periods)) if *t == file.ticker && *tf == file.timeframe => {
                periods.push(file.period);
            }
            _ => series.push((file.ticker, file.timeframe, vec![file.period])),
        }
    }
    // Series the job table covers whose files are all gone.
    for (ticker, tf) in coverage.keys() {
        let wanted = (tickers.is_empty() || tickers.contains(ticker))
            && timeframe.is_none_or(|only| only == *tf);
        if wanted && !series.iter().any(|(t, f, _)| t == ticker && f == tf) {
            series.push((ticker.clone(), *tf, Vec::new()));
        }
    }
    for (ticker, tf, periods) in series {
        report.series += 1;
        let covered = coverage
            .get(&(ticker.clone(), tf))
            .map_or(&[][..], Vec::as_slice);
        let stored: BTreeSet<String> = periods.iter().cloned().collect();
        for lost in lost_periods(store, &ticker, tf, covered, &stored) {
            report.problems.push(Problem::from(&lost));
        }
        check_series(store, &ticker, tf, &periods, covered, &mut report);
    }
    Ok(report)
}

fn check_series(
    store: &Store,
    ticker: &Ticker,
    tf: Timeframe,
    periods: &[String],
    covered: &[DateRange],
    report: &mut Report,
) {
    let class = ticker.asset_class();
    let mut days = BTreeSet::new();
    let problem = |kind, period: &str, detail: String| Problem {
        ticker: ticker.to_string(),
        timeframe: tf.to_string(),
        kind,
        period: Some(period.to_owned()),
        detail,
        from: None,
        to: None,
    };
    for period in periods {
        report.files += 1;
        let bars = match store.read_as_stored(ticker, tf, period) {
            Ok(bars) => bars,
            Err(error) => {
                let kind = if matches!(error, StoreError::BasisMismatch { .. }) {
                    "basis"
                } else {
                    "unreadable"
                };
                report
                    .problems
                    .push(problem(kind, period, error.to_string()));
                continue;
            }
        };
        report.bars += bars.len() as u64;
        for pair in bars.windows(2) {
            let (a, b) = (pair[0].timestamp, pair[1].timestamp);
            if a == b {
                report.problems.push(problem(
                    "duplicate",
                    period,
                    format!("two bars at {}", stamp(a)),
                ));
                break;
            }
            if a > b {
                report.problems.push(problem(
                    "unsorted",
                    period,
                    format!("{} comes after {}", stamp(b), stamp(a)),
                ));
                break;
            }
        }
        if let Some(bar) = bars
            .iter()
            .find(|b| period_of(class, tf, b.timestamp) != *period)
        {
            report.problems.push(problem(
                "wrong_period",
                period,
                format!(
                    "a bar at {} belongs to another period",
                    stamp(bar.timestamp)
                ),
            ));
        }
        if let Some(bar) = bars.iter().find(|b| !sane(b)) {
            report.problems.push(problem(
                "ohlc",
                period,
                format!(
                    "bar at {}: open {} high {} low {} close {}",
                    stamp(bar.timestamp),
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close
                ),
            ));
        }
        if let Some(bar) = bars.iter().find(|b| b.volume.is_some_and(|v| v < 0.0)) {
            report.problems.push(problem(
                "negative_volume",
                period,
                format!("bar at {}: volume {:?}", stamp(bar.timestamp), bar.volume),
            ));
        }
        days.extend(bars.iter().map(|b| class.date_of(b.timestamp)));
    }
    if !daily_or_shorter(tf) {
        return;
    }
    let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
        return;
    };
    let mut hole: Option<(NaiveDate, NaiveDate, usize)> = None;
    let mut holes = Vec::new();
    for day in class.calendar().open_days(first, last) {
        if days.contains(&day) {
            if let Some(h) = hole.take() {
                holes.push(h);
            }
        } else {
            hole = Some(match hole {
                Some((start, _, n)) => (start, day, n + 1),
                None => (day, day, 1),
            });
        }
    }
    let calendar = class.calendar();
    for (from, to, _) in holes {
        let Some(hole) = DateRange::new(from, to) else {
            continue;
        };
        // Inside coverage a hole is lost bars; outside, days never fetched.
        let outside = subtract(hole, covered);
        let inside = subtract(hole, &outside);
        for (kind, parts) in [("lost", inside), ("missing_days", outside)] {
            for part in parts {
                let open: Vec<NaiveDate> = calendar.open_days(part.start, part.end).collect();
                let (Some(&first), Some(&last)) = (open.first(), open.last()) else {
                    continue;
                };
                let days = if first == last {
                    format!("no bars on {first}, a trading day")
                } else {
                    format!(
                        "no bars on {} trading days from {first} to {last}",
                        open.len()
                    )
                };
                report.problems.push(Problem {
                    ticker: ticker.to_string(),
                    timeframe: tf.to_string(),
                    kind,
                    period: None,
                    detail: if kind == "lost" {
                        format!("{days}, though the job table calls them covered")
                    } else {
                        days
                    },
                    from: Some(first),
                    to: Some(last),
                });
            }
        }
    }
}

impl From<&crate::reindex::Lost> for Problem {
    /// A covered period whose file is gone (or was quarantined), as a
    /// problem `--fix` plans again.
    fn from(lost: &crate::reindex::Lost) -> Self {
        Problem {
            ticker: lost.ticker.clone(),
            timeframe: lost.timeframe.clone(),
            kind: "lost",
            period: Some(lost.period.clone()),
            detail: format!(
                "covered {} but the file {} is missing",
                lost.days,
                lost.path.display()
            ),
            from: Some(lost.days.start),
            to: Some(lost.days.end),
        }
    }
}

/// What `verify --fix` planned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fixes {
    /// (ticker, range) pairs planned again, each with every timeframe
    /// missing it.
    pub ranges: usize,
    /// The plans' outcome, summed.
    pub outcome: PlanOutcome,
}

/// Plans the fetch of every `missing_days` and `lost` range of `report`:
/// forgets their coverage, then plans each (ticker, range) with every
/// timeframe missing it, so a derived timeframe is rebuilt from 1m fetched
/// in the same plan (when the ticker has a 1m series; otherwise the derived
/// timeframe is fetched itself).
pub fn plan_fixes(
    table: &mut JobTable,
    report: &Report,
    basis: Basis,
    now_ms: i64,
) -> Result<Fixes, PlanError> {
    let mut holes: BTreeMap<(Ticker, DateRange), BTreeSet<Timeframe>> = BTreeMap::new();
    for problem in &report.problems {
        if let (Some(range), Ok(ticker), Ok(tf)) = (
            problem.hole(),
            Ticker::new(problem.ticker.as_str()),
            problem.timeframe.parse::<Timeframe>(),
        ) {
            holes.entry((ticker, range)).or_default().insert(tf);
        }
    }
    // Forget every hole's coverage first, so each plan sees the same state.
    for ((ticker, range), timeframes) in &holes {
        for tf in timeframes {
            table.remove_coverage(ticker, *tf, basis, *range)?;
        }
    }
    let mut fixes = Fixes {
        ranges: holes.len(),
        outcome: PlanOutcome::default(),
    };
    for ((ticker, range), timeframes) in holes {
        let mut timeframes = timeframes;
        let derived = timeframes
            .iter()
            .any(|tf| *tf != Timeframe::MINUTE && derivable_from_minutes(*tf));
        let has_minutes = !table
            .coverage(&ticker, Timeframe::MINUTE, basis)?
            .is_empty();
        if derived && has_minutes {
            timeframes.insert(Timeframe::MINUTE);
        }
        // Series built from trades need the flat files' listing, which a
        // fix does not make: `backfill` or `update` fetch them again.
        timeframes.retain(|tf| !tf.needs_trades());
        if timeframes.is_empty() {
            continue;
        }
        let request = PlanRequest {
            tickers: vec![ticker],
            timeframes: timeframes.into_iter().collect(),
            range,
            basis,
            starts: Default::default(),
            flat: None,
            from_trades: false,
        };
        fixes.outcome += plan(table, &request, now_ms)?;
    }
    Ok(fixes)
}

/// low ≤ open, close ≤ high, all finite.
fn sane(bar: &Bar) -> bool {
    let values = [bar.open, bar.high, bar.low, bar.close];
    values.iter().all(|v| v.is_finite())
        && bar.low <= bar.open.min(bar.close)
        && bar.high >= bar.open.max(bar.close)
}

fn stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AssetClass;

    fn bar(t: i64, o: f64, h: f64, l: f64, c: f64) -> Bar {
        Bar {
            timestamp: t,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: Some(1.0),
            vwap: None,
            transactions: Some(1),
        }
    }

    #[test]
    fn ohlc_sanity() {
        assert!(sane(&bar(0, 2.0, 3.0, 1.0, 2.5)));
        assert!(sane(&bar(0, 2.0, 2.0, 2.0, 2.0)));
        assert!(!sane(&bar(0, 2.0, 1.5, 1.0, 1.2)), "open above high");
        assert!(!sane(&bar(0, 2.0, 3.0, 2.1, 2.5)), "low above open");
        assert!(!sane(&bar(0, f64::NAN, 3.0, 1.0, 2.5)));
    }

    #[test]
    fn calendars_follow_the_asset_class() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let nyse = AssetClass::Stocks.calendar();
        assert!(!nyse.is_open(d("2024-11-28")), "Thanksgiving");
        assert!(
            nyse.is_open(d("2024-11-29")),
            "early close is a trading day"
        );
        assert!(AssetClass::Crypto.calendar().is_open(d("2024-11-30")));
        let fx = AssetClass::Fx.calendar();
        assert!(
            fx.is_open(d("2024-12-01")) && !fx.is_open(d("2024-11-30")),
            "Sunday, not Saturday"
        );
        assert!(daily_or_shorter(Timeframe::DAY) && daily_or_shorter(Timeframe::MINUTE));
        assert!(!daily_or_shorter("1w".parse().unwrap()));
    }
}
