//! How a bar is spelled as a CSV row in each layout, written by hand (no
//! field ever needs quoting: numbers, dates and a ticker code made of
//! `[A-Z0-9._~-]`).
//!
//! - finpipe: `t,o,h,l,c,v,vw,n`, the names of Polygon's aggregates JSON;
//!   `t` is the window start as ISO 8601 with the zone's offset
//!   (`2024-11-04T09:30:00-05:00`, milliseconds only when not zero).
//! - zipline (csvdir): `date,open,high,low,close,volume,dividend,split`;
//!   daily rows are dated by their trading day (`2024-11-04`); minute rows
//!   by the minute's end in UTC (`2024-11-04 14:31:00`), as zipline labels
//!   minutes (its first NYSE minute is 09:31), regular-session minutes only.
//!   `dividend` is 0 and `split` 1: csvdir takes every `split` other than 1
//!   for a split of that ratio.
//! - qlib: `date,symbol,open,high,low,close,volume,vwap`; `date` is the
//!   trading day (`2024-11-04`) for daily and longer bars, the window start
//!   in local time (`2024-11-04 09:30:00`) otherwise, the formats
//!   `dump_bin.py` writes its calendars in.
//!
//! Numbers are written in the shortest form that reads back as the same
//! double (Rust's `Display`); a missing value is an empty field (zipline's
//! missing volume is 0: it stores volumes as integers).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Offset, Timelike};
use chrono_tz::Tz;

use crate::calendar::{nyse_session, zone_date_of_ms, zone_midnight_ms};
use crate::model::{AssetClass, Bar};

const MINUTE_MS: i64 = 60_000;

/// The rows of one ticker's file.
pub(crate) struct RowFormat {
    kind: Kind,
    /// For zipline minutes: the NYSE regular session of the last day seen.
    session: SessionCache,
}

enum Kind {
    Polygon {
        zone: Tz,
    },
    ZiplineDaily {
        class: AssetClass,
    },
    ZiplineMinute,
    Qlib {
        symbol: String,
        class: AssetClass,
        zone: Tz,
        intraday: bool,
    },
}

impl RowFormat {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            session: SessionCache::default(),
        }
    }

    /// finpipe's layout: Polygon's names, timestamps in `zone`.
    pub(crate) fn polygon(zone: Tz) -> Self {
        Self::new(Kind::Polygon { zone })
    }

    pub(crate) fn zipline_daily(class: AssetClass) -> Self {
        Self::new(Kind::ZiplineDaily { class })
    }

    pub(crate) fn zipline_minute() -> Self {
        Self::new(Kind::ZiplineMinute)
    }

    /// qlib's layout for the instrument `symbol`; intraday times in `zone`.
    pub(crate) fn qlib(symbol: String, class: AssetClass, zone: Tz, intraday: bool) -> Self {
        Self::new(Kind::Qlib {
            symbol,
            class,
            zone,
            intraday,
        })
    }

    /// The header line, without its line end.
    pub(crate) fn header(&self) -> &'static str {
        match self.kind {
            Kind::Polygon { .. } => "t,o,h,l,c,v,vw,n",
            Kind::ZiplineDaily { .. } | Kind::ZiplineMinute => {
                "date,open,high,low,close,volume,dividend,split"
            }
            Kind::Qlib { .. } => "date,symbol,open,high,low,close,volume,vwap",
        }
    }

    /// Appends `bar`'s row and its line end to `out`; `false` (nothing
    /// appended) when the layout cannot hold the bar.
    pub(crate) fn push(&mut self, bar: &Bar, out: &mut String) -> bool {
        match &self.kind {
            Kind::Polygon { zone } => {
                push_iso(out, bar.timestamp, *zone);
                push_prices(out, bar);
                out.push(',');
                push_opt(out, bar.volume);
                out.push(',');
                push_opt(out, bar.vwap);
                out.push(',');
                if let Some(n) = bar.transactions {
                    put(out, format_args!("{n}"));
                }
            }
            Kind::ZiplineDaily { class } => {
                push_date(out, class.date_of(bar.timestamp));
                push_zipline_rest(out, bar);
            }
            Kind::ZiplineMinute => {
                let Some((open, close)) = self.session.regular(bar.timestamp) else {
                    return false;
                };
                let end = bar.timestamp + MINUTE_MS;
                if bar.timestamp < open || end > close {
                    return false;
                }
                push_naive(out, end, Tz::UTC);
                push_zipline_rest(out, bar);
            }
            Kind::Qlib {
                symbol,
                class,
                zone,
                intraday,
            } => {
                if *intraday {
                    push_naive(out, bar.timestamp, *zone);
                } else {
                    push_date(out, class.date_of(bar.timestamp));
                }
                out.push(',');
                out.push_str(symbol);
                push_prices(out, bar);
                out.push(',');
                push_opt(out, bar.volume);
                out.push(',');
                push_opt(out, bar.vwap);
            }
        }
        out.push('\n');
        true
    }
}

/// A span of UTC milliseconds, `[start, end)`.
type Span = (i64, i64);

/// The NYSE regular session of the New York day of the last instant asked
/// about, kept while instants stay in that day.
#[derive(Default)]
struct SessionCache {
    /// The cached day (midnight to midnight) and its session, if any.
    day: Option<(Span, Option<Span>)>,
}

impl SessionCache {
    fn regular(&mut self, ms: i64) -> Option<Span> {
        if let Some(((lo, hi), session)) = self.day
            && (lo..hi).contains(&ms)
        {
            return session;
        }
        let zone = chrono_tz::America::New_York;
        let date = zone_date_of_ms(zone, ms);
        let lo = zone_midnight_ms(zone, date);
        let hi = date
            .succ_opt()
            .map_or(i64::MAX, |next| zone_midnight_ms(zone, next));
        let session = nyse_session(date).map(|s| (s.regular_start_ms, s.regular_end_ms));
        self.day = Some(((lo, hi), session));
        session
    }
}

/// Appends formatted text (writing to a `String` cannot fail).
fn put(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

/// `,open,high,low,close`.
fn push_prices(out: &mut String, bar: &Bar) {
    for price in [bar.open, bar.high, bar.low, bar.close] {
        put(out, format_args!(",{price}"));
    }
}

/// `,open,high,low,close,volume,0,1` (no dividend, no split).
fn push_zipline_rest(out: &mut String, bar: &Bar) {
    push_prices(out, bar);
    put(out, format_args!(",{},0,1", bar.volume.unwrap_or(0.0)));
}

/// The value, or nothing for `None`.
fn push_opt(out: &mut String, value: Option<f64>) {
    if let Some(v) = value {
        put(out, format_args!("{v}"));
    }
}

/// `YYYY-MM-DD`.
fn push_date(out: &mut String, date: NaiveDate) {
    put(
        out,
        format_args!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day()),
    );
}

/// The local time of `ms` in `zone`, and `.mmm` when the milliseconds are
/// not zero: `YYYY-MM-DD{sep}HH:MM:SS[.mmm]`; returns the instant in `zone`.
fn push_local(out: &mut String, ms: i64, zone: Tz, sep: char) -> DateTime<Tz> {
    // Out of chrono's range (±262 000 years) never happens for a bar; the
    // epoch stands in rather than a panic.
    let local = DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&zone);
    push_date(out, local.date_naive());
    put(
        out,
        format_args!(
            "{sep}{:02}:{:02}:{:02}",
            local.hour(),
            local.minute(),
            local.second()
        ),
    );
    let millis = ms.rem_euclid(1000);
    if millis != 0 {
        put(out, format_args!(".{millis:03}"));
    }
    local
}

/// ISO 8601 with the offset in force: `2024-11-04T09:30:00-05:00`.
fn push_iso(out: &mut String, ms: i64, zone: Tz) {
    let local = push_local(out, ms, zone, 'T');
    let offset = local.offset().fix().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    put(
        out,
        format_args!("{sign}{:02}:{:02}", minutes / 60, minutes % 60),
    );
}

/// Local time without an offset: `2024-11-04 09:30:00`.
fn push_naive(out: &mut String, ms: i64, zone: Tz) {
    push_local(out, ms, zone, ' ');
}
