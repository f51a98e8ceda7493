//! Staged day files: the rows of one flat file that the library wants, kept on
//! disk under `<data-dir>/.finpipe/staging/` until every day of a flat-file job is
//! there, then merged into each ticker's period file once.
//!
//! Writing a month of day files straight into per-ticker monthly files would
//! rewrite each file once per day (quadratic); staging makes it one write per
//! ticker per period, with memory bounded by one ticker's bars of that period.
//!
//! Format (little-endian, private to one finpipe version): runs of records of
//! [`RECORD`] bytes, then an index (per ticker: its name and where its runs
//! are), then the index's offset and [`MAGIC`]. A staged file is written to a
//! temporary name and renamed, so one that exists is whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::fsutil::{self, TMP_MARKER};
use crate::model::{Bar, Ticker};

/// The last eight bytes of every staged file.
const MAGIC: &[u8; 8] = b"FPSTAGE1";
/// Bytes per bar: t, o, h, l, c, v, vw (8 each), n (8), presence flags (1).
const RECORD: usize = 65;

/// Where one ticker's records are: (first record's byte offset, count).
type Runs = Vec<(u64, u32)>;

/// Writes one staged day. Dropped before [`Self::finish`] succeeded, it
/// removes its temporary file.
pub struct StagedWriter {
    target: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    index: BTreeMap<String, Runs>,
    /// Renamed into place: nothing to remove.
    finished: bool,
}

fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::io(action, path, source)
}

impl StagedWriter {
    /// Starts writing `target` (its directory is created).
    pub fn create(target: &Path) -> Result<Self, StoreError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        fsutil::create_parent(target).map_err(io_error(dir, "create the staging directory"))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!("{name}{TMP_MARKER}{:016x}", fastrand::u64(..)));
        let file = File::create(&temp).map_err(io_error(&temp, "create a staged day"))?;
        Ok(Self {
            target: target.to_owned(),
            temp,
            out: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            index: BTreeMap::new(),
            finished: false,
        })
    }

    /// Appends a run of one ticker's bars.
    pub fn push(&mut self, ticker: &Ticker, bars: &[Bar]) -> Result<(), StoreError> {
        if bars.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(bars.len() * RECORD);
        for bar in bars {
            encode(bar, &mut buf);
        }
        self.out
            .write_all(&buf)
            .map_err(io_error(&self.temp, "write a staged day"))?;
        let count = u32::try_from(bars.len()).unwrap_or(u32::MAX);
        self.index
            .entry(ticker.as_str().to_owned())
            .or_default()
            .push((self.offset, count));
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Writes the index, makes the file durable (see
    /// [`fsutil::rename_into_place`]) and renames it into place. On an error
    /// the temporary file is removed.
    pub fn finish(mut self) -> Result<(), StoreError> {
        let mut tail = Vec::new();
        for (ticker, runs) in &self.index {
            let name = ticker.as_bytes();
            tail.extend_from_slice(&u32::try_from(name.len()).unwrap_or(0).to_le_bytes());
            tail.extend_from_slice(name);
            tail.extend_from_slice(&u32::try_from(runs.len()).unwrap_or(0).to_le_bytes());
            for (offset, count) in runs {
                tail.extend_from_slice(&offset.to_le_bytes());
                tail.extend_from_slice(&count.to_le_bytes());
            }
        }
        tail.extend_from_slice(&self.offset.to_le_bytes());
        tail.extend_from_slice(MAGIC);
        let temp = self.temp.clone();
        self.out
            .write_all(&tail)
            .and_then(|()| self.out.flush())
            .and_then(|()| fsutil::sync_content(self.out.get_ref(), &self.target))
            .map_err(io_error(&temp, "write a staged day"))?;
        fsutil::rename_into_place(&self.temp, &self.target)
            .map_err(io_error(&self.target, "rename a staged day into place"))?;
        self.finished = true;
        Ok(())
    }

    /// Removes the temporary file (a failed or abandoned day).
    pub fn abandon(self) {
        drop(self);
    }
}

impl Drop for StagedWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is swept at the next start.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A staged day opened for reading: its index in memory, bars read per ticker.
pub struct StagedDay {
    path: PathBuf,
    file: File,
    index: BTreeMap<String, Runs>,
}

impl StagedDay {
    /// Opens a staged file and reads its index.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let corrupt = |detail: &str| StoreError::corrupt(path, format!("staged day: {detail}"));
        let mut file = File::open(path).map_err(io_error(path, "open a staged day"))?;
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(io_error(path, "read a staged day"))?;
        if len < 16 {
            return Err(corrupt("too short"));
        }
        let mut trailer = [0u8; 16];
        file.read_exact_at(&mut trailer, len - 16)
            .map_err(io_error(path, "read a staged day"))?;
        if &trailer[8..] != MAGIC {
            return Err(corrupt("not a staged day of this finpipe version"));
        }
        let index_at = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
        if index_at > len - 16 {
            return Err(corrupt("index offset out of range"));
        }
        let mut raw = vec![0u8; usize::try_from(len - 16 - index_at).unwrap_or(0)];
        file.read_exact_at(&mut raw, index_at)
            .map_err(io_error(path, "read a staged day"))?;
        let index = parse_index(&raw).ok_or_else(|| corrupt("damaged index"))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            index,
        })
    }

    /// The tickers staged, sorted.
    pub fn tickers(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Appends `ticker`'s bars (file order) to `into`.
    pub fn read_into(&self, ticker: &str, into: &mut Vec<Bar>) -> Result<(), StoreError> {
        let Some(runs) = self.index.get(ticker) else {
            return Ok(());
        };
        for &(offset, count) in runs {
            let mut buf = vec![0u8; count as usize * RECORD];
            self.file
                .read_exact_at(&mut buf, offset)
                .map_err(io_error(&self.path, "read a staged day"))?;
            into.extend(buf.chunks_exact(RECORD).map(decode));
        }
        Ok(())
    }
}

fn parse_index(mut raw: &[u8]) -> Option<BTreeMap<String, Runs>> {
    fn take<'a>(raw: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = raw.split_at_checked(n)?;
        *raw = rest;
        Some(head)
    }
    fn u32_at(raw: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(raw, 4)?.try_into().ok()?))
    }
    let mut index = BTreeMap::new();
    while !raw.is_empty() {
        let len = u32_at(&mut raw)? as usize;
        let name = String::from_utf8(take(&mut raw, len)?.to_vec()).ok()?;
        let count = u32_at(&mut raw)?;
        let mut runs = Vec::new();
        for _ in 0..count {
            let offset = u64::from_le_bytes(take(&mut raw, 8)?.try_into().ok()?);
            runs.push((offset, u32_at(&mut raw)?));
        }
        index.insert(name, runs);
    }
    Some(index)
}

fn encode(bar: &Bar, out: &mut Vec<u8>) {
    out.extend_from_slice(&bar.timestamp.to_le_bytes());
    for value in [bar.open, bar.high, bar.low, bar.close] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&bar.volume.unwrap_or(0.0).to_le_bytes());
    out.extend_from_slice(&bar.vwap.unwrap_or(0.0).to_le_bytes());
    out.extend_from_slice(&bar.transactions.unwrap_or(0).to_le_bytes());
    let flags = u8::from(bar.volume.is_some())
        | u8::from(bar.vwap.is_some()) << 1
        | u8::from(bar.transactions.is_some()) << 2;
    out.push(flags);
}

fn decode(record: &[u8]) -> Bar {
    // `record` is exactly RECORD bytes (chunks_exact), so every slice below
    // has its length and the conversions cannot fail.
    let word = |i: usize| <[u8; 8]>::try_from(&record[i * 8..i * 8 + 8]).unwrap_or_default();
    let float = |i: usize| f64::from_le_bytes(word(i));
    let flags = record[64];
    Bar {
        timestamp: i64::from_le_bytes(word(0)),
        open: float(1),
        high: float(2),
        low: float(3),
        close: float(4),
        volume: (flags & 1 != 0).then(|| float(5)),
        vwap: (flags & 2 != 0).then(|| float(6)),
        transactions: (flags & 4 != 0).then(|| i64::from_le_bytes(word(7))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: i64, volume: Option<f64>) -> Bar {
        Bar {
            timestamp: t,
            open: 1.5,
            high: 2.25,
            low: 0.125,
            close: -3.0,
            volume,
            vwap: None,
            transactions: volume.map(|v| v as i64),
        }
    }

    #[test]
    fn staged_days_read_back_per_ticker_including_split_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job-1/2024-03-05.day");
        let mut writer = StagedWriter::create(&path).unwrap();
        let (a, b) = (
            Ticker::new("AAPL").unwrap(),
            Ticker::new("X:BTCUSD").unwrap(),
        );
        writer
            .push(&a, &[bar(1, Some(10.0)), bar(2, None)])
            .unwrap();
        writer.push(&b, &[bar(1, Some(0.5))]).unwrap();
        writer.push(&a, &[bar(3, Some(7.0))]).unwrap();
        assert!(!path.exists(), "nothing at the target before finish");
        writer.finish().unwrap();
        let day = StagedDay::open(&path).unwrap();
        assert_eq!(day.tickers().collect::<Vec<_>>(), ["AAPL", "X:BTCUSD"]);
        let mut got = Vec::new();
        day.read_into("AAPL", &mut got).unwrap();
        assert_eq!(got, [bar(1, Some(10.0)), bar(2, None), bar(3, Some(7.0))]);
        got.clear();
        day.read_into("MSFT", &mut got).unwrap();
        assert!(got.is_empty());
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left");
    }

    #[test]
    fn an_abandoned_or_dropped_staged_day_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let ticker = Ticker::new("AAPL").unwrap();
        let mut writer = StagedWriter::create(&dir.path().join("a.day")).unwrap();
        writer.push(&ticker, &[bar(1, Some(1.0))]).unwrap();
        writer.abandon();
        let mut writer = StagedWriter::create(&dir.path().join("b.day")).unwrap();
        writer.push(&ticker, &[bar(1, Some(1.0))]).unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A finished day stays, and only it.
        let mut writer = StagedWriter::create(&dir.path().join("c.day")).unwrap();
        writer.push(&ticker, &[bar(1, Some(1.0))]).unwrap();
        writer.finish().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c.day"]);
    }

    #[test]
    fn a_damaged_staged_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.day");
        std::fs::write(&path, b"short").unwrap();
        assert!(StagedDay::open(&path).is_err());
        std::fs::write(&path, [0u8; 40]).unwrap();
        assert!(StagedDay::open(&path).is_err());
        let mut data = vec![0u8; 8];
        data.extend_from_slice(&1000u64.to_le_bytes());
        data.extend_from_slice(MAGIC);
        std::fs::write(&path, data).unwrap();
        assert!(StagedDay::open(&path).is_err());
    }
}
