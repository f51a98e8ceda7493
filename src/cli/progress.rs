//! The engine's progress on a terminal: a bar of jobs with its ETA and a line
//! of bars written, requests and request rate. Hidden when stderr is not a
//! terminal or with `--quiet`; log lines never tear it (see `output`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use finpipe::engine::{JobOutcome, Reporter, describe};
use finpipe::jobs::Job;
use finpipe::polygon::Client;
use indicatif::{ProgressBar, ProgressStyle};

use super::output;

/// Progress bars fed by engine events.
pub(super) struct Bars {
    jobs: ProgressBar,
    line: ProgressBar,
    client: Client,
    started: Instant,
    bars: AtomicU64,
    rows_new: AtomicU64,
    failed: AtomicU64,
}

impl Bars {
    pub(super) fn new(client: Client, quiet: bool) -> Self {
        let (jobs, line) = if quiet || !output::interactive() {
            (ProgressBar::hidden(), ProgressBar::hidden())
        } else {
            let jobs = output::add_bar(ProgressBar::new(0));
            jobs.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:32}] {pos}/{len} jobs  {elapsed} elapsed, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            jobs.set_prefix("backfill");
            let line = output::add_bar(ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("{prefix:>8} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_prefix("");
            jobs.enable_steady_tick(Duration::from_millis(250));
            (jobs, line)
        };
        Self {
            jobs,
            line,
            client,
            started: Instant::now(),
            bars: AtomicU64::new(0),
            rows_new: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn refresh(&self) {
        let requests = self.client.stats().requests();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        self.line.set_message(format!(
            "bars {} ({} new) · requests {requests} ({:.1}/s) · failed {}",
            self.bars.load(Ordering::Relaxed),
            self.rows_new.load(Ordering::Relaxed),
            requests as f64 / seconds,
            self.failed.load(Ordering::Relaxed),
        ));
    }

    pub(super) fn finish(&self) {
        self.jobs.finish_and_clear();
        self.line.finish_and_clear();
    }
}

impl Reporter for Bars {
    fn run_started(&self, queued: u64) {
        self.jobs.set_length(queued);
        self.refresh();
    }

    fn page_stored(&self, _job: &Job, bars: u64, rows_new: u64) {
        self.bars.fetch_add(bars, Ordering::Relaxed);
        self.rows_new.fetch_add(rows_new, Ordering::Relaxed);
        self.refresh();
    }

    fn job_finished(&self, job: &Job, outcome: &JobOutcome) {
        match outcome {
            JobOutcome::Done { rows_new } => {
                self.jobs.inc(1);
                tracing::info!("done {} ({rows_new} new bars)", describe(job));
            }
            JobOutcome::Failed {
                error,
                retry: false,
            } => {
                self.jobs.inc(1);
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("failed {}: {error}", describe(job));
            }
            JobOutcome::Failed { error, retry: true } => {
                tracing::warn!("will retry {}: {error}", describe(job));
            }
            JobOutcome::Released | JobOutcome::Lost => {}
        }
        self.refresh();
    }
}
