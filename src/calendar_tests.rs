//! Tests of the trading calendars (`calendar.rs`).

use super::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn holidays_of(year: i32) -> Vec<String> {
    d(&format!("{year}-01-01"))
        .iter_days()
        .take_while(|x| x.year() == year)
        .filter(|x| nyse_holiday(*x).is_some())
        .map(|x| x.to_string())
        .collect()
}

#[test]
fn nyse_holidays_2020_to_2027() {
    let expected: [(i32, &[&str]); 8] = [
        (
            2020,
            &[
                "2020-01-01",
                "2020-01-20",
                "2020-02-17",
                "2020-04-10",
                "2020-05-25",
                "2020-07-03",
                "2020-09-07",
                "2020-11-26",
                "2020-12-25",
            ],
        ),
        (
            2021,
            &[
                "2021-01-01",
                "2021-01-18",
                "2021-02-15",
                "2021-04-02",
                "2021-05-31",
                "2021-07-05",
                "2021-09-06",
                "2021-11-25",
                "2021-12-24",
            ],
        ),
        (
            2022,
            &[
                "2022-01-17",
                "2022-02-21",
                "2022-04-15",
                "2022-05-30",
                "2022-06-20",
                "2022-07-04",
                "2022-09-05",
                "2022-11-24",
                "2022-12-26",
            ],
        ),
        (
            2023,
            &[
                "2023-01-02",
                "2023-01-16",
                "2023-02-20",
                "2023-04-07",
                "2023-05-29",
                "2023-06-19",
                "2023-07-04",
                "2023-09-04",
                "2023-11-23",
                "2023-12-25",
            ],
        ),
        (
            2024,
            &[
                "2024-01-01",
                "2024-01-15",
                "2024-02-19",
                "2024-03-29",
                "2024-05-27",
                "2024-06-19",
                "2024-07-04",
                "2024-09-02",
                "2024-11-28",
                "2024-12-25",
            ],
        ),
        (
            2025,
            &[
                "2025-01-01",
                "2025-01-09",
                "2025-01-20",
                "2025-02-17",
                "2025-04-18",
                "2025-05-26",
                "2025-06-19",
                "2025-07-04",
                "2025-09-01",
                "2025-11-27",
                "2025-12-25",
            ],
        ),
        (
            2026,
            &[
                "2026-01-01",
                "2026-01-19",
                "2026-02-16",
                "2026-04-03",
                "2026-05-25",
                "2026-06-19",
                "2026-07-03",
                "2026-09-07",
                "2026-11-26",
                "2026-12-25",
            ],
        ),
        (
            2027,
            &[
                "2027-01-01",
                "2027-01-18",
                "2027-02-15",
                "2027-03-26",
                "2027-05-31",
                "2027-06-18",
                "2027-07-05",
                "2027-09-06",
                "2027-11-25",
                "2027-12-24",
            ],
        ),
    ];
    for (year, days) in expected {
        assert_eq!(holidays_of(year), days.to_vec(), "{year}");
    }
}

#[test]
fn holiday_names_and_weekend_rules() {
    assert_eq!(nyse_holiday(d("2021-12-24")), Some("Christmas Day"));
    assert_eq!(
        nyse_holiday(d("2021-12-31")),
        None,
        "Saturday New Year not observed Friday"
    );
    assert!(nyse_is_trading_day(d("2021-12-31")));
    assert_eq!(
        nyse_holiday(d("2022-06-20")),
        Some("Juneteenth National Independence Day")
    );
    assert_eq!(
        nyse_holiday(d("2021-06-18")),
        None,
        "no Juneteenth before 2022"
    );
    assert_eq!(nyse_holiday(d("2023-01-02")), Some("New Year's Day"));
    assert_eq!(
        nyse_holiday(d("2027-06-18")),
        Some("Juneteenth National Independence Day")
    );
    assert_eq!(nyse_holiday(d("2024-03-29")), Some("Good Friday"));
    assert_eq!(
        nyse_holiday(d("1997-01-20")),
        None,
        "no MLK Day before 1998"
    );
    assert_eq!(
        nyse_holiday(d("1998-01-19")),
        Some("Martin Luther King, Jr. Day")
    );
    assert_eq!(
        nyse_holiday(d("2024-07-06")),
        None,
        "weekends are not holidays"
    );
    assert!(!nyse_is_trading_day(d("2024-07-06")));
}

#[test]
fn one_off_closures() {
    for day in [
        "2001-09-11",
        "2001-09-12",
        "2001-09-13",
        "2001-09-14",
        "2004-06-11",
        "2007-01-02",
        "2012-10-29",
        "2012-10-30",
        "2018-12-05",
        "2025-01-09",
    ] {
        assert!(nyse_holiday(d(day)).is_some(), "{day}");
        assert!(!nyse_is_trading_day(d(day)), "{day}");
    }
    assert!(nyse_is_trading_day(d("2001-09-17")));
    assert!(nyse_is_trading_day(d("2012-10-31")));
}

#[test]
fn easter() {
    let known = [
        (2019, "2019-04-21"),
        (2020, "2020-04-12"),
        (2021, "2021-04-04"),
        (2022, "2022-04-17"),
        (2023, "2023-04-09"),
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2038, "2038-04-25"),
        (2008, "2008-03-23"),
    ];
    for (y, e) in known {
        assert_eq!(easter_sunday(y), d(e));
    }
}

#[test]
fn early_closes() {
    for day in [
        "2024-07-03",
        "2024-11-29",
        "2024-12-24",
        "2025-07-03",
        "2025-11-28",
        "2025-12-24",
        "2023-07-03",
        "2019-07-03",
        "2018-12-24",
        "2026-11-27",
        "2026-12-24",
    ] {
        assert!(nyse_early_close(d(day)), "{day}");
    }
    // July 4 on a weekend: no early close the trading day before.
    for day in [
        "2021-07-02",
        "2020-07-02",
        "2026-07-02",
        "2022-07-01",
        "2021-12-23",
        "2024-07-05",
        "2023-12-22",
    ] {
        assert!(!nyse_early_close(d(day)), "{day}");
    }
    // Holidays and weekends are never early closes.
    assert!(!nyse_early_close(d("2020-07-03")));
    assert!(!nyse_early_close(d("2021-12-24")));
    assert!(!nyse_early_close(d("2023-12-24")));
}

fn utc(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

#[test]
fn session_hours_follow_dst() {
    let winter = nyse_session(d("2024-03-08")).unwrap();
    assert_eq!(winter.extended_start_ms, utc("2024-03-08T09:00:00Z"));
    assert_eq!(winter.regular_start_ms, utc("2024-03-08T14:30:00Z"));
    assert_eq!(winter.regular_end_ms, utc("2024-03-08T21:00:00Z"));
    assert_eq!(winter.extended_end_ms, utc("2024-03-09T01:00:00Z"));
    let summer = nyse_session(d("2024-03-11")).unwrap();
    assert_eq!(summer.extended_start_ms, utc("2024-03-11T08:00:00Z"));
    assert_eq!(summer.regular_start_ms, utc("2024-03-11T13:30:00Z"));
    assert_eq!(summer.regular_end_ms, utc("2024-03-11T20:00:00Z"));
    assert_eq!(summer.extended_end_ms, utc("2024-03-12T00:00:00Z"));
    let after_fall_back = nyse_session(d("2024-11-04")).unwrap();
    assert_eq!(
        after_fall_back.extended_start_ms,
        utc("2024-11-04T09:00:00Z")
    );
    let before_fall_back = nyse_session(d("2024-11-01")).unwrap();
    assert_eq!(
        before_fall_back.extended_start_ms,
        utc("2024-11-01T08:00:00Z")
    );
    assert!(nyse_session(d("2024-12-25")).is_none());
    assert!(nyse_session(d("2024-03-09")).is_none());
}

#[test]
fn early_close_session() {
    let s = nyse_session(d("2024-11-29")).unwrap();
    assert_eq!(s.regular_end_ms, utc("2024-11-29T18:00:00Z"));
    assert_eq!(s.extended_end_ms, utc("2024-11-29T22:00:00Z"));
    let s = nyse_session(d("2024-07-03")).unwrap();
    assert_eq!(s.regular_end_ms, utc("2024-07-03T17:00:00Z"));
    assert_eq!(s.extended_end_ms, utc("2024-07-03T21:00:00Z"));
}

#[test]
fn trading_days_per_year() {
    for (year, count) in [
        (2019, 252),
        (2022, 251),
        (2023, 250),
        (2024, 252),
        (2021, 252),
        (2025, 250),
    ] {
        let n = Calendar::Nyse
            .open_days(d(&format!("{year}-01-01")), d(&format!("{year}-12-31")))
            .count();
        assert_eq!(n, count, "{year}");
    }
}

#[test]
fn other_calendars() {
    // 2024-09-01 is a Sunday, 2024-09-02 Labor Day, 2024-09-07 a Saturday.
    let (sun, labor, sat) = (d("2024-09-01"), d("2024-09-02"), d("2024-09-07"));
    assert!(!Calendar::Weekdays.is_open(sun));
    assert!(Calendar::Weekdays.is_open(labor));
    assert!(!Calendar::Weekdays.is_open(sat));
    assert!(!Calendar::Nyse.is_open(labor));
    assert!(Calendar::Forex.is_open(sun));
    assert!(Calendar::Forex.is_open(labor));
    assert!(!Calendar::Forex.is_open(sat));
    assert!(Calendar::Crypto.is_open(sat));
    assert_eq!(Calendar::Crypto.open_days(sun, sat).count(), 7);
    assert_eq!(Calendar::Forex.open_days(sun, sat).count(), 6);
    assert_eq!(Calendar::Weekdays.open_days(sun, sat).count(), 5);
    assert_eq!(Calendar::Nyse.open_days(sun, sat).count(), 4);
    assert_eq!(Calendar::Nyse.open_days(sat, sun).count(), 0);
}

#[test]
fn midnights_and_dates() {
    // Fixture convention: daily bars at 00:00 ET.
    assert_eq!(et_midnight_ms(d("2005-04-01")), 1_112_331_600_000);
    assert_eq!(et_midnight_ms(d("2005-04-04")), 1_112_587_200_000);
    assert_eq!(utc_midnight_ms(d("2021-07-22")), 1_626_912_000_000);
    assert_eq!(et_date_of_ms(1_112_331_600_000), d("2005-04-01"));
    assert_eq!(et_date_of_ms(1_112_331_600_000 - 1), d("2005-03-31"));
    // 2024-03-10 (spring forward) has 23 hours, 2024-11-03 has 25.
    assert_eq!(
        et_midnight_ms(d("2024-03-11")) - et_midnight_ms(d("2024-03-10")),
        23 * 3_600_000
    );
    assert_eq!(
        et_midnight_ms(d("2024-11-04")) - et_midnight_ms(d("2024-11-03")),
        25 * 3_600_000
    );
    // A wall time inside the spring-forward gap maps to the first valid instant.
    let gap = d("2024-03-10").and_hms_opt(2, 30, 0).unwrap();
    assert_eq!(zoned_ms(New_York, gap), utc("2024-03-10T07:00:00Z"));
}

#[test]
fn a_day_is_complete_only_after_its_session() {
    use crate::model::AssetClass;
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let complete = |class: AssetClass, now: &str| last_complete_day(class.calendar(), at(now));
    // 2024-12-02 23:00Z = 18:00 ET: the session runs until 20:00 ET.
    assert_eq!(
        complete(AssetClass::Stocks, "2024-12-02T23:00:00Z"),
        d("2024-12-01")
    );
    assert_eq!(
        complete(AssetClass::Stocks, "2024-12-03T01:30:00Z"),
        d("2024-12-02")
    );
    assert_eq!(
        complete(AssetClass::Indices, "2024-12-03T01:30:00Z"),
        d("2024-12-02")
    );
    assert_eq!(
        complete(AssetClass::Crypto, "2024-12-03T01:30:00Z"),
        d("2024-12-01")
    );
    assert_eq!(
        complete(AssetClass::Fx, "2024-12-03T01:30:00Z"),
        d("2024-12-02")
    );
    assert_eq!(market_today(at("2024-12-03T01:30:00Z")), d("2024-12-02"));
}

#[test]
fn the_complete_days_of_a_range_end_at_the_last_complete_day() {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let range = DateRange::new(d("2024-11-25"), d("2024-12-31")).unwrap();
    assert_eq!(
        complete_days(range, Calendar::Nyse, at("2024-12-03T01:30:00Z")),
        DateRange::new(d("2024-11-25"), d("2024-12-02"))
    );
    // Nothing of a range that starts after the last complete day.
    let later = DateRange::new(d("2024-12-03"), d("2024-12-31")).unwrap();
    assert_eq!(
        complete_days(later, Calendar::Nyse, at("2024-12-03T01:30:00Z")),
        None
    );
}
