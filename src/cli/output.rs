//! Terminal output: log lines, progress bars, errors. Bars and colours appear
//! only when stderr is a terminal; log lines go through the progress bars so
//! they never tear them.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The bars on screen, shared with the log writer.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| {
        let target = if io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// True when stderr is a terminal (bars and colours allowed).
pub(super) fn interactive() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up `tracing` for the chosen verbosity. `FINPIPE_LOG` (a filter such as
/// `finpipe=debug`) overrides it.
pub(super) fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "warn,finpipe=info",
        (false, 2) => "info,finpipe=debug",
        _ => "trace",
    };
    let filter = std::env::var("FINPIPE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarSafeStderr)
        .with_ansi(interactive())
        .with_target(verbose >= 2)
        .try_init();
}

/// Writes log lines above the progress bars.
#[derive(Clone, Copy)]
struct BarSafeStderr;

/// One log line, buffered, then printed in one piece with the bars suspended.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.0);
        bars().suspend(|| {
            let _ = io::stderr().write_all(&line);
        });
    }
}

impl<'a> MakeWriter<'a> for BarSafeStderr {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Prints an error for the user.
pub(super) fn error(message: &str) {
    bars().suspend(|| {
        if interactive() {
            errln!("\x1b[1;31merror:\x1b[0m {message}");
        } else {
            errln!("error: {message}");
        }
    });
}

/// Adds a bar to the screen's bars (drawn only on a terminal).
pub(super) fn add_bar(bar: ProgressBar) -> ProgressBar {
    bars().add(bar)
}

/// Prints a warning on stderr (kept by `--quiet`).
pub(super) fn warn(message: &str) {
    bars().suspend(|| errln!("warning: {message}"));
}

/// Prints a note (not an error) on stderr.
pub(super) fn note(message: &str) {
    bars().suspend(|| errln!("note: {message}"));
}

/// A spinner with a message, shown only on a terminal.
pub(super) fn spinner(quiet: bool, message: &str) -> ProgressBar {
    if quiet || !interactive() {
        return ProgressBar::hidden();
    }
    let bar = bars().add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
