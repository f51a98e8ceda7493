//! Reading a day file from S3 while it downloads: a Tokio task streams the
//! object's chunks into a bounded channel, a blocking thread gunzips and
//! decodes them (the synchronous core in `decode.rs`), and the runs come back
//! through a second bounded channel. At most [`CHUNK_QUEUE`] chunks and
//! [`RUN_QUEUE`] runs wait at any time, so memory stays bounded while
//! download and decode overlap.
//!
//! Why a blocking thread and flate2 rather than async-compression: decoding
//! is CPU work that must not stall the runtime's workers, the same code then
//! serves local files, tests and benchmarks, and flate2's `MultiGzDecoder`
//! (with zlib-rs) checks the gzip trailer, so an early end is an error.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use super::decode::{DayStats, TickerRun, decode_buffered};
use super::error::{DecodeError, FlatFileError};
use super::keys::DayFile;
use super::s3::{ErrorContext, FlatFiles};

/// Downloaded chunks waiting for the decoder (object_store yields chunks of
/// up to a few hundred KB, so a few MB at most).
pub const CHUNK_QUEUE: usize = 8;
/// Decoded runs waiting for the caller.
pub const RUN_QUEUE: usize = 32;

/// What the download sends the decoder.
enum Chunk {
    /// The object's ETag, first.
    Start {
        etag: Option<String>,
    },
    Data(Bytes),
    /// The whole object arrived.
    End,
    Failed(FlatFileError),
}

/// What the decoder sends the caller.
enum Decoded {
    Run(TickerRun),
    Done(Result<DayStats, FlatFileError>),
}

/// The runs of one day file, read while it downloads. Dropping it stops the
/// download and the decoder.
pub struct DayReader {
    key: String,
    runs: mpsc::Receiver<Decoded>,
    download: AbortHandle,
    outcome: Option<Result<DayStats, ()>>,
}

/// The bytes of one object as they download, read on a blocking thread
/// (`Read`/`BufRead` block until the next chunk arrives). An object that
/// ends early (fewer bytes than announced) or whose download fails is a read
/// error naming the key. Dropping it stops the download. For readers other
/// than the aggregates decoder: the trades path streams `trades_v1` through it.
pub struct ObjectBytes {
    reader: ChannelReader,
    download: AbortHandle,
}

impl FlatFiles {
    /// Starts downloading `file`; read its bytes on a blocking thread (they
    /// are still gzip-compressed). At most [`CHUNK_QUEUE`] chunks wait. Must
    /// be called within a Tokio runtime.
    pub fn stream_object(&self, file: &DayFile) -> ObjectBytes {
        let (chunk_tx, chunk_rx) = mpsc::channel(CHUNK_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let download: JoinHandle<()> = tokio::spawn(download(
            Arc::clone(&self.store),
            Arc::clone(&self.context),
            file.key.clone(),
            chunk_tx,
            Arc::clone(&queued),
        ));
        ObjectBytes {
            reader: ChannelReader {
                key: file.key.clone(),
                chunks: chunk_rx,
                current: Bytes::new(),
                queued,
                peak_queued: 0,
                etag: None,
                ended: false,
            },
            download: download.abort_handle(),
        }
    }

    /// Starts downloading and decoding `file`; read its runs with
    /// [`DayReader::next_run`]. `want` runs on the decoding thread, once per
    /// run. Must be called within a Tokio runtime.
    pub async fn open_day(
        &self,
        file: &DayFile,
        want: impl FnMut(&str) -> bool + Send + 'static,
    ) -> DayReader {
        let (run_tx, run_rx) = mpsc::channel(RUN_QUEUE);
        let bytes = self.stream_object(file);
        let download = bytes.download.clone();
        let key = file.key.clone();
        let file = file.clone();
        // The decoder ends by itself when the download or the reader goes away.
        drop(tokio::task::spawn_blocking(move || {
            decode_chunks(&file, bytes, want, &run_tx);
        }));
        DayReader {
            key,
            runs: run_rx,
            download,
            outcome: None,
        }
    }

    /// Downloads and decodes `file`, handing each run of a wanted ticker to
    /// `sink` on the calling task. Returns `Ok` only once the whole object
    /// arrived and its gzip trailer checked out; on `Err`, discard what the
    /// sink received. `want` runs on the decoding thread, once per run.
    pub async fn read_day<E>(
        &self,
        file: &DayFile,
        want: impl FnMut(&str) -> bool + Send + 'static,
        mut sink: impl FnMut(TickerRun) -> Result<(), E>,
    ) -> Result<DayStats, DecodeError<E>> {
        let mut reader = self.open_day(file, want).await;
        while let Some(run) = reader.next_run().await? {
            sink(run).map_err(DecodeError::Sink)?;
        }
        // `next_run` returned `None`, so the stats are there.
        Ok(reader.stats().cloned().unwrap_or_default())
    }
}

impl DayReader {
    /// The next run, or `None` once the file was read whole and verified.
    /// After an error, discard every run this reader gave; later calls fail too.
    pub async fn next_run(&mut self) -> Result<Option<TickerRun>, FlatFileError> {
        match self.outcome {
            Some(Ok(_)) => return Ok(None),
            Some(Err(())) => {
                return Err(FlatFileError::Io {
                    key: self.key.clone(),
                    detail: "an earlier error ended this file; discard the runs it gave".to_owned(),
                    transient: false,
                });
            }
            None => {}
        }
        match self.runs.recv().await {
            Some(Decoded::Run(run)) => Ok(Some(run)),
            Some(Decoded::Done(Ok(stats))) => {
                self.outcome = Some(Ok(stats));
                Ok(None)
            }
            Some(Decoded::Done(Err(err))) => {
                self.outcome = Some(Err(()));
                Err(err)
            }
            None => {
                self.outcome = Some(Err(()));
                Err(FlatFileError::Io {
                    key: self.key.clone(),
                    detail: "the decoding thread stopped early".to_owned(),
                    transient: true,
                })
            }
        }
    }

    /// What the decode saw, once [`Self::next_run`] returned `None`.
    pub fn stats(&self) -> Option<&DayStats> {
        match &self.outcome {
            Some(Ok(stats)) => Some(stats),
            _ => None,
        }
    }
}

impl std::fmt::Debug for DayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayReader")
            .field("key", &self.key)
            .field("finished", &self.outcome.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for DayReader {
    fn drop(&mut self) {
        self.download.abort();
    }
}

/// Streams the object into `chunks`, then says how it ended.
async fn download(
    store: Arc<dyn ObjectStore>,
    context: Arc<ErrorContext>,
    key: String,
    chunks: mpsc::Sender<Chunk>,
    queued: Arc<AtomicUsize>,
) {
    let end = match store
        .get_opts(&Path::from(key.as_str()), GetOptions::default())
        .await
    {
        Err(err) => Chunk::Failed(context.map(&key, err)),
        Ok(found) => {
            let size = found.meta.size;
            let etag = found.meta.e_tag.clone();
            if chunks.send(Chunk::Start { etag }).await.is_err() {
                return;
            }
            let mut body = found.into_stream();
            let mut received: u64 = 0;
            let mut failure = None;
            while let Some(item) = body.next().await {
                match item {
                    Ok(bytes) => {
                        received += bytes.len() as u64;
                        queued.fetch_add(bytes.len(), Ordering::Relaxed);
                        if chunks.send(Chunk::Data(bytes)).await.is_err() {
                            return; // The decoder stopped: nobody listens.
                        }
                    }
                    Err(err) => {
                        failure = Some(context.map(&key, err));
                        break;
                    }
                }
            }
            match failure {
                Some(err) => Chunk::Failed(err),
                None if received < size => Chunk::Failed(FlatFileError::Truncated { key }),
                None => Chunk::End,
            }
        }
    };
    // An error here means the decoder is gone; nothing is left to tell.
    let _ = chunks.send(end).await;
}

/// The decoding thread: runs the synchronous core over the chunks and sends
/// each run, then the outcome.
fn decode_chunks(
    file: &DayFile,
    mut bytes: ObjectBytes,
    want: impl FnMut(&str) -> bool,
    runs: &mpsc::Sender<Decoded>,
) {
    let reader = &mut bytes.reader;
    let result = decode_buffered(&mut *reader, file, want, |run| {
        runs.blocking_send(Decoded::Run(run))
            .map_err(|_| ReaderGone)
    });
    let outcome = match result {
        Ok(mut stats) => {
            stats.etag = reader.etag.take();
            stats.peak_queued_bytes = reader.peak_queued;
            Ok(stats)
        }
        Err(DecodeError::File(err)) => Err(err),
        Err(DecodeError::Sink(ReaderGone)) => return,
    };
    // An error here means the reader was dropped; nobody waits for the outcome.
    let _ = runs.blocking_send(Decoded::Done(outcome));
}

/// The caller dropped its [`DayReader`].
struct ReaderGone;

impl ObjectBytes {
    /// The object's ETag (the GET's), once the first bytes arrived.
    pub fn etag(&self) -> Option<&str> {
        self.reader.etag.as_deref()
    }

    /// The most downloaded bytes that waited for the reader at once.
    pub fn peak_queued_bytes(&self) -> usize {
        self.reader.peak_queued
    }
}

impl Read for ObjectBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BufRead for ObjectBytes {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

impl std::fmt::Debug for ObjectBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBytes")
            .field("key", &self.reader.key)
            .finish_non_exhaustive()
    }
}

impl Drop for ObjectBytes {
    fn drop(&mut self) {
        self.download.abort();
    }
}

/// Blocking reads over the downloaded chunks, without copying them.
struct ChannelReader {
    key: String,
    chunks: mpsc::Receiver<Chunk>,
    current: Bytes,
    queued: Arc<AtomicUsize>,
    peak_queued: usize,
    etag: Option<String>,
    ended: bool,
}

impl ChannelReader {
    /// Waits for the next chunk; `Ok(false)` once the object ended.
    fn next_chunk(&mut self) -> io::Result<bool> {
        loop {
            if self.ended {
                return Ok(false);
            }
            self.peak_queued = self.peak_queued.max(self.queued.load(Ordering::Relaxed));
            match self.chunks.blocking_recv() {
                Some(Chunk::Start { etag }) => self.etag = etag,
                Some(Chunk::Data(bytes)) => {
                    self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                    if !bytes.is_empty() {
                        self.current = bytes;
                        return Ok(true);
                    }
                }
                Some(Chunk::End) => self.ended = true,
                Some(Chunk::Failed(err)) => return Err(io::Error::other(err)),
                None => {
                    return Err(io::Error::other(FlatFileError::Io {
                        key: self.key.clone(),
                        detail: "the download stopped before the end of the object".to_owned(),
                        transient: true,
                    }));
                }
            }
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.current.is_empty() && !self.next_chunk()? {
            return Ok(&[]);
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.current.len());
        self.current.advance(amount);
    }
}
