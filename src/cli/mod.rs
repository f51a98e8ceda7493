//! The command line: clap definitions, dispatch, and the mapping of outcomes
//! to exit codes. Everything the user sees is printed from here (and its
//! submodules); the library never prints.

/// `println!` for command output: a closed stdout (a pipe to `head`) ends
/// the command quietly instead of panicking. Every line the commands print
/// goes through it.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` for messages: a closed stderr loses them instead of
/// panicking (nothing else can be told).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod backfill;
mod config_cmd;
#[cfg(feature = "simulator")]
mod demo;
mod discover;
mod export;
mod output;
mod progress;
#[cfg(feature = "simulator")]
mod simulator;
mod sources;
mod status;
mod ui;
mod update;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use finpipe::clock::{Clock, NOW_VAR};
use finpipe::config::{API_KEY_VARS, Config, Environment, Overrides, Secret};
use finpipe::flatfiles::{FlatFiles, S3Settings};
use finpipe::jobs::postgres::PgRate;
use finpipe::jobs::{DbLocation, ErrorClass};
use finpipe::polygon::{ApiError, Client, ClientOptions, RetryPolicy, SharedRate};

/// Writes command output to stdout. When stdout is closed (the reader of a
/// pipe went away, as `head` does), the command ends at once with exit 0 and
/// no message, as Unix tools do: nobody is left to read the rest. Any other
/// write error is reported on stderr and exits 1.
#[allow(clippy::exit)] // the binary's edge: the rest of the output has no reader
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        output::error(&format!("cannot write the output: {e}"));
        std::process::exit(Exit::Failed as i32);
    }
}

/// Writes a message to stderr; a write error is ignored (where else would
/// it be reported?).
pub(crate) fn write_stderr(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(text).and_then(|()| err.flush());
}

/// Exit codes, the same for every command (README "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// All work done.
    Ok = 0,
    /// Some work failed for good, or `verify` found problems.
    Failed = 1,
    /// The command or configuration must change (usage, bad input, missing or rejected key).
    Usage = 2,
    /// Another run holds the lock.
    Locked = 3,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

/// A failure to report: what to print and which code to exit with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Failed,
            message: message.into(),
        }
    }

    /// A job table's failure: exit 2 when its settings must change (a
    /// refused login, a database that does not exist), else 1.
    pub(crate) fn of_table(class: ErrorClass, message: impl Into<String>) -> Self {
        if class == ErrorClass::Configuration {
            Self::usage(message)
        } else {
            Self::failed(message)
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        // A rejected key or a malformed URL is the configuration's (2); an
        // unreachable server may be the network's (1).
        let exit = if error.is_usage() {
            Exit::Usage
        } else {
            Exit::Failed
        };
        Self {
            exit,
            message: error.to_string(),
        }
    }
}

/// The examples after `--help`; `finpipe demo` leads them when the simulator
/// is built in (the `simulator` feature).
macro_rules! examples {
    ($($demo:literal)?) => {
        concat!(
            "Examples:\n",
            $($demo,)?
            "  finpipe discover etf --limit 500              # writes universe/etf_<YYYYMMDD>.json
  finpipe discover options --underlying AAPL
  finpipe backfill universe/etf_20241201.json --timeframes 1m,1d --start 2024-01-01
  finpipe run-once AAPL --timeframes 1h,1d --start 2024-11-01
  finpipe status
  finpipe config                                # effective settings and where they came from

Exit codes: 0 all done, 1 some work failed, 2 usage or configuration error, 3 another run holds the lock, 130 interrupted."
        )
    };
}

#[cfg(feature = "simulator")]
const EXAMPLES: &str = examples!(
    "  finpipe demo                                  # everything offline, against the built-in simulator\n"
);
#[cfg(not(feature = "simulator"))]
const EXAMPLES: &str = examples!();

/// Builds and keeps up to date a local library of historical market bars from
/// Polygon.io / Massive.
#[derive(Debug, Parser)]
#[command(name = "finpipe", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Settings shared by every command (README "Configuration").
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Polygon/Massive API key [env: MASSIVE_API_KEY, POLYGON_API_KEY]
    #[arg(long, global = true, value_name = "KEY", help_heading = "Connection")]
    api_key: Option<String>,
    /// REST base URL [env: MASSIVE_API_BASE_URL; default https://api.massive.com]
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection")]
    api_url: Option<String>,
    /// Requests allowed: 5 (a minute), 5/min, 100/s, unlimited [env: POLYGON_RATE_LIMIT; default 5]
    #[arg(long, global = true, value_name = "RATE", help_heading = "Connection")]
    rate_limit: Option<String>,
    /// Time allowed for one request, body included: 60s, 500ms [env: FINPIPE_TIMEOUT; default 60s]
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        help_heading = "Connection"
    )]
    timeout: Option<String>,
    /// Retries after a 5xx, a timeout or a dropped connection [env: FINPIPE_RETRIES; default 5]
    #[arg(long, global = true, value_name = "N", help_heading = "Connection")]
    retries: Option<String>,
    /// First retry delay, doubled on each retry [env: FINPIPE_RETRY_BASE; default 1s]
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        help_heading = "Connection"
    )]
    retry_base: Option<String>,
    /// Flat-file S3 access key [env: MASSIVE_S3_ACCESS_KEY, POLYGON_S3_ACCESS_KEY]
    #[arg(long, global = true, value_name = "KEY", help_heading = "Flat files")]
    s3_access_key: Option<String>,
    /// Flat-file S3 secret key [env: MASSIVE_S3_SECRET_KEY, POLYGON_S3_SECRET_KEY]
    #[arg(
        long,
        global = true,
        value_name = "SECRET",
        help_heading = "Flat files"
    )]
    s3_secret_key: Option<String>,
    /// Flat-file S3 endpoint [env: MASSIVE_S3_ENDPOINT; default https://files.massive.com]
    #[arg(long, global = true, value_name = "URL", help_heading = "Flat files")]
    flatfiles_url: Option<String>,
    /// Requests in flight at once [env: FINPIPE_CONCURRENCY, WORKER_CONCURRENCY; default 8]
    #[arg(long, global = true, value_name = "N", help_heading = "Library")]
    concurrency: Option<String>,
    /// The library's root directory [env: FINPIPE_DATA_DIR; default data]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Library")]
    data_dir: Option<PathBuf>,
    /// The job table: a SQLite file, or a postgres://user:password@host:5432/db URL shared by
    /// runners on several machines [env: FINPIPE_DB; default <data-dir>/.finpipe/finpipe.db]
    #[arg(long, global = true, value_name = "FILE|URL", help_heading = "Library")]
    db: Option<PathBuf>,
    /// Local scratch directory of an s3:// library (prepared writes, flat-file staging)
    /// [env: FINPIPE_SCRATCH; default <system temp dir>/finpipe-scratch]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Library")]
    scratch: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace) [env: FINPIPE_LOG takes a filter]
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    verbose: u8,
    /// Only warnings, errors and the summary line
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Output"
    )]
    quiet: bool,
}

impl GlobalArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            api_key: self.api_key.clone(),
            api_url: self.api_url.clone(),
            rate_limit: self.rate_limit.clone(),
            timeout: self.timeout.clone(),
            retries: self.retries.clone(),
            retry_base: self.retry_base.clone(),
            s3_access_key: self.s3_access_key.clone(),
            s3_secret_key: self.s3_secret_key.clone(),
            flatfiles_url: self.flatfiles_url.clone(),
            concurrency: self.concurrency.clone(),
            data_dir: self.data_dir.clone(),
            db: self.db.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find the tickers of a category and write a universe file
    Discover(discover::DiscoverArgs),
    /// Plan and run: fetch the bars of a universe into the Parquet library
    Backfill(backfill::BackfillArgs),
    /// Put the work for a universe in the job table (idempotent)
    Plan(backfill::PlanArgs),
    /// Bring every series of the library (or of universes) up to the last complete day: for cron
    Update(update::UpdateArgs),
    /// Check the library (schema, order, OHLC, missing trading days); --fix fetches the holes
    Verify(verify::VerifyArgs),
    /// Rebuild the job table's coverage from the library's files (after a lost or new job table)
    Reindex(verify::ReindexArgs),
    /// Run the jobs in the table
    Run(backfill::RunCmdArgs),
    /// Backfill one ticker, without a universe file
    RunOnce(backfill::RunOnceArgs),
    /// Jobs per state, failed jobs, and the library's coverage per ticker and timeframe
    Status(status::StatusArgs),
    /// List, retry or clear jobs
    Jobs(status::JobsArgs),
    /// Write one timeframe of the library as CSV, gzip CSV or Parquet files (finpipe, zipline or qlib layout)
    Export(export::ExportArgs),
    /// Serve the monitoring page (jobs, rates, runners, failures, coverage, runs) and /metrics; read-only
    Ui(ui::UiArgs),
    /// Show the effective settings and where each came from (secrets masked)
    #[command(
        after_help = "Examples:\n  finpipe config\n  finpipe --rate-limit 100/s --data-dir /srv/bars config"
    )]
    Config,
    /// Run finpipe end to end against the built-in simulator: no key, no network
    #[cfg(feature = "simulator")]
    Demo(demo::DemoArgs),
    /// Serve the built-in Polygon simulator on loopback (for trying finpipe and for benchmarks)
    #[cfg(feature = "simulator")]
    Simulator(simulator::SimulatorArgs),
    /// Print a shell completion script: finpipe completions bash > /etc/bash_completion.d/finpipe
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const COMPLETION_EXAMPLES: &str = "\
Examples:
  finpipe completions bash > ~/.local/share/bash-completion/completions/finpipe
  finpipe completions zsh > ~/.zfunc/_finpipe
  finpipe completions fish > ~/.config/fish/completions/finpipe.fish";

/// What every command gets: settings, the clock, output preferences.
pub(crate) struct Context {
    pub config: Config,
    pub env: Environment,
    pub clock: Clock,
    pub quiet: bool,
    /// `--scratch`, if given.
    pub scratch: Option<PathBuf>,
}

impl Context {
    /// The API key, or a usage failure naming where to put one.
    pub(crate) fn api_key(&self) -> Result<Secret, Failure> {
        self.config.api_key.value.clone().ok_or_else(|| {
            Failure::usage(format!(
                "no API key: set {} (environment or a .env file in the working directory), or pass --api-key",
                API_KEY_VARS.join(" or ")
            ))
        })
    }

    /// A REST client from the effective settings.
    /// The flat-file client, or `None` without S3 keys (REST only).
    pub(crate) fn flat_files(&self) -> Result<Option<FlatFiles>, Failure> {
        S3Settings::from_config(&self.config)
            .map(|settings| {
                FlatFiles::new(settings).map_err(|e| Failure::usage(format!("flat files: {e}")))
            })
            .transpose()
    }

    pub(crate) fn client(&self) -> Result<Client, Failure> {
        self.client_for(self.config.api_url.value.clone(), self.api_key()?)
    }

    /// A REST client for `base_url` with `key`, other settings as configured.
    pub(crate) fn client_for(&self, base_url: String, api_key: Secret) -> Result<Client, Failure> {
        let retry = RetryPolicy {
            max_retries: self.config.retries.value,
            base: self.config.retry_base.value,
            ..RetryPolicy::default()
        };
        Ok(Client::new(ClientOptions {
            base_url,
            api_key,
            rate_limit: self.config.rate_limit.value,
            timeout: self.config.timeout.value,
            retry,
            shared_rate: self.shared_rate()?,
        })?)
    }

    /// With a PostgreSQL job table, the rate limit every runner of that table
    /// shares (kept in its database); with SQLite, none: the process's own
    /// limiter is the only one.
    fn shared_rate(&self) -> Result<Option<Arc<dyn SharedRate>>, Failure> {
        let DbLocation::Postgres(url) = &self.config.db.value else {
            return Ok(None);
        };
        let rate = PgRate::open(url)
            .map_err(|e| Failure::of_table(e.class(), format!("the shared rate limit: {e}")))?;
        Ok(Some(Arc::new(rate)))
    }
}

/// Parses, runs, and turns the outcome into an exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.global.verbose, cli.global.quiet);
    let code = match run(cli) {
        Ok(exit) => exit,
        Err(failure) => {
            output::error(&failure.message);
            failure.exit
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli) -> Result<Exit, Failure> {
    let env = Environment::load(Path::new(".")).map_err(|e| Failure::usage(e.to_string()))?;
    let config = Config::resolve(&cli.global.overrides(), &env)
        .map_err(|e| Failure::usage(e.to_string()))?;
    for url in &config.credentials_dropped {
        output::warn(&format!(
            "{url} carries a user name or password: finpipe never sends it (the API key \
             and the S3 keys authenticate), so it is ignored and never printed"
        ));
    }
    let clock = match env.var(NOW_VAR) {
        Some(text) => Clock::parse(&text).map_err(Failure::usage)?,
        None => Clock::system(),
    };
    let context = Context {
        config,
        env,
        clock,
        quiet: cli.global.quiet,
        scratch: cli.global.scratch.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    progress::set_label(label(&cli.command));
    runtime.block_on(async move {
        match cli.command {
            Command::Discover(args) => interruptible(discover::run(&context, args)).await,
            Command::Backfill(args) => backfill::run_backfill(&context, args).await,
            Command::Plan(args) => backfill::run_plan(&context, args).await,
            Command::Update(args) => update::run(&context, args).await,
            Command::Verify(args) => verify::run(&context, args).await,
            Command::Reindex(args) => verify::run_reindex(&context, args).await,
            Command::Run(args) => backfill::run_queue(&context, args).await,
            Command::RunOnce(args) => backfill::run_once(&context, args).await,
            Command::Status(args) => status::run_status(&context, args).await,
            Command::Jobs(args) => status::run_jobs(&context, args).await,
            Command::Export(args) => export::run(&context, args).await,
            Command::Ui(args) => ui::run(&context, args).await,
            Command::Config => config_cmd::run(&context),
            #[cfg(feature = "simulator")]
            Command::Demo(args) => interruptible(demo::run(&context, args)).await,
            #[cfg(feature = "simulator")]
            Command::Simulator(args) => simulator::run(&context, args).await,
            Command::Completions { shell } => {
                use clap::CommandFactory;
                // Into memory first: clap_complete panics on a write error.
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "finpipe", &mut script);
                write_stdout(format_args!("{}", String::from_utf8_lossy(&script)));
                Ok(Exit::Ok)
            }
        }
    })
}

/// The command's name, for its progress bar.
fn label(command: &Command) -> &'static str {
    match command {
        Command::Backfill(_) => "backfill",
        Command::Update(_) => "update",
        Command::Verify(_) => "verify",
        Command::RunOnce(_) => "run-once",
        #[cfg(feature = "simulator")]
        Command::Demo(_) => "demo",
        _ => "run",
    }
}

/// Runs `work` until it finishes or Ctrl-C arrives (exit 130; writes are
/// atomic, so nothing half-written is left behind).
async fn interruptible(work: impl Future<Output = Result<Exit, Failure>>) -> Result<Exit, Failure> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => {
            output::error("interrupted; nothing partial was written");
            Ok(Exit::Interrupted)
        }
    }
}
