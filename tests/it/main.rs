//! The integration tests, one test binary with a module per area: each
//! extra binary would link the whole dependency tree again. The tests start
//! the simulator (or an S3 server) on loopback, run the real `finpipe` binary
//! against it in a temporary directory, and read back what it wrote. Every
//! test runs in a thread of this one process, so none changes the process's
//! environment or working directory: a spawned `finpipe` gets its own.
//!
//! Run one area with `cargo test --test it <module>::`, e.g. `crash::`.

// Tests print what they measured and keep helpers `pub` for their modules.
#![allow(
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

mod common;

mod backfill;
mod cli;
mod client;
mod conveniences;
mod crash;
mod discover;
mod export;
mod first_hour;
mod flat_fallback;
mod flatfiles;
mod flatfiles_engine;
mod flatfiles_seam;
mod flatfiles_stream;
mod full_disk;
mod integrity;
mod network;
mod postgres;
mod progress;
mod readers;
mod run_history;
mod runners;
mod state_dir;
mod store_s3;
mod trades;
mod ui;
mod update;
mod verify;
