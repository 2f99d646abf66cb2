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
use std::sync::Arc;

use citywatch_engine::EventTime;
use citywatch_operators::{Tumbling, WindowFold, WindowKey};
use timely::dataflow::StreamVec;

use crate::error::BenchError;
use crate::replay::{Replay, Source, run};
use crate::table::{digits, event_ts, int64, uint32};
use crate::{Format, Input, Options, Summary, write_lines};

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

/// The calls of a CSV or Parquet input, piece by piece.
#[derive(Debug)]
struct Calls(Input);

impl Source for Calls {
    type Row = Call;
    type Scratch = Vec<u8>;

    fn pieces(&self) -> usize {
        self.0.pieces()
    }

    fn read(&self, piece: usize, buf: &mut Vec<u8>, rows: &mut Vec<Call>) -> Result<(), BenchError> {
        match &self.0 {
            Input::Csv(csv) => csv.for_each_row(piece, buf, |c| {
                let (Some(ts_ms), Some(caller), Some(callee), Some(duration_s)) =
                    (c.u64(), c.canonical_u64(), c.canonical_u64(), c.u64_last())
                else {
                    return Ok(false);
                };
                let Ok(duration_s) = u32::try_from(duration_s) else { return Ok(false) };
                rows.push(Call { ts_ms, caller, callee, duration_s });
                Ok(true)
            }),
            Input::Parquet(parquet) => parquet.for_each_batch(piece, |batch| {
                let path = parquet.path();
                let ts = int64(path, batch, "ts_ms")?;
                let caller = digits(path, batch, "caller")?;
                let callee = digits(path, batch, "callee")?;
                let duration = uint32(path, batch, "duration_s")?;
                let bad = |col: &str, v: String| {
                    BenchError::input(
                        path,
                        format!("column {col}"),
                        format!("expected digits without a leading zero, found `{v}`"),
                    )
                };
                rows.reserve(batch.num_rows());
                for i in 0..batch.num_rows() {
                    let ts_ms = event_ts(path, ts.value(i), "ts_ms")?;
                    let caller = caller.value(i).ok_or_else(|| bad("caller", caller.text(i)))?;
                    let callee = callee.value(i).ok_or_else(|| bad("callee", callee.text(i)))?;
                    rows.push(Call { ts_ms, caller, callee, duration_s: duration.value(i) });
                }
                Ok(())
            }),
        }
    }

    fn event_ts_ms(c: &Call) -> EventTime {
        c.ts_ms
    }
}

/// Runs the scenario on `input` (CSV or Parquet) and writes `output`.
pub fn run_scenario(input: &Path, output: &Path, format: Format, options: &Options) -> Result<Summary, BenchError> {
    let replay = Replay { workers: options.workers, bound_ms: BOUND_MS, window_ms: WINDOW_MS };
    let start = std::time::Instant::now();
    let calls = Calls(Input::open(input, format, HEADER, &["ts_ms", "caller", "callee", "duration_s"], options)?);
    let (found, stats) = run(replay, Arc::new(calls), build)?;
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
