//! The Polygon.io / Massive REST API: one client, one shared rate limiter,
//! retries and pagination, and the typed answers of the endpoints finpipe uses.

mod bars;
mod client;
mod error;
mod limiter;
mod retry;
mod types;

pub use client::{
    Client, ClientOptions, ClientStats, Page, Pages, Place, aggregates_endpoint, endpoint,
    path_segment, without_credentials,
};
pub use error::{ApiError, ServerReply};
pub use limiter::{Limiter, LimiterState, RateLimit, SharedRate, SharedRateError};
pub use retry::RetryPolicy;
pub use types::{AggBar, Envelope, ErrorBody, GroupedBar, SplitRecord, TickerRecord, TickerType};
