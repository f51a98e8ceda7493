//! Writers in several processes (or machines) merging into the same files:
//! each writer here is its own `Store` (its own in-process locks), as two
//! runners would be, on one local directory and on one S3 prefix (a moto
//! server through `FINPIPE_TEST_S3`). No writer's bars are ever lost.

use std::sync::{Arc, Barrier};

use super::*;
use crate::store::blobs::S3Blobs;
use crate::store::blobs::conformance::{create_bucket, s3_endpoint, test_config};

/// Two stores on one library, and what keeps it alive.
type Pair = (Store, Store, Box<dyn std::any::Any>);

fn local_pair() -> Option<Pair> {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), Basis::Unadjusted);
    let b = open(dir.path(), Basis::Unadjusted);
    Some((a, b, Box::new(dir)))
}

fn s3_pair() -> Option<Pair> {
    let endpoint = s3_endpoint()?;
    let root = PathBuf::from(format!("s3://{}/library", create_bucket(&endpoint)));
    let scratch = tempfile::tempdir().unwrap();
    let store = |name: &str| {
        let blobs = S3Blobs::new(&root, &test_config(&endpoint), &scratch.path().join(name));
        Store::with_blobs(Arc::new(blobs.unwrap()), Basis::Unadjusted, VERSION)
    };
    Some((store("a"), store("b"), Box::new(scratch)))
}

/// Two writers merge their own bars (even and odd minutes), one bar per
/// merge, into the same period file at once: every bar of both is there.
fn two_writers_lose_nothing(pair: Option<Pair>) {
    let Some((a, b, _keep)) = pair else {
        return;
    };
    const ROUNDS: i64 = 25;
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let t0 = utc(2024, 3, 5, 14, 30);
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for (store, parity) in [(&a, 0), (&b, 1)] {
            let (barrier, ticker) = (&barrier, &ticker);
            scope.spawn(move || {
                barrier.wait();
                for round in 0..ROUNDS {
                    let minute = 2 * round + parity;
                    let bar = bar(t0 + minute * MIN, minute as f64);
                    store.merge(ticker, m, &[bar], Source::Rest).unwrap();
                }
            });
        }
    });
    let stored = a.read_period(&ticker, m, "2024-03").unwrap();
    let expected: Vec<Bar> = (0..2 * ROUNDS)
        .map(|minute| bar(t0 + minute * MIN, minute as f64))
        .collect();
    assert_same(&stored, &expected);
    // Written once, by both: the footer (a ranged read) agrees.
    let summary = &b.scan(Some(&ticker)).unwrap()[0];
    assert_eq!(summary.rows, expected.len());
    assert_eq!(summary.last, Some(t0 + (2 * ROUNDS - 1) * MIN));
}

#[test]
fn two_local_writers_merging_into_one_file_lose_nothing() {
    two_writers_lose_nothing(local_pair());
}

#[test]
fn two_s3_writers_merging_into_one_file_at_once_lose_nothing() {
    two_writers_lose_nothing(s3_pair());
}

/// A prepared write whose file another writer replaced before its commit is
/// merged again on top of that writer's file.
fn a_prepared_write_that_lost_the_race_is_merged_again(pair: Option<Pair>) {
    let Some((a, b, _keep)) = pair else {
        return;
    };
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let day = utc(2024, 3, 5, 14, 30);
    a.merge(&ticker, m, &[bar(day, 1.0)], Source::Rest).unwrap();
    let prepared = a
        .prepare_merge(&ticker, m, &[bar(day + MIN, 2.0)], Source::FlatFiles, None)
        .unwrap()
        .expect("free");
    // Another runner writes the file meanwhile.
    b.merge(&ticker, m, &[bar(day + 2 * MIN, 3.0)], Source::Rest)
        .unwrap();
    for write in prepared.writes {
        a.commit(write).unwrap();
    }
    let stored = b.read_period(&ticker, m, "2024-03").unwrap();
    assert_same(
        &stored,
        &[bar(day, 1.0), bar(day + MIN, 2.0), bar(day + 2 * MIN, 3.0)],
    );
    assert_eq!(a.scan(Some(&ticker)).unwrap()[0].source, "flatfiles+rest");
}

#[test]
fn a_local_prepared_write_that_lost_the_race_is_merged_again() {
    a_prepared_write_that_lost_the_race_is_merged_again(local_pair());
}

#[test]
fn an_s3_prepared_write_that_lost_the_race_is_merged_again() {
    a_prepared_write_that_lost_the_race_is_merged_again(s3_pair());
}

#[test]
fn a_library_on_s3_lists_scans_and_quarantines_like_a_local_one() {
    let Some((store, _, _keep)) = s3_pair() else {
        return;
    };
    let (aapl, m) = (t("AAPL"), tf("1m"));
    let d1 = tf("1d");
    let day = utc(2024, 3, 5, 14, 30);
    store
        .merge(
            &aapl,
            m,
            &[bar(day, 1.0), bar(utc(2024, 4, 1, 14, 30), 2.0)],
            Source::Rest,
        )
        .unwrap();
    store
        .merge(
            &t("X:BTCUSD"),
            d1,
            &[bar(utc(2024, 3, 5, 5, 0), 3.0)],
            Source::Rest,
        )
        .unwrap();
    assert_eq!(store.tickers().unwrap(), [aapl.clone(), t("X:BTCUSD")]);
    assert_eq!(store.timeframes(&aapl).unwrap(), [m]);
    assert_eq!(store.periods(&aapl, m).unwrap(), ["2024-03", "2024-04"]);
    assert_eq!(
        store.watermark(&aapl, m).unwrap(),
        Some(utc(2024, 4, 1, 14, 30))
    );
    assert_eq!(store.scan(None).unwrap().len(), 3);
    // Replacing with nothing removes the file.
    store
        .replace_period(&aapl, m, "2024-04", &[], Source::Rest)
        .unwrap();
    assert_eq!(store.periods(&aapl, m).unwrap(), ["2024-03"]);
    // Quarantine moves the object under .finpipe/quarantine.
    let path = store.period_path(&aapl, m, "2024-03");
    let moved = store.quarantine(&path).unwrap();
    assert!(
        moved.starts_with(store.quarantine_dir()),
        "{}",
        moved.display()
    );
    assert!(store.periods(&aapl, m).unwrap().is_empty());
    assert_eq!(
        store.quarantined().unwrap(),
        [PathBuf::from("AAPL/1m/2024-03.parquet.quarantined")]
    );
    // An object store has no empty folders: AAPL is gone with its last
    // file, and the state folder is no ticker.
    assert_eq!(store.tickers().unwrap(), [t("X:BTCUSD")]);
    // Staging stays on the local disk.
    assert!(!store.staging_dir().starts_with("s3:"));
    assert!(store.staging_dir().is_absolute());
    let staging = store.staging_dir();
    let name = staging.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("fp-") && name.ends_with("_library"),
        "{name}"
    );
}
