//! What `finpipe update` plans: every series of the library (or every ticker
//! of the given universes), each from its own first covered day up to the
//! last complete day, grouped into plan requests of tickers that share
//! timeframes and an asset class. Planning subtracts what is covered, so a
//! series asks only for the days after its last covered one. Also the
//! adjusted library's split check. Decides; never prints.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::calendar::{last_complete_day, market_today};
use crate::jobs::{JobError, JobTable};
use crate::model::{AssetClass, Basis, Ticker, Timeframe};
use crate::plan::PlanRequest;
use crate::polygon::SplitRecord;
use crate::ranges::DateRange;
use crate::store::{Store, StoreError};

/// What to bring up to date.
#[derive(Clone, Debug, Default)]
pub struct UpdateRequest {
    /// The universes' tickers; `None`: every series of the library.
    pub tickers: Option<Vec<Ticker>>,
    /// Timeframes to update; `None`: each series' own (for universes'
    /// tickers the library has nothing of, every timeframe it holds).
    pub timeframes: Option<Vec<Timeframe>>,
    /// First day of tickers with nothing stored yet.
    pub start: Option<NaiveDate>,
    pub basis: Basis,
    /// Days found lost (coverage forgotten because their file is gone): a
    /// series starts no later than these, so they are fetched again even
    /// when they were its first days.
    pub lost: Vec<(Ticker, Timeframe, DateRange)>,
    /// `--from-trades`: fixed-width timeframes are built from trades
    /// ([`crate::sources::built_from_trades`]).
    pub from_trades: bool,
}

/// The plan requests of an update, and what the split check needs.
#[derive(Clone, Debug, Default)]
pub struct UpdatePlan {
    pub requests: Vec<PlanRequest>,
    /// Per stored ticker, its last covered or stored day.
    pub lasts: BTreeMap<Ticker, NaiveDate>,
    /// Per stored ticker, the timeframes it has.
    pub timeframes: BTreeMap<Ticker, BTreeSet<Timeframe>>,
}

impl UpdatePlan {
    /// One request spanning every group: all tickers, all timeframes, the
    /// widest range (to list flat files once for every group).
    pub fn union_request(&self, basis: Basis) -> Option<PlanRequest> {
        let start = self.requests.iter().map(|r| r.range.start).min()?;
        let end = self.requests.iter().map(|r| r.range.end).max()?;
        let timeframes: BTreeSet<Timeframe> = self
            .requests
            .iter()
            .flat_map(|r| r.timeframes.iter().copied())
            .collect();
        Some(PlanRequest {
            tickers: self
                .requests
                .iter()
                .flat_map(|r| r.tickers.clone())
                .collect(),
            timeframes: timeframes.into_iter().collect(),
            range: DateRange::new(start, end)?,
            basis,
            starts: HashMap::new(),
            flat: None,
            from_trades: self.requests.iter().any(|r| r.from_trades),
        })
    }

    /// The oldest last day of any stored ticker: where the split check starts.
    pub fn oldest_last(&self) -> Option<NaiveDate> {
        self.lasts.values().min().copied()
    }
}

/// Why an update cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "the library {library} holds nothing yet: run `finpipe backfill` first, or give \
         `finpipe update` universe files with --start"
    )]
    Empty { library: String },
    #[error(
        "{} ticker{} {} nothing stored yet ({}{}): pass --start (and --timeframes if the \
         library is empty)",
        tickers.len(),
        if tickers.len() == 1 { "" } else { "s" },
        if tickers.len() == 1 { "has" } else { "have" },
        tickers.iter().take(5).map(String::as_str).collect::<Vec<_>>().join(", "),
        if tickers.len() > 5 { ", …" } else { "" }
    )]
    NoStart { tickers: Vec<String> },
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UpdateError {
    /// Whether the command must change (usage), rather than storage failing.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Empty { .. } | Self::NoStart { .. })
    }
}

/// Tickers planned together: same timeframes, same asset class (which
/// decides the last complete day).
type GroupKey = (Vec<Timeframe>, AssetClass);

/// A stored ticker's timeframes and first day.
struct Series {
    timeframes: BTreeSet<Timeframe>,
    start: Option<NaiveDate>,
}

/// Plans an update as of `now`: which series, from which day, in which
/// groups. Coverage should have been checked against the files first
/// (`reindex::reconcile_library`); series only in the files still count,
/// from their first stored day.
pub fn plan_update(
    table: &JobTable,
    store: &Store,
    request: &UpdateRequest,
    now: DateTime<Utc>,
) -> Result<UpdatePlan, UpdateError> {
    let basis = request.basis;
    let mut series_ranges: Vec<(Ticker, Timeframe, DateRange)> = table
        .all_coverage()?
        .into_iter()
        .filter(|c| c.2 == basis)
        .map(|(t, tf, _, r)| (t, tf, r))
        .collect();
    let known: BTreeSet<(Ticker, Timeframe)> = series_ranges
        .iter()
        .map(|(t, tf, _)| (t.clone(), *tf))
        .collect();
    series_ranges.extend(request.lost.iter().cloned());
    for file in store.scan_all(None)?.into_iter().flatten() {
        if file.basis != basis || known.contains(&(file.ticker.clone(), file.timeframe)) {
            continue;
        }
        let class = file.ticker.asset_class();
        if let (Some(first), Some(last)) = (file.first, file.last)
            && let Some(range) = DateRange::new(class.date_of(first), class.date_of(last))
        {
            series_ranges.push((file.ticker, file.timeframe, range));
        }
    }

    let mut stored: BTreeMap<Ticker, Series> = BTreeMap::new();
    let mut firsts: BTreeMap<(Ticker, Timeframe), NaiveDate> = BTreeMap::new();
    let mut plan = UpdatePlan::default();
    for (ticker, tf, range) in series_ranges {
        let last = plan.lasts.entry(ticker.clone()).or_insert(range.end);
        *last = (*last).max(range.end);
        stored
            .entry(ticker.clone())
            .or_insert(Series {
                timeframes: BTreeSet::new(),
                start: None,
            })
            .timeframes
            .insert(tf);
        let first = firsts.entry((ticker, tf)).or_insert(range.start);
        *first = (*first).min(range.start);
    }
    // Each series' own first day, then the latest of them: update adds new
    // days, it does not extend a timeframe back to another's start.
    for ((ticker, _), first) in firsts {
        if let Some(series) = stored.get_mut(&ticker) {
            series.start = Some(series.start.map_or(first, |s| s.max(first)));
        }
    }
    plan.timeframes = stored
        .iter()
        .map(|(t, s)| (t.clone(), s.timeframes.clone()))
        .collect();
    let library_timeframes: BTreeSet<Timeframe> = stored
        .values()
        .flat_map(|s| s.timeframes.iter().copied())
        .collect();
    let chosen: Option<BTreeSet<Timeframe>> = request
        .timeframes
        .as_ref()
        .map(|list| list.iter().copied().collect());
    let tickers: Vec<Ticker> = match &request.tickers {
        Some(tickers) => tickers.clone(),
        None => stored.keys().cloned().collect(),
    };
    if tickers.is_empty() {
        return Err(UpdateError::Empty {
            library: store.root().display().to_string(),
        });
    }

    // Tickers grouped by timeframes and asset class (which decides the last
    // complete day), each with its own first day.
    let mut groups: BTreeMap<GroupKey, Vec<(Ticker, NaiveDate)>> = BTreeMap::new();
    let mut no_start = Vec::new();
    for ticker in tickers {
        let known = stored.get(&ticker);
        let timeframes: BTreeSet<Timeframe> = match (&chosen, known) {
            (Some(list), _) => list.clone(),
            (None, Some(series)) if request.tickers.is_none() => series.timeframes.clone(),
            (None, _) => library_timeframes.clone(),
        };
        let Some(start) = known.and_then(|s| s.start).or(request.start) else {
            no_start.push(ticker.to_string());
            continue;
        };
        if timeframes.is_empty() {
            no_start.push(ticker.to_string());
            continue;
        }
        groups
            .entry((timeframes.into_iter().collect(), ticker.asset_class()))
            .or_default()
            .push((ticker, start));
    }
    if !no_start.is_empty() {
        return Err(UpdateError::NoStart { tickers: no_start });
    }
    for ((timeframes, class), members) in groups {
        let end = last_complete_day(class.calendar(), now).min(market_today(now));
        let Some(first) = members.iter().map(|(_, s)| *s).min() else {
            continue;
        };
        let Some(range) = DateRange::new(first, end) else {
            continue;
        };
        let starts: HashMap<Ticker, NaiveDate> = members.iter().cloned().collect();
        plan.requests.push(PlanRequest {
            tickers: members.into_iter().map(|(t, _)| t).collect(),
            timeframes,
            range,
            basis,
            starts,
            flat: None,
            from_trades: request.from_trades,
        });
    }
    Ok(plan)
}

/// Adjusted prices change after every split: a stored ticker with a split
/// executed after its last covered day has its adjusted coverage forgotten,
/// so the plan asks for its whole history again and the new bars replace
/// the stored ones. `splits` lists the splits since
/// [`UpdatePlan::oldest_last`]. Returns each ticker forgotten with its split
/// date.
pub fn forget_split_tickers(
    table: &mut JobTable,
    plan: &UpdatePlan,
    splits: &[SplitRecord],
) -> Result<Vec<(Ticker, NaiveDate)>, JobError> {
    let mut split: BTreeMap<Ticker, NaiveDate> = BTreeMap::new();
    for record in splits {
        let Ok(ticker) = Ticker::new(record.ticker.as_str()) else {
            continue;
        };
        if plan
            .lasts
            .get(&ticker)
            .is_some_and(|last| record.execution_date > *last)
        {
            split.insert(ticker, record.execution_date);
        }
    }
    let mut forgotten = Vec::new();
    for (ticker, date) in split {
        let (Some(timeframes), Some(last)) =
            (plan.timeframes.get(&ticker), plan.lasts.get(&ticker))
        else {
            continue;
        };
        // Every day the series could hold (the epoch: before any data).
        let Some(range) =
            NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|e| DateRange::new(e, *last))
        else {
            continue;
        };
        for tf in timeframes {
            table.remove_coverage(&ticker, *tf, Basis::Adjusted, range)?;
        }
        forgotten.push((ticker, date));
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Bar;
    use crate::store::Source;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn t(s: &str) -> Ticker {
        Ticker::new(s).unwrap()
    }

    fn range(a: &str, b: &str) -> DateRange {
        DateRange::new(d(a), d(b)).unwrap()
    }

    /// Tuesday 2024-12-03 20:30 New York: its session is complete.
    fn tuesday_evening() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 12, 4, 1, 30, 0).unwrap()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        table: JobTable,
        store: Store,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Basis::Unadjusted, "test").unwrap();
        let table = JobTable::open(dir.path().join("finpipe.db")).unwrap();
        Fixture {
            _dir: dir,
            table,
            store,
        }
    }

    #[test]
    fn every_series_from_its_own_first_day_to_the_last_complete_day() {
        let mut f = fixture();
        let (m1, d1) = (Timeframe::MINUTE, Timeframe::DAY);
        let u = Basis::Unadjusted;
        f.table
            .add_coverage(&t("AAPL"), m1, u, range("2024-11-01", "2024-12-02"))
            .unwrap();
        f.table
            .add_coverage(&t("AAPL"), d1, u, range("2024-10-01", "2024-12-02"))
            .unwrap();
        f.table
            .add_coverage(&t("X:BTCUSD"), d1, u, range("2024-11-15", "2024-12-01"))
            .unwrap();
        let plan = plan_update(
            &f.table,
            &f.store,
            &UpdateRequest {
                basis: u,
                ..UpdateRequest::default()
            },
            tuesday_evening(),
        )
        .unwrap();
        assert_eq!(plan.requests.len(), 2, "{:?}", plan.requests);
        let stocks = plan
            .requests
            .iter()
            .find(|r| r.tickers == [t("AAPL")])
            .unwrap();
        assert_eq!(stocks.timeframes, [m1, d1]);
        // The later of its timeframes' first days: no timeframe is extended back.
        assert_eq!(stocks.range, range("2024-11-01", "2024-12-03"));
        let crypto = plan
            .requests
            .iter()
            .find(|r| r.tickers == [t("X:BTCUSD")])
            .unwrap();
        // A crypto day ends at midnight New York: Tuesday's has not yet.
        assert_eq!(crypto.range, range("2024-11-15", "2024-12-02"));
        assert_eq!(plan.oldest_last(), Some(d("2024-12-01")));
        let union = plan.union_request(u).unwrap();
        assert_eq!(union.range, range("2024-11-01", "2024-12-03"));
        assert_eq!(union.tickers.len(), 2);
    }

    #[test]
    fn series_only_in_the_files_count_from_their_first_stored_day() {
        let f = fixture();
        let ts = Utc
            .with_ymd_and_hms(2024, 11, 20, 15, 0, 0)
            .unwrap()
            .timestamp_millis();
        let bar = Bar {
            timestamp: ts,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: Some(10.0),
            vwap: None,
            transactions: None,
        };
        f.store
            .merge(&t("MSFT"), Timeframe::MINUTE, vec![bar], Source::Rest)
            .unwrap();
        let plan = plan_update(
            &f.table,
            &f.store,
            &UpdateRequest::default(),
            tuesday_evening(),
        )
        .unwrap();
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].range, range("2024-11-20", "2024-12-03"));
    }

    #[test]
    fn an_empty_library_or_a_new_ticker_without_start_is_a_usage_error() {
        let mut f = fixture();
        let err = plan_update(
            &f.table,
            &f.store,
            &UpdateRequest::default(),
            tuesday_evening(),
        )
        .unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("holds nothing yet"),
            "{err}"
        );
        f.table
            .add_coverage(
                &t("AAPL"),
                Timeframe::DAY,
                Basis::Unadjusted,
                range("2024-11-01", "2024-12-02"),
            )
            .unwrap();
        let request = UpdateRequest {
            tickers: Some(vec![t("AAPL"), t("NEWCO")]),
            ..UpdateRequest::default()
        };
        let err = plan_update(&f.table, &f.store, &request, tuesday_evening()).unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(
            err.to_string()
                .starts_with("1 ticker has nothing stored yet (NEWCO)"),
            "{err}"
        );
        let request = UpdateRequest {
            start: Some(d("2024-11-25")),
            ..request
        };
        let plan = plan_update(&f.table, &f.store, &request, tuesday_evening()).unwrap();
        let newco = plan
            .requests
            .iter()
            .find(|r| r.tickers.contains(&t("NEWCO")))
            .unwrap();
        assert_eq!(newco.starts[&t("NEWCO")], d("2024-11-25"));
        assert_eq!(
            newco.timeframes,
            [Timeframe::DAY],
            "the library's timeframes"
        );
    }

    #[test]
    fn a_split_after_the_last_day_forgets_the_adjusted_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = JobTable::open(dir.path().join("finpipe.db")).unwrap();
        let a = Basis::Adjusted;
        table
            .add_coverage(
                &t("NVDA"),
                Timeframe::DAY,
                a,
                range("2024-01-02", "2024-06-07"),
            )
            .unwrap();
        table
            .add_coverage(
                &t("AAPL"),
                Timeframe::DAY,
                a,
                range("2024-01-02", "2024-06-07"),
            )
            .unwrap();
        let mut plan = UpdatePlan::default();
        for ticker in ["NVDA", "AAPL"] {
            plan.lasts.insert(t(ticker), d("2024-06-07"));
            plan.timeframes
                .insert(t(ticker), BTreeSet::from([Timeframe::DAY]));
        }
        let splits = [
            SplitRecord {
                ticker: "NVDA".into(),
                execution_date: d("2024-06-10"),
                split_from: Some(1.0),
                split_to: Some(10.0),
            },
            SplitRecord {
                ticker: "AAPL".into(),
                execution_date: d("2020-08-31"),
                split_from: Some(1.0),
                split_to: Some(4.0),
            },
        ];
        let forgotten = forget_split_tickers(&mut table, &plan, &splits).unwrap();
        assert_eq!(forgotten, [(t("NVDA"), d("2024-06-10"))]);
        assert!(
            table
                .coverage(&t("NVDA"), Timeframe::DAY, a)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            table.coverage(&t("AAPL"), Timeframe::DAY, a).unwrap().len(),
            1
        );
    }
}
