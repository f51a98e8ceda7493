//! Tests of the library as a tree of files: scanning, listing, leftovers,
//! failed writes, corrupt and misplaced files, concurrent writers, and the
//! period grouping shortcut.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::model::period_of;
use crate::store::rows::group_by_period;

/// Every file below `dir`, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn scan_summarizes_every_file_from_its_footer_and_skips_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (aapl, btc) = (t("AAPL"), t("X:BTCUSD"));
    let t0 = utc(2024, 2, 28, 15, 0);
    let bars: Vec<Bar> = (0..4).map(|k| bar(t0 + k * 86_400_000, 1.0)).collect();
    store.merge(&aapl, tf("1m"), &bars, Source::Rest).unwrap();
    store
        .merge(&aapl, tf("1m"), &bars[..1], Source::FlatFiles)
        .unwrap();
    store
        .merge(&btc, tf("1h"), &bars[..2], Source::Derived)
        .unwrap();

    // Things that are not bar files of the library.
    let root = dir.path();
    fs::write(root.join("finpipe.db"), b"sqlite").unwrap();
    fs::write(root.join("README"), b"a file named like a ticker").unwrap();
    fs::write(root.join("AAPL/5m"), b"a file named like a timeframe").unwrap();
    fs::create_dir_all(root.join(".staging")).unwrap();
    fs::create_dir_all(root.join("_41/1m")).unwrap(); // not a canonical ticker name
    fs::write(root.join("_41/1m/2024-01.parquet"), b"x").unwrap();
    fs::write(root.join("AAPL/notes.txt"), b"x").unwrap();
    fs::create_dir_all(root.join("AAPL/1min")).unwrap();
    fs::write(root.join("AAPL/1min/2024-01.parquet"), b"x").unwrap();
    fs::write(root.join("AAPL/1m/extra.parquet"), b"x").unwrap();
    fs::write(root.join("AAPL/1m/2024-13.parquet"), b"x").unwrap();
    fs::write(
        root.join("AAPL/1m/2024-03.parquet.tmp-0123456789abcdef"),
        b"x",
    )
    .unwrap();
    fs::write(root.join("AAPL/1m/2024-03.csv"), b"x").unwrap();

    let all = store.scan(None).unwrap();
    let keys: Vec<(String, String, String)> = all
        .iter()
        .map(|s| {
            (
                s.ticker.to_string(),
                s.timeframe.to_string(),
                s.period.clone(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("AAPL".into(), "1m".into(), "2024-02".into()),
            ("AAPL".into(), "1m".into(), "2024-03".into()),
            ("X:BTCUSD".into(), "1h".into(), "2024-02".into()),
        ]
    );
    let feb = &all[0];
    assert_eq!(feb.path, store.period_path(&aapl, tf("1m"), "2024-02"));
    assert_eq!(
        (feb.rows, feb.first, feb.last),
        (2, Some(t0), Some(t0 + 86_400_000))
    );
    assert_eq!(feb.basis, Basis::Unadjusted);
    assert_eq!(feb.source, "flatfiles+rest");
    assert_eq!((all[1].rows, all[1].source.as_str()), (2, "rest"));
    assert_eq!(all[1].last, Some(t0 + 3 * 86_400_000));
    assert_eq!(all[2].source, "derived");

    let only = store.scan(Some(&btc)).unwrap();
    assert_eq!(only, all[2..]);
    assert!(store.scan(Some(&t("MSFT"))).unwrap().is_empty());
    assert_eq!(
        store.periods(&aapl, tf("1m")).unwrap(),
        ["2024-02", "2024-03"]
    );
}

#[test]
fn a_corrupt_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    store
        .merge(
            &ticker,
            m,
            &[bar(utc(2024, 2, 5, 15, 0), 1.0)],
            Source::Rest,
        )
        .unwrap();
    let bad = store.period_path(&ticker, m, "2024-03");
    fs::write(&bad, b"PAR1 this is not parquet").unwrap();

    let err = store.scan(None).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { path, .. } if *path == bad),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
    let each = store.scan_all(None).unwrap();
    assert_eq!(each.len(), 2);
    assert!(each[0].is_ok());
    assert!(matches!(&each[1], Err(StoreError::Corrupt { path, .. }) if *path == bad));
    assert!(matches!(
        store.watermark(&ticker, m),
        Err(StoreError::Corrupt { .. })
    ));
    let merged = store.merge(
        &ticker,
        m,
        &[bar(utc(2024, 3, 5, 15, 0), 1.0)],
        Source::Rest,
    );
    assert!(
        matches!(merged, Err(StoreError::Corrupt { .. })),
        "{merged:?}"
    );
    assert_eq!(fs::read(&bad).unwrap(), b"PAR1 this is not parquet");
}

#[test]
fn a_file_of_another_ticker_or_timeframe_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let ts = utc(2024, 3, 5, 15, 0);
    store
        .merge(&t("AAPL"), tf("1m"), &[bar(ts, 1.0)], Source::Rest)
        .unwrap();
    let src = store.period_path(&t("AAPL"), tf("1m"), "2024-03");
    for (ticker, timeframe) in [("MSFT", "1m"), ("AAPL", "5m")] {
        let dst = store.period_path(&t(ticker), tf(timeframe), "2024-03");
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(&src, &dst).unwrap();
        let err = store
            .read_period(&t(ticker), tf(timeframe), "2024-03")
            .unwrap_err();
        assert!(err.to_string().contains("AAPL 1m"), "{err}");
        assert!(store.scan(Some(&t(ticker))).is_err());
        fs::remove_file(&dst).unwrap();
    }
}

#[test]
fn leftover_temporaries_are_removed_at_open_but_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = open(root, Basis::Unadjusted);
    let ticker = t("AAPL");
    store
        .merge(
            &ticker,
            tf("1m"),
            &[bar(utc(2024, 3, 5, 15, 0), 1.0)],
            Source::Rest,
        )
        .unwrap();
    let sub = root.join("AAPL/1m");
    let old = SystemTime::now() - TMP_GRACE - Duration::from_secs(60);
    for name in [
        "2024-03.parquet.tmp-00000000deadbeef",
        "2024-02.parquet.tmp-1",
    ] {
        let f = fs::File::create(sub.join(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    let top = fs::File::create(root.join("u.json.tmp-ab")).unwrap();
    top.set_modified(old).unwrap();
    fs::write(sub.join("2024-01.parquet.tmp-fresh"), b"in flight").unwrap();
    drop(store);

    let store = open(root, Basis::Unadjusted);
    assert_eq!(
        tree(root),
        [
            "AAPL/1m/2024-01.parquet.tmp-fresh",
            "AAPL/1m/2024-03.parquet"
        ]
    );
    assert_eq!(store.periods(&ticker, tf("1m")).unwrap(), ["2024-03"]);
}

/// Whether this process can create files in `dir` despite its mode (root can).
fn can_write_into(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(probe);
    ok
}

#[test]
fn a_write_into_a_read_only_directory_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let sub = store.timeframe_dir(&ticker, m);
    fs::create_dir_all(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).unwrap();
    let result = store.merge(
        &ticker,
        m,
        &[bar(utc(2024, 3, 5, 15, 0), 1.0)],
        Source::Rest,
    );
    let writable = can_write_into(&sub);
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    if writable {
        // Running as root: the mode does not stop us, so the write must succeed.
        assert_eq!(result.unwrap().files, 1);
    } else {
        let err = result.unwrap_err();
        let path = store.period_path(&ticker, m, "2024-03");
        assert!(
            matches!(&err, StoreError::Io { path: p, .. } if *p == path),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("--data-dir"),
            "{text}"
        );
        assert!(tree(dir.path()).is_empty());
    }
}

#[test]
fn a_directory_in_the_way_fails_the_write_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let path = store.period_path(&ticker, m, "2024-03");
    fs::create_dir_all(&path).unwrap();
    let err = store
        .merge(
            &ticker,
            m,
            &[bar(utc(2024, 3, 5, 15, 0), 1.0)],
            Source::Rest,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { path: p, .. } if *p == path),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("directory is in the way"), "{text}");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    assert!(path.is_dir());

    // The write itself (past the read) fails the same way and leaves no temporary.
    let err = StoreError::from(
        store
            .blobs
            .write(&path, bytes::Bytes::from_static(b"bars"), Condition::Any)
            .unwrap_err(),
    );
    assert!(
        matches!(&err, StoreError::Io { action: "write", path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("directory is in the way"), "{err}");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

#[test]
fn concurrent_writers_of_one_period_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let (ticker, m) = (t("AAPL"), tf("1m"));
    let t0 = utc(2024, 3, 5, 14, 30);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (store, ticker) = (&store, &ticker);
            s.spawn(move || {
                for k in 0..10 {
                    let b = bar(t0 + (w * 10 + k) * MIN, 1.0);
                    store.merge(ticker, m, &[b], Source::Rest).unwrap();
                }
            });
        }
    });
    assert_eq!(store.read_period(&ticker, m, "2024-03").unwrap().len(), 40);
}

#[test]
fn grouping_by_period_agrees_with_period_of() {
    // Sorted bars every 97 minutes over three years cross every month and
    // year boundary, DST changes included, for both day zones.
    for ticker in [t("AAPL"), t("C:EURUSD"), t("X:BTCUSD")] {
        let class = ticker.asset_class();
        for timeframe in [tf("1m"), tf("1h"), tf("1d"), tf("1w")] {
            let start = utc(2022, 12, 1, 0, 0);
            let bars: Vec<Bar> = (0..17_000)
                .map(|k| bar(start + k * 97 * MIN, 1.0))
                .collect();
            // Borrowed, and owned (which may keep a one-period vector whole).
            for groups in [
                group_by_period(class, timeframe, (&bars).into()),
                group_by_period(class, timeframe, bars.clone().into()),
            ] {
                let mut count = 0;
                for (period, group) in &groups {
                    for b in group {
                        assert_eq!(
                            &period_of(class, timeframe, b.timestamp),
                            period,
                            "{ticker} {timeframe}"
                        );
                    }
                    count += group.len();
                }
                assert_eq!(count, bars.len());
            }
        }
    }
}

#[test]
fn owned_bars_of_one_period_are_grouped_without_a_copy() {
    let (class, m) = (t("AAPL").asset_class(), tf("1m"));
    let t0 = utc(2024, 3, 5, 14, 30);
    let month: Vec<Bar> = (0..500).rev().map(|k| bar(t0 + k * MIN, 1.0)).collect();
    let address = month.as_ptr();
    let groups = group_by_period(class, m, month.into());
    assert_eq!(groups.len(), 1);
    assert_eq!(groups["2024-03"].as_ptr(), address);
    // One bar in the next month: split as before.
    let mut two: Vec<Bar> = (0..500).map(|k| bar(t0 + k * MIN, 1.0)).collect();
    two.push(bar(utc(2024, 4, 1, 14, 30), 2.0));
    let groups = group_by_period(class, m, two.into());
    assert_eq!(
        groups
            .iter()
            .map(|(p, g)| (p.as_str(), g.len()))
            .collect::<Vec<_>>(),
        [("2024-03", 500), ("2024-04", 1)]
    );
}

#[test]
fn ticker_directories_hold_their_tickers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Basis::Unadjusted);
    let ts = utc(2024, 3, 5, 15, 0);
    for name in ["KIMpL", "KIMPL", "A_B", ".A", "O:AAPL250117C00150000"] {
        store
            .merge(&t(name), tf("1d"), &[bar(ts, 1.0)], Source::Rest)
            .unwrap();
    }
    let found: Vec<String> = store
        .scan(None)
        .unwrap()
        .iter()
        .map(|s| s.ticker.to_string())
        .collect();
    assert_eq!(found.len(), 5);
    for name in ["KIMpL", "KIMPL", "A_B", ".A", "O:AAPL250117C00150000"] {
        assert!(found.contains(&name.to_owned()), "{found:?}");
        assert_eq!(
            store.read_period(&t(name), tf("1d"), "2024").unwrap().len(),
            1
        );
    }
    assert!(dir.path().join("_2EA").is_dir());
}
