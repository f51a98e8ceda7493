//! Which trades update which part of a bar: the sale-condition rules of
//! Polygon's `/v3/reference/conditions` and the trade correction codes.
//!
//! # Sale conditions
//!
//! Polygon builds its aggregates with the SIPs' *consolidated* processing
//! guidelines: each condition code says whether a trade carrying it may
//! update the high/low, the open/close (CTA/UTP "last") and the volume
//! (knowledge base, "How does Polygon create the OHLCV aggregate bars?",
//! <https://polygon.io/knowledge-base/article/how-does-polygon-create-the-ohlcv-open-high-low-close-volume-aggregate-bars>,
//! whose example is code 2, Average Price Trade: `updates_high_low: false,
//! updates_open_close: false, updates_volume: true`). A trade with several
//! conditions updates a field only if **every** condition allows it (the
//! CTA/UTP matrices: a "no" wins). A code the table does not know restricts
//! nothing (it is counted in [`super::TradeStats::unknown_conditions`]).
//!
//! The same article adds the one departure Polygon makes for minute bars:
//! "trades in extended-hours markets can update OHLC for minute bars
//! (otherwise there would be no minute aggregates during extended trading
//! hours!)". Every bar this module builds is intraday, so the extended-hours
//! codes are overridden ([`EXTENDED_HOURS_OVERRIDES`]): 12 Form T updates
//! everything, and 13 (Extended Trading Hours, Sold Out of Sequence) updates
//! what its regular-hours twin 32 Sold (Out of Sequence) updates: high/low
//! and volume (our reading, since no source states it).
//!
//! The built-in table ([`ConditionTable::polygon_default`]) holds Polygon's
//! stock trade codes with their consolidated rules, as Polygon's glossary
//! (<https://polygon.io/glossary/us/stocks/conditions-indicators>) listed
//! them, mirrored in QuantConnect's `PolygonSIPTradeMappings.cs` and alpacahq
//! marketstore's `contrib/polygon/backfill`; the rows for 10, 37 and 41 match
//! a live `/v3/reference/conditions` answer quoted in a public repository.
//! Codes whose rules no source gives (17–19, 24, 26, 35, 39, 40, 42–51,
//! 54–59) are left out, so they restrict nothing. A table read from the
//! endpoint ([`ConditionTable::from_json`]) replaces it.
//!
//! # Corrections
//!
//! The `correction` field follows the TAQ correction indicator, as Polygon's
//! glossary defines it: 0 regular trade; 1 "original trade which was later
//! corrected (this record contains the original time and the **corrected
//! data** for the trade)"; 7 original trade later marked erroneous; 8
//! original trade later cancelled; 10 cancel record (follows 8); 11 error
//! record (follows 7); 12 "correction record (follows 01 records and
//! contains the correction time and the **original 'incorrect' data**)".
//! So [`correction_counts`] keeps 0 and 1 (the trade as it finally stands)
//! and drops 7, 8, 10, 11 and 12 (trades that did not stand, the records
//! announcing that, and the superseded data), and drops any other code too,
//! as unknown (counted in [`super::TradeStats::corrections_dropped`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ConditionsError;

/// What a trade may update in a bar (the endpoint's `consolidated` rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateRules {
    pub high_low: bool,
    pub open_close: bool,
    pub volume: bool,
}

impl UpdateRules {
    /// A regular trade: updates everything.
    pub const ALL: Self = Self::new(true, true, true);
    /// Updates nothing (e.g. 15 Market Center Official Close).
    pub const NONE: Self = Self::new(false, false, false);

    pub const fn new(high_low: bool, open_close: bool, volume: bool) -> Self {
        Self {
            high_low,
            open_close,
            volume,
        }
    }

    /// Both rules at once: a field is updated only if both allow it.
    pub const fn and(self, other: Self) -> Self {
        Self::new(
            self.high_low && other.high_low,
            self.open_close && other.open_close,
            self.volume && other.volume,
        )
    }
}

/// One stock trade condition of the built-in table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition {
    pub id: u16,
    pub name: &'static str,
    /// The consolidated rules, as the endpoint gives them (before the
    /// extended-hours overrides).
    pub consolidated: UpdateRules,
}

const fn c(id: u16, name: &'static str, hl: bool, oc: bool, v: bool) -> Condition {
    Condition {
        id,
        name,
        consolidated: UpdateRules::new(hl, oc, v),
    }
}

/// Polygon's stock trade conditions with their consolidated rules (high/low,
/// open/close, volume); sources in the module documentation.
pub const STOCK_TRADE_CONDITIONS: &[Condition] = &[
    c(0, "Regular Sale", true, true, true),
    c(1, "Acquisition", true, true, true),
    c(2, "Average Price Trade", false, false, true),
    c(3, "Automatic Execution", true, true, true),
    c(4, "Bunched Trade", true, true, true),
    c(5, "Bunched Sold Trade", true, false, true),
    c(6, "CAP Election", true, true, true),
    c(7, "Cash Sale", false, false, true),
    c(8, "Closing Prints", true, true, true),
    c(9, "Cross Trade", true, true, true),
    c(10, "Derivatively Priced", true, false, true),
    c(11, "Distribution", true, true, true),
    c(12, "Form T", false, false, true),
    c(
        13,
        "Extended Trading Hours (Sold Out of Sequence)",
        false,
        false,
        true,
    ),
    c(14, "Intermarket Sweep", true, true, true),
    c(15, "Market Center Official Close", false, false, false),
    c(16, "Market Center Official Open", false, false, false),
    c(20, "Next Day", false, false, true),
    c(21, "Price Variation Trade", false, false, true),
    c(22, "Prior Reference Price", true, false, true),
    c(23, "Rule 155 Trade (AMEX)", true, true, true),
    c(25, "Opening Prints", true, true, true),
    c(27, "Stopped Stock (Regular Trade)", true, true, true),
    c(28, "Re-Opening Prints", true, true, true),
    c(29, "Seller", true, false, true),
    c(30, "Sold Last", true, true, true),
    c(31, "Sold Last and Stopped Stock", true, true, true),
    c(32, "Sold (Out Of Sequence)", true, false, true),
    c(
        33,
        "Sold (Out of Sequence) and Stopped Stock",
        true,
        false,
        true,
    ),
    c(34, "Split Trade", true, true, true),
    c(36, "Yellow Flag Regular Trade", true, true, true),
    c(37, "Odd Lot Trade", false, false, true),
    c(
        38,
        "Corrected Consolidated Close (per listing market)",
        true,
        true,
        false,
    ),
    c(41, "Trade Thru Exempt", true, true, true),
    c(52, "Contingent Trade", false, false, true),
    c(
        53,
        "Qualified Contingent Trade (\"QCT\")",
        false,
        false,
        true,
    ),
];

/// Codes whose consolidated rule is replaced in intraday bars: extended-hours
/// trades update minute bars (module documentation).
pub const EXTENDED_HOURS_OVERRIDES: &[(u16, UpdateRules)] = &[
    (12, UpdateRules::ALL),
    (13, UpdateRules::new(true, false, true)),
];

/// The correction codes ([`correction_counts`]).
pub mod correction {
    pub const REGULAR: u8 = 0;
    pub const CORRECTED: u8 = 1;
    pub const ERRONEOUS: u8 = 7;
    pub const CANCELLED: u8 = 8;
    pub const CANCEL_RECORD: u8 = 10;
    pub const ERROR_RECORD: u8 = 11;
    pub const CORRECTION_RECORD: u8 = 12;
}

/// Whether a trade with this `correction` code takes part in bars: 0 and 1
/// do (1 carries the corrected data), every other code is dropped (module
/// documentation).
pub const fn correction_counts(code: u8) -> bool {
    matches!(code, correction::REGULAR | correction::CORRECTED)
}

/// Condition code → consolidated rules, as used for intraday bars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionTable {
    /// Indexed by code; `None` for codes the table does not know.
    rules: Vec<Option<UpdateRules>>,
}

/// The rules of one trade's condition list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeRules {
    pub rules: UpdateRules,
    /// Whether a code was not in the table (and so restricted nothing).
    pub unknown: bool,
}

impl ConditionTable {
    /// The built-in table: [`STOCK_TRADE_CONDITIONS`].
    pub fn polygon_default() -> Self {
        let mut table = Self { rules: Vec::new() };
        for condition in STOCK_TRADE_CONDITIONS {
            table.set(condition.id, condition.consolidated);
        }
        table
    }

    /// The table of a `/v3/reference/conditions` answer (one page; see
    /// [`Self::extend_from_json`] for more). Keeps the entries whose
    /// `data_types` include `trade`, whose `asset_class` is `stocks` (or
    /// absent) and that carry `update_rules.consolidated`: the endpoint also
    /// lists quote conditions and settlement flags, some under a trade
    /// code's id (41 is both Trade Thru Exempt and a settlement condition).
    pub fn from_json(body: &[u8]) -> Result<Self, ConditionsError> {
        let mut table = Self { rules: Vec::new() };
        table.extend_from_json(body)?;
        Ok(table)
    }

    /// Adds one page of a `/v3/reference/conditions` answer; returns its
    /// `next_url`, if any, for the caller to fetch. A trade code listed twice
    /// with different rules is an error.
    pub fn extend_from_json(&mut self, body: &[u8]) -> Result<Option<String>, ConditionsError> {
        let page: Page =
            serde_json::from_slice(body).map_err(|source| ConditionsError::Json { source })?;
        let mut seen: BTreeMap<u16, UpdateRules> = BTreeMap::new();
        for entry in page.results {
            let is_trade = entry.data_types.iter().any(|t| t == "trade");
            let is_stock = entry.asset_class.as_deref().is_none_or(|c| c == "stocks");
            let Some(rule) = entry.update_rules.and_then(|r| r.consolidated) else {
                continue;
            };
            if !(is_trade && is_stock) {
                continue;
            }
            let rules = UpdateRules::new(
                rule.updates_high_low,
                rule.updates_open_close,
                rule.updates_volume,
            );
            if let Some(first) = seen.insert(entry.id, rules).filter(|f| *f != rules) {
                return Err(ConditionsError::Conflict {
                    id: entry.id,
                    first,
                    second: rules,
                });
            }
            self.set(entry.id, rules);
        }
        Ok(page.next_url)
    }

    fn set(&mut self, id: u16, rules: UpdateRules) {
        let index = usize::from(id);
        if self.rules.len() <= index {
            self.rules.resize(index + 1, None);
        }
        self.rules[index] = Some(rules);
    }

    /// The consolidated rules of one code as the table holds them (no
    /// overrides), or `None` when the code is unknown.
    pub fn consolidated(&self, code: u16) -> Option<UpdateRules> {
        self.rules.get(usize::from(code)).copied().flatten()
    }

    /// The rules of one code in an intraday bar: the consolidated rules with
    /// the extended-hours overrides; `None` when the code is unknown.
    pub fn intraday(&self, code: u16) -> Option<UpdateRules> {
        EXTENDED_HOURS_OVERRIDES
            .iter()
            .find(|(id, _)| *id == code)
            .map(|(_, rules)| *rules)
            .or_else(|| self.consolidated(code))
    }

    /// What a trade with these conditions updates in an intraday bar: the
    /// rules of every code combined (a "no" wins); no condition at all is a
    /// regular trade.
    pub fn trade_rules(&self, codes: &[u16]) -> TradeRules {
        let mut out = TradeRules {
            rules: UpdateRules::ALL,
            unknown: false,
        };
        for &code in codes {
            match self.intraday(code) {
                Some(rules) => out.rules = out.rules.and(rules),
                None => out.unknown = true,
            }
        }
        out
    }

    /// The codes the table knows, ascending, with their consolidated rules.
    pub fn iter(&self) -> impl Iterator<Item = (u16, UpdateRules)> + '_ {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(id, rules)| Some((u16::try_from(id).ok()?, (*rules)?)))
    }
}

impl Default for ConditionTable {
    fn default() -> Self {
        Self::polygon_default()
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    results: Vec<Entry>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    id: u16,
    #[serde(default)]
    asset_class: Option<String>,
    #[serde(default)]
    data_types: Vec<String>,
    #[serde(default)]
    update_rules: Option<Rules>,
}

#[derive(Deserialize)]
struct Rules {
    #[serde(default)]
    consolidated: Option<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    updates_high_low: bool,
    updates_open_close: bool,
    updates_volume: bool,
}

/// The built-in table as the endpoint would answer it
/// (`/v3/reference/conditions?asset_class=stocks&data_type=trade`): the
/// simulator serves it, and [`ConditionTable::from_json`] reads it back.
pub fn default_conditions_json() -> serde_json::Value {
    let results: Vec<serde_json::Value> = STOCK_TRADE_CONDITIONS
        .iter()
        .map(|c| {
            let rules = |r: UpdateRules| {
                serde_json::json!({
                    "updates_high_low": r.high_low,
                    "updates_open_close": r.open_close,
                    "updates_volume": r.volume,
                })
            };
            serde_json::json!({
                "id": c.id,
                "type": "sale_condition",
                "name": c.name,
                "asset_class": "stocks",
                "update_rules": {
                    "consolidated": rules(c.consolidated),
                    "market_center": rules(c.consolidated),
                },
                "data_types": ["trade"],
            })
        })
        .collect();
    serde_json::json!({
        "results": results,
        "status": "OK",
        "count": STOCK_TRADE_CONDITIONS.len(),
    })
}
