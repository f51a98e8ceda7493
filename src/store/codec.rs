//! The bar file format: the Arrow schema, file metadata keys, encoding
//! `&[Bar]` as one Parquet file in memory (or a series streamed into one
//! file a slice at a time, for exports), decoding a file back into bars,
//! and reading a file's footer (metadata and statistics) without its pages.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;

use bytes::Bytes;

use super::StoreError;
use super::blobs::{Blobs, FOOTER_HINT};
use crate::model::{Bar, Basis, Ticker, Timeframe};
use crate::ranges::DateRange;

/// Metadata key: version of this file layout.
pub const KEY_SCHEMA: &str = "finpipe.schema";
/// Metadata key: the real ticker.
pub const KEY_TICKER: &str = "finpipe.ticker";
/// Metadata key: the timeframe, as `Timeframe` displays it.
pub const KEY_TIMEFRAME: &str = "finpipe.timeframe";
/// Metadata key: `true` for split-adjusted prices, `false` otherwise.
pub const KEY_ADJUSTED: &str = "finpipe.adjusted";
/// Metadata key: sorted `+`-joined sources that wrote the file.
pub const KEY_SOURCE: &str = "finpipe.source";
/// Metadata key: the finpipe version that wrote the file.
pub const KEY_VERSION: &str = "finpipe.version";
/// Metadata key: the days this file's series was known to be fetched to
/// completion when the file was written, as `,`-joined inclusive ranges
/// (`2024-01-01..2024-02-14`). Empty answers included, which first and last
/// timestamps cannot say: a lost job table is rebuilt from it.
pub const KEY_COVERED: &str = "finpipe.covered";
/// The layout version this code writes and reads.
pub const SCHEMA_VERSION: &str = "1";

/// Column positions in [`bar_schema`].
const TIMESTAMP_COLUMN: usize = 1;

/// The one schema of every bar file (DESIGN.md "The bar schema").
pub fn bar_schema() -> SchemaRef {
    let price = |name: &str| Field::new(name, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        Field::new(
            "ticker",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        price("open"),
        price("high"),
        price("low"),
        price("close"),
        Field::new("volume", DataType::Float64, true),
        Field::new("vwap", DataType::Float64, true),
        Field::new("transactions", DataType::Int64, true),
    ]))
}

/// Files with fewer rows than this are written without compression: the
/// parquet crate sets up a zstd compressor and decompressor for every column
/// of every file, which for a few hundred rows costs more CPU than the
/// compression saves bytes (it was a third of a flat-file day's profile,
/// 11 000 small files). Readers see no difference.
pub(super) const SMALL_FILE_ROWS: usize = 2048;

/// Writer settings shared by every file (zstd level 1 unless `small`);
/// per-file metadata is appended.
pub(super) fn writer_properties(small: bool) -> WriterProperties {
    let compression = if small {
        Compression::UNCOMPRESSED
    } else {
        Compression::ZSTD(ZstdLevel::default()) // level 1
    };
    // Volumes are mostly whole numbers, whose doubles end in zero bytes:
    // split into byte streams, zstd packs them faster and smaller than the
    // plain doubles (1M 1m bars: 14.33 MB instead of 14.53, 7 % less encoding
    // time). Uncompressed, splitting would only cost a pass. Vwaps' low bytes
    // are noise; split, they grow.
    let volume = if small {
        Encoding::PLAIN
    } else {
        Encoding::BYTE_STREAM_SPLIT
    };
    WriterProperties::builder()
        .set_compression(compression)
        // Statistics where they serve: the timestamp's give the watermark and
        // let readers skip files by time; the ticker's (min = max, one ticker
        // a file) let `WHERE ticker = 'AAPL'` over a glob of every ticker skip
        // the other files from their footers alone. A file is one
        // ticker-month, so price statistics would skip nothing and cost a
        // pass over each column.
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled("timestamp".into(), EnabledStatistics::Chunk)
        .set_column_statistics_enabled("ticker".into(), EnabledStatistics::Chunk)
        .set_max_row_group_row_count(None) // one row group per file
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: TIMESTAMP_COLUMN as i32,
            descending: false,
            nulls_first: false,
        }]))
        // Timestamps are unique and mostly evenly spaced: delta encoding
        // shrinks them to a fraction of a byte a row; a dictionary only costs.
        .set_column_dictionary_enabled("timestamp".into(), false)
        .set_column_encoding("timestamp".into(), Encoding::DELTA_BINARY_PACKED)
        // Volume and vwap rarely repeat within a file: a dictionary only costs
        // (interning was the largest single item of a write's profile).
        .set_column_dictionary_enabled("volume".into(), false)
        .set_column_dictionary_enabled("vwap".into(), false)
        .set_column_encoding("volume".into(), volume)
        // Trade counts are small integers that wander: delta encoding packs
        // them in a byte or two without a dictionary's hashing, so densely
        // that zstd finds nothing more (1M 1m bars: 14.52 MB with it, 14.53
        // without) and only costs a codec set-up and a pass.
        .set_column_dictionary_enabled("transactions".into(), false)
        .set_column_encoding("transactions".into(), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression("transactions".into(), Compression::UNCOMPRESSED)
        // A one-value dictionary and a run of zeros: compressing it costs a
        // codec set-up on every write and read and saves nothing.
        .set_column_compression("ticker".into(), Compression::UNCOMPRESSED)
        .build()
}

/// What one file's metadata says about it.
pub(super) struct FileMeta<'a> {
    pub ticker: &'a Ticker,
    pub timeframe: Timeframe,
    pub basis: Basis,
    pub sources: &'a BTreeSet<String>,
    pub version: &'a str,
    /// Days known covered (see [`KEY_COVERED`]); none: the key is left out.
    pub covered: &'a [DateRange],
}

/// Encodes `bars` (sorted, unique timestamps) as a whole Parquet file.
pub(super) fn encode(
    schema: &SchemaRef,
    props: &WriterProperties,
    meta: &FileMeta<'_>,
    bars: &[Bar],
) -> Result<Vec<u8>, ParquetError> {
    let batch = record_batch(schema, meta.ticker, bars)?;
    let mut writer = ArrowWriter::try_new(
        Vec::with_capacity(bars.len() * 8 + 4096),
        schema.clone(),
        Some(props.clone()),
    )?;
    append_metadata(&mut writer, meta);
    writer.write(&batch)?;
    writer.into_inner()
}

/// Records `meta` in the key/value metadata of the file `writer` writes.
fn append_metadata<W: Write + Send>(writer: &mut ArrowWriter<W>, meta: &FileMeta<'_>) {
    let source = meta
        .sources
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("+");
    for (key, value) in [
        (KEY_SCHEMA, SCHEMA_VERSION.to_owned()),
        (KEY_TICKER, meta.ticker.to_string()),
        (KEY_TIMEFRAME, meta.timeframe.to_string()),
        (KEY_ADJUSTED, meta.basis.is_adjusted().to_string()),
        (KEY_SOURCE, source),
        (KEY_VERSION, meta.version.to_owned()),
    ] {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    if !meta.covered.is_empty() {
        writer.append_key_value_metadata(KeyValue::new(
            KEY_COVERED.to_owned(),
            format_covered(meta.covered),
        ));
    }
}

/// A Parquet file of [`bar_schema`] written a slice of bars at a time, each
/// slice one row group, so that a series of any length goes through memory
/// one slice at a time (`finpipe export`). Its metadata names the ticker,
/// timeframe, basis and finpipe version as a library file's does.
pub struct BarFileWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    ticker: Ticker,
}

impl<W: Write + Send> BarFileWriter<W> {
    /// Starts a file of `ticker`'s `timeframe` bars of `basis` in `out`.
    pub fn new(
        out: W,
        ticker: &Ticker,
        timeframe: Timeframe,
        basis: Basis,
        version: &str,
    ) -> Result<Self, ParquetError> {
        let schema = bar_schema();
        let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(writer_properties(false)))?;
        let meta = FileMeta {
            ticker,
            timeframe,
            basis,
            sources: &BTreeSet::new(),
            version,
            covered: &[],
        };
        append_metadata(&mut writer, &meta);
        Ok(Self {
            writer,
            schema,
            ticker: ticker.clone(),
        })
    }

    /// Writes `bars` (sorted, unique timestamps, after those written
    /// before) as one row group; nothing for an empty slice.
    pub fn write(&mut self, bars: &[Bar]) -> Result<(), ParquetError> {
        if bars.is_empty() {
            return Ok(());
        }
        let batch = record_batch(&self.schema, &self.ticker, bars)?;
        self.writer.write(&batch)?;
        self.writer.flush()
    }

    /// Writes the footer and hands back the output.
    pub fn finish(self) -> Result<W, ParquetError> {
        self.writer.into_inner()
    }
}

/// The bars as one record batch of [`bar_schema`], built column by column.
/// (`PrimitiveArray::new` panics only when values and validity differ in
/// length; both come from the same `bars` here.)
fn record_batch(
    schema: &SchemaRef,
    ticker: &Ticker,
    bars: &[Bar],
) -> Result<RecordBatch, ParquetError> {
    let n = bars.len();
    let keys = Int32Array::new(ScalarBuffer::from(vec![0i32; n]), None);
    let values: ArrayRef = Arc::new(StringArray::from(vec![ticker.as_str()]));
    let tickers = DictionaryArray::<Int32Type>::try_new(keys, values)?;
    let timestamps =
        TimestampMillisecondArray::new(bars.iter().map(|b| b.timestamp).collect(), None)
            .with_timezone("UTC");
    let price = |f: fn(&Bar) -> f64| -> ArrayRef {
        Arc::new(Float64Array::new(bars.iter().map(f).collect(), None))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(tickers),
        Arc::new(timestamps),
        price(|b| b.open),
        price(|b| b.high),
        price(|b| b.low),
        price(|b| b.close),
        Arc::new(Float64Array::new(
            bars.iter().map(|b| b.volume.unwrap_or(0.0)).collect(),
            nulls(bars, |b| b.volume.is_some()),
        )),
        Arc::new(Float64Array::new(
            bars.iter().map(|b| b.vwap.unwrap_or(0.0)).collect(),
            nulls(bars, |b| b.vwap.is_some()),
        )),
        Arc::new(Int64Array::new(
            bars.iter().map(|b| b.transactions.unwrap_or(0)).collect(),
            nulls(bars, |b| b.transactions.is_some()),
        )),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The validity of an optional column, `None` when every value is present.
fn nulls(bars: &[Bar], present: fn(&Bar) -> bool) -> Option<NullBuffer> {
    if bars.iter().all(present) {
        None
    } else {
        Some(bars.iter().map(present).collect())
    }
}

/// What a file's footer says: its metadata keys and row statistics.
#[derive(Clone, Debug)]
pub(super) struct Footer {
    pub ticker: String,
    pub timeframe: String,
    pub basis: Basis,
    pub source: String,
    pub rows: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// `finpipe.covered`, sorted and merged; empty when the file has none
    /// (written before finpipe recorded it).
    pub covered: Vec<DateRange>,
}

impl Footer {
    /// The sources named in `finpipe.source`.
    pub(super) fn sources(&self) -> BTreeSet<String> {
        self.source
            .split('+')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Reads only the footer of the file at `path`, from its end (one read, or
/// one ranged GET; a second when the footer is longer than
/// [`FOOTER_HINT`]); `None` when there is no file.
pub(super) fn read_footer(blobs: &dyn Blobs, path: &Path) -> Result<Option<Footer>, StoreError> {
    let mut want = FOOTER_HINT;
    // The second read asks for exactly what the first said it lacks; a third
    // only if the file was replaced in between.
    for _ in 0..3 {
        let Some(tail) = blobs.read_tail(path, want)? else {
            return Ok(None);
        };
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail.bytes, tail.size) {
            Ok(()) => {
                let md = reader.finish().map_err(|e| StoreError::corrupt(path, e))?;
                return footer_of(&md, path).map(Some);
            }
            Err(ParquetError::NeedMoreData(needed)) if needed as u64 > want => {
                want = needed as u64;
            }
            Err(e) => return Err(StoreError::corrupt(path, e)),
        }
    }
    Err(StoreError::corrupt(
        path,
        "its footer kept changing while read",
    ))
}

/// Decodes a whole file read from `path`: its footer, then, when `accept`
/// agrees with the footer, its bars.
pub(super) fn decode_file(
    bytes: Bytes,
    path: &Path,
    accept: impl FnOnce(&Footer) -> Result<(), StoreError>,
) -> Result<(Footer, Vec<Bar>), StoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| StoreError::corrupt(path, e))?;
    let footer = footer_of(builder.metadata(), path)?;
    accept(&footer)?;
    let names = [
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "transactions",
    ];
    let mask = ProjectionMask::columns(builder.parquet_schema(), names);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(footer.rows.clamp(1, 65_536))
        .build()
        .map_err(|e| StoreError::corrupt(path, e))?;
    let mut bars = Vec::with_capacity(footer.rows);
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::corrupt(path, e))?;
        push_bars(&batch, &mut bars).map_err(|detail| StoreError::corrupt(path, detail))?;
    }
    Ok((footer, bars))
}

/// Appends the rows of `batch` to `bars`; the error says which column is wrong.
fn push_bars(batch: &RecordBatch, bars: &mut Vec<Bar>) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name:?}"))
    };
    let required = |name: &str| -> Result<&Float64Array, String> {
        let array = column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name:?} is not Float64"))?;
        if array.null_count() > 0 {
            return Err(format!("column {name:?} has nulls"));
        }
        Ok(array)
    };
    let optional_f64 = |name: &str| -> Result<&Float64Array, String> {
        column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name:?} is not Float64"))
    };
    let timestamps = column("timestamp")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or("column \"timestamp\" is not Timestamp(ms)")?;
    if timestamps.null_count() > 0 {
        return Err("column \"timestamp\" has nulls".to_owned());
    }
    let (open, high, low, close) = (
        required("open")?,
        required("high")?,
        required("low")?,
        required("close")?,
    );
    let (volume, vwap) = (optional_f64("volume")?, optional_f64("vwap")?);
    let transactions = column("transactions")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("column \"transactions\" is not Int64")?;
    let opt_f64 = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    bars.extend((0..batch.num_rows()).map(|i| Bar {
        timestamp: timestamps.value(i),
        open: open.value(i),
        high: high.value(i),
        low: low.value(i),
        close: close.value(i),
        volume: opt_f64(volume, i),
        vwap: opt_f64(vwap, i),
        transactions: transactions.is_valid(i).then(|| transactions.value(i)),
    }));
    Ok(())
}

/// The footer's metadata keys and the timestamp column's statistics.
fn footer_of(md: &ParquetMetaData, path: &Path) -> Result<Footer, StoreError> {
    let kv = md.file_metadata().key_value_metadata();
    let get = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.as_deref())
    };
    let require = |key: &str| {
        get(key).ok_or_else(|| {
            StoreError::corrupt(path, format!("no {key} metadata: not written by finpipe"))
        })
    };
    let schema = require(KEY_SCHEMA)?;
    if schema != SCHEMA_VERSION {
        return Err(StoreError::corrupt(
            path,
            format!(
                "layout version {schema}, but this finpipe reads version {SCHEMA_VERSION}; \
                 a newer finpipe wrote it"
            ),
        ));
    }
    let basis = match require(KEY_ADJUSTED)? {
        "true" => Basis::Adjusted,
        "false" => Basis::Unadjusted,
        other => {
            return Err(StoreError::corrupt(
                path,
                format!("{KEY_ADJUSTED} is {other:?}, not true or false"),
            ));
        }
    };
    let rows = usize::try_from(md.file_metadata().num_rows())
        .map_err(|_| StoreError::corrupt(path, "negative row count"))?;
    let (first, last) = timestamp_range(md);
    Ok(Footer {
        ticker: require(KEY_TICKER)?.to_owned(),
        timeframe: require(KEY_TIMEFRAME)?.to_owned(),
        basis,
        source: get(KEY_SOURCE).unwrap_or_default().to_owned(),
        rows,
        first,
        last,
        covered: get(KEY_COVERED).map(parse_covered).unwrap_or_default(),
    })
}

/// `ranges` as the value of [`KEY_COVERED`].
fn format_covered(ranges: &[DateRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The ranges of a [`KEY_COVERED`] value, merged. A part that does not
/// parse is left out: the worst it costs is a request for those days.
pub(super) fn parse_covered(value: &str) -> Vec<DateRange> {
    crate::ranges::union(value.split(',').filter_map(|part| {
        let (start, end) = part.trim().split_once("..")?;
        DateRange::new(start.parse().ok()?, end.parse().ok()?)
    }))
}

/// Min and max of the `timestamp` column over all row groups, from chunk statistics.
fn timestamp_range(md: &ParquetMetaData) -> (Option<i64>, Option<i64>) {
    let schema = md.file_metadata().schema_descr();
    let Some(idx) = schema
        .columns()
        .iter()
        .position(|c| c.name() == "timestamp")
    else {
        return (None, None);
    };
    let mut first: Option<i64> = None;
    let mut last: Option<i64> = None;
    for rg in md.row_groups() {
        if let Some(Statistics::Int64(s)) = rg.column(idx).statistics() {
            if let Some(&min) = s.min_opt() {
                first = Some(first.map_or(min, |f| f.min(min)));
            }
            if let Some(&max) = s.max_opt() {
                last = Some(last.map_or(max, |l| l.max(max)));
            }
        }
    }
    (first, last)
}
