//! Polygon's flat files: one gzip CSV per day per dataset, holding every
//! ticker, on an S3 endpoint (POLYGON.md "Flat files").
//!
//! - `keys`: datasets, file kinds and object keys, both ways.
//! - `s3`: the client ([`FlatFiles`]): settings, listing, existence, error mapping.
//! - `read`: streaming one day's object into the decoder while it downloads.
//! - `decode`: the synchronous decoder, gzip bytes in, runs of bars out.
//! - `row`: the CSV layout by header name, and one row read into a bar.
//! - `number`: exact number parsing from CSV bytes.
//! - `error`: [`FlatFileError`] and [`DecodeError`].
//!
//! A day file is downloaded once and fanned out to every wanted ticker; its
//! rows come as [`TickerRun`]s, and `Ok` is returned only once the whole file
//! was read and its gzip trailer verified, so a caller that stages runs and
//! commits on `Ok` never keeps part of a file.

mod decode;
mod error;
mod keys;
mod read;
mod row;
// The byte search the trades reader (`crate::trades`) shares.
pub(crate) use row::find_byte;
mod s3;

pub use decode::{DayStats, LINE_BUFFER, MAX_LINE, RUN_CAP, TickerRun, decode_day};
pub use error::{DecodeError, FlatFileError};
pub use keys::{Dataset, DayFile, FileKind, month_prefix, object_key, parse_key};
pub use read::{CHUNK_QUEUE, DayReader, ObjectBytes, RUN_QUEUE};
pub(crate) use s3::{ClientSpec, ErrorContext, S3Failure, build_client, http_allowed};
pub use s3::{DEFAULT_BUCKET, DEFAULT_REGION, DEFAULT_TIMEOUT, FlatFiles, S3Settings};
