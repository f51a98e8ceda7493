//! What bars to build from trades, and their notation: a time bar is a
//! [`Timeframe`] of fixed width (`1s`, `5s`, `10s`, `30s`, `1m`, `5m`, `1h`…);
//! an information-driven bar closes on activity (López de Prado, *Advances
//! in Financial Machine Learning*, ch. 2: tick, volume and dollar bars):
//!
//! | notation | bar closes when… |
//! |---|---|
//! | `1000t` | it holds 1 000 trades |
//! | `50000v` | its volume reaches 50 000 shares |
//! | `1e6$` | its dollar value (Σ price × size) reaches $1 000 000 |
//!
//! The threshold is a whole number ≥ 1, written in digits or with an
//! exponent (`5e4v`, `2.5e6$`); `1.5t`, `0t`, `-5v` and an unknown unit
//! (`1e6x`) are refused with a message saying why. `usd` may stand for `$`
//! (`1e6usd`), for shells where `$` needs quoting. Each bar prints in one
//! canonical spelling (digits below a million, `<m>e<k>` above when shorter:
//! `1000t`, `50000v`, `1e6$`, `2.5e6$`), so two spellings never name two
//! series.
//!
//! Why a type beside [`Timeframe`] rather than new [`crate::model::Timespan`]
//! units: a timeframe is a window of time, and the library relies on that
//! everywhere (`fixed_millis`, period files, derivation from 1m bars,
//! REST's `multiplier/timespan`). An activity bar has no width and cannot be
//! derived from, or fetched as, anything else; giving it a `Timespan` would
//! make each of those places answer for it. [`BarSpec`] joins both for the
//! trades path.

use std::fmt;
use std::str::FromStr;

use crate::model::{InvalidTimeframe, Timeframe, Timespan};

/// What an information-driven bar counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    /// Trades (`t`).
    Ticks,
    /// Shares (`v`).
    Volume,
    /// Price × size (`$`).
    Dollars,
}

impl Activity {
    fn suffix(self) -> &'static str {
        match self {
            Self::Ticks => "t",
            Self::Volume => "v",
            Self::Dollars => "$",
        }
    }
}

/// An information-driven bar: `threshold` of `activity` per bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoBarSpec {
    pub activity: Activity,
    /// At least 1.
    pub threshold: u64,
}

/// The largest threshold accepted (a thousand trillion).
const MAX_THRESHOLD: u64 = 1_000_000_000_000_000;

/// Why a string is not a bar specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid bar {given:?}: {reason}")]
pub struct InvalidBarSpec {
    pub given: String,
    reason: String,
}

impl InvalidBarSpec {
    /// Why the notation was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    fn new(given: &str, reason: impl Into<String>) -> Self {
        Self {
            given: given.to_owned(),
            reason: reason.into(),
        }
    }
}

impl FromStr for InfoBarSpec {
    type Err = InvalidBarSpec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let (number, activity) = if let Some(n) = text.strip_suffix('$') {
            (n, Activity::Dollars)
        } else if let Some(n) = text.strip_suffix("usd") {
            (n, Activity::Dollars)
        } else if let Some(n) = text.strip_suffix('t') {
            (n, Activity::Ticks)
        } else if let Some(n) = text.strip_suffix('v') {
            (n, Activity::Volume)
        } else {
            return Err(InvalidBarSpec::new(
                s,
                "an activity bar ends in t (trades), v (volume) or $ (dollars), e.g. 1000t, \
                 50000v, 1e6$",
            ));
        };
        let threshold = parse_threshold(number).map_err(|why| {
            InvalidBarSpec::new(
                s,
                format!(
                    "{why}; the threshold of a {} bar is a whole number from 1 to 1e15 \
                     (e.g. 1000t, 50000v, 1e6$)",
                    match activity {
                        Activity::Ticks => "tick",
                        Activity::Volume => "volume",
                        Activity::Dollars => "dollar",
                    }
                ),
            )
        })?;
        Ok(Self {
            activity,
            threshold,
        })
    }
}

/// `digits[.digits][e[+]digits]` as an exact whole number in `1..=1e15`.
fn parse_threshold(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("no number before the unit".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("{text} is negative"));
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(format!("{text:?} is not a number"));
    }
    let exponent: u32 = match exponent {
        None => 0,
        Some(e) => {
            let e = e.strip_prefix('+').unwrap_or(e);
            if e.is_empty() || !digits_only(e) {
                return Err(format!("{text:?} has a bad exponent (write 1e6, not 1e-6)"));
            }
            e.parse().map_err(|_| format!("{text:?} is too large"))?
        }
    };
    let fraction = fraction.trim_end_matches('0');
    let Some(shift) = exponent.checked_sub(fraction.len() as u32) else {
        return Err(format!("{text} is not a whole number"));
    };
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Err(format!("{text} is zero"));
    }
    let too_large = || format!("{text} is larger than 1e15");
    if significant.len() + shift as usize > 16 {
        return Err(too_large());
    }
    let base: u64 = significant.parse().map_err(|_| too_large())?;
    let value = 10u64
        .checked_pow(shift)
        .and_then(|p| base.checked_mul(p))
        .filter(|v| *v <= MAX_THRESHOLD)
        .ok_or_else(too_large)?;
    Ok(value)
}

impl InfoBarSpec {
    /// The activity bar a library timeframe names (`1000t`, `50000v`,
    /// `1e6usd`), if it is one.
    pub fn of_timeframe(tf: Timeframe) -> Option<Self> {
        let activity = match tf.timespan {
            Timespan::Trades => Activity::Ticks,
            Timespan::Volume => Activity::Volume,
            Timespan::Dollars => Activity::Dollars,
            _ => return None,
        };
        Some(Self {
            activity,
            threshold: u64::from(tf.multiplier),
        })
    }
}

impl fmt::Display for InfoBarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            compact_threshold(self.threshold),
            self.activity.suffix()
        )
    }
}

/// Digits below a million; above, `<mantissa>e<exponent>` when it is shorter
/// (`1000`, `50000`, `1e6`, `2.5e6`): how thresholds are written.
pub fn compact_threshold(n: u64) -> String {
    let plain = n.to_string();
    if n < 1_000_000 {
        return plain;
    }
    let zeros = plain.len() - plain.trim_end_matches('0').len();
    let exponent = plain.len() - 1;
    let digits = plain.trim_end_matches('0');
    let mantissa = match digits.split_at(1) {
        (head, "") => head.to_owned(),
        (head, tail) => format!("{head}.{tail}"),
    };
    let short = format!("{mantissa}e{exponent}");
    if zeros > 0 && short.len() < plain.len() {
        short
    } else {
        plain
    }
}

/// A bar built from trades: a fixed-width time bar or an information-driven one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BarSpec {
    /// A time bar; only fixed widths (seconds, minutes, hours) are accepted.
    Time(Timeframe),
    Info(InfoBarSpec),
}

impl BarSpec {
    /// The time bar of `timeframe`, if its width is fixed (`1d` and longer
    /// are sessions, not windows, and are not built from trades here).
    pub fn time(timeframe: Timeframe) -> Result<Self, InvalidBarSpec> {
        if let Some(info) = InfoBarSpec::of_timeframe(timeframe) {
            return Ok(Self::Info(info));
        }
        match timeframe.fixed_millis() {
            Some(_) => Ok(Self::Time(timeframe)),
            None => Err(InvalidBarSpec::new(
                &timeframe.to_string(),
                "bars from trades are seconds, minutes or hours (1s, 5s, 1m, 1h…) or activity \
                 bars (1000t, 50000v, 1e6$); daily and longer bars come from the day aggregates",
            )),
        }
    }
}

impl FromStr for BarSpec {
    type Err = InvalidBarSpec;

    /// A timeframe (`1s`, `1m`…) or an activity bar (`1000t`, `50000v`, `1e6$`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let activity_unit = text.ends_with(['t', 'v', '$']) || text.ends_with("usd");
        let starts_like_a_number = text.starts_with(|c: char| c.is_ascii_digit() || c == '-');
        if activity_unit && starts_like_a_number {
            return text.parse().map(Self::Info);
        }
        match text.parse::<Timeframe>() {
            Ok(tf) => Self::time(tf),
            Err(InvalidTimeframe { .. }) => Err(InvalidBarSpec::new(
                s,
                "use a timeframe of seconds, minutes or hours (1s, 5s, 10s, 30s, 1m, 5m, 1h…) \
                 or an activity bar: <N>t trades, <N>v volume, <N>$ dollars (1000t, 50000v, \
                 1e6$)",
            )),
        }
    }
}

impl fmt::Display for BarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Time(tf) => tf.fmt(f),
            Self::Info(info) => info.fmt(f),
        }
    }
}
