//! Tickers a finished run left without a single bar. The API answers a
//! ticker it does not know (a typo, a symbol that changed) with an empty page,
//! not an error, so a run for `NOTATICKER` succeeds with nothing stored; this
//! finds those tickers from one listing of the library's root (no file is
//! read) and, for a few of them, the nearest ticker the user may have meant.

use std::collections::BTreeSet;

use crate::model::Ticker;
use crate::store::{Store, StoreError};
use crate::suggest::nearest;

/// Tickers past this many get one summary instead of a suggestion each
/// (a universe of illiquid tickers on a quiet day is not a list of typos).
pub const MAX_SUGGESTED: usize = 10;

/// What a run left without bars.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WithoutBars {
    /// The tickers of the run with nothing at all in the library, in the
    /// run's order.
    pub tickers: Vec<Ticker>,
    /// For each of them, the closest known ticker (from the run's own
    /// tickers and the library's) when it is a plausible typo; empty when
    /// there are more than [`MAX_SUGGESTED`] tickers.
    pub nearest: Vec<Option<Ticker>>,
}

/// The tickers of `tickers` that have nothing stored in the library (no
/// folder of their own), each with the nearest known ticker when there are
/// at most [`MAX_SUGGESTED`] of them.
pub fn tickers_without_bars(store: &Store, tickers: &[Ticker]) -> Result<WithoutBars, StoreError> {
    let stored: BTreeSet<Ticker> = store.tickers()?.into_iter().collect();
    let empty: Vec<Ticker> = tickers
        .iter()
        .filter(|t| !stored.contains(*t))
        .cloned()
        .collect();
    let nearest_ones = if empty.is_empty() || empty.len() > MAX_SUGGESTED {
        Vec::new()
    } else {
        empty
            .iter()
            .map(|ticker| {
                let candidates = stored.iter().filter(|k| *k != ticker).map(Ticker::as_str);
                nearest(ticker.as_str(), candidates)
                    .and_then(|name| Ticker::new(name.to_owned()).ok())
            })
            .collect()
    };
    Ok(WithoutBars {
        tickers: empty,
        nearest: nearest_ones,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bar, Basis, Timeframe};
    use crate::store::Source;

    fn tf(s: &str) -> Timeframe {
        s.parse().unwrap()
    }

    fn ticker(s: &str) -> Ticker {
        Ticker::new(s.to_owned()).unwrap()
    }

    fn store_with(dir: &std::path::Path, tickers: &[&str]) -> Store {
        let store = Store::open(dir, Basis::Adjusted, "test").unwrap();
        let bar = Bar {
            timestamp: 1_704_205_800_000,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: Some(1.0),
            vwap: Some(1.0),
            transactions: Some(1),
        };
        for t in tickers {
            store
                .merge(&ticker(t), tf("1d"), &[bar], Source::Rest)
                .unwrap();
        }
        store
    }

    #[test]
    fn finds_the_tickers_without_files_and_suggests_a_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["AAPL", "MSFT"]);
        let got = tickers_without_bars(
            &store,
            &[ticker("APPL"), ticker("AAPL"), ticker("NOTATICKER")],
        )
        .unwrap();
        assert_eq!(got.tickers, [ticker("APPL"), ticker("NOTATICKER")]);
        assert_eq!(got.nearest, [Some(ticker("AAPL")), None]);
        let none = tickers_without_bars(&store, &[ticker("MSFT")]).unwrap();
        assert_eq!(none, WithoutBars::default());
    }

    #[test]
    fn many_tickers_without_bars_get_no_suggestions() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &["AAPL"]);
        let many: Vec<Ticker> = (0..=MAX_SUGGESTED)
            .map(|i| ticker(&format!("AAP{i}")))
            .collect();
        let got = tickers_without_bars(&store, &many).unwrap();
        assert_eq!(got.tickers, many);
        assert!(got.nearest.is_empty());
    }
}
