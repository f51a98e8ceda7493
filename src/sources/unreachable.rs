//! A flat-file endpoint that cannot be reached: recognised from a
//! [`FlatFileError`] (connection refused, a name that does not resolve, a
//! timeout or 5xx answers after the S3 client's own retries), said in one
//! message that names the endpoint and what to check, and recognised again
//! in a job's last error (which is text) so that a run can fall back to REST
//! for the days it could not read.

use crate::flatfiles::FlatFileError;

/// The flat-file endpoint could not be reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{LEAD}{endpoint}{MIDDLE}{cause}): check --flatfiles-url or MASSIVE_S3_ENDPOINT, and the network"
)]
pub struct Unreachable {
    /// `scheme://host[:port]`, without any `user:password@`, or a hint
    /// where it is set when the error did not name it.
    pub endpoint: String,
    /// What happened, in a few words: `connection refused, after retries`.
    pub cause: String,
}

const LEAD: &str = "the flat-file endpoint ";
const MIDDLE: &str = " cannot be reached (";
/// Said instead of the endpoint when the error text does not hold its URL.
const UNNAMED: &str = "(MASSIVE_S3_ENDPOINT)";

impl Unreachable {
    /// The endpoint failure behind `error`, if it is one: a failed S3
    /// request that may succeed later (the client retried it already). A
    /// refused key, a missing object or a bad file is not one; neither is a
    /// download cut short (a flaky transfer, retried as such).
    pub fn of(error: &FlatFileError) -> Option<Self> {
        let FlatFileError::S3 {
            detail,
            transient: true,
            ..
        } = error
        else {
            return None;
        };
        Some(Self {
            endpoint: endpoint_in(detail).unwrap_or_else(|| UNNAMED.to_owned()),
            cause: cause_of(detail),
        })
    }

    /// The failure whose message (this type's `Display`) is in `text`, a
    /// job's last error.
    pub fn in_text(text: &str) -> Option<Self> {
        let rest = &text[text.find(LEAD)? + LEAD.len()..];
        let (endpoint, rest) = rest.split_once(MIDDLE)?;
        let (cause, _) = rest.split_once("): ")?;
        Some(Self {
            endpoint: endpoint.to_owned(),
            cause: cause.to_owned(),
        })
    }
}

/// The first `http://` or `https://` URL's origin in `text`, without user
/// information.
fn endpoint_in(text: &str) -> Option<String> {
    let start = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| text.find(scheme))
        .min()?;
    let url = &text[start..];
    let (scheme, rest) = url.split_once("://")?;
    let end = rest
        .find(['/', '?', '#', ' ', '"', '\'', ')', ','])
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// What happened, in a few words, from the S3 client's error text.
fn cause_of(detail: &str) -> String {
    let text = detail.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let cause = if has(&["connection refused"]) {
        "connection refused".to_owned()
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "nodename nor servname",
        "no such host",
    ]) {
        "its host name does not resolve".to_owned()
    } else if let Some(status) = status_in(&text) {
        format!("HTTP {status}")
    } else if has(&["timed out", "timeout", "deadline"]) {
        "timed out".to_owned()
    } else if has(&["connection reset", "connection closed", "broken pipe"]) {
        "the connection dropped".to_owned()
    } else {
        "a network error".to_owned()
    };
    if has(&["retries"]) {
        format!("{cause}, after retries")
    } else {
        cause
    }
}

/// The HTTP status in `text` (`… status code: 503 …`), if any.
fn status_in(text: &str) -> Option<u16> {
    let marker = "status code: ";
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(detail: &str, transient: bool) -> FlatFileError {
        FlatFileError::S3 {
            key: "us_stocks_sip/day_aggs_v1/2024/10/".into(),
            detail: detail.into(),
            transient,
        }
    }

    #[test]
    fn refused_connections_name_the_endpoint_and_what_to_check() {
        // What object_store says against a closed port, after its retries.
        let error = s3(
            "Generic S3 error: Error performing list request: Error performing GET \
             http://127.0.0.1:1/flatfiles?list-type=2&prefix=us_stocks_sip%2F in 2.6s, after 10 \
             retries, max_retries: 10, retry_timeout: 180s  - HTTP error: error sending request: \
             client error (Connect): tcp connect error: Connection refused (os error 111)",
            true,
        );
        let found = Unreachable::of(&error).unwrap();
        assert_eq!(found.endpoint, "http://127.0.0.1:1");
        assert_eq!(found.cause, "connection refused, after retries");
        let message = found.to_string();
        assert_eq!(
            message,
            "the flat-file endpoint http://127.0.0.1:1 cannot be reached (connection refused, \
             after retries): check --flatfiles-url or MASSIVE_S3_ENDPOINT, and the network"
        );
        // Recognised again inside a job's last error.
        assert_eq!(
            Unreachable::in_text(&format!("job #4 failed: {message}")),
            Some(found)
        );
        assert_eq!(Unreachable::in_text("S3 request for x failed"), None);
    }

    #[test]
    fn dns_failures_and_server_errors_are_unreachable_too() {
        let dns = s3(
            "Error performing GET https://files.example.invalid/flatfiles?list-type=2 in 5s, \
             after 10 retries - HTTP error: error sending request: client error (Connect): dns \
             error: failed to lookup address information: Name or service not known",
            true,
        );
        let found = Unreachable::of(&dns).unwrap();
        assert_eq!(found.endpoint, "https://files.example.invalid");
        assert_eq!(found.cause, "its host name does not resolve, after retries");
        let busy = s3(
            "Error performing GET https://user:pw@files.massive.com/flatfiles/x.csv.gz in 9s, \
             after 10 retries - Server returned non-2xx status code: 503 Service Unavailable",
            true,
        );
        let found = Unreachable::of(&busy).unwrap();
        assert_eq!(
            found.endpoint, "https://files.massive.com",
            "no user information"
        );
        assert_eq!(found.cause, "HTTP 503, after retries");
        // No URL in the text: where to set it instead.
        let bare = Unreachable::of(&s3("connection reset by peer", true)).unwrap();
        assert_eq!(bare.endpoint, UNNAMED);
        assert_eq!(bare.cause, "the connection dropped");
    }

    #[test]
    fn other_failures_are_not_the_endpoints() {
        assert_eq!(Unreachable::of(&s3("NoSuchBucket", false)), None);
        let denied = FlatFileError::Forbidden {
            endpoint: "https://files.massive.com".into(),
            reason: "InvalidAccessKeyId".into(),
        };
        assert_eq!(Unreachable::of(&denied), None);
        let cut = FlatFileError::Truncated { key: "k".into() };
        assert_eq!(Unreachable::of(&cut), None);
    }
}
