//! What both benchmarks share: running finpipe as a child process and
//! reading its own CPU time and peak RSS, naming the output's file system,
//! and waiting out the file system's memory of the files a bench removed.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// What the kernel measured of a finished child.
pub struct Usage {
    /// CPU seconds in user mode.
    pub user: f64,
    /// CPU seconds in the kernel (file system, sockets, page faults).
    pub sys: f64,
    /// Peak resident set size, MB.
    pub rss_mb: f64,
}

impl Usage {
    /// User + system CPU seconds.
    pub fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

/// Runs `cmd` and returns its output and what it used.
pub fn run_measured(mut cmd: Command) -> (Output, Usage) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("finpipe starts");
    // Peak memory is read from the child's own /proc entry while it runs.
    // `ru_maxrss` cannot serve: the child is spawned with vfork semantics,
    // and on exec the kernel records the high-water mark of the memory it
    // left, which is this bench's (the simulator and its cached answers).
    let status_file = format!("/proc/{}/status", child.id());
    let peak = std::thread::spawn(move || {
        let mut peak_kb = 0u64;
        // Gone, or a zombie without memory lines: the child has exited.
        while let Some(kb) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|status| high_water_kb(&status))
        {
            peak_kb = peak_kb.max(kb);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak_kb
    });
    let mut err_pipe = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut stderr = Vec::new();
        let _ = err_pipe.read_to_end(&mut stderr);
        stderr
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("stdout");
    let stderr = stderr.join().expect("stderr reader");
    let peak_kb = peak.join().expect("memory watcher");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: wait4 only writes into the two values we pass; the child is
    // ours and not waited for elsewhere (`child` is forgotten below).
    let (status, usage) = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid, "wait4");
        (status, usage)
    };
    std::mem::forget(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        Output {
            status: ExitStatus::from_raw(status),
            stdout,
            stderr,
        },
        Usage {
            user: seconds(usage.ru_utime),
            sys: seconds(usage.ru_stime),
            // Never read (the child was gone before the first look): unknown.
            rss_mb: if peak_kb == 0 {
                f64::NAN
            } else {
                peak_kb as f64 / 1024.0
            },
        },
    )
}

/// `VmHWM` (peak resident set, kB) of a /proc status file.
fn high_water_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The file system type of `path` (`df --output=fstype`).
pub fn fs_type(path: &Path) -> String {
    Command::new("df")
        .args(["--output=fstype", path.to_str().unwrap_or(".")])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().nth(1).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned())
}

/// Touched whenever a bench has removed its outputs.
fn cleanup_marker() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-last-cleanup")
}

/// Records that a bench has just removed its outputs from `out`.
pub fn removed_outputs(out: &Path) {
    if !fs_type(out).starts_with("ext") {
        return;
    }
    if let Err(e) = std::fs::write(cleanup_marker(), "") {
        eprintln!("cannot write the cleanup marker: {e}");
    }
}

/// How long ext4 without a journal avoids reusing a deleted inode (its
/// `recently_deleted` check: 60 s, 300 s while the inode table block is dirty).
const INODE_RECENCY: Duration = Duration::from_secs(300);

/// Waits until the last bench removed its outputs [`INODE_RECENCY`] ago,
/// when the outputs go to an ext file system (unless `nowait_var` is set).
///
/// A bench creates thousands of inodes (a directory per ticker and timeframe,
/// a file per period) and removes them when it ends. Right after that, ext4
/// without a journal (this machine's root volume) checks and skips every
/// recently deleted inode on each allocation: a flat-file day's system time
/// grew from 1 s to 10 s over four back-to-back runs, and a backfill spent 15 %
/// of its CPU there. No nightly run sees that, so the benches wait it out.
pub fn settle(out: &Path, nowait_var: &str) {
    if !fs_type(out).starts_with("ext") || std::env::var_os(nowait_var).is_some() {
        return;
    }
    let since = std::fs::metadata(cleanup_marker())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let Some(wait) = since.and_then(|since| INODE_RECENCY.checked_sub(since)) else {
        return;
    };
    println!(
        "waiting {:.0} s: a bench removed its files {:.0} s ago, and ext4 without a journal skips \
         recently deleted inodes when it allocates new ones ({nowait_var}=1 skips the wait)",
        wait.as_secs_f64(),
        (INODE_RECENCY - wait).as_secs_f64()
    );
    std::thread::sleep(wait);
}
