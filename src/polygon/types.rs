//! The JSON shapes of Polygon's answers, exactly as documented in POLYGON.md.
//! Optional fields really are optional: any of them may be missing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The envelope shared by paginated endpoints. A missing `results` is an
/// empty page (`{}` is a valid last page), never an error.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(default = "Option::default")]
    pub results: Option<Vec<T>>,
    #[serde(default)]
    pub next_url: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub adjusted: Option<bool>,
}

/// What a page's body holds for the client: its results and the envelope
/// fields it reads.
#[derive(Debug)]
pub(crate) struct PageBody<T> {
    pub results: Vec<T>,
    pub next_url: Option<String>,
    pub request_id: Option<String>,
    pub adjusted: Option<bool>,
}

impl<T: DeserializeOwned> PageBody<T> {
    /// Decodes a page through its [`Envelope`].
    pub(super) fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        let envelope: Envelope<T> = serde_json::from_slice(body)?;
        Ok(Self {
            results: envelope.results.unwrap_or_default(),
            next_url: envelope.next_url,
            request_id: envelope.request_id,
            adjusted: envelope.adjusted,
        })
    }
}

/// One aggregate bar (`/v2/aggs/ticker/…/range/…`). `t` is the window start in
/// Unix milliseconds (UTC). Indices carry no `v`, `vw`, `n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggBar {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vw: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<i64>,
}

impl From<&AggBar> for crate::model::Bar {
    fn from(bar: &AggBar) -> Self {
        Self {
            timestamp: bar.t,
            open: bar.o,
            high: bar.h,
            low: bar.l,
            close: bar.c,
            volume: bar.v,
            vwap: bar.vw,
            transactions: bar.n,
        }
    }
}

/// One bar of a grouped-daily answer: an aggregate plus its ticker `T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupedBar {
    #[serde(rename = "T")]
    pub ticker: String,
    #[serde(flatten)]
    pub bar: AggBar,
}

/// A reference record: a ticker (`/v3/reference/tickers`) or an options
/// contract (`/v3/reference/options/contracts`). Only `ticker` is required.
/// The same type is stored in universe files, so they keep every reference
/// field the API gave.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickerRecord {
    pub ticker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_currency_symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_currency_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cik: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_figi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_class_figi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delisted_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlying_ticker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise_style: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_per_contract: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfi: Option<String>,
}

/// One split (`/v3/reference/splits`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SplitRecord {
    pub ticker: String,
    pub execution_date: chrono::NaiveDate,
    #[serde(default)]
    pub split_from: Option<f64>,
    #[serde(default)]
    pub split_to: Option<f64>,
}

/// One ticker type (`/v3/reference/tickers/types`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickerType {
    pub code: String,
    pub description: String,
    #[serde(default)]
    pub asset_class: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// The body of an error reply: `status:"ERROR"` bodies use `error`, others `message`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
