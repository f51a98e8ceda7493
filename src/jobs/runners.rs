//! The runners working a job table, as the table shows them: one per owner
//! of running jobs. An owner names one process (`host:pid:start_ms`, see
//! [`owner_of_this_process`]), so on several machines draining one table,
//! `status` and the monitoring page can say which machine holds what and
//! when it last renewed its leases.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Job;

/// The lease runners take on their jobs unless told otherwise (`--lease`);
/// they renew it every third of a lease.
pub const LEASE: Duration = Duration::from_secs(300);

/// [`LEASE`] in milliseconds, as the table stores times.
#[allow(clippy::cast_possible_truncation)] // 300 000 fits
pub const LEASE_MS: i64 = LEASE.as_millis() as i64;

/// How many of a runner's tickers [`runners`] keeps, for a glance.
const TICKERS_SHOWN: usize = 5;

/// One process holding running jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runner {
    /// The owner string its jobs carry.
    pub owner: String,
    /// The machine it runs on (the owner's first part).
    pub host: String,
    /// How many running jobs it holds.
    pub jobs: usize,
    /// When it last showed it was alive: its latest lease renewal or job
    /// update (Unix ms; runners renew every third of their lease).
    pub last_heartbeat: i64,
    /// When its latest lease ends (Unix ms): past that, its jobs go to the
    /// next runner that claims.
    pub lease_until: i64,
    /// Up to five of the tickers it works on, sorted.
    pub tickers: Vec<String>,
}

impl Runner {
    /// Whether every lease it holds has ended (the process is most likely
    /// gone; its jobs are free to be claimed again).
    pub fn expired(&self, now_ms: i64) -> bool {
        self.lease_until <= now_ms
    }
}

/// The runners holding `running` jobs, by owner.
pub fn runners(running: &[Job]) -> Vec<Runner> {
    let mut by_owner: BTreeMap<&str, Runner> = BTreeMap::new();
    for job in running {
        let owner = job.owner.as_deref().unwrap_or("?");
        let runner = by_owner.entry(owner).or_insert_with(|| Runner {
            owner: owner.to_owned(),
            host: host_of(owner).to_owned(),
            jobs: 0,
            last_heartbeat: i64::MIN,
            lease_until: i64::MIN,
            tickers: Vec::new(),
        });
        runner.jobs += 1;
        runner.last_heartbeat = runner.last_heartbeat.max(job.updated_at);
        runner.lease_until = runner.lease_until.max(job.available_at);
        let ticker = job.ticker.as_str();
        if runner.tickers.len() < TICKERS_SHOWN && !runner.tickers.iter().any(|t| t == ticker) {
            runner.tickers.push(ticker.to_owned());
        }
    }
    by_owner
        .into_values()
        .map(|mut runner| {
            runner.tickers.sort();
            runner
        })
        .collect()
}

/// The machine part of an owner string: everything before its last two
/// `:`-separated fields (pid and start), or the whole string otherwise.
fn host_of(owner: &str) -> &str {
    owner
        .rsplitn(3, ':')
        .nth(2)
        .filter(|host| !host.is_empty())
        .unwrap_or(owner)
}

/// The owner string for this process, started at `now_ms`:
/// `host:pid:start_ms`. Unique across machines and across restarts of one
/// pid.
pub fn owner_of_this_process(now_ms: i64) -> String {
    format!("{}:{}:{now_ms}", hostname(), std::process::id())
}

/// This machine's name: the kernel's (`/proc/sys/kernel/hostname`), else
/// `$HOSTNAME` (a shell variable, often not exported under cron), else
/// `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::tests::{jan, rest};
    use crate::jobs::{JobKind, JobState};

    fn running(id: i64, ticker: &str, owner: &str, updated_at: i64, lease_until: i64) -> Job {
        let new = rest(ticker, "1m", &[], jan());
        Job {
            id,
            kind: JobKind::Rest,
            ticker: new.ticker,
            timeframe: new.timeframe,
            derived: new.derived,
            basis: new.basis,
            range: new.range,
            state: JobState::Running,
            attempts: 1,
            last_error: None,
            fail_reason: None,
            available_at: lease_until,
            owner: Some(owner.to_owned()),
            progress_ts: None,
            rows: 0,
            requests: 0,
            created_at: 0,
            updated_at,
            finished_at: None,
        }
    }

    #[test]
    fn one_runner_per_owner_with_its_host_jobs_and_latest_heartbeat() {
        let a = "box-a.example:41:1700000000000";
        let b = "box-b:7:1700000000001";
        let jobs = [
            running(1, "MSFT", a, 1_000, 301_000),
            running(2, "AAPL", a, 5_000, 340_000),
            running(3, "AAPL", a, 2_000, 301_000),
            running(4, "IBM", b, 9_000, 309_000),
        ];
        let found = runners(&jobs);
        assert_eq!(found.len(), 2);
        let first = &found[0];
        assert_eq!(
            (first.owner.as_str(), first.host.as_str()),
            (a, "box-a.example")
        );
        assert_eq!(first.jobs, 3);
        assert_eq!(first.tickers, ["AAPL", "MSFT"], "sorted, once each");
        // The latest update (a renewal stamps it too), whatever the lease.
        assert_eq!(first.last_heartbeat, 5_000);
        assert_eq!(first.lease_until, 340_000);
        assert!(!first.expired(339_999));
        assert!(first.expired(340_000));
        assert_eq!((found[1].host.as_str(), found[1].jobs), ("box-b", 1));
        assert_eq!(found[1].last_heartbeat, 9_000);
    }

    #[test]
    fn owners_name_this_machine_and_process_and_odd_owners_are_their_own_host() {
        let owner = owner_of_this_process(42);
        assert!(
            owner.ends_with(&format!(":{}:42", std::process::id())),
            "{owner}"
        );
        assert_eq!(host_of(&owner), hostname());
        assert_eq!(host_of("no-colons"), "no-colons");
        assert_eq!(host_of(":1:2"), ":1:2");
    }
}
