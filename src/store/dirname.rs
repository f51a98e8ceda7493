//! Ticker ↔ directory name: portable (no `:` `/` `\`), reversible, and
//! distinct on case-insensitive file systems (`KIMpL` and `KIMPL` differ).
//!
//! Scheme, byte by byte: `[A-Z0-9.-]` kept (but a leading `.` is escaped);
//! `:` → `~`; a lowercase ASCII letter `c` → `_c`; any other byte → `_` and
//! two uppercase hex digits. `X:BTCUSD` → `X~BTCUSD`, `KIMpL` → `KIM_pL`,
//! `A_B` → `A_5FB`, `..` → `_2E.`. Lowercasing an encoded name keeps it
//! decodable, because a hex escape always starts with a digit (tickers are
//! ASCII, so its first digit is 0–7) and a letter escape never does.

use crate::model::Ticker;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The directory name of `ticker` inside the library root.
pub fn ticker_dir(ticker: &Ticker) -> String {
    let symbol = ticker.as_str().as_bytes();
    let mut out = String::with_capacity(symbol.len() + 4);
    for (i, &b) in symbol.iter().enumerate() {
        match b {
            b'.' if i == 0 => push_hex(&mut out, b),
            b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => out.push(char::from(b)),
            b':' => out.push('~'),
            b'a'..=b'z' => {
                out.push('_');
                out.push(char::from(b));
            }
            _ => push_hex(&mut out, b),
        }
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    out.push('_');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// The ticker whose directory is `name`, or `None` when `name` is not a
/// directory name `ticker_dir` produces (other files and folders in the root).
pub fn ticker_from_dir(name: &str) -> Option<Ticker> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'~' => out.push(b':'),
            b'_' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_lowercase() {
                    out.push(next);
                    i += 1;
                } else {
                    let hi = hex_value(next).filter(|d| *d < 8)?;
                    let lo = hex_value(*bytes.get(i + 2)?)?;
                    out.push((hi << 4) | lo);
                    i += 2;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    let ticker = Ticker::new(String::from_utf8(out).ok()?).ok()?;
    // Only the canonical spelling names a ticker: `_41` is not another `A`.
    (ticker_dir(&ticker) == name).then_some(ticker)
}

/// The value of an uppercase hex digit.
fn hex_value(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn t(s: &str) -> Ticker {
        Ticker::new(s).unwrap()
    }

    #[test]
    fn examples_of_the_scheme() {
        for (ticker, dir) in [
            ("X:BTCUSD", "X~BTCUSD"),
            ("KIMpL", "KIM_pL"),
            ("KIMPL", "KIMPL"),
            ("BRK.A", "BRK.A"),
            ("A_B", "A_5FB"),
            (".A", "_2EA"),
            ("O:AAPL250117C00150000", "O~AAPL250117C00150000"),
            ("A~B%C", "A_7EB_25C"),
            ("I:SPX", "I~SPX"),
            ("abc", "_a_b_c"),
        ] {
            assert_eq!(ticker_dir(&t(ticker)), dir, "{ticker}");
            assert_eq!(ticker_from_dir(dir), Some(t(ticker)), "{dir}");
        }
    }

    #[test]
    fn names_that_are_not_ticker_directories_decode_to_none() {
        for name in [
            "",
            "_",
            "_4",
            "_41",        // not canonical: `A` is spelled `A`
            "_8F",        // not ASCII
            "_2e.",       // lowercase hex is never produced
            "a",          // a bare lowercase letter is never produced
            ".hidden",    // a leading dot is always escaped
            "finpipe.db", // the job table beside the data
            "A:B",
            "A B",
            "A_",
            "_5fB",
        ] {
            assert_eq!(ticker_from_dir(name), None, "{name:?}");
        }
    }

    /// Every ticker character, at every position, with a bias toward the
    /// characters that need escaping.
    fn generated_tickers() -> Vec<Ticker> {
        let visible: Vec<u8> = (0x21u8..0x7f)
            .filter(|b| *b != b'/' && *b != b'\\')
            .collect();
        let tricky = b"._~:-%aZz0";
        let mut out: Vec<Ticker> = Vec::new();
        // Dots alone are not tickers (they would be path segments in URLs).
        let mut push = |s: String| out.extend(Ticker::new(s).ok());
        for &a in &visible {
            push(String::from(char::from(a)));
            for &b in &visible {
                push(String::from_utf8(vec![a, b]).unwrap());
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(1..=64);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.bool() {
                        tricky[rng.usize(..tricky.len())]
                    } else {
                        visible[rng.usize(..visible.len())]
                    }
                })
                .collect();
            push(String::from_utf8(bytes).unwrap());
        }
        out
    }

    #[test]
    fn every_generated_ticker_round_trips_through_a_portable_name() {
        for ticker in generated_tickers() {
            let dir = ticker_dir(&ticker);
            assert!(
                !dir.contains([':', '/', '\\']) && !dir.starts_with('.'),
                "{ticker} → {dir}"
            );
            assert!(dir.len() <= 3 * 64, "{dir}");
            assert_eq!(ticker_from_dir(&dir).as_ref(), Some(&ticker), "{dir}");
        }
    }

    #[test]
    fn lowercased_names_never_collide() {
        let mut seen: HashMap<String, Ticker> = HashMap::new();
        for ticker in generated_tickers() {
            let folded = ticker_dir(&ticker).to_lowercase();
            if let Some(other) = seen.insert(folded.clone(), ticker.clone()) {
                assert_eq!(other, ticker, "{other} and {ticker} both fold to {folded}");
            }
        }
        assert!(seen.len() > 8_000);
    }
}
