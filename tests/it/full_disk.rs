//! A full disk under the library: the run stops at once with exit 1 and one
//! message naming the path and what to free, gives every job in flight back
//! (none failed, none left running), leaves no temporary file, and once space
//! is freed the same command finishes the library exactly as a clean run. A
//! read-only file system stops the run the same way, saying to remount it.
//!
//! The small full disk is a tmpfs mounted on the data directory, which needs
//! root. Without root the test says why and returns, except under `CI=true`,
//! where a skipped test would hide a regression: there it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Workspace, simulator};

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }
}

impl Tmpfs {
    /// Remounts with `options` (`ro`, `rw`, `size=2m`).
    fn remount(&self, options: &str) -> Result<(), String> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("mount -o remount,{options} failed"))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy: detach it now, the kernel frees it once unused.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Whether this test may mount a file system; otherwise why not (and under
/// `CI=true`, a failure instead of a skip).
fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let reason = "full_disk: needs root to mount a small tmpfs as the data directory";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{reason}; CI must run the tests as root"
    );
    eprintln!("{reason}: skipped");
    false
}

/// A tmpfs of `size` on `dir`; if it cannot be mounted, says why and gives
/// `None` (the test returns), except under `CI=true`, where it fails.
fn mount_or_skip(dir: &Path, size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, size) {
        Ok(disk) => Some(disk),
        Err(reason) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "full_disk: {reason}"
            );
            eprintln!("full_disk: {reason}: skipped");
            None
        }
    }
}

/// Fills the file system holding `dir` with `dir/filler` until it is full,
/// then gives back `spare` bytes.
fn fill(dir: &Path, spare: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(spare)).unwrap();
    path
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every file below `dir` whose name marks it temporary.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().contains(".tmp-") {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_run_gives_the_jobs_back_and_a_rerun_after_freeing_space_completes() {
    if !can_mount() {
        return;
    }
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT", "X:BTCUSD"]);
    // The job table lives beside the library, on a disk with room, so what
    // is tested is the library's disk filling up.
    let backfill = |data: &str, db: &str| -> Vec<String> {
        [
            "--data-dir",
            data,
            "--db",
            db,
            "backfill",
            &universe,
            "--timeframes",
            "1m,5m,1d",
            "--start",
            "2024-11-04",
            "--end",
            "2024-11-08",
        ]
        .map(str::to_owned)
        .to_vec()
    };

    let clean = ws
        .run(&strs(&backfill("clean", "clean-state/finpipe.db")))
        .await;
    assert_eq!(clean.code, 0, "{clean:?}");
    let want = ws.library("clean");
    assert!(want.len() >= 9, "{:?}", want.keys());

    let data = ws.join("data");
    let Some(disk) = mount_or_skip(&data, "1m") else {
        return;
    };
    let filler = fill(&data, 64 * 1024);
    let command = backfill("data", "state/finpipe.db");

    let full = ws.run(&strs(&command)).await;
    assert_eq!(full.code, 1, "a full disk is a storage failure: {full:?}");
    assert_eq!(
        full.stderr.matches("is full").count(),
        1,
        "one message: {}",
        full.stderr
    );
    let message = full.stderr.lines().find(|l| l.contains("is full")).unwrap();
    assert!(
        message.starts_with("error: the disk holding data/")
            && message.contains("is full: free space there and run the same command again"),
        "{message}"
    );
    assert_eq!(
        temporaries(&data),
        Vec::<PathBuf>::new(),
        "no temporary left"
    );
    let status = ws
        .run(&[
            "--data-dir",
            "data",
            "--db",
            "state/finpipe.db",
            "status",
            "--json",
        ])
        .await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let jobs = &status["jobs"];
    assert_eq!(jobs["running"], 0, "every job in flight given back: {jobs}");
    assert_eq!(jobs["failed"], 0, "no job failed for the disk: {jobs}");
    assert!(
        jobs["pending"].as_u64().unwrap() > 0,
        "jobs wait for the rerun: {jobs}"
    );

    std::fs::remove_file(&filler).unwrap();
    let rerun = ws.run(&strs(&command)).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("failed=0"), "{}", rerun.stdout);
    assert_eq!(temporaries(&data), Vec::<PathBuf>::new());
    let got = ws.library("data");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (series, bars) in &want {
        assert_eq!(&got[series], bars, "{series:?} row for row");
    }

    // A read-only file system stops the run the same way and says what to do.
    disk.remount("ro").unwrap();
    let mut later = command.clone();
    let (start, end) = (later.len() - 3, later.len() - 1);
    later[start] = "2024-11-11".to_owned();
    later[end] = "2024-11-12".to_owned();
    let read_only = ws.run(&strs(&later)).await;
    assert_eq!(read_only.code, 1, "{read_only:?}");
    let message = read_only
        .stderr
        .lines()
        .find(|l| l.contains("read-only"))
        .unwrap_or_else(|| panic!("{read_only:?}"));
    assert!(
        message.starts_with("error: the file system holding data")
            && message.contains("remount it read-write or choose another --data-dir"),
        "{message}"
    );
    assert_eq!(ws.library("data"), got, "nothing changed");
    drop(disk);
}

/// The disk under the job table fills up during a run: the run stops with
/// the summary line and one message naming the table's path and what to do
/// (not a bare "database or disk is full"), and after space is freed the
/// same command finishes the library.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_job_table_ends_the_run_with_its_summary_line() {
    if !can_mount() {
        return;
    }
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT", "NVDA", "TSLA", "X:BTCUSD"]);
    let state = ws.join("state");
    let Some(disk) = mount_or_skip(&state, "2m") else {
        return;
    };
    let common = ["--data-dir", "data", "--db", "state/finpipe.db"];
    let plan = ws
        .run(
            &[
                &common[..],
                &[
                    "plan",
                    &universe,
                    "--timeframes",
                    "1m,1d",
                    "--start",
                    "2024-09-02",
                    "--end",
                    "2024-11-08",
                ],
            ]
            .concat(),
        )
        .await;
    assert_eq!(plan.code, 0, "{plan:?}");
    // Room for the table's shared-memory index and a few pages of its log,
    // not for a run's worth of claims and completions.
    let filler = fill(&state, 40 * 1024);
    let run = [&common[..], &["run", "--concurrency", "2"]].concat();
    let full = ws.run(&run).await;
    assert_eq!(full.code, 1, "a full disk is a storage failure: {full:?}");
    assert!(
        full.stdout.contains("finpipe: jobs done="),
        "the run's summary line is printed: {full:?}"
    );
    let messages: Vec<&str> = full
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(messages.len(), 1, "one error message: {}", full.stderr);
    assert!(
        messages[0]
            .starts_with("error: the disk holding state/finpipe.db is full: free space there"),
        "{}",
        messages[0]
    );
    assert!(
        !full.stderr.contains("job table: job table"),
        "{}",
        full.stderr
    );

    std::fs::remove_file(&filler).unwrap();
    let rerun = ws.run(&run).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("failed=0"), "{}", rerun.stdout);
    let status = ws.run(&[&common[..], &["status", "--json"]].concat()).await;
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["jobs"]["pending"], 0, "{status}");
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
    drop(disk);
}
