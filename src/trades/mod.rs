//! Bars from trades (issue #16): Polygon's `trades_v1` day files turned into
//! time bars of any fixed width (`1s` … `1h`) and information-driven bars
//! (tick `1000t`, volume `50000v`, dollar `1e6$`), under Polygon's rules for
//! which trades update what.
//!
//! - `conditions`: the condition-code rule table (built-in or read from
//!   `/v3/reference/conditions`) and the correction codes, with sources.
//! - `record`: one trade ([`Trade`]) and its condition codes.
//! - `parse`: the streaming `trades_v1` CSV reader ([`TradesReader`]).
//! - `time_bars`: windows of fixed width, stamped at their start.
//! - `info_bars`: tick, volume and dollar bars within one session, and
//!   [`unique_stamps`], which makes their stamps unique for the library.
//! - `spec`: what to build and its notation ([`BarSpec`], [`InfoBarSpec`]).
//! - `aggregate`: the per-ticker streaming aggregation of a day file
//!   ([`TradeAggregator`], [`aggregate_csv`], [`aggregate_gzip`]).
//! - `error`: [`TradesError`], [`ConditionsError`], [`AggregateError`].
//!
//! A job feeds a day file's bytes (or its lines) in and receives each
//! ticker's bars, one [`TickerBars`] per ticker, as soon as the file moves
//! past that ticker; the bars are [`crate::model::Bar`]s, the store's type.

mod aggregate;
pub mod conditions;
mod error;
mod info_bars;
mod parse;
mod record;
mod spec;
mod time_bars;

pub use aggregate::{
    SeriesBars, TickerBars, TradeAggregator, TradeStats, aggregate_csv, aggregate_gzip, time_bars,
};
pub use conditions::{ConditionTable, TradeRules, UpdateRules, correction_counts};
pub use error::{AggregateError, ConditionsError, TradesError};
pub use info_bars::unique_stamps;
pub use parse::{MAX_TRADE_LINE, TradesReader};
pub use record::{Conditions, MAX_CONDITIONS, Trade};
pub use spec::{Activity, BarSpec, InfoBarSpec, InvalidBarSpec, compact_threshold};

#[cfg(test)]
mod tests;
