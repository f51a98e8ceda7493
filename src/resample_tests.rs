//! Tests of `resample`: hand-made minutes with gaps, incomplete windows,
//! bars without volume, and epoch alignment across DST changes.

use chrono::{TimeZone, Utc};

use super::*;

const MIN: i64 = 60_000;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

fn tf(s: &str) -> Timeframe {
    s.parse().unwrap()
}

/// A minute at `t` with price moves from `i` and full volume fields.
fn minute(t: i64, i: f64) -> Bar {
    Bar {
        timestamp: t,
        open: 100.0 + i,
        high: 101.0 + i,
        low: 99.0 + i,
        close: 100.5 + i,
        volume: Some(10.0 + i),
        vwap: Some(100.25 + i),
        transactions: Some(3),
    }
}

#[test]
fn which_timeframes_are_derived() {
    for (s, yes) in [
        ("1m", false),
        ("5m", true),
        ("15m", true),
        ("30m", true),
        ("1h", true),
        ("2h", true),
        ("4h", true),
        ("30s", false),
        ("1d", false),
        ("1w", false),
        ("1mo", false),
    ] {
        assert_eq!(derivable_from_minutes(tf(s)), yes, "{s}");
    }
    let t0 = utc(2024, 3, 4, 14, 30);
    assert!(derive(&[minute(t0, 0.0)], tf("1d"), i64::MAX).is_empty());
    assert!(derive(&[minute(t0, 0.0)], tf("1m"), i64::MAX).is_empty());
}

#[test]
fn five_minute_bars_from_minutes_with_gaps() {
    let t0 = utc(2024, 3, 4, 14, 30);
    // 14:30 14:31 14:33 | 14:36 14:39 | (14:40–14:44 empty) | 14:47
    let minutes: Vec<Bar> = [0, 1, 3, 6, 9, 17]
        .iter()
        .map(|&k| minute(t0 + k * MIN, k as f64))
        .collect();
    let bars = derive(&minutes, tf("5m"), i64::MAX);
    assert_eq!(
        bars.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
        [t0, t0 + 5 * MIN, t0 + 15 * MIN]
    );
    let first = bars[0];
    assert_eq!(first.open, 100.0);
    assert_eq!(first.high, 104.0);
    assert_eq!(first.low, 99.0);
    assert_eq!(first.close, 103.5);
    assert_eq!(first.volume, Some(10.0 + 11.0 + 13.0));
    assert_eq!(first.transactions, Some(9));
    // Σ(vw·v)/Σv = (100.25·10 + 101.25·11 + 103.25·13) / 34
    let vw: f64 = (100.25 * 10.0 + 101.25 * 11.0 + 103.25 * 13.0) / 34.0;
    assert_eq!(
        first.vwap,
        Some((vw * 10_000.0).round_ties_even() / 10_000.0)
    );
    assert_eq!(bars[1].open, 106.0);
    assert_eq!(bars[1].close, 109.5);
    assert_eq!(
        bars[2],
        Bar {
            timestamp: t0 + 15 * MIN,
            vwap: Some(117.25),
            ..minute(t0 + 17 * MIN, 17.0)
        }
    );
}

#[test]
fn fifteen_minute_and_hour_bars() {
    let t0 = utc(2024, 3, 4, 14, 0);
    let minutes: Vec<Bar> = (0..120)
        .filter(|k| k % 7 != 3) // gaps
        .map(|k| minute(t0 + k * MIN, (k % 11) as f64))
        .collect();
    let q = derive(&minutes, tf("15m"), i64::MAX);
    assert_eq!(q.len(), 8);
    for (i, bar) in q.iter().enumerate() {
        let start = t0 + i as i64 * 15 * MIN;
        let inside: Vec<&Bar> = minutes
            .iter()
            .filter(|m| (start..start + 15 * MIN).contains(&m.timestamp))
            .collect();
        assert_eq!(bar.timestamp, start);
        assert_eq!(bar.open, inside[0].open);
        assert_eq!(bar.close, inside[inside.len() - 1].close);
        let high = inside.iter().map(|m| m.high).fold(f64::MIN, f64::max);
        let low = inside.iter().map(|m| m.low).fold(f64::MAX, f64::min);
        assert_eq!((bar.high, bar.low), (high, low));
        let volume = inside.iter().fold(0.0, |s, m| s + m.volume.unwrap());
        assert_eq!(bar.volume, Some(volume));
        assert_eq!(bar.transactions, Some(3 * inside.len() as i64));
    }
    let h = derive(&minutes, tf("1h"), i64::MAX);
    assert_eq!(
        h.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
        [t0, t0 + 60 * MIN]
    );
    assert_eq!(h[0].open, minutes[0].open);
    assert_eq!(
        h[0].volume,
        Some(
            minutes
                .iter()
                .filter(|m| m.timestamp < t0 + 60 * MIN)
                .fold(0.0, |s, m| s + m.volume.unwrap())
        )
    );
}

#[test]
fn windows_not_complete_are_left_out() {
    let t0 = utc(2024, 3, 4, 14, 30);
    let minutes: Vec<Bar> = (0..12).map(|k| minute(t0 + k * MIN, 0.0)).collect();
    // Windows 14:30, 14:35, 14:40 (ends 14:45).
    let ends_at = |until: i64| -> Vec<i64> {
        derive(&minutes, tf("5m"), until)
            .iter()
            .map(|b| b.timestamp)
            .collect()
    };
    assert_eq!(ends_at(t0 + 10 * MIN), [t0, t0 + 5 * MIN]);
    assert_eq!(ends_at(t0 + 10 * MIN - 1), [t0]);
    assert_eq!(ends_at(t0 + 15 * MIN), [t0, t0 + 5 * MIN, t0 + 10 * MIN]);
    assert!(ends_at(t0).is_empty());
    // The cut window is dropped whole, not built from the minutes seen so far.
    let partial = derive(&minutes[..7], tf("5m"), t0 + 7 * MIN);
    assert_eq!(partial.len(), 1);
}

#[test]
fn bars_without_volume_give_none() {
    let t0 = utc(2024, 3, 4, 14, 30);
    let index = |k: i64| Bar {
        volume: None,
        vwap: None,
        transactions: None,
        ..minute(t0 + k * MIN, k as f64)
    };
    let bars = derive(&[index(0), index(1), index(2)], tf("5m"), i64::MAX);
    assert_eq!(bars.len(), 1);
    assert_eq!(
        (bars[0].volume, bars[0].vwap, bars[0].transactions),
        (None, None, None)
    );
    assert_eq!((bars[0].open, bars[0].close), (100.0, 102.5));

    // Volume without vwap counts in the volume, not in the vwap.
    let mixed = [
        Bar {
            vwap: None,
            ..minute(t0, 0.0)
        },
        Bar {
            transactions: None,
            ..minute(t0 + MIN, 1.0)
        },
    ];
    let bar = derive(&mixed, tf("5m"), i64::MAX)[0];
    assert_eq!(bar.volume, Some(21.0));
    assert_eq!(bar.vwap, Some(101.25));
    assert_eq!(bar.transactions, Some(3));

    // Zero volume: a volume of 0, no vwap.
    let zero = [Bar {
        volume: Some(0.0),
        ..minute(t0, 0.0)
    }];
    let bar = derive(&zero, tf("5m"), i64::MAX)[0];
    assert_eq!((bar.volume, bar.vwap), (Some(0.0), None));
}

#[test]
fn vwap_is_rounded_to_four_decimals_ties_to_even() {
    let t0 = utc(2024, 3, 4, 14, 30);
    let m = |k: i64, vw: f64, v: f64| Bar {
        volume: Some(v),
        vwap: Some(vw),
        ..minute(t0 + k * MIN, 0.0)
    };
    let bar = derive(&[m(0, 1.0, 1.0), m(1, 2.0, 2.0)], tf("5m"), i64::MAX)[0];
    assert_eq!(bar.vwap, Some(1.6667)); // 5/3
    let bar = derive(&[m(0, 0.00005, 1.0)], tf("5m"), i64::MAX)[0];
    assert_eq!(
        bar.vwap,
        Some((0.00005_f64 * 10_000.0).round_ties_even() / 10_000.0)
    );
}

#[test]
fn windows_align_to_the_epoch_across_dst_changes() {
    // US DST starts 2024-03-10 07:00Z and ends 2024-11-03 06:00Z.
    for (y, mo, d) in [(2024, 3, 10), (2024, 11, 3)] {
        let t0 = utc(y, mo, d, 5, 0);
        let minutes: Vec<Bar> = (0..240).map(|k| minute(t0 + k * MIN, 0.0)).collect();
        for (name, width) in [
            ("5m", 5 * MIN),
            ("1h", 60 * MIN),
            ("2h", 120 * MIN),
            ("4h", 240 * MIN),
        ] {
            let bars = derive(&minutes, tf(name), i64::MAX);
            let total: usize = bars.len();
            assert!(total > 0);
            for pair in bars.windows(2) {
                assert_eq!(pair[1].timestamp - pair[0].timestamp, width, "{name}");
            }
            for bar in &bars {
                assert_eq!(bar.timestamp.rem_euclid(width), 0, "{name}");
            }
        }
        let hours = derive(&minutes, tf("1h"), i64::MAX);
        assert_eq!(
            hours.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
            (5..9).map(|h| utc(y, mo, d, h, 0)).collect::<Vec<_>>()
        );
        // 4h windows start at 04:00Z and 08:00Z whatever the New York offset.
        let four = derive(&minutes, tf("4h"), i64::MAX);
        assert_eq!(
            four.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
            [utc(y, mo, d, 4, 0), utc(y, mo, d, 8, 0)]
        );
    }
    // Before 1970 too.
    let early = derive(&[minute(-MIN, 0.0), minute(-6 * MIN, 1.0)], tf("5m"), 0);
    assert_eq!(
        early.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
        [-10 * MIN, -5 * MIN]
    );
}

#[test]
fn unsorted_minutes_give_the_sorted_result() {
    let t0 = utc(2024, 3, 4, 14, 30);
    let minutes: Vec<Bar> = (0..30)
        .map(|k| minute(t0 + k * MIN, (k % 5) as f64))
        .collect();
    let mut shuffled = minutes.clone();
    fastrand::Rng::with_seed(3).shuffle(&mut shuffled);
    assert_eq!(
        derive(&shuffled, tf("15m"), i64::MAX),
        derive(&minutes, tf("15m"), i64::MAX)
    );
}
