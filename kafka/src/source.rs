//! Stream tables read from topics: a partition per share.

use std::collections::VecDeque;
use std::sync::Arc;

use citywatch_engine::contract::Table;
use citywatch_engine::ipc::IpcError;
use citywatch_engine::ndjson::{self, RowFault};
use citywatch_engine::share::{LogPartition, LogReader, LogRun, LogShare, LogSource};
use rskafka::client::partition::PartitionClient;
use rskafka::record::RecordAndOffset;

use crate::{
    LogConfig, MAX_ROWS_PER_RECORD, ValueFormat, connect, fetch_from, offsets, partition_client, partitions_of, runtime,
};

/// Largest record value read as a row (bytes); a larger one is rejected
/// (`too_large`) without being parsed. Contract rows are under 1 KiB.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// An Arrow record's rows are numbered `offset << ROWS_SHIFT | row`.
pub const ROWS_SHIFT: u32 = 16;

/// Most records per run handed to the engine (one record batch).
const RUN_RECORDS: usize = 8192;

fn engine_error(name: &str, e: impl std::fmt::Display) -> citywatch_engine::Error {
    citywatch_engine::Error::Log { source_name: name.to_owned(), detail: e.to_string() }
}

/// The stream tables of a log, as they stand when the replay starts: every
/// partition from its earliest offset to its latest (records produced after
/// that are not read).
#[derive(Debug, Clone)]
pub struct KafkaSource {
    cfg: LogConfig,
}

impl KafkaSource {
    /// The log's topics under `cfg`.
    pub fn new(cfg: LogConfig) -> Self {
        KafkaSource { cfg }
    }
}

impl LogSource for KafkaSource {
    fn tables(&self) -> citywatch_engine::Result<Vec<(Table, Vec<LogShare>)>> {
        let what = format!("kafka:{}", self.cfg.brokers.join(","));
        let rt = runtime().map_err(|e| engine_error(&what, e))?;
        rt.block_on(async {
            let client = connect(&self.cfg).await.map_err(|e| engine_error(&what, e))?;
            let mut tables = Vec::new();
            for table in Table::STREAMS {
                let topic = self.cfg.topic(table.name());
                let Some(partitions) = partitions_of(&client, &topic).await.map_err(|e| engine_error(&what, e))? else {
                    continue;
                };
                let mut shares = Vec::with_capacity(partitions.len());
                for p in partitions {
                    let name = format!("kafka:{topic}/{p}");
                    let pc = partition_client(&client, &topic, p).await.map_err(|e| engine_error(&name, e))?;
                    let (start, end) = offsets(&pc).await.map_err(|e| engine_error(&name, e))?;
                    let (start, end) = (start.max(0) as u64, end.max(0) as u64);
                    let partition = Arc::new(KafkaPartition {
                        cfg: self.cfg.clone(),
                        table,
                        name: name.clone(),
                        topic: topic.clone(),
                        partition: p,
                        start,
                        end,
                    });
                    let first_row = match self.cfg.format {
                        ValueFormat::Json => start,
                        ValueFormat::Arrow => {
                            if end >= 1 << (42 - ROWS_SHIFT) {
                                return Err(engine_error(
                                    &name,
                                    "offsets past 2^26 cannot number Arrow rows; read it as JSON or start a new topic",
                                ));
                            }
                            start << ROWS_SHIFT
                        }
                    };
                    shares.push(LogShare {
                        name,
                        start: first_row,
                        records: end.saturating_sub(start),
                        lower: 0,
                        partition,
                    });
                }
                tables.push((table, shares));
            }
            if tables.is_empty() {
                let topics = Table::STREAMS.map(|t| self.cfg.topic(t.name())).join(", ");
                return Err(engine_error(
                    &what,
                    format!("none of the topics {topics} exists; publish a dataset first (`citywatch publish`)"),
                ));
            }
            Ok(tables)
        })
    }
}

/// One partition's offsets `start..end`.
#[derive(Debug)]
struct KafkaPartition {
    cfg: LogConfig,
    table: Table,
    name: String,
    topic: String,
    partition: i32,
    start: u64,
    end: u64,
}

impl LogPartition for KafkaPartition {
    fn open(&self) -> citywatch_engine::Result<Box<dyn LogReader>> {
        let rt = runtime().map_err(|e| engine_error(&self.name, e))?;
        let client = rt.block_on(async {
            let client = connect(&self.cfg).await?;
            partition_client(&client, &self.topic, self.partition).await
        });
        let client = client.map_err(|e| engine_error(&self.name, e))?;
        // Fetching runs on a thread of its own, a fetch or two ahead of the
        // decoding (the engine's source thread), so the two overlap.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut fetcher = Fetcher {
            rt,
            client,
            name: self.name.clone(),
            max_wait_ms: self.cfg.max_wait_ms,
            start: self.start,
            next: self.start,
            end: self.end,
        };
        std::thread::Builder::new()
            .name(format!("fetch-{}", self.name))
            .spawn(move || {
                while fetcher.next < fetcher.end {
                    let fetched = fetcher.fetch();
                    let failed = fetched.is_err();
                    if tx.send(fetched).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| engine_error(&self.name, format!("cannot start a fetch thread: {e}")))?;
        Ok(Box::new(KafkaReader { table: self.table, format: self.cfg.format, fetched: rx, buffered: VecDeque::new() }))
    }
}

/// Fetches a partition's range in order.
struct Fetcher {
    rt: tokio::runtime::Runtime,
    client: PartitionClient,
    name: String,
    max_wait_ms: i32,
    /// The range's first offset (the earliest kept when the replay started).
    start: u64,
    /// The next offset to fetch.
    next: u64,
    end: u64,
}

impl Fetcher {
    /// The records from `next` on (some, or none when the range skips ahead).
    fn fetch(&mut self) -> citywatch_engine::Result<Vec<RecordAndOffset>> {
        let (records, high) = self
            .rt
            .block_on(fetch_from(&self.client, self.next, self.start, self.max_wait_ms))
            .map_err(|e| engine_error(&self.name, format!("{e}; check that the broker is up")))?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let o = r.offset as u64;
            if o < self.end {
                self.next = o + 1;
                out.push(r);
            }
        }
        if out.is_empty() {
            // Nothing readable at `next`: compacted away or control records
            // up to the high watermark. Skip to it rather than spin.
            if high <= self.next {
                return Err(engine_error(
                    &self.name,
                    format!("no records at offset {} though the range ends at {}", self.next, self.end),
                ));
            }
            self.next = high.min(self.end);
        }
        Ok(out)
    }
}

/// Hands out a partition's records in runs of consecutive offsets.
struct KafkaReader {
    table: Table,
    format: ValueFormat,
    /// Fetched records, in offset order; closed after the last.
    fetched: std::sync::mpsc::Receiver<citywatch_engine::Result<Vec<RecordAndOffset>>>,
    /// Records received and not handed out yet.
    buffered: VecDeque<RecordAndOffset>,
}

impl LogReader for KafkaReader {
    fn next_run(&mut self) -> citywatch_engine::Result<Option<LogRun>> {
        while self.buffered.is_empty() {
            match self.fetched.recv() {
                Ok(records) => self.buffered.extend(records?),
                // The fetch thread is done: the range is read.
                Err(_) => return Ok(None),
            }
        }
        if self.format == ValueFormat::Arrow {
            // One record, one run: its rows at `offset << ROWS_SHIFT` on.
            let r = self.buffered.pop_front().expect("a buffered record");
            return Ok(Some(arrow_run(self.table, &r)));
        }
        // A run: records at consecutive offsets (a gap starts the next run).
        let first = self.buffered.front().map_or(0, |r| r.offset.max(0) as u64);
        let mut run = Vec::new();
        while let Some(r) = self.buffered.front() {
            if r.offset.max(0) as u64 != first + run.len() as u64 || run.len() == RUN_RECORDS {
                break;
            }
            run.push(self.buffered.pop_front().expect("a front record"));
        }
        Ok(Some(to_run(self.table, first, &run)))
    }
}

/// Records into a run of contract rows: one row per record whatever it holds
/// (a missing, oversized or non-JSON value is a row of nulls and a fault).
fn to_run(table: Table, first: u64, records: &[RecordAndOffset]) -> LogRun {
    let mut oversized = Vec::new();
    let values = records.iter().enumerate().map(|(i, r)| match r.record.value.as_deref() {
        Some(v) if v.len() > MAX_RECORD_BYTES => {
            oversized.push(RowFault {
                row: i as u64,
                column: None,
                code: "too_large",
                reason: format!("a record of {} bytes; a row is at most {MAX_RECORD_BYTES}", v.len()),
            });
            &b"null"[..]
        }
        Some(v) if !v.iter().all(u8::is_ascii_whitespace) => v,
        // A tombstone or blank value is still a record: a row, refused.
        _ => &b"null"[..],
    });
    let values: Vec<&[u8]> = values.collect();
    let (batch, mut faults) = ndjson::records_to_batch(table, values.iter().copied());
    if !oversized.is_empty() {
        faults.retain(|f| !oversized.iter().any(|o| o.row == f.row));
        faults.extend(oversized);
        faults.sort_by_key(|f| f.row);
    }
    LogRun { first, batch, faults }
}

/// An Arrow record as a run: its rows, or (a value that is not an Arrow IPC
/// stream of the table's schema, or too many rows) one row of nulls and a
/// fault that says why.
fn arrow_run(table: Table, r: &RecordAndOffset) -> LogRun {
    let first = (r.offset.max(0) as u64) << ROWS_SHIFT;
    let bad = |code: &'static str, reason: String| LogRun {
        first,
        batch: ndjson::records_to_batch(table, [&b"{}"[..]]).0,
        faults: vec![RowFault { row: 0, column: None, code, reason }],
    };
    let value = r.record.value.as_deref().unwrap_or_default();
    let read = citywatch_engine::ipc::read_stream(value, MAX_ROWS_PER_RECORD, |_| Ok(())).and_then(|batches| {
        let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| ndjson::schema(table));
        arrow_select::concat::concat_batches(&schema, &batches)
            .map_err(|e| IpcError::Bad(format!("bad Arrow IPC stream: {e}")))
    });
    match read {
        Ok(batch) if batch.num_rows() == 0 => bad("bad_arrow", "an Arrow record with no rows".into()),
        Ok(batch) => LogRun { first, batch, faults: Vec::new() },
        Err(IpcError::Bad(reason)) => bad("bad_arrow", reason),
        Err(IpcError::TooManyRows) => {
            bad("too_large", format!("more than {MAX_ROWS_PER_RECORD} rows in one Arrow record"))
        }
    }
}
