//! Choosing the source of each day: S3 flat files (bulk history, one download
//! per day for every ticker) or the REST API (recent days, single tickers).
//!
//! In `auto`, a day comes from flat files when its file exists and it is older
//! than the cutoff; a closed day (holiday, weekend) with no file needs nothing;
//! every other day goes to REST, in as few ranges as possible.

mod listing;
mod unreachable;

pub use listing::{FlatVerdict, RestOnly, SourceError, Wanted, flat_choice};
pub use unreachable::Unreachable;

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate};

use std::collections::{BTreeSet, HashMap};

use crate::calendar::Calendar;
use crate::flatfiles::{Dataset, FileKind};
use crate::model::Timeframe;
use crate::ranges::DateRange;

/// `--source auto|rest|flatfiles`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceChoice {
    #[default]
    Auto,
    Rest,
    FlatFiles,
}

impl FromStr for SourceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "rest" => Ok(Self::Rest),
            "flatfiles" | "flat-files" | "flat" => Ok(Self::FlatFiles),
            other => Err(format!(
                "unknown source {other:?}: use auto, rest or flatfiles"
            )),
        }
    }
}

impl fmt::Display for SourceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Rest => "rest",
            Self::FlatFiles => "flatfiles",
        })
    }
}

/// Where the days of one range come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourcePlan {
    /// Days read from their flat file.
    pub flat_days: Vec<NaiveDate>,
    /// Ranges asked from REST.
    pub rest: Vec<DateRange>,
    /// Open days that should have a file but have none (flat files only).
    pub missing: Vec<NaiveDate>,
}

/// Splits `range` between flat files and REST. `cutoff` is the first day
/// considered recent (REST in `auto`); `has_file` tells whether a day's file
/// exists.
pub fn split(
    range: DateRange,
    choice: SourceChoice,
    cutoff: NaiveDate,
    calendar: Calendar,
    has_file: impl Fn(NaiveDate) -> bool,
) -> SourcePlan {
    if choice == SourceChoice::Rest {
        return SourcePlan {
            rest: vec![range],
            ..SourcePlan::default()
        };
    }
    let mut plan = SourcePlan::default();
    let mut rest_days = Vec::new();
    let mut day = range.start;
    while day <= range.end {
        let flat_ok = choice == SourceChoice::FlatFiles || day < cutoff;
        if flat_ok && has_file(day) {
            plan.flat_days.push(day);
        } else if !calendar.is_open(day) {
            // Nothing trades: neither source has bars. Not a request, not a gap.
        } else if choice == SourceChoice::FlatFiles {
            plan.missing.push(day);
        } else {
            rest_days.push(day);
        }
        day = day + Days::new(1);
    }
    plan.rest = rest_ranges(&rest_days, calendar);
    plan
}

/// Joins REST days into ranges; a range bridges closed days (a weekend inside
/// a range costs no extra request) but never a day served by flat files.
fn rest_ranges(days: &[NaiveDate], calendar: Calendar) -> Vec<DateRange> {
    let mut ranges: Vec<DateRange> = Vec::new();
    for &day in days {
        if let Some(last) = ranges.last_mut() {
            let mut between = last.end + Days::new(1);
            while between < day && !calendar.is_open(between) {
                between = between + Days::new(1);
            }
            if between == day {
                last.end = day;
                continue;
            }
        }
        ranges.push(DateRange {
            start: day,
            end: day,
        });
    }
    ranges
}

/// Whether `tf` is built from the `trades_v1` day files: second bars and
/// activity bars always (REST second aggregates are not part of the
/// library's plan), and, with `--from-trades`, every fixed-width timeframe
/// (`1m`, `5m`, `1h`…). `1d` and longer never are: they come from the day
/// aggregates.
pub fn built_from_trades(tf: Timeframe, from_trades: bool) -> bool {
    tf.needs_trades() || (from_trades && tf.fixed_millis().is_some())
}

/// Which days flat files can serve.
#[derive(Clone, Debug, Default)]
pub struct FlatChoice {
    /// `auto` or `flatfiles`.
    pub choice: SourceChoice,
    /// The first day considered recent: in `auto`, days from here on come
    /// from REST.
    pub cutoff: NaiveDate,
    /// The days whose file exists, per dataset and file kind (trades files
    /// under [`FileKind::Trades`], listed over the whole range: they have no
    /// cutoff).
    pub files: HashMap<(Dataset, FileKind), BTreeSet<NaiveDate>>,
    /// Days whose file changed (ETag) since it was ingested: ingested again
    /// even though covered.
    pub republished: HashMap<(Dataset, FileKind), BTreeSet<NaiveDate>>,
}

impl FlatChoice {
    /// The file kind that serves `tf`, if flat files hold it.
    pub fn kind_for(tf: Timeframe) -> Option<FileKind> {
        FileKind::ALL
            .into_iter()
            .find(|k| k.timeframe() == Some(tf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> DateRange {
        DateRange {
            start: d(a),
            end: d(b),
        }
    }

    #[test]
    fn auto_takes_old_days_from_files_and_recent_ones_from_rest() {
        // November 2024: files exist for every NYSE trading day before the 20th.
        let has_file = |day: NaiveDate| Calendar::Nyse.is_open(day) && day < d("2024-11-20");
        let plan = split(
            range("2024-11-01", "2024-11-29"),
            SourceChoice::Auto,
            d("2024-11-18"),
            Calendar::Nyse,
            has_file,
        );
        assert_eq!(plan.flat_days.first(), Some(&d("2024-11-01")));
        assert_eq!(plan.flat_days.last(), Some(&d("2024-11-15")));
        assert_eq!(plan.flat_days.len(), 11);
        // REST from the cutoff on, across the Thanksgiving holiday in one range.
        assert_eq!(plan.rest, vec![range("2024-11-18", "2024-11-29")]);
        assert!(plan.missing.is_empty());
    }

    #[test]
    fn a_day_without_a_file_before_the_cutoff_goes_to_rest_but_holidays_cost_nothing() {
        let has_file = |day: NaiveDate| Calendar::Nyse.is_open(day) && day != d("2024-11-13");
        let plan = split(
            range("2024-11-08", "2024-11-15"),
            SourceChoice::Auto,
            d("2024-12-01"),
            Calendar::Nyse,
            has_file,
        );
        assert_eq!(plan.rest, vec![range("2024-11-13", "2024-11-13")]);
        assert_eq!(plan.flat_days.len(), 5);
    }

    #[test]
    fn flat_files_only_reports_open_days_without_a_file() {
        let has_file = |day: NaiveDate| day < d("2024-11-28");
        let plan = split(
            range("2024-11-25", "2024-12-02"),
            SourceChoice::FlatFiles,
            d("2024-11-01"),
            Calendar::Nyse,
            has_file,
        );
        assert!(plan.rest.is_empty());
        // Thanksgiving (28th) is closed: not missing. The 29th and 2nd are.
        assert_eq!(plan.missing, vec![d("2024-11-29"), d("2024-12-02")]);
    }

    #[test]
    fn rest_only_is_one_range() {
        let plan = split(
            range("2024-01-01", "2024-12-31"),
            SourceChoice::Rest,
            d("2024-06-01"),
            Calendar::Crypto,
            |_| true,
        );
        assert_eq!(plan.rest, vec![range("2024-01-01", "2024-12-31")]);
        assert!(plan.flat_days.is_empty());
        assert_eq!("flat-files".parse(), Ok(SourceChoice::FlatFiles));
        assert!("s3".parse::<SourceChoice>().is_err());
    }
}
