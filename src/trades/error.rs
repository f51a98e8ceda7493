//! What can go wrong reading trades and their condition rules, each error
//! naming the file (its key) and, for rows, the line and column.

/// A trades file or a conditions answer that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TradesError {
    /// Reading the CSV bytes failed (I/O, or a gzip stream that ended early).
    #[error("reading trades file {key} failed at line {line}: {source}")]
    Io {
        key: String,
        line: u64,
        #[source]
        source: std::io::Error,
    },

    /// The header lacks a column the aggregation needs.
    #[error(
        "trades file {key} has no `{column}` column (header: {header:?}): it is not a \
         trades_v1 file, or the format changed"
    )]
    MissingColumn {
        key: String,
        column: &'static str,
        header: String,
    },

    /// The file holds no header line at all.
    #[error("trades file {key} is empty: it holds no CSV header")]
    Empty { key: String },

    /// A data row cannot be read. `line` counts from 1, the header being line 1.
    #[error("trades file {key}, line {line}{}: {detail}", in_column(.column))]
    BadRow {
        key: String,
        line: u64,
        column: Option<&'static str>,
        detail: String,
    },

    /// A ticker's rows come back after another ticker's: the file is not
    /// grouped by ticker, so bars already handed out would be incomplete.
    #[error(
        "trades file {key}, line {line}: ticker {ticker} appears again after other tickers; \
         a trades day file must be grouped by ticker"
    )]
    Unsorted {
        key: String,
        line: u64,
        ticker: String,
    },
}

fn in_column(column: &Option<&'static str>) -> String {
    column
        .map(|c| format!(", column `{c}`"))
        .unwrap_or_default()
}

/// Why a conditions answer (`/v3/reference/conditions`) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConditionsError {
    /// The body is not the endpoint's JSON.
    #[error("the conditions answer is not valid JSON of /v3/reference/conditions: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },

    /// One trade condition is listed twice with different rules.
    #[error(
        "trade condition {id} is listed twice with different consolidated rules \
         ({first:?} and {second:?}); the table cannot say which holds"
    )]
    Conflict {
        id: u16,
        first: super::conditions::UpdateRules,
        second: super::conditions::UpdateRules,
    },
}

/// A streaming aggregation that stopped: the file failed, or the receiver of
/// the bars (the sink) did, whose own error comes back unchanged.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError<E> {
    /// The file could not be read; nothing built from it may be kept.
    #[error(transparent)]
    File(#[from] TradesError),
    /// The sink returned an error, which stopped the aggregation.
    #[error("storing bars built from trades failed: {0}")]
    Sink(#[source] E),
}
