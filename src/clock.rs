//! The one clock that decides "now". Tests, the simulator and `finpipe demo`
//! pin it (`FINPIPE_NOW=2024-12-01T06:00:00Z`) so dates in file names and
//! "today" are reproducible.

use chrono::{DateTime, NaiveDate, Utc};

/// Environment variable that pins the clock (RFC 3339 or `YYYY-MM-DD`).
pub const NOW_VAR: &str = "FINPIPE_NOW";

/// The wall clock, or a pinned instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    pinned: Option<DateTime<Utc>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { pinned: None }
    }

    /// A clock stopped at `at`.
    pub fn pinned(at: DateTime<Utc>) -> Self {
        Self { pinned: Some(at) }
    }

    /// Parses a pinned instant: RFC 3339, or a date (midnight UTC).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self::pinned(at.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|at| Self::pinned(at.and_utc()))
            .ok_or_else(|| format!("{NOW_VAR}={text:?} is neither RFC 3339 nor YYYY-MM-DD"))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.pinned.unwrap_or_else(Utc::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_clocks_parse_both_forms() {
        let c = Clock::parse("2024-12-01T06:00:00Z").unwrap();
        assert_eq!(c.now().to_rfc3339(), "2024-12-01T06:00:00+00:00");
        assert_eq!(
            Clock::parse("2024-12-01").unwrap().now().timestamp(),
            1_733_011_200
        );
        assert!(Clock::parse("tomorrow").is_err());
    }
}
