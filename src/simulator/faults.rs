//! Injectable faults: what the simulator does instead of (or to) a normal answer.

use std::time::Duration;

/// A misbehaviour of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 with an HTML body, as load balancers send.
    ServerError,
    /// HTTP 502 with an empty body.
    BadGateway,
    /// Any status with a Polygon-style JSON error body.
    Status(u16),
    /// A 429 with the real body, with or without `Retry-After` (seconds).
    TooManyRequests { retry_after: Option<u64> },
    /// Waits this long before answering normally.
    Slow(Duration),
    /// Sends the headers and half the body, then drops the connection.
    DropConnection,
    /// A complete HTTP answer whose JSON body is cut in half.
    TruncatedBody,
    /// A 200 whose body is not JSON at all.
    MalformedJson,
}

impl FaultKind {
    /// A short name for the request log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ServerError => "server-error",
            Self::BadGateway => "bad-gateway",
            Self::Status(_) => "status",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Slow(_) => "slow",
            Self::DropConnection => "drop-connection",
            Self::TruncatedBody => "truncated-body",
            Self::MalformedJson => "malformed-json",
        }
    }
}

/// A fault armed for requests whose path starts with `path_prefix`: the first
/// `skip` matching requests pass, the next `times` get the fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub path_prefix: String,
    pub skip: usize,
    pub times: usize,
}

impl Fault {
    /// `kind` on the next `times` requests to any path.
    pub fn next(kind: FaultKind, times: usize) -> Self {
        Self {
            kind,
            path_prefix: "/".to_owned(),
            skip: 0,
            times,
        }
    }

    /// Restricts the fault to paths starting with `prefix`.
    pub fn on(mut self, prefix: &str) -> Self {
        self.path_prefix = prefix.to_owned();
        self
    }

    /// Lets the first `skip` matching requests through.
    pub fn after(mut self, skip: usize) -> Self {
        self.skip = skip;
        self
    }
}

/// The armed faults, consumed as requests arrive.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    armed: Vec<Fault>,
}

impl FaultPlan {
    pub(crate) fn arm(&mut self, fault: Fault) {
        self.armed.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    /// The fault for a request to `path`, if one fires now. Every matching
    /// fault counts the request, so `skip` counts are independent.
    pub(crate) fn take(&mut self, path: &str) -> Option<FaultKind> {
        let mut fired = None;
        for fault in self
            .armed
            .iter_mut()
            .filter(|f| path.starts_with(&f.path_prefix))
        {
            if fault.skip > 0 {
                fault.skip -= 1;
            } else if fault.times > 0 && fired.is_none() {
                fault.times -= 1;
                fired = Some(fault.kind.clone());
            }
        }
        self.armed.retain(|f| f.times > 0);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_after_skips_for_their_count_on_matching_paths() {
        let mut plan = FaultPlan::default();
        plan.arm(Fault::next(FaultKind::BadGateway, 2).on("/v2/").after(1));
        assert_eq!(plan.take("/v3/reference/tickers"), None);
        assert_eq!(plan.take("/v2/aggs"), None);
        assert_eq!(plan.take("/v2/aggs"), Some(FaultKind::BadGateway));
        assert_eq!(plan.take("/v2/aggs"), Some(FaultKind::BadGateway));
        assert_eq!(plan.take("/v2/aggs"), None);
    }
}
