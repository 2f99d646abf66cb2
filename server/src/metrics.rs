//! Prometheus text metrics: events in, rejected rows, late events, alerts by
//! model, stream pushes and the ingest-to-push latency histogram.
//!
//! Ingest-to-push latency is measured for alerts fired by an ingested event:
//! ingest remembers the wall instant it first accepted an event with a given
//! `ts_ms` (a bounded FIFO index), and when the store pushes a new alert whose
//! `event_ts_ms` is in that index, the difference is observed. Alerts fired by
//! a deadline in a quiet period (no matching event) are not observed: there is
//! no ingest to measure from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use citywatch_engine::contract::Table;

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 5.0];
/// How many event times the latency index remembers.
const INDEX_CAP: usize = 1 << 20;

fn table_index(t: Table) -> usize {
    match t {
        Table::Calls => 0,
        Table::Alarms => 1,
        _ => 2,
    }
}

#[derive(Debug, Default)]
struct IngestIndex {
    at: HashMap<i64, Instant>,
    order: VecDeque<i64>,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    events_in: [AtomicU64; 3],
    rejected: [AtomicU64; 3],
    late: AtomicU64,
    bad_requests: AtomicU64,
    unauthorized: AtomicU64,
    throttled: AtomicU64,
    busy: AtomicU64,
    pushes: AtomicU64,
    escalations: AtomicU64,
    alerts_by_model: Mutex<BTreeMap<String, u64>>,
    latency_counts: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    index: Mutex<IngestIndex>,
}

impl Metrics {
    /// Remembers when events with these times were ingested (first time wins).
    pub fn note_ingest_times(&self, event_times: impl Iterator<Item = i64>) {
        let now = Instant::now();
        if let Ok(mut idx) = self.index.lock() {
            for ts in event_times {
                if let std::collections::hash_map::Entry::Vacant(v) = idx.at.entry(ts) {
                    v.insert(now);
                    idx.order.push_back(ts);
                }
            }
            while idx.order.len() > INDEX_CAP {
                if let Some(old) = idx.order.pop_front() {
                    idx.at.remove(&old);
                }
            }
        }
    }

    /// Counts the accepted events of a request and the late ones among them.
    pub fn ingested(&self, table: Table, events: u64, late: u64) {
        self.events_in[table_index(table)].fetch_add(events, Relaxed);
        self.late.fetch_add(late, Relaxed);
    }

    /// Counts rejected rows of a refused request.
    pub fn rejected(&self, table: Table, rows: u64) {
        self.rejected[table_index(table)].fetch_add(rows, Relaxed);
        self.bad_requests.fetch_add(1, Relaxed);
    }

    /// Counts a request refused for a missing or bad token.
    pub fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Relaxed);
    }

    /// Counts a request refused because its address is over the failed-authentication limit.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Counts an ingest request refused (503) because every ingest slot was taken.
    pub fn busy(&self) {
        self.busy.fetch_add(1, Relaxed);
    }

    /// Counts escalations.
    pub fn escalated(&self, n: u64) {
        self.escalations.fetch_add(n, Relaxed);
    }

    /// Records a pushed change; for new alerts, counts the model and observes latency.
    pub fn pushed(&self, change: &str, model: &str, event_ts_ms: i64) {
        self.pushes.fetch_add(1, Relaxed);
        if change != "new" {
            return;
        }
        if let Ok(mut m) = self.alerts_by_model.lock() {
            *m.entry(model.to_owned()).or_default() += 1;
        }
        let at = self.index.lock().ok().and_then(|i| i.at.get(&event_ts_ms).copied());
        if let Some(at) = at {
            let secs = at.elapsed().as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    self.latency_counts[i].fetch_add(1, Relaxed);
                }
            }
            self.latency_count.fetch_add(1, Relaxed);
            self.latency_sum_us.fetch_add((secs * 1e6) as u64, Relaxed);
        }
    }

    /// The Prometheus text exposition, with the given gauges `(name, help, value)` first.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut s = String::new();
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let tables = ["calls", "alarms", "patrols"];
        let _ = writeln!(
            s,
            "# HELP citywatch_events_in_total Events accepted at ingest.\n# TYPE citywatch_events_in_total counter"
        );
        for (i, t) in tables.iter().enumerate() {
            let _ = writeln!(s, "citywatch_events_in_total{{table=\"{t}\"}} {}", self.events_in[i].load(Relaxed));
        }
        let _ = writeln!(
            s,
            "# HELP citywatch_rejected_rows_total Rows refused at ingest.\n# TYPE citywatch_rejected_rows_total counter"
        );
        for (i, t) in tables.iter().enumerate() {
            let _ = writeln!(s, "citywatch_rejected_rows_total{{table=\"{t}\"}} {}", self.rejected[i].load(Relaxed));
        }
        let counters = [
            ("citywatch_late_events_total", "Events later than the allowed lateness.", &self.late),
            ("citywatch_rejected_requests_total", "Ingest requests refused for bad rows.", &self.bad_requests),
            ("citywatch_unauthorized_total", "Requests refused for a missing or bad token.", &self.unauthorized),
            (
                "citywatch_auth_throttled_total",
                "Requests refused (429) for too many failed authentications from one address.",
                &self.throttled,
            ),
            ("citywatch_ingest_busy_total", "Ingest requests refused (503) because the engine was behind.", &self.busy),
            ("citywatch_pushes_total", "Alert changes pushed to streams.", &self.pushes),
            ("citywatch_escalations_total", "Alerts escalated one level up.", &self.escalations),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        let _ =
            writeln!(s, "# HELP citywatch_alerts_total New alerts by model.\n# TYPE citywatch_alerts_total counter");
        if let Ok(m) = self.alerts_by_model.lock() {
            for (model, n) in m.iter() {
                let model = model.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(s, "citywatch_alerts_total{{model=\"{model}\"}} {n}");
            }
        }
        let name = "citywatch_ingest_to_push_seconds";
        let _ = writeln!(s, "# HELP {name} Wall time from ingest of an event to the push of the alert it fired.");
        let _ = writeln!(s, "# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {}", self.latency_counts[i].load(Relaxed));
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{name}_sum {}", self.latency_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(s, "{name}_count {count}");
        s
    }
}
