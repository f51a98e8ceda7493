//! A deterministic Polygon.io simulator that runs on loopback: the tests, the
//! benchmarks and `finpipe demo` talk to it instead of the real API.
//!
//! One underlying minute-level market ([`market`]) over a generated ticker
//! world ([`reference`]) feeds every answer, so 5m/15m/1h/1d bars are exactly
//! the aggregation of the 1m bars, and flat files can be written from the very
//! same data. [`server`] adds what the real service does around the data: the
//! key check, the per-minute limit, errors, injectable faults, a request log.

pub mod aggregate;
pub mod faults;
pub mod flatfiles;
pub mod hash;
pub mod market;
pub mod names;
pub mod options;
pub mod path;
pub mod reference;
mod routes;
pub mod s3;
pub mod server;
pub mod synthetic;
pub mod synthetic_trades;
pub mod trades;
pub mod world;

pub use faults::{Fault, FaultKind};
pub use server::{Auth, DEFAULT_SIM_KEY, RequestRecord, SimConfig, SimRateLimit, Simulator};
