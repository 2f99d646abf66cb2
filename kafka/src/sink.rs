//! Alerts into a topic, keyed by alert id, each id once.

use std::collections::HashSet;

use citywatch_engine::alert::Alert;
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;

use crate::{Error, LogConfig, Result, connect, offsets, partition_client, partitions_of, runtime};

/// Writes alerts to `{prefix}alerts` (created with one partition when
/// missing, so that its order is the alerts' order), as the JSON of
/// `alerts.ndjson`, keyed by `alert_id`. Ids already in the topic are
/// skipped: a rerun or a restart that sends the same alerts again adds
/// nothing (alert ids are deterministic).
#[derive(Debug)]
pub struct AlertSink {
    rt: tokio::runtime::Runtime,
    client: PartitionClient,
    sent: HashSet<String>,
}

/// Most alert ids remembered from the topic at open; past it the sink
/// refuses to start rather than grow without bound.
pub const MAX_REMEMBERED: usize = 10_000_000;

impl AlertSink {
    /// Opens (or creates) the alerts topic and reads the ids it holds.
    pub fn open(cfg: &LogConfig) -> Result<AlertSink> {
        let rt = runtime()?;
        let topic = cfg.topic("alerts");
        let (client, sent) = rt.block_on(async {
            let client = connect(cfg).await?;
            if partitions_of(&client, &topic).await?.is_none() {
                let controller = client
                    .controller_client()
                    .map_err(|e| Error::Topic { topic: topic.clone(), detail: e.to_string() })?;
                controller
                    .create_topic(topic.clone(), 1, 1, 5_000)
                    .await
                    .map_err(|e| Error::Topic { topic: topic.clone(), detail: format!("create: {e}") })?;
            }
            let pc = partition_client(&client, &topic, 0).await?;
            let sent = read_keys(&pc, cfg.max_wait_ms).await?;
            Ok::<_, Error>((pc, sent))
        })?;
        Ok(AlertSink { rt, client, sent })
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
            let value = serde_json::to_vec(a).expect("alerts serialise");
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

/// The keys of every record of a partition.
async fn read_keys(pc: &PartitionClient, max_wait_ms: i32) -> Result<HashSet<String>> {
    let (mut next, end) = offsets(pc).await?;
    let mut keys = HashSet::new();
    while next < end {
        let (records, _) = pc.fetch_records(next, 1..(4 << 20), max_wait_ms).await.map_err(|e| Error::Topic {
            topic: pc.topic().to_owned(),
            detail: format!("reading alert ids at offset {next}: {e}"),
        })?;
        let Some(last) = records.last().map(|r| r.offset) else { break };
        for r in records {
            if let Some(k) = r.record.key {
                keys.insert(String::from_utf8_lossy(&k).into_owned());
            }
        }
        if keys.len() > MAX_REMEMBERED {
            return Err(Error::Topic {
                topic: pc.topic().to_owned(),
                detail: format!("holds more than {MAX_REMEMBERED} alerts; start a new topic prefix"),
            });
        }
        next = last + 1;
    }
    Ok(keys)
}
