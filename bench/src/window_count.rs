//! Scenario `window-count` (peer workload, `shared/bench-workloads/window-count`):
//! events per (cell, 60 s tumbling event-time window aligned to the epoch).
//!
//! Measures the keyed windowed count ([`WindowCount`]) end to end: reading the
//! generator's CSV (`ts_ms,phone,cell,kind`) or the same rows as Parquet,
//! cell names as 64-bit keys, the watermark
//! (largest `ts_ms` seen minus 5 s), the exchange by cell, the count, and
//! writing `cell,window_start_ms,count` sorted as `ref.py` does. 1,000,000 rows,
//! 200 cells: a small key space, so this is mostly input speed.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use citywatch_engine::EventTime;
use citywatch_operators::fxhash::FxHashMap;
use citywatch_operators::{Tumbling, WindowCount, WindowKey};
use timely::dataflow::StreamVec;

use crate::error::BenchError;
use crate::replay::{Replay, Source, run};
use crate::table::{event_ts, int64, utf8};
use crate::{Format, Input, Options, Summary, write_lines};

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

/// Cell names as 64-bit keys, the same on every worker. A name of up to 7 bytes
/// is its own key (its bytes and its length: no table, no lock, and any worker
/// derives the same key); a longer name gets the next number from a table shared
/// by the workers (keys with the top byte 0xFF; slower, but the workload's cells,
/// `c000` to `c199`, never need it). Keys only route and group: the output is
/// sorted by name.
#[derive(Debug, Default)]
struct Cells {
    long: Mutex<FxHashMap<Box<[u8]>, u64>>,
}

/// The top byte of a long name's key (a short name's top byte is its length, < 8).
const LONG: u64 = 0xFF << 56;

impl Cells {
    #[inline]
    fn key(&self, name: &[u8]) -> u64 {
        if name.len() < 8 {
            let mut word = [0u8; 8];
            word[..name.len()].copy_from_slice(name);
            word[7] = name.len() as u8;
            return u64::from_le_bytes(word);
        }
        let mut long = self.long.lock().unwrap_or_else(PoisonError::into_inner);
        let next = LONG | long.len() as u64;
        *long.entry(name.into()).or_insert(next)
    }

    /// The name behind `key`.
    fn name(&self, key: u64) -> String {
        if key & LONG == LONG {
            let long = self.long.lock().unwrap_or_else(PoisonError::into_inner);
            let name = long.iter().find(|(_, k)| **k == key).map(|(n, _)| &n[..]).unwrap_or_default();
            return String::from_utf8_lossy(name).into_owned();
        }
        let word = key.to_le_bytes();
        String::from_utf8_lossy(&word[..usize::from(word[7])]).into_owned()
    }
}

/// The events of a CSV or Parquet input, piece by piece.
#[derive(Debug)]
struct Events {
    input: Input,
    cells: Cells,
}

impl Source for Events {
    type Row = Row;
    type Scratch = Vec<u8>;

    fn pieces(&self) -> usize {
        self.input.pieces()
    }

    fn read(&self, piece: usize, buf: &mut Vec<u8>, rows: &mut Vec<Row>) -> Result<(), BenchError> {
        match &self.input {
            Input::Csv(csv) => csv.for_each_row(piece, buf, |c| {
                let (Some(ts), Some(_phone), Some(cell), Some(_kind)) = (c.u64(), c.bytes(), c.bytes(), c.bytes_last())
                else {
                    return Ok(false);
                };
                rows.push((ts, self.cells.key(cell)));
                Ok(true)
            }),
            Input::Parquet(parquet) => parquet.for_each_batch(piece, |batch| {
                let path = parquet.path();
                let ts = int64(path, batch, "ts_ms")?;
                let cell = utf8(path, batch, "cell")?;
                rows.reserve(batch.num_rows());
                for (ts, cell) in ts.values().iter().zip(cell.iter()) {
                    let ts = event_ts(path, *ts, "ts_ms")?;
                    rows.push((ts, self.cells.key(cell.unwrap_or_default().as_bytes())));
                }
                Ok(())
            }),
        }
    }

    fn event_ts_ms(row: &Row) -> EventTime {
        row.0
    }
}

/// Runs the scenario on `input` (CSV or Parquet) and writes `output`.
pub fn run_scenario(input: &Path, output: &Path, format: Format, options: &Options) -> Result<Summary, BenchError> {
    let replay = Replay { workers: options.workers, bound_ms: BOUND_MS, window_ms: WINDOW_MS };
    let start = std::time::Instant::now();
    let events = Arc::new(Events {
        input: Input::open(input, format, HEADER, &["ts_ms", "cell"], options)?,
        cells: Cells::default(),
    });
    let (counts, stats) = run(replay, Arc::clone(&events), build)?;
    let mut rows: Vec<(String, u64, u64)> =
        counts.iter().map(|(wk, n)| (events.cells.name(wk.key), wk.window_start_ms, *n)).collect();
    rows.sort_unstable();
    write_lines(
        output,
        "cell,window_start_ms,count",
        rows.iter().map(|(cell, start, n)| format!("{cell},{start},{n}")),
    )?;
    Ok(Summary { stats, output_rows: rows.len(), elapsed: start.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_keys_are_distinct_and_give_the_name_back() {
        let cells = Cells::default();
        let names = ["", "c", "c057", "c0570", "abcdefg", "abcdefgh", "a longer cell name", "c057\0"];
        let keys: Vec<u64> = names.iter().map(|n| cells.key(n.as_bytes())).collect();
        for (i, (name, key)) in names.iter().zip(&keys).enumerate() {
            assert_eq!(cells.name(*key), *name);
            assert_eq!(cells.key(name.as_bytes()), *key, "the same key again");
            assert!(keys[..i].iter().all(|k| k != key), "{name} shares a key");
        }
    }
}
