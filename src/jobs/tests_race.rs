//! The claim race: two connections to one file, each on its own thread as
//! two runner processes would be, drain 2,000 jobs. No job may be claimed
//! twice and every job must be claimed. Also: runners opening one new file
//! at the same moment.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;

use chrono::NaiveDate;

use super::*;

const JOBS: usize = 2_000;

/// Retries `op` while the table reports SQLITE_BUSY (it should not, with a
/// 10 s busy timeout, but a busy answer is retryable by contract).
fn retry_busy<T>(mut op: impl FnMut() -> Result<T>) -> T {
    loop {
        match op() {
            Ok(value) => return value,
            Err(err) if err.is_busy() => thread::yield_now(),
            Err(err) => panic!("{err}"),
        }
    }
}

fn drain(path: PathBuf, owner: &'static str, start: Arc<Barrier>) -> Vec<i64> {
    let mut table = JobTable::open(&path).unwrap();
    start.wait();
    let mut claimed = Vec::new();
    let now = 1_000;
    while let Some(job) = retry_busy(|| table.claim(owner, now, 3_600_000)) {
        assert_eq!(job.owner.as_deref(), Some(owner));
        assert_eq!(job.attempts, 1, "job {} claimed before", job.id);
        let completed = retry_busy(|| table.complete(job.id, owner, 1, now));
        assert!(completed, "{owner} lost job {}", job.id);
        claimed.push(job.id);
    }
    claimed
}

#[test]
fn two_connections_racing_never_claim_a_job_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("finpipe.db");
    let mut table = JobTable::open(&path).unwrap();
    let day0 = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| NewJob {
            kind: JobKind::Rest,
            ticker: Ticker::new(format!("T{i}")).unwrap(),
            timeframe: Timeframe::MINUTE,
            derived: Vec::new(),
            basis: Basis::Unadjusted,
            range: DateRange::day(day0),
        })
        .collect();
    assert_eq!(table.insert(&jobs, 0).unwrap(), JOBS);

    let start = Arc::new(Barrier::new(2));
    let runners: Vec<_> = ["runner-a", "runner-b"]
        .into_iter()
        .map(|owner| {
            let (path, start) = (path.clone(), Arc::clone(&start));
            thread::spawn(move || drain(path, owner, start))
        })
        .collect();
    let results: Vec<Vec<i64>> = runners.into_iter().map(|r| r.join().unwrap()).collect();

    let mut seen = HashSet::new();
    for id in results.iter().flatten() {
        assert!(seen.insert(*id), "job {id} was claimed twice");
    }
    let all: HashSet<i64> = table
        .list(None, JOBS + 10)
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(all.len(), JOBS);
    assert_eq!(seen, all, "every job claimed");
    let counts = table.counts().unwrap();
    assert_eq!(counts.done, JOBS);
    assert_eq!(counts.total(), JOBS);
    for job in table.list(None, JOBS).unwrap() {
        assert_eq!((job.attempts, job.requests), (1, 1));
    }
}

#[test]
fn runners_opening_a_new_file_at_once_all_migrate_it_safely() {
    // Switching a new file to WAL answers SQLITE_BUSY without waiting when
    // another connection is doing the same; `open` must absorb that. Without
    // the retry in `schema::set_wal`, one of 20 rounds failed in each of 10
    // measured runs.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("fresh-{round}")).join("finpipe.db");
        let start = Arc::new(Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    JobTable::open(&path).unwrap().counts().unwrap()
                })
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().unwrap(), StateCounts::default());
        }
        let table = JobTable::open(&path).unwrap();
        let version: i64 = table
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::known_version());
    }
}
