//! One output file: written into a temporary file beside its target (named
//! `<name>.tmp-<random>`, see `fsutil`) and renamed into place only when
//! complete; dropped before that, the temporary file is removed. Plain CSV,
//! gzip CSV (flate2) or Parquet (the store's bar schema, one row group per
//! period file read).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::csv::RowFormat;
use super::{ExportError, Format};
use crate::fsutil;
use crate::model::{Bar, Basis, Ticker, Timeframe};
use crate::store::BarFileWriter;

/// CSV text is handed to the file in pieces of about this many bytes.
const CHUNK: usize = 1 << 16;

/// An output file being written.
pub(super) struct Sink {
    body: Body,
    temp: Temp,
    /// CSV rows not yet handed to `body`.
    text: String,
}

enum Body {
    Csv(BufWriter<File>),
    CsvGz(GzEncoder<BufWriter<File>>),
    Parquet(BarFileWriter<BufWriter<File>>),
}

/// The temporary file; removed when dropped before [`Temp::rename`].
struct Temp {
    tmp: PathBuf,
    target: PathBuf,
    renamed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the export already failed or was interrupted.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Temp {
    fn rename(mut self) -> Result<(), ExportError> {
        fsutil::rename_into_place(&self.tmp, &self.target)
            .map_err(|e| ExportError::write(&self.target, e))?;
        self.renamed = true;
        Ok(())
    }
}

impl Sink {
    /// Starts `path`'s temporary file in `format` for the series (ticker,
    /// timeframe, basis); CSV with `rows`' header.
    pub(super) fn create(
        path: &Path,
        format: Format,
        series: (&Ticker, Timeframe, Basis),
        rows: &RowFormat,
    ) -> Result<Self, ExportError> {
        let (file, tmp) = fsutil::create_temp(path).map_err(|e| ExportError::write(path, e))?;
        let temp = Temp {
            tmp,
            target: path.to_path_buf(),
            renamed: false,
        };
        let out = BufWriter::with_capacity(CHUNK, file);
        let body = match format {
            Format::Csv => Body::Csv(out),
            Format::CsvGz => Body::CsvGz(GzEncoder::new(out, Compression::default())),
            Format::Parquet => Body::Parquet(
                BarFileWriter::new(out, series.0, series.1, series.2, env!("CARGO_PKG_VERSION"))
                    .map_err(|e| parquet_error(path, &e))?,
            ),
        };
        let mut text = String::with_capacity(CHUNK + 256);
        if !matches!(body, Body::Parquet(_)) {
            text.push_str(rows.header());
            text.push('\n');
        }
        Ok(Self { body, temp, text })
    }

    /// Writes `bars` (sorted, after those written before); returns how many
    /// rows were written and how many bars the layout left out.
    pub(super) fn write(
        &mut self,
        bars: &[Bar],
        rows: &mut RowFormat,
    ) -> Result<(u64, u64), ExportError> {
        let path = &self.temp.target;
        if let Body::Parquet(writer) = &mut self.body {
            writer.write(bars).map_err(|e| parquet_error(path, &e))?;
            return Ok((bars.len() as u64, 0));
        }
        let (mut kept, mut dropped) = (0, 0);
        for bar in bars {
            if rows.push(bar, &mut self.text) {
                kept += 1;
            } else {
                dropped += 1;
            }
            if self.text.len() >= CHUNK {
                self.flush_text()?;
            }
        }
        self.flush_text()?;
        Ok((kept, dropped))
    }

    /// Hands the CSV text to the file.
    fn flush_text(&mut self) -> Result<(), ExportError> {
        let bytes = self.text.as_bytes();
        let written = match &mut self.body {
            Body::Csv(out) => out.write_all(bytes),
            Body::CsvGz(out) => out.write_all(bytes),
            Body::Parquet(_) => Ok(()),
        };
        written.map_err(|e| ExportError::write(&self.temp.target, e))?;
        self.text.clear();
        Ok(())
    }

    /// Finishes the file, makes its content durable (or leaves that to the
    /// export's deferral) and renames it into place, replacing what was there.
    pub(super) fn commit(mut self) -> Result<(), ExportError> {
        self.flush_text()?;
        let Self { body, temp, .. } = self;
        let path = temp.target.clone();
        let out = match body {
            Body::Csv(out) => out,
            Body::CsvGz(out) => out.finish().map_err(|e| ExportError::write(&path, e))?,
            Body::Parquet(writer) => writer.finish().map_err(|e| parquet_error(&path, &e))?,
        };
        let file = out
            .into_inner()
            .map_err(|e| ExportError::write(&path, e.into_error()))?;
        fsutil::sync_content(&file, &path).map_err(|e| ExportError::write(&path, e))?;
        drop(file);
        temp.rename()
    }
}

fn parquet_error(path: &Path, error: &parquet::errors::ParquetError) -> ExportError {
    ExportError::Parquet {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}
