//! The run history the monitoring page reads: every `backfill`, `update`,
//! `run` and `run-once` records one row in the job table with what its
//! summary line said and the exit code it returned; a job that failed for
//! good carries the typed reason of its failure.

use finpipe::jobs::{FailReason, JobState, JobTable, RunRecord};
use finpipe::simulator::{Fault, FaultKind};

use crate::common::{Run, Workspace, simulator};

const DAYS: [&str; 6] = [
    "--timeframes",
    "1d",
    "--start",
    "2024-11-18",
    "--end",
    "2024-11-22",
];

/// The job table of the workspace's default library.
fn table(ws: &Workspace) -> JobTable {
    JobTable::open(ws.join("data/.finpipe/finpipe.db")).unwrap()
}

/// A number of the run's summary line
/// (`finpipe: jobs done=1 failed=0 retried=0 bars_new=5 requests=1 …`).
fn summary(run: &Run, name: &str) -> u64 {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("finpipe: jobs "))
        .unwrap_or_else(|| panic!("no summary line: {run:?}"));
    let value = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"));
    value.parse().unwrap()
}

/// Checks `record` against the summary line of `run`, which returned `code`.
fn assert_recorded(record: &RunRecord, command: &str, run: &Run) {
    assert_eq!(record.command, command, "{record:?}");
    assert_eq!(record.exit_code, Some(run.code), "{record:?} {run:?}");
    assert_eq!(record.jobs_done, summary(run, "done"), "{record:?}");
    assert_eq!(record.jobs_failed, summary(run, "failed"), "{record:?}");
    assert_eq!(record.bars, summary(run, "bars_new"), "{record:?}");
    assert_eq!(record.requests, summary(run, "requests"), "{record:?}");
    let ended = record.ended_at.expect("ended");
    assert!(record.started_at <= ended, "{record:?}");
    assert_eq!(record.rate_limit.as_deref(), Some("100/s"), "as configured");
    let parts: Vec<&str> = record.owner.split(':').collect();
    assert_eq!(parts.len(), 3, "host:pid:ms, {record:?}");
    assert!(parts[1].parse::<u32>().is_ok() && parts[2].parse::<i64>().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_update_and_run_record_their_runs_with_what_they_did() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("POLYGON_RATE_LIMIT", "100/s");
    let backfill = ws
        .run(&[&["backfill", "AAPL", "MSFT"][..], &DAYS].concat())
        .await;
    assert_eq!(backfill.code, 0, "{backfill:?}");
    assert!(summary(&backfill, "bars_new") > 0 && summary(&backfill, "requests") > 0);
    // A dry run runs nothing, so records nothing.
    let dry = ws
        .run(&[&["backfill", "AAPL", "--dry-run"][..], &DAYS].concat())
        .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let update = ws.run(&["update"]).await;
    assert_eq!(update.code, 0, "{update:?}");
    assert!(summary(&update, "bars_new") > 0, "{update:?}");
    // Nothing left to do: recorded all the same.
    let idle = ws.run(&["run"]).await;
    assert_eq!(idle.code, 0, "{idle:?}");
    assert_eq!(summary(&idle, "done"), 0, "{idle:?}");

    let runs = table(&ws).runs(10).unwrap();
    let commands: Vec<&str> = runs.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["run", "update", "backfill"], "newest first");
    assert_recorded(&runs[2], "backfill", &backfill);
    assert_recorded(&runs[1], "update", &update);
    assert_recorded(&runs[0], "run", &idle);
    assert!(runs[2].ended_at <= Some(runs[1].started_at));
    assert!(runs.iter().all(|r| r.exit_code == Some(0)));
    assert!(
        runs.iter().all(|r| r.rate_limited == 0),
        "no answer of 429 in a clean backfill: {runs:#?}"
    );
    assert_eq!(table(&ws).rate_limited_total().unwrap(), 0);

    // Totals sum what the jobs did: the backfill's and the update's bars.
    let totals = table(&ws).totals().unwrap();
    assert_eq!(
        totals.rows,
        summary(&backfill, "bars_new") + summary(&update, "bars_new")
    );
    assert!(totals.requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_carry_typed_reasons_and_the_run_its_exit_code() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim)
        .env("POLYGON_RATE_LIMIT", "100/s")
        .env("FINPIPE_RETRIES", "1");
    sim.inject(Fault::next(FaultKind::Status(403), 1000).on("/v2/aggs/ticker/NVDA/"));
    sim.inject(Fault::next(FaultKind::ServerError, 1000).on("/v2/aggs/ticker/MSFT/"));
    sim.inject(
        Fault::next(
            FaultKind::TooManyRequests {
                retry_after: Some(0),
            },
            1000,
        )
        .on("/v2/aggs/ticker/AMZN/"),
    );
    let run = ws.run(&[&["run-once", "NVDA"][..], &DAYS].concat()).await;
    assert_eq!(run.code, 1, "{run:?}");
    let backfill = ws
        .run(&[&["backfill", "AAPL", "MSFT", "AMZN"][..], &DAYS].concat())
        .await;
    assert_eq!(backfill.code, 1, "{backfill:?}");
    assert!(backfill.stdout.contains("done=1 failed=2"), "{backfill:?}");

    let table = table(&ws);
    let runs = table.runs(10).unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_recorded(&runs[0], "backfill", &backfill);
    assert_recorded(&runs[1], "run-once", &run);
    assert_eq!((runs[1].exit_code, runs[1].jobs_failed), (Some(1), 1));
    // AMZN's 429 storm is counted on the backfill's row, NVDA's 403 is none.
    assert!(runs[0].rate_limited > 0, "{runs:#?}");
    assert_eq!(runs[1].rate_limited, 0, "{runs:#?}");
    assert_eq!(table.rate_limited_total().unwrap(), runs[0].rate_limited);

    let mut reasons: Vec<(String, Option<FailReason>)> = table
        .list(Some(JobState::Failed), 10)
        .unwrap()
        .into_iter()
        .map(|job| (job.ticker.to_string(), job.fail_reason))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("AMZN".to_owned(), Some(FailReason::RateLimited)),
            ("MSFT".to_owned(), Some(FailReason::Network)),
            ("NVDA".to_owned(), Some(FailReason::NotEntitled)),
        ]
    );

    // Re-queued, they keep their reasons until they run again.
    sim.clear_faults();
    let retried = ws.run(&["jobs", "retry", "--failed"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    let pending = table.list(Some(JobState::Pending), 10).unwrap();
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|job| job.fail_reason.is_some()));
    let rerun = ws.run(&["run"]).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        table
            .list(None, 10)
            .unwrap()
            .iter()
            .all(|job| job.state == JobState::Done && job.fail_reason.is_none())
    );
    assert_eq!(table.runs(1).unwrap()[0].command, "run");
}
