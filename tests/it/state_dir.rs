//! finpipe's own state lives in `<data-dir>/.finpipe/`: the library root
//! holds ticker folders and nothing else, and an older library (job table,
//! lock and staging in the root) is moved there on its next command, once,
//! with a note, without losing its job table.

use std::path::Path;

use crate::common::{Workspace, aggregate_requests, simulator};

const NOTE: &str = "moved finpipe's state into";

/// The library root's entries other than `.finpipe`, each of which must be
/// a ticker folder holding only timeframe folders of `.parquet` files.
fn assert_only_ticker_folders(root: &Path) {
    let mut tickers = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".finpipe" {
            continue;
        }
        assert!(
            entry.file_type().unwrap().is_dir(),
            "{name}: only folders in the library root"
        );
        assert!(
            finpipe::store::ticker_from_dir(&name).is_some(),
            "{name}: not a ticker folder"
        );
        for tf in std::fs::read_dir(entry.path()).unwrap() {
            let tf = tf.unwrap();
            assert!(tf.file_type().unwrap().is_dir(), "{:?}", tf.path());
            for file in std::fs::read_dir(tf.path()).unwrap() {
                let path = file.unwrap().path();
                assert_eq!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("parquet"),
                    "{path:?}"
                );
            }
        }
        tickers += 1;
    }
    assert!(tickers > 0, "no ticker folder in {root:?}");
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Moves a library's state back to where finpipe kept it before the state
/// folder: the job table and its side files and lock into the root,
/// `staging/` to `.staging/`.
fn to_old_layout(root: &Path) {
    let state = root.join(".finpipe");
    for name in names(&state) {
        let to = if name == "staging" {
            root.join(".staging")
        } else {
            assert!(name.starts_with("finpipe.db"), "{name} in the state folder");
            root.join(&name)
        };
        std::fs::rename(state.join(&name), to).unwrap();
    }
    std::fs::remove_dir(&state).unwrap();
}

/// `status --json`'s done jobs: the job table's memory of the backfill.
async fn done_jobs(ws: &Workspace, extra: &[&str]) -> u64 {
    let run = ws.run(&[&["status", "--json"][..], extra].concat()).await;
    assert_eq!(run.code, 0, "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    status["jobs"]["done"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_and_the_demo_leave_only_ticker_folders_beside_the_state_folder() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "X:BTCUSD", "C:EURUSD", "I:SPX", "BRK.A"]);
    let args = [
        "backfill",
        &universe,
        "--timeframes",
        "1m,5m,1d",
        "--start",
        "2024-11-01",
        "--end",
        "2024-11-08",
    ];
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stderr.contains(NOTE),
        "nothing to move: {}",
        run.stderr
    );
    let root = ws.join("data");
    assert_only_ticker_folders(&root);
    let state = names(&root.join(".finpipe"));
    for expected in ["finpipe.db", "finpipe.db.lock"] {
        assert!(state.contains(&expected.to_owned()), "{state:?}");
    }
    assert!(
        run.stdout.contains("data/.finpipe/finpipe.db"),
        "the plan names the job table: {}",
        run.stdout
    );

    // An explicit job table stays where it is put; the root stays clean.
    let ws = ws.env("FINPIPE_DB", "jobs/table.db");
    let run = ws
        .run(&[&args[..], &["--data-dir", "other"]].concat())
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(ws.join("jobs/table.db").is_file() && ws.join("jobs/table.db.lock").is_file());
    assert_only_ticker_folders(&ws.join("other"));
    assert!(!ws.join("other/.finpipe/finpipe.db").exists());

    // The demo, whose flat-file jobs stage days in the state folder.
    let ws = Workspace::new();
    let run = ws.run(&["demo", "--dir", "d"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_only_ticker_folders(&ws.join("d/data"));
    assert!(ws.join("d/data/.finpipe/finpipe.db").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_layout_is_moved_on_the_next_command_once_and_keeps_its_job_table() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT", "X:BTCUSD"]);
    let args = [
        "backfill",
        &universe,
        "--timeframes",
        "1m,1h,1d",
        "--start",
        "2024-11-01",
        "--end",
        "2024-11-08",
    ];
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let done = done_jobs(&ws, &[]).await;
    assert!(done > 0);
    let sent = aggregate_requests(&sim).len();

    // The layout of an older finpipe, with a staging leftover.
    let root = ws.join("data");
    std::fs::create_dir_all(root.join(".finpipe/staging/job-9-AAPL")).unwrap();
    std::fs::write(
        root.join(".finpipe/staging/job-9-AAPL/2024-11-04.day"),
        b"x",
    )
    .unwrap();
    to_old_layout(&root);
    for old in ["finpipe.db", "finpipe.db.lock", ".staging"] {
        assert!(root.join(old).exists(), "{old}");
    }

    // With the old table given explicitly, the table and its lock stay and
    // are used; only the staging folder, which --db does not concern, moves.
    let explicit = ["--db", "data/finpipe.db"];
    let run = ws.run(&[&args[..], &explicit].concat()).await;
    assert_eq!(run.code, 0, "{run:?}");
    let note = run
        .stderr
        .lines()
        .find(|l| l.contains(NOTE))
        .unwrap_or_default();
    assert!(
        note.contains(".staging") && !note.contains("finpipe.db"),
        "{}",
        run.stderr
    );
    assert!(root.join("finpipe.db").is_file() && root.join("finpipe.db.lock").is_file());
    assert_eq!(
        aggregate_requests(&sim).len(),
        sent,
        "its coverage was used"
    );
    assert!(!root.join(".staging").exists());
    std::fs::rename(root.join(".finpipe/staging"), root.join(".staging")).unwrap();
    std::fs::remove_dir(root.join(".finpipe")).unwrap();

    // The next command with the default table moves everything, with a note.
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.matches(NOTE).count(),
        1,
        "one note: {}",
        run.stderr
    );
    assert!(run.stderr.contains("data/.finpipe"), "{}", run.stderr);
    assert_eq!(
        aggregate_requests(&sim).len(),
        sent,
        "no aggregate request after the move"
    );
    assert_only_ticker_folders(&root);
    assert!(!root.join(".staging").exists());
    let state = names(&root.join(".finpipe"));
    for expected in ["finpipe.db", "finpipe.db.lock", "staging"] {
        assert!(state.contains(&expected.to_owned()), "{state:?}");
    }
    assert_eq!(
        done_jobs(&ws, &[]).await,
        done,
        "the job table itself moved, not a new one"
    );

    // Once: the next command has nothing to move.
    let run = ws.run(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains(NOTE), "{}", run.stderr);
    assert_eq!(aggregate_requests(&sim).len(), sent);

    // A read-only command moves an old layout too, before it reads.
    to_old_layout(&root);
    let run = ws.run(&["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr.matches(NOTE).count(), 1, "{}", run.stderr);
    assert_only_ticker_folders(&root);
    assert_eq!(done_jobs(&ws, &[]).await, done);
}
