//! The seam at the data level: the simulator's flat files, served by a real
//! S3 server and read back by finpipe's decoder, hold exactly the bars its
//! REST endpoints serve (unadjusted), in every column both carry (flat files
//! carry no vwap), for minute and day files, across a DST change.

use finpipe::flatfiles::{Dataset, FileKind};
use finpipe::model::Bar;
use finpipe::simulator::flatfiles::{FlatDataset, FlatKind, populate};

use crate::common::flatfiles::{d, head, read_all, server};
use crate::common::{sim_bars, simulator};

fn without_vwap(bars: &[Bar]) -> Vec<Bar> {
    bars.iter().map(|b| Bar { vwap: None, ..*b }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_files_hold_exactly_the_rest_bars() {
    let sim = simulator().await;
    let (dir, _server, client) = server().await;
    let tickers = ["AAPL", "MSFT", "X:BTCUSD", "I:SPX"];
    let datasets = [
        (FlatDataset::UsStocksSip, FlatKind::MinuteAggs),
        (FlatDataset::UsStocksSip, FlatKind::DayAggs),
        (FlatDataset::GlobalCrypto, FlatKind::MinuteAggs),
        (FlatDataset::GlobalCrypto, FlatKind::DayAggs),
        (FlatDataset::UsIndices, FlatKind::MinuteAggs),
        (FlatDataset::UsIndices, FlatKind::DayAggs),
    ];
    // 2024-11-01..05 spans the end of daylight saving time (November 3).
    populate(
        sim.market(),
        dir.path(),
        "flatfiles",
        &datasets,
        d("2024-11-01"),
        d("2024-11-05"),
        Some(&tickers),
    )
    .unwrap();

    let cases = [
        ("AAPL", Dataset::UsStocksSip),
        ("MSFT", Dataset::UsStocksSip),
        ("X:BTCUSD", Dataset::GlobalCrypto),
        ("I:SPX", Dataset::UsIndices),
    ];
    for (ticker, dataset) in cases {
        for (kind, timeframe) in [(FileKind::MinuteAggs, "1m"), (FileKind::DayAggs, "1d")] {
            let mut from_files = Vec::new();
            let days = client
                .list_range(dataset, kind, d("2024-11-01"), d("2024-11-05"))
                .await
                .unwrap();
            assert!(!days.is_empty(), "{ticker} {timeframe}: files listed");
            for day in &days {
                let file = head(&client, dataset, kind, &day.date.to_string()).await;
                for run in read_all(&client, &file).await.unwrap() {
                    if run.ticker.as_str() == ticker {
                        from_files.extend(run.bars);
                    }
                }
            }
            let from_rest = sim_bars(&sim, ticker, timeframe, "2024-11-01", "2024-11-05", false);
            assert!(!from_rest.is_empty(), "{ticker} {timeframe}");
            assert_eq!(from_files, without_vwap(&from_rest), "{ticker} {timeframe}");
        }
    }
    // Stocks have no file on the weekend; crypto trades every day.
    let stock_days = client
        .list_range(
            Dataset::UsStocksSip,
            FileKind::MinuteAggs,
            d("2024-11-01"),
            d("2024-11-05"),
        )
        .await
        .unwrap();
    let crypto_days = client
        .list_range(
            Dataset::GlobalCrypto,
            FileKind::MinuteAggs,
            d("2024-11-01"),
            d("2024-11-05"),
        )
        .await
        .unwrap();
    assert_eq!(stock_days.len(), 3);
    assert_eq!(crypto_days.len(), 5);
}
