//! Tickers a finished run left without a single bar. The API answers a
//! ticker it does not know (a typo, a symbol that changed) with an empty page,
//! not an error, so a run for `NOTATICKER` succeeds with nothing stored; this
//! finds those tickers from directory listings (no file is read) and the
//! nearest ticker the user may have meant.

use crate::model::{Ticker, Timeframe};
use crate::store::{Store, StoreError};
use crate::suggest::nearest;

/// A ticker with no bar stored in any of the run's timeframes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoBars {
    pub ticker: Ticker,
    /// The closest known ticker (from the run's own tickers and the
    /// library's), when one is a plausible typo of it.
    pub nearest: Option<Ticker>,
}

/// The tickers of `tickers` that have no partition file in any of
/// `timeframes`, each with the nearest known ticker: one of `tickers` that
/// has bars, or one already in the library.
pub fn tickers_without_bars(
    store: &Store,
    tickers: &[Ticker],
    timeframes: &[Timeframe],
) -> Result<Vec<NoBars>, StoreError> {
    let mut empty = Vec::new();
    for ticker in tickers {
        let mut stored = false;
        for &tf in timeframes {
            if !store.periods(ticker, tf)?.is_empty() {
                stored = true;
                break;
            }
        }
        if !stored {
            empty.push(ticker);
        }
    }
    if empty.is_empty() {
        return Ok(Vec::new());
    }
    let mut known = store.tickers()?;
    known.extend(tickers.iter().filter(|t| !empty.contains(t)).cloned());
    known.sort();
    known.dedup();
    Ok(empty
        .into_iter()
        .map(|ticker| {
            let candidates = known.iter().filter(|k| *k != ticker).map(Ticker::as_str);
            NoBars {
                ticker: ticker.clone(),
                nearest: nearest(ticker.as_str(), candidates)
                    .and_then(|name| Ticker::new(name.to_owned()).ok()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bar, Basis};
    use crate::store::Source;

    fn tf(s: &str) -> Timeframe {
        s.parse().unwrap()
    }

    fn ticker(s: &str) -> Ticker {
        Ticker::new(s.to_owned()).unwrap()
    }

    #[test]
    fn finds_the_tickers_without_files_and_suggests_a_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Basis::Adjusted, "test").unwrap();
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
        store
            .merge(&ticker("AAPL"), tf("1d"), &[bar], Source::Rest)
            .unwrap();
        let tfs = [tf("1d")];
        let got = tickers_without_bars(
            &store,
            &[ticker("APPL"), ticker("AAPL"), ticker("NOTATICKER")],
            &tfs,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                NoBars {
                    ticker: ticker("APPL"),
                    nearest: Some(ticker("AAPL")),
                },
                NoBars {
                    ticker: ticker("NOTATICKER"),
                    nearest: None,
                },
            ]
        );
        // A minute timeframe with no files: AAPL counts as stored through 1d.
        let both = [tf("1m"), tfs[0]];
        let got = tickers_without_bars(&store, &[ticker("AAPL")], &both).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}
