//! Scenario `window-count` (peer workload, `shared/bench-workloads/window-count`):
//! events per (cell, 60 s tumbling event-time window aligned to the epoch).
//!
//! Measures the keyed windowed count ([`WindowCount`]) end to end: reading the
//! generator's CSV (`ts_ms,phone,cell,kind`) or the same rows as Parquet,
//! interning cell names to 64-bit ids on the reader thread, the watermark
//! (largest `ts_ms` seen minus 5 s), the exchange by cell, the count, and
//! writing `cell,window_start_ms,count` sorted as `ref.py` does. 1,000,000 rows,
//! 200 cells: a small key space, so this is mostly input speed.

use std::path::Path;

use citywatch_engine::EventTime;
use citywatch_operators::fxhash::FxHashMap;
use citywatch_operators::{Tumbling, WindowCount, WindowKey};
use timely::dataflow::StreamVec;

use crate::csv::for_each_row;
use crate::error::BenchError;
use crate::replay::{Feeder, Replay, ReplayStats, run};
use crate::table::{event_ts, for_each_batch, int64, utf8};
use crate::{Format, Summary, write_lines};

/// The generator's header.
pub const HEADER: &str = "ts_ms,phone,cell,kind";
/// Window width.
pub const WINDOW_MS: u64 = 60_000;
/// Out-of-order bound of the watermark.
pub const BOUND_MS: u64 = 5_000;

/// One event as the dataflow sees it: (event time ms, cell id).
type Row = (EventTime, u64);

/// The dataflow: count per cell and window.
fn build<'s>(rows: StreamVec<'s, EventTime, Row>, windows: &Tumbling) -> StreamVec<'s, EventTime, (WindowKey, u64)> {
    rows.window_count("CellWindowCount", windows, |r: &Row| (r.1, r.0))
}

/// Cell names interned to dense ids, in order of first appearance.
#[derive(Debug, Default)]
struct Cells {
    ids: FxHashMap<Box<[u8]>, u64>,
    names: Vec<String>,
}

impl Cells {
    #[inline]
    fn id(&mut self, name: &[u8]) -> u64 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u64;
        self.ids.insert(name.into(), id);
        self.names.push(String::from_utf8_lossy(name).into_owned());
        id
    }
}

fn read_csv(path: &Path, feeder: &mut Feeder<Row>) -> Result<Cells, BenchError> {
    let mut cells = Cells::default();
    for_each_row(path, HEADER, |c| {
        let (Some(ts), Some(_phone), Some(cell), Some(_kind)) = (c.u64(), c.bytes(), c.bytes(), c.bytes_last()) else {
            return Ok(false);
        };
        feeder.push(ts, (ts, cells.id(cell)))?;
        Ok(true)
    })?;
    Ok(cells)
}

fn read_parquet(path: &Path, feeder: &mut Feeder<Row>) -> Result<Cells, BenchError> {
    let mut cells = Cells::default();
    for_each_batch(path, |batch| {
        let ts = int64(path, batch, "ts_ms")?;
        let cell = utf8(path, batch, "cell")?;
        for (ts, cell) in ts.values().iter().zip(cell.iter()) {
            let ts = event_ts(path, *ts, "ts_ms")?;
            feeder.push(ts, (ts, cells.id(cell.unwrap_or_default().as_bytes())))?;
        }
        Ok(())
    })?;
    Ok(cells)
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
    let (counts, cells, stats): (_, Cells, ReplayStats) = match format {
        Format::Csv => run(replay, |f| read_csv(input, f), build)?,
        Format::Parquet => run(replay, |f| read_parquet(input, f), build)?,
    };
    let mut rows: Vec<(&str, u64, u64)> =
        counts.iter().map(|(wk, n)| (cells.names[wk.key as usize].as_str(), wk.window_start_ms, *n)).collect();
    rows.sort_unstable();
    write_lines(
        output,
        "cell,window_start_ms,count",
        rows.iter().map(|(cell, start, n)| format!("{cell},{start},{n}")),
    )?;
    Ok(Summary { stats, output_rows: rows.len(), elapsed: start.elapsed() })
}
