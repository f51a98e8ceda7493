//! `--source` and `--cutoff-days`: which days may come from S3 flat files,
//! found by listing the buckets' months before planning.

use std::collections::{BTreeSet, HashSet};

use chrono::{Days, NaiveDate};
use clap::Args;
use finpipe::flatfiles::{Dataset, FlatFileError};
use finpipe::jobs::JobTable;
use finpipe::plan::{FlatChoice, PlanRequest, job_groups, market_today};
use finpipe::sources::SourceChoice;

use super::{Context, Failure, output};

/// Where bars come from.
#[derive(Clone, Debug, Args)]
pub struct SourceArgs {
    /// auto: S3 flat files for days older than --cutoff-days whose file exists, REST for the rest;
    /// rest: REST only; flatfiles: flat files only
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    pub source: SourceChoice,
    /// In auto, days at least this old come from flat files
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub cutoff_days: u64,
}

/// The flat files the plan may use, or `None` for REST only (with a note
/// saying why, once).
pub async fn flat_choice(
    context: &Context,
    request: &PlanRequest,
    args: &SourceArgs,
    table: &JobTable,
) -> Result<Option<FlatChoice>, Failure> {
    if args.source == SourceChoice::Rest {
        return Ok(None);
    }
    let only_flat = args.source == SourceChoice::FlatFiles;
    if request.basis.is_adjusted() {
        if only_flat {
            return Err(Failure::usage(
                "flat files hold unadjusted prices only: drop --adjusted, or use --source rest",
            ));
        }
        return Ok(None);
    }
    let today = market_today(context.clock.now());
    let cutoff = today
        .checked_sub_days(Days::new(args.cutoff_days))
        .unwrap_or(NaiveDate::MIN);
    let last = if only_flat {
        request.range.end
    } else {
        request.range.end.min(cutoff.pred_opt().unwrap_or(cutoff))
    };
    let mut choice = FlatChoice {
        choice: args.source,
        cutoff,
        ..FlatChoice::default()
    };
    let flat = context.flat_files()?;
    if last < request.range.start {
        // Every day is recent: REST in auto, whatever the keys.
        return Ok(flat.map(|_| choice));
    }
    let Some(flat) = flat else {
        let why = "no S3 keys for flat files (MASSIVE_S3_ACCESS_KEY and MASSIVE_S3_SECRET_KEY, \
                   or POLYGON_S3_ACCESS_KEY and POLYGON_S3_SECRET_KEY)";
        if only_flat {
            return Err(Failure::usage(format!("--source flatfiles needs {why}")));
        }
        if !context.quiet {
            output::note(&format!("{why}: every day comes from REST"));
        }
        return Ok(None);
    };
    let mut wanted = HashSet::new();
    for ticker in &request.tickers {
        for group in job_groups(&request.timeframes) {
            if let Some(kind) = FlatChoice::kind_for(group.base) {
                wanted.insert((Dataset::for_class(ticker.asset_class()), kind));
            }
        }
    }
    for (dataset, kind) in wanted {
        let files = match flat
            .list_range(dataset, kind, request.range.start, last)
            .await
        {
            Ok(files) => files,
            Err(e @ FlatFileError::Forbidden { .. }) if !only_flat => {
                output::warn(&format!("{e}; every day comes from REST"));
                return Ok(None);
            }
            Err(e @ (FlatFileError::Forbidden { .. } | FlatFileError::Config { .. })) => {
                return Err(Failure::usage(e.to_string()));
            }
            Err(e) => return Err(Failure::failed(e.to_string())),
        };
        let ingested = table
            .ingested(dataset.name(), kind.name(), request.range.start, last)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let mut days = BTreeSet::new();
        let mut republished = BTreeSet::new();
        for file in files {
            if let Some(seen) = ingested.get(&file.date) {
                // S3 listings carry ETags; a server whose listing does not
                // is asked per ingested day.
                let etag = match file.etag {
                    Some(etag) => Some(etag),
                    None => flat
                        .head(dataset, kind, file.date)
                        .await
                        .map_err(|e| Failure::failed(e.to_string()))?
                        .and_then(|f| f.etag),
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
    Ok(Some(choice))
}
