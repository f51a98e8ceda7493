//! Typed errors of the REST client. Messages say what happened and what to do;
//! none contains the API key (auth travels in a header, never in a URL).

/// What the server said about a failed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply {
    pub status: u16,
    /// The `request_id` of the reply, when the body carried one.
    pub request_id: Option<String>,
    /// The server's `error` or `message` text, or a short excerpt of a non-JSON body.
    pub message: String,
}

impl ServerReply {
    fn request_suffix(&self) -> String {
        self.request_id
            .as_deref()
            .map(|id| format!(" (request_id {id})"))
            .unwrap_or_default()
    }
}

/// Why a REST request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the API rejected the key: HTTP 401 \"{}\"{}. Set MASSIVE_API_KEY or POLYGON_API_KEY (environment or .env), or pass --api-key",
        .0.message, .0.request_suffix()
    )]
    Unauthorized(ServerReply),

    #[error(
        "HTTP 403 for {endpoint}: \"{}\"{}. Your plan does not cover this data, or the dates are outside its history",
        .reply.message, .reply.request_suffix()
    )]
    Forbidden {
        endpoint: String,
        reply: ServerReply,
    },

    #[error("HTTP 404 for {endpoint}: \"{}\"{}", .reply.message, .reply.request_suffix())]
    NotFound {
        endpoint: String,
        reply: ServerReply,
    },

    #[error(
        "HTTP {} for {endpoint}: \"{}\"{}{}",
        .reply.status, .reply.message, .reply.request_suffix(), attempts_note(*.attempts)
    )]
    Http {
        endpoint: String,
        reply: ServerReply,
        attempts: u32,
    },

    #[error(
        "still rate limited (HTTP 429) after {attempts} attempts for {endpoint}: \"{}\". Lower --rate-limit (POLYGON_RATE_LIMIT) to your plan's limit",
        .reply.message
    )]
    RateLimited {
        endpoint: String,
        reply: ServerReply,
        attempts: u32,
    },

    #[error("request to {endpoint} failed{}: {detail}", attempts_note(*.attempts))]
    Transport {
        endpoint: String,
        detail: String,
        attempts: u32,
    },

    #[error(
        "malformed response from {endpoint} (HTTP {status}, {bytes} bytes){}: {detail}{}",
        .request_id.as_deref().map(|id| format!(" request_id {id}")).unwrap_or_default(),
        attempts_note(*.attempts)
    )]
    Decode {
        endpoint: String,
        status: u16,
        bytes: usize,
        request_id: Option<String>,
        detail: String,
        attempts: u32,
    },

    #[error(
        "cannot connect to the API at {base} ({attempts} attempts): {detail}. \
         Check --api-url / MASSIVE_API_BASE_URL, and the network"
    )]
    Unreachable {
        /// The base URL (never with credentials: the client holds none).
        base: String,
        detail: String,
        attempts: u32,
    },

    #[error("not sent: the run is stopping")]
    Stopped,

    #[error("inconsistent answer from {endpoint}: {detail}")]
    Inconsistent { endpoint: String, detail: String },

    #[error("invalid API base URL {url:?}: {reason}. Pass --api-url or set MASSIVE_API_BASE_URL")]
    BaseUrl { url: String, reason: String },

    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl ApiError {
    /// The HTTP status of the final reply, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized(reply) => Some(reply.status),
            Self::Forbidden { reply, .. }
            | Self::NotFound { reply, .. }
            | Self::Http { reply, .. }
            | Self::RateLimited { reply, .. } => Some(reply.status),
            Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when trying the same request again later may succeed (the server
    /// failed, the network failed, the body was garbled, or it kept saying 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { reply, .. } => reply.status == 408 || reply.status >= 500,
            Self::RateLimited { .. } | Self::Transport { .. } | Self::Decode { .. } => true,
            _ => false,
        }
    }

    /// True when no later request can succeed either (a rejected key, a bad
    /// or unreachable base URL): the run should stop instead of moving on to
    /// other work.
    pub fn is_fatal(&self) -> bool {
        self.is_usage() || matches!(self, Self::Unreachable { .. })
    }

    /// True when the configuration must change (a rejected key, a base URL
    /// that is not one): a usage error. An unreachable server is not one:
    /// the network may be down.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized(_) | Self::BaseUrl { .. } | Self::Client(_)
        )
    }

    /// The same error, saying it was the last of `attempts`.
    pub(super) fn after(mut self, attempts: u32) -> Self {
        match &mut self {
            Self::Http { attempts: n, .. }
            | Self::RateLimited { attempts: n, .. }
            | Self::Transport { attempts: n, .. }
            | Self::Decode { attempts: n, .. }
            | Self::Unreachable { attempts: n, .. } => *n = attempts,
            _ => {}
        }
        self
    }
}
