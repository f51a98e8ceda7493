//! The streaming aggregation of a trades day file: trades in, per-ticker
//! bars out. A day file is grouped by ticker (the real file is sorted by
//! ticker, then time), so a ticker's bars are complete, and handed out, as
//! soon as the next ticker begins. Memory is the open windows and bars of
//! the ticker being read, plus the names of the tickers already done (to
//! refuse a file that is not grouped), never the file.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::conditions::{ConditionTable, correction_counts};
use super::error::{AggregateError, TradesError};
use super::info_bars::InfoBars;
use super::parse::TradesReader;
use super::record::Trade;
use super::spec::BarSpec;
use super::time_bars::TimeBars;
use crate::model::{Bar, Ticker};

/// The bars of one ticker, one series per requested [`BarSpec`], in the
/// order the specs were given.
#[derive(Clone, Debug, PartialEq)]
pub struct TickerBars {
    pub ticker: Ticker,
    pub series: Vec<SeriesBars>,
}

/// The bars of one spec, ascending by timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesBars {
    pub spec: BarSpec,
    pub bars: Vec<Bar>,
}

/// What an aggregation saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TradeStats {
    /// Data rows read, wanted or not.
    pub rows: u64,
    /// Rows of wanted tickers.
    pub wanted_rows: u64,
    /// Tickers whose bars were handed out.
    pub tickers: u64,
    /// Wanted trades dropped for their correction code.
    pub corrections_dropped: u64,
    /// Wanted trades whose conditions let them update nothing.
    pub updating_nothing: u64,
    /// Wanted trades with a condition code the table does not know.
    pub unknown_conditions: u64,
    /// Volume in time windows without a trade that may set a price (per time
    /// spec, summed), so left out of every bar.
    pub volume_without_bar: f64,
}

/// One spec's builder for the current ticker.
#[derive(Debug)]
enum Builder {
    Time(TimeBars),
    Info(InfoBars),
}

impl Builder {
    fn new(spec: BarSpec) -> Self {
        match spec {
            BarSpec::Time(tf) => Self::Time(TimeBars::new(tf.fixed_millis().unwrap_or(60_000))),
            BarSpec::Info(info) => Self::Info(InfoBars::new(info)),
        }
    }
}

#[derive(Debug)]
struct Current {
    ticker: Ticker,
    arrivals: u64,
    builders: Vec<Builder>,
}

/// Turns one day file's trades, fed in file order, into per-ticker bars.
#[derive(Debug)]
pub struct TradeAggregator {
    key: String,
    table: ConditionTable,
    specs: Vec<BarSpec>,
    /// The ticker of the rows being read (wanted or not).
    name: String,
    current: Option<Current>,
    done: HashSet<String>,
    stats: TradeStats,
}

impl TradeAggregator {
    /// An aggregator building `specs` under `table`'s rules; `key` names the
    /// file in errors. Time specs must have a fixed width ([`BarSpec::time`]).
    pub fn new(key: impl Into<String>, table: ConditionTable, specs: &[BarSpec]) -> Self {
        Self {
            key: key.into(),
            table,
            specs: specs.to_vec(),
            name: String::new(),
            current: None,
            done: HashSet::new(),
            stats: TradeStats::default(),
        }
    }

    /// Feeds the next row (`line` for errors). Returns the previous ticker's
    /// bars when this row starts another ticker. `wanted` says whether this
    /// row's ticker is wanted; it is asked once per ticker.
    pub fn push(
        &mut self,
        ticker: &str,
        trade: &Trade,
        line: u64,
        wanted: impl FnOnce(&str) -> bool,
    ) -> Result<Option<TickerBars>, TradesError> {
        self.stats.rows += 1;
        let mut finished = None;
        if ticker != self.name {
            finished = self.finish_ticker();
            if !self.name.is_empty() {
                self.done.insert(std::mem::take(&mut self.name));
            }
            if self.done.contains(ticker) {
                return Err(TradesError::Unsorted {
                    key: self.key.clone(),
                    line,
                    ticker: ticker.to_owned(),
                });
            }
            ticker.clone_into(&mut self.name);
            if wanted(ticker) {
                let ticker = Ticker::new(ticker).map_err(|e| TradesError::BadRow {
                    key: self.key.clone(),
                    line,
                    column: Some("ticker"),
                    detail: e.to_string(),
                })?;
                self.current = Some(Current {
                    ticker,
                    arrivals: 0,
                    builders: self.specs.iter().map(|s| Builder::new(*s)).collect(),
                });
            }
        }
        let Some(current) = &mut self.current else {
            return Ok(finished);
        };
        self.stats.wanted_rows += 1;
        if !correction_counts(trade.correction) {
            self.stats.corrections_dropped += 1;
            return Ok(finished);
        }
        let rules = self.table.trade_rules(trade.conditions.as_slice());
        if rules.unknown {
            self.stats.unknown_conditions += 1;
        }
        let rules = rules.rules;
        if !(rules.volume || rules.high_low || rules.open_close) {
            self.stats.updating_nothing += 1;
            return Ok(finished);
        }
        current.arrivals += 1;
        for builder in &mut current.builders {
            match builder {
                Builder::Time(b) => b.push(trade, rules, current.arrivals),
                Builder::Info(b) => b.push(trade, rules),
            }
        }
        Ok(finished)
    }

    /// The bars of the ticker being read, if it is wanted; call once the
    /// input ended.
    pub fn finish_ticker(&mut self) -> Option<TickerBars> {
        let current = self.current.take()?;
        self.stats.tickers += 1;
        let series = self
            .specs
            .iter()
            .zip(current.builders)
            .map(|(spec, builder)| SeriesBars {
                spec: *spec,
                bars: match builder {
                    Builder::Time(b) => {
                        let (bars, lost) = b.finish();
                        self.stats.volume_without_bar += lost;
                        bars
                    }
                    Builder::Info(b) => b.finish(),
                },
            })
            .collect();
        Some(TickerBars {
            ticker: current.ticker,
            series,
        })
    }

    pub fn stats(&self) -> &TradeStats {
        &self.stats
    }
}

/// Aggregates a trades CSV (already decompressed) read from `csv`: each
/// wanted ticker's bars go to `sink` as soon as its rows end. `want` is asked
/// once per ticker. Returns only after the whole input was read; on `Err`,
/// discard what the sink received.
pub fn aggregate_csv<R: BufRead, E>(
    csv: R,
    key: &str,
    table: ConditionTable,
    specs: &[BarSpec],
    mut want: impl FnMut(&str) -> bool,
    mut sink: impl FnMut(TickerBars) -> Result<(), E>,
) -> Result<TradeStats, AggregateError<E>> {
    let mut reader = TradesReader::new(csv, key)?;
    let mut aggregator = TradeAggregator::new(key, table, specs);
    loop {
        let line = reader.line() + 1;
        let Some((ticker, trade)) = reader.next_trade()? else {
            break;
        };
        if let Some(done) = aggregator.push(ticker, &trade, line, &mut want)? {
            sink(done).map_err(AggregateError::Sink)?;
        }
    }
    if let Some(done) = aggregator.finish_ticker() {
        sink(done).map_err(AggregateError::Sink)?;
    }
    Ok(aggregator.stats.clone())
}

/// [`aggregate_csv`] over a gzip-compressed day file (`.csv.gz`) read from
/// `reader`. A gzip stream that ends early or is damaged is an error
/// ([`TradesError::Io`]), never a shorter result.
pub fn aggregate_gzip<R: Read, E>(
    reader: R,
    key: &str,
    table: ConditionTable,
    specs: &[BarSpec],
    want: impl FnMut(&str) -> bool,
    sink: impl FnMut(TickerBars) -> Result<(), E>,
) -> Result<TradeStats, AggregateError<E>> {
    let csv = BufReader::with_capacity(
        256 * 1024,
        MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, reader)),
    );
    aggregate_csv(csv, key, table, specs, want, sink)
}

/// The time bars of `width_ms` of one ticker's `trades` under `table`'s
/// rules, as [`TradeAggregator`] builds them (corrections dropped, the same
/// windows, prices and amounts); for callers holding trades in memory, such
/// as the simulator.
pub fn time_bars(trades: &[Trade], table: &ConditionTable, width_ms: i64) -> Vec<Bar> {
    let mut bars = TimeBars::new(width_ms);
    for (arrival, trade) in (1..).zip(trades) {
        if !correction_counts(trade.correction) {
            continue;
        }
        let rules = table.trade_rules(trade.conditions.as_slice()).rules;
        if rules.volume || rules.high_low || rules.open_close {
            bars.push(trade, rules, arrival);
        }
    }
    bars.finish().0
}
