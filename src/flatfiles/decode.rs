//! Decoding one day's aggregates file: gzip bytes in, runs of [`Bar`]s out.
//!
//! The core is synchronous and streams: a fixed line buffer is refilled from
//! the gzip decoder and complete lines are parsed in place, so memory stays
//! bounded whatever the file size. Columns are found by header name. Rows are
//! grouped into runs (consecutive rows of one ticker, at most [`RUN_CAP`]
//! bars); tickers the caller does not want are skipped without parsing their
//! numbers. A truncated or damaged gzip stream is an error, never a shorter
//! result, so the caller can stage runs and commit only on `Ok`.

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::error::{DecodeError, FlatFileError};
use super::keys::DayFile;
use super::row::{Layout, find_byte};
use crate::model::{Bar, Ticker};

/// Bytes asked of the gzip decoder at a time.
const READ_CHUNK: usize = 256 * 1024;
/// The longest line accepted; aggregates lines are under 200 bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// Size of the decoder's line buffer, which never grows.
pub const LINE_BUFFER: usize = READ_CHUNK + MAX_LINE;
/// The most bars in one run; a longer stretch of one ticker comes as several
/// consecutive runs. A real day holds at most 1,440 minutes per ticker.
pub const RUN_CAP: usize = 4096;
/// Compressed bytes read from the source at a time by [`decode_day`].
const INPUT_BUFFER: usize = 64 * 1024;

/// Consecutive rows of one ticker, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct TickerRun {
    pub ticker: Ticker,
    pub bars: Vec<Bar>,
}

/// What a decode saw, and the most it held in memory at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayStats {
    /// Data rows in the file (header excluded), wanted or not.
    pub rows: u64,
    /// Rows handed to the sink.
    pub kept_rows: u64,
    /// Runs handed to the sink.
    pub runs: u64,
    /// Compressed bytes read.
    pub compressed_bytes: u64,
    /// Decompressed (CSV) bytes read.
    pub csv_bytes: u64,
    /// The most bytes the line buffer held at once (at most [`LINE_BUFFER`]).
    pub peak_line_bytes: usize,
    /// The most bars held in one run (at most [`RUN_CAP`]).
    pub peak_run_bars: usize,
    /// The most downloaded bytes waiting for the decoder at once (S3 reads only).
    pub peak_queued_bytes: usize,
    /// The ETag of the object decoded: the GET response's when read from S3,
    /// else the [`DayFile`]'s.
    pub etag: Option<String>,
}

/// Decodes a gzip-compressed aggregates file read from `reader`, handing each
/// run of a wanted ticker to `sink`. `want` is asked once per run (a ticker
/// that comes back later in the file is asked again). Errors name the key and,
/// for rows, the line and column. Returns only after the gzip trailer was
/// checked, so `Ok` means the whole file was read.
pub fn decode_day<R: Read, E>(
    reader: R,
    file: &DayFile,
    want: impl FnMut(&str) -> bool,
    sink: impl FnMut(TickerRun) -> Result<(), E>,
) -> Result<DayStats, DecodeError<E>> {
    decode_buffered(
        BufReader::with_capacity(INPUT_BUFFER, reader),
        file,
        want,
        sink,
    )
}

/// [`decode_day`] over a reader that buffers already.
pub(crate) fn decode_buffered<R: BufRead, E>(
    reader: R,
    file: &DayFile,
    want: impl FnMut(&str) -> bool,
    sink: impl FnMut(TickerRun) -> Result<(), E>,
) -> Result<DayStats, DecodeError<E>> {
    let mut counted = CountingReader {
        inner: reader,
        count: 0,
    };
    let gz = MultiGzDecoder::new(&mut counted);
    let mut decoder = Decoder::new(file, want, sink);
    decoder.run(gz)?;
    let mut stats = decoder.stats;
    stats.compressed_bytes = counted.count;
    stats.etag = file.etag.clone();
    Ok(stats)
}

/// Counts the compressed bytes the gzip decoder consumes.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: BufRead> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count += amount as u64;
        self.inner.consume(amount);
    }
}

/// The state of one decode.
struct Decoder<'f, W, S> {
    file: &'f DayFile,
    want: W,
    sink: S,
    layout: Option<Layout>,
    /// 00:00 of the key's date in the dataset's day zone (day files).
    day_stamp: i64,
    line: u64,
    /// The ticker of the rows being read, and whether it is wanted.
    current: Vec<u8>,
    wanted: bool,
    run: Option<TickerRun>,
    stats: DayStats,
}

impl<'f, W, S, E> Decoder<'f, W, S>
where
    W: FnMut(&str) -> bool,
    S: FnMut(TickerRun) -> Result<(), E>,
{
    fn new(file: &'f DayFile, want: W, sink: S) -> Self {
        Self {
            file,
            want,
            sink,
            layout: None,
            day_stamp: file.dataset.asset_class().midnight_ms(file.date),
            line: 0,
            current: Vec::new(),
            wanted: false,
            run: None,
            stats: DayStats::default(),
        }
    }

    /// Reads every line from `csv`, then checks the file had a header.
    fn run(&mut self, mut csv: impl Read) -> Result<(), DecodeError<E>> {
        let mut buf = vec![0u8; LINE_BUFFER];
        let (mut start, mut end) = (0usize, 0usize);
        loop {
            // Parse the complete lines held.
            while let Some(newline) = find_byte(&buf[start..end], b'\n') {
                self.line(&buf[start..start + newline])?;
                start += newline + 1;
            }
            if end - start > MAX_LINE {
                return Err(FlatFileError::BadRow {
                    key: self.file.key.clone(),
                    line: self.line + 1,
                    column: None,
                    detail: format!("a line longer than {MAX_LINE} bytes"),
                }
                .into());
            }
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            let read = match csv.read(&mut buf[end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FlatFileError::from_read(&self.file.key, e).into()),
            };
            self.stats.csv_bytes += read as u64;
            if read == 0 {
                break;
            }
            end += read;
            self.stats.peak_line_bytes = self.stats.peak_line_bytes.max(end);
        }
        if end > start {
            // A last line without its newline.
            self.line(&buf[start..end])?;
        }
        if self.layout.is_none() {
            return Err(FlatFileError::Corrupt {
                key: self.file.key.clone(),
                detail: "the file holds no CSV header".to_owned(),
            }
            .into());
        }
        self.flush()
    }

    /// One line, without its `\n`.
    fn line(&mut self, raw: &[u8]) -> Result<(), DecodeError<E>> {
        self.line += 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Some(layout) = &self.layout else {
            self.layout = Some(Layout::from_header(line, self.file)?);
            return Ok(());
        };
        if line.is_empty() {
            return Ok(());
        }
        self.stats.rows += 1;
        let ticker = layout.ticker(line);
        if ticker != self.current.as_slice() {
            self.start_ticker(ticker)?;
        }
        if self.wanted {
            let bar = self.read_bar(line)?;
            self.push(bar)?;
        }
        Ok(())
    }

    /// A new ticker begins: close the run before, ask whether it is wanted.
    fn start_ticker(&mut self, ticker: &[u8]) -> Result<(), DecodeError<E>> {
        self.flush()?;
        self.current.clear();
        self.current.extend_from_slice(ticker);
        let Ok(name) = std::str::from_utf8(ticker) else {
            return Err(self
                .bad_row(Some("ticker"), "the ticker is not UTF-8".to_owned())
                .into());
        };
        self.wanted = (self.want)(name);
        if self.wanted {
            match Ticker::new(name) {
                Ok(ticker) => {
                    self.run = Some(TickerRun {
                        ticker,
                        bars: Vec::new(),
                    });
                }
                Err(e) => return Err(self.bad_row(Some("ticker"), e.to_string()).into()),
            }
        }
        Ok(())
    }

    fn push(&mut self, bar: Bar) -> Result<(), DecodeError<E>> {
        let Some(run) = &mut self.run else {
            return Ok(()); // Unreachable: a wanted ticker always has a run.
        };
        run.bars.push(bar);
        self.stats.peak_run_bars = self.stats.peak_run_bars.max(run.bars.len());
        if run.bars.len() >= RUN_CAP {
            let ticker = run.ticker.clone();
            self.flush()?;
            self.run = Some(TickerRun {
                ticker,
                bars: Vec::new(),
            });
        }
        Ok(())
    }

    /// Hands the open run, if it has bars, to the sink.
    fn flush(&mut self) -> Result<(), DecodeError<E>> {
        match self.run.take() {
            Some(run) if !run.bars.is_empty() => {
                self.stats.runs += 1;
                self.stats.kept_rows += run.bars.len() as u64;
                (self.sink)(run).map_err(DecodeError::Sink)
            }
            _ => Ok(()),
        }
    }

    fn read_bar(&self, line: &[u8]) -> Result<Bar, FlatFileError> {
        let Some(layout) = &self.layout else {
            return Err(self.bad_row(None, "a row before the header".to_owned()));
        };
        layout
            .bar(line, self.day_stamp)
            .map_err(|e| self.bad_row(e.column, e.detail))
    }

    fn bad_row(&self, column: Option<&'static str>, detail: String) -> FlatFileError {
        FlatFileError::BadRow {
            key: self.file.key.clone(),
            line: self.line,
            column,
            detail,
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
