//! Server configuration: one file, TOML (`.toml`) or JSON (anything else),
//! every field optional with the default documented on it. Unknown fields are
//! an error, so a typo does not silently fall back to a default.
//!
//! ```toml
//! addr = "127.0.0.1:8080"
//! store_path = "citywatch.sqlite"
//! credentials_path = "credentials.json"
//! cooldown_ms = 600000
//! escalation_timeout_ms = 300000
//! reveal_roles = ["community", "analyst"]
//! pseudonym_key = "citywatch-demo-key-not-secret"
//! cap_sender = "citywatch@localhost"
//! time_zone = "Asia/Shanghai"
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Everything `serve` needs to know that is not code.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listening address. Default `127.0.0.1:8080` (loopback: exposing the
    /// service is a deliberate act, behind a TLS proxy).
    pub addr: String,
    /// SQLite file of alerts, their lifecycle, the stream log, kept numbers and
    /// the audit chain. Default `citywatch.sqlite`.
    pub store_path: PathBuf,
    /// JSON file of officer tokens' argon2 hashes. Default `credentials.json`.
    pub credentials_path: PathBuf,
    /// Dedup window in event time: an alert with the same model, kind and
    /// subject within this many ms of the open one updates it. Default 10 min.
    pub cooldown_ms: u64,
    /// An alert still `new` this long (wall clock) after it was stored or last
    /// escalated goes one level up. Default 5 min.
    pub escalation_timeout_ms: u64,
    /// How often the escalation sweep runs. Default 1 s.
    pub escalation_check_ms: u64,
    /// How often a quiet pipeline's event clock is advanced to wall time, so
    /// deadlines fire with no traffic. Default 1 s; 0 disables it (replays that
    /// drive event time themselves).
    pub clock_tick_ms: u64,
    /// Roles that may reveal a phone number (`community`, `station`,
    /// `district`, `analyst`). Default community and analyst.
    pub reveal_roles: Vec<String>,
    /// The pseudonym key; must equal the engine's so tokens match. Default the
    /// engine's demo key (not secret: set your own in production).
    pub pseudonym_key: String,
    /// Home country calling code, for number classes. Default `86`.
    pub home_country_code: String,
    /// Secret for the kept-number vault (ChaCha20-Poly1305). Default: derived
    /// from `pseudonym_key` with a domain tag; set a separate one in production.
    pub vault_key: Option<String>,
    /// Key of the audit chain's HMAC; never stored in the database. Default:
    /// derived from `vault_key` (or, without one, `pseudonym_key`) with a
    /// domain tag. `citywatch audit verify` needs the same config.
    pub audit_key: Option<String>,
    /// Whether ingest keeps real numbers (encrypted) for reveal. Default true.
    pub keep_numbers: bool,
    /// CAP `<sender>` of this deployment. Default `citywatch@localhost`.
    pub cap_sender: String,
    /// Capacity of the live-change channel feeding streams; a stream that falls
    /// further behind catches up from the store. Default 4096.
    pub stream_buffer: usize,
    /// Largest ingest request body, bytes. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Failed authentications a client address may make per minute; past
    /// that its requests that need a token check get 429 until the minute is
    /// over (a console already signed in keeps working). Each failure is an
    /// audit row. Default 10; 0 turns the limit off.
    pub auth_failures_per_minute: u32,
    /// How often the credentials file is checked for changes, ms: tokens
    /// issued or revoked (`citywatch token`) take effect within this time
    /// without a restart; `SIGHUP` reloads at once. Default 2 s; 0: only on
    /// `SIGHUP`.
    pub credentials_poll_ms: u64,
    /// The city's time zone (IANA name): the console shows times in it (default `Asia/Shanghai`).
    pub time_zone: String,
    /// Rows dated more than this far ahead of the server's clock are refused
    /// (`out_of_range`): one far-future row would drag the watermark with it
    /// and make every later row late. Default 5 min.
    pub max_clock_skew_ms: u64,
    /// Rows older than this (server clock) are refused (`out_of_range`):
    /// history belongs in `citywatch replay`. Default 7 days; 0: no bound.
    pub max_event_age_ms: u64,
    /// Bad rows listed in a 400 answer; the rest are counted by code. Default 100.
    pub max_listed_errors: usize,
    /// Ingest requests decoded or applied at once; more get 503 with
    /// `Retry-After` instead of queueing without bound while the engine is
    /// behind. Default 4.
    pub max_concurrent_ingests: usize,
    /// Open connections; more wait in the kernel's accept queue. Default 1024.
    pub max_connections: usize,
    /// Time to receive a request's headers (and the wait for the next request
    /// on a kept-alive connection), ms. Default 10 s.
    pub header_timeout_ms: u64,
    /// Time to receive a request body once the headers are in, ms. Default 30 s.
    pub body_timeout_ms: u64,
    /// Event streams (SSE) one token may hold open at once. Default 8.
    pub max_streams_per_token: usize,
    /// `/healthz` answers 503 once an ingest has waited this long for the
    /// engine to take its events (the dataflow stalled while events arrive), ms.
    /// Default 10 s.
    pub stall_after_ms: u64,
    /// Folder of the engine's journal (every accepted event, so a restart
    /// restores the model state). Default: `store_path` with `.journal`
    /// appended (`citywatch.sqlite.journal/`).
    pub journal_path: Option<PathBuf>,
    /// `fdatasync` the journal before a request is answered (group commit:
    /// concurrent requests share a sync). Default true. Off: a killed process
    /// still loses nothing, a power cut may lose the last seconds.
    pub journal_fsync: bool,
    /// Journal kept, in event time behind the newest event, ms: older
    /// segments are deleted, and a restart restores model state from this
    /// much history. Default 24 h.
    pub journal_retention_ms: u64,
    /// Size of a journal segment file, bytes. Default 64 MiB.
    pub journal_segment_bytes: u64,
    /// The journal's size bound, bytes: the oldest segments are deleted past
    /// it (a restart then restores less history). Bounds the restore time.
    /// Default 1 GiB.
    pub journal_max_bytes: u64,
    /// Read calls, alarms and patrols from the Kafka topics
    /// `<log_topic_prefix><table>` on these brokers (comma-separated
    /// `host:port`) as well as from the ingest API. Default none.
    pub log_brokers: Option<String>,
    /// Prefix of the log's topics. Default `citywatch.`.
    pub log_topic_prefix: String,
    /// Where a feed with no position in the journal starts: `earliest`,
    /// `latest` or a time in ms since the epoch. Default `earliest`.
    pub log_start: String,
    /// Most records of the log applied as one batch (one journal record,
    /// one sync). Default 2000.
    pub log_batch: usize,
    /// Also write every alert change of the store (new, updated,
    /// acknowledged, resolved, escalated) to `<log_topic_prefix>alerts`,
    /// keyed by alert id. Default false.
    pub log_alerts: bool,
    /// What the stream topics' record values hold: `json` (one contract row
    /// as a JSON object, the ingest API's NDJSON line) or `arrow` (an Arrow
    /// IPC stream of rows, as `citywatch publish --log-format arrow` writes).
    /// Default `json`.
    pub log_format: String,
    /// Topics named outright, table to topic (`calls`, `alarms`, `patrols`,
    /// `alerts`), for a city whose topics have names of their own; a table
    /// not named keeps `<log_topic_prefix><table>`. Default none.
    pub log_topics: std::collections::BTreeMap<String, String>,
    /// What `log_alerts` writes: `json` (the change log's JSON) or `cap` (a
    /// CAP 1.2 message per change: Alert, then Updates that reference it).
    /// Default `json`.
    pub log_alerts_format: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8080".into(),
            store_path: "citywatch.sqlite".into(),
            credentials_path: "credentials.json".into(),
            cooldown_ms: 600_000,
            escalation_timeout_ms: 300_000,
            escalation_check_ms: 1_000,
            clock_tick_ms: 1_000,
            reveal_roles: vec!["community".into(), "analyst".into()],
            pseudonym_key: citywatch_engine::pseudonym::DEMO_KEY.into(),
            home_country_code: "86".into(),
            vault_key: None,
            audit_key: None,
            keep_numbers: true,
            cap_sender: "citywatch@localhost".into(),
            stream_buffer: 4096,
            max_body_bytes: 64 << 20,
            auth_failures_per_minute: 10,
            credentials_poll_ms: 2_000,
            time_zone: "Asia/Shanghai".into(),
            max_clock_skew_ms: 300_000,
            max_event_age_ms: 7 * 86_400_000,
            max_listed_errors: 100,
            max_concurrent_ingests: 4,
            max_connections: 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_streams_per_token: 8,
            stall_after_ms: 10_000,
            journal_path: None,
            journal_fsync: true,
            journal_retention_ms: 86_400_000,
            journal_segment_bytes: 64 << 20,
            journal_max_bytes: 1 << 30,
            log_brokers: None,
            log_topic_prefix: "citywatch.".into(),
            log_start: "earliest".into(),
            log_batch: citywatch_kafka::FEED_BATCH,
            log_alerts: false,
            log_format: "json".into(),
            log_topics: Default::default(),
            log_alerts_format: "json".into(),
        }
    }
}

impl ServerConfig {
    /// The defaults, with the store and credentials file inside `dir` (for
    /// `citywatch demo` and tests): `dir/citywatch.sqlite`, `dir/credentials.json`.
    pub fn in_dir(dir: &Path) -> ServerConfig {
        ServerConfig {
            store_path: dir.join("citywatch.sqlite"),
            credentials_path: dir.join("credentials.json"),
            ..ServerConfig::default()
        }
    }

    /// Loads a config file: TOML when the name ends in `.toml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "config file",
            path: path.to_owned(),
            source,
        })?;
        let bad = |reason: String| Error::Config { path: path.to_owned(), reason };
        let cfg: ServerConfig = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| bad(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        // Log settings are checked at load, where the file can be named.
        cfg.log_config().map_err(bad)?;
        Ok(cfg)
    }

    /// The message log's settings (`log_*`), checked: `None` without
    /// `log_brokers`; a setting that is wrong is named with what to give.
    pub fn log_config(
        &self,
    ) -> std::result::Result<Option<(citywatch_kafka::LogConfig, citywatch_kafka::StartAt)>, String> {
        let Some(brokers) = self.log_brokers.as_deref() else { return Ok(None) };
        let start = self.log_start.parse().map_err(|e: String| format!("log_start: {e}"))?;
        let pairs: Vec<String> = self.log_topics.iter().map(|(t, topic)| format!("{t}={topic}")).collect();
        let cfg = citywatch_kafka::LogConfig {
            format: self.log_format.parse().map_err(|e: String| format!("log_format: {e}"))?,
            alert_format: self.log_alerts_format.parse().map_err(|e: String| format!("log_alerts_format: {e}"))?,
            cap_sender: self.cap_sender.clone(),
            ..citywatch_kafka::LogConfig::new(brokers, &self.log_topic_prefix)
        }
        .with_topics(&pairs.join(","))
        .map_err(|e| format!("log_topics: {e}"))?;
        if cfg.brokers.is_empty() {
            return Err("log_brokers: no broker given; give host:port[,host:port...]".into());
        }
        Ok(Some((cfg, start)))
    }

    /// The engine's journal settings.
    pub fn journal_options(&self) -> citywatch_engine::journal::JournalOptions {
        let dir = self.journal_path.clone().unwrap_or_else(|| {
            let mut p = self.store_path.clone().into_os_string();
            p.push(".journal");
            PathBuf::from(p)
        });
        citywatch_engine::journal::JournalOptions {
            dir,
            fsync: self.journal_fsync,
            segment_bytes: self.journal_segment_bytes.max(1),
            retention_ms: self.journal_retention_ms,
            max_bytes: self.journal_max_bytes,
        }
    }

    /// The event times ingest accepts.
    pub(crate) fn time_bounds(&self) -> citywatch_engine::decode::TimeBounds {
        citywatch_engine::decode::TimeBounds {
            max_ahead_ms: Some(self.max_clock_skew_ms),
            max_behind_ms: (self.max_event_age_ms > 0).then_some(self.max_event_age_ms),
        }
    }

    /// The 32-byte key of the audit chain.
    pub fn audit_key_bytes(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match &self.audit_key {
            Some(k) => h.update(k.as_bytes()),
            None => {
                h.update(b"citywatch audit key v1\0");
                h.update(self.vault_key.as_deref().unwrap_or(&self.pseudonym_key).as_bytes());
            }
        }
        h.finalize().into()
    }

    /// The 32-byte vault key.
    pub(crate) fn vault_key_bytes(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match &self.vault_key {
            Some(k) => h.update(k.as_bytes()),
            None => {
                h.update(b"citywatch vault key v1\0");
                h.update(self.pseudonym_key.as_bytes());
            }
        }
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_load_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("c.toml");
        std::fs::write(&t, "addr = \"127.0.0.1:0\"\ncooldown_ms = 5\n").unwrap();
        let c = ServerConfig::load(&t).unwrap();
        assert_eq!(c.addr, "127.0.0.1:0");
        assert_eq!(c.cooldown_ms, 5);
        assert_eq!(c.escalation_timeout_ms, 300_000);
        let j = dir.path().join("c.json");
        std::fs::write(&j, r#"{"reveal_roles": ["analyst"]}"#).unwrap();
        assert_eq!(ServerConfig::load(&j).unwrap().reveal_roles, vec!["analyst".to_string()]);
        std::fs::write(&j, r#"{"adr": "x"}"#).unwrap();
        assert!(matches!(ServerConfig::load(&j), Err(Error::Config { .. })));
    }

    #[test]
    fn log_settings_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&t, text).unwrap();
            ServerConfig::load(&t)
        };
        let c = load(
            "log_brokers = \"b:9092\"\nlog_format = \"arrow\"\nlog_alerts_format = \"cap\"\n\
             [log_topics]\ncalls = \"telco.cdr\"\n",
        )
        .unwrap();
        let (log, _) = c.log_config().unwrap().unwrap();
        assert_eq!(log.topic("calls"), "telco.cdr");
        assert_eq!(log.topic("alarms"), "citywatch.alarms");
        assert_eq!(log.format, citywatch_kafka::ValueFormat::Arrow);
        assert_eq!(log.alert_format, citywatch_kafka::AlertFormat::Cap);
        for (text, says) in [
            ("log_brokers = \"b:9092\"\nlog_format = \"avro\"\n", "log_format: value format `avro`"),
            ("log_brokers = \"b:9092\"\nlog_alerts_format = \"xml\"\n", "log_alerts_format: alert format `xml`"),
            ("log_brokers = \"b:9092\"\nlog_start = \"soon\"\n", "log_start: start `soon`"),
            ("log_brokers = \"b:9092\"\n[log_topics]\nunits = \"x\"\n", "log_topics: topic `units=x`"),
            ("log_brokers = \" , \"\n", "log_brokers: no broker given"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("c.toml"), "{text}: {e}");
        }
        // Without brokers nothing of the log is read.
        assert!(load("log_format = \"arrow\"\n").unwrap().log_config().unwrap().is_none());
    }
}
