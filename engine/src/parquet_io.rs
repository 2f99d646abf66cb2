//! Parquet I/O for the contract tables: finding a table's files in a dataset
//! folder, checking them before a row is read, opening them (whole or one row
//! group), and writing Parquet the way citywatch writes every file.
//!
//! A table is `<dataset>/<table>.parquet` or a folder `<dataset>/<table>/` of
//! `*.parquet` parts, read in file-name order. Opening a file checks, before a
//! single row is read: that it is not empty, that it is Parquet, and that each
//! contract column is present with an accepted type. Each failure is an
//! [`Error`] naming the file, the column, what was expected and what was found.
//!
//! Decoding rows is [`crate::decode`]'s job (stream tables) and
//! [`crate::load`]'s (reference tables); this module knows files and schemas only.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::contract::Table;
use crate::{Error, Result};

/// Rows per decoded batch.
pub const BATCH_ROWS: usize = 8192;

/// Rows per row group of the Parquet files citywatch writes. A row group is
/// the unit a replay deals to its workers (a share, see [`crate::share`]):
/// time-sorted files cut into small row groups let every worker read at
/// about the same event time (64 Ki call rows are ~15 minutes of a city of
/// 1M subscribers), where parquet's default of 1 Mi rows made whole hours of
/// input one worker's alone.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The files holding one table of a dataset.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// Which table.
    pub table: Table,
    /// Its files, in read order.
    pub files: Vec<PathBuf>,
}

/// Finds a table in a dataset folder: `None` when it is absent.
pub fn locate(dir: &Path, table: Table) -> Result<Option<TableFiles>> {
    let file = dir.join(format!("{}.parquet", table.path_stem()));
    let folder = dir.join(table.path_stem());
    if file.is_file() {
        return Ok(Some(TableFiles { table, files: vec![file] }));
    }
    if folder.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| Error::io(&folder, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::MissingTable {
                table: table.name(),
                dir: dir.to_owned(),
                hint: "the folder exists but holds no *.parquet parts",
            });
        }
        return Ok(Some(TableFiles { table, files }));
    }
    Ok(None)
}

/// Like [`locate`], but the table is required.
pub fn require(dir: &Path, table: Table, hint: &'static str) -> Result<TableFiles> {
    locate(dir, table)?.ok_or(Error::MissingTable { table: table.name(), dir: dir.to_owned(), hint })
}

/// Where each contract column sits in a file (by index), after validation.
#[derive(Debug, Clone)]
pub struct ColumnMap(pub(crate) Vec<Option<usize>>);

/// The contract's name of an Arrow type, for error messages.
pub(crate) fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "utf8".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::Int64 => "int64".into(),
        DataType::Int32 => "int32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Float32 => "float32".into(),
        other => format!("{other}").to_lowercase(),
    }
}

/// Checks a file's Arrow schema against the contract of `table`. Extra columns are allowed
/// (and ignored); every contract column must be present with an accepted type.
pub fn validate_schema(file: &Path, table: Table, schema: &SchemaRef) -> Result<ColumnMap> {
    let mut map = Vec::with_capacity(table.columns().len());
    for c in table.columns() {
        match schema.index_of(c.name) {
            Ok(i) => {
                let found = schema.field(i).data_type();
                if !c.data_type.accepts(found) {
                    return Err(Error::WrongType {
                        file: file.to_owned(),
                        table: table.name(),
                        column: c.name,
                        expected: c.data_type.contract_name().to_owned(),
                        found: type_name(found),
                    });
                }
                map.push(Some(i));
            }
            Err(_) => {
                let found: Vec<String> =
                    schema.fields().iter().map(|f| format!("{} ({})", f.name(), type_name(f.data_type()))).collect();
                return Err(Error::MissingColumn {
                    file: file.to_owned(),
                    table: table.name(),
                    column: c.name,
                    expected: format!("{}{}", c.data_type.contract_name(), if c.nullable { ", nullable" } else { "" }),
                    found: if found.is_empty() { "none".into() } else { found.join(", ") },
                });
            }
        }
    }
    Ok(ColumnMap(map))
}

/// Opens one file of `table`: checks it is non-empty Parquet with the contract's columns.
pub fn open(file: &Path, table: Table) -> Result<(ParquetRecordBatchReader, ColumnMap)> {
    let meta = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
    if meta.len() == 0 {
        return Err(Error::EmptyFile { file: file.to_owned(), table: table.name() });
    }
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    })?;
    let map = validate_schema(file, table, builder.schema())?;
    let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(|e| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    })?;
    Ok((reader, map))
}

/// Opens one row group of one file of `table` (a share of a replay's input).
pub fn open_row_group(file: &Path, table: Table, row_group: usize) -> Result<(ParquetRecordBatchReader, ColumnMap)> {
    let corrupt = |e: &dyn std::fmt::Display| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    };
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| corrupt(&e))?;
    let map = validate_schema(file, table, builder.schema())?;
    let reader =
        builder.with_batch_size(BATCH_ROWS).with_row_groups(vec![row_group]).build().map_err(|e| corrupt(&e))?;
    Ok((reader, map))
}

/// Validates every file of a table without reading rows: run before a replay
/// starts, so a bad file stops it before any output is written.
pub fn check(files: &TableFiles) -> Result<u64> {
    let mut rows = 0;
    for f in &files.files {
        let file = File::open(f).map_err(|e| Error::io(f, e))?;
        if file.metadata().map_err(|e| Error::io(f, e))?.len() == 0 {
            return Err(Error::EmptyFile { file: f.clone(), table: files.table.name() });
        }
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::Corrupt {
            file: f.clone(),
            table: files.table.name(),
            detail: e.to_string(),
        })?;
        validate_schema(f, files.table, builder.schema())?;
        rows += builder.metadata().file_metadata().num_rows() as u64;
    }
    Ok(rows)
}

/// Reads a whole file into record batches with no contract check (for outputs
/// citywatch wrote itself, such as `alerts.parquet`).
pub fn read_whole_file(path: &Path, what: &'static str) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| Error::Corrupt { file: path.to_owned(), table: what, detail: e.to_string() })?;
    reader
        .map(|b| b.map_err(|e| Error::Corrupt { file: path.to_owned(), table: what, detail: e.to_string() }))
        .collect()
}

/// Writes record batches to a Parquet file (zstd level 1: small and fast).
/// Output is byte-identical for identical batches.
pub fn write_parquet_batches(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<()> {
    let werr = |e: parquet::errors::ParquetError| Error::Write { path: path.to_owned(), detail: e.to_string() };
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let props = writer_properties();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(werr)?;
    for b in batches {
        w.write(&b).map_err(werr)?;
    }
    w.close().map_err(werr)?;
    Ok(())
}

/// The writer properties citywatch uses for every Parquet file it writes.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid zstd level")))
        .set_created_by("citywatch".to_owned())
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Shared handle type for a schema, re-exported for writers.
pub type Schema = Arc<arrow_schema::Schema>;
