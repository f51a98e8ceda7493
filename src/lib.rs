//! finpipe: builds and keeps up to date a local library of historical market
//! bars from Polygon.io / Massive.
//!
//! Data flows one way: discover → plan → run → store. This crate is the core;
//! the binary (`src/main.rs`, `src/cli/`) parses arguments and prints, and
//! nothing here prints or exits.

pub mod calendar;
pub mod clock;
pub mod config;
pub mod discover;
pub mod engine;
pub mod export;
pub mod flatfiles;
pub mod fsutil;
pub mod jobs;
pub mod lock;
pub mod model;
pub mod no_bars;
mod number;
mod owner_thread;
pub mod plan;
pub mod polygon;
pub mod ranges;
pub mod reindex;
pub mod resample;
mod secret;
// The test and demo oracle, behind the `simulator` cargo feature (on by default).
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod sources;
pub mod store;
pub mod suggest;
pub mod trades;
pub mod ui;
pub mod universe;
pub mod update;
pub mod verify;
