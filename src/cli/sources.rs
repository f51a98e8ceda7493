//! `--source` and `--cutoff-days`, and what the library's flat-file choice
//! (`finpipe::sources::flat_choice`) decided, said to the user.

use clap::Args;
use finpipe::calendar::market_today;
use finpipe::jobs::JobTable;
use finpipe::plan::PlanRequest;
use finpipe::sources::{self, FlatChoice, FlatVerdict, RestOnly, SourceChoice};

use super::{Context, Failure, output};

/// Where bars come from.
#[derive(Clone, Debug, Args)]
pub(super) struct SourceArgs {
    /// auto: S3 flat files for days older than --cutoff-days whose file exists, REST for the rest;
    /// rest: REST only; flatfiles: flat files only
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    pub source: SourceChoice,
    /// In auto, days at least this old come from flat files
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub cutoff_days: u64,
    /// Build second, minute and hour bars from the trades_v1 flat files (every trade, under
    /// Polygon's condition rules) instead of the aggregates; second bars (1s, 5s…) and activity
    /// bars (1000t, 50000v, 1e6usd) always are. Needs flat-file access; 1d still comes from
    /// the day aggregates
    #[arg(long)]
    pub from_trades: bool,
}

/// The flat files the plan may use, or `None` for REST only (with a note
/// saying why, once).
pub(super) async fn flat_choice(
    context: &Context,
    request: &PlanRequest,
    args: &SourceArgs,
    table: &JobTable,
) -> Result<Option<FlatChoice>, Failure> {
    let flat = if args.source == SourceChoice::Rest {
        None
    } else {
        context.flat_files()?
    };
    let today = market_today(context.clock.now());
    let verdict = sources::flat_choice(
        flat.as_ref(),
        table,
        sources::Wanted {
            tickers: &request.tickers,
            timeframes: &request.timeframes,
            range: request.range,
            basis: request.basis,
            from_trades: request.from_trades,
        },
        args.source,
        args.cutoff_days,
        today,
    )
    .await
    .map_err(|e| {
        if e.is_usage() {
            Failure::usage(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }
    })?;
    Ok(match verdict {
        FlatVerdict::Use(choice) => Some(choice),
        FlatVerdict::RestOnly(why) => {
            match why {
                Some(why @ RestOnly::Refused(_)) => output::warn(&why.message()),
                Some(why @ RestOnly::NoKeys) if !context.quiet => output::note(&why.message()),
                _ => {}
            }
            None
        }
    })
}
