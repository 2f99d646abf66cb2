//! Alerts into a topic, keyed by alert id, each id once.

use std::collections::HashSet;

use citywatch_engine::alert::{Alert, CapMessage, to_cap_message};
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;

use crate::{
    AlertFormat, Error, LogConfig, Result, SEQ_HEADER, connect, ensure_topic, fetch_from, for_each_record, offsets,
    partition_client, runtime,
};

/// Writes alerts to `{prefix}alerts` (created with one partition when
/// missing, so that its order is the alerts' order), as the JSON of
/// `alerts.ndjson` or as CAP 1.2 XML ([`LogConfig::alert_format`]), keyed by
/// `alert_id`. Ids already in the topic are
/// skipped: a rerun or a restart that sends the same alerts again adds
/// nothing (alert ids are deterministic).
#[derive(Debug)]
pub struct AlertSink {
    rt: tokio::runtime::Runtime,
    client: PartitionClient,
    sent: HashSet<String>,
    format: AlertFormat,
    cap_sender: String,
}

/// Most alert ids remembered from the topic at open; past it the sink
/// refuses to start rather than grow without bound.
pub const MAX_REMEMBERED: usize = 10_000_000;

impl AlertSink {
    /// Opens (or creates) the alerts topic and reads the ids it holds.
    pub fn open(cfg: &LogConfig) -> Result<AlertSink> {
        let (rt, client, sent) = open_alerts(cfg, read_keys)?;
        Ok(AlertSink { rt, client, sent, format: cfg.alert_format, cap_sender: cfg.cap_sender.clone() })
    }

    /// Alert ids the topic holds.
    pub fn known(&self) -> usize {
        self.sent.len()
    }

    /// Sends the alerts not in the topic yet; returns how many were sent.
    pub fn send(&mut self, alerts: &[Alert]) -> Result<usize> {
        let mut batch = Vec::new();
        let mut sent = 0;
        for a in alerts {
            if !self.sent.insert(a.alert_id.clone()) {
                continue;
            }
            let value = match self.format {
                AlertFormat::Json => serde_json::to_vec(a).expect("alerts serialise"),
                AlertFormat::Cap => to_cap_message(a, &self.cap_sender, None, &CapMessage::Alert).into_bytes(),
            };
            batch.push(Record {
                key: Some(a.alert_id.clone().into_bytes()),
                value: Some(value),
                headers: Default::default(),
                timestamp: chrono::DateTime::from_timestamp_millis(a.event_ts_ms).unwrap_or_default(),
            });
            if batch.len() == 1000 {
                sent += self.flush(std::mem::take(&mut batch))?;
            }
        }
        sent += self.flush(batch)?;
        Ok(sent)
    }

    fn flush(&mut self, records: Vec<Record>) -> Result<usize> {
        let n = records.len();
        if n > 0 {
            self.rt
                .block_on(self.client.produce(records, Compression::NoCompression))
                .map_err(|e| Error::Topic { topic: self.client.topic().to_owned(), detail: format!("produce: {e}") })?;
        }
        Ok(n)
    }
}

/// The keys of every record of a partition (at most [`MAX_REMEMBERED`]).
async fn read_keys(pc: &PartitionClient) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    for_each_record(pc, |r| {
        if let Some(k) = r.record.key {
            keys.insert(String::from_utf8_lossy(&k).into_owned());
        }
        if keys.len() > MAX_REMEMBERED {
            return Err(Error::Topic {
                topic: pc.topic().to_owned(),
                detail: format!("holds more than {MAX_REMEMBERED} alerts; start a new topic prefix"),
            });
        }
        Ok(())
    })
    .await?;
    Ok(keys)
}

/// The runtime and partition 0 of `{prefix}alerts` (created with one
/// partition when missing, so that its order is the alerts' order), and
/// what `read` makes of the records it holds.
fn open_alerts<T>(
    cfg: &LogConfig,
    read: impl AsyncFnOnce(&PartitionClient) -> Result<T>,
) -> Result<(tokio::runtime::Runtime, PartitionClient, T)> {
    let rt = runtime()?;
    let topic = cfg.topic("alerts");
    let (pc, held) = rt.block_on(async {
        let client = connect(cfg).await?;
        ensure_topic(&client, &topic, 1).await?;
        let pc = partition_client(&client, &topic, 0).await?;
        let held = read(&pc).await?;
        Ok::<_, Error>((pc, held))
    })?;
    Ok((rt, pc, held))
}

/// The live service's alert changes into `{prefix}alerts` (one partition,
/// created when missing): each record is one change of the store's change
/// log (the caller renders it: `{"seq", "change", "alert"}` as the event
/// stream sends it, or a CAP message), keyed by alert id, so a compacted
/// topic keeps each alert's latest state, with its `seq` in the header
/// [`SEQ_HEADER`]. The store
/// is the outbox: the sink sends the changes after the newest `seq` the
/// topic holds, so a restart (or a broker that was down) resumes without a
/// change missing or repeated.
#[derive(Debug)]
pub struct ChangeSink {
    rt: tokio::runtime::Runtime,
    client: PartitionClient,
    /// The newest change seq the topic holds.
    pub last_seq: i64,
}

impl ChangeSink {
    /// Opens (or creates) the topic and reads the newest `seq` it holds.
    pub fn open(cfg: &LogConfig) -> Result<ChangeSink> {
        let (rt, client, last_seq) = open_alerts(cfg, last_seq)?;
        Ok(ChangeSink { rt, client, last_seq })
    }

    /// Sends changes `(alert id, seq, JSON)` with seq past [`ChangeSink::last_seq`], in order.
    pub fn send(&mut self, changes: Vec<(String, i64, Vec<u8>)>) -> Result<usize> {
        let after = self.last_seq;
        let mut newest = after;
        let records: Vec<Record> = changes
            .into_iter()
            .filter(|(_, seq, _)| *seq > after)
            .map(|(id, seq, value)| {
                newest = newest.max(seq);
                Record {
                    key: Some(id.into_bytes()),
                    value: Some(value),
                    headers: [(SEQ_HEADER.to_owned(), seq.to_string().into_bytes())].into(),
                    timestamp: chrono::Utc::now(),
                }
            })
            .collect();
        let n = records.len();
        if n > 0 {
            self.rt
                .block_on(self.client.produce(records, Compression::NoCompression))
                .map_err(|e| Error::Topic { topic: self.client.topic().to_owned(), detail: format!("produce: {e}") })?;
        }
        // Only once the broker has them: a failed send is sent again.
        self.last_seq = newest;
        Ok(n)
    }
}

/// The `seq` of the partition's last record (0 when empty): its
/// [`SEQ_HEADER`], or the `seq` of its JSON value (topics written before the
/// header).
async fn last_seq(pc: &PartitionClient) -> Result<i64> {
    let (start, end) = offsets(pc).await?;
    if end <= start {
        return Ok(0);
    }
    let (records, _) = fetch_from(pc, end as u64 - 1, start as u64, 0).await?;
    let Some(r) = records.first() else {
        return Err(Error::Topic {
            topic: pc.topic().to_owned(),
            detail: format!("the last record (offset {}) could not be read", end - 1),
        });
    };
    let bad = |detail: String| Error::Topic { topic: pc.topic().to_owned(), detail };
    if let Some(h) = r.record.headers.get(SEQ_HEADER) {
        return std::str::from_utf8(h)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("the last record's {SEQ_HEADER} header is not a number")));
    }
    let v: serde_json::Value = serde_json::from_slice(r.record.value.as_deref().unwrap_or_default()).map_err(|e| {
        bad(format!(
            "the last record has no {SEQ_HEADER} header and is not JSON ({e}); give log_alerts a topic of its own"
        ))
    })?;
    Ok(v["seq"].as_i64().unwrap_or(0))
}
