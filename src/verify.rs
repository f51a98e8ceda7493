//! Checking a library: every period file readable with the one schema and
//! its metadata (timeframe, basis), timestamps sorted, unique and inside the
//! file's period, OHLC sane, and no trading day missing inside a series' span
//! (NYSE days for US stocks, options and indices, every day for crypto,
//! Sunday to Friday for forex). Returns problems; never prints.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::{Bar, Ticker, Timeframe, Timespan, period_of};
use crate::ranges::DateRange;
use crate::store::{Store, StoreError};

/// One problem found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub ticker: String,
    pub timeframe: String,
    /// `unreadable`, `basis` (a file of the other adjustment basis),
    /// `unsorted`, `duplicate`, `wrong_period`, `ohlc`, `negative_volume`,
    /// `missing_days`.
    pub kind: &'static str,
    /// The period file, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    pub detail: String,
    /// For `missing_days`: the first and last missing day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

impl Problem {
    /// The missing days, for `missing_days` problems.
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
    tf.fixed_millis().is_some() || (tf.timespan == Timespan::Day && tf.multiplier == 1)
}

/// Checks the series of `tickers` (all when empty) and `timeframe` (all when
/// `None`).
pub fn verify(
    store: &Store,
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
                report.problems.push(Problem {
                    ticker: String::new(),
                    timeframe: String::new(),
                    kind: "unreadable",
                    period: None,
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
    for (ticker, tf, periods) in series {
        report.series += 1;
        check_series(store, &ticker, tf, &periods, &mut report);
    }
    Ok(report)
}

fn check_series(
    store: &Store,
    ticker: &Ticker,
    tf: Timeframe,
    periods: &[String],
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
    for (from, to, count) in holes {
        report.problems.push(Problem {
            ticker: ticker.to_string(),
            timeframe: tf.to_string(),
            kind: "missing_days",
            period: None,
            detail: if from == to {
                format!("no bars on {from}, a trading day")
            } else {
                format!("no bars on {count} trading days from {from} to {to}")
            },
            from: Some(from),
            to: Some(to),
        });
    }
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
