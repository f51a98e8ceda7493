//! A secret value (API key, S3 keys) as a type that never prints.
//!
//! A leaf, like the rate-limit type (`polygon::RateLimit`): `config` resolves
//! both and re-exports this one (`config::Secret`), and `polygon` takes them
//! without importing `config` back.

use std::fmt;

/// A secret value (API key, S3 secret). Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A masked form for display: the length and at most the last 4 characters
    /// of long secrets (`********…WXYZ (32 chars)`), nothing of short ones.
    pub fn masked(&self) -> String {
        let chars = self.0.chars().count();
        if chars >= 16 {
            let tail: String = self.0.chars().skip(chars - 4).collect();
            format!("********{tail} ({chars} chars)")
        } else {
            format!("******** ({chars} chars)")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let s = Secret::new("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{s} {s:?}"), "******** Secret(********)");
        assert!(!s.masked().contains("abcdefghij"));
        assert!(Secret::new("short").masked().starts_with("********"));
    }
}
