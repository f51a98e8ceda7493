//! Number parsing straight from bytes (flat-file CSV fields, REST JSON
//! numbers), as exact as `str::parse`.
//!
//! Aggregates fields are short plain decimals (`200.29`, `69.86160000000000`,
//! `4930`). Those whose significant digits fit in 2^53 and whose fraction has
//! at most 22 digits are computed as `digits / 10^k`: both operands are exact
//! doubles and IEEE division rounds correctly (Clinger's fast path), so the
//! result is the one `str::parse::<f64>` gives. Anything else (exponents,
//! long mantissas, `NaN`) goes through `str::parse`.

/// Exact powers of ten as doubles, 10^0 ..= 10^22.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The largest integer below which every integer is an exact double.
const EXACT_LIMIT: u64 = 1 << 53;

/// A finite decimal number, or `None` when the field is not one (empty, junk,
/// infinite or NaN).
#[inline]
pub(crate) fn parse_f64(field: &[u8]) -> Option<f64> {
    match fast_f64(field) {
        Some(value) => Some(value),
        None => slow_f64(field),
    }
}

/// The standard parser, for what the fast path does not take.
#[cold]
#[inline(never)]
fn slow_f64(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `[+-]digits[.digits]` by the exact fast path, or `None` to fall back.
#[inline]
fn fast_f64(field: &[u8]) -> Option<f64> {
    let (negative, digits) = split_sign(field);
    let (whole, fraction) = match digits.iter().position(|b| *b == b'.') {
        Some(dot) => (&digits[..dot], trim_zeros(&digits[dot + 1..])),
        None => (digits, &digits[..0]),
    };
    // Up to 19 digits cannot overflow a u64; longer ones take the slow path.
    if whole.len() + fraction.len() > 19 || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let mantissa = fold_digits(fold_digits(0, whole)?, fraction)?;
    let scale = fraction.len();
    if mantissa > EXACT_LIMIT || scale >= POW10.len() {
        return None;
    }
    // Exact by the checks above: mantissa and 10^scale are exact doubles.
    let value = mantissa as f64 / POW10[scale];
    Some(if negative { -value } else { value })
}

/// `digits` without its trailing zeros (which do not change a fraction).
fn trim_zeros(mut digits: &[u8]) -> &[u8] {
    while let [head @ .., b'0'] = digits {
        digits = head;
    }
    digits
}

/// `start` followed by `digits`, as one number; `None` on a non-digit. The
/// caller keeps the total under 20 digits, so it cannot overflow.
fn fold_digits(start: u64, digits: &[u8]) -> Option<u64> {
    let mut value = start;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
    }
    Some(value)
}

fn split_sign(field: &[u8]) -> (bool, &[u8]) {
    match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, field),
    }
}

/// A decimal integer (`1744792500000000000`, `-5`), or `None` when the field
/// is not one or does not fit.
pub(crate) fn parse_i64(field: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(field);
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    // At most 19 digits: below 10^19 < 2^64, so the fold cannot overflow.
    let magnitude = fold_digits(0, digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_f64(s: &str) -> Option<f64> {
        s.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    #[test]
    fn decimals_match_the_standard_parser_bit_for_bit() {
        for s in [
            "200.29",
            "69.86160000000000",
            "0.0001",
            "4930",
            "-1.5",
            "+2.25",
            "0",
            "-0",
            ".5",
            "5.",
            "9007199254740993",
            "123456789012345678901234567890",
            "1e5",
            "1.5E-3",
            "0.1234567890123456789012345",
            "61.565",
            "100.40650000000000",
        ] {
            let ours = parse_f64(s.as_bytes()).map(f64::to_bits);
            assert_eq!(ours, std_f64(s).map(f64::to_bits), "{s}");
        }
    }

    #[test]
    fn random_prices_match_the_standard_parser() {
        // A small deterministic generator (xorshift) of prices like the files'.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let whole = next() % 1_000_000;
            let digits = (next() % 18) as usize;
            let fraction = next() % 10u64.pow(digits.min(17) as u32).max(1);
            let s = if digits == 0 {
                format!("{whole}")
            } else {
                format!("{whole}.{fraction:0digits$}")
            };
            let ours = parse_f64(s.as_bytes()).map(f64::to_bits);
            assert_eq!(ours, std_f64(&s).map(f64::to_bits), "{s}");
        }
    }

    #[test]
    fn junk_is_not_a_number() {
        for s in ["", "-", ".", "abc", "1.2.3", "1,5", "NaN", "inf", "1 "] {
            assert_eq!(parse_f64(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn integers_parse_exactly_and_reject_overflow() {
        assert_eq!(
            parse_i64(b"1744792500000000000"),
            Some(1_744_792_500_000_000_000)
        );
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for s in ["", "-", "9223372036854775808", "1.0", "12a", " 1"] {
            assert_eq!(parse_i64(s.as_bytes()), None, "{s:?}");
        }
    }
}
