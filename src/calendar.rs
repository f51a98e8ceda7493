//! Trading calendars: which dates a market is open (NYSE holidays, early closes and
//! one-off closures; weekday, crypto and forex day rules), NYSE session hours in UTC
//! milliseconds, which days are complete (final) at a given instant, and the one place
//! where dates are turned into UTC instants and back.
//!
//! A leaf: it speaks in [`Calendar`]s and dates, never in tickers or asset classes
//! (`model` maps an asset class to its calendar, so the dependency runs one way).

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::America::New_York;
use chrono_tz::Tz;

use crate::ranges::DateRange;

/// A rule deciding on which dates a market (or a flat-file dataset) has data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// NYSE trading days: weekdays minus NYSE full-day closures.
    Nyse,
    /// Monday to Friday, holidays included (the `us_indices` flat files).
    Weekdays,
    /// Every calendar day.
    Crypto,
    /// Sunday to Friday (no Saturday).
    Forex,
}

impl Calendar {
    /// Whether the market has a session (or the dataset a file) on `d`.
    pub fn is_open(self, d: NaiveDate) -> bool {
        match self {
            Calendar::Nyse => nyse_is_trading_day(d),
            Calendar::Weekdays => !is_weekend(d),
            Calendar::Crypto => true,
            Calendar::Forex => d.weekday() != Weekday::Sat,
        }
    }

    /// The open dates from `from` through `to_inclusive`, ascending (empty when `from > to_inclusive`).
    pub fn open_days(
        self,
        from: NaiveDate,
        to_inclusive: NaiveDate,
    ) -> impl Iterator<Item = NaiveDate> {
        from.iter_days()
            .take_while(move |d| *d <= to_inclusive)
            .filter(move |d| self.is_open(*d))
    }

    /// The zone whose dates name the market's days: UTC for forex, America/New_York
    /// for the others (crypto included), as the API's daily bars count them.
    pub fn day_zone(self) -> Tz {
        match self {
            Calendar::Forex => Tz::UTC,
            Calendar::Nyse | Calendar::Weekdays | Calendar::Crypto => New_York,
        }
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The NYSE's one-off full-day closures (not regular holidays).
const NYSE_ONE_OFF_CLOSURES: [((i32, u32, u32), &str); 10] = [
    ((2001, 9, 11), "September 11 attacks"),
    ((2001, 9, 12), "September 11 attacks"),
    ((2001, 9, 13), "September 11 attacks"),
    ((2001, 9, 14), "September 11 attacks"),
    ((2004, 6, 11), "National Day of Mourning for Ronald Reagan"),
    ((2007, 1, 2), "National Day of Mourning for Gerald Ford"),
    ((2012, 10, 29), "Hurricane Sandy"),
    ((2012, 10, 30), "Hurricane Sandy"),
    (
        (2018, 12, 5),
        "National Day of Mourning for George H. W. Bush",
    ),
    ((2025, 1, 9), "National Day of Mourning for Jimmy Carter"),
];

/// The name of the NYSE full-day closure on `d`, if the exchange is closed that weekday
/// (regular holidays with their weekend rules, and one-off closures). Weekends are not
/// holidays and give `None`.
pub fn nyse_holiday(d: NaiveDate) -> Option<&'static str> {
    if is_weekend(d) {
        return None;
    }
    one_off_closure(d).or_else(|| regular_holiday(d))
}

fn one_off_closure(d: NaiveDate) -> Option<&'static str> {
    let key = (d.year(), d.month(), d.day());
    NYSE_ONE_OFF_CLOSURES
        .iter()
        .find(|(date, _)| *date == key)
        .map(|(_, name)| *name)
}

fn regular_holiday(d: NaiveDate) -> Option<&'static str> {
    let y = d.year();
    let candidates: [(Option<NaiveDate>, &'static str); 10] = [
        (new_years_observed(y), "New Year's Day"),
        (
            (y >= 1998).then(|| nth_weekday(y, 1, Weekday::Mon, 3)),
            "Martin Luther King, Jr. Day",
        ),
        (
            Some(nth_weekday(y, 2, Weekday::Mon, 3)),
            "Washington's Birthday",
        ),
        (Some(easter_sunday(y) - Duration::days(2)), "Good Friday"),
        (Some(last_weekday(y, 5, Weekday::Mon)), "Memorial Day"),
        (
            (y >= 2022).then(|| observed_fixed(y, 6, 19)),
            "Juneteenth National Independence Day",
        ),
        (Some(observed_fixed(y, 7, 4)), "Independence Day"),
        (Some(nth_weekday(y, 9, Weekday::Mon, 1)), "Labor Day"),
        (
            Some(nth_weekday(y, 11, Weekday::Thu, 4)),
            "Thanksgiving Day",
        ),
        (Some(observed_fixed(y, 12, 25)), "Christmas Day"),
    ];
    candidates
        .iter()
        .find(|(date, _)| *date == Some(d))
        .map(|(_, name)| *name)
}

/// Whether the NYSE has a session on `d`.
pub fn nyse_is_trading_day(d: NaiveDate) -> bool {
    !is_weekend(d) && nyse_holiday(d).is_none()
}

/// Whether `d` is an NYSE trading day whose regular session ends at 13:00 ET:
/// July 3 (when July 4 is a weekday holiday), the day after Thanksgiving, Christmas Eve.
pub fn nyse_early_close(d: NaiveDate) -> bool {
    if !nyse_is_trading_day(d) {
        return false;
    }
    let y = d.year();
    let day_after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4) + Duration::days(1);
    // A trading July 3 is Monday..Thursday (a Friday July 3 is the observed holiday),
    // so July 4 is then a Tuesday..Friday holiday.
    (d.month() == 7 && d.day() == 3)
        || d == day_after_thanksgiving
        || (d.month() == 12 && d.day() == 24)
}

/// January 1, or Monday January 2 when January 1 is a Sunday; a Saturday New Year's Day
/// is not observed on the Friday before (that Friday closes a trading year).
fn new_years_observed(y: i32) -> Option<NaiveDate> {
    let jan1 = ymd(y, 1, 1);
    match jan1.weekday() {
        Weekday::Sat => None,
        Weekday::Sun => Some(jan1 + Duration::days(1)),
        _ => Some(jan1),
    }
}

/// A fixed-date holiday moved to Friday when on Saturday and to Monday when on Sunday.
fn observed_fixed(y: i32, month: u32, day: u32) -> NaiveDate {
    let d = ymd(y, month, day);
    match d.weekday() {
        Weekday::Sat => d - Duration::days(1),
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

/// The `n`-th (1-based) `weekday` of a month.
fn nth_weekday(y: i32, month: u32, weekday: Weekday, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(y, month, weekday, n)
        // Invariant: n ≤ 4 always exists in every month.
        .unwrap_or_else(|| ymd(y, month, 1))
}

/// The last `weekday` of a month.
fn last_weekday(y: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let first_of_next = if month == 12 {
        ymd(y + 1, 1, 1)
    } else {
        ymd(y, month + 1, 1)
    };
    let last = first_of_next - Duration::days(1);
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    last - Duration::days(i64::from(back))
}

/// Easter Sunday in the Gregorian calendar (anonymous Gregorian / Meeus–Jones–Butcher).
pub fn easter_sunday(y: i32) -> NaiveDate {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // Both are small positive numbers by construction (month 3 or 4, day 1..=31).
    ymd(y, month.unsigned_abs(), day.unsigned_abs())
}

/// A date from parts that are valid by construction; falls back to the epoch rather than panic.
fn ymd(y: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, month, day).unwrap_or_default()
}

/// One NYSE session in UTC epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The ET trading date.
    pub date: NaiveDate,
    /// 04:00 ET.
    pub extended_start_ms: i64,
    /// 09:30 ET.
    pub regular_start_ms: i64,
    /// 16:00 ET, or 13:00 ET on early-close days.
    pub regular_end_ms: i64,
    /// 20:00 ET, or 17:00 ET on early-close days.
    pub extended_end_ms: i64,
}

/// The NYSE session of `d`, or `None` when `d` is not a trading day.
pub fn nyse_session(d: NaiveDate) -> Option<Session> {
    if !nyse_is_trading_day(d) {
        return None;
    }
    let (regular_end, extended_end) = if nyse_early_close(d) {
        (13, 17)
    } else {
        (16, 20)
    };
    Some(Session {
        date: d,
        extended_start_ms: et_ms(d, 4, 0),
        regular_start_ms: et_ms(d, 9, 30),
        regular_end_ms: et_ms(d, regular_end, 0),
        extended_end_ms: et_ms(d, extended_end, 0),
    })
}

/// The UTC instant (ms) of wall-clock `hour:minute` on `d` in America/New_York.
pub fn et_ms(d: NaiveDate, hour: u32, minute: u32) -> i64 {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default();
    zoned_ms(New_York, d.and_time(time))
}

/// The UTC instant (ms) of a wall-clock time in `tz`: the earlier instant when the time
/// is ambiguous, the first valid instant after a DST gap when it does not exist.
pub fn zoned_ms(tz: Tz, local: NaiveDateTime) -> i64 {
    let mut probe = local;
    // A DST gap is at most a few hours; step forward until the wall time exists.
    for _ in 0..8 {
        if let Some(dt) = tz.from_local_datetime(&probe).earliest() {
            return dt.timestamp_millis();
        }
        probe += Duration::minutes(30);
    }
    local.and_utc().timestamp_millis()
}

/// 00:00 of `d` in `tz`, as UTC epoch milliseconds.
pub fn zone_midnight_ms(tz: Tz, d: NaiveDate) -> i64 {
    zoned_ms(tz, d.and_time(NaiveTime::MIN))
}

/// The date in `tz` of the instant `ms` (UTC epoch milliseconds).
pub fn zone_date_of_ms(tz: Tz, ms: i64) -> NaiveDate {
    // Out-of-range instants (beyond ±262 000 years) fall back to the epoch.
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// 00:00 America/New_York of `d`, as UTC epoch milliseconds (daily bars' `t`).
pub fn et_midnight_ms(d: NaiveDate) -> i64 {
    zone_midnight_ms(New_York, d)
}

/// 00:00 UTC of `d`, as UTC epoch milliseconds.
pub fn utc_midnight_ms(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// The America/New_York date of the instant `ms` (UTC epoch milliseconds).
pub fn et_date_of_ms(ms: i64) -> NaiveDate {
    zone_date_of_ms(New_York, ms)
}

/// The last day whose data is final at `now`: a day counts as covered only once its
/// session has ended (US markets after 20:00 ET; crypto and forex after the day's end
/// in their zone).
pub fn last_complete_day(calendar: Calendar, now: DateTime<Utc>) -> NaiveDate {
    let local = now.with_timezone(&calendar.day_zone());
    let today = local.date_naive();
    let session_over = match calendar {
        Calendar::Nyse | Calendar::Weekdays => local.hour() >= 20,
        Calendar::Crypto | Calendar::Forex => false,
    };
    if session_over {
        today
    } else {
        today.pred_opt().unwrap_or(today)
    }
}

/// The days of `range` whose data is final at `now` (through [`last_complete_day`]);
/// `None` when none is.
pub fn complete_days(
    range: DateRange,
    calendar: Calendar,
    now: DateTime<Utc>,
) -> Option<DateRange> {
    DateRange::new(range.start, range.end.min(last_complete_day(calendar, now)))
}

/// Today's date in New York: the market's "today", used to clamp `--end`.
pub fn market_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&New_York).date_naive()
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
