//! Writing tables: a folder of Parquet parts for the big event tables, one
//! file for the rest, always with the engine's writer properties (zstd 1,
//! fixed `created_by`), so identical batches give identical bytes.
//!
//! [`PartWriter`] encodes each part on its own thread (at most two at a time),
//! so compression overlaps with generation; which rows go into which part
//! depends only on row counts, never on timing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use citywatch_engine::contract::Table;
use citywatch_engine::parquet_io::writer_properties;
use crossbeam_channel::{Sender, bounded};
use parquet::arrow::ArrowWriter;

use crate::{Error, Result};

/// Rows per record batch written.
pub const BATCH_ROWS: usize = 65_536;

fn write_err(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::Engine(citywatch_engine::Error::Write { path: path.to_owned(), detail: e.to_string() })
}

/// Writes batches to one Parquet file; returns the rows written.
pub fn write_file(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<u64> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(writer_properties())).map_err(|e| write_err(path, e))?;
    let mut rows = 0;
    for b in batches {
        let b = b?;
        rows += b.num_rows() as u64;
        w.write(&b).map_err(|e| write_err(path, e))?;
    }
    w.close().map_err(|e| write_err(path, e))?;
    Ok(rows)
}

struct Part {
    tx: Sender<RecordBatch>,
    handle: JoinHandle<Result<u64>>,
}

/// Writes a table as `<dir>/<table>/part-00000.parquet`, ... of about `part_rows` rows each.
pub struct PartWriter {
    folder: PathBuf,
    schema: SchemaRef,
    part_rows: u64,
    current: Option<Part>,
    previous: Option<JoinHandle<Result<u64>>>,
    rows_in_part: u64,
    parts: u32,
    rows: u64,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter").field("folder", &self.folder).field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl PartWriter {
    /// A writer for `table` in dataset folder `dir`; replaces any earlier parts.
    pub fn new(dir: &Path, table: Table, part_rows: u64) -> Result<PartWriter> {
        let folder = dir.join(table.path_stem());
        if folder.exists() {
            std::fs::remove_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        }
        let single = dir.join(format!("{}.parquet", table.path_stem()));
        if single.exists() {
            std::fs::remove_file(&single).map_err(|e| Error::io(&single, e))?;
        }
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        Ok(PartWriter {
            folder,
            schema: table.schema(),
            part_rows,
            current: None,
            previous: None,
            rows_in_part: 0,
            parts: 0,
            rows: 0,
        })
    }

    fn open_part(&mut self) -> Result<()> {
        if let Some(prev) = self.previous.take() {
            join(prev)?;
        }
        let path = self.folder.join(format!("part-{:05}.parquet", self.parts));
        self.parts += 1;
        let (tx, rx) = bounded::<RecordBatch>(4);
        let schema = self.schema.clone();
        let handle = std::thread::spawn(move || write_file(&path, schema, rx.into_iter().map(Ok)));
        self.current = Some(Part { tx, handle });
        self.rows_in_part = 0;
        Ok(())
    }

    fn close_part(&mut self) {
        if let Some(p) = self.current.take() {
            drop(p.tx);
            self.previous = Some(p.handle);
        }
    }

    /// Appends a batch (parts rotate at batch boundaries).
    pub fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open_part()?;
        }
        let n = batch.num_rows() as u64;
        let part = self.current.as_ref().expect("opened above");
        if part.tx.send(batch).is_err() {
            // The part thread stopped early: its error says why.
            let p = self.current.take().expect("current");
            join(p.handle)?;
            return Err(Error::Bug("a part writer stopped without an error".into()));
        }
        self.rows_in_part += n;
        self.rows += n;
        if self.rows_in_part >= self.part_rows {
            self.close_part();
        }
        Ok(())
    }

    /// Finishes every part; an empty table gets one zero-row part. Returns (rows, parts).
    pub fn finish(mut self) -> Result<(u64, u32)> {
        if self.parts == 0 {
            self.open_part()?;
        }
        self.close_part();
        if let Some(prev) = self.previous.take() {
            join(prev)?;
        }
        Ok((self.rows, self.parts))
    }
}

fn join(h: JoinHandle<Result<u64>>) -> Result<u64> {
    h.join().map_err(|_| Error::Bug("a part writer thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use arrow_array::{ArrayRef, UInt64Array};
    use std::sync::Arc;

    #[test]
    fn parts_rotate_at_batch_boundaries_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "call_id",
            arrow_schema::DataType::UInt64,
            false,
        )]));
        // A one-column table is enough to exercise rotation: use the labels path stem.
        let mut w = PartWriter::new(dir.path(), Table::FraudLabels, 15).unwrap();
        w.schema = schema.clone();
        for b in 0..3u64 {
            let col: ArrayRef = Arc::new(UInt64Array::from_iter_values(b * 10..b * 10 + 10));
            w.write(RecordBatch::try_new(schema.clone(), vec![col]).unwrap()).unwrap();
        }
        assert_eq!(w.finish().unwrap(), (30, 2));
        let files = citywatch_engine::parquet_io::locate(dir.path(), Table::FraudLabels).unwrap().unwrap().files;
        assert_eq!(files.len(), 2);
        let ids: Vec<u64> = files
            .iter()
            .flat_map(|f| citywatch_engine::parquet_io::read_whole_file(f, "test").unwrap())
            .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_table_is_one_zero_row_part() {
        let dir = tempfile::tempdir().unwrap();
        let w = PartWriter::new(dir.path(), Table::Patrols, 10).unwrap();
        assert_eq!(w.finish().unwrap(), (0, 1));
        let files = citywatch_engine::parquet_io::locate(dir.path(), Table::Patrols).unwrap().unwrap();
        assert_eq!(citywatch_engine::parquet_io::check(&files).unwrap(), 0);
    }
}
