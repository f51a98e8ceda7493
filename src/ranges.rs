//! Inclusive date ranges and the two set operations planning needs: the union
//! of what is stored or planned, and what remains of a request after
//! subtracting it. Pure functions, no I/O.

use std::fmt;

use chrono::NaiveDate;

/// The days `start..=end`, both inclusive. Always non-empty: `start <= end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct DateRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DateRange {
    /// The range `start..=end`, or `None` when `start > end`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// The single day `day..=day`.
    pub fn day(day: NaiveDate) -> Self {
        Self {
            start: day,
            end: day,
        }
    }

    /// Number of days in the range, at least 1.
    pub fn days(self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    /// Whether `day` lies in the range.
    pub fn contains(self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }

    /// Whether the two ranges share at least one day.
    pub fn overlaps(self, other: Self) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for DateRange {
    /// `2024-01-01..2024-01-31` (both ends inclusive).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// The union of `ranges`: sorted by start, with overlapping and adjacent
/// ranges (one ending the day before the next starts) merged into one.
pub fn union(ranges: impl IntoIterator<Item = DateRange>) -> Vec<DateRange> {
    let mut sorted: Vec<DateRange> = ranges.into_iter().collect();
    sorted.sort_unstable();
    let mut out: Vec<DateRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match out.last_mut() {
            // `last.end.succ_opt()` is None only at NaiveDate::MAX, which
            // nothing can follow: then `range` lies inside `last` already.
            Some(last) if last.end.succ_opt().is_none_or(|next| range.start <= next) => {
                last.end = last.end.max(range.end);
            }
            _ => out.push(range),
        }
    }
    out
}

/// The parts of `want` not inside any of `have`, sorted. `have` may be in any
/// order and may overlap.
pub fn subtract(want: DateRange, have: &[DateRange]) -> Vec<DateRange> {
    let mut out = Vec::new();
    // First day of `want` not yet known to be covered or emitted.
    let mut cursor = want.start;
    for h in union(have.iter().copied()) {
        if h.end < cursor {
            continue;
        }
        if h.start > want.end {
            break;
        }
        if h.start > cursor {
            // `h.start > cursor >= NaiveDate::MIN`, so the day before exists.
            if let Some(before) = h.start.pred_opt() {
                out.push(DateRange {
                    start: cursor,
                    end: before,
                });
            }
        }
        match h.end.succ_opt() {
            Some(next) if next <= want.end => cursor = next,
            _ => return out,
        }
    }
    out.push(DateRange {
        start: cursor,
        end: want.end,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn r(start: &str, end: &str) -> DateRange {
        DateRange::new(d(start), d(end)).unwrap()
    }

    #[test]
    fn new_days_contains_and_display() {
        assert!(DateRange::new(d("2024-01-02"), d("2024-01-01")).is_none());
        let one = r("2024-02-29", "2024-02-29");
        assert_eq!(one, DateRange::day(d("2024-02-29")));
        assert_eq!(one.days(), 1);
        let leap = r("2024-02-01", "2024-03-01");
        assert_eq!(leap.days(), 30);
        assert!(leap.contains(d("2024-02-01")));
        assert!(leap.contains(d("2024-03-01")));
        assert!(!leap.contains(d("2024-01-31")));
        assert!(!leap.contains(d("2024-03-02")));
        assert_eq!(leap.to_string(), "2024-02-01..2024-03-01");
        assert!(leap.overlaps(r("2024-03-01", "2024-04-01")));
        assert!(!leap.overlaps(r("2024-03-02", "2024-04-01")));
    }

    #[test]
    fn union_of_nothing_is_empty() {
        assert!(union([]).is_empty());
    }

    #[test]
    fn union_merges_overlapping_and_adjacent_but_not_gapped() {
        let got = union([
            r("2024-01-10", "2024-01-20"),
            r("2024-01-01", "2024-01-05"),
            r("2024-01-06", "2024-01-09"), // adjacent on both sides
            r("2024-02-01", "2024-02-10"),
            r("2024-02-12", "2024-02-15"), // one-day gap (02-11): kept apart
            r("2024-02-05", "2024-02-08"), // nested
        ]);
        assert_eq!(
            got,
            [
                r("2024-01-01", "2024-01-20"),
                r("2024-02-01", "2024-02-10"),
                r("2024-02-12", "2024-02-15"),
            ]
        );
    }

    #[test]
    fn union_handles_duplicates_nesting_and_single_days() {
        let got = union([
            r("2024-01-01", "2024-12-31"),
            r("2024-03-01", "2024-03-01"),
            r("2024-01-01", "2024-12-31"),
            r("2025-01-01", "2025-01-01"), // adjacent across a year end
        ]);
        assert_eq!(got, [r("2024-01-01", "2025-01-01")]);
    }

    #[test]
    fn union_at_the_ends_of_the_calendar() {
        let max = NaiveDate::MAX;
        let min = NaiveDate::MIN;
        let all = DateRange::new(min, max).unwrap();
        assert_eq!(union([all, r("2024-01-01", "2024-01-02")]), [all]);
        let tail = DateRange::new(d("2024-01-01"), max).unwrap();
        assert_eq!(union([tail, DateRange::day(max)]), [tail]);
    }

    #[test]
    fn subtract_nothing_leaves_the_whole_range() {
        let want = r("2024-01-01", "2024-01-31");
        assert_eq!(subtract(want, &[]), [want]);
        // Ranges that touch `want` only from outside remove nothing.
        let outside = [r("2023-12-01", "2023-12-31"), r("2024-02-01", "2024-02-10")];
        assert_eq!(subtract(want, &outside), [want]);
    }

    #[test]
    fn subtract_everything_leaves_nothing() {
        let want = r("2024-01-01", "2024-01-31");
        assert!(subtract(want, &[want]).is_empty());
        assert!(subtract(want, &[r("2023-01-01", "2025-01-01")]).is_empty());
        // Covered by two adjacent pieces given out of order.
        let pieces = [r("2024-01-16", "2024-02-01"), r("2023-12-31", "2024-01-15")];
        assert!(subtract(want, &pieces).is_empty());
    }

    #[test]
    fn subtract_edge_days() {
        let want = r("2024-01-01", "2024-01-31");
        // The first day covered.
        assert_eq!(
            subtract(want, &[r("2023-12-01", "2024-01-01")]),
            [r("2024-01-02", "2024-01-31")]
        );
        // The last day covered.
        assert_eq!(
            subtract(want, &[r("2024-01-31", "2024-03-01")]),
            [r("2024-01-01", "2024-01-30")]
        );
        // Everything but the first and the last day.
        assert_eq!(
            subtract(want, &[r("2024-01-02", "2024-01-30")]),
            [
                DateRange::day(d("2024-01-01")),
                DateRange::day(d("2024-01-31"))
            ]
        );
    }

    #[test]
    fn subtract_leaves_holes_sorted() {
        let want = r("2024-01-01", "2024-12-31");
        let have = [
            r("2024-06-01", "2024-06-30"),
            r("2024-02-01", "2024-02-29"),
            r("2024-06-10", "2024-06-12"), // nested inside another
            r("2024-07-01", "2024-07-31"), // adjacent to June
        ];
        assert_eq!(
            subtract(want, &have),
            [
                r("2024-01-01", "2024-01-31"),
                r("2024-03-01", "2024-05-31"),
                r("2024-08-01", "2024-12-31"),
            ]
        );
    }

    #[test]
    fn subtract_single_day_want() {
        let want = DateRange::day(d("2024-05-05"));
        assert_eq!(subtract(want, &[r("2024-05-06", "2024-05-07")]), [want]);
        assert!(subtract(want, &[r("2024-05-01", "2024-05-05")]).is_empty());
    }

    #[test]
    fn subtract_at_the_ends_of_the_calendar() {
        let want = DateRange::new(d("2024-01-01"), NaiveDate::MAX).unwrap();
        let have = [DateRange::new(d("2024-06-01"), NaiveDate::MAX).unwrap()];
        assert_eq!(subtract(want, &have), [r("2024-01-01", "2024-05-31")]);
        let from_min = DateRange::new(NaiveDate::MIN, d("2024-01-01")).unwrap();
        let have = [DateRange::new(NaiveDate::MIN, d("2023-12-31")).unwrap()];
        assert_eq!(subtract(from_min, &have), [DateRange::day(d("2024-01-01"))]);
    }

    #[test]
    fn union_then_subtract_round_trips() {
        // What is missing plus what is had covers exactly `want`.
        let want = r("2024-01-01", "2024-03-31");
        let have = [r("2024-01-10", "2024-01-20"), r("2024-03-01", "2024-04-15")];
        let missing = subtract(want, &have);
        let mut all: Vec<DateRange> = missing.clone();
        all.extend(have);
        assert_eq!(union(all), [r("2024-01-01", "2024-04-15")]);
        let days: i64 = missing.iter().map(|m| m.days()).sum();
        assert_eq!(days, 91 - 11 - 31);
    }
}
