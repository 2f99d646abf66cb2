//! Parquet input for the scenarios: `convert` writes a workload's CSV as Parquet
//! (the same rows; `ts_ms` as int64, `duration_s` as uint32, every other column
//! utf8 as in the input contract, where phone numbers and cells are strings;
//! snappy, 128 Ki-row row groups), and the scenarios decode it batch by batch
//! with typed column access.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, UInt32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::csv::{Fields, bad_line, for_each_line, parse_u64};
use crate::error::BenchError;

/// Rows per Arrow batch, written and read.
pub const BATCH_ROWS: usize = 128 * 1024;

/// A column being built by `convert`.
enum ColumnBuilder {
    Int64(Int64Builder),
    UInt32(UInt32Builder),
    Utf8(StringBuilder),
}

fn data_type(column: &str) -> DataType {
    match column {
        "ts_ms" => DataType::Int64,
        "duration_s" => DataType::UInt32,
        _ => DataType::Utf8,
    }
}

/// Writes the CSV at `input` (header line, then rows) to Parquet at `output`.
/// Returns the number of rows.
pub fn convert(input: &Path, output: &Path) -> Result<u64, BenchError> {
    let mut header = String::new();
    let file = std::fs::File::open(input).map_err(|e| BenchError::io(input, e))?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut header)
        .map_err(|e| BenchError::io(input, e))?;
    let header = header.trim_end().to_owned();
    let names: Vec<&str> = header.split(',').collect();
    let schema = Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, data_type(n), false)).collect::<Vec<_>>()));
    let new_builders = || -> Vec<ColumnBuilder> {
        names
            .iter()
            .map(|n| match data_type(n) {
                DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(BATCH_ROWS)),
                DataType::UInt32 => ColumnBuilder::UInt32(UInt32Builder::with_capacity(BATCH_ROWS)),
                _ => ColumnBuilder::Utf8(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 12)),
            })
            .collect()
    };
    let file = std::fs::File::create(output).map_err(|e| BenchError::io(output, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(|e| BenchError::parquet(output, e))?;
    let mut builders = new_builders();
    let mut rows = 0u64;
    let mut in_batch = 0usize;
    let flush = |builders: &mut Vec<ColumnBuilder>, writer: &mut ArrowWriter<std::fs::File>| {
        let columns: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| match b {
                ColumnBuilder::Int64(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::UInt32(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::Utf8(b) => Arc::new(b.finish()) as ArrayRef,
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| BenchError::parquet(output, e))?;
        writer.write(&batch).map_err(|e| BenchError::parquet(output, e))
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
        in_batch += 1;
        if in_batch == BATCH_ROWS {
            flush(&mut builders, &mut writer)?;
            in_batch = 0;
        }
        Ok(())
    })?;
    if in_batch > 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.close().map_err(|e| BenchError::parquet(output, e))?;
    Ok(rows)
}

/// Calls `batch` for each record batch of the Parquet file at `path`.
pub fn for_each_batch(
    path: &Path,
    mut batch: impl FnMut(&RecordBatch) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| BenchError::parquet(path, e))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| BenchError::parquet(path, e))?;
    for b in reader {
        batch(&b.map_err(|e| BenchError::parquet(path, e))?)?;
    }
    Ok(())
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
