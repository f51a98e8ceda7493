//! What can go wrong with flat files, each error carrying its context (key,
//! line, column) and saying how to fix it; and whether retrying may help.

use std::io;

/// A flat-file failure. No variant ever holds an S3 secret: texts that come
/// from the S3 client are scrubbed of both keys before they are stored here.
#[derive(Debug, thiserror::Error)]
pub enum FlatFileError {
    /// A setting or argument is unusable.
    #[error("invalid flat-file {what}: {detail}")]
    Config { what: &'static str, detail: String },

    /// The server refused the request (HTTP 401/403, AccessDenied,
    /// SignatureDoesNotMatch, InvalidAccessKeyId).
    #[error(
        "the flat-file server {endpoint} refused access ({reason}): your plan lacks flat-file \
         access or the S3 keys are wrong: check MASSIVE_S3_ACCESS_KEY / MASSIVE_S3_SECRET_KEY"
    )]
    Forbidden { endpoint: String, reason: String },

    /// The object does not exist.
    #[error(
        "flat file {key} does not exist: the day has no file (holiday, weekend, before the \
         dataset's first day, or not published yet: a day appears about 11:00 ET the next day)"
    )]
    NotFound { key: String },

    /// The gzip stream or the download ended early.
    #[error(
        "flat file {key} ended early (truncated download or object); none of its rows may be \
         used: download it again"
    )]
    Truncated { key: String },

    /// The object is not valid gzip (bad header, corrupt data, checksum mismatch).
    #[error(
        "flat file {key} is not valid gzip ({detail}); download it again, and if it persists \
         the published object is damaged"
    )]
    Corrupt { key: String, detail: String },

    /// The CSV header lacks a column the file kind needs.
    #[error(
        "flat file {key} has no `{column}` column (header: {header:?}): it is not an \
         aggregates file of this dataset, or the format changed"
    )]
    MissingColumn {
        key: String,
        column: &'static str,
        header: String,
    },

    /// A data row cannot be read. `line` counts from 1, the header being line 1.
    #[error("flat file {key}, line {line}{}: {detail}", in_column(.column))]
    BadRow {
        key: String,
        line: u64,
        column: Option<&'static str>,
        detail: String,
    },

    /// Reading the bytes failed (local I/O, or a broken download stream).
    #[error("reading flat file {key} failed: {detail}; {}", retry_hint(*.transient))]
    Io {
        key: String,
        detail: String,
        transient: bool,
    },

    /// An S3 request failed for another reason (network, server, bucket).
    #[error("S3 request for {key} failed: {detail}; {}", retry_hint(*.transient))]
    S3 {
        key: String,
        detail: String,
        transient: bool,
    },
}

fn in_column(column: &Option<&'static str>) -> String {
    column
        .map(|c| format!(", column `{c}`"))
        .unwrap_or_default()
}

fn retry_hint(transient: bool) -> &'static str {
    if transient {
        "this looks temporary: retrying later may help"
    } else {
        "retrying will not help: check the flat-file endpoint (MASSIVE_S3_ENDPOINT) and the network"
    }
}

impl FlatFileError {
    /// Whether the same request may succeed later (network trouble, server
    /// errors, a download cut short). Credentials, missing objects and bad
    /// contents are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io { transient, .. } | Self::S3 { transient, .. } => *transient,
            Self::Truncated { .. } => true,
            Self::Config { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::Corrupt { .. }
            | Self::MissingColumn { .. }
            | Self::BadRow { .. } => false,
        }
    }

    /// The error for an I/O failure while reading `key`'s bytes through a gzip
    /// decoder: a [`FlatFileError`] carried inside the `io::Error` (from the
    /// download) comes back out; an early end is [`Self::Truncated`]; invalid
    /// gzip is [`Self::Corrupt`].
    pub(crate) fn from_read(key: &str, err: io::Error) -> Self {
        let err = match err.downcast::<Self>() {
            Ok(carried) => return carried,
            Err(err) => err,
        };
        let kind = err.kind();
        match kind {
            io::ErrorKind::UnexpectedEof => Self::Truncated {
                key: key.to_owned(),
            },
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => Self::Corrupt {
                key: key.to_owned(),
                detail: err.to_string(),
            },
            _ => Self::Io {
                key: key.to_owned(),
                detail: err.to_string(),
                transient: matches!(
                    kind,
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::NotConnected
                ),
            },
        }
    }
}

/// A decode that failed, either in the file or in the receiver of its runs
/// (the sink), whose own error comes back unchanged.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError<E> {
    /// The file could not be read; nothing decoded from it may be kept.
    #[error(transparent)]
    File(#[from] FlatFileError),
    /// The sink returned an error, which stopped the decode.
    #[error("storing decoded bars failed: {0}")]
    Sink(#[source] E),
}

impl<E> DecodeError<E> {
    /// The file error, if the file (not the sink) failed.
    pub fn file_error(&self) -> Option<&FlatFileError> {
        match self {
            Self::File(err) => Some(err),
            Self::Sink(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_map_to_what_happened() {
        let key = "k";
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete deflate stream");
        assert!(matches!(
            FlatFileError::from_read(key, eof),
            FlatFileError::Truncated { .. }
        ));
        let bad = io::Error::new(io::ErrorKind::InvalidInput, "invalid gzip header");
        let err = FlatFileError::from_read(key, bad);
        assert!(matches!(err, FlatFileError::Corrupt { .. }), "{err}");
        assert!(!err.is_transient());
        let carried = io::Error::other(FlatFileError::S3 {
            key: key.into(),
            detail: "connection reset".into(),
            transient: true,
        });
        let err = FlatFileError::from_read(key, carried);
        assert!(matches!(err, FlatFileError::S3 { .. }) && err.is_transient());
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert!(FlatFileError::from_read(key, reset).is_transient());
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let err = FlatFileError::BadRow {
            key: "k".into(),
            line: 7,
            column: Some("open"),
            detail: "\"x\" is not a number".into(),
        };
        assert_eq!(
            err.to_string(),
            "flat file k, line 7, column `open`: \"x\" is not a number"
        );
    }
}
