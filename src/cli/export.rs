//! `finpipe export`: writes one timeframe of the library as CSV, gzip CSV or
//! Parquet files, in finpipe's, zipline's or qlib's layout. Local state
//! only: no key, no request.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::Args;
use finpipe::export::{
    ExportError, ExportRequest, ExportSummary, Format, Layout, check, export, parse_zone,
};
use finpipe::fsutil::StorageFault;
use finpipe::model::{Ticker, Timeframe};

use super::{Context, Exit, Failure, output};

const EXAMPLES: &str = "\
Examples:
  finpipe export --timeframe 1m AAPL MSFT --start 2024-11-01 --end 2024-11-30 --out export
  finpipe export --timeframe 1d --format parquet --out export               # every ticker
  finpipe export --timeframe 1m --format csv.gz --tz UTC --out export
  finpipe export --timeframe 1d --layout zipline --out csvdir               # csvdir/daily/<SYMBOL>.csv
  finpipe export --timeframe 1d --layout qlib --out qlib-csv                # for qlib's dump_bin.py

Exit codes: 0 files written (tickers without bars are warned about), 1 nothing written or a file \
could not be read or written, 2 bad input, 130 interrupted.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(super) struct ExportArgs {
    /// Tickers to export (default: every ticker in the library)
    #[arg(value_name = "TICKER")]
    tickers: Vec<String>,
    /// The timeframe to export: 1m, 5m, 1h, 1d, …
    #[arg(long, alias = "interval", value_name = "TF")]
    timeframe: Timeframe,
    /// First trading day (the day in the market's zone, as the library files bars)
    #[arg(long, value_name = "DATE")]
    start: Option<NaiveDate>,
    /// Last trading day, included
    #[arg(long, value_name = "DATE")]
    end: Option<NaiveDate>,
    /// File format: csv, csv.gz or parquet
    #[arg(long, value_name = "FORMAT", default_value = "csv")]
    format: Format,
    /// Where the files go (created if needed; must be outside the library)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Layout: finpipe (<out>/<TICKER>/<tf>.<ext>), zipline (csvdir bundle) or qlib (dump_bin input)
    #[arg(long, value_name = "LAYOUT", default_value = "finpipe")]
    layout: Layout,
    /// The zone CSV timestamps are written in, e.g. UTC (default: the market's, America/New_York; UTC for forex)
    #[arg(long = "tz", value_name = "ZONE", value_parser = parse_zone)]
    zone: Option<Tz>,
    /// Export from the split-adjusted library
    #[arg(long)]
    adjusted: bool,
}

pub(super) async fn run(context: &Context, args: ExportArgs) -> Result<Exit, Failure> {
    let tickers = args
        .tickers
        .iter()
        .map(|t| Ticker::new(t.as_str()).map_err(|e| Failure::usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let request = ExportRequest {
        timeframe: args.timeframe,
        tickers,
        start: args.start,
        end: args.end,
        format: args.format,
        layout: args.layout,
        zone: args.zone,
        out: args.out,
    };
    // Bad input is refused before the library is looked at.
    check(&request).map_err(|e| failure(&e))?;
    let library = context.existing_library(args.adjusted)?;
    let store = context.read_store(&library)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut task = tokio::task::spawn_blocking({
        let stop = Arc::clone(&stop);
        move || export(&store, &request, &stop).map(|summary| (summary, request))
    });
    let joined = tokio::select! {
        joined = &mut task => joined,
        _ = tokio::signal::ctrl_c() => {
            // The file in progress is abandoned and removed; wait for that.
            stop.store(true, Ordering::Relaxed);
            task.await
        }
    };
    let (summary, request) = joined
        .map_err(|e| Failure::failed(format!("export stopped: {e}")))?
        .map_err(|e| match e {
            ExportError::Interrupted => Failure {
                exit: Exit::Interrupted,
                message: e.to_string(),
            },
            other => failure(&other),
        })?;
    Ok(report(&summary, &request, &library.data_dir, context.quiet))
}

/// Prints the warnings and the summary line; the exit code.
fn report(
    summary: &ExportSummary,
    request: &ExportRequest,
    data_dir: &std::path::Path,
    quiet: bool,
) -> Exit {
    for reported in &summary.reported {
        output::warn(&reported.to_string());
    }
    if summary.left_out > 0 {
        output::note(&format!(
            "{} bars outside the NYSE regular session left out: zipline's minute bars are \
             those of its trading calendar",
            summary.left_out
        ));
    }
    let files = summary.written.len();
    if !quiet || files == 0 {
        outln!(
            "export: {files} file{} with {} rows of {} bars from {} to {} ({}, {} layout); {} \
             ticker{} without a file",
            if files == 1 { "" } else { "s" },
            summary.rows,
            request.timeframe,
            data_dir.display(),
            request.out.display(),
            request.format,
            request.layout,
            summary.reported.len(),
            if summary.reported.len() == 1 { "" } else { "s" },
        );
    }
    if files == 0 || summary.has_failures() {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// The failure for an export error: bad input is a usage error (2), storage
/// a failure (1) with advice for a full or read-only disk.
fn failure(error: &ExportError) -> Failure {
    if error.is_usage() {
        return Failure::usage(error.to_string());
    }
    if let ExportError::Write { path, source } = error
        && let Some(fault) = StorageFault::of(source.kind())
    {
        return Failure::failed(fault.advice(path, "--out", &error.to_string()));
    }
    Failure::failed(error.to_string())
}
