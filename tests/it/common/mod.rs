//! Shared test helpers: a simulator on loopback, a temporary working
//! directory, and the real `finpipe` binary run against them.

pub mod flatfiles;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::NaiveDate;
use finpipe::simulator::{SimConfig, Simulator};

use tempfile::TempDir;

/// The date every test's simulator calls "today", and the pinned clock.
pub const TODAY: &str = "2024-12-02";
pub const NOW: &str = "2024-12-02T23:00:00Z";

pub fn today() -> NaiveDate {
    TODAY.parse().unwrap()
}

/// A simulator with the default world.
pub async fn simulator() -> Simulator {
    simulator_with(|_| {}).await
}

/// A simulator configured by `adjust`.
pub async fn simulator_with(adjust: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut config = SimConfig::new(today());
    adjust(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Both streams, for "never appears anywhere" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A temporary working directory in which the binary runs with a clean
/// environment (no inherited keys or settings).
pub struct Workspace {
    pub dir: TempDir,
    env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: vec![("FINPIPE_NOW".into(), NOW.into())],
        }
    }

    /// A workspace whose environment points finpipe at `sim`, with fast retries
    /// and no client-side limit.
    pub fn for_sim(sim: &Simulator) -> Self {
        Self::new()
            .env("MASSIVE_API_BASE_URL", &sim.base_url())
            .env("MASSIVE_API_KEY", sim.api_key())
            .env("POLYGON_RATE_LIMIT", "unlimited")
            .env("FINPIPE_RETRY_BASE", "10ms")
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
        self
    }

    /// Leaves `name` out of the environment from now on.
    pub fn unset(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    /// The environment the binary gets.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `finpipe <args>` in the workspace and waits for it.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_at(None, args).await
    }

    /// Runs `finpipe <args>` with the clock at `now` (RFC 3339) when given.
    pub async fn run_at(&self, now: Option<&str>, args: &[&str]) -> Run {
        let output = self
            .command(now, args)
            .output()
            .await
            .expect("finpipe runs");
        Run::from_output(output)
    }

    /// The command `run_at` runs, to spawn it instead.
    pub fn command(&self, now: Option<&str>, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_finpipe"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(now) = now {
            cmd.env("FINPIPE_NOW", now);
        }
        cmd
    }
}

/// The largest number of `times` inside any half-open window of `window`.
pub fn max_in_window(times: &[std::time::Duration], window: std::time::Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

impl Workspace {
    /// Writes a universe file listing `tickers` and returns its relative path.
    pub fn universe(&self, name: &str, tickers: &[&str]) -> String {
        let path = format!("{name}.json");
        std::fs::write(self.join(&path), serde_json::to_vec(tickers).unwrap()).unwrap();
        path
    }

    /// The library under `data/` as `{(ticker, timeframe): bars}`, read back
    /// from the Parquet files.
    pub fn library(
        &self,
        dir: &str,
    ) -> std::collections::BTreeMap<(String, String), Vec<finpipe::model::Bar>> {
        use finpipe::model::Basis;
        let root = self.join(dir);
        let mut out = std::collections::BTreeMap::new();
        if !root.exists() {
            return out;
        }
        let basis = if dir.contains("adjusted") {
            Basis::Adjusted
        } else {
            Basis::Unadjusted
        };
        let store = finpipe::store::Store::open(&root, basis, "test").unwrap();
        for file in store.scan(None).unwrap() {
            let bars = store
                .read_period(&file.ticker, file.timeframe, &file.period)
                .unwrap();
            out.entry((file.ticker.to_string(), file.timeframe.to_string()))
                .or_insert_with(Vec::new)
                .extend(bars);
        }
        for bars in out.values_mut() {
            bars.sort_by_key(|b| b.timestamp);
        }
        out
    }
}

/// Aggregate requests in the simulator's log (range and grouped).
pub fn aggregate_requests(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.is_aggregates())
        .map(|r| format!("{}?{}", r.path, r.query))
        .collect()
}

/// What the simulator's REST answers for one ticker and timeframe over a date
/// range, as finpipe bars (unadjusted unless `adjusted`).
pub fn sim_bars(
    sim: &Simulator,
    ticker: &str,
    timeframe: &str,
    from: &str,
    to: &str,
    adjusted: bool,
) -> Vec<finpipe::model::Bar> {
    use finpipe::simulator::aggregate::{AggQuery, RangeBound, range_aggregates};
    let tf: finpipe::model::Timeframe = timeframe.parse().unwrap();
    let Some(info) = sim.market().reference().find(ticker) else {
        return Vec::new();
    };
    let query = AggQuery {
        multiplier: tf.multiplier,
        timespan: tf.timespan,
        from: RangeBound::Date(from.parse().unwrap()),
        to: RangeBound::Date(to.parse().unwrap()),
        adjusted,
        limit: usize::MAX,
    };
    range_aggregates(sim.market(), info, &query)
        .bars
        .iter()
        .map(|b| finpipe::model::Bar {
            timestamp: b.t,
            open: b.o,
            high: b.h,
            low: b.l,
            close: b.c,
            volume: b.v,
            vwap: b.vw,
            transactions: b.n,
        })
        .collect()
}

/// Temporary files (`*.tmp-*`) anywhere below `dir`.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if path.to_string_lossy().contains(finpipe::fsutil::TMP_MARKER) {
            found.push(path);
        }
    }
    found
}
