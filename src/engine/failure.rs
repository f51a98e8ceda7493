//! Why a job failed, decided where the error is still typed: [`JobFailure`]
//! sorts a failure by what should happen next (retry, fail for good, stop the
//! run) and carries its [`FailReason`], which the job table records with the
//! failure for the monitoring page. Nothing here reads an error's text.

use super::{EngineError, FatalKind};
use crate::flatfiles::FlatFileError;
use crate::jobs::{ErrorClass, FailReason, JobError};
use crate::polygon::ApiError;
use crate::store::StoreError;

/// A job's failure, sorted by what should happen next, with its reason.
#[derive(Debug)]
pub(crate) enum JobFailure {
    /// Trying again later may work.
    Transient(FailReason, String),
    /// This job cannot succeed as planned; other jobs may.
    Permanent(FailReason, String),
    /// Nothing can succeed (a rejected key, a full or read-only disk): stop
    /// the run. After a storage failure the jobs are given back, to run
    /// again once the user made room. The reason follows from the kind
    /// ([`fatal_reason`]).
    Fatal(FatalKind, String),
}

impl JobFailure {
    /// A task that ran part of the job died (a bug): tried again later.
    pub(crate) fn task_died(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Transient(FailReason::Other, format!("{what} died: {error}"))
    }

    /// Why the job failed.
    pub(crate) fn reason(&self) -> FailReason {
        match self {
            Self::Transient(reason, _) | Self::Permanent(reason, _) => *reason,
            Self::Fatal(kind, _) => fatal_reason(*kind),
        }
    }
}

/// The reason of a failure that stopped the run.
pub(crate) fn fatal_reason(kind: FatalKind) -> FailReason {
    match kind {
        FatalKind::Refused => FailReason::Refused,
        FatalKind::Storage(_) | FatalKind::WriteBack => FailReason::Disk,
        FatalKind::Unreachable => FailReason::Network,
    }
}

/// Why a REST request failed, from its error's variant (and HTTP status).
pub(crate) fn api_reason(error: &ApiError) -> FailReason {
    match error {
        ApiError::RateLimited { .. } => FailReason::RateLimited,
        ApiError::Unauthorized(_) => FailReason::Refused,
        // 403, `NOT_AUTHORIZED`: the plan does not cover the data.
        ApiError::Forbidden { .. } => FailReason::NotEntitled,
        ApiError::Decode { .. } | ApiError::Inconsistent { .. } => FailReason::Parse,
        ApiError::Unreachable { .. } | ApiError::Transport { .. } => FailReason::Network,
        ApiError::Http { reply, .. } if reply.status == 408 || reply.status >= 500 => {
            FailReason::Network
        }
        ApiError::Http { .. }
        | ApiError::NotFound { .. }
        | ApiError::Stopped
        | ApiError::BaseUrl { .. }
        | ApiError::Client(_) => FailReason::Other,
    }
}

/// Why the library failed: its storage (any I/O error), or a file in it
/// that cannot be read.
pub(crate) fn store_reason(error: &StoreError) -> FailReason {
    match error {
        StoreError::Io { .. } => FailReason::Disk,
        StoreError::Corrupt { .. } => FailReason::Parse,
        StoreError::Remote {
            transient: true, ..
        } => FailReason::Network,
        StoreError::Denied { .. } => FailReason::Refused,
        StoreError::Parquet { .. }
        | StoreError::BasisMismatch { .. }
        | StoreError::OutOfPeriod { .. }
        | StoreError::Conflict { .. }
        | StoreError::Remote { .. }
        | StoreError::Location { .. } => FailReason::Other,
    }
}

/// Why a flat file failed: refused access (the plan or the S3 keys), a
/// download or S3 request that may succeed later, or contents that cannot
/// be read.
pub(crate) fn flat_reason(error: &FlatFileError) -> FailReason {
    match error {
        FlatFileError::Forbidden { .. } => FailReason::NotEntitled,
        FlatFileError::Corrupt { .. }
        | FlatFileError::MissingColumn { .. }
        | FlatFileError::BadRow { .. } => FailReason::Parse,
        // A download cut short.
        FlatFileError::Truncated { .. } => FailReason::Network,
        FlatFileError::Io { transient, .. } | FlatFileError::S3 { transient, .. } => {
            if *transient {
                FailReason::Network
            } else {
                FailReason::Other
            }
        }
        FlatFileError::Config { .. } | FlatFileError::NotFound { .. } => FailReason::Other,
    }
}

/// Why the job table failed, from the error's class.
pub(crate) fn table_reason(error: &JobError) -> FailReason {
    match error.class() {
        ErrorClass::Storage => FailReason::Disk,
        ErrorClass::Corrupt => FailReason::Parse,
        _ => FailReason::Other,
    }
}

/// Why the engine's own work failed.
pub(crate) fn engine_reason(error: &EngineError) -> FailReason {
    if error.storage_fault().is_some() {
        return FailReason::Disk;
    }
    match error {
        EngineError::Jobs(error) => table_reason(error),
        EngineError::TableStorage { .. } => FailReason::Disk,
        EngineError::Store(error) => store_reason(error),
        EngineError::Worker(_) => FailReason::Other,
    }
}

impl From<ApiError> for JobFailure {
    fn from(error: ApiError) -> Self {
        let reason = api_reason(&error);
        if matches!(error, ApiError::Unreachable { .. }) {
            Self::Fatal(FatalKind::Unreachable, error.to_string())
        } else if error.is_fatal() {
            Self::Fatal(FatalKind::Refused, error.to_string())
        } else if error.is_transient() {
            Self::Transient(reason, error.to_string())
        } else {
            Self::Permanent(reason, error.to_string())
        }
    }
}

impl From<StoreError> for JobFailure {
    fn from(error: StoreError) -> Self {
        match error.storage_fault() {
            Some(fault) => Self::Fatal(FatalKind::Storage(fault), error.to_string()),
            // Lost races to other runners, S3 trouble that passes: later.
            None if error.is_transient() => {
                Self::Transient(store_reason(&error), error.to_string())
            }
            None => Self::Permanent(store_reason(&error), error.to_string()),
        }
    }
}

impl From<EngineError> for JobFailure {
    fn from(error: EngineError) -> Self {
        match (error.storage_fault(), error) {
            (Some(fault), error) => Self::Fatal(FatalKind::Storage(fault), error.to_string()),
            // Files that could not be made durable cannot be vouched for,
            // and nothing written after them can: stop.
            (None, EngineError::Store(error)) => {
                Self::Fatal(FatalKind::WriteBack, error.to_string())
            }
            (None, error) => Self::Transient(engine_reason(&error), error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;

    use super::*;
    use crate::fsutil::StorageFault;
    use crate::polygon::ServerReply;

    fn reply(status: u16) -> ServerReply {
        ServerReply {
            status,
            request_id: Some("r1".into()),
            message: "NOT_AUTHORIZED".into(),
        }
    }

    fn endpoint() -> String {
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-01-02/2024-01-31".into()
    }

    fn http(status: u16) -> ApiError {
        ApiError::Http {
            endpoint: endpoint(),
            reply: reply(status),
            attempts: 4,
        }
    }

    /// The failure of `error` as (what happens, reason).
    fn sorted(failure: JobFailure) -> (&'static str, FailReason) {
        let reason = failure.reason();
        let what = match failure {
            JobFailure::Transient(..) => "transient",
            JobFailure::Permanent(..) => "permanent",
            JobFailure::Fatal(..) => "fatal",
        };
        (what, reason)
    }

    #[test]
    fn api_errors_map_to_their_reasons_and_keep_their_handling() {
        let cases = [
            (
                ApiError::RateLimited {
                    endpoint: endpoint(),
                    reply: reply(429),
                    attempts: 6,
                },
                ("transient", FailReason::RateLimited),
            ),
            (
                ApiError::Unauthorized(reply(401)),
                ("fatal", FailReason::Refused),
            ),
            (
                ApiError::Forbidden {
                    endpoint: endpoint(),
                    reply: reply(403),
                },
                ("permanent", FailReason::NotEntitled),
            ),
            (
                ApiError::Decode {
                    endpoint: endpoint(),
                    status: 200,
                    bytes: 12,
                    request_id: None,
                    detail: "expected value".into(),
                    attempts: 3,
                },
                ("transient", FailReason::Parse),
            ),
            (
                ApiError::Inconsistent {
                    endpoint: endpoint(),
                    detail: "next_url loops".into(),
                },
                ("permanent", FailReason::Parse),
            ),
            (
                ApiError::Unreachable {
                    base: "http://127.0.0.1:9".into(),
                    detail: "connection refused".into(),
                    attempts: 4,
                },
                ("fatal", FailReason::Network),
            ),
            (
                ApiError::Transport {
                    endpoint: endpoint(),
                    detail: "timed out".into(),
                    attempts: 4,
                },
                ("transient", FailReason::Network),
            ),
            (http(503), ("transient", FailReason::Network)),
            (http(500), ("transient", FailReason::Network)),
            (http(408), ("transient", FailReason::Network)),
            (http(400), ("permanent", FailReason::Other)),
            (
                ApiError::NotFound {
                    endpoint: endpoint(),
                    reply: reply(404),
                },
                ("permanent", FailReason::Other),
            ),
            (ApiError::Stopped, ("permanent", FailReason::Other)),
        ];
        for (error, expected) in cases {
            let text = error.to_string();
            assert_eq!(api_reason(&error), expected.1, "{text}");
            assert_eq!(sorted(JobFailure::from(error)), expected, "{text}");
        }
        // A base URL that is none stops the run as a refused key does (the
        // configuration must change); the request's own reason is other.
        let base = || ApiError::BaseUrl {
            url: "ftp://x".into(),
            reason: "not http".into(),
        };
        assert_eq!(api_reason(&base()), FailReason::Other);
        assert!(matches!(
            JobFailure::from(base()),
            JobFailure::Fatal(FatalKind::Refused, _)
        ));
    }

    fn store_io(errno: i32) -> StoreError {
        StoreError::io(
            "write",
            Path::new("data/AAPL/1m/2024-11.parquet"),
            io::Error::from_raw_os_error(errno),
        )
    }

    #[test]
    fn store_errors_are_disk_or_parse() {
        let path = Path::new("data/AAPL/1m/2024-11.parquet");
        // ENOSPC stops the run; EACCES and EIO fail the job: all the disk's.
        assert_eq!(sorted(store_io(28).into()), ("fatal", FailReason::Disk));
        assert_eq!(sorted(store_io(13).into()), ("permanent", FailReason::Disk));
        assert_eq!(sorted(store_io(5).into()), ("permanent", FailReason::Disk));
        let corrupt = StoreError::corrupt(path, "bad footer");
        assert_eq!(store_reason(&corrupt), FailReason::Parse);
        assert_eq!(sorted(corrupt.into()), ("permanent", FailReason::Parse));
        let mismatch = StoreError::BasisMismatch {
            path: path.into(),
            stored: crate::model::Basis::Adjusted,
            wanted: crate::model::Basis::Unadjusted,
        };
        assert_eq!(sorted(mismatch.into()), ("permanent", FailReason::Other));
        // Through the engine's own errors: a sync that failed stops the run.
        let failure = JobFailure::from(EngineError::Store(store_io(5)));
        assert_eq!(sorted(failure), ("fatal", FailReason::Disk));
        let failure = JobFailure::from(EngineError::Worker("gone".into()));
        assert_eq!(sorted(failure), ("transient", FailReason::Other));
    }

    #[test]
    fn job_table_errors_are_classed_into_reasons() {
        let error = |class| JobError::Backend {
            context: "completing a job",
            class,
            source: Box::new(io::Error::other("x")),
        };
        assert_eq!(table_reason(&error(ErrorClass::Storage)), FailReason::Disk);
        assert_eq!(table_reason(&error(ErrorClass::Corrupt)), FailReason::Parse);
        assert_eq!(table_reason(&error(ErrorClass::Busy)), FailReason::Other);
        let failure = JobFailure::from(EngineError::Jobs(error(ErrorClass::Corrupt)));
        assert_eq!(sorted(failure), ("transient", FailReason::Parse));
        let full = EngineError::Jobs(JobError::Backend {
            context: "completing a job",
            class: ErrorClass::Storage,
            source: Box::new(io::Error::from_raw_os_error(28)),
        });
        assert_eq!(engine_reason(&full), FailReason::Disk);
        assert_eq!(
            sorted(JobFailure::from(full)),
            ("fatal", FailReason::Disk),
            "a full disk under the table stops the run"
        );
    }

    #[test]
    fn flat_file_errors_map_to_their_reasons() {
        let key = || "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz".to_owned();
        let cases = [
            (
                FlatFileError::Forbidden {
                    endpoint: "https://files.massive.com".into(),
                    reason: "AccessDenied".into(),
                },
                FailReason::NotEntitled,
            ),
            (FlatFileError::Truncated { key: key() }, FailReason::Network),
            (
                FlatFileError::Corrupt {
                    key: key(),
                    detail: "invalid gzip header".into(),
                },
                FailReason::Parse,
            ),
            (
                FlatFileError::MissingColumn {
                    key: key(),
                    column: "open",
                    header: "ticker".into(),
                },
                FailReason::Parse,
            ),
            (
                FlatFileError::BadRow {
                    key: key(),
                    line: 7,
                    column: Some("open"),
                    detail: "not a number".into(),
                },
                FailReason::Parse,
            ),
            (
                FlatFileError::S3 {
                    key: key(),
                    detail: "connection refused".into(),
                    transient: true,
                },
                FailReason::Network,
            ),
            (
                FlatFileError::S3 {
                    key: key(),
                    detail: "NoSuchBucket".into(),
                    transient: false,
                },
                FailReason::Other,
            ),
            (
                FlatFileError::Io {
                    key: key(),
                    detail: "reset".into(),
                    transient: true,
                },
                FailReason::Network,
            ),
            (FlatFileError::NotFound { key: key() }, FailReason::Other),
            (
                FlatFileError::Config {
                    what: "endpoint",
                    detail: "x".into(),
                },
                FailReason::Other,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(flat_reason(&error), reason, "{error}");
        }
    }

    #[test]
    fn a_fatal_stop_has_the_reason_of_its_kind() {
        assert_eq!(fatal_reason(FatalKind::Refused), FailReason::Refused);
        assert_eq!(
            fatal_reason(FatalKind::Storage(StorageFault::ReadOnly)),
            FailReason::Disk
        );
        assert_eq!(fatal_reason(FatalKind::WriteBack), FailReason::Disk);
        assert_eq!(fatal_reason(FatalKind::Unreachable), FailReason::Network);
        let died = JobFailure::task_died("writer task", "panicked");
        assert_eq!(sorted(died), ("transient", FailReason::Other));
    }
}
