//! Which days flat files can serve a plan: the buckets' months listed once
//! before planning, days already ingested checked for a republished file
//! (ETag). Decides; the caller says why when flat files are not used.

use std::collections::{BTreeSet, HashSet};

use chrono::{Days, NaiveDate};

use super::FlatChoice;
use super::SourceChoice;
use super::Unreachable;
use crate::flatfiles::{Dataset, FileKind, FlatFileError, FlatFiles};
use crate::jobs::{JobError, JobTable};
use crate::model::{Basis, Ticker, Timeframe};
use crate::ranges::DateRange;
use crate::resample::job_groups;

/// What flat files can do for a plan.
#[derive(Debug)]
pub enum FlatVerdict {
    /// Plan with these flat files.
    Use(FlatChoice),
    /// Every day from REST, and why (`None`: `--source rest`, or nothing
    /// worth saying).
    RestOnly(Option<RestOnly>),
}

/// Why `auto` falls back to REST for every day.
#[derive(Debug)]
pub enum RestOnly {
    /// No S3 keys are configured.
    NoKeys,
    /// Flat files cannot be used this run: the keys were refused (the plan
    /// has no flat-file access), or the endpoint cannot be reached
    /// (connection refused, a name that does not resolve, 5xx after
    /// retries: see [`Unreachable`]). Either way it is worth a warning.
    Refused(FlatFileError),
}

/// The S3 key variables, for messages.
const KEYS: &str = "MASSIVE_S3_ACCESS_KEY and MASSIVE_S3_SECRET_KEY, \
                    or POLYGON_S3_ACCESS_KEY and POLYGON_S3_SECRET_KEY";

/// Why flat files cannot be chosen.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("flat files hold unadjusted prices only: drop --adjusted, or use --source rest")]
    AdjustedFlatFiles,
    /// Bars from trades asked for where flat files cannot serve them.
    #[error(
        "{timeframes} {verb} built from trades, which need flat-file access (the trades_v1 day \
         files): {fix}"
    )]
    TradesNeedFlatFiles {
        timeframes: String,
        verb: &'static str,
        fix: &'static str,
    },
    #[error("--source flatfiles needs S3 keys for flat files ({KEYS})")]
    NoKeys,
    /// The keys were refused or the settings are wrong: fix the command.
    #[error(transparent)]
    Refused(FlatFileError),
    /// The endpoint cannot be reached (`--source flatfiles`: no other source
    /// may serve the days).
    #[error(transparent)]
    Unreachable(Unreachable),
    /// Listing failed otherwise (retry later).
    #[error(transparent)]
    Listing(FlatFileError),
    #[error(transparent)]
    Jobs(#[from] JobError),
}

impl SourceError {
    /// Whether the command or configuration must change.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::AdjustedFlatFiles
                | Self::TradesNeedFlatFiles { .. }
                | Self::NoKeys
                | Self::Refused(_)
        )
    }
}

impl RestOnly {
    /// What to tell the user.
    pub fn message(&self) -> String {
        match self {
            Self::NoKeys => {
                format!("no S3 keys for flat files ({KEYS}): every day comes from REST")
            }
            Self::Refused(e) => match Unreachable::of(e) {
                Some(unreachable) => format!("{unreachable}; every day comes from REST"),
                None => format!("{e}; every day comes from REST"),
            },
        }
    }
}

/// What a plan will ask for, as far as the choice of source goes.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub tickers: &'a [Ticker],
    pub timeframes: &'a [Timeframe],
    pub range: DateRange,
    pub basis: Basis,
    /// `--from-trades` ([`super::built_from_trades`]).
    pub from_trades: bool,
}

impl SourceError {
    fn trades(timeframes: &[Timeframe], fix: &'static str) -> Self {
        let names: Vec<String> = timeframes.iter().map(ToString::to_string).collect();
        Self::TradesNeedFlatFiles {
            timeframes: names.join(","),
            verb: if timeframes.len() == 1 { "is" } else { "are" },
            fix,
        }
    }
}

/// The flat files `request` may use under `source`, days at least
/// `cutoff_days` before `today` (`auto`) or all (`flatfiles`); `flat` is the
/// configured flat-file client, if any.
pub async fn flat_choice(
    flat: Option<&FlatFiles>,
    table: &JobTable,
    request: Wanted<'_>,
    source: SourceChoice,
    cutoff_days: u64,
    today: NaiveDate,
) -> Result<FlatVerdict, SourceError> {
    let (trades, others): (Vec<Timeframe>, Vec<Timeframe>) = request
        .timeframes
        .iter()
        .partition(|tf| super::built_from_trades(**tf, request.from_trades));
    if !trades.is_empty() {
        if source == SourceChoice::Rest {
            return Err(SourceError::trades(
                &trades,
                "drop --source rest (REST second aggregates are not part of the library's plan)",
            ));
        }
        if request.basis.is_adjusted() {
            return Err(SourceError::trades(
                &trades,
                "trades are unadjusted: drop --adjusted",
            ));
        }
        if flat.is_none() {
            return Err(SourceError::trades(
                &trades,
                "set MASSIVE_S3_ACCESS_KEY and MASSIVE_S3_SECRET_KEY (or POLYGON_S3_ACCESS_KEY \
                 and POLYGON_S3_SECRET_KEY)",
            ));
        }
    }
    if source == SourceChoice::Rest {
        return Ok(FlatVerdict::RestOnly(None));
    }
    let only_flat = source == SourceChoice::FlatFiles;
    if request.basis.is_adjusted() {
        if only_flat {
            return Err(SourceError::AdjustedFlatFiles);
        }
        return Ok(FlatVerdict::RestOnly(None));
    }
    let cutoff = today
        .checked_sub_days(Days::new(cutoff_days))
        .unwrap_or(NaiveDate::MIN);
    let last = if only_flat {
        request.range.end
    } else {
        request.range.end.min(cutoff.pred_opt().unwrap_or(cutoff))
    };
    let mut choice = FlatChoice {
        choice: source,
        cutoff,
        ..FlatChoice::default()
    };
    if last < request.range.start && trades.is_empty() {
        // Every day is recent: REST in auto, whatever the keys.
        return Ok(match flat {
            Some(_) => FlatVerdict::Use(choice),
            None => FlatVerdict::RestOnly(None),
        });
    }
    let Some(flat) = flat else {
        if only_flat {
            return Err(SourceError::NoKeys);
        }
        return Ok(FlatVerdict::RestOnly(Some(RestOnly::NoKeys)));
    };
    // (dataset, kind, last day listed): trades files to the end of the range.
    let mut wanted = HashSet::new();
    for ticker in request.tickers {
        let dataset = Dataset::for_class(ticker.asset_class());
        for group in job_groups(&others) {
            if let Some(kind) = FlatChoice::kind_for(group.base)
                && last >= request.range.start
            {
                wanted.insert((dataset, kind, last));
            }
        }
        if !trades.is_empty() {
            wanted.insert((dataset, FileKind::Trades, request.range.end));
        }
    }
    // A listing that fails: in `auto`, refused keys and an unreachable
    // endpoint fall back to REST (with one warning, from the caller); with
    // `flatfiles` they fail the command.
    let failed = |e: FlatFileError| -> Result<FlatVerdict, SourceError> {
        let usable_elsewhere =
            matches!(e, FlatFileError::Forbidden { .. }) || Unreachable::of(&e).is_some();
        if usable_elsewhere && !only_flat {
            return Ok(FlatVerdict::RestOnly(Some(RestOnly::Refused(e))));
        }
        Err(match e {
            FlatFileError::Forbidden { .. } | FlatFileError::Config { .. } => {
                SourceError::Refused(e)
            }
            e => match Unreachable::of(&e) {
                Some(unreachable) => SourceError::Unreachable(unreachable),
                None => SourceError::Listing(e),
            },
        })
    };
    for (dataset, kind, last) in wanted {
        let files = match flat
            .list_range(dataset, kind, request.range.start, last)
            .await
        {
            Ok(files) => files,
            Err(e) => return failed(e),
        };
        let ingested = table.ingested(dataset.name(), kind.name(), request.range.start, last)?;
        let mut days = BTreeSet::new();
        let mut republished = BTreeSet::new();
        for file in files {
            if let Some(seen) = ingested.get(&file.date) {
                // S3 listings carry ETags; a server whose listing does not
                // is asked per ingested day.
                let etag = match file.etag {
                    Some(etag) => Some(etag),
                    None => match flat.head(dataset, kind, file.date).await {
                        Ok(head) => head.and_then(|f| f.etag),
                        Err(e) => return failed(e),
                    },
                };
                if etag.is_some_and(|e| &e != seen) {
                    republished.insert(file.date);
                }
            }
            days.insert(file.date);
        }
        choice.files.insert((dataset, kind), days);
        if !republished.is_empty() {
            choice.republished.insert((dataset, kind), republished);
        }
    }
    Ok(FlatVerdict::Use(choice))
}
