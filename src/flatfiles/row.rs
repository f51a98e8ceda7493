//! The CSV layout of an aggregates file: which column holds what, found by
//! header name, and one row turned into a [`Bar`] in a single pass over its
//! bytes. Also the byte search both lines and fields use.

use super::error::FlatFileError;
use super::keys::{DayFile, FileKind};
use crate::model::Bar;
use crate::number::{parse_f64, parse_i64};

/// The most columns a header may have.
const MAX_COLUMNS: usize = 64;

/// What a column feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The ticker (read apart), a duplicate, or a column finpipe does not use.
    Ignore,
    Open,
    High,
    Low,
    Close,
    Volume,
    Transactions,
    WindowStart,
}

/// Where each field of a row goes.
#[derive(Debug)]
pub(super) struct Layout {
    slots: Vec<Slot>,
    ticker: usize,
}

/// Why a row cannot be read; the decoder adds the key and line.
#[derive(Debug)]
pub(super) struct RowError {
    pub column: Option<&'static str>,
    pub detail: String,
}

impl Layout {
    /// The layout named by the header line. Requires `ticker`, `open`,
    /// `high`, `low`, `close`; `volume` and `transactions` unless the dataset
    /// has none (indices); `window_start` in minute files only, because day
    /// files' `window_start` is unreliable and not read.
    pub(super) fn from_header(line: &[u8], file: &DayFile) -> Result<Self, FlatFileError> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        if names.len() > MAX_COLUMNS {
            return Err(FlatFileError::BadRow {
                key: file.key.clone(),
                line: 1,
                column: None,
                detail: format!(
                    "a header of {} columns, more than the {MAX_COLUMNS} expected",
                    names.len()
                ),
            });
        }
        let position = |column: &str| names.iter().position(|n| *n == column);
        let mut required = vec!["ticker", "open", "high", "low", "close"];
        if file.dataset.has_volume() {
            required.extend(["volume", "transactions"]);
        }
        if file.kind == FileKind::MinuteAggs {
            required.push("window_start");
        }
        if let Some(column) = required.into_iter().find(|c| position(c).is_none()) {
            return Err(FlatFileError::MissingColumn {
                key: file.key.clone(),
                column,
                header: text.into_owned(),
            });
        }
        let slots = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let slot = match *name {
                    "open" => Slot::Open,
                    "high" => Slot::High,
                    "low" => Slot::Low,
                    "close" => Slot::Close,
                    "volume" => Slot::Volume,
                    "transactions" => Slot::Transactions,
                    "window_start" if file.kind == FileKind::MinuteAggs => Slot::WindowStart,
                    _ => Slot::Ignore,
                };
                // The first column of a name wins.
                if position(name) == Some(index) {
                    slot
                } else {
                    Slot::Ignore
                }
            })
            .collect();
        Ok(Self {
            slots,
            // Checked just above: `ticker` is among the required columns.
            ticker: position("ticker").unwrap_or_default(),
        })
    }

    /// The ticker field of a row (empty when the row is too short).
    pub(super) fn ticker<'l>(&self, line: &'l [u8]) -> &'l [u8] {
        let mut rest = line;
        for _ in 0..self.ticker {
            match find_byte(rest, b',') {
                Some(at) => rest = &rest[at + 1..],
                None => return &[],
            }
        }
        find_byte(rest, b',').map_or(rest, |at| &rest[..at])
    }

    /// The bar of a row. `day_stamp` is its timestamp when the file has no
    /// `window_start` slot (day files).
    pub(super) fn bar(&self, line: &[u8], day_stamp: i64) -> Result<Bar, RowError> {
        let mut bar = Bar {
            timestamp: day_stamp,
            open: f64::NAN,
            high: f64::NAN,
            low: f64::NAN,
            close: f64::NAN,
            volume: None,
            vwap: None,
            transactions: None,
        };
        let last = self.slots.len().saturating_sub(1);
        let mut rest = line;
        for (index, slot) in self.slots.iter().enumerate() {
            let field = match find_byte(rest, b',') {
                Some(at) if index < last => {
                    let field = &rest[..at];
                    rest = &rest[at + 1..];
                    field
                }
                None if index == last => rest,
                _ => return Err(self.wrong_field_count(line)),
            };
            match slot {
                Slot::Ignore => {}
                Slot::Open => bar.open = price(field, "open")?,
                Slot::High => bar.high = price(field, "high")?,
                Slot::Low => bar.low = price(field, "low")?,
                Slot::Close => bar.close = price(field, "close")?,
                Slot::Volume if field.is_empty() => {}
                Slot::Volume => bar.volume = Some(price(field, "volume")?),
                Slot::Transactions if field.is_empty() => {}
                Slot::Transactions => bar.transactions = Some(integer(field, "transactions")?),
                Slot::WindowStart => {
                    bar.timestamp = integer(field, "window_start")?.div_euclid(1_000_000);
                }
            }
        }
        Ok(bar)
    }

    fn wrong_field_count(&self, line: &[u8]) -> RowError {
        RowError {
            column: None,
            detail: format!(
                "{} fields where the header has {} (aggregates files have no quoted fields)",
                line.split(|b| *b == b',').count(),
                self.slots.len()
            ),
        }
    }
}

fn price(field: &[u8], column: &'static str) -> Result<f64, RowError> {
    parse_f64(field).ok_or_else(|| not_a_number(field, column))
}

fn integer(field: &[u8], column: &'static str) -> Result<i64, RowError> {
    parse_i64(field).ok_or_else(|| not_a_number(field, column))
}

fn not_a_number(field: &[u8], column: &'static str) -> RowError {
    let shown = String::from_utf8_lossy(&field[..field.len().min(40)]);
    let what = if column == "transactions" || column == "window_start" {
        "a whole number"
    } else {
        "a finite number"
    };
    RowError {
        column: Some(column),
        detail: format!("{shown:?} is not {what}"),
    }
}

/// The position of the first `needle` in `haystack`, eight bytes at a time.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let (words, tail) = haystack.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let diff = u64::from_le_bytes(*word) ^ pattern;
        // A byte of `found` is set where `diff` has a zero byte; borrows only
        // reach higher bytes, so the lowest set byte is a true match.
        let found = diff.wrapping_sub(ONES) & !diff & HIGHS;
        if found != 0 {
            return Some(index * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    tail.iter()
        .position(|b| *b == needle)
        .map(|at| words.len() * 8 + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let text = b"AAPL,4930,200.29,200.5,\n200.63,\x80\x0a,\xff,1744792500000000000,129\n";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let hay = &text[start..end];
                for needle in [b',', b'\n', 0x80, 0xff, b'x'] {
                    assert_eq!(
                        find_byte(hay, needle),
                        hay.iter().position(|b| *b == needle),
                        "{start}..{end} {needle}"
                    );
                }
            }
        }
    }
}
