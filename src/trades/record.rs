//! One trade as the aggregation needs it: SIP time, price, size, correction
//! code and condition codes, without the ticker (which the reader lends).

/// The most condition codes one trade may carry. The SIPs give at most four
/// sale conditions plus a few indicators; more is a malformed row.
pub const MAX_CONDITIONS: usize = 12;

/// A trade's condition codes, held inline (no allocation per trade).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    codes: [u16; MAX_CONDITIONS],
    len: u8,
}

impl Conditions {
    /// No condition: a regular trade.
    pub const NONE: Self = Self {
        codes: [0; MAX_CONDITIONS],
        len: 0,
    };

    /// The codes given, or `None` when there are more than [`MAX_CONDITIONS`].
    pub fn new(codes: &[u16]) -> Option<Self> {
        let mut out = Self::NONE;
        for &code in codes {
            if !out.push(code) {
                return None;
            }
        }
        Some(out)
    }

    /// Adds a code; `false` when full.
    pub fn push(&mut self, code: u16) -> bool {
        let Some(slot) = self.codes.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = code;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.codes[..usize::from(self.len)]
    }
}

/// One row of a `trades_v1` file, minus the ticker and the columns bars do
/// not use (exchange, id, participant and TRF times, tape, sequence number).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trade {
    /// `sip_timestamp`: nanoseconds since the Unix epoch, when the SIP
    /// received the trade. Bars are stamped from it.
    pub sip_ns: i64,
    pub price: f64,
    /// Shares (fractional shares are allowed).
    pub size: f64,
    /// The correction code ([`super::conditions::correction_counts`]).
    pub correction: u8,
    pub conditions: Conditions,
}

impl Trade {
    /// The SIP time in UTC milliseconds (rounded down), as bars are stamped.
    pub fn sip_ms(&self) -> i64 {
        self.sip_ns.div_euclid(1_000_000)
    }
}
