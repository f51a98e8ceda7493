//! The simulator's endpoints, answering exactly as POLYGON.md describes:
//! range aggregates, grouped daily, reference tickers, ticker types, options
//! contracts and splits, with the real pagination, page sizes and bodies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use serde_json::{Value, json};

use super::aggregate::{AggQuery, RangeBound, Timespan, range_aggregates};
use super::market::Bar;
use super::reference::{AssetClass, TickerInfo};
use super::server::SimState;
use crate::calendar::et_midnight_ms;

type Params = Query<HashMap<String, String>>;
type Shared = State<Arc<SimState>>;

/// Default and maximum `limit` of the aggregates endpoint (in base aggregates).
const AGGS_DEFAULT_LIMIT: usize = 5_000;
const AGGS_MAX_LIMIT: usize = 50_000;
/// Default and maximum `limit` of the reference endpoints.
const TICKERS_DEFAULT_LIMIT: usize = 100;
const CONTRACTS_DEFAULT_LIMIT: usize = 10;
const REFERENCE_MAX_LIMIT: usize = 1_000;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}",
            get(range),
        )
        .route(
            "/v2/aggs/grouped/locale/{locale}/market/{market}/{date}",
            get(grouped),
        )
        .route("/v3/reference/tickers", get(tickers))
        .route("/v3/reference/tickers/types", get(ticker_types))
        .route("/v3/reference/options/contracts", get(contracts))
        .route("/v3/reference/splits", get(splits))
        .route("/v3/reference/conditions", get(conditions))
        .fallback(not_found)
}

/// A Polygon error body: `status:"ERROR"` bodies carry `error`, others `message`.
pub(crate) fn error_reply(
    status: StatusCode,
    kind: &str,
    text: &str,
    request_id: &str,
) -> Response {
    let field = if kind == "ERROR" { "error" } else { "message" };
    let body = json!({ "status": kind, "request_id": request_id, field: text });
    let mut response = json_reply(&body);
    *response.status_mut() = status;
    response
}

fn json_reply(body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn bad_request(state: &SimState, text: &str) -> Response {
    error_reply(StatusCode::BAD_REQUEST, "ERROR", text, &fresh_id(state))
}

fn not_authorized(state: &SimState) -> Response {
    error_reply(
        StatusCode::FORBIDDEN,
        "NOT_AUTHORIZED",
        "Your plan doesn't include this data timeframe. Please upgrade your plan at https://massive.com/pricing",
        &fresh_id(state),
    )
}

/// Request ids for bodies: the log's sequence is not visible here, so use a
/// process-wide counter of our own.
fn fresh_id(state: &SimState) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    state.request_id(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

async fn not_found(State(state): Shared) -> Response {
    error_reply(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Data not found.",
        &fresh_id(&state),
    )
}

fn flag(params: &HashMap<String, String>, name: &str, default: bool) -> bool {
    params.get(name).map_or(default, |v| v != "false")
}

fn limit(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, String> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(format!("Invalid limit: {text}")),
        },
    }
}

/// Decodes a cursor into the query it carries.
fn decode_cursor(cursor: &str) -> Option<HashMap<String, String>> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    Some(url::form_urlencoded::parse(&bytes).into_owned().collect())
}

fn encode_cursor(pairs: &[(&str, String)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    URL_SAFE_NO_PAD.encode(query)
}

/// The effective query of a listing and its page size, or why it is a bad request.
fn listing_query(
    params: HashMap<String, String>,
    default_limit: usize,
) -> Result<(HashMap<String, String>, usize), String> {
    let params = effective(params)?;
    let limit = limit(&params, default_limit, REFERENCE_MAX_LIMIT)?;
    Ok((params, limit))
}

/// A `YYYY-MM-DD` query parameter.
fn date_param(params: &HashMap<String, String>, name: &str) -> Option<NaiveDate> {
    params
        .get(name)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// The effective query: a cursor, when given, replaces the other parameters.
fn effective(params: HashMap<String, String>) -> Result<HashMap<String, String>, String> {
    match params.get("cursor") {
        None => Ok(params),
        Some(cursor) => {
            let mut decoded = decode_cursor(cursor).ok_or_else(|| "Invalid cursor".to_owned())?;
            // Parameters outside the cursor (e.g. `adjusted` on aggregates) still count.
            for (k, v) in params {
                if k != "cursor" {
                    decoded.entry(k).or_insert(v);
                }
            }
            Ok(decoded)
        }
    }
}

// ---------------------------------------------------------------- aggregates

#[derive(Serialize)]
struct WireBar {
    #[serde(rename = "T", skip_serializing_if = "Option::is_none")]
    ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vw: Option<f64>,
    o: f64,
    c: f64,
    h: f64,
    l: f64,
    t: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<i64>,
}

impl WireBar {
    fn from_bar(bar: &Bar, ticker: Option<&str>) -> Self {
        Self {
            ticker: ticker.map(str::to_owned),
            v: bar.v,
            vw: bar.vw,
            o: bar.o,
            c: bar.c,
            h: bar.h,
            l: bar.l,
            t: bar.t,
            n: bar.n,
        }
    }
}

/// The last date a range touches, for the "future dates answer 403" rule.
fn bound_date(bound: &RangeBound) -> NaiveDate {
    match bound {
        RangeBound::Date(d) => *d,
        RangeBound::Millis(ms) => crate::calendar::et_date_of_ms(*ms),
    }
}

fn parse_bound(text: &str) -> Option<RangeBound> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(RangeBound::Date(date));
    }
    text.parse::<i64>().ok().map(RangeBound::Millis)
}

async fn range(
    State(state): Shared,
    Path((ticker, multiplier, timespan, from, to)): Path<(String, String, String, String, String)>,
    Query(params): Params,
) -> Response {
    let params = match effective(params) {
        Ok(p) => p,
        Err(e) => return bad_request(&state, &e),
    };
    let Some(span) = Timespan::from_polygon(&timespan).filter(|t| *t != Timespan::Second) else {
        return bad_request(&state, &format!("Unsupported timespan '{timespan}'"));
    };
    let multiplier = match multiplier.parse::<u32>() {
        Ok(m) if m >= 1 => m,
        _ => return bad_request(&state, "multiplier must be a positive integer"),
    };
    let (Some(from_bound), Some(to_bound)) = (parse_bound(&from), parse_bound(&to)) else {
        return bad_request(
            &state,
            "from and to must be YYYY-MM-DD or Unix milliseconds",
        );
    };
    if bound_date(&from_bound) > state.config.today || bound_date(&to_bound) > state.config.today {
        return not_authorized(&state);
    }
    let limit = match limit(&params, AGGS_DEFAULT_LIMIT, AGGS_MAX_LIMIT) {
        Ok(l) => l,
        Err(e) => return bad_request(&state, &e),
    };
    let adjusted = flag(&params, "adjusted", true);
    let descending = params.get("sort").is_some_and(|s| s == "desc");
    let request_id = fresh_id(&state);
    let reference = state.market.reference();
    let info = match reference.find(&ticker) {
        Some(info) => Some(info.clone()),
        None if ticker.starts_with("O:") => reference.option_info(&ticker),
        None => None,
    };
    let query = AggQuery {
        multiplier,
        timespan: span,
        from: from_bound,
        to: to_bound,
        adjusted,
        limit,
    };
    let worker_state = Arc::clone(&state);
    let page = match info {
        None => None,
        Some(info) => tokio::task::spawn_blocking(move || {
            range_aggregates(&worker_state.market, &info, &query)
        })
        .await
        .ok(),
    };
    let is_index = ticker.starts_with("I:");
    let mut body = serde_json::Map::new();
    body.insert("ticker".into(), json!(ticker));
    let bars = page.as_ref().map(|p| p.bars.as_slice()).unwrap_or_default();
    body.insert("queryCount".into(), json!(bars.len()));
    if !is_index {
        body.insert("resultsCount".into(), json!(bars.len()));
        body.insert("adjusted".into(), json!(adjusted));
    }
    if !bars.is_empty() {
        let mut wire: Vec<WireBar> = bars.iter().map(|b| WireBar::from_bar(b, None)).collect();
        if descending {
            wire.reverse();
        }
        body.insert("results".into(), json!(wire));
    }
    body.insert("status".into(), json!("OK"));
    body.insert("request_id".into(), json!(request_id));
    if !bars.is_empty() {
        body.insert("count".into(), json!(bars.len()));
    }
    if let Some(next_from) = page.and_then(|p| p.next_from_ms) {
        let cursor = encode_cursor(&[
            ("limit", limit.to_string()),
            ("sort", if descending { "desc" } else { "asc" }.to_owned()),
        ]);
        let next = format!(
            "{}/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{next_from}/{to}?cursor={cursor}",
            state.config.next_url_host
        );
        body.insert("next_url".into(), json!(next));
    }
    json_reply(&Value::Object(body))
}

async fn grouped(
    State(state): Shared,
    Path((locale, market, date)): Path<(String, String, String)>,
    Query(params): Params,
) -> Response {
    let classes: &[AssetClass] = match (locale.as_str(), market.as_str()) {
        ("us", "stocks") if flag(&params, "include_otc", false) => {
            &[AssetClass::Stocks, AssetClass::Otc]
        }
        ("us", "stocks") => &[AssetClass::Stocks],
        ("global", "crypto") => &[AssetClass::Crypto],
        ("global", "fx") => &[AssetClass::Fx],
        _ => return not_found(State(state)).await,
    };
    let Ok(date) = NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
        return bad_request(&state, "date must be YYYY-MM-DD");
    };
    if date > state.config.today {
        return not_authorized(&state);
    }
    let adjusted = flag(&params, "adjusted", true);
    let classes = classes.to_vec();
    let worker_state = Arc::clone(&state);
    let bars =
        tokio::task::spawn_blocking(move || grouped_bars(&worker_state, &classes, date, adjusted))
            .await
            .unwrap_or_default();
    let mut body = serde_json::Map::new();
    body.insert("queryCount".into(), json!(bars.len()));
    body.insert("resultsCount".into(), json!(bars.len()));
    body.insert("adjusted".into(), json!(adjusted));
    if !bars.is_empty() {
        body.insert("results".into(), json!(bars));
    }
    body.insert("status".into(), json!("OK"));
    body.insert("request_id".into(), json!(fresh_id(&state)));
    body.insert("count".into(), json!(bars.len()));
    json_reply(&Value::Object(body))
}

/// Every day bar of `classes` on `date`, stamped 16:00 ET as the real
/// grouped endpoint stamps stock bars (crypto and fx: their day bar's `t`).
fn grouped_bars(
    state: &SimState,
    classes: &[AssetClass],
    date: NaiveDate,
    adjusted: bool,
) -> Vec<WireBar> {
    let sixteen_hours = TimeDelta::hours(16).num_milliseconds();
    state
        .market
        .reference()
        .tickers()
        .iter()
        .filter(|info| classes.contains(&info.asset_class))
        .filter_map(|info| {
            let mut bar = state.market.day_bar(info, date, adjusted)?;
            if matches!(info.asset_class, AssetClass::Stocks | AssetClass::Otc) {
                bar.t = et_midnight_ms(date) + sixteen_hours;
            }
            Some(WireBar::from_bar(&bar, Some(&info.ticker)))
        })
        .collect()
}

// ----------------------------------------------------------------- reference

fn ticker_json(info: &TickerInfo) -> Value {
    let mut item = serde_json::Map::new();
    item.insert("ticker".into(), json!(info.ticker));
    item.insert("name".into(), json!(info.name));
    item.insert("market".into(), json!(info.market));
    item.insert("locale".into(), json!(info.locale));
    let optional = [
        ("primary_exchange", info.primary_exchange.as_deref()),
        ("type", info.type_code.as_deref()),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            item.insert(key.into(), json!(v));
        }
    }
    item.insert("active".into(), json!(info.active));
    item.insert("currency_name".into(), json!(info.currency_name));
    let more = [
        ("currency_symbol", info.currency_symbol.as_deref()),
        ("base_currency_symbol", info.base_currency_symbol.as_deref()),
        ("base_currency_name", info.base_currency_name.as_deref()),
        ("cik", info.cik.as_deref()),
        ("composite_figi", info.composite_figi.as_deref()),
        ("share_class_figi", info.share_class_figi.as_deref()),
    ];
    for (key, value) in more {
        if let Some(v) = value {
            item.insert(key.into(), json!(v));
        }
    }
    item.insert("last_updated_utc".into(), json!(info.last_updated_utc));
    if let Some(d) = &info.delisted_utc {
        item.insert("delisted_utc".into(), json!(d));
    }
    Value::Object(item)
}

/// One page of a sorted reference listing: the items after `page_marker`,
/// and the cursor of the next page when more remain.
fn paginate<'a, T>(
    sorted: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> &str,
    params: &HashMap<String, String>,
    limit: usize,
) -> (Vec<&'a T>, Option<String>)
where
    T: 'a,
{
    let marker = params.get("page_marker").cloned();
    let mut after = sorted.filter(|item| marker.as_deref().is_none_or(|m| key(item) > m));
    let page: Vec<&T> = after.by_ref().take(limit).collect();
    let more = after.next().is_some();
    let next = match (more, page.last()) {
        (true, Some(last)) => {
            let mut pairs: Vec<(&str, String)> = params
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "page_marker" | "cursor" | "apiKey"))
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            pairs.push(("limit", limit.to_string()));
            pairs.push(("page_marker", key(last).to_owned()));
            pairs.sort();
            pairs.dedup_by(|a, b| a.0 == b.0);
            Some(encode_cursor(&pairs))
        }
        _ => None,
    };
    (page, next)
}

async fn tickers(State(state): Shared, Query(params): Params) -> Response {
    let (params, limit) = match listing_query(params, TICKERS_DEFAULT_LIMIT) {
        Ok(query) => query,
        Err(e) => return bad_request(&state, &e),
    };
    let active = flag(&params, "active", true);
    let get = |k: &str| params.get(k).map(String::as_str);
    let search = get("search").map(str::to_ascii_lowercase);
    let matching = state.market.reference().tickers().iter().filter(|info| {
        info.active == active
            && info.asset_class != AssetClass::Options
            && get("market").is_none_or(|m| info.market == m)
            && get("type").is_none_or(|t| info.type_code.as_deref() == Some(t))
            && get("exchange").is_none_or(|e| info.primary_exchange.as_deref() == Some(e))
            && get("ticker").is_none_or(|t| info.ticker == t)
            && search.as_deref().is_none_or(|s| {
                info.ticker.to_ascii_lowercase().contains(s)
                    || info.name.to_ascii_lowercase().contains(s)
            })
    });
    let (page, next) = paginate(matching, |i: &TickerInfo| i.ticker.as_str(), &params, limit);
    let results: Vec<Value> = page.into_iter().map(ticker_json).collect();
    reference_reply(&state, "/v3/reference/tickers", results, next)
}

fn reference_reply(
    state: &SimState,
    path: &str,
    results: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("count".into(), json!(results.len()));
    body.insert("results".into(), Value::Array(results));
    body.insert("status".into(), json!("OK"));
    body.insert("request_id".into(), json!(fresh_id(state)));
    if let Some(cursor) = next {
        body.insert(
            "next_url".into(),
            json!(format!(
                "{}{path}?cursor={cursor}",
                state.config.next_url_host
            )),
        );
    }
    json_reply(&Value::Object(body))
}

async fn ticker_types(State(state): Shared, Query(params): Params) -> Response {
    const STOCK_TYPES: &[(&str, &str)] = &[
        ("CS", "Common Stock"),
        ("PFD", "Preferred Stock"),
        ("WARRANT", "Warrant"),
        ("RIGHT", "Rights"),
        ("BOND", "Corporate Bond"),
        ("ETF", "Exchange Traded Fund"),
        ("ETN", "Exchange Traded Note"),
        ("SP", "Structured Product"),
        ("ADRC", "American Depository Receipt Common"),
        ("ADRW", "American Depository Receipt Warrants"),
        ("ADRR", "American Depository Receipt Rights"),
        ("FUND", "Fund"),
        ("BASKET", "Basket"),
        ("UNIT", "Unit"),
        ("LT", "Liquidating Trust"),
    ];
    let wanted = params.get("asset_class").map(String::as_str);
    let mut results: Vec<Value> = Vec::new();
    if wanted.is_none_or(|a| a == "stocks") {
        results.extend(STOCK_TYPES.iter().map(|(code, description)| {
            json!({"code": code, "description": description, "asset_class": "stocks", "locale": "us"})
        }));
    }
    if wanted.is_none_or(|a| a == "indices") {
        results.push(json!({"code": "INDEX", "description": "Index", "asset_class": "indices", "locale": "us"}));
    }
    json_reply(&json!({
        "results": results,
        "status": "OK",
        "request_id": fresh_id(&state),
        "count": results.len(),
    }))
}

async fn contracts(State(state): Shared, Query(params): Params) -> Response {
    let (params, limit) = match listing_query(params, CONTRACTS_DEFAULT_LIMIT) {
        Ok(query) => query,
        Err(e) => return bad_request(&state, &e),
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    let today = state.config.today;
    let expired = flag(&params, "expired", false);
    let (gte, lte, exact) = (
        date_param(&params, "expiration_date.gte"),
        date_param(&params, "expiration_date.lte"),
        date_param(&params, "expiration_date"),
    );
    let all = match get("underlying_ticker") {
        Some(underlying) => state.market.reference().option_contracts(underlying),
        None => Vec::new(),
    };
    let matching = all.iter().filter(|c| {
        (c.expiration_date < today) == expired
            && get("contract_type").is_none_or(|t| c.contract_type == t)
            && gte.is_none_or(|d| c.expiration_date >= d)
            && lte.is_none_or(|d| c.expiration_date <= d)
            && exact.is_none_or(|d| c.expiration_date == d)
    });
    let (page, next) = paginate(
        matching,
        |c: &super::reference::OptionContract| c.ticker.as_str(),
        &params,
        limit,
    );
    let results: Vec<Value> = page
        .into_iter()
        .map(|c| {
            json!({
                "cfi": c.cfi,
                "contract_type": c.contract_type,
                "exercise_style": c.exercise_style,
                "expiration_date": c.expiration_date.format("%Y-%m-%d").to_string(),
                "primary_exchange": c.primary_exchange,
                "shares_per_contract": c.shares_per_contract,
                "strike_price": c.strike_price,
                "ticker": c.ticker,
                "underlying_ticker": c.underlying_ticker,
            })
        })
        .collect();
    reference_reply(&state, "/v3/reference/options/contracts", results, next)
}

/// The stock trade conditions with their update rules (the table the
/// simulator's trades follow, [`crate::trades::conditions`]).
async fn conditions(State(state): Shared, Query(params): Params) -> Response {
    let asset_class = params.get("asset_class").map(String::as_str);
    let data_type = params.get("data_type").map(String::as_str);
    if asset_class.is_some_and(|c| c != "stocks") || data_type.is_some_and(|t| t != "trade") {
        return json_reply(&json!({
            "results": [], "status": "OK", "count": 0, "request_id": fresh_id(&state)
        }));
    }
    let mut body = crate::trades::conditions::default_conditions_json();
    body["request_id"] = json!(fresh_id(&state));
    json_reply(&body)
}

async fn splits(State(state): Shared, Query(params): Params) -> Response {
    let (params, limit) = match listing_query(params, TICKERS_DEFAULT_LIMIT) {
        Ok(query) => query,
        Err(e) => return bad_request(&state, &e),
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    let (gte, lte) = (
        date_param(&params, "execution_date.gte"),
        date_param(&params, "execution_date.lte"),
    );
    let mut all: Vec<(String, Value)> = Vec::new();
    for info in state.market.reference().tickers() {
        if get("ticker").is_some_and(|t| t != info.ticker) {
            continue;
        }
        for split in &info.splits {
            let date = split.execution_date;
            if gte.is_some_and(|d| date < d) || lte.is_some_and(|d| date > d) {
                continue;
            }
            let key = format!("{}|{}", date.format("%Y-%m-%d"), info.ticker);
            let value = json!({
                "execution_date": date.format("%Y-%m-%d").to_string(),
                "id": format!("E{:x}", info.seed ^ date.to_epoch_days() as u64),
                "split_from": split.split_from,
                "split_to": split.split_to,
                "ticker": info.ticker,
            });
            all.push((key, value));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paginate(
        all.iter(),
        |item: &(String, Value)| item.0.as_str(),
        &params,
        limit,
    );
    let results = page.into_iter().map(|(_, v)| v.clone()).collect();
    reference_reply(&state, "/v3/reference/splits", results, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_their_query() {
        let cursor = encode_cursor(&[("limit", "10".into()), ("sort", "asc".into())]);
        assert_eq!(cursor, "bGltaXQ9MTAmc29ydD1hc2M"); // the real API's cursor for these
        let decoded = decode_cursor(&cursor).unwrap();
        assert_eq!(decoded.get("limit").map(String::as_str), Some("10"));
    }
}
