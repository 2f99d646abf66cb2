//! Scenario `fanout` (peer workload, `shared/bench-workloads/fanout`, the
//! fraud-shaped one): for each caller and 10-minute tumbling event-time window
//! aligned to the epoch, distinct callees, calls and short calls (< 30 s),
//! emitted where distinct callees >= 20.
//!
//! Measures the keyed windowed fold with a distinct set
//! ([`WindowFold::window_fold_distinct`], the pass a fraud model uses for caller
//! fan-out and short-call share) end to end: reading the generator's CSV
//! (`ts_ms,caller,callee,duration_s`) or the same rows as Parquet, the watermark
//! (largest `ts_ms` seen minus 5 s), the exchange by caller, three counters and a
//! distinct set in one pass, and writing
//! `caller,window_start_ms,distinct_callees,calls,short_calls` sorted as `ref.py`
//! does. 2,000,000 rows, 200,050 callers: ~1.5 M (caller, window) states.

use std::path::Path;

use citywatch_engine::EventTime;
use citywatch_operators::{Tumbling, WindowFold, WindowKey};
use timely::dataflow::StreamVec;

use crate::csv::{for_each_row, parse_u64};
use crate::error::BenchError;
use crate::replay::{Feeder, Replay, run};
use crate::table::{event_ts, for_each_batch, int64, uint32, utf8};
use crate::{Format, Summary, write_lines};

/// The generator's header.
pub const HEADER: &str = "ts_ms,caller,callee,duration_s";
/// Window width.
pub const WINDOW_MS: u64 = 600_000;
/// Out-of-order bound of the watermark.
pub const BOUND_MS: u64 = 5_000;
/// Fewest distinct callees for a window to be reported.
pub const MIN_DISTINCT: u32 = 20;
/// Calls shorter than this many seconds are short.
pub const SHORT_S: u32 = 30;

/// One call as the dataflow sees it. Phone numbers are the number's digits as
/// an integer (the workload's numbers have 11 digits and no leading zero).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Call {
    /// Event time, ms since the epoch.
    pub ts_ms: EventTime,
    /// Caller number.
    pub caller: u64,
    /// Callee number.
    pub callee: u64,
    /// Talk time, s.
    pub duration_s: u32,
}

/// Per caller and window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fanout {
    /// Distinct callees.
    pub distinct_callees: u32,
    /// Calls.
    pub calls: u32,
    /// Calls shorter than [`SHORT_S`].
    pub short_calls: u32,
}

/// The dataflow: one fold with a distinct set, filtered at emission.
fn build<'s>(
    calls: StreamVec<'s, EventTime, Call>,
    windows: &Tumbling,
) -> StreamVec<'s, EventTime, (WindowKey, Fanout)> {
    calls.window_fold_distinct(
        "CallerFanout",
        windows,
        |c: &Call| (c.caller, c.ts_ms),
        |c: &Call| c.callee,
        |acc: &mut Fanout, c: &Call, first_callee: bool| {
            acc.distinct_callees += u32::from(first_callee);
            acc.calls += 1;
            acc.short_calls += u32::from(c.duration_s < SHORT_S);
        },
        |wk, acc| (acc.distinct_callees >= MIN_DISTINCT).then_some((wk, *acc)),
    )
}

/// A phone number's digits as an integer; `None` unless it prints back the same.
#[inline]
fn number(digits: &[u8]) -> Option<u64> {
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    parse_u64(digits)
}

fn read_csv(path: &Path, feeder: &mut Feeder<Call>) -> Result<(), BenchError> {
    for_each_row(path, HEADER, |c| {
        let (Some(ts_ms), Some(caller), Some(callee), Some(duration_s)) =
            (c.u64(), c.canonical_u64(), c.canonical_u64(), c.u64_last())
        else {
            return Ok(false);
        };
        let Ok(duration_s) = u32::try_from(duration_s) else { return Ok(false) };
        feeder.push(ts_ms, Call { ts_ms, caller, callee, duration_s })?;
        Ok(true)
    })
}

fn read_parquet(path: &Path, feeder: &mut Feeder<Call>) -> Result<(), BenchError> {
    for_each_batch(path, |batch| {
        let ts = int64(path, batch, "ts_ms")?;
        let caller = utf8(path, batch, "caller")?;
        let callee = utf8(path, batch, "callee")?;
        let duration = uint32(path, batch, "duration_s")?;
        for i in 0..batch.num_rows() {
            let bad = |col: &str, v: &str| {
                BenchError::input(
                    path,
                    format!("column {col}"),
                    format!("expected digits without a leading zero, found `{v}`"),
                )
            };
            let ts_ms = event_ts(path, ts.value(i), "ts_ms")?;
            let caller = number(caller.value(i).as_bytes()).ok_or_else(|| bad("caller", caller.value(i)))?;
            let callee = number(callee.value(i).as_bytes()).ok_or_else(|| bad("callee", callee.value(i)))?;
            feeder.push(ts_ms, Call { ts_ms, caller, callee, duration_s: duration.value(i) })?;
        }
        Ok(())
    })
}

/// Runs the scenario on `input` (CSV or Parquet) and writes `output`.
pub fn run_scenario(
    input: &Path,
    output: &Path,
    format: Format,
    workers: usize,
    batch_rows: usize,
) -> Result<Summary, BenchError> {
    let replay = Replay { workers, bound_ms: BOUND_MS, window_ms: WINDOW_MS, batch_rows };
    let start = std::time::Instant::now();
    let (found, (), stats) = match format {
        Format::Csv => run(replay, |f| read_csv(input, f), build)?,
        Format::Parquet => run(replay, |f| read_parquet(input, f), build)?,
    };
    // ref.py sorts callers as strings.
    let mut rows: Vec<(String, u64, Fanout)> =
        found.into_iter().map(|(wk, acc)| (wk.key.to_string(), wk.window_start_ms, acc)).collect();
    rows.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    write_lines(
        output,
        "caller,window_start_ms,distinct_callees,calls,short_calls",
        rows.iter()
            .map(|(caller, start, a)| format!("{caller},{start},{},{},{}", a.distinct_callees, a.calls, a.short_calls)),
    )?;
    Ok(Summary { stats, output_rows: rows.len(), elapsed: start.elapsed() })
}
