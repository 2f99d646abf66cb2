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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
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
    /// The latest event time accepted at ingest (ms; 0 before the first event).
    event_clock_ms: AtomicI64,
    /// Rejected rows by `(table, column, code)`: the health page's top reasons.
    reasons: Mutex<BTreeMap<(&'static str, String, String), u64>>,
    /// New alerts per wall-clock minute and model, the last [`MINUTES`] minutes.
    per_minute: Mutex<VecDeque<(i64, BTreeMap<String, u64>)>>,
}

/// Minutes of alert history the health page shows.
pub const MINUTES: usize = 60;
/// Most distinct rejection reasons kept (the rest are counted under `other`).
const MAX_REASONS: usize = 1000;

/// A table's name as the health figures spell it.
fn table_name(i: usize) -> &'static str {
    ["calls", "alarms", "patrols"][i]
}

/// Requests refused, by reason: the live service logs their change once a
/// minute instead of a line per refusal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Missing or bad token (401).
    pub unauthorized: u64,
    /// Over the failed-authentication limit (429).
    pub throttled: u64,
    /// Engine behind, every ingest slot taken (503).
    pub busy: u64,
    /// Ingest requests refused for bad rows (400).
    pub bad_requests: u64,
    /// The bad rows of those requests.
    pub rejected_rows: u64,
}

impl Refusals {
    /// The refusals since `earlier`, or `None` when there were none.
    pub fn since(&self, earlier: &Refusals) -> Option<Refusals> {
        let d = Refusals {
            unauthorized: self.unauthorized.saturating_sub(earlier.unauthorized),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            busy: self.busy.saturating_sub(earlier.busy),
            bad_requests: self.bad_requests.saturating_sub(earlier.bad_requests),
            rejected_rows: self.rejected_rows.saturating_sub(earlier.rejected_rows),
        };
        (d != Refusals::default()).then_some(d)
    }
}

impl Metrics {
    /// Remembers when events with these times were ingested (first time wins).
    pub fn note_ingest_times(&self, event_times: impl Iterator<Item = i64>) {
        let now = Instant::now();
        let mut latest = i64::MIN;
        if let Ok(mut idx) = self.index.lock() {
            for ts in event_times {
                latest = latest.max(ts);
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
        self.event_clock_ms.fetch_max(latest, Relaxed);
    }

    /// The latest event time ingested so far (the console's clock for ages), if any.
    pub fn event_clock_ms(&self) -> Option<i64> {
        Some(self.event_clock_ms.load(Relaxed)).filter(|&t| t > 0)
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

    /// Counts rejected rows by column and code (the rows themselves are counted by [`Metrics::rejected`]).
    pub fn rejected_reasons<'a>(
        &self,
        table: Table,
        reasons: impl IntoIterator<Item = (Option<&'a str>, &'a str, u64)>,
    ) {
        let t = table_name(table_index(table));
        if let Ok(mut m) = self.reasons.lock() {
            for (column, code, rows) in reasons {
                let full = m.len() >= MAX_REASONS;
                let key = (t, column.unwrap_or("-").to_owned(), code.to_owned());
                let key = if full && !m.contains_key(&key) { (t, "-".to_owned(), "other".to_owned()) } else { key };
                *m.entry(key).or_default() += rows;
            }
        }
    }

    /// Counts a request refused for a missing or bad token.
    pub fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Relaxed);
    }

    /// Counts a request refused because its address is over the failed-authentication limit.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Requests refused so far, by reason (see [`Refusals::since`]).
    pub fn refusals(&self) -> Refusals {
        Refusals {
            unauthorized: self.unauthorized.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            busy: self.busy.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            rejected_rows: self.rejected.iter().map(|c| c.load(Relaxed)).sum(),
        }
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
        let minute = crate::http::now_ms().div_euclid(60_000);
        if let Ok(mut q) = self.per_minute.lock() {
            if q.back().is_none_or(|(m, _)| *m != minute) {
                q.push_back((minute, BTreeMap::new()));
            }
            while q.front().is_some_and(|(m, _)| *m <= minute - MINUTES as i64) {
                q.pop_front();
            }
            if let Some((_, counts)) = q.back_mut() {
                *counts.entry(model.to_owned()).or_default() += 1;
            }
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

    /// The figures of the console's pipeline health page (see `GET /api/v1/health`):
    /// counters by table, late rows, the top rejection reasons, and new alerts
    /// per minute and model over the last [`MINUTES`] minutes ending at `now_ms`.
    pub fn health(&self, now_ms: i64) -> serde_json::Value {
        let by_table = |c: &[AtomicU64; 3]| {
            (0..3)
                .map(|i| (table_name(i).to_owned(), serde_json::json!(c[i].load(Relaxed))))
                .collect::<serde_json::Map<_, _>>()
        };
        let mut reasons: Vec<_> =
            self.reasons.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<_> = reasons
            .iter()
            .take(10)
            .map(|((t, c, code), n)| serde_json::json!({"table": t, "column": c, "code": code, "rows": n}))
            .collect();
        let last = now_ms.div_euclid(60_000);
        let first = last - MINUTES as i64 + 1;
        let mut models: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        if let Ok(q) = self.per_minute.lock() {
            for (minute, counts) in q.iter().filter(|(m, _)| *m >= first && *m <= last) {
                for (model, n) in counts {
                    models.entry(model.clone()).or_insert_with(|| vec![0; MINUTES])[(minute - first) as usize] += n;
                }
            }
        }
        serde_json::json!({
            "events_in": by_table(&self.events_in),
            "rejected_rows": by_table(&self.rejected),
            "late": self.late.load(Relaxed),
            "rejected_requests": self.bad_requests.load(Relaxed),
            "top_reasons": top,
            "alerts_total": self.alerts_by_model.lock().map(|m| serde_json::json!(*m)).unwrap_or_default(),
            "alerts_per_minute": {"first_minute_ms": first * 60_000, "models": models},
            "pushes": self.pushes.load(Relaxed),
            "escalations": self.escalations.load(Relaxed),
            "event_ms": self.event_clock_ms(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_since_counts_only_what_changed_and_nothing_is_none() {
        let m = Metrics::default();
        let start = m.refusals();
        assert_eq!(m.refusals().since(&start), None, "nothing refused: no log line");
        m.unauthorized();
        m.unauthorized();
        m.busy();
        m.rejected(Table::Alarms, 7);
        m.rejected(Table::Calls, 3);
        let d = m.refusals().since(&start).expect("refusals");
        assert_eq!(d, Refusals { unauthorized: 2, throttled: 0, busy: 1, bad_requests: 2, rejected_rows: 10 });
        let mid = m.refusals();
        m.throttled();
        assert_eq!(m.refusals().since(&mid), Some(Refusals { throttled: 1, ..Refusals::default() }));
    }
}
