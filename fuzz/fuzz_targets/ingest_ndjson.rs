//! Fuzzes the live ingest decoder with ndjson bodies: any bytes, for each
//! stream table, must give events or a refusal, never a panic, and never
//! more memory than the body bounds (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use std::sync::OnceLock;

use citywatch_engine::contract::Table;
use citywatch_server::ingest::Ingest;
use libfuzzer_sys::fuzz_target;

fn ingest() -> &'static Ingest {
    static INGEST: OnceLock<std::sync::Arc<Ingest>> = OnceLock::new();
    INGEST.get_or_init(|| {
        let cfg = citywatch_server::ServerConfig { max_event_age_ms: 0, ..Default::default() };
        Ingest::new(&cfg, Default::default())
    })
}

fuzz_target!(|body: &[u8]| {
    for table in [Table::Calls, Table::Alarms, Table::Patrols] {
        let _ = ingest().decode(table, body, false);
    }
});
