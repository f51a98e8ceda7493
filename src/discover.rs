//! Discovery: a category and its filters → the reference endpoints → a list
//! of tickers. Pages use the maximum page size and paging stops as soon as
//! `--limit` tickers are collected, so no request is spent on tickers that
//! would be thrown away.

use std::collections::BTreeMap;

use crate::model::Category;
use crate::polygon::{ApiError, Client, TickerRecord, endpoint};
use crate::universe::Filters;

/// Largest page the reference endpoints serve.
pub const MAX_PAGE: usize = 1000;

/// What to discover.
#[derive(Clone, Debug, Default)]
pub struct DiscoverRequest {
    pub limit: Option<usize>,
    pub type_code: Option<String>,
    pub exchange: Option<String>,
    pub include_inactive: bool,
    pub underlyings: Vec<String>,
}

/// Why discovery could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The tickers found and the filters that found them.
#[derive(Debug)]
pub struct Discovery {
    pub tickers: Vec<TickerRecord>,
    pub filters: Filters,
    pub pages: usize,
}

/// One listing: an endpoint and its filters, before paging parameters.
#[derive(Debug)]
struct Listing {
    path: &'static str,
    params: Vec<(&'static str, String)>,
}

/// Lists the tickers of `category`. `on_page` is told the running total after
/// every page.
pub async fn discover(
    client: &Client,
    category: Category,
    request: &DiscoverRequest,
    mut on_page: impl FnMut(usize),
) -> Result<Discovery, DiscoverError> {
    let (filters, listings) = plan(category, request)?;
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut found: BTreeMap<String, TickerRecord> = BTreeMap::new();
    let mut pages = 0;
    for listing in listings {
        let mut collected_here = 0;
        let wanted = limit.saturating_sub(found.len());
        if wanted == 0 {
            break;
        }
        let mut params = listing.params;
        params.push(("limit", wanted.min(MAX_PAGE).to_string()));
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut cursor = client.pages::<TickerRecord>(endpoint(listing.path, &pairs), Vec::new());
        while found.len() < limit {
            let Some(page) = cursor.next_page().await? else {
                break;
            };
            pages += 1;
            for record in page.results {
                if found.len() >= limit {
                    break;
                }
                collected_here += 1;
                // A symbol listed both active and delisted keeps its active record.
                found.entry(record.ticker.clone()).or_insert(record);
            }
            on_page(found.len());
        }
        tracing::debug!(path = listing.path, collected_here, "listing done");
    }
    Ok(Discovery {
        tickers: found.into_values().collect(),
        filters,
        pages,
    })
}

/// The filters recorded in the universe file and the listings to request.
fn plan(
    category: Category,
    request: &DiscoverRequest,
) -> Result<(Filters, Vec<Listing>), DiscoverError> {
    if request.limit == Some(0) {
        return Err(DiscoverError::Usage("--limit must be at least 1".into()));
    }
    if category == Category::Options {
        return plan_options(request);
    }
    if !request.underlyings.is_empty() {
        return Err(DiscoverError::Usage(format!(
            "--underlying applies to the options category only, not {category}"
        )));
    }
    let (market, default_type) = match category {
        Category::UsEquities => ("stocks", Some("CS")),
        Category::Etf => ("stocks", Some("ETF")),
        Category::Otc => ("otc", None),
        Category::Crypto => ("crypto", None),
        Category::Fx => ("fx", None),
        Category::Indices => ("indices", None),
        Category::Options => unreachable!("handled above"),
    };
    let type_code = request
        .type_code
        .clone()
        .or(default_type.map(str::to_owned));
    let filters = Filters {
        market: Some(market.to_owned()),
        type_code: type_code.clone(),
        exchange: request.exchange.clone(),
        underlyings: Vec::new(),
        include_inactive: request.include_inactive,
        limit: request.limit,
    };
    let mut base = vec![("market", market.to_owned())];
    base.extend(type_code.map(|t| ("type", t)));
    base.extend(request.exchange.clone().map(|e| ("exchange", e)));
    let listing = |active: &str| {
        let mut params = base.clone();
        params.push(("active", active.to_owned()));
        Listing {
            path: "/v3/reference/tickers",
            params,
        }
    };
    let mut listings = vec![listing("true")];
    if request.include_inactive {
        listings.push(listing("false"));
    }
    Ok((filters, listings))
}

fn plan_options(request: &DiscoverRequest) -> Result<(Filters, Vec<Listing>), DiscoverError> {
    if request.underlyings.is_empty() {
        return Err(DiscoverError::Usage(
            "the options category lists the contracts of given underlyings: pass --underlying AAPL (or a list: --underlying AAPL,MSFT). \
             Listing every option contract in the market would take tens of thousands of requests"
                .into(),
        ));
    }
    if request.exchange.is_some() {
        return Err(DiscoverError::Usage(
            "--exchange does not apply to options (the contracts endpoint has no exchange filter)"
                .into(),
        ));
    }
    let contract_type = match request.type_code.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(t) if t == "call" || t == "put" => Some(t),
        Some(other) => {
            return Err(DiscoverError::Usage(format!(
                "--type for options is call or put, not {other:?}"
            )));
        }
    };
    let mut listings = Vec::new();
    for underlying in &request.underlyings {
        let expired_states: &[&str] = if request.include_inactive {
            &["false", "true"]
        } else {
            &["false"]
        };
        for expired in expired_states {
            let mut params = vec![("underlying_ticker", underlying.clone())];
            params.extend(contract_type.clone().map(|t| ("contract_type", t)));
            params.push(("expired", (*expired).to_owned()));
            listings.push(Listing {
                path: "/v3/reference/options/contracts",
                params,
            });
        }
    }
    let filters = Filters {
        market: Some("options".into()),
        type_code: contract_type,
        exchange: None,
        underlyings: request.underlyings.clone(),
        include_inactive: request.include_inactive,
        limit: request.limit,
    };
    Ok((filters, listings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_map_to_the_seed_filters() {
        let (filters, listings) = plan(Category::UsEquities, &DiscoverRequest::default()).unwrap();
        assert_eq!(filters.market.as_deref(), Some("stocks"));
        assert_eq!(filters.type_code.as_deref(), Some("CS"));
        assert_eq!(listings.len(), 1);
        let request = DiscoverRequest {
            include_inactive: true,
            ..DiscoverRequest::default()
        };
        let (_, listings) = plan(Category::Crypto, &request).unwrap();
        let actives: Vec<&str> = listings
            .iter()
            .flat_map(|l| {
                l.params
                    .iter()
                    .filter(|(k, _)| *k == "active")
                    .map(|(_, v)| v.as_str())
            })
            .collect();
        assert_eq!(actives, ["true", "false"]);
    }

    #[test]
    fn options_need_an_underlying_and_explain_why() {
        let err = plan(Category::Options, &DiscoverRequest::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--underlying AAPL"), "{err}");
        let request = DiscoverRequest {
            underlyings: vec!["AAPL".into()],
            type_code: Some("straddle".into()),
            ..DiscoverRequest::default()
        };
        assert!(
            plan(Category::Options, &request)
                .unwrap_err()
                .to_string()
                .contains("call or put")
        );
        let request = DiscoverRequest {
            underlyings: vec!["AAPL".into()],
            ..DiscoverRequest::default()
        };
        assert!(plan(Category::Etf, &request).is_err());
        assert!(plan(Category::Options, &request).is_ok());
    }
}
