//! The helpers the job table's tests share (the conformance suite's and each
//! backend's), and the tests of what needs no backend.

use chrono::NaiveDate;

use super::*;

pub(crate) fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub(crate) fn range(start: &str, end: &str) -> DateRange {
    DateRange::new(d(start), d(end)).unwrap()
}

pub(crate) fn ticker(s: &str) -> Ticker {
    Ticker::new(s).unwrap()
}

pub(crate) fn tf(s: &str) -> Timeframe {
    s.parse().unwrap()
}

pub(crate) fn rest(symbol: &str, timeframe: &str, derived: &[&str], r: DateRange) -> NewJob {
    NewJob {
        kind: JobKind::Rest,
        ticker: ticker(symbol),
        timeframe: tf(timeframe),
        derived: derived.iter().map(|t| tf(t)).collect(),
        basis: Basis::Unadjusted,
        range: r,
    }
}

pub(crate) fn jan() -> DateRange {
    range("2024-01-01", "2024-01-31")
}

#[test]
fn kinds_and_states_round_trip_through_text() {
    for kind in JobKind::ALL {
        assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for state in JobState::ALL {
        assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
    }
    let err = "finished".parse::<JobState>().unwrap_err().to_string();
    assert!(err.contains("pending, running, done, failed"), "{err}");
    assert!("flatfiles".parse::<JobKind>().is_err());
}

#[test]
fn fail_reasons_round_trip_through_text_and_have_labels() {
    for reason in FailReason::ALL {
        assert_eq!(FailReason::parse(reason.as_str()), Some(reason));
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            serde_json::Value::String(reason.as_str().to_owned()),
            "serde says what is stored"
        );
    }
    let labels: Vec<_> = FailReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        [
            "429 storm",
            "refused key",
            "not entitled",
            "parse error",
            "disk",
            "network",
            "other"
        ]
    );
    assert_eq!(FailReason::parse("RateLimited"), None);
    assert_eq!(FailReason::parse(""), None);
}
