//! `citywatch publish`: a dataset folder's stream tables into topics.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use citywatch_engine::contract::{ColumnType, Table};
use citywatch_engine::decode::RawBatches;
use citywatch_engine::event::stable_key;
use citywatch_engine::parquet_io;
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;
use serde_json::{Map, Value};

use crate::{Error, LogConfig, Result, ValueFormat, connect, ensure_topic, partition_client, runtime};

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The dataset folder.
    pub input: PathBuf,
    /// Partitions of each topic created (an existing topic keeps its own).
    pub partitions: i32,
    /// `None`: as fast as the broker takes them, table after table. A
    /// multiple of real time: the three tables merged in event time and
    /// each record produced when its event time falls due (a live feed for
    /// a demo or a latency test). JSON values only.
    pub speed: Option<f64>,
}

/// What was published.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishStats {
    /// Records per table, in [`Table::STREAMS`] order.
    pub records: [u64; 3],
}

/// Records per produce request.
const PRODUCE_RECORDS: usize = 2000;

/// The column whose value keys a table's records: a call's start and end
/// rows, an alarm's rows and a unit's positions each stay in one partition,
/// in the order they were written.
fn key_column(table: Table) -> &'static str {
    match table {
        Table::Calls => "call_id",
        Table::Alarms => "alarm_id",
        _ => "unit_id",
    }
}

/// One stream table being published: its topic's partitions and what waits
/// to be produced to each.
struct Out {
    index: usize,
    table: Table,
    clients: Vec<PartitionClient>,
    pending: Vec<Vec<Record>>,
}

impl Out {
    /// Queues a record for the partition of its key; produces a full batch.
    async fn push(&mut self, key: &str, record: Record) -> Result<()> {
        let p = (stable_key(key) % self.clients.len() as u64) as usize;
        self.pending[p].push(record);
        if self.pending[p].len() >= PRODUCE_RECORDS {
            produce(&self.clients[p], std::mem::take(&mut self.pending[p])).await?;
        }
        Ok(())
    }

    /// Produces everything queued.
    async fn flush(&mut self) -> Result<()> {
        for (c, records) in self.clients.iter().zip(&mut self.pending) {
            produce(c, std::mem::take(records)).await?;
        }
        Ok(())
    }
}

/// Writes each stream table of `opts.input` to its topic (creating it with
/// `opts.partitions` partitions when missing), one JSON object per record,
/// keyed by [`key_column`] and partitioned by its stable hash; the record
/// timestamp is the row's `ts_ms`. Rows go in file order, so a partition
/// holds its rows in the dataset's order. With `opts.speed`, paced in event
/// time ([`PublishOptions::speed`]).
pub fn publish(cfg: &LogConfig, opts: &PublishOptions) -> Result<PublishStats> {
    if let Some(speed) = opts.speed {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(Error::Topic {
                topic: String::new(),
                detail: format!("speed {speed}: give a multiple of real time above 0"),
            });
        }
        if cfg.format == ValueFormat::Arrow {
            return Err(Error::Topic {
                topic: String::new(),
                detail: "a paced publish writes JSON records (an Arrow record holds many rows, of many times); \
                         leave out --speed or --log-format arrow"
                    .into(),
            });
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        let client = connect(cfg).await?;
        let mut outs = Vec::new();
        let mut sources = Vec::new();
        for (index, table) in Table::STREAMS.into_iter().enumerate() {
            let Some(files) = parquet_io::locate(&opts.input, table)? else { continue };
            parquet_io::check(&files)?;
            let topic = cfg.topic(table.name());
            let partitions = ensure_topic(&client, &topic, opts.partitions).await?;
            let mut clients = Vec::with_capacity(partitions.len());
            for &p in &partitions {
                clients.push(partition_client(&client, &topic, p).await?);
            }
            let pending = vec![Vec::new(); clients.len()];
            outs.push(Out { index, table, clients, pending });
            sources.push(RawBatches::new(files));
        }
        match opts.speed {
            None => bulk(cfg, &mut outs, sources).await,
            Some(speed) => paced(&mut outs, sources, speed).await,
        }
    })
}

/// Table after table, as fast as the broker takes them.
async fn bulk(cfg: &LogConfig, outs: &mut [Out], sources: Vec<RawBatches>) -> Result<PublishStats> {
    let mut stats = PublishStats::default();
    for (out, mut batches) in outs.iter_mut().zip(sources) {
        while let Some(raw) = batches.next_batch()? {
            let records = match cfg.format {
                ValueFormat::Json => rows_as_records(out.table, &raw.batch),
                ValueFormat::Arrow => batch_as_records(out.table, &raw.batch, out.clients.len())?,
            };
            for (key, record) in records {
                out.push(&key, record).await?;
                stats.records[out.index] += 1;
            }
        }
        out.flush().await?;
    }
    Ok(stats)
}

/// Produces early by at most this much (one produce request carries the
/// records that fall due within it).
const PACE_SLACK: Duration = Duration::from_millis(5);

/// The tables merged in event time (the earliest head first; ties in table
/// order), each record produced once `(ts - first ts) / speed` has passed.
/// A table whose rows go back in time is merged as it comes (its late rows
/// are produced at once).
async fn paced(outs: &mut [Out], mut sources: Vec<RawBatches>, speed: f64) -> Result<PublishStats> {
    let mut stats = PublishStats::default();
    let mut queues: Vec<VecDeque<(i64, String, Record)>> = vec![VecDeque::new(); outs.len()];
    let tables: Vec<Table> = outs.iter().map(|o| o.table).collect();
    let refill = |i: usize, queues: &mut Vec<VecDeque<(i64, String, Record)>>, sources: &mut Vec<RawBatches>| {
        while queues[i].is_empty() {
            let Some(raw) = sources[i].next_batch()? else { break };
            let records = rows_as_records(tables[i], &raw.batch);
            queues[i].extend(records.into_iter().map(|(k, r)| (r.timestamp.timestamp_millis(), k, r)));
        }
        Ok::<_, Error>(())
    };
    for i in 0..outs.len() {
        refill(i, &mut queues, &mut sources)?;
    }
    let Some(t0) = queues.iter().filter_map(|q| q.front().map(|r| r.0)).min() else { return Ok(stats) };
    let started = Instant::now();
    while let Some(i) = (0..queues.len()).filter(|&i| !queues[i].is_empty()).min_by_key(|&i| (queues[i][0].0, i)) {
        let ts = queues[i][0].0;
        let due = started + Duration::from_secs_f64(((ts - t0).max(0) as f64 / 1000.0) / speed);
        let now = Instant::now();
        if due > now + PACE_SLACK {
            for out in outs.iter_mut() {
                out.flush().await?;
            }
            tokio::time::sleep_until(due.into()).await;
        }
        let (_, key, record) = queues[i].pop_front().expect("a head record");
        outs[i].push(&key, record).await?;
        stats.records[outs[i].index] += 1;
        if queues[i].is_empty() {
            refill(i, &mut queues, &mut sources)?;
        }
    }
    for out in outs.iter_mut() {
        out.flush().await?;
    }
    Ok(stats)
}

async fn produce(client: &PartitionClient, records: Vec<Record>) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    client.produce(records, Compression::NoCompression).await.map_err(|e| Error::Topic {
        topic: client.topic().to_owned(),
        detail: format!("partition {}: produce failed after {:?}: {e}", client.partition(), started.elapsed()),
    })?;
    Ok(())
}

/// A contract batch as Arrow records, one per partition its rows go to (by
/// the key column's stable hash, as JSON records), each an Arrow IPC stream
/// of those rows in order; returned as `(a key of that partition, record)`.
fn batch_as_records(table: Table, batch: &RecordBatch, partitions: usize) -> Result<Vec<(String, Record)>> {
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); partitions];
    let mut key_of: Vec<Option<String>> = vec![None; partitions];
    let mut ts_of: Vec<i64> = vec![0; partitions];
    for (i, (key, ts)) in keys_and_times(table, batch).into_iter().enumerate() {
        let p = (stable_key(&key) % partitions as u64) as usize;
        if key_of[p].is_none() {
            key_of[p] = Some(key);
            ts_of[p] = ts;
        }
        rows[p].push(i as u32);
    }
    let bad =
        |e: arrow_schema::ArrowError| Error::Topic { topic: table.name().into(), detail: format!("Arrow record: {e}") };
    let mut out = Vec::new();
    for (p, idx) in rows.into_iter().enumerate() {
        for chunk in idx.chunks(crate::MAX_ROWS_PER_RECORD) {
            let indices = arrow_array::UInt32Array::from(chunk.to_vec());
            let columns = batch
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(bad)?;
            let part = RecordBatch::try_new(batch.schema(), columns).map_err(bad)?;
            let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(bad)?;
            w.write(&part).map_err(bad)?;
            let value = w.into_inner().map_err(bad)?;
            let record = Record {
                key: None,
                value: Some(value),
                headers: Default::default(),
                timestamp: chrono::DateTime::from_timestamp_millis(ts_of[p]).unwrap_or_default(),
            };
            out.push((key_of[p].clone().unwrap_or_default(), record));
        }
    }
    Ok(out)
}

/// Each row of a contract batch as `(key, record)`: a JSON object of the
/// contract's columns (nulls left out).
fn rows_as_records(table: Table, batch: &RecordBatch) -> Vec<(String, Record)> {
    let schema = batch.schema();
    let cols: Vec<(&'static str, ColumnType, Option<&dyn Array>)> = table
        .columns()
        .iter()
        .map(|c| (c.name, c.data_type, schema.index_of(c.name).ok().map(|i| batch.column(i).as_ref())))
        .collect();
    let key_name = key_column(table);
    (0..batch.num_rows())
        .map(|r| {
            let mut obj = Map::new();
            let mut ts = 0i64;
            for &(name, ty, col) in &cols {
                let Some(v) = col.and_then(|a| value_at(a, ty, r)) else { continue };
                if name == "ts_ms" {
                    ts = v.as_i64().unwrap_or(0);
                }
                obj.insert(name.to_owned(), v);
            }
            let key = match obj.get(key_name) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let record = Record {
                key: Some(key.clone().into_bytes()),
                value: Some(serde_json::to_vec(&Value::Object(obj)).expect("JSON values serialise")),
                headers: Default::default(),
                timestamp: chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default(),
            };
            (key, record)
        })
        .collect()
}

/// Each row's key (as [`rows_as_records`] writes it) and `ts_ms`.
fn keys_and_times(table: Table, batch: &RecordBatch) -> Vec<(String, i64)> {
    let column = |name: &str| {
        let ty = table.columns().iter().find(|c| c.name == name).map(|c| c.data_type);
        batch.schema().index_of(name).ok().zip(ty).map(|(i, ty)| (batch.column(i).as_ref(), ty))
    };
    let (key, ts) = (column(key_column(table)), column("ts_ms"));
    let at = |c: Option<(&dyn Array, ColumnType)>, r| c.and_then(|(a, ty)| value_at(a, ty, r));
    (0..batch.num_rows())
        .map(|r| {
            let key = match at(key, r) {
                Some(Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => String::new(),
            };
            (key, at(ts, r).and_then(|v| v.as_i64()).unwrap_or(0))
        })
        .collect()
}

/// Row `r` of a column as JSON; `None` when null or of a type the contract
/// does not allow (the dataset was checked, so that does not happen).
fn value_at(a: &dyn Array, ty: ColumnType, r: usize) -> Option<Value> {
    if a.is_null(r) {
        return None;
    }
    Some(match ty {
        ColumnType::UInt64 => Value::from(a.as_primitive_opt::<UInt64Type>()?.value(r)),
        ColumnType::UInt32 => Value::from(a.as_primitive_opt::<UInt32Type>()?.value(r)),
        ColumnType::UInt8 => Value::from(a.as_primitive_opt::<UInt8Type>()?.value(r)),
        ColumnType::Int64 => Value::from(a.as_primitive_opt::<Int64Type>()?.value(r)),
        ColumnType::Float64 => Value::from(a.as_primitive_opt::<Float64Type>()?.value(r)),
        ColumnType::Utf8 => Value::from(
            a.as_string_opt::<i32>()
                .map(|s| s.value(r))
                .or_else(|| a.as_string_opt::<i64>().map(|s| s.value(r)))
                .or_else(|| a.as_string_view_opt().map(|s| s.value(r)))?,
        ),
    })
}

/// A producer that keeps its connection: raw records `(timestamp ms,
/// value)` appended to partitions of topics (created when missing). For
/// feeding a log by hand, load generators, and tests of what the source
/// does with records that are not contract rows.
pub struct LogProducer {
    rt: tokio::runtime::Runtime,
    client: rskafka::client::Client,
    partitions: std::collections::HashMap<(String, i32), PartitionClient>,
}

impl std::fmt::Debug for LogProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogProducer").field("partitions", &self.partitions.len()).finish_non_exhaustive()
    }
}

impl LogProducer {
    /// Connects to the log.
    pub fn open(cfg: &LogConfig) -> Result<LogProducer> {
        let rt = runtime()?;
        let client = rt.block_on(connect(cfg))?;
        Ok(LogProducer { rt, client, partitions: Default::default() })
    }

    /// Appends records to `partition` of `topic`, creating the topic with
    /// `partitions` partitions when it is missing.
    pub fn send(&mut self, topic: &str, partitions: i32, partition: i32, values: Vec<(i64, Vec<u8>)>) -> Result<()> {
        let key = (topic.to_owned(), partition);
        if !self.partitions.contains_key(&key) {
            let client = &self.client;
            let pc = self.rt.block_on(async {
                ensure_topic(client, topic, partitions).await?;
                partition_client(client, topic, partition).await
            })?;
            self.partitions.insert(key.clone(), pc);
        }
        let pc = &self.partitions[&key];
        let records = values
            .into_iter()
            .map(|(ts, v)| Record {
                key: None,
                value: Some(v),
                headers: Default::default(),
                timestamp: chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default(),
            })
            .collect();
        self.rt.block_on(produce(pc, records))
    }
}

/// [`LogProducer::send`] on a connection of its own.
pub fn produce_values(
    cfg: &LogConfig,
    topic: &str,
    partitions: i32,
    partition: i32,
    values: Vec<(i64, Vec<u8>)>,
) -> Result<()> {
    LogProducer::open(cfg)?.send(topic, partitions, partition, values)
}

/// Every record value of partition `partition` of `topic`, with its offset,
/// from the earliest offset to the high watermark (for inspecting a topic,
/// and for tests).
pub fn read_values(cfg: &LogConfig, topic: &str, partition: i32) -> Result<Vec<(u64, Vec<u8>)>> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = connect(cfg).await?;
        let pc = partition_client(&client, topic, partition).await?;
        let mut out = Vec::new();
        crate::for_each_record(&pc, |r| {
            out.push((r.offset as u64, r.record.value.unwrap_or_default()));
            Ok(())
        })
        .await?;
        Ok(out)
    })
}
