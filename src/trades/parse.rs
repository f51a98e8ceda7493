//! A streaming reader of `trades_v1` CSV (already gunzipped): the header
//! names the columns, then each line is read into one reused buffer and
//! parsed in place, so memory is one line whatever the file's size.
//!
//! Columns (POLYGON.md, RUST-NOTES §3): `ticker,conditions,correction,
//! exchange,id,participant_timestamp,price,sequence_number,sip_timestamp,
//! size,tape,trf_id,trf_timestamp`. Only `ticker`, `conditions`,
//! `correction`, `price`, `sip_timestamp` and `size` are read; they are found
//! by name, so added or reordered columns do no harm. `conditions` is a comma
//! list of integer codes, quoted when it holds more than one (`"12,37"`), and
//! may be empty (a regular trade). Any field may be quoted.

use std::io::{BufRead, Read};

use super::error::TradesError;
use super::record::{Conditions, MAX_CONDITIONS, Trade};
use crate::flatfiles::find_byte;
use crate::number::{parse_f64, parse_i64};

/// The longest line accepted; trades lines are about 100 bytes.
pub const MAX_TRADE_LINE: usize = 16 * 1024;
/// The most columns a header may have.
const MAX_COLUMNS: usize = 64;

/// What a column feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Ignore,
    Ticker,
    Conditions,
    Correction,
    Price,
    SipTimestamp,
    Size,
}

const REQUIRED: [(&str, Slot); 6] = [
    ("ticker", Slot::Ticker),
    ("conditions", Slot::Conditions),
    ("correction", Slot::Correction),
    ("price", Slot::Price),
    ("sip_timestamp", Slot::SipTimestamp),
    ("size", Slot::Size),
];

/// Reads trades one line at a time from a `BufRead` of CSV text.
#[derive(Debug)]
pub struct TradesReader<R> {
    input: R,
    key: String,
    slots: Vec<Slot>,
    /// The line last read (the header counts as line 1).
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> TradesReader<R> {
    /// Reads the header of `input`; `key` names the file in errors.
    pub fn new(input: R, key: impl Into<String>) -> Result<Self, TradesError> {
        let mut reader = Self {
            input,
            key: key.into(),
            slots: Vec::new(),
            line: 0,
            buf: Vec::with_capacity(256),
        };
        if !reader.read_line()? {
            return Err(TradesError::Empty { key: reader.key });
        }
        reader.slots = reader.header()?;
        Ok(reader)
    }

    /// The key given to [`Self::new`].
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The number of the line last read (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next trade and its ticker, or `None` at the end of the input.
    /// Empty lines are skipped. A malformed row is an error naming its line.
    pub fn next_trade(&mut self) -> Result<Option<(&str, Trade)>, TradesError> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            if !self.buf.is_empty() {
                break;
            }
        }
        let (ticker, trade) = self.parse_row()?;
        Ok(Some((ticker, trade)))
    }

    /// Reads the next line into `buf` without its line end; `false` at the end.
    fn read_line(&mut self) -> Result<bool, TradesError> {
        self.buf.clear();
        let limit = MAX_TRADE_LINE as u64 + 1;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| TradesError::Io {
                key: self.key.clone(),
                line: self.line + 1,
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_TRADE_LINE {
            return Err(self.bad(None, format!("a line longer than {MAX_TRADE_LINE} bytes")));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(true)
    }

    fn header(&self) -> Result<Vec<Slot>, TradesError> {
        let line = self.buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&self.buf);
        let text = String::from_utf8_lossy(line);
        let names: Vec<&str> = text
            .split(',')
            .map(|n| n.trim().trim_matches('"'))
            .collect();
        if names.len() > MAX_COLUMNS {
            return Err(self.bad(
                None,
                format!(
                    "a header of {} columns, more than {MAX_COLUMNS}",
                    names.len()
                ),
            ));
        }
        let mut slots = vec![Slot::Ignore; names.len()];
        for (column, slot) in REQUIRED {
            match names.iter().position(|n| *n == column) {
                Some(index) => slots[index] = slot,
                None => {
                    return Err(TradesError::MissingColumn {
                        key: self.key.clone(),
                        column,
                        header: text.into_owned(),
                    });
                }
            }
        }
        Ok(slots)
    }

    /// One data row of `buf`.
    fn parse_row(&self) -> Result<(&str, Trade), TradesError> {
        let mut ticker: &[u8] = &[];
        let mut trade = Trade {
            sip_ns: 0,
            price: 0.0,
            size: 0.0,
            correction: 0,
            conditions: Conditions::NONE,
        };
        let mut fields = Fields {
            rest: Some(&self.buf),
        };
        for &slot in &self.slots {
            let Some(field) = fields.next() else {
                return Err(self.wrong_count());
            };
            let field = field.map_err(|detail| self.bad(None, detail))?;
            match slot {
                Slot::Ignore => {}
                Slot::Ticker => ticker = field,
                Slot::Conditions => {
                    trade.conditions =
                        conditions(field).map_err(|detail| self.bad(Some("conditions"), detail))?;
                }
                Slot::Correction => {
                    trade.correction = parse_i64(field)
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| self.not_a(field, "correction", "a code from 0 to 255"))?;
                }
                Slot::Price => {
                    trade.price = parse_f64(field)
                        .filter(|p| *p > 0.0)
                        .ok_or_else(|| self.not_a(field, "price", "a positive number"))?;
                }
                Slot::SipTimestamp => {
                    trade.sip_ns = parse_i64(field).ok_or_else(|| {
                        self.not_a(field, "sip_timestamp", "a whole number of nanoseconds")
                    })?;
                }
                Slot::Size => {
                    trade.size = parse_f64(field)
                        .filter(|s| *s >= 0.0)
                        .ok_or_else(|| self.not_a(field, "size", "a number of shares ≥ 0"))?;
                }
            }
        }
        if fields.next().is_some() {
            return Err(self.wrong_count());
        }
        if ticker.is_empty() {
            return Err(self.bad(Some("ticker"), "the ticker is empty".to_owned()));
        }
        let ticker = std::str::from_utf8(ticker)
            .map_err(|_| self.bad(Some("ticker"), "the ticker is not UTF-8".to_owned()))?;
        Ok((ticker, trade))
    }

    fn wrong_count(&self) -> TradesError {
        self.bad(
            None,
            format!(
                "the row does not have the header's {} fields (a truncated line, or an \
                 unclosed quote)",
                self.slots.len()
            ),
        )
    }

    fn not_a(&self, field: &[u8], column: &'static str, what: &str) -> TradesError {
        let shown = String::from_utf8_lossy(&field[..field.len().min(40)]);
        self.bad(Some(column), format!("{shown:?} is not {what}"))
    }

    fn bad(&self, column: Option<&'static str>, detail: String) -> TradesError {
        TradesError::BadRow {
            key: self.key.clone(),
            line: self.line,
            column,
            detail,
        }
    }
}

/// The fields of one line, quotes removed.
struct Fields<'l> {
    /// What is left to split; `None` once the last field was given.
    rest: Option<&'l [u8]>,
}

impl<'l> Iterator for Fields<'l> {
    type Item = Result<&'l [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let Some(close) = find_byte(quoted, b'"') else {
                self.rest = None;
                return Some(Err("a quoted field without its closing quote".to_owned()));
            };
            let field = &quoted[..close];
            let after = &quoted[close + 1..];
            return Some(match after.split_first() {
                None => {
                    self.rest = None;
                    Ok(field)
                }
                Some((b',', tail)) => {
                    self.rest = Some(tail);
                    Ok(field)
                }
                Some(_) => {
                    self.rest = None;
                    Err("text after a closing quote".to_owned())
                }
            });
        }
        Some(Ok(match find_byte(rest, b',') {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                &rest[..at]
            }
            None => {
                self.rest = None;
                rest
            }
        }))
    }
}

/// A comma list of condition codes (`12,37`), or empty.
fn conditions(field: &[u8]) -> Result<Conditions, String> {
    let mut out = Conditions::NONE;
    if field.is_empty() {
        return Ok(out);
    }
    for code in field.split(|b| *b == b',') {
        let code = code.trim_ascii();
        let value = parse_i64(code)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "{:?} is not a condition code (a whole number)",
                    String::from_utf8_lossy(code)
                )
            })?;
        if !out.push(value) {
            return Err(format!("more than {MAX_CONDITIONS} condition codes"));
        }
    }
    Ok(out)
}
