//! What a run did, for people (printed) and tools (`summary.json`).
//!
//! `summary.json` holds only what the input determines (rows, rejects, late
//! events, alerts), so it is byte-identical across worker counts and runs like
//! the alerts; wall time and throughput go to `run.json` and the terminal.

use std::collections::BTreeMap;
use std::fmt;

/// Rows read and rejected in one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableCounts {
    /// Rows read (good and bad).
    pub read: u64,
    /// Rows rejected to `rejected.ndjson`.
    pub rejected: u64,
}

/// One frequent rejection reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReasonCount {
    /// Table.
    pub table: String,
    /// Column (empty when the row as a whole).
    pub column: String,
    /// Reason code.
    pub code: String,
    /// Rows.
    pub count: u64,
}

/// The deterministic part of a run's summary (`summary.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Per table: rows read and rejected.
    pub tables: BTreeMap<String, TableCounts>,
    /// The most frequent rejection reasons.
    pub top_reject_reasons: Vec<ReasonCount>,
    /// Stream events that entered the dataflow.
    pub events: u64,
    /// Of which arrived later than the allowed lateness (processed, marked late).
    pub late_events: u64,
    /// Allowed lateness, ms.
    pub lateness_ms: u64,
    /// First and last event time seen (ms since the epoch).
    pub event_time_range_ms: Option<(u64, u64)>,
    /// Alerts per model and kind.
    pub alerts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Total alerts.
    pub alerts_total: u64,
    /// Alerts that repeated another's id (same model, kind, subject and time)
    /// and were folded into it.
    pub duplicate_alerts_folded: u64,
    /// Models run, with versions.
    pub models: Vec<(String, String)>,
}

/// The timing of a run (`run.json`): depends on the machine, not only the input.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// Wall time of the whole run, seconds (reading, dataflow, writing).
    pub wall_s: f64,
    /// Stream events per wall second.
    pub events_per_s: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<20} {:>12} {:>10}", "table", "rows read", "rejected")?;
        for (t, c) in &self.tables {
            writeln!(f, "{:<20} {:>12} {:>10}", t, c.read, c.rejected)?;
        }
        if !self.top_reject_reasons.is_empty() {
            writeln!(f, "top reasons for rejected rows (details in rejected.ndjson):")?;
            for r in &self.top_reject_reasons {
                let col = if r.column.is_empty() { String::new() } else { format!(".{}", r.column) };
                writeln!(f, "  {:>8}  {}{}: {}", r.count, r.table, col, r.code)?;
            }
        }
        writeln!(f, "events {}  late {} (lateness {} ms)", self.events, self.late_events, self.lateness_ms)?;
        if let Some((a, b)) = self.event_time_range_ms {
            writeln!(
                f,
                "event time {} .. {}",
                crate::lateness::utc_short(a as i64),
                crate::lateness::utc_short(b as i64)
            )?;
        }
        writeln!(f, "alerts {}", self.alerts_total)?;
        if self.duplicate_alerts_folded > 0 {
            writeln!(
                f,
                "  ({} duplicate alerts folded into the first with the same id)",
                self.duplicate_alerts_folded
            )?;
        }
        for (m, kinds) in &self.alerts {
            for (k, n) in kinds {
                writeln!(f, "  {:>8}  {m} / {k}", n)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wall {:.2} s, {:.0} events/s ({} worker(s) x {} process(es))",
            self.wall_s, self.events_per_s, self.workers, self.processes
        )
    }
}
