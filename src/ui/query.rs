//! Strict query strings for the JSON API: only the parameters an endpoint
//! names, each at most once, each value checked; anything else is a 400
//! with a message that says what is accepted.

use std::collections::BTreeMap;

/// A parsed query string: parameter → value.
#[derive(Debug, Default)]
pub(super) struct Query {
    values: BTreeMap<String, String>,
}

/// Why a query string was refused (the message of the 400).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadQuery(pub(super) String);

impl Query {
    /// Parses `raw` (without its `?`), accepting only the names in
    /// `allowed`.
    pub(super) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, BadQuery> {
        let mut values = BTreeMap::new();
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Self { values });
        };
        if raw.len() > super::http::MAX_QUERY {
            return Err(BadQuery(format!(
                "the query string is {} bytes long; at most {} are accepted",
                raw.len(),
                super::http::MAX_QUERY
            )));
        }
        // A `%` that starts no escape is malformed, whatever form_urlencoded
        // would make of it.
        let bytes = raw.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err(BadQuery(
                    "malformed percent-encoding in the query string".into(),
                ));
            }
        }
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            if !pair.contains('=') {
                return Err(BadQuery(format!(
                    "malformed query parameter {:?}: expected name=value",
                    short(pair)
                )));
            }
        }
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(BadQuery(if allowed.is_empty() {
                    format!(
                        "unknown query parameter {:?}: this endpoint takes none",
                        short(&name)
                    )
                } else {
                    format!(
                        "unknown query parameter {:?}; accepted: {}",
                        short(&name),
                        allowed.join(", ")
                    )
                }));
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(BadQuery(format!(
                    "query parameter {:?} given twice",
                    short(&name)
                )));
            }
        }
        Ok(Self { values })
    }

    /// The value of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A whole number in `0..=max`, or `default` when not given.
    pub(super) fn number(&self, name: &str, default: usize, max: usize) -> Result<usize, BadQuery> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(BadQuery(format!(
                "query parameter {name}={:?} must be a whole number from 0 to {max}",
                short(text)
            ))),
        }
    }
}

/// At most 40 characters of a value, for messages.
fn short(text: &str) -> String {
    if text.chars().count() > 40 {
        let head: String = text.chars().take(40).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_parameters_once_each_with_valid_values() {
        let q = Query::parse(Some("timeframe=1m&limit=20"), &["timeframe", "limit"]).unwrap();
        assert_eq!(q.get("timeframe"), Some("1m"));
        assert_eq!(q.number("limit", 5, 100), Ok(20));
        assert_eq!(q.number("offset", 7, 100), Ok(7));
        assert!(q.number("limit", 5, 10).is_err());
        assert!(Query::parse(Some("x=1"), &["timeframe"]).is_err());
        assert!(
            Query::parse(Some("x=1"), &[])
                .unwrap_err()
                .0
                .contains("takes none")
        );
        assert!(Query::parse(Some("limit=1&limit=2"), &["limit"]).is_err());
        assert!(Query::parse(Some("limit"), &["limit"]).is_err());
        assert!(Query::parse(Some("limit=%zz"), &["limit"]).is_err());
        assert!(Query::parse(Some(&"a=1&".repeat(400)), &["a"]).is_err());
        assert!(Query::parse(None, &[]).is_ok());
        assert!(Query::parse(Some(""), &[]).is_ok());
        let q = Query::parse(Some("limit=abc"), &["limit"]).unwrap();
        assert!(q.number("limit", 1, 10).is_err());
    }
}
