//! Partitioned sources: the input cut into shares, each read by one worker.
//!
//! A **share** is one Parquet row group of one file of one stream table. The
//! cut depends only on the files, never on the number of workers or
//! processes. [`plan`] reads the footers: each share's rows and a lower bound
//! of its event times (the row group's `ts_ms` statistics, or the column read
//! once when a file has none). The shares, ordered by `(lower bound, table,
//! file, row group)`, are dealt round robin to the workers of the whole
//! cluster ([`Plan::dealt`]).
//!
//! A worker's [`Source`] reads its shares on a thread of its own, decodes and
//! pseudonymises them, and stamps every event with:
//! - `seq`, its source position ([`position`]): table, file and row within
//!   the file. Operators order by `(ts_ms, seq)`, so the order the models see
//!   is event time, then place in the input, whatever the order of arrival;
//! - `late`, and the time it travels at, from the share's own watermark
//!   ([`crate::admission::Admission`], one per open share;
//!   [`crate::lateness`]): the largest event time among the share's earlier
//!   rows minus the allowed lateness. Across shares nothing is late: the
//!   progress of the input is timely's frontier, the least watermark over the
//!   shares (and the lower bound of a share not opened yet).
//!
//! The source interleaves its open shares batch by batch (the share whose
//! next batch starts earliest goes first; a share opens once its lower bound
//! is reached), so what a worker feeds moves forward in event time and the
//! operators downstream buffer little. Each [`Batch`] carries the bound that
//! every later event of this worker travels at or after: the worker's input
//! capability.
//!
//! Call pairing (an `end` needs an open `start` before it) needs every row of
//! a call, so it is checked in the dataflow after the calls are exchanged by
//! `call_id` ([`crate::admission::Pairing`], `dataflow::build`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::statistics::Statistics;

use crate::admission::Admission;
use crate::contract::Table;
use crate::decode::{Decoder, RawBatch};
use crate::event::Event;
use crate::parquet_io::{self, ColumnMap, TableFiles};
use crate::reject::Rejected;
use crate::{Error, Result};

/// Bits of a source position given to the row within its file.
const ROW_BITS: u32 = 42;
/// Bits given to the file index within its table.
const FILE_BITS: u32 = 20;

/// The source position of a row: its table (in [`Table::STREAMS`] order), its
/// file (index in the table's sorted file list) and its row within the file,
/// packed so that comparing positions compares `(table, file, row)`.
pub fn position(table: usize, file: usize, row: u64) -> u64 {
    debug_assert!(table < 4 && file < 1 << FILE_BITS && row < 1 << ROW_BITS);
    ((table as u64) << (FILE_BITS + ROW_BITS)) | ((file as u64) << ROW_BITS) | row
}

/// The `(table, file, row)` of a source position.
pub fn unpack(seq: u64) -> (usize, usize, u64) {
    (
        (seq >> (FILE_BITS + ROW_BITS)) as usize,
        ((seq >> ROW_BITS) & ((1 << FILE_BITS) - 1)) as usize,
        seq & ((1 << ROW_BITS) - 1),
    )
}

/// One row group of one file of a stream table.
#[derive(Debug, Clone)]
pub struct Share {
    /// The table.
    pub table: Table,
    /// The table's index in [`Table::STREAMS`].
    pub table_index: usize,
    /// The file's index in the table's file list.
    pub file_index: usize,
    /// The file.
    pub path: Arc<Path>,
    /// The row group within the file.
    pub row_group: usize,
    /// Row number (within the file) of the row group's first row.
    pub row0: u64,
    /// Rows in the row group.
    pub rows: u64,
    /// No accepted event of the share is earlier than this (ms).
    pub lower: u64,
    /// A partition of a message log instead of a row group of `path` (which
    /// then only names it): its file index is the partition's index and its
    /// rows are the partition's offsets.
    pub log: Option<Arc<dyn LogPartition>>,
}

/// A partition of a message log read as a share (the Kafka source implements
/// it): a bounded range of offsets whose records decode to contract rows.
pub trait LogPartition: Send + Sync + std::fmt::Debug {
    /// Starts reading the range.
    fn open(&self) -> Result<Box<dyn LogReader>>;
}

/// Reads a log partition in offset order.
pub trait LogReader: Send {
    /// The next run of records at consecutive offsets; `None` past the end.
    fn next_run(&mut self) -> Result<Option<LogRun>>;
}

/// Records at consecutive offsets, as contract rows (every column nullable:
/// see [`crate::ndjson`]), and the faults of those that were not.
#[derive(Debug)]
pub struct LogRun {
    /// Offset of the first record.
    pub first: u64,
    /// One row per record.
    pub batch: arrow_array::RecordBatch,
    /// Records that are not contract rows (row = index in the run).
    pub faults: Vec<crate::ndjson::RowFault>,
}

/// The shares of a dataset's stream tables, and its files by table.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every share, ordered by `(lower, table, file, row group)`.
    pub shares: Vec<Share>,
    /// The files of each stream table, by [`Table::STREAMS`] index.
    pub files: [Vec<Arc<Path>>; 3],
}

impl Plan {
    /// The shares of worker `index` of `peers` (round robin in plan order).
    pub fn dealt(&self, index: usize, peers: usize) -> Vec<Share> {
        self.shares.iter().skip(index).step_by(peers.max(1)).cloned().collect()
    }

    /// The file a source position is in.
    pub fn file_of(&self, seq: u64) -> &Path {
        let (t, f, _) = unpack(seq);
        &self.files[t][f]
    }
}

fn corrupt(path: &Path, table: Table, e: impl std::fmt::Display) -> Error {
    Error::Corrupt { file: path.to_owned(), table: table.name(), detail: e.to_string() }
}

/// Cuts the stream tables into shares (files already validated by [`parquet_io::check`]).
pub fn plan(streams: &[TableFiles]) -> Result<Plan> {
    let mut plan = Plan::default();
    for files in streams {
        let t = Table::STREAMS.iter().position(|s| *s == files.table).expect("a stream table");
        if files.files.len() >= 1 << FILE_BITS {
            return Err(Error::config(
                "--input",
                format!("{} has {} files; at most {} per table", files.table.name(), files.files.len(), 1 << FILE_BITS),
            ));
        }
        for (f, path) in files.files.iter().enumerate() {
            let path: Arc<Path> = Arc::from(path.as_path());
            plan.files[t].push(Arc::clone(&path));
            let file = File::open(&path).map_err(|e| Error::io(path.as_ref(), e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(&path, files.table, e))?;
            let meta = builder.metadata().clone();
            let descr = meta.file_metadata().schema_descr();
            let ts_col = descr.columns().iter().position(|c| c.name() == "ts_ms");
            let mut row0 = 0u64;
            for (g, rg) in meta.row_groups().iter().enumerate() {
                let rows = rg.num_rows().max(0) as u64;
                if row0 + rows >= 1 << ROW_BITS {
                    return Err(corrupt(&path, files.table, format!("more than 2^{ROW_BITS} rows in one file")));
                }
                let from_stats = ts_col.and_then(|c| match rg.column(c).statistics() {
                    Some(Statistics::Int64(s)) => s.min_opt().copied(),
                    _ => None,
                });
                let lower = match from_stats {
                    Some(min) => min.max(0) as u64,
                    None => min_ts(&path, files.table, g, ts_col)?,
                };
                plan.shares.push(Share {
                    table: files.table,
                    table_index: t,
                    file_index: f,
                    path: Arc::clone(&path),
                    row_group: g,
                    row0,
                    rows,
                    lower,
                    log: None,
                });
                row0 += rows;
            }
        }
    }
    plan.shares.sort_by_key(|s| (s.lower, s.table_index, s.file_index, s.row_group));
    Ok(plan)
}

/// Stream tables read from a message log instead of files: the partitions of
/// each table. A partition is one share (its index is its file index, its
/// offsets are its rows), so the cut depends on the log, never on the workers.
pub trait LogSource: Send + Sync + std::fmt::Debug + std::panic::RefUnwindSafe {
    /// Each stream table the log holds, with its partitions, in partition order.
    fn tables(&self) -> Result<Vec<(Table, Vec<LogShare>)>>;
}

/// One partition of a log table, as [`LogSource::tables`] lists it.
#[derive(Debug, Clone)]
pub struct LogShare {
    /// Names it in messages and rejected rows (`kafka:TOPIC/PARTITION`).
    pub name: String,
    /// First offset to read.
    pub start: u64,
    /// Records in the range (offsets `start..start + records`, some perhaps
    /// missing: compacted or control records).
    pub records: u64,
    /// No record of the partition is earlier than this (ms); 0 when unknown.
    pub lower: u64,
    /// Reads it.
    pub partition: Arc<dyn LogPartition>,
}

/// Cuts log tables into shares, one per partition.
pub fn log_plan(tables: Vec<(Table, Vec<LogShare>)>) -> Result<Plan> {
    let mut plan = Plan::default();
    for (table, parts) in tables {
        let t = Table::STREAMS.iter().position(|s| *s == table).ok_or_else(|| {
            Error::config("log", format!("{} is not a stream table (calls, alarms, patrols)", table.name()))
        })?;
        if parts.len() >= 1 << FILE_BITS || parts.iter().any(|p| p.start + p.records >= 1 << ROW_BITS) {
            return Err(Error::config(
                "log",
                format!("{}: too many partitions or offsets past 2^{ROW_BITS}", table.name()),
            ));
        }
        for (f, p) in parts.into_iter().enumerate() {
            let path: Arc<Path> = Arc::from(Path::new(&p.name));
            plan.files[t].push(Arc::clone(&path));
            plan.shares.push(Share {
                table,
                table_index: t,
                file_index: f,
                path,
                row_group: 0,
                row0: p.start,
                rows: p.records,
                lower: p.lower,
                log: Some(p.partition),
            });
        }
    }
    plan.shares.sort_by_key(|s| (s.lower, s.table_index, s.file_index));
    Ok(plan)
}

/// The least non-negative `ts_ms` of a row group read from the column (for a
/// file written without statistics); `u64::MAX` when it has none (every row
/// will be rejected, so the share holds nothing back).
fn min_ts(path: &Path, table: Table, row_group: usize, ts_col: Option<usize>) -> Result<u64> {
    let Some(c) = ts_col else { return Ok(u64::MAX) };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, table, e))?;
    let mask = ProjectionMask::leaves(builder.metadata().file_metadata().schema_descr(), [c]);
    let reader =
        builder.with_projection(mask).with_row_groups(vec![row_group]).build().map_err(|e| corrupt(path, table, e))?;
    let mut min = u64::MAX;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(path, table, e))?;
        if let Some(ts) = batch.column(0).as_primitive_opt::<Int64Type>() {
            for v in ts.iter().flatten().filter(|v| *v >= 0) {
                min = min.min(v as u64);
            }
        }
    }
    Ok(min)
}

/// What a share's batches are read from.
enum Rows {
    File(ParquetRecordBatchReader),
    Log(Box<dyn LogReader>),
}

/// One share being read: its batches, watermark and the next row's number.
struct OpenShare {
    share: Share,
    reader: Rows,
    map: Arc<ColumnMap>,
    row: u64,
    /// Source positions and the share's watermark.
    admission: Admission,
    /// The next chunk, decoded and stamped.
    head: Option<Chunk>,
    /// No event of `head` or later travels before this.
    bound: u64,
}

/// Decoded, stamped events of one record batch of a share.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The events, in row order.
    pub events: Vec<Event>,
    /// Its bad rows.
    pub rejects: Vec<Rejected>,
    first_ts: u64,
}

/// What a worker's source hands the worker: events (stamped), bad rows, and
/// the bound every later event of this source travels at or after.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events in the order read (the operators order them).
    pub events: Vec<Event>,
    /// Rows rejected while decoding.
    pub rejects: Vec<Rejected>,
    /// The worker's input capability after this batch (`u64::MAX` on the last).
    pub bound: u64,
    /// On the last batch: what the source counted.
    pub end: Option<SourceCounts>,
}

/// What a source counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceCounts {
    /// Events decoded (before call pairing).
    pub events: u64,
    /// Of those, late ones.
    pub late: u64,
    /// Least and largest event time of the events (their own, not the
    /// watermark a late one travels at).
    pub range: Option<(u64, u64)>,
    /// Rows read per stream table ([`Table::STREAMS`] order).
    pub rows: [u64; 3],
}

impl SourceCounts {
    /// Adds another source's counts.
    pub fn add(&mut self, o: &SourceCounts) {
        self.events += o.events;
        self.late += o.late;
        self.range = match (self.range, o.range) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
        for (r, x) in self.rows.iter_mut().zip(o.rows) {
            *r += x;
        }
    }
}

/// A worker's shares, read in time order batch by batch.
pub struct Source {
    /// Shares not opened yet, by lower bound.
    pending: std::collections::VecDeque<Share>,
    open: Vec<OpenShare>,
    /// One decoder per stream table ([`Table::STREAMS`] order).
    decoders: Vec<Option<Decoder>>,
    lateness_ms: u64,
    /// What was read.
    pub counts: SourceCounts,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("pending", &self.pending.len()).field("open", &self.open.len()).finish()
    }
}

impl Source {
    /// A source over `shares` (in plan order) with a decoder per stream table present.
    pub fn new(shares: Vec<Share>, decoders: Vec<Option<Decoder>>, lateness_ms: u64) -> Self {
        Source { pending: shares.into(), open: Vec::new(), decoders, lateness_ms, counts: SourceCounts::default() }
    }

    /// Whether every share has been read.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty() && self.open.is_empty()
    }

    /// The bound of every event not yet handed out (`u64::MAX` once done).
    pub fn bound(&self) -> u64 {
        let open = self.open.iter().map(|s| s.bound).min().unwrap_or(u64::MAX);
        open.min(self.pending.front().map_or(u64::MAX, |s| s.lower))
    }

    fn open_next(&mut self) -> Result<()> {
        let share = self.pending.pop_front().expect("a pending share");
        let (reader, map) = match &share.log {
            None => {
                let (reader, map) = parquet_io::open_row_group(&share.path, share.table, share.row_group)?;
                (Rows::File(reader), map)
            }
            Some(log) => {
                let map = parquet_io::validate_schema(&share.path, share.table, &crate::ndjson::schema(share.table))?;
                (Rows::Log(log.open()?), map)
            }
        };
        let first_seq = position(share.table_index, share.file_index, share.row0);
        let mut s = OpenShare {
            row: share.row0,
            bound: share.lower,
            share,
            reader,
            map: Arc::new(map),
            admission: Admission::new(self.lateness_ms, first_seq),
            head: None,
        };
        self.fill(&mut s)?;
        if s.head.is_some() {
            self.open.push(s);
        }
        Ok(())
    }

    /// Decodes and stamps the share's next record batch into its head.
    fn fill(&mut self, s: &mut OpenShare) -> Result<()> {
        s.bound = s.bound.max(s.admission.watermark());
        let (batch, faults) = match &mut s.reader {
            Rows::File(reader) => match reader.next() {
                Some(batch) => (batch.map_err(|e| corrupt(&s.share.path, s.share.table, e))?, Vec::new()),
                None => {
                    s.head = None;
                    return Ok(());
                }
            },
            Rows::Log(reader) => match reader.next_run()? {
                Some(run) => {
                    // A run starts at its first offset (after a gap, later
                    // than the row after the last run's).
                    s.row = run.first;
                    s.admission.seek(position(s.share.table_index, s.share.file_index, run.first));
                    // Each run brings its own schema (a producer's Arrow
                    // record may order or type its columns its own way).
                    match parquet_io::validate_schema(&s.share.path, s.share.table, &run.batch.schema()) {
                        Ok(map) => s.map = Arc::new(map),
                        Err(e) => {
                            let why = Rejected::new(
                                s.share.table,
                                &s.share.path,
                                run.first,
                                None,
                                "bad_schema",
                                e.to_string(),
                            );
                            self.counts.rows[s.share.table_index] += run.batch.num_rows().max(1) as u64;
                            s.head = Some(Chunk { events: Vec::new(), rejects: vec![why], first_ts: s.bound });
                            return Ok(());
                        }
                    }
                    (run.batch, run.faults)
                }
                None => {
                    s.head = None;
                    return Ok(());
                }
            },
        };
        let raw = RawBatch { file: Arc::clone(&s.share.path), row0: s.row, batch, map: Arc::clone(&s.map) };
        let n = raw.batch.num_rows();
        let mut chunk = Chunk { events: Vec::with_capacity(n), rejects: Vec::new(), first_ts: u64::MAX };
        let decoder = self.decoders[s.share.table_index].as_mut().expect("a decoder per table read");
        raw.decode(decoder, &mut chunk.events, &mut chunk.rejects);
        if !faults.is_empty() {
            // A record that is not a contract row is reported for what it is
            // (not JSON, a wrong type), not again for the nulls it decodes to.
            let (table, row0) = (s.share.table, s.row);
            let faulty: crate::hash::FastSet<u64> = faults.iter().map(|f| row0 + f.row).collect();
            chunk.rejects.retain(|r| !faulty.contains(&r.row));
            chunk.rejects.extend(
                faults
                    .into_iter()
                    .map(|f| Rejected::new(table, &s.share.path, row0 + f.row, f.column, f.code, f.reason)),
            );
            chunk.rejects.sort_by_key(|r| r.row);
        }
        let c = &mut self.counts;
        c.rows[s.share.table_index] += n as u64;
        let mut bad = chunk.rejects.iter().map(|r| r.row).peekable();
        let mut row = s.row;
        for e in &mut chunk.events {
            while bad.peek() == Some(&row) {
                bad.next();
                s.admission.skip();
                row += 1;
            }
            let ts = e.ts_ms();
            c.range = Some(c.range.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
            c.events += 1;
            c.late += u64::from(s.admission.admit(e, s.bound));
            chunk.first_ts = chunk.first_ts.min(e.ts_ms());
            row += 1;
        }
        // Rows rejected after the last event keep their positions too.
        for _ in bad {
            s.admission.skip();
        }
        s.row += n as u64;
        s.head = Some(chunk);
        Ok(())
    }

    /// The next chunk in time order; `None` when every share is read.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        loop {
            let earliest = self.open.iter().enumerate().min_by_key(|(i, s)| {
                (s.head.as_ref().map_or(u64::MAX, |h| h.first_ts), s.share.table_index, s.share.file_index, *i)
            });
            let head_ts = earliest.map(|(_, s)| s.head.as_ref().map_or(u64::MAX, |h| h.first_ts));
            // Open the next share once its lower bound is reached.
            if let Some(next) = self.pending.front()
                && head_ts.is_none_or(|h| next.lower <= h)
            {
                self.open_next()?;
                continue;
            }
            let Some((i, _)) = earliest else { return Ok(None) };
            let mut s = self.open.swap_remove(i);
            let chunk = s.head.take().expect("open shares have a head");
            self.fill(&mut s)?;
            if s.head.is_some() {
                self.open.push(s);
            }
            return Ok(Some(chunk));
        }
    }
}

/// Reads a source into batches of at least `batch_events` events (or less at
/// the end, or when a paced replay's batch spans 100 ms of real time) and
/// hands each to `send`; with `pace`, at that multiple of real time from the
/// source's first event. Stops early when `send` returns false (the worker is gone).
pub fn pump(
    source: &mut Source,
    batch_events: usize,
    pace: Option<f64>,
    progress: &dyn crate::replay::Progress,
    mut send: impl FnMut(Batch) -> bool,
) -> Result<()> {
    let started = Instant::now();
    let paced_span_ms = pace.map_or(u64::MAX, |x| ((100.0 * x) as u64).max(1));
    let mut first = None;
    let mut batch = Batch::default();
    let mut batch_first = None;
    let mut rows_before = 0;
    loop {
        let chunk = source.next_chunk()?;
        // The last chunk ends the source: its bound would be "never", which
        // is no capability to hold (the worker ends the input instead).
        let end = chunk.is_none() || source.is_done();
        if let Some(c) = chunk {
            batch_first.get_or_insert(c.first_ts);
            let last = c.events.iter().map(Event::ts_ms).max().unwrap_or(c.first_ts);
            batch.events.extend_from_slice(&c.events);
            batch.rejects.extend(c.rejects);
            let span = last.saturating_sub(batch_first.unwrap_or(last));
            if batch.events.len() < batch_events && span < paced_span_ms {
                continue;
            }
            if let Some(x) = pace {
                let first = *first.get_or_insert(batch_first.unwrap_or(last));
                let target = Duration::from_secs_f64(last.saturating_sub(first) as f64 / 1000.0 / x);
                if let Some(wait) = target.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        batch.bound = source.bound();
        if end {
            batch.end = Some(source.counts);
        }
        let rows: u64 = source.counts.rows.iter().sum();
        progress.advance(rows - rows_before);
        rows_before = rows;
        batch_first = None;
        if !send(std::mem::take(&mut batch)) || end {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_table_file_row() {
        let a = position(0, 3, 10);
        assert_eq!(unpack(a), (0, 3, 10));
        assert!(position(0, 3, 11) > a && position(0, 4, 0) > a && position(1, 0, 0) > position(0, 9, 1 << 40));
        assert_eq!(
            unpack(position(2, (1 << FILE_BITS) - 1, (1 << ROW_BITS) - 1)),
            (2, (1 << FILE_BITS) - 1, (1 << ROW_BITS) - 1)
        );
    }
}
