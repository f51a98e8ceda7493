//! Tests of prepared writes: nothing shows before the commit, a dropped
//! write leaves no trace, and other writers wait for a reserved file and then
//! merge on top of it, so no bar is lost.

use std::sync::mpsc;
use std::time::Duration;

use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_prepared_merge_shows_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, m1) = (t("AAPL"), tf("1m"));
    let day = utc(2024, 3, 5, 14, 30);
    store
        .merge(
            &aapl,
            m1,
            &[bar(day, 1.0), bar(day + MIN, 2.0)],
            Source::Rest,
        )
        .unwrap();
    let path = store.period_path(&aapl, m1, "2024-03");
    let before = fs::read(&path).unwrap();

    let new = [bar(day + MIN, 20.0), bar(day + 2 * MIN, 3.0)];
    let prepared = store
        .prepare_merge(&aapl, m1, &new, Source::FlatFiles, None)
        .unwrap()
        .expect("the file is free");
    assert_eq!(prepared.writes.len(), 1);
    assert_eq!(prepared.summary.rows_new, 1);
    assert_eq!(prepared.summary.rows_total, 3);
    assert_eq!(fs::read(&path).unwrap(), before, "not shown yet");

    for write in prepared.writes {
        write.commit().unwrap();
    }
    let stored = store.read_period(&aapl, m1, "2024-03").unwrap();
    assert_same(
        &stored,
        &[bar(day, 1.0), bar(day + MIN, 20.0), bar(day + 2 * MIN, 3.0)],
    );
    assert_eq!(store.scan(Some(&aapl)).unwrap()[0].source, "flatfiles+rest");
    assert_eq!(names(path.parent().unwrap()), ["2024-03.parquet"]);
}

#[test]
fn a_dropped_prepared_merge_leaves_no_trace_and_frees_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, m1) = (t("AAPL"), tf("1m"));
    let day = utc(2024, 3, 5, 14, 30);
    let prepared = store
        .prepare_merge(&aapl, m1, &[bar(day, 1.0)], Source::FlatFiles, None)
        .unwrap()
        .expect("free");
    let path = store.period_path(&aapl, m1, "2024-03");
    assert!(!path.exists());
    assert_eq!(names(path.parent().unwrap()).len(), 1, "the temporary file");
    drop(prepared);
    assert!(
        names(path.parent().unwrap()).is_empty(),
        "temporary removed"
    );
    // Free again: a plain merge does not wait.
    store
        .merge(&aapl, m1, &[bar(day, 2.0)], Source::Rest)
        .unwrap();
    assert_same(
        &store.read_period(&aapl, m1, "2024-03").unwrap(),
        &[bar(day, 2.0)],
    );
}

#[test]
fn an_unchanged_file_needs_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, m1) = (t("AAPL"), tf("1m"));
    let bars = [bar(utc(2024, 3, 5, 14, 30), 1.0)];
    store.merge(&aapl, m1, &bars, Source::FlatFiles).unwrap();
    let prepared = store
        .prepare_merge(&aapl, m1, &bars, Source::FlatFiles, None)
        .unwrap()
        .expect("free");
    assert!(prepared.writes.is_empty());
    assert_eq!(prepared.summary.rows_new, 0);
}

#[test]
fn writers_wait_for_a_reserved_file_and_merge_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, m1) = (t("AAPL"), tf("1m"));
    let day = utc(2024, 3, 5, 14, 30);
    let prepared = store
        .prepare_merge(&aapl, m1, &[bar(day, 1.0)], Source::FlatFiles, None)
        .unwrap()
        .expect("free");
    // A second prepared write of the same file is refused, not made to wait.
    assert!(
        store
            .prepare_merge(&aapl, m1, &[bar(day + MIN, 9.0)], Source::FlatFiles, None)
            .unwrap()
            .is_none()
    );
    std::thread::scope(|scope| {
        let (merged_tx, merged_rx) = mpsc::channel();
        let (store, aapl) = (&store, &aapl);
        scope.spawn(move || {
            store
                .merge(aapl, m1, &[bar(day + MIN, 2.0)], Source::Rest)
                .unwrap();
            merged_tx.send(()).unwrap();
        });
        assert!(
            merged_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the merge waits while the file is reserved"
        );
        for write in prepared.writes {
            write.commit().unwrap();
        }
        merged_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the merge goes on once the write is committed");
    });
    // Both writes are there: the waiting merge read the committed file.
    assert_same(
        &store.read_period(&aapl, m1, "2024-03").unwrap(),
        &[bar(day, 1.0), bar(day + MIN, 2.0)],
    );
}
