//! A live feed from the log: every partition of the stream topics, read as
//! records arrive, in batches whose order depends only on the log and on
//! where the feed stands, so that a feed resumed from its last committed
//! position hands the engine the very batches an uninterrupted one would.
//!
//! **Position.** Where every partition stands (its next offset) is written
//! into the idempotency key of each batch the engine applies (`log:` then
//! `TOPIC/PARTITION=OFFSET` pairs): the engine journals the key with the
//! batch's events, so the offsets are committed together with the state
//! they produced, and a restarted service resumes at the newest key of its
//! journal ([`citywatch_engine::live::LiveEngine::log_position`]). Nothing is
//! committed to the broker (no consumer group): the journal is the one
//! record of what was applied.
//!
//! **Order.** Each step takes the partition whose next record has the
//! earliest record timestamp (ties: the order of tables, then partitions)
//! and hands out its records up to the next-earliest partition's head (at
//! most [`FEED_BATCH`]), a merge in record-timestamp order over the
//! partitions that have records. A partition with nothing to read is not
//! waited for (idle partitions do not stall event time; the service's clock
//! tick moves it): records that arrive later are simply processed later, as
//! HTTP requests are.

use std::collections::VecDeque;

use citywatch_engine::contract::Table;
use citywatch_engine::live::LOG_KEY_PREFIX;
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;

use crate::{Error, LogConfig, Result, connect, fetch_from, offsets, partition_client, partitions_of, runtime};

/// Most records in one batch, by default.
pub const FEED_BATCH: usize = 2000;

/// Fetches of a partition that has records (by its high watermark) that may
/// answer none before it is treated as idle for this round.
const EMPTY_FETCHES: usize = 50;

/// Where a feed with no committed position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Every record the log still holds.
    Earliest,
    /// Only records produced from now on.
    Latest,
    /// Records from this time on (ms since the epoch; the broker's index of
    /// record timestamps).
    Timestamp(i64),
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "earliest" => Ok(StartAt::Earliest),
            "latest" => Ok(StartAt::Latest),
            t => t
                .parse::<i64>()
                .map(StartAt::Timestamp)
                .map_err(|_| format!("start `{t}`: expected earliest, latest, or a time in ms since 1970-01-01 UTC")),
        }
    }
}

/// One batch for the engine: records of one partition at consecutive
/// positions, and the feed's position once it is applied.
#[derive(Debug)]
pub struct FeedBatch {
    /// The table.
    pub table: Table,
    /// `kafka:TOPIC/PARTITION`, for rejected records.
    pub source: String,
    /// Offset of each record.
    pub offsets: Vec<u64>,
    /// Each record's value (an empty one for a record with none).
    pub values: Vec<Vec<u8>>,
    /// The idempotency key to apply it with: the feed's position after it.
    pub key: String,
}

struct Part {
    table: Table,
    /// `TOPIC/PARTITION`.
    name: String,
    client: PartitionClient,
    /// The next offset to fetch.
    fetch_at: u64,
    /// The next offset to hand out (the committed position once applied).
    next: u64,
    buffered: VecDeque<RecordAndOffset>,
    /// With `log_start` a time: records before it are passed over until the
    /// first at or after it (a broker's timestamp index may answer too early;
    /// tansu 0.6 answers the earliest offset).
    skip_before: Option<i64>,
}

impl Part {
    fn new(table: Table, name: String, client: PartitionClient, at: u64) -> Part {
        Part { table, name, client, fetch_at: at, next: at, buffered: VecDeque::new(), skip_before: None }
    }
}

/// The live feed over the stream topics of a log.
pub struct LogFeed {
    rt: tokio::runtime::Runtime,
    parts: Vec<Part>,
    max_wait_ms: i32,
    batch: usize,
}

impl std::fmt::Debug for LogFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFeed").field("partitions", &self.parts.len()).finish_non_exhaustive()
    }
}

/// Parses a position key into `(TOPIC/PARTITION, next offset)` pairs.
pub fn parse_position(key: &str) -> Vec<(String, u64)> {
    key.strip_prefix(LOG_KEY_PREFIX)
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.rsplit_once('='))
        .filter_map(|(name, o)| o.parse().ok().map(|o| (name.to_owned(), o)))
        .collect()
}

impl LogFeed {
    /// Opens every partition of the stream topics that exist, each at its
    /// offset in `position` (a key from the journal) or else at `start`.
    /// `batch` bounds the records of one batch (one journal record).
    pub fn open(cfg: &LogConfig, position: Option<&str>, start: StartAt, batch: usize) -> Result<LogFeed> {
        let rt = runtime()?;
        let committed = position.map(parse_position).unwrap_or_default();
        let parts = rt.block_on(async {
            let client = connect(cfg).await?;
            let mut parts = Vec::new();
            for table in Table::STREAMS {
                let topic = cfg.topic(table.name());
                let Some(partitions) = partitions_of(&client, &topic).await? else { continue };
                for p in partitions {
                    let pc = partition_client(&client, &topic, p).await?;
                    let name = format!("{topic}/{p}");
                    let at = match committed.iter().find(|(n, _)| *n == name) {
                        Some((_, o)) => *o,
                        None => {
                            let at = match start {
                                StartAt::Earliest => OffsetAt::Earliest,
                                StartAt::Latest => {
                                    parts.push(Part::new(table, name, pc, 0));
                                    let p = parts.last_mut().expect("just pushed");
                                    let (_, high) = offsets(&p.client).await?;
                                    (p.fetch_at, p.next) = (high as u64, high as u64);
                                    continue;
                                }
                                StartAt::Timestamp(ms) => {
                                    OffsetAt::Timestamp(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
                                }
                            };
                            let o = pc.get_offset(at).await.map_err(|e| Error::Topic {
                                topic: topic.clone(),
                                detail: format!("partition {p}: start offset: {e}"),
                            })?;
                            o.max(0) as u64
                        }
                    };
                    let mut part = Part::new(table, name, pc, at);
                    if let (StartAt::Timestamp(ms), false) = (start, committed.iter().any(|(n, _)| *n == part.name)) {
                        part.skip_before = Some(ms);
                    }
                    parts.push(part);
                }
            }
            Ok::<_, Error>(parts)
        })?;
        if parts.is_empty() {
            let topics = Table::STREAMS.map(|t| cfg.topic(t.name())).join(", ");
            return Err(Error::Topic { topic: topics, detail: "none of these topics exists".into() });
        }
        Ok(LogFeed { rt, parts, max_wait_ms: cfg.max_wait_ms, batch: batch.max(1) })
    }

    /// Partitions read.
    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// The feed's position as a key: every partition's next offset.
    fn key(&self) -> String {
        let pairs: Vec<String> = self.parts.iter().map(|p| format!("{}={}", p.name, p.next)).collect();
        format!("{LOG_KEY_PREFIX}{}", pairs.join(","))
    }

    /// Fetches into every empty buffer. A partition whose high watermark
    /// says it has records is fetched until they come (a fetch may answer
    /// empty, e.g. on a fresh connection): leaving it out of the merge would
    /// let the others run ahead and make its records late, depending on
    /// timing. Only a partition at its high watermark is idle. The first
    /// fetch waits up to the fetch wait when no partition has records.
    fn fill(&mut self) -> Result<()> {
        let any = self.parts.iter().any(|p| !p.buffered.is_empty());
        for (i, p) in self.parts.iter_mut().enumerate() {
            let mut wait = if any || i > 0 { 0 } else { self.max_wait_ms };
            for _ in 0..EMPTY_FETCHES {
                if !p.buffered.is_empty() {
                    break;
                }
                let (records, high) = self.rt.block_on(fetch_from(&p.client, p.fetch_at, 0, wait))?;
                for r in records {
                    let o = r.offset as u64;
                    p.fetch_at = o + 1;
                    match p.skip_before {
                        Some(t) if r.record.timestamp.timestamp_millis() < t => p.next = o + 1,
                        _ => {
                            p.skip_before = None;
                            p.buffered.push_back(r);
                        }
                    }
                }
                if p.fetch_at >= high {
                    break;
                }
                wait = 10;
            }
        }
        Ok(())
    }

    /// The next batch, or `None` when no partition has a record now.
    pub fn next_batch(&mut self) -> Result<Option<FeedBatch>> {
        self.fill()?;
        let head = |p: &Part| p.buffered.front().map(|r| r.record.timestamp.timestamp_millis());
        let Some(first) = (0..self.parts.len())
            .filter(|&i| head(&self.parts[i]).is_some())
            .min_by_key(|&i| (head(&self.parts[i]), i))
        else {
            return Ok(None);
        };
        // Up to the next-earliest partition's head: a merge by record time.
        let until = (0..self.parts.len()).filter(|&i| i != first).filter_map(|i| head(&self.parts[i])).min();
        let batch = self.batch;
        let p = &mut self.parts[first];
        let (mut offsets, mut values) = (Vec::new(), Vec::new());
        while let Some(r) = p.buffered.front() {
            let late_enough = until.is_some_and(|u| r.record.timestamp.timestamp_millis() > u);
            if offsets.len() == batch || (!offsets.is_empty() && late_enough) {
                break;
            }
            let r = p.buffered.pop_front().expect("a front record");
            offsets.push(r.offset.max(0) as u64);
            values.push(r.record.value.unwrap_or_default());
        }
        p.next = offsets.last().map_or(p.next, |o| o + 1);
        let (table, source) = (p.table, format!("kafka:{}", p.name));
        Ok(Some(FeedBatch { table, source, offsets, values, key: self.key() }))
    }
}
