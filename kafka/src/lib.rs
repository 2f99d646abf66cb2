//! citywatch over a Kafka-protocol message log.
//!
//! - [`KafkaSource`]: the stream tables `calls`, `alarms` and `patrols` read
//!   from topics `{prefix}calls`, `{prefix}alarms`, `{prefix}patrols`. Each
//!   partition is one share of the engine's partitioned sources
//!   ([`citywatch_engine::share`]): partitions are dealt to the workers, each
//!   with its own event-time watermark, and an event's source position is
//!   `(table, partition, offset)`, so alerts do not depend on the number of
//!   workers. A record's value is one row of the input contract as a JSON
//!   object (the ingest API's NDJSON line); a record that is not is rejected
//!   with its reason (`rejected.ndjson`, file `kafka:TOPIC/PARTITION`, row =
//!   offset) and reading goes on.
//! - [`publish()`]: writes a dataset folder's stream tables into those topics
//!   (keyed by call, alarm or unit, so a call's start and end share a
//!   partition and keep their order).
//! - [`AlertSink`]: alerts into `{prefix}alerts`, keyed by alert id,
//!   skipping ids the topic already holds (a rerun repeats nothing).
//!
//! The client is `rskafka` (pure Rust, on tokio). Every call here blocks: the
//! engine's sources are threads, and each reader runs a single-threaded
//! runtime of its own.

mod feed;
mod publish;
mod sink;
mod source;

use std::time::Duration;

pub use feed::{FEED_BATCH, FeedBatch, LogFeed, StartAt, parse_position};
pub use publish::{LogProducer, PublishOptions, PublishStats, produce_values, publish, read_values};
pub use sink::{AlertSink, ChangeSink};
pub use source::KafkaSource;
pub use source::ROWS_SHIFT;

/// Where the log is.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topics are `{prefix}{table}` (`calls`, `alarms`, `patrols`, `alerts`).
    pub topic_prefix: String,
    /// Longest a fetch waits for records (ms).
    pub max_wait_ms: i32,
    /// What a record's value holds.
    pub format: ValueFormat,
    /// What the alerts topic's record values hold.
    pub alert_format: AlertFormat,
    /// CAP `<sender>` of the alerts topic's messages ([`AlertFormat::Cap`]).
    pub cap_sender: String,
    /// Topics named outright, `(table, topic)`, instead of `{prefix}{table}`
    /// (a city's own topic names).
    pub topics: Vec<(String, String)>,
}

/// What the alerts topic's record values hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertFormat {
    /// The alert's JSON (replay: a row of `alerts.ndjson`; live: a change of
    /// the store's change log, as the event stream sends it).
    #[default]
    Json,
    /// A CAP 1.2 XML message (OASIS Common Alerting Protocol): `msgType`
    /// Alert for a new alert, Update (referencing it) for each later change.
    Cap,
}

impl std::str::FromStr for AlertFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "json" => Ok(AlertFormat::Json),
            "cap" => Ok(AlertFormat::Cap),
            other => Err(format!("alert format `{other}`: expected json or cap")),
        }
    }
}

/// Header of an alerts-topic record that carries its change `seq` (live).
pub const SEQ_HEADER: &str = "citywatch-seq";

/// What a record's value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueFormat {
    /// One row as one JSON object (the ingest API's NDJSON line).
    #[default]
    Json,
    /// An Arrow IPC stream of rows with the table's contract schema (at most
    /// [`MAX_ROWS_PER_RECORD`] rows; replay only). A row's source position
    /// is `offset * 2^16 + row`, so offsets up to 2^26 are read.
    Arrow,
}

/// Most rows in one Arrow record.
pub const MAX_ROWS_PER_RECORD: usize = 1 << 16;

impl std::str::FromStr for ValueFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "json" => Ok(ValueFormat::Json),
            "arrow" => Ok(ValueFormat::Arrow),
            other => Err(format!("value format `{other}`: expected json or arrow")),
        }
    }
}

impl LogConfig {
    /// A log at `brokers` (comma-separated `host:port`) with topics `{prefix}{table}`.
    pub fn new(brokers: &str, topic_prefix: &str) -> Self {
        LogConfig {
            brokers: brokers.split(',').map(str::trim).filter(|b| !b.is_empty()).map(str::to_owned).collect(),
            topic_prefix: topic_prefix.to_owned(),
            max_wait_ms: 100,
            format: ValueFormat::Json,
            alert_format: AlertFormat::Json,
            cap_sender: "citywatch@localhost".into(),
            topics: Vec::new(),
        }
    }

    /// The topic of a table: the one named for it, else `{prefix}{table}`.
    pub fn topic(&self, table: &str) -> String {
        match self.topics.iter().find(|(t, _)| t == table) {
            Some((_, topic)) => topic.clone(),
            None => format!("{}{table}", self.topic_prefix),
        }
    }

    /// Names topics outright from `TABLE=TOPIC` pairs (comma-separated);
    /// the tables are `calls`, `alarms`, `patrols` and `alerts`.
    pub fn with_topics(mut self, pairs: &str) -> std::result::Result<Self, String> {
        for pair in pairs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((table, topic)) = pair.split_once('=') else {
                return Err(format!("topic `{pair}`: expected TABLE=TOPIC, e.g. calls=telco.cdr"));
            };
            let (table, topic) = (table.trim(), topic.trim());
            if !["calls", "alarms", "patrols", "alerts"].contains(&table) {
                return Err(format!("topic `{pair}`: table `{table}` is not one of calls, alarms, patrols, alerts"));
            }
            if !valid_topic(topic) {
                return Err(format!(
                    "topic `{pair}`: `{topic}` is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
                ));
            }
            self.topics.retain(|(t, _)| t != table);
            self.topics.push((table.to_owned(), topic.to_owned()));
        }
        Ok(self)
    }
}

/// Kafka's rule for topic names.
fn valid_topic(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What can go wrong talking to the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No broker answered.
    #[error("cannot reach the Kafka brokers {brokers}: {detail}; check --brokers and that the broker is up")]
    Connect {
        /// The brokers tried.
        brokers: String,
        /// The client's error.
        detail: String,
    },
    /// A topic or partition request failed.
    #[error("topic {topic}: {detail}")]
    Topic {
        /// The topic.
        topic: String,
        /// What failed.
        detail: String,
    },
    /// Reading the dataset failed.
    #[error(transparent)]
    Engine(#[from] citywatch_engine::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A single-threaded runtime for blocking calls.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Connect { brokers: String::new(), detail: format!("no async runtime: {e}") })
}

/// Connects to the brokers (bounded: 10 s).
async fn connect(cfg: &LogConfig) -> Result<rskafka::client::Client> {
    let brokers = cfg.brokers.join(",");
    if cfg.brokers.is_empty() {
        return Err(Error::Connect { brokers, detail: "no broker given".into() });
    }
    let build = rskafka::client::ClientBuilder::new(cfg.brokers.clone()).client_id("citywatch").build();
    match tokio::time::timeout(Duration::from_secs(10), build).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::Connect { brokers, detail: e.to_string() }),
        Err(_) => Err(Error::Connect { brokers, detail: "no answer within 10 s".into() }),
    }
}

/// A partition's client, failing (not waiting) when the topic is unknown.
async fn partition_client(
    client: &rskafka::client::Client,
    topic: &str,
    partition: i32,
) -> Result<rskafka::client::partition::PartitionClient> {
    client
        .partition_client(topic.to_owned(), partition, rskafka::client::partition::UnknownTopicHandling::Error)
        .await
        .map_err(|e| Error::Topic { topic: topic.to_owned(), detail: format!("partition {partition}: {e}") })
}

/// The partitions of a topic, creating it with `partitions` partitions
/// (replication 1) when the log has no such topic.
async fn ensure_topic(client: &rskafka::client::Client, topic: &str, partitions: i32) -> Result<Vec<i32>> {
    if let Some(p) = partitions_of(client, topic).await? {
        return Ok(p);
    }
    let err = |detail: String| Error::Topic { topic: topic.to_owned(), detail };
    let controller = client.controller_client().map_err(|e| err(e.to_string()))?;
    controller
        .create_topic(topic.to_owned(), partitions.max(1), 1, 5_000)
        .await
        .map_err(|e| err(format!("create: {e}")))?;
    Ok((0..partitions.max(1)).collect())
}

/// The partitions of a topic, sorted; `None` when the log has no such topic.
async fn partitions_of(client: &rskafka::client::Client, topic: &str) -> Result<Option<Vec<i32>>> {
    let topics =
        client.list_topics().await.map_err(|e| Error::Topic { topic: topic.to_owned(), detail: e.to_string() })?;
    Ok(topics.into_iter().find(|t| t.name == topic).map(|t| {
        let mut p: Vec<i32> = t.partitions.into_iter().collect();
        p.sort_unstable();
        p
    }))
}

/// Bytes asked for per fetch (a broker sends at least one whole batch).
const FETCH_BYTES: i32 = 2 << 20;

/// Records at or after `offset`, and the partition's high watermark. A
/// broker may answer a fetch only from the start of a stored batch (tansu
/// 0.6 answers nothing when asked mid-batch, where Kafka sends the whole
/// batch), which is where a resumed feed or a cut fetch can stand: when
/// nothing at or after `offset` comes back though the high watermark is past
/// it, this asks again from 1, 2, 4, ... offsets earlier (not before `floor`,
/// the earliest offset known to be kept) and drops what precedes `offset`.
/// Only the first ask waits (up to `wait_ms`) for records to arrive.
async fn fetch_from(
    pc: &rskafka::client::partition::PartitionClient,
    offset: u64,
    floor: u64,
    wait_ms: i32,
) -> Result<(Vec<rskafka::record::RecordAndOffset>, u64)> {
    let mut back = 0u64;
    loop {
        let at = offset.saturating_sub(back).max(floor.min(offset));
        let answer = pc.fetch_records(at as i64, 1..FETCH_BYTES, if back == 0 { wait_ms } else { 0 }).await;
        let (records, high) = match answer {
            Ok(a) => a,
            // Asked from before what the broker keeps: nothing earlier to find.
            Err(_) if back > 0 => return Ok((Vec::new(), offset)),
            Err(e) => {
                return Err(Error::Topic {
                    topic: pc.topic().to_owned(),
                    detail: format!("partition {}: fetch at offset {at}: {e}", pc.partition()),
                });
            }
        };
        let high = high.max(0) as u64;
        let records: Vec<_> = records.into_iter().filter(|r| r.offset >= 0 && r.offset as u64 >= offset).collect();
        if !records.is_empty() || offset >= high || at <= floor.min(offset) {
            return Ok((records, high));
        }
        back = (back * 2).max(1);
    }
}

/// Calls `f` on every record of a partition, from its earliest offset to its
/// high watermark.
async fn for_each_record(
    pc: &rskafka::client::partition::PartitionClient,
    mut f: impl FnMut(rskafka::record::RecordAndOffset) -> Result<()>,
) -> Result<()> {
    let (start, end) = offsets(pc).await?;
    let (start, end) = (start.max(0) as u64, end.max(0) as u64);
    let mut next = start;
    while next < end {
        let (records, _) = fetch_from(pc, next, start, 0).await?;
        let Some(last) = records.last().map(|r| r.offset as u64) else { break };
        for r in records {
            f(r)?;
        }
        next = last + 1;
    }
    Ok(())
}

/// The earliest offset of a partition and its high watermark (the offset
/// the next record will get). The high watermark is read from a fetch, not
/// from ListOffsets: one broker tried here (tansu 0.6) answers "latest" with
/// the last batch's base offset + 1.
async fn offsets(pc: &rskafka::client::partition::PartitionClient) -> Result<(i64, i64)> {
    use rskafka::client::partition::OffsetAt;
    let err = |e: rskafka::client::error::Error| Error::Topic {
        topic: pc.topic().to_owned(),
        detail: format!("partition {}: offsets: {e}", pc.partition()),
    };
    let start = pc.get_offset(OffsetAt::Earliest).await.map_err(err)?;
    let (_, high) = pc.fetch_records(start, 1..1024, 0).await.map_err(err)?;
    Ok((start, high.max(start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_named_outright_replace_the_prefix() {
        let cfg = LogConfig::new("b:9092", "city.").with_topics("calls=telco.cdr, alerts = police.alerts").unwrap();
        assert_eq!(cfg.topic("calls"), "telco.cdr");
        assert_eq!(cfg.topic("alerts"), "police.alerts");
        assert_eq!(cfg.topic("alarms"), "city.alarms", "the others keep the prefix");
        let again = cfg.with_topics("calls=telco.cdr.v2").unwrap();
        assert_eq!(again.topic("calls"), "telco.cdr.v2", "the last naming wins");
    }

    #[test]
    fn bad_topic_names_say_what_to_give() {
        let cfg = || LogConfig::new("b:9092", "city.");
        let e = cfg().with_topics("calls").unwrap_err();
        assert!(e.contains("TABLE=TOPIC"), "{e}");
        let e = cfg().with_topics("subscribers=x").unwrap_err();
        assert!(e.contains("`subscribers` is not one of"), "{e}");
        let e = cfg().with_topics("calls=a b").unwrap_err();
        assert!(e.contains("not a Kafka topic name"), "{e}");
        assert!(cfg().with_topics("calls=..").is_err());
        assert!(cfg().with_topics(&format!("calls={}", "x".repeat(250))).is_err());
    }

    #[test]
    fn formats_parse_or_say_what_is_expected() {
        assert_eq!("cap".parse::<AlertFormat>(), Ok(AlertFormat::Cap));
        assert_eq!("json".parse::<AlertFormat>(), Ok(AlertFormat::Json));
        assert!("xml".parse::<AlertFormat>().unwrap_err().contains("expected json or cap"));
        assert_eq!("arrow".parse::<ValueFormat>(), Ok(ValueFormat::Arrow));
    }
}
