//! Planning: tickers × timeframes × a date range → jobs, minus what is
//! already covered or already planned, so planning twice adds nothing and a
//! re-run asks only for what is missing.
//!
//! Requests are the currency: when `1m` is among the timeframes, minute and
//! hour multiples (`5m`, `15m`, `1h`…) are not requested but derived from the
//! stored 1m bars by the 1m job itself; a derived timeframe whose 1m bars are
//! already stored gets a `derive` job that sends no request at all. One REST
//! job covers a ticker's whole missing range of one base timeframe.

mod dry_run;
mod estimate;

pub use dry_run::{DryRun, DryRunError, dry_run};
pub use estimate::{Estimate, PAGE_BARS, Queued, days_before, human, time_at};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::calendar::Calendar;
use crate::flatfiles::{Dataset, FileKind};
use crate::jobs::{JobError, JobKind, JobTable, NewJob};
use crate::model::{AssetClass, Basis, Ticker, Timeframe, period_of};
use crate::ranges::{DateRange, subtract, union};
use crate::resample::{JobGroup, job_groups};
use crate::sources::{FlatChoice, SourceChoice, built_from_trades, split};

/// What to plan.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub tickers: Vec<Ticker>,
    pub timeframes: Vec<Timeframe>,
    pub range: DateRange,
    pub basis: Basis,
    /// Later first days for some tickers (`update`: each series from where
    /// its library starts), inside `range`.
    pub starts: HashMap<Ticker, NaiveDate>,
    /// Flat files to use, when S3 keys are set and the source is not `rest`.
    pub flat: Option<FlatChoice>,
    /// `--from-trades`: every second, minute and hour timeframe is built
    /// from the `trades_v1` day files (second and activity bars always are).
    pub from_trades: bool,
}

/// What planning did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOutcome {
    /// New REST jobs (each costs at least one request).
    pub rest_jobs: usize,
    /// New derive jobs (no requests).
    pub derive_jobs: usize,
    /// Flat-file jobs new or widened (no REST requests).
    pub flat_jobs: usize,
    /// Distinct day files those jobs read (one per dataset, file kind and
    /// day: minute and day aggregates are separate files).
    pub flat_days: usize,
    /// Open days with no file, left out (`--source flatfiles` only).
    pub missing_days: usize,
    /// Grouped-daily jobs new or widened (one request each, for a whole market).
    pub grouped_jobs: usize,
    /// Trades jobs new or widened (bars from `trades_v1`, no REST request).
    pub trades_jobs: usize,
    /// Distinct trades day files those jobs read.
    pub trades_days: usize,
    /// Ranges without any session (weekends, holidays), covered without a request.
    pub closed_ranges: usize,
    /// Failed jobs of these tickers put back in the queue.
    pub requeued: usize,
    /// Series (ticker × timeframe) with nothing left to fetch.
    pub up_to_date: usize,
}

impl std::ops::AddAssign for PlanOutcome {
    /// Sums every counter: the outcome of several plans as one.
    fn add_assign(&mut self, other: Self) {
        let Self {
            rest_jobs,
            derive_jobs,
            flat_jobs,
            flat_days,
            missing_days,
            grouped_jobs,
            trades_jobs,
            trades_days,
            closed_ranges,
            requeued,
            up_to_date,
        } = other;
        self.trades_jobs += trades_jobs;
        self.trades_days += trades_days;
        self.rest_jobs += rest_jobs;
        self.derive_jobs += derive_jobs;
        self.flat_jobs += flat_jobs;
        self.flat_days += flat_days;
        self.missing_days += missing_days;
        self.grouped_jobs += grouped_jobs;
        self.closed_ranges += closed_ranges;
        self.requeued += requeued;
        self.up_to_date += up_to_date;
    }
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the ticker list is empty: the universe file lists no tickers, or the batch selection is past its end"
    )]
    NoTickers,
    #[error("no timeframes given: pass --timeframes, e.g. --timeframes 1m,1d")]
    NoTimeframes,
    /// Bars from trades were asked for without flat files to read them from.
    #[error(
        "{timeframes} {verb} built from trades, which need flat-file access (the trades_v1 day \
         files): set MASSIVE_S3_ACCESS_KEY and MASSIVE_S3_SECRET_KEY (or POLYGON_S3_*), do not \
         pass --source rest or --adjusted, or leave {them} out"
    )]
    TradesNeedFlatFiles {
        timeframes: String,
        verb: &'static str,
        them: &'static str,
    },
    #[error(transparent)]
    Jobs(#[from] JobError),
}

/// Plans `request` into `table`.
pub fn plan(
    table: &mut JobTable,
    request: &PlanRequest,
    now_ms: i64,
) -> Result<PlanOutcome, PlanError> {
    if request.tickers.is_empty() {
        return Err(PlanError::NoTickers);
    }
    if request.timeframes.is_empty() {
        return Err(PlanError::NoTimeframes);
    }
    let (trades_tfs, other_tfs): (Vec<Timeframe>, Vec<Timeframe>) = request
        .timeframes
        .iter()
        .partition(|tf| built_from_trades(**tf, request.from_trades));
    let trades_choice = match (&request.flat, trades_tfs.is_empty()) {
        (_, true) => None,
        (Some(choice), false)
            if choice.choice != SourceChoice::Rest && !request.basis.is_adjusted() =>
        {
            Some(choice)
        }
        (_, false) => return Err(trades_need_flat_files(&trades_tfs)),
    };
    let mut outcome = PlanOutcome::default();
    let mut jobs = Vec::new();
    let mut trades_jobs: BTreeMap<FlatKey, (Vec<Ticker>, BTreeSet<NaiveDate>)> = BTreeMap::new();
    let mut flat_jobs: BTreeMap<FlatKey, (Vec<Ticker>, BTreeSet<NaiveDate>)> = BTreeMap::new();
    let mut missing_days = BTreeSet::new();
    let mut daily: BTreeMap<GroupedMarket, Vec<(Ticker, Vec<DateRange>)>> = BTreeMap::new();
    let mut closed: Vec<(Ticker, Vec<Timeframe>, DateRange)> = Vec::new();
    let wanted: Vec<(&Ticker, DateRange)> = request
        .tickers
        .iter()
        .filter_map(|ticker| {
            let start = request
                .starts
                .get(ticker)
                .map_or(request.range.start, |s| (*s).max(request.range.start));
            Some((ticker, DateRange::new(start, request.range.end)?))
        })
        .collect();
    // One query instead of one write per ticker when nothing failed.
    if table.counts()?.failed > 0 {
        for (ticker, _) in &wanted {
            outcome.requeued += table.requeue_failed(Some(ticker), now_ms)?;
        }
    }
    // The reads below see one snapshot of the table, taken once.
    let snapshot = table.read_snapshot()?;
    for &(ticker, range) in &wanted {
        if let Some(choice) = trades_choice {
            let taken = |tf: Timeframe| -> Result<Vec<DateRange>, JobError> {
                let mut have = table.coverage(ticker, tf, request.basis)?;
                have.extend(table.open_ranges(ticker, tf, request.basis)?);
                Ok(union(have))
            };
            let mut missing = Vec::new();
            for &tf in &trades_tfs {
                missing.push((tf, subtract(range, &taken(tf)?)));
            }
            let planned = plan_trades(ticker, &missing, choice);
            if planned.days.is_empty() && planned.missing.is_empty() {
                outcome.up_to_date += 1;
            }
            closed.extend(planned.closed);
            missing_days.extend(planned.missing);
            for (key, days) in planned.days {
                let entry = trades_jobs.entry(key).or_default();
                entry.0.push(ticker.clone());
                entry.1.extend(days);
            }
        }
        for group in job_groups(&other_tfs) {
            let taken = |tf: Timeframe| -> Result<Vec<DateRange>, JobError> {
                let mut have = table.coverage(ticker, tf, request.basis)?;
                have.extend(table.open_ranges(ticker, tf, request.basis)?);
                Ok(union(have))
            };
            let base_taken = taken(group.base)?;
            let missing = subtract(range, &base_taken);
            let flat = flat_source(request, ticker, group.base);
            let mut rest_ranges = Vec::new();
            let mut flat_days = BTreeSet::new();
            match flat {
                Some((choice, dataset, kind)) => {
                    let files = choice.files.get(&(dataset, kind));
                    let has_file = |d: NaiveDate| files.is_some_and(|f| f.contains(&d));
                    for gap in &missing {
                        let part = split(
                            *gap,
                            choice.choice,
                            choice.cutoff,
                            dataset.calendar(),
                            has_file,
                        );
                        // Days left to no source are closed (no session, no
                        // file): covered now, as a closed REST range is.
                        let calendar = dataset.calendar();
                        let mut run: Option<DateRange> = None;
                        for day in gap.start.iter_days().take_while(|d| *d <= gap.end) {
                            let served = part.flat_days.contains(&day)
                                || part.missing.contains(&day)
                                || part.rest.iter().any(|r| r.start <= day && day <= r.end)
                                || calendar.is_open(day);
                            run = match (run, served) {
                                (Some(r), false) => Some(DateRange { end: day, ..r }),
                                (None, false) => Some(DateRange {
                                    start: day,
                                    end: day,
                                }),
                                (Some(r), true) => {
                                    closed.push((ticker.clone(), series_of(&group), r));
                                    None
                                }
                                (None, true) => None,
                            };
                        }
                        if let Some(r) = run {
                            closed.push((ticker.clone(), series_of(&group), r));
                        }
                        flat_days.extend(part.flat_days);
                        rest_ranges.extend(part.rest);
                        missing_days.extend(part.missing.into_iter().map(|d| (dataset, d)));
                    }
                    if let Some(again) = choice.republished.get(&(dataset, kind)) {
                        flat_days.extend(again.range(range.start..=range.end));
                    }
                    for (start, end) in flat_runs(&flat_days, &rest_ranges, dataset, group.base) {
                        let key = FlatKey {
                            dataset: dataset.name(),
                            base: group.base.to_string(),
                            derived: group.derived.iter().map(ToString::to_string).collect(),
                            start,
                            end,
                        };
                        let entry = flat_jobs.entry(key).or_default();
                        entry.0.push(ticker.clone());
                        entry.1.extend(flat_days.range(start..=end));
                    }
                }
                None => rest_ranges = missing.clone(),
            }
            // A range without a session (a weekend, a holiday) has no bars:
            // covered at once, without a request.
            let calendar = ticker.asset_class().calendar();
            rest_ranges.retain(|r| {
                let open = calendar.open_days(r.start, r.end).next().is_some();
                if !open {
                    closed.push((ticker.clone(), series_of(&group), *r));
                }
                open
            });
            if group.base == Timeframe::DAY
                && let Some(market) = GroupedMarket::for_class(ticker.asset_class())
                && !rest_ranges.is_empty()
            {
                daily
                    .entry(market)
                    .or_default()
                    .push((ticker.clone(), std::mem::take(&mut rest_ranges)));
            }
            for rest_range in &rest_ranges {
                jobs.push(NewJob {
                    kind: JobKind::Rest,
                    ticker: ticker.clone(),
                    timeframe: group.base,
                    derived: group.derived.clone(),
                    basis: request.basis,
                    range: *rest_range,
                });
            }
            if missing.is_empty() && flat_days.is_empty() {
                outcome.up_to_date += 1;
            }
            // Derived series whose 1m bars are already stored but which are
            // not: computed locally, no request. (Only stored 1m bars count:
            // a derive job must never run ahead of the 1m job it reads.)
            let base_stored = table.coverage(ticker, group.base, request.basis)?;
            for derived in &group.derived {
                let derived_taken = taken(*derived)?;
                for within in subtract(range, &subtract(range, &base_stored)) {
                    for part in subtract(within, &derived_taken) {
                        jobs.push(NewJob {
                            kind: JobKind::Derive,
                            ticker: ticker.clone(),
                            timeframe: *derived,
                            derived: Vec::new(),
                            basis: request.basis,
                            range: part,
                        });
                    }
                }
            }
        }
    }
    snapshot.end()?;
    for (ticker, series, range) in &closed {
        table.add_coverage_all(std::slice::from_ref(ticker), series, request.basis, *range)?;
    }
    outcome.closed_ranges = closed.len();
    for (market, candidates) in daily {
        plan_daily(
            table,
            request.basis,
            market,
            candidates,
            &mut jobs,
            &mut outcome,
            now_ms,
        )?;
    }
    let mut days = BTreeSet::new();
    for (key, (targets, job_days)) in &flat_jobs {
        let job = key.job(JobKind::Flat, request.basis)?;
        if table.insert_fanout(&job, targets, now_ms)? {
            outcome.flat_jobs += 1;
            // One file per dataset, kind (its base timeframe) and day.
            days.extend(job_days.iter().map(|d| (key.dataset, key.base.clone(), *d)));
        }
    }
    outcome.flat_days = days.len();
    let mut days = BTreeSet::new();
    for (key, (targets, job_days)) in &trades_jobs {
        let job = key.job(JobKind::Trades, request.basis)?;
        if table.insert_fanout(&job, targets, now_ms)? {
            outcome.trades_jobs += 1;
            days.extend(job_days.iter().map(|d| (key.dataset, *d)));
        }
    }
    outcome.trades_days = days.len();
    outcome.missing_days = missing_days.len();
    let rest = jobs.iter().filter(|j| j.kind == JobKind::Rest).count();
    let inserted = table.insert(&jobs, now_ms)?;
    // `insert` ignores duplicates; our subtraction already removed them, so
    // the counts agree unless another process planned the same work meanwhile.
    outcome.rest_jobs = rest.min(inserted);
    outcome.derive_jobs = inserted - outcome.rest_jobs;
    Ok(outcome)
}

/// A group's base timeframe and the ones derived from it.
fn series_of(group: &JobGroup) -> Vec<Timeframe> {
    let mut series = vec![group.base];
    series.extend(group.derived.iter().copied());
    series
}

/// A market whose daily bars the grouped-daily endpoint serves in one
/// request per date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupedMarket {
    /// US stocks (OTC included: `include_otc=true`).
    UsStocks,
    Crypto,
    Fx,
}

impl GroupedMarket {
    pub const ALL: [Self; 3] = [Self::UsStocks, Self::Crypto, Self::Fx];

    /// The market of a ticker's asset class, if it has a grouped endpoint.
    pub fn for_class(class: AssetClass) -> Option<Self> {
        match class {
            AssetClass::Stocks => Some(Self::UsStocks),
            AssetClass::Crypto => Some(Self::Crypto),
            AssetClass::Fx => Some(Self::Fx),
            AssetClass::Options | AssetClass::Indices => None,
        }
    }

    /// The name stored in a grouped job's `ticker` column.
    pub fn name(self) -> &'static str {
        match self {
            Self::UsStocks => "grouped_us_stocks",
            Self::Crypto => "grouped_global_crypto",
            Self::Fx => "grouped_global_fx",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The endpoint's path for `date`.
    pub fn path(self, date: NaiveDate) -> String {
        let market = match self {
            Self::UsStocks => "us/market/stocks",
            Self::Crypto => "global/market/crypto",
            Self::Fx => "global/market/fx",
        };
        format!(
            "/v2/aggs/grouped/locale/{market}/{}",
            date.format("%Y-%m-%d")
        )
    }

    /// The days the market has daily bars.
    pub fn calendar(self) -> Calendar {
        match self {
            Self::UsStocks => Calendar::Nyse,
            Self::Crypto => Calendar::Crypto,
            Self::Fx => Calendar::Forex,
        }
    }

    /// The asset class of its tickers (for dates and stamps).
    pub fn asset_class(self) -> AssetClass {
        match self {
            Self::UsStocks => AssetClass::Stocks,
            Self::Crypto => AssetClass::Crypto,
            Self::Fx => AssetClass::Fx,
        }
    }
}

/// Daily bars of one market: one grouped request per open date when that
/// is fewer requests than one range request per ticker, else range jobs.
/// A grouped job's range runs from the day after the previous open day to
/// its date, so the closed days before it are covered with it.
fn plan_daily(
    table: &mut JobTable,
    basis: Basis,
    market: GroupedMarket,
    candidates: Vec<(Ticker, Vec<DateRange>)>,
    jobs: &mut Vec<NewJob>,
    outcome: &mut PlanOutcome,
    now_ms: i64,
) -> Result<(), PlanError> {
    let calendar = market.calendar();
    let mut by_day: BTreeMap<NaiveDate, Vec<Ticker>> = BTreeMap::new();
    for (ticker, ranges) in &candidates {
        for range in ranges {
            for day in calendar.open_days(range.start, range.end) {
                by_day.entry(day).or_default().push(ticker.clone());
            }
        }
    }
    let range_requests: usize = candidates.iter().map(|(_, ranges)| ranges.len()).sum();
    if by_day.len() >= range_requests {
        for (ticker, ranges) in candidates {
            for range in ranges {
                jobs.push(NewJob {
                    kind: JobKind::Rest,
                    ticker: ticker.clone(),
                    timeframe: Timeframe::DAY,
                    derived: Vec::new(),
                    basis,
                    range,
                });
            }
        }
        return Ok(());
    }
    let name = Ticker::new(market.name()).map_err(|e| {
        PlanError::Jobs(JobError::Corrupt {
            id: 0,
            detail: e.to_string(),
        })
    })?;
    for (day, targets) in by_day {
        let mut start = day;
        while let Some(before) = start.pred_opt().filter(|d| !calendar.is_open(*d)) {
            start = before;
        }
        let job = NewJob {
            kind: JobKind::Grouped,
            ticker: name.clone(),
            timeframe: Timeframe::DAY,
            derived: Vec::new(),
            basis,
            range: DateRange { start, end: day },
        };
        if table.insert_fanout(&job, &targets, now_ms)? {
            outcome.grouped_jobs += 1;
        }
    }
    Ok(())
}

/// The flat-file source of one series, if flat files are to be used for it:
/// configured, unadjusted (flat files hold unadjusted prices only), and a
/// base timeframe the files hold (1m, 1d).
fn flat_source<'r>(
    request: &'r PlanRequest,
    ticker: &Ticker,
    base: Timeframe,
) -> Option<(&'r FlatChoice, Dataset, FileKind)> {
    let choice = request.flat.as_ref()?;
    if request.basis.is_adjusted() || choice.choice == SourceChoice::Rest {
        return None;
    }
    let kind = FlatChoice::kind_for(base)?;
    Some((choice, Dataset::for_class(ticker.asset_class()), kind))
}

/// One flat-file job's identity while planning: tickers with the same key
/// share the job (and its downloads).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FlatKey {
    dataset: &'static str,
    base: String,
    derived: Vec<String>,
    start: NaiveDate,
    end: NaiveDate,
}

impl FlatKey {
    fn job(&self, kind: JobKind, basis: Basis) -> Result<NewJob, PlanError> {
        let corrupt = |detail: String| PlanError::Jobs(JobError::Corrupt { id: 0, detail });
        let parse = |tf: &str| tf.parse::<Timeframe>().map_err(|e| corrupt(e.to_string()));
        Ok(NewJob {
            kind,
            ticker: Ticker::new(self.dataset).map_err(|e| corrupt(e.to_string()))?,
            timeframe: parse(&self.base)?,
            derived: self
                .derived
                .iter()
                .map(|d| parse(d))
                .collect::<Result<_, _>>()?,
            basis,
            range: DateRange {
                start: self.start,
                end: self.end,
            },
        })
    }
}

/// The error for bars from trades without flat files to read them from.
fn trades_need_flat_files(timeframes: &[Timeframe]) -> PlanError {
    let names: Vec<String> = timeframes.iter().map(ToString::to_string).collect();
    let one = timeframes.len() == 1;
    PlanError::TradesNeedFlatFiles {
        timeframes: names.join(","),
        verb: if one { "is" } else { "are" },
        them: if one { "it" } else { "them" },
    }
}

/// What one ticker's bars from trades need.
#[derive(Debug, Default, PartialEq, Eq)]
struct TradesPlan {
    /// Job keys (the series wanted on those days, a run of days in one
    /// period) with the days each reads.
    days: Vec<(FlatKey, BTreeSet<NaiveDate>)>,
    /// Ranges without a session and without a file: covered now, per series.
    closed: Vec<(Ticker, Vec<Timeframe>, DateRange)>,
    /// Open days whose trades file does not exist (yet): left out, so a
    /// later run reads them once published.
    missing: Vec<(Dataset, NaiveDate)>,
}

/// Plans one ticker's bars from trades: each series' missing days are read
/// from their `trades_v1` file; days that want the same series and lie in
/// one period (a month: second, minute, hour and activity bars all have
/// monthly files) make one job, shared by every ticker wanting the same.
/// Trades files have no cutoff: a day is read once its file exists, whatever
/// `--flatfiles-cutoff` says (no other source serves these bars).
fn plan_trades(
    ticker: &Ticker,
    missing: &[(Timeframe, Vec<DateRange>)],
    choice: &FlatChoice,
) -> TradesPlan {
    let dataset = Dataset::for_class(ticker.asset_class());
    let calendar = dataset.calendar();
    let files = choice.files.get(&(dataset, FileKind::Trades));
    let has_file = |d: NaiveDate| files.is_some_and(|f| f.contains(&d));
    let mut by_day: BTreeMap<NaiveDate, Vec<Timeframe>> = BTreeMap::new();
    let mut plan = TradesPlan::default();
    let mut absent = BTreeSet::new();
    for (tf, gaps) in missing {
        let mut closed_run: Option<DateRange> = None;
        for gap in gaps {
            for day in gap.start.iter_days().take_while(|d| *d <= gap.end) {
                let closed_day = !has_file(day) && !calendar.is_open(day);
                if has_file(day) {
                    by_day.entry(day).or_default().push(*tf);
                } else if !closed_day {
                    absent.insert(day);
                }
                closed_run = match (closed_run, closed_day) {
                    (Some(r), true) if r.end.succ_opt() == Some(day) => {
                        Some(DateRange { end: day, ..r })
                    }
                    (run, true) => {
                        if let Some(r) = run {
                            plan.closed.push((ticker.clone(), vec![*tf], r));
                        }
                        Some(DateRange {
                            start: day,
                            end: day,
                        })
                    }
                    (Some(r), false) => {
                        plan.closed.push((ticker.clone(), vec![*tf], r));
                        None
                    }
                    (None, false) => None,
                };
            }
        }
        if let Some(r) = closed_run {
            plan.closed.push((ticker.clone(), vec![*tf], r));
        }
    }
    plan.missing = absent.into_iter().map(|d| (dataset, d)).collect();
    let mut by_series: BTreeMap<Vec<Timeframe>, BTreeSet<NaiveDate>> = BTreeMap::new();
    for (day, mut series) in by_day {
        series.sort();
        by_series.entry(series).or_default().insert(day);
    }
    for (series, days) in by_series {
        let Some((base, derived)) = series.split_first() else {
            continue;
        };
        for (start, end) in flat_runs(&days, &[], dataset, *base) {
            let key = FlatKey {
                dataset: dataset.name(),
                base: base.to_string(),
                derived: derived.iter().map(ToString::to_string).collect(),
                start,
                end,
            };
            plan.days
                .push((key, days.range(start..=end).copied().collect()));
        }
    }
    plan
}

/// Cuts sorted flat days into runs for one job each: a run ends where the
/// period (month, or year for 1d) changes or a REST range lies between two
/// days, so a flat job never covers a day REST serves.
fn flat_runs(
    days: &BTreeSet<NaiveDate>,
    rest: &[DateRange],
    dataset: Dataset,
    base: Timeframe,
) -> Vec<(NaiveDate, NaiveDate)> {
    let class = dataset.asset_class();
    let calendar = dataset.calendar();
    let period = |d: NaiveDate| period_of(class, base, class.midnight_ms(d));
    let mut runs: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &day in days {
        match runs.last_mut() {
            // Consecutive flat days: any open day between them is served
            // otherwise (REST, a missing file, already covered), so a job
            // covering both would cover a day it never read.
            Some((start, end))
                if period(*start) == period(day)
                    && !rest.iter().any(|r| r.start > *end && r.start < day)
                    && end
                        .succ_opt()
                        .zip(day.pred_opt())
                        .is_none_or(|(a, b)| calendar.open_days(a, b).next().is_none()) =>
            {
                *end = day;
            }
            _ => runs.push((day, day)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_timeframes;

    fn groups(list: &str) -> Vec<(String, Vec<String>)> {
        job_groups(&parse_timeframes(list).unwrap())
            .into_iter()
            .map(|g| {
                (
                    g.base.to_string(),
                    g.derived.iter().map(ToString::to_string).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn minute_multiples_ride_on_the_1m_job() {
        assert_eq!(
            groups("1m,5m,15m,1h,1d"),
            [
                ("1m".into(), vec!["5m".into(), "15m".into(), "1h".into()]),
                ("1d".into(), vec![])
            ]
        );
        // Without 1m, each timeframe is requested as itself.
        assert_eq!(
            groups("5m,1d"),
            [("5m".into(), vec![]), ("1d".into(), vec![])]
        );
        assert_eq!(
            groups("1m,30s"),
            [("1m".into(), vec![]), ("30s".into(), vec![])]
        );
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn tf(s: &str) -> Timeframe {
        s.parse().unwrap()
    }

    #[test]
    fn second_and_activity_bars_always_come_from_trades_minutes_only_when_asked() {
        for (name, always, asked) in [
            ("1s", true, true),
            ("30s", true, true),
            ("1000t", true, true),
            ("1e6usd", true, true),
            ("1m", false, true),
            ("1h", false, true),
            ("1d", false, false),
        ] {
            assert_eq!(built_from_trades(tf(name), false), always, "{name}");
            assert_eq!(built_from_trades(tf(name), true), asked, "{name}");
        }
    }

    #[test]
    fn trades_days_make_one_job_per_period_and_series_set() {
        let ko = Ticker::new("KO").unwrap();
        let mut choice = FlatChoice::default();
        // Files for Oct 30, 31 and Nov 1 and 4 (Nov 5 not published yet).
        let files = ["2024-10-30", "2024-10-31", "2024-11-01", "2024-11-04"]
            .map(d)
            .into();
        choice
            .files
            .insert((Dataset::UsStocksSip, FileKind::Trades), files);
        let all = DateRange::new(d("2024-10-30"), d("2024-11-05")).unwrap();
        // 1s misses every day; 1000t only November.
        let nov = DateRange::new(d("2024-11-01"), d("2024-11-05")).unwrap();
        let planned = plan_trades(
            &ko,
            &[(tf("1s"), vec![all]), (tf("1000t"), vec![nov])],
            &choice,
        );
        let jobs: Vec<(String, Vec<String>, NaiveDate, NaiveDate, usize)> = planned
            .days
            .iter()
            .map(|(k, days)| {
                (
                    k.base.clone(),
                    k.derived.clone(),
                    k.start,
                    k.end,
                    days.len(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            [
                // October: 1s alone. A month is the period of both series.
                ("1s".into(), vec![], d("2024-10-30"), d("2024-10-31"), 2),
                // November: both series, one job, the weekend inside it.
                (
                    "1s".into(),
                    vec!["1000t".into()],
                    d("2024-11-01"),
                    d("2024-11-04"),
                    2
                ),
            ]
        );
        // The weekend is covered without a file for each series; the open
        // day without a file (Nov 5) is left out, uncovered.
        assert_eq!(planned.missing, [(Dataset::UsStocksSip, d("2024-11-05"))]);
        let weekend = DateRange::new(d("2024-11-02"), d("2024-11-03")).unwrap();
        assert!(
            planned
                .closed
                .contains(&(ko.clone(), vec![tf("1s")], weekend))
        );
        assert!(planned.closed.contains(&(ko, vec![tf("1000t")], weekend)));
    }

    #[test]
    fn bars_from_trades_without_flat_files_are_refused_with_the_fix() {
        let mut table = JobTable::open_in_memory().unwrap();
        let request = PlanRequest {
            tickers: vec![Ticker::new("KO").unwrap()],
            timeframes: parse_timeframes("1s,1d").unwrap(),
            range: DateRange::new(d("2024-11-01"), d("2024-11-05")).unwrap(),
            basis: Basis::Unadjusted,
            starts: HashMap::new(),
            flat: None,
            from_trades: false,
        };
        let error = plan(&mut table, &request, 0).unwrap_err().to_string();
        assert!(error.contains("1s is built from trades"), "{error}");
        assert!(error.contains("MASSIVE_S3_ACCESS_KEY"), "{error}");
    }
}
