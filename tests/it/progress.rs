//! The progress display in a real terminal (issue 13, item 1): `finpipe`
//! runs under `script`, which gives it a pseudo-terminal, and the test reads
//! what was drawn. The bar carries the command's own label and an ETA, the
//! line says what the rate limiter waits for, its count of new bars is the
//! summary's, a run with nothing to do draws no full bar at 0/0, and Ctrl-C
//! typed into the terminal ends the run at once (exit 130).

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::common::{Workspace, simulator};

/// After the sessions of 2024-12-02 ended (21:00 ET): that day is complete.
const EVENING: &str = "2024-12-03T02:00:00Z";

/// `finpipe <args>` in `ws` under `script`, in a pseudo-terminal; `None`
/// when `script` (util-linux) is not installed.
fn in_terminal(ws: &Workspace, args: &[&str]) -> Option<Child> {
    let mut line = format!("'{}'", env!("CARGO_BIN_EXE_finpipe"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let spawned = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(ws.path())
        .env_clear()
        .envs(ws.env_vars())
        .env("TERM", "xterm")
        .env("FINPIPE_NOW", EVENING)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    match spawned {
        Ok(child) => Some(child),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "progress: `script` (util-linux) is needed for a pseudo-terminal"
            );
            eprintln!("progress: no `script` for a pseudo-terminal: skipped");
            None
        }
        Err(e) => panic!("cannot run script: {e}"),
    }
}

/// Reads the terminal until `done(text)` or `limit` passes; the text so far.
async fn read_until(
    child: &mut Child,
    text: &mut String,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    let stdout = child.stdout.as_mut().unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while !done(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stdout.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return,
            Ok(Ok(n)) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => panic!("reading the terminal: {e}"),
        }
    }
}

/// The last `bars N (M new)` drawn: M.
fn last_new_count(screen: &str) -> Option<u64> {
    let at = screen.rfind(" new) ")?;
    let open = screen[..at].rfind('(')?;
    screen[open + 1..at].trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bar_shows_the_command_the_limiter_and_an_eta_and_ctrl_c_ends_it() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("FINPIPE_NOW", EVENING);
    let backfill = ws
        .run_at(
            Some(EVENING),
            &[
                "backfill",
                "AAPL",
                "MSFT",
                "NVDA",
                "--timeframes",
                "1h",
                "--start",
                "2024-11-25",
                "--end",
                "2024-11-27",
            ],
        )
        .await;
    assert_eq!(backfill.code, 0, "{backfill:?}");
    // One request a minute: the first series is updated at once, the other
    // two wait for the limiter.
    let Some(mut child) = in_terminal(&ws, &["--rate-limit", "1/min", "update"]) else {
        return;
    };
    let mut screen = String::new();
    read_until(&mut child, &mut screen, Duration::from_secs(30), |s| {
        s.contains("waiting for the rate limit: 1/min, next request in")
    })
    .await;
    assert!(
        screen.contains("waiting for the rate limit: 1/min, next request in"),
        "{screen}"
    );
    assert!(screen.contains("  update ["), "labelled update: {screen}");
    assert!(!screen.contains("backfill ["), "{screen}");
    assert!(screen.contains("/3 jobs"), "{screen}");
    // Two more requests at one a minute: about two minutes.
    assert!(
        screen.contains("ETA 2m 0") || screen.contains("ETA 1m 5"),
        "an ETA from the requests left and the limit: {screen}"
    );
    let sent = sim.requests().len();
    // Ctrl-C, typed into the terminal.
    let typed = Instant::now();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"\x03").await.unwrap();
    stdin.flush().await.unwrap();
    read_until(&mut child, &mut screen, Duration::from_secs(10), |s| {
        s.contains("finpipe: jobs done=")
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("finpipe ends within seconds of Ctrl-C")
        .unwrap();
    assert!(
        typed.elapsed() < Duration::from_secs(5),
        "{:?}",
        typed.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{screen}");
    assert_eq!(sim.requests().len(), sent, "no request after Ctrl-C");
    let summary = screen
        .lines()
        .find_map(|l| l.split("bars_new=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no summary: {screen}"));
    assert!(summary > 0);
    assert_eq!(
        last_new_count(&screen),
        Some(summary),
        "the bar's new bars are the summary's: {screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_nothing_to_do_draws_no_full_bar() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim).env("FINPIPE_NOW", EVENING);
    let backfill = ws
        .run(&[
            "backfill",
            "AAPL",
            "--timeframes",
            "1h",
            "--start",
            "2024-11-25",
        ])
        .await;
    assert_eq!(backfill.code, 0, "{backfill:?}");
    let Some(mut child) = in_terminal(&ws, &["update"]) else {
        return;
    };
    let mut screen = String::new();
    read_until(&mut child, &mut screen, Duration::from_secs(30), |_| false).await;
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("finpipe: jobs done=0"), "{screen}");
    assert!(!screen.contains("0/0"), "{screen}");
    assert!(!screen.contains("jobs  "), "no bar at all: {screen}");
}
