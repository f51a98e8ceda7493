//! Streaming day files from a real S3 server (s3s-fs, in process): runs,
//! reading run by run and stopping early, and a large day decoded in bounded
//! memory (its throughput is printed; run with `--release -- --nocapture`).

use std::convert::Infallible;
use std::time::Instant;

use finpipe::flatfiles::{
    CHUNK_QUEUE, Dataset, FileKind, FlatFileError, LINE_BUFFER, RUN_CAP, decode_day, object_key,
};

use crate::common::flatfiles::{d, gz, head, minute_file, server};

#[tokio::test]
async fn runs_are_contiguous_per_ticker() {
    let (_dir, server, client) = server().await;
    let (mut text, mut rows) = minute_file(30, 20);
    // A ticker seen again later in the file is simply another run.
    text.push_str("T00003,1,1,1,1,1,1704210000000000000,1\n");
    rows.push(("T00003".to_owned(), 1_704_210_000_000));
    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-02"));
    server.seed(&key, &gz(&text));
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-02",
    )
    .await;

    let wanted = |t: &str| t.ends_with('3') || t.ends_with('7');
    let mut runs = Vec::new();
    client
        .read_day(&file, wanted, |run| {
            runs.push(run);
            Ok::<(), Infallible>(())
        })
        .await
        .unwrap();
    let flattened: Vec<(String, i64)> = runs
        .iter()
        .flat_map(|r| r.bars.iter().map(|b| (r.ticker.to_string(), b.timestamp)))
        .collect();
    let expected: Vec<(String, i64)> = rows.into_iter().filter(|(t, _)| wanted(t)).collect();
    assert_eq!(flattened, expected, "runs keep file order");
    for pair in runs.windows(2) {
        assert!(
            pair[0].ticker != pair[1].ticker,
            "one ticker's consecutive rows are one run"
        );
    }
    let t3: Vec<usize> = runs
        .iter()
        .filter(|r| r.ticker.as_str() == "T00003")
        .map(|r| r.bars.len())
        .collect();
    assert_eq!(t3, [20, 1]);
}

#[tokio::test]
async fn a_reader_yields_runs_one_by_one_and_can_stop_early() {
    let (_dir, server, client) = server().await;
    let (text, _) = minute_file(2_000, 50);
    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-02"));
    server.seed(&key, &gz(&text));
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-02",
    )
    .await;

    let mut reader = client.open_day(&file, |_| true).await;
    let first = reader.next_run().await.unwrap().unwrap();
    assert_eq!((first.ticker.as_str(), first.bars.len()), ("T00000", 50));
    assert!(reader.stats().is_none(), "no stats before the end");
    drop(reader); // Stops the download and the decoder mid-file.

    let mut reader = client.open_day(&file, |t| t == "T01999").await;
    let mut runs = 0;
    while let Some(run) = reader.next_run().await.unwrap() {
        assert_eq!(run.ticker.as_str(), "T01999");
        runs += 1;
    }
    assert_eq!(runs, 1);
    let stats = reader.stats().unwrap();
    assert_eq!((stats.rows, stats.kept_rows), (100_000, 50));
    assert!(
        reader.next_run().await.unwrap().is_none(),
        "done stays done"
    );

    // After an error the reader keeps failing: it never looks finished.
    let bytes = gz(&text);
    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-03"));
    server.seed(&key, &bytes[..bytes.len() * 3 / 4]);
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-03",
    )
    .await;
    let mut reader = client.open_day(&file, |_| true).await;
    let mut runs = 0;
    let err = loop {
        match reader.next_run().await {
            Ok(Some(_)) => runs += 1,
            Ok(None) => panic!("a truncated file finished"),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, FlatFileError::Truncated { .. }), "{err}");
    assert!(
        runs > 0 && runs < 2_000,
        "runs came before the error: {runs}"
    );
    assert!(reader.next_run().await.is_err());
    assert!(reader.stats().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_day_decodes_in_bounded_memory() {
    let (_dir, server, client) = server().await;
    // 1,000,000 rows: 4,000 tickers × 250 minutes.
    let (text, _) = minute_file(4_000, 250);
    let bytes = gz(&text);
    let key = object_key(Dataset::UsStocksSip, FileKind::MinuteAggs, d("2024-01-02"));
    server.seed(&key, &bytes);
    let file = head(
        &client,
        Dataset::UsStocksSip,
        FileKind::MinuteAggs,
        "2024-01-02",
    )
    .await;

    let started = Instant::now();
    let (mut runs, mut bars, mut largest_run) = (0u64, 0u64, 0usize);
    let stats = client
        .read_day(
            &file,
            |_| true,
            |run| {
                runs += 1;
                bars += run.bars.len() as u64;
                largest_run = largest_run.max(run.bars.len());
                Ok::<(), Infallible>(())
            },
        )
        .await
        .unwrap();
    let over_s3 = started.elapsed();

    assert_eq!(
        (stats.rows, stats.kept_rows, bars),
        (1_000_000, 1_000_000, 1_000_000)
    );
    assert_eq!((stats.runs, runs), (4_000, 4_000));
    assert_eq!(stats.compressed_bytes, bytes.len() as u64);
    assert_eq!(stats.csv_bytes, text.len() as u64);
    // The decoder's buffers stay fixed whatever the file size.
    assert!(stats.peak_line_bytes <= LINE_BUFFER, "{stats:?}");
    assert!(
        stats.peak_run_bars <= RUN_CAP && largest_run == 250,
        "{stats:?}"
    );
    assert!(
        stats.peak_queued_bytes <= CHUNK_QUEUE * 1024 * 1024,
        "at most {CHUNK_QUEUE} chunks wait: {stats:?}"
    );
    assert!(stats.csv_bytes > 100 * LINE_BUFFER as u64);

    let started = Instant::now();
    let local = decode_day(&bytes[..], &file, |_| true, |_| Ok::<(), Infallible>(())).unwrap();
    let in_memory = started.elapsed();
    assert_eq!(local.rows, 1_000_000);

    let started = Instant::now();
    let few = decode_day(
        &bytes[..],
        &file,
        |t| t.ends_with("00"),
        |_| Ok::<(), Infallible>(()),
    )
    .unwrap();
    let filtered = started.elapsed();
    assert_eq!(few.kept_rows, 40 * 250);

    let rate = |elapsed: std::time::Duration| 1e6 / elapsed.as_secs_f64();
    eprintln!(
        "1,000,000 rows ({} MB CSV, {} MB gzip): over S3 {:.0} rows/s; in memory {:.0} rows/s; \
         1% of tickers wanted {:.0} rows/s; peaks: line buffer {} B, run {} bars, queued {} B",
        stats.csv_bytes / 1_000_000,
        stats.compressed_bytes / 1_000_000,
        rate(over_s3),
        rate(in_memory),
        rate(filtered),
        stats.peak_line_bytes,
        stats.peak_run_bars,
        stats.peak_queued_bytes,
    );
}
