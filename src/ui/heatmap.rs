//! The coverage heatmap: for one timeframe, every series (ticker) × every
//! month, each cell covered, partly covered, a hole or lost, by the rules
//! `verify` and `reindex` apply to coverage and files, from the job table's
//! coverage and the library's directory listing alone (no bar is read):
//!
//! - the month's open days (the ticker's market calendar, up to the
//!   library's last covered day) are counted, and those the coverage holds;
//! - **lost**: some of them are covered but the period's file is missing
//!   (`reindex::lost_periods`: a covered period with an open day and no file);
//! - **covered**: all of them are covered (and the file is there);
//! - **partly covered**: some are; or, for monthly files, the file is there
//!   but the job table vouches for none of its days;
//! - **hole**: none is covered and there is no file, between the series'
//!   first month and the library's last;
//! - nothing (`-`): before the series' first month, or no open day.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};

use crate::calendar::Calendar;
use crate::model::{Ticker, Timeframe, period_of_date};
use crate::ranges::{DateRange, union};

/// The most months a grid shows (the newest ones).
const MAX_MONTHS: usize = 600;

/// What a cell says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum CellState {
    /// Outside the series' span, or a month without an open day.
    Empty,
    Covered,
    Partial,
    Hole,
    Lost,
}

impl CellState {
    /// The cell's letter in the API's `cells` string.
    pub(super) fn code(self) -> char {
        match self {
            Self::Empty => '-',
            Self::Covered => 'c',
            Self::Partial => 'p',
            Self::Hole => 'h',
            Self::Lost => 'l',
        }
    }

    /// The states a month's summary counts, in its order.
    pub(super) const COUNTED: [Self; 4] = [Self::Covered, Self::Partial, Self::Hole, Self::Lost];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Empty => "none",
            Self::Covered => "covered",
            Self::Partial => "partial",
            Self::Hole => "hole",
            Self::Lost => "lost",
        }
    }
}

/// One series as the job table and the listing know it.
#[derive(Clone, Debug)]
pub(super) struct SeriesInput {
    pub(super) ticker: Ticker,
    /// The job table's coverage (or, when it has none, the footers').
    pub(super) covered: Vec<DateRange>,
    /// The period files on disk (`2024-11`, or `2024` for daily and longer).
    pub(super) stored: BTreeSet<String>,
    /// Whether `covered` came from the files' footers.
    pub(super) from_files: bool,
}

/// One cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cell {
    pub(super) state: CellState,
    /// Open days of the month that are covered.
    pub(super) covered: u16,
    /// Open days of the month (up to the library's last covered day).
    pub(super) open: u16,
}

/// One series' row.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) ticker: Ticker,
    pub(super) files: usize,
    pub(super) from_files: bool,
    pub(super) cells: Vec<Cell>,
}

impl Row {
    /// Whether any cell is a hole, lost or partly covered.
    pub(super) fn has_problem(&self) -> bool {
        self.cells.iter().any(|c| {
            matches!(
                c.state,
                CellState::Hole | CellState::Lost | CellState::Partial
            )
        })
    }

    /// The cells as one letter each (see [`CellState::code`]).
    pub(super) fn codes(&self) -> String {
        self.cells.iter().map(|c| c.state.code()).collect()
    }
}

/// The heatmap of one timeframe.
#[derive(Clone, Debug)]
pub(super) struct Grid {
    /// The first day of each month shown, oldest first.
    pub(super) months: Vec<NaiveDate>,
    /// The period file holding each month.
    pub(super) periods: Vec<String>,
    /// The library's last covered day (cells count open days up to it).
    pub(super) frontier: Option<NaiveDate>,
    /// One per series, sorted by ticker.
    pub(super) rows: Vec<Row>,
}

impl Grid {
    /// Per month, how many rows are in each of [`CellState::COUNTED`].
    pub(super) fn summary(&self) -> Vec<[usize; 4]> {
        let mut out = vec![[0; 4]; self.months.len()];
        for row in &self.rows {
            for (month, cell) in out.iter_mut().zip(&row.cells) {
                if let Some(i) = CellState::COUNTED.iter().position(|s| *s == cell.state) {
                    month[i] += 1;
                }
            }
        }
        out
    }
}

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn next_month(first: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
}

/// The first day of a period (`2024-11` → 2024-11-01, `2024` → 2024-01-01).
fn period_start(period: &str) -> Option<NaiveDate> {
    match period.split_once('-') {
        Some((y, m)) => NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1),
        None => NaiveDate::from_ymd_opt(period.parse().ok()?, 1, 1),
    }
}

/// The last day of a period.
fn period_end(period: &str) -> Option<NaiveDate> {
    match period.split_once('-') {
        Some(_) => next_month(period_start(period)?)?.pred_opt(),
        None => NaiveDate::from_ymd_opt(period.parse().ok()?, 12, 31),
    }
}

/// Whether `day` is inside one of `ranges` (sorted, disjoint).
fn covers(ranges: &[DateRange], day: NaiveDate) -> bool {
    let i = ranges.partition_point(|r| r.end < day);
    ranges.get(i).is_some_and(|r| r.start <= day)
}

/// Builds the heatmap of `tf` from its series; `today` bounds the last month.
pub(super) fn build(tf: Timeframe, mut series: Vec<SeriesInput>, today: NaiveDate) -> Grid {
    for s in &mut series {
        s.covered = union(std::mem::take(&mut s.covered));
    }
    series.sort_by(|a, b| a.ticker.cmp(&b.ticker));
    // The library's last day: its last covered day, else its last file's.
    let frontier = series
        .iter()
        .filter_map(|s| s.covered.last().map(|r| r.end))
        .max()
        .or_else(|| {
            series
                .iter()
                .filter_map(|s| s.stored.iter().next_back().and_then(|p| period_end(p)))
                .max()
        })
        .map(|d| d.min(today));
    let monthly_files = tf.is_intraday();
    // Where a series starts: its first covered day, or its first monthly
    // file when that is older (a yearly file says nothing of its months).
    let span_start = |s: &SeriesInput| {
        let covered = s.covered.first().map(|r| r.start);
        let stored = s.stored.iter().next().and_then(|p| period_start(p));
        match (covered, stored) {
            (Some(a), Some(b)) if monthly_files => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    let first = series.iter().filter_map(span_start).min();
    let (Some(first), Some(frontier)) = (first, frontier) else {
        return Grid {
            months: Vec::new(),
            periods: Vec::new(),
            frontier,
            rows: series
                .into_iter()
                .map(|s| Row {
                    files: s.stored.len(),
                    ticker: s.ticker,
                    from_files: s.from_files,
                    cells: Vec::new(),
                })
                .collect(),
        };
    };
    let mut months = Vec::new();
    let mut month = month_start(first.min(frontier));
    while month <= frontier {
        months.push(month);
        match next_month(month) {
            Some(next) => month = next,
            None => break,
        }
    }
    if months.len() > MAX_MONTHS {
        months.drain(..months.len() - MAX_MONTHS);
    }
    let periods: Vec<String> = months.iter().map(|m| period_of_date(tf, *m)).collect();
    // Open days per calendar and month, up to the frontier.
    let mut open_days: HashMap<(Calendar, usize), Vec<NaiveDate>> = HashMap::new();
    let mut rows = Vec::with_capacity(series.len());
    for s in series {
        let calendar = s.ticker.asset_class().calendar();
        let start = span_start(&s);
        let mut cells = Vec::with_capacity(months.len());
        for (i, (first_day, period)) in months.iter().zip(&periods).enumerate() {
            let last_day = next_month(*first_day)
                .and_then(|d| d.pred_opt())
                .unwrap_or(*first_day)
                .min(frontier);
            if start.is_none_or(|start| last_day < start) {
                cells.push(Cell {
                    state: CellState::Empty,
                    covered: 0,
                    open: 0,
                });
                continue;
            }
            let days = open_days
                .entry((calendar, i))
                .or_insert_with(|| calendar.open_days(*first_day, last_day).collect());
            let open = days.len();
            let covered = days.iter().filter(|d| covers(&s.covered, **d)).count();
            let file = s.stored.contains(period);
            let state = if open == 0 {
                CellState::Empty
            } else if covered > 0 && !file {
                CellState::Lost
            } else if covered == open {
                CellState::Covered
            } else if covered > 0 || (file && monthly_files) {
                CellState::Partial
            } else {
                CellState::Hole
            };
            cells.push(Cell {
                state,
                covered: u16::try_from(covered).unwrap_or(u16::MAX),
                open: u16::try_from(open).unwrap_or(u16::MAX),
            });
        }
        rows.push(Row {
            files: s.stored.len(),
            ticker: s.ticker,
            from_files: s.from_files,
            cells,
        });
    }
    Grid {
        months,
        periods,
        frontier: Some(frontier),
        rows,
    }
}

/// The series of `tf`: the job table's coverage (of the library's basis)
/// and the listing's files; `footers` gives the coverage of a series that
/// has files but no coverage in the job table.
pub(super) fn series_of(
    coverage: &BTreeMap<Ticker, Vec<DateRange>>,
    files: Option<&BTreeMap<Ticker, BTreeSet<String>>>,
    mut footers: impl FnMut(&Ticker) -> Vec<DateRange>,
) -> Vec<SeriesInput> {
    let mut tickers: BTreeSet<&Ticker> = coverage.keys().collect();
    if let Some(files) = files {
        tickers.extend(files.keys());
    }
    tickers
        .into_iter()
        .map(|ticker| {
            let stored = files
                .and_then(|f| f.get(ticker))
                .cloned()
                .unwrap_or_default();
            let (covered, from_files) = match coverage.get(ticker) {
                Some(ranges) if !ranges.is_empty() => (ranges.clone(), false),
                _ if !stored.is_empty() => (footers(ticker), true),
                _ => (Vec::new(), false),
            };
            SeriesInput {
                ticker: ticker.clone(),
                covered,
                stored,
                from_files,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Basis;
    use crate::store::Store;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn r(a: &str, b: &str) -> DateRange {
        DateRange::new(d(a), d(b)).unwrap()
    }

    fn series(ticker: &str, covered: &[DateRange], stored: &[&str]) -> SeriesInput {
        SeriesInput {
            ticker: Ticker::new(ticker).unwrap(),
            covered: covered.to_vec(),
            stored: stored.iter().map(|s| (*s).to_owned()).collect(),
            from_files: false,
        }
    }

    #[test]
    fn cells_are_covered_partial_holes_or_lost_by_coverage_and_files() {
        let tf: Timeframe = "1m".parse().unwrap();
        let grid = build(
            tf,
            vec![
                // Full Sep..Nov, every file.
                series(
                    "AAPL",
                    &[r("2024-09-01", "2024-11-29")],
                    &["2024-09", "2024-10", "2024-11"],
                ),
                // Oct missing entirely (a hole); Nov half covered.
                series(
                    "MSFT",
                    &[r("2024-09-01", "2024-09-30"), r("2024-11-01", "2024-11-15")],
                    &["2024-09", "2024-11"],
                ),
                // Oct covered but its file gone: lost. Starts in Oct: Sep is outside.
                series("NVDA", &[r("2024-10-01", "2024-11-29")], &["2024-11"]),
                // A file the job table does not vouch for.
                series(
                    "TSLA",
                    &[r("2024-11-01", "2024-11-29")],
                    &["2024-10", "2024-11"],
                ),
            ],
            d("2024-12-02"),
        );
        assert_eq!(grid.periods, ["2024-09", "2024-10", "2024-11"]);
        assert_eq!(grid.frontier, Some(d("2024-11-29")));
        let codes: Vec<String> = grid.rows.iter().map(Row::codes).collect();
        assert_eq!(codes, ["ccc", "chp", "-lc", "-pc"]);
        let nov = grid.rows[1].cells[2];
        assert_eq!(
            (nov.covered, nov.open),
            (11, 20),
            "11 of November's 20 NYSE days by the 29th"
        );
        assert!(!grid.rows[0].has_problem() && grid.rows[1].has_problem());
        assert_eq!(grid.summary()[1], [1, 1, 1, 1]);
    }

    #[test]
    fn daily_series_use_yearly_files_and_crypto_counts_every_day() {
        let tf: Timeframe = "1d".parse().unwrap();
        let grid = build(
            tf,
            vec![
                series("X:BTCUSD", &[r("2024-11-01", "2024-11-30")], &["2024"]),
                series("AAPL", &[r("2024-11-01", "2024-11-10")], &[]),
            ],
            d("2024-12-02"),
        );
        assert_eq!(grid.periods, ["2024"]);
        assert_eq!(grid.rows[0].ticker.as_str(), "AAPL");
        assert_eq!(grid.rows[0].codes(), "l");
        assert_eq!(
            (grid.rows[1].cells[0].covered, grid.rows[1].cells[0].open),
            (30, 30)
        );
        assert_eq!(grid.rows[1].codes(), "c");
    }

    #[test]
    fn lost_cells_are_the_periods_reindex_calls_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Basis::Unadjusted, "test").unwrap();
        let tf: Timeframe = "1h".parse().unwrap();
        let ticker = Ticker::new("AAPL").unwrap();
        let covered = [r("2024-06-29", "2024-09-03"), r("2024-10-05", "2024-10-06")];
        let stored: BTreeSet<String> = ["2024-08".to_owned()].into();
        let lost: BTreeSet<String> =
            crate::reindex::lost_periods(&store, &ticker, tf, &covered, &stored)
                .into_iter()
                .map(|l| l.period)
                .collect();
        let grid = build(
            tf,
            vec![SeriesInput {
                ticker: ticker.clone(),
                covered: covered.to_vec(),
                stored: stored.clone(),
                from_files: false,
            }],
            d("2024-12-02"),
        );
        let ours: BTreeSet<String> = grid
            .periods
            .iter()
            .zip(&grid.rows[0].cells)
            .filter(|(_, c)| c.state == CellState::Lost)
            .map(|(p, _)| p.clone())
            .collect();
        // June's and October's only covered days are weekends (no open
        // day): holes, not lost; September's 3rd is open and has no file.
        assert_eq!(ours, lost);
        assert_eq!(ours, ["2024-07".to_owned(), "2024-09".to_owned()].into());
        assert_eq!(grid.rows[0].codes(), "hlclh");
    }

    #[test]
    fn series_without_coverage_take_it_from_their_footers() {
        let aapl = Ticker::new("AAPL").unwrap();
        let msft = Ticker::new("MSFT").unwrap();
        let coverage: BTreeMap<Ticker, Vec<DateRange>> =
            [(aapl.clone(), vec![r("2024-11-01", "2024-11-29")])].into();
        let files: BTreeMap<Ticker, BTreeSet<String>> = [
            (aapl.clone(), ["2024-11".to_owned()].into()),
            (msft.clone(), ["2024-11".to_owned()].into()),
        ]
        .into();
        let mut asked = Vec::new();
        let out = series_of(&coverage, Some(&files), |t| {
            asked.push(t.clone());
            vec![r("2024-11-04", "2024-11-08")]
        });
        assert_eq!(asked, [msft]);
        assert_eq!(out.len(), 2);
        assert!(!out[0].from_files && out[1].from_files);
    }
}
