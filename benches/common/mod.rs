//! What both benchmarks share: running finpipe as a child process and
//! reading its own CPU time and peak RSS, and naming the output's file system.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

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
            rss_mb: usage.ru_maxrss as f64 / 1024.0,
        },
    )
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
