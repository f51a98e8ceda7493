//! What a new user hits in the first hour (issue 13): local commands that
//! need no key, a mistyped library that is said to be missing instead of
//! created empty, and input refused with the spelling to use.

use crate::common::{Workspace, simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_commands_run_without_a_key_and_refuse_a_missing_library() {
    let sim = simulator().await;
    let mut ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL"]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-18",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    ws.unset("MASSIVE_API_KEY");
    for args in [
        &["status"][..],
        &["jobs", "list"],
        &["verify"],
        &["reindex"],
    ] {
        let run = ws.run(args).await;
        assert_eq!(run.code, 0, "{args:?} without a key: {run:?}");
    }
    // --fix asks the API: it still needs the key, and says which variables.
    let run = ws.run(&["verify", "--fix"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("MASSIVE_API_KEY"), "{}", run.stderr);

    for args in [
        &["status"][..],
        &["jobs", "list"],
        &["verify"],
        &["reindex"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--data-dir", "dta"]);
        let run = ws.run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("there is no library at dta"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!ws.join("dta").exists(), "{args:?} created the library");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dots_capital_m_and_two_spellings_of_one_series_are_handled() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    for ticker in [".", ".."] {
        let run = ws
            .run(&[
                "run-once",
                ticker,
                "--timeframes",
                "1d",
                "--start",
                "2024-11-18",
            ])
            .await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("not only dots"), "{}", run.stderr);
    }
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1M",
            "--start",
            "2024-11-18",
        ])
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("write 1m for minutes or 1mo for months"),
        "{}",
        run.stderr
    );
    assert!(sim.requests().is_empty(), "refused before any request");
    // An all-lowercase ticker is asked for as given, with a warning.
    let run = ws
        .run(&[
            "run-once",
            "aapl",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-29",
        ])
        .await;
    assert!(
        run.stderr
            .contains("aapl: tickers are spelled in capitals; did you mean AAPL?"),
        "{}",
        run.stderr
    );
    // A ticker the API does not know gets an empty answer, stored as
    // nothing: the run says so instead of succeeding without a word.
    let run = ws
        .run(&[
            "run-once",
            "NOTATICKER",
            "--timeframes",
            "1d",
            "--start",
            "2024-11-25",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "warning: NOTATICKER: no bars at all from 2024-11-25 to 2024-12-02: the API answered with nothing, so it may not know this ticker\n"
        ),
        "{}",
        run.stderr
    );
    // With a known ticker close to it at hand (the universe's, the
    // library's), the warning names it; the known ticker gets none.
    let universe = ws.universe("typo", &["AAPL", "MSFT", "MSTF"]);
    let run = ws
        .run(&[
            "--data-dir",
            "typo-lib",
            "backfill",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-25",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let warned: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("no bars at all"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", run.stderr);
    assert!(
        warned[0].starts_with("warning: MSTF: ") && warned[0].ends_with("; did you mean MSFT?"),
        "{}",
        warned[0]
    );
    // 60m is 1h: one series, stored once.
    let run = ws
        .run(&[
            "run-once",
            "AAPL",
            "--timeframes",
            "1m,60m,1h",
            "--start",
            "2024-11-29",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let dirs: Vec<String> = std::fs::read_dir(ws.join("data/AAPL"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut dirs = dirs;
    dirs.sort();
    assert_eq!(dirs, ["1h", "1m"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_every_printing_command_quietly() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT"]);
    let backfill = [
        "backfill",
        &universe,
        "--timeframes",
        "1d",
        "--start",
        "2024-11-18",
    ];
    let commands: Vec<Vec<&str>> = vec![
        backfill.to_vec(),
        vec![
            "plan",
            &universe,
            "--timeframes",
            "1d",
            "--start",
            "2024-11-01",
        ],
        vec!["status"],
        vec!["status", "--json"],
        vec!["jobs", "list"],
        vec!["verify"],
        vec!["verify", "--json"],
        vec!["reindex"],
        vec!["config"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["--help"],
    ];
    for args in commands {
        let mut child = ws
            .command(None, &args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line, as `head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Cuts the file at `rel` (inside the workspace) to half its length.
fn truncate(ws: &Workspace, rel: &str) {
    let path = ws.join(rel);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_truncated_file_is_quarantined_refetched_and_the_rest_goes_on() {
    let sim = simulator().await;
    let ws = Workspace::for_sim(&sim);
    let universe = ws.universe("u", &["AAPL", "MSFT"]);
    let run = ws
        .run(&[
            "backfill",
            &universe,
            "--timeframes",
            "1m",
            "--start",
            "2024-11-18",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let complete = ws.library("data");
    truncate(&ws, "data/AAPL/1m/2024-11.parquet");

    let run = ws.run(&["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("unreadable: ") && run.stdout.contains("AAPL/1m/2024-11.parquet"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("MSFT"),
        "the rest is shown: {}",
        run.stdout
    );
    let run = ws.run(&["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("AAPL 1m 2024-11: unreadable: "),
        "labelled: {}",
        run.stdout
    );

    let before = sim.requests().len();
    let run = ws.run(&["update"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("cannot be read and was moved to"),
        "{}",
        run.stderr
    );
    let asked: Vec<String> = sim.requests()[before..]
        .iter()
        .filter(|r| r.is_aggregates())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(asked.len(), 1, "only the lost month: {asked:?}");
    assert!(
        asked[0].contains("/AAPL/range/1/minute/2024-11-18/"),
        "{asked:?}"
    );
    assert_eq!(ws.library("data"), complete);
    let run = ws.run(&["status"]).await;
    assert!(
        run.stdout.contains("quarantine: 1 file moved aside"),
        "{}",
        run.stdout
    );

    // verify --fix repairs one the same way, and is whole again after.
    truncate(&ws, "data/MSFT/1m/2024-11.parquet");
    let run = ws.run(&["verify", "--fix"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": 0 problems"), "{}", run.stdout);
    assert_eq!(ws.library("data"), complete);
    let kept = ws.join("data/.finpipe/quarantine/MSFT/1m/2024-11.parquet.quarantined");
    assert!(kept.exists(), "moved aside, not deleted");
}
