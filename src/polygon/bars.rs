//! A fast decoder for aggregates pages.
//!
//! A 50 000-bar page is about 4 MB of `{"v":…,"vw":…,"o":…,…}` objects, and
//! general-purpose JSON decoding of it (exact float parsing included) cost
//! about 290 ns a bar, the largest share of a backfill's CPU. This scanner
//! reads that one shape in a single pass: an envelope of scalar fields around
//! a `results` array of objects whose values are plain numbers, each number
//! folded as it is read and converted exactly (see [`crate::number`]). Anything
//! else it meets (an escape, a nested value it does not expect, a `null` bar
//! field, a missing or duplicate field, invalid JSON) makes it give up, and
//! `serde_json` decodes the page instead, so results and errors are serde's.

use super::types::{AggBar, PageBody};
use crate::model::Bar;
use crate::number::{parse_f64, parse_i64};

/// Decodes an aggregates page into bars.
pub(crate) fn decode_agg_page(body: &[u8]) -> Result<PageBody<Bar>, serde_json::Error> {
    match Scanner::new(body).page() {
        Some(page) => Ok(page),
        None => PageBody::<AggBar>::decode(body).map(|page| PageBody {
            results: page.results.iter().map(Bar::from).collect(),
            next_url: page.next_url,
            request_id: page.request_id,
            adjusted: page.adjusted,
        }),
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

const T: u8 = 1;
const O: u8 = 2;
const H: u8 = 4;
const L: u8 = 8;
const C: u8 = 16;
const V: u8 = 32;
const VW: u8 = 64;
const N: u8 = 128;
const REQUIRED: u8 = T | O | H | L | C;

/// Integers below this are exact doubles.
const EXACT_LIMIT: u64 = 1 << 53;

/// Exact powers of ten as doubles, 10^0 ..= 10^22.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// The whole page, or `None` to hand over to serde.
    fn page(mut self) -> Option<PageBody<Bar>> {
        let mut page = PageBody {
            results: Vec::new(),
            next_url: None,
            request_id: None,
            adjusted: None,
        };
        // The envelope's fields seen so far: serde refuses a repeated one.
        let mut seen = 0u8;
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                let key = self.key()?;
                let field = match key {
                    b"results" => 1,
                    b"next_url" => 2,
                    b"request_id" => 4,
                    b"status" => 8,
                    b"adjusted" => 16,
                    _ => 0,
                };
                if seen & field != 0 {
                    return None;
                }
                seen |= field;
                match key {
                    b"results" => {
                        if self.peek()? == b'n' {
                            self.literal(b"null")?;
                        } else {
                            page.results = self.bars()?;
                        }
                    }
                    b"next_url" => page.next_url = self.optional_string()?,
                    b"request_id" => page.request_id = self.optional_string()?,
                    b"status" => drop(self.optional_string()?),
                    b"adjusted" => page.adjusted = self.optional_bool()?,
                    _ => self.skip_scalar()?,
                }
                match self.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.skip_ws();
        (self.at == self.bytes.len()).then_some(page)
    }

    /// The `results` array.
    fn bars(&mut self) -> Option<Vec<Bar>> {
        self.expect(b'[')?;
        // Bars are rarely under 60 bytes: a good first guess of the count.
        let mut bars = Vec::with_capacity((self.bytes.len() - self.at) / 60);
        if self.peek()? == b']' {
            self.at += 1;
            return Some(bars);
        }
        loop {
            bars.push(self.bar()?);
            match self.next()? {
                b',' => continue,
                b']' => return Some(bars),
                _ => return None,
            }
        }
    }

    fn bar(&mut self) -> Option<Bar> {
        self.expect(b'{')?;
        let mut bar = Bar {
            timestamp: 0,
            open: 0.0,
            high: 0.0,
            low: 0.0,
            close: 0.0,
            volume: None,
            vwap: None,
            transactions: None,
        };
        let mut seen = 0u8;
        loop {
            let field = match self.key()? {
                b"t" => {
                    bar.timestamp = self.int()?;
                    T
                }
                b"o" => {
                    bar.open = self.float()?;
                    O
                }
                b"h" => {
                    bar.high = self.float()?;
                    H
                }
                b"l" => {
                    bar.low = self.float()?;
                    L
                }
                b"c" => {
                    bar.close = self.float()?;
                    C
                }
                b"v" => {
                    bar.volume = Some(self.float()?);
                    V
                }
                b"vw" => {
                    bar.vwap = Some(self.float()?);
                    VW
                }
                b"n" => {
                    bar.transactions = Some(self.int()?);
                    N
                }
                // Any other field is ignored, as serde ignores it.
                _ => {
                    self.skip_scalar()?;
                    0
                }
            };
            if seen & field != 0 {
                return None;
            }
            seen |= field;
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        (seen & REQUIRED == REQUIRED).then_some(bar)
    }

    /// `"key":`, the key without its quotes.
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        self.skip_ws();
        // A bar's keys are one or two letters (`"t":`, `"vw":`): read them
        // without a search for the closing quote.
        let (bytes, at) = (self.bytes, self.at);
        if bytes.get(at) == Some(&b'"') {
            for len in 1..=2 {
                let end = at + 1 + len;
                if bytes.get(end..end + 2) == Some(&b"\":"[..])
                    && bytes[at + 1..end].iter().all(u8::is_ascii_alphabetic)
                {
                    self.at = end + 2;
                    return Some(&bytes[at + 1..end]);
                }
            }
        }
        let key = self.string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// A string without escapes, without its quotes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|b| matches!(b, b'"' | b'\\' | 0..=0x1f))?;
        if self.bytes[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.bytes[start..start + len])
    }

    fn optional_string(&mut self) -> Option<Option<String>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        let raw = self.string()?;
        String::from_utf8(raw.to_vec()).ok().map(Some)
    }

    fn optional_bool(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// Skips a string, number, boolean or null.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.float().map(drop),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A JSON number as the nearest double, folded in one pass; unusual
    /// forms (exponents, long mantissas) go through the exact slow parser.
    #[inline]
    fn float(&mut self) -> Option<f64> {
        self.skip_ws();
        let start = self.at;
        let (negative, mantissa, digits, scale) = self.decimal()?;
        if !matches!(self.bytes.get(self.at), Some(b'e' | b'E'))
            && digits <= 19
            && mantissa <= EXACT_LIMIT
            && scale < POW10.len()
        {
            // Exact: mantissa and 10^scale are exact doubles and IEEE
            // division rounds correctly (Clinger's fast path).
            let value = mantissa as f64 / POW10[scale];
            return Some(if negative { -value } else { value });
        }
        self.at = start;
        parse_f64(self.token()?)
    }

    /// A JSON integer that fits an `i64`.
    #[inline]
    fn int(&mut self) -> Option<i64> {
        self.skip_ws();
        let start = self.at;
        let (negative, mantissa, digits, scale) = self.decimal()?;
        // serde_json reads `-0` as a float, which an integer field refuses.
        if scale > 0
            || (negative && mantissa == 0)
            || matches!(self.bytes.get(self.at), Some(b'e' | b'E' | b'.'))
        {
            return None;
        }
        if digits <= 18 {
            // Below 10^18: the folded mantissa is exact and fits an i64.
            let value = mantissa.cast_signed();
            return Some(if negative { -value } else { value });
        }
        parse_i64(&self.bytes[start..self.at])
    }

    /// `-?digits(.digits)?` in JSON's grammar: (negative, mantissa folded with
    /// wrapping, significant digits read, digits after the point). Stops
    /// before an exponent.
    #[inline]
    fn decimal(&mut self) -> Option<(bool, u64, usize, usize)> {
        let bytes = self.bytes;
        let negative = bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let whole_start = self.at;
        let mut mantissa = 0u64;
        while let Some(digit) = bytes
            .get(self.at)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|d| *d < 10)
        {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.at += 1;
        }
        let whole = self.at - whole_start;
        // JSON: at least one digit, no leading zero.
        if whole == 0 || (whole > 1 && bytes[whole_start] == b'0') {
            return None;
        }
        let mut scale = 0;
        if bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            while let Some(digit) = bytes
                .get(self.at)
                .map(|b| b.wrapping_sub(b'0'))
                .filter(|d| *d < 10)
            {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
                self.at += 1;
                scale += 1;
            }
            if scale == 0 {
                return None;
            }
        }
        Some((negative, mantissa, whole + scale, scale))
    }

    /// The bytes of a number token, exponent included.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(self.bytes.len() - start);
        self.at = start + len;
        (len > 0).then(|| &self.bytes[start..start + len])
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(results: &str) -> String {
        format!(r#"{{"status":"OK","results":{results},"count":2}}"#)
    }

    /// What serde decodes, as bars.
    fn serde(results: &str) -> Vec<Bar> {
        let bars: Vec<AggBar> = serde_json::from_str(results).unwrap();
        bars.iter().map(Bar::from).collect()
    }

    /// The fast path alone, on a results array.
    fn fast(results: &str) -> Option<Vec<Bar>> {
        Scanner::new(wrap(results).as_bytes())
            .page()
            .map(|p| p.results)
    }

    fn decoded(results: &str) -> Result<Vec<Bar>, serde_json::Error> {
        decode_agg_page(wrap(results).as_bytes()).map(|p| p.results)
    }

    fn same(a: &PageBody<Bar>, b: &PageBody<AggBar>) -> bool {
        a.results
            .iter()
            .eq(b.results.iter().map(Bar::from).collect::<Vec<_>>().iter())
            && a.next_url == b.next_url
            && a.request_id == b.request_id
            && a.adjusted == b.adjusted
    }

    #[test]
    fn fixture_pages_decode_exactly_as_serde_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/polygon/rest/aggs");
        let mut fast_pages = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            let expected = PageBody::<AggBar>::decode(&body).unwrap();
            let got = decode_agg_page(&body).unwrap();
            assert!(same(&got, &expected), "{}", path.display());
            // Grouped bars carry a string `T`, which the fast path skips.
            if let Some(page) = Scanner::new(&body).page() {
                assert!(same(&page, &expected), "{}", path.display());
                fast_pages += 1;
            }
        }
        assert!(
            fast_pages >= 8,
            "only {fast_pages} fixtures took the fast path"
        );
    }

    #[test]
    fn every_field_and_whitespace_is_read() {
        let raw = r#" [ {"v":70790813,"vw":131.6292,"o":130.465,"c":130.15,"h":133.41,"l":129.89,"t":1673240400000,"n":645365} ,
            {"t" :-5,"o":1e2,"h":-0.5,"l":2.50,"c":3,"otc":true,"T":"X:BTC"} ] "#;
        let bars = fast(raw).unwrap();
        assert_eq!(bars, serde(raw));
        assert_eq!(bars[0].transactions, Some(645_365));
        assert_eq!(bars[1].volume, None);
        assert_eq!(bars[1].open, 100.0);
        assert_eq!(fast("[]"), Some(Vec::new()));
        let page = Scanner::new(br#"{"adjusted":false,"next_url":"https://x/y?cursor=a","request_id":"r1","results":null}"#)
            .page()
            .unwrap();
        assert_eq!(page.adjusted, Some(false));
        assert_eq!(page.next_url.as_deref(), Some("https://x/y?cursor=a"));
        assert_eq!(page.request_id.as_deref(), Some("r1"));
        assert!(Scanner::new(b"{}").page().unwrap().results.is_empty());
    }

    #[test]
    fn random_prices_match_serde_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut raw = String::from("[");
        let price = |rng: &mut fastrand::Rng| {
            let digits = rng.usize(0..18);
            let whole = rng.u32(0..100_000);
            if digits == 0 {
                whole.to_string()
            } else {
                let fraction = rng.u64(0..10u64.pow(digits as u32));
                format!("{whole}.{fraction:0digits$}")
            }
        };
        for i in 0..5000 {
            if i > 0 {
                raw.push(',');
            }
            raw.push_str(&format!(
                r#"{{"v":{},"vw":{},"o":{},"c":{},"h":{},"l":{},"t":{},"n":{}}}"#,
                price(&mut rng),
                price(&mut rng),
                price(&mut rng),
                price(&mut rng),
                price(&mut rng),
                price(&mut rng),
                rng.i64(0..2_000_000_000_000),
                rng.u32(..)
            ));
        }
        raw.push(']');
        let expected = serde(&raw);
        let got = fast(&raw).unwrap();
        for (a, b) in got.iter().zip(&expected) {
            for (x, y) in [
                (a.open, b.open),
                (a.high, b.high),
                (a.low, b.low),
                (a.close, b.close),
            ] {
                assert_eq!(x.to_bits(), y.to_bits(), "{x} vs {y}");
            }
            assert_eq!(a.volume.map(f64::to_bits), b.volume.map(f64::to_bits));
            assert_eq!(a.vwap.map(f64::to_bits), b.vwap.map(f64::to_bits));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn unusual_shapes_fall_back_to_serde() {
        for raw in [
            r#"[{"t":1,"o":1,"h":1,"l":1,"c":1,"vw":null}]"#,
            r#"[{"t":1,"o":1,"h":1,"l":1,"c":1,"a":[1]}]"#,
            r#"[{"\u0074":1,"o":1,"h":1,"l":1,"c":1}]"#,
        ] {
            assert_eq!(fast(raw), None, "{raw}");
            assert_eq!(decoded(raw).unwrap(), serde(raw), "{raw}");
        }
        for broken in [
            r#"[{"t":1,"o":1,"h":1,"l":1}]"#,
            r#"[{"t":1,"o":1,"h":1,"l":1,"c":1,"c":2}]"#,
            r#"[{"t":1,"o":1,"h":1,"l":1,"c":1}"#,
            r#"[{"t":1,"o":1.2.3,"h":1,"l":1,"c":1}]"#,
            r#"[{"t":1.0,"o":1,"h":1,"l":1,"c":1}]"#,
            r#"[{"t":1,"o":01,"h":1,"l":1,"c":1}]"#,
            r#"[{"t":1,"o":1.,"h":1,"l":1,"c":1}]"#,
            r#"[{"t":1,"o":+1,"h":1,"l":1,"c":1}]"#,
            r#"[{"t":-0,"o":1,"h":1,"l":1,"c":1}]"#,
        ] {
            assert_eq!(fast(broken), None, "{broken}");
            assert!(decoded(broken).is_err(), "{broken}");
        }
        // A repeated envelope field, or a status that is not a string.
        for page in [
            r#"{"next_url":"https://x/a","results":[],"next_url":"https://x/b"}"#,
            r#"{"adjusted":true,"adjusted":false,"results":[]}"#,
            r#"{"status":"OK","results":[],"status":"OK"}"#,
            r#"{"status":5,"results":[]}"#,
        ] {
            assert!(Scanner::new(page.as_bytes()).page().is_none(), "{page}");
            assert!(decode_agg_page(page.as_bytes()).is_err(), "{page}");
        }
        let trailing = format!("{} x", wrap("[]"));
        assert!(Scanner::new(trailing.as_bytes()).page().is_none());
        assert!(decode_agg_page(trailing.as_bytes()).is_err());
    }
}
