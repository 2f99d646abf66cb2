//! Parquet input for the scenarios: `convert` writes a workload's CSV as Parquet
//! (the same rows and values), and the scenarios read it row group by row group,
//! each worker its own ([`ParquetPieces`]), with typed column access.
//!
//! The layout `convert` chooses, for decoding speed (measured in
//! `bench/RESULTS.md`):
//! - `ts_ms` int64, `duration_s` uint32.
//! - **Digit columns as integers**: a text column in which every value is a plain
//!   digit string (1 to 19 digits, no sign, no leading zero unless the value is
//!   `0`) is written as uint64. Such a value prints back as exactly the string it
//!   was read from, so nothing is lost; the phone numbers of both workloads are
//!   such columns. A column with any other value (`c057`, `007`, empty) stays utf8.
//!   Readers take either form ([`digits`]).
//! - Utf8 columns dictionary-encoded (few distinct values: cells, kinds); numbers
//!   plain (dictionary pages for near-unique values cost a lookup per row).
//! - No compression by default: the files are read from the page cache, and
//!   decompression was the reader's largest cost.
//! - Row groups of [`ROW_GROUP_ROWS`] rows, the unit the workers split the
//!   decoding by and the unit of a watermark advance.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::csv::{Fields, bad_line, for_each_line, parse_u64};
use crate::error::BenchError;

/// Rows per row group written by `convert`.
pub const ROW_GROUP_ROWS: usize = 32 * 1024;

/// How `convert` lays the file out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Page compression.
    pub compression: Compression,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { row_group_rows: ROW_GROUP_ROWS, compression: Compression::UNCOMPRESSED }
    }
}

/// A column being built by `convert`.
enum ColumnBuilder {
    Int64(Int64Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Utf8(StringBuilder),
}

/// Whether `field` is a plain digit string that prints back the same as a `u64`.
fn is_plain_digits(field: &[u8]) -> bool {
    (1..=19).contains(&field.len()) && field.iter().all(u8::is_ascii_digit) && (field[0] != b'0' || field.len() == 1)
}

/// Writes the CSV at `input` (header line, then rows) to Parquet at `output`
/// laid out as `layout` says (see the module doc). Returns the number of rows.
pub fn convert(input: &Path, output: &Path, layout: Layout) -> Result<u64, BenchError> {
    let mut header = String::new();
    let file = std::fs::File::open(input).map_err(|e| BenchError::io(input, e))?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut header)
        .map_err(|e| BenchError::io(input, e))?;
    let header = header.trim_end().to_owned();
    let names: Vec<&str> = header.split(',').collect();
    // First pass: which text columns hold only plain digit strings.
    let mut digits_only = vec![true; names.len()];
    for_each_line(input, &header, |_, line| {
        let mut fields = Fields::new(line);
        for only in &mut digits_only {
            *only &= fields.next_bytes().is_some_and(is_plain_digits);
        }
        Ok(())
    })?;
    let types: Vec<DataType> = names
        .iter()
        .zip(&digits_only)
        .map(|(name, digits)| match *name {
            "ts_ms" => DataType::Int64,
            "duration_s" => DataType::UInt32,
            _ if *digits => DataType::UInt64,
            _ => DataType::Utf8,
        })
        .collect();
    let schema = Arc::new(Schema::new(
        names.iter().zip(&types).map(|(n, t)| Field::new(*n, t.clone(), false)).collect::<Vec<_>>(),
    ));
    let rows_per_group = layout.row_group_rows.max(1);
    let new_builders = || -> Vec<ColumnBuilder> {
        types
            .iter()
            .map(|t| match t {
                DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows_per_group)),
                DataType::UInt32 => ColumnBuilder::UInt32(UInt32Builder::with_capacity(rows_per_group)),
                DataType::UInt64 => ColumnBuilder::UInt64(UInt64Builder::with_capacity(rows_per_group)),
                _ => ColumnBuilder::Utf8(StringBuilder::with_capacity(rows_per_group, rows_per_group * 12)),
            })
            .collect()
    };
    let file = std::fs::File::create(output).map_err(|e| BenchError::io(output, e))?;
    let mut props = WriterProperties::builder()
        .set_compression(layout.compression)
        .set_max_row_group_row_count(Some(rows_per_group))
        .set_dictionary_enabled(false);
    for (name, t) in names.iter().zip(&types) {
        if *t == DataType::Utf8 {
            props = props.set_column_dictionary_enabled(ColumnPath::from(*name), true);
        }
    }
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props.build()))
        .map_err(|e| BenchError::parquet(output, e))?;
    let mut builders = new_builders();
    let mut rows = 0u64;
    let mut in_group = 0usize;
    let flush = |builders: &mut Vec<ColumnBuilder>, writer: &mut ArrowWriter<std::fs::File>| {
        let columns: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| match b {
                ColumnBuilder::Int64(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::UInt32(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::UInt64(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::Utf8(b) => Arc::new(b.finish()) as ArrayRef,
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| BenchError::parquet(output, e))?;
        writer.write(&batch).map_err(|e| BenchError::parquet(output, e))?;
        writer.flush().map_err(|e| BenchError::parquet(output, e))
    };
    for_each_line(input, &header, |line_no, line| {
        let mut fields = Fields::new(line);
        for (builder, name) in builders.iter_mut().zip(&names) {
            let field = fields.next_bytes().ok_or_else(|| bad_line(input, line_no, line, &header))?;
            match builder {
                ColumnBuilder::Int64(b) => {
                    let v = parse_u64(field)
                        .and_then(|v| i64::try_from(v).ok())
                        .ok_or_else(|| bad_line(input, line_no, line, &format!("{name} as a non-negative integer")))?;
                    b.append_value(v);
                }
                ColumnBuilder::UInt32(b) => {
                    let v = parse_u64(field).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| {
                        bad_line(input, line_no, line, &format!("{name} as a 32-bit unsigned integer"))
                    })?;
                    b.append_value(v);
                }
                ColumnBuilder::UInt64(b) => {
                    // Checked in the first pass: plain digits, at most 19.
                    let v = parse_u64(field).ok_or_else(|| bad_line(input, line_no, line, "the file unchanged"))?;
                    b.append_value(v);
                }
                ColumnBuilder::Utf8(b) => {
                    let s = std::str::from_utf8(field).map_err(|_| bad_line(input, line_no, line, "UTF-8 text"))?;
                    b.append_value(s);
                }
            }
        }
        if fields.next_bytes().is_some() {
            return Err(bad_line(input, line_no, line, &format!("{} fields", names.len())));
        }
        rows += 1;
        in_group += 1;
        if in_group == rows_per_group {
            flush(&mut builders, &mut writer)?;
            in_group = 0;
        }
        Ok(())
    })?;
    if in_group > 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.close().map_err(|e| BenchError::parquet(output, e))?;
    Ok(rows)
}

/// A Parquet file read row group by row group, any row group on any thread: the
/// scenarios' Parquet input (piece `k` is row group `k`).
#[derive(Debug, Clone)]
pub struct ParquetPieces {
    path: PathBuf,
    /// Footer, read once and shared by every row group's reader.
    metadata: ArrowReaderMetadata,
    /// Only the columns the scenario uses are decoded.
    projection: ProjectionMask,
}

impl ParquetPieces {
    /// Opens `path`, to read the columns `columns` (each must be present).
    pub fn open(path: &Path, columns: &[&str]) -> Result<Self, BenchError> {
        let file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
        let metadata =
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| BenchError::parquet(path, e))?;
        let mut roots = Vec::with_capacity(columns.len());
        for name in columns {
            let (index, _) = metadata.schema().column_with_name(name).ok_or_else(|| {
                BenchError::input(path, format!("column {name}"), "expected the column, it is missing")
            })?;
            roots.push(index);
        }
        let projection = ProjectionMask::roots(metadata.parquet_schema(), roots);
        Ok(ParquetPieces { path: path.to_owned(), metadata, projection })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of row groups.
    pub fn count(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Calls `batch` for each record batch of row group `piece`, in order.
    pub fn for_each_batch(
        &self,
        piece: usize,
        mut batch: impl FnMut(&RecordBatch) -> Result<(), BenchError>,
    ) -> Result<(), BenchError> {
        let path = &self.path;
        let rows = self.metadata.metadata().row_group(piece).num_rows();
        let file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_row_groups(vec![piece])
            .with_projection(self.projection.clone())
            .with_batch_size(usize::try_from(rows).unwrap_or(usize::MAX).max(1))
            .build()
            .map_err(|e| BenchError::parquet(path, e))?;
        for b in reader {
            batch(&b.map_err(|e| BenchError::parquet(path, e))?)?;
        }
        Ok(())
    }
}

/// Column `name` of `batch`, checked for presence, type and nulls.
fn column<'b>(path: &Path, batch: &'b RecordBatch, name: &str, want: &DataType) -> Result<&'b ArrayRef, BenchError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| BenchError::input(path, format!("column {name}"), "expected the column, it is missing"))?;
    if col.data_type() != want {
        return Err(BenchError::input(
            path,
            format!("column {name}"),
            format!("expected type {want}, found {}", col.data_type()),
        ));
    }
    if col.null_count() > 0 {
        return Err(BenchError::input(path, format!("column {name}"), "expected no nulls, found some"));
    }
    Ok(col)
}

/// An int64 column without nulls.
pub fn int64<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b Int64Array, BenchError> {
    Ok(column(path, batch, name, &DataType::Int64)?.as_primitive::<Int64Type>())
}

/// A uint32 column without nulls.
pub fn uint32<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b UInt32Array, BenchError> {
    Ok(column(path, batch, name, &DataType::UInt32)?.as_primitive::<UInt32Type>())
}

/// A utf8 column without nulls.
pub fn utf8<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b StringArray, BenchError> {
    Ok(column(path, batch, name, &DataType::Utf8)?.as_string::<i32>())
}

/// A non-negative event time from an int64 column.
#[inline]
pub fn event_ts(path: &Path, value: i64, name: &str) -> Result<u64, BenchError> {
    u64::try_from(value).map_err(|_| {
        BenchError::input(path, format!("column {name}"), format!("expected ms since the epoch, found {value}"))
    })
}

/// A column of phone-number-like values: uint64 as `convert` writes digit
/// columns, or utf8 digit strings (a file written another way).
#[derive(Debug, Clone, Copy)]
pub enum Digits<'b> {
    /// The numbers themselves.
    Int(&'b UInt64Array),
    /// Digit strings.
    Text(&'b StringArray),
}

impl Digits<'_> {
    /// Row `i` as a number; `None` for text that is not a plain digit string.
    #[inline]
    pub fn value(&self, i: usize) -> Option<u64> {
        match self {
            Digits::Int(a) => Some(a.value(i)),
            Digits::Text(a) => {
                let s = a.value(i).as_bytes();
                if is_plain_digits(s) { parse_u64(s) } else { None }
            }
        }
    }

    /// Row `i` as written, for error messages.
    pub fn text(&self, i: usize) -> String {
        match self {
            Digits::Int(a) => a.value(i).to_string(),
            Digits::Text(a) => a.value(i).to_owned(),
        }
    }
}

/// A digit column without nulls: uint64, or utf8 (see [`Digits`]).
pub fn digits<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<Digits<'b>, BenchError> {
    match batch.column_by_name(name).map(|c| c.data_type()) {
        Some(DataType::Utf8) => Ok(Digits::Text(utf8(path, batch, name)?)),
        _ => Ok(Digits::Int(column(path, batch, name, &DataType::UInt64)?.as_primitive::<UInt64Type>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_digits_are_exactly_the_strings_that_round_trip() {
        for s in ["0", "7", "10000032098", "9999999999999999999", "12345678901234567"] {
            assert!(is_plain_digits(s.as_bytes()), "{s}");
            assert_eq!(parse_u64(s.as_bytes()).unwrap().to_string(), s);
        }
        for s in ["", "007", "00", "+1", "-1", "1 ", "c057", "1e5", "10000000000000000000", "18446744073709551615"] {
            assert!(!is_plain_digits(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn convert_keeps_every_value_and_types_digit_columns() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("in.csv");
        // `a` is digits throughout; `b` has a leading zero in one row; `c` text.
        std::fs::write(&csv, "ts_ms,a,b,c\n5,10,1,x\n6,20,02,y\n7,0,3,z\n").unwrap();
        let pq = dir.path().join("out.parquet");
        assert_eq!(convert(&csv, &pq, Layout { row_group_rows: 2, ..Layout::default() }).unwrap(), 3);
        let pieces = ParquetPieces::open(&pq, &["ts_ms", "a", "b", "c"]).unwrap();
        assert_eq!(pieces.count(), 2);
        let mut rows = Vec::new();
        for k in 0..pieces.count() {
            pieces
                .for_each_batch(k, |batch| {
                    assert_eq!(batch.column_by_name("a").unwrap().data_type(), &DataType::UInt64);
                    assert_eq!(batch.column_by_name("b").unwrap().data_type(), &DataType::Utf8);
                    let (ts, a, b, c) = (
                        int64(&pq, batch, "ts_ms")?,
                        digits(&pq, batch, "a")?,
                        digits(&pq, batch, "b")?,
                        utf8(&pq, batch, "c")?,
                    );
                    for i in 0..batch.num_rows() {
                        rows.push(format!("{},{},{},{}", ts.value(i), a.text(i), b.text(i), c.value(i)));
                        assert_eq!(b.value(i), (b.text(i) != "02").then(|| b.text(i).parse().unwrap()));
                    }
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(rows, ["5,10,1,x", "6,20,02,y", "7,0,3,z"]);
        let err = ParquetPieces::open(&pq, &["ts_ms", "d"]).unwrap_err().to_string();
        assert!(err.contains("column d"), "{err}");
    }
}
