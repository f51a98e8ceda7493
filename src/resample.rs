//! Derived timeframes: minute and hour multiples (5m, 15m, 1h, 4h, …) built
//! from stored 1-minute bars, by the same rule as the simulator's
//! `BarAccumulator`, so derived bars equal the API's own longer bars.

use crate::model::{Bar, Timeframe, Timespan};

/// True for minute and hour multiples other than 1m (5m, 15m, 30m, 1h, 2h,
/// 4h…): timeframes derived from stored 1m bars instead of requested.
pub fn derivable_from_minutes(tf: Timeframe) -> bool {
    match tf.timespan {
        Timespan::Minute => tf.multiplier > 1,
        Timespan::Hour => tf.multiplier >= 1,
        _ => false,
    }
}

/// Aggregates 1m `minutes` (time-ordered; sorted here if they are not) into
/// `target` windows aligned to the Unix epoch (width = multiplier × unit;
/// hours are whole hours, so ET and UTC windows agree), keeping only windows
/// whose end is ≤ `complete_until_ms`, so a window still being filled is
/// never produced. Each bar is labelled by its window start. A window with
/// no minute gives no bar. Returns nothing for a target that
/// [`derivable_from_minutes`] rejects.
///
/// A bar: open of the first minute, max high, min low, close of the last;
/// volume and transactions summed in time order (`None` when no minute has
/// one); vwap = Σ(vwap·volume)/Σvolume over the minutes having both, rounded
/// to 4 decimals (ties to even), `None` unless that Σvolume is positive.
pub fn derive(minutes: &[Bar], target: Timeframe, complete_until_ms: i64) -> Vec<Bar> {
    let Some(width) = target
        .fixed_millis()
        .filter(|_| derivable_from_minutes(target))
    else {
        return Vec::new();
    };
    let sorted;
    let minutes = if minutes.is_sorted_by_key(|b| b.timestamp) {
        minutes
    } else {
        let mut copy = minutes.to_vec();
        copy.sort_by_key(|b| b.timestamp);
        sorted = copy;
        &sorted
    };
    let mut out = Vec::new();
    let mut window: Option<(i64, Accumulator)> = None;
    for minute in minutes {
        let start = minute.timestamp.div_euclid(width) * width;
        if start.saturating_add(width) > complete_until_ms {
            break; // sorted input: every later window ends later still
        }
        match &mut window {
            Some((current, acc)) if *current == start => acc.push(minute),
            _ => {
                if let Some((current, acc)) = window.take() {
                    out.push(acc.finish(current));
                }
                window = Some((start, Accumulator::new(minute)));
            }
        }
    }
    if let Some((current, acc)) = window {
        out.push(acc.finish(current));
    }
    out
}

/// One window's running aggregate (the simulator's `BarAccumulator`).
struct Accumulator {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: Option<f64>,
    vwap_numerator: f64,
    vwap_volume: f64,
    transactions: Option<i64>,
}

impl Accumulator {
    fn new(first: &Bar) -> Self {
        let mut acc = Self {
            open: first.open,
            high: first.high,
            low: first.low,
            close: first.close,
            volume: None,
            vwap_numerator: 0.0,
            vwap_volume: 0.0,
            transactions: None,
        };
        acc.add_amounts(first);
        acc
    }

    fn push(&mut self, b: &Bar) {
        self.high = self.high.max(b.high);
        self.low = self.low.min(b.low);
        self.close = b.close;
        self.add_amounts(b);
    }

    fn add_amounts(&mut self, b: &Bar) {
        if let Some(v) = b.volume {
            self.volume = Some(self.volume.unwrap_or(0.0) + v);
            if let Some(vw) = b.vwap {
                self.vwap_numerator += vw * v;
                self.vwap_volume += v;
            }
        }
        if let Some(n) = b.transactions {
            self.transactions = Some(self.transactions.unwrap_or(0) + n);
        }
    }

    fn finish(&self, timestamp: i64) -> Bar {
        Bar {
            timestamp,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            vwap: (self.vwap_volume > 0.0).then(|| round4(self.vwap_numerator / self.vwap_volume)),
            transactions: self.transactions,
        }
    }
}

/// Rounds to 4 decimals, ties to even (the API's and the simulator's `vw`).
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round_ties_even() / 10_000.0
}

/// A base timeframe to fetch and the timeframes computed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobGroup {
    pub base: Timeframe,
    pub derived: Vec<Timeframe>,
}

/// Groups the requested timeframes: with `1m`, every derivable timeframe rides
/// on the 1m job; everything else is fetched as itself.
pub fn job_groups(timeframes: &[Timeframe]) -> Vec<JobGroup> {
    let has_minutes = timeframes.contains(&Timeframe::MINUTE);
    let mut groups = Vec::new();
    if has_minutes {
        groups.push(JobGroup {
            base: Timeframe::MINUTE,
            derived: timeframes
                .iter()
                .copied()
                .filter(|t| derivable_from_minutes(*t))
                .collect(),
        });
    }
    for tf in timeframes {
        if *tf != Timeframe::MINUTE && !(has_minutes && derivable_from_minutes(*tf)) {
            groups.push(JobGroup {
                base: *tf,
                derived: Vec::new(),
            });
        }
    }
    groups
}

#[cfg(test)]
#[path = "resample_tests.rs"]
mod tests;
