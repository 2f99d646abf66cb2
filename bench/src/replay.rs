//! The replay driver shared by the scenarios: one reader thread (the caller's)
//! parses or decodes the input and feeds timely workers; the watermark rule of the
//! peer workloads; the output collected from every worker.
//!
//! - **Distribution**: non-late row `i` goes to worker `i % workers`; the
//!   operators exchange by key themselves.
//! - **Watermark**: the largest `ts_ms` seen so far minus the out-of-order bound.
//!   A row whose window already ended at or before the watermark (before the row)
//!   is late: counted and dropped, exactly as the workloads' `ref.py` does.
//! - **Time**: every `batch_rows` rows, each worker gets its share of the batch,
//!   sent at its input's current time (the previous batch's watermark, at most
//!   the event time of any on-time row), and then advances its input to the
//!   watermark after the batch. So timely handles one timestamp per batch, and a
//!   window is emitted once the watermark has passed its end.
//! - **Workers** block on their channel between batches (timely workers that
//!   spin would take the reader's core on a 2-core machine).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use citywatch_engine::EventTime;
use citywatch_operators::Tumbling;
use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Inspect;
use timely::dataflow::{InputHandle, StreamVec};

use crate::error::BenchError;

/// How a scenario replays its input.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// Timely worker threads.
    pub workers: usize,
    /// Out-of-order bound: the watermark is the largest event time seen minus this.
    pub bound_ms: u64,
    /// Tumbling window width (also decides which rows are late).
    pub window_ms: u64,
    /// Rows between watermark advances (all workers together).
    pub batch_rows: usize,
}

/// Counts of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Rows read.
    pub rows: u64,
    /// Rows dropped as late by the watermark rule (the workloads have none).
    pub late: u64,
    /// Records the window operators dropped as late (0 unless the driver is wrong).
    pub operator_late: u64,
}

/// One worker's share of a batch and the watermark after it.
#[derive(Debug)]
struct Batch<R> {
    rows: Vec<R>,
    watermark: EventTime,
}

/// The reader's handle: push rows in input order.
#[derive(Debug)]
pub struct Feeder<R> {
    senders: Vec<SyncSender<Batch<R>>>,
    pending: Vec<Vec<R>>,
    next_worker: usize,
    in_batch: usize,
    max_ts: Option<EventTime>,
    stats: ReplayStats,
    replay: Replay,
}

impl<R> Feeder<R> {
    /// Feeds one row with event time `ts_ms`; applies the watermark rule.
    #[inline]
    pub fn push(&mut self, ts_ms: EventTime, row: R) -> Result<(), BenchError> {
        self.stats.rows += 1;
        match self.max_ts {
            Some(max_ts) if ts_ms < max_ts => {
                // Only a row below the watermark can be late (its window ends after it);
                // the division is paid for those rows only.
                let watermark = max_ts.saturating_sub(self.replay.bound_ms);
                let width = self.replay.window_ms;
                if ts_ms < watermark && ts_ms - ts_ms % width + width <= watermark {
                    self.stats.late += 1;
                    return Ok(());
                }
            }
            _ => self.max_ts = Some(ts_ms),
        }
        self.pending[self.next_worker].push(row);
        self.next_worker += 1;
        if self.next_worker == self.pending.len() {
            self.next_worker = 0;
        }
        self.in_batch += 1;
        if self.in_batch >= self.replay.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends every worker its pending rows and the current watermark.
    fn flush(&mut self) -> Result<(), BenchError> {
        let watermark = self.max_ts.map_or(0, |m| m.saturating_sub(self.replay.bound_ms));
        let share = self.replay.batch_rows / self.pending.len() + 1;
        for (sender, pending) in self.senders.iter().zip(self.pending.iter_mut()) {
            let rows = std::mem::replace(pending, Vec::with_capacity(share));
            sender.send(Batch { rows, watermark }).map_err(|_| BenchError::Worker("a worker stopped early".into()))?;
        }
        self.in_batch = 0;
        Ok(())
    }
}

/// Each worker's receiving end, taken by the worker of that index.
type Inboxes<R> = Arc<Mutex<Vec<Option<Receiver<Batch<R>>>>>>;

/// Builds a scenario's dataflow on one worker.
pub type Build<R, O> = for<'s> fn(StreamVec<'s, EventTime, R>, &Tumbling) -> StreamVec<'s, EventTime, O>;

/// Runs `build` on `replay.workers` timely workers, fed by `read` on the calling
/// thread; returns every worker's output (unordered), what `read` returned, and
/// the counts.
pub fn run<R, O, T>(
    replay: Replay,
    read: impl FnOnce(&mut Feeder<R>) -> Result<T, BenchError>,
    build: Build<R, O>,
) -> Result<(Vec<O>, T, ReplayStats), BenchError>
where
    R: ExchangeData + Clone,
    O: ExchangeData + Clone,
{
    let workers = replay.workers.max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| sync_channel::<Batch<R>>(4)).unzip();
    let receivers: Inboxes<R> = Arc::new(Mutex::new(receivers.into_iter().map(Some).collect()));
    let window_ms = replay.window_ms;

    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let rx = receivers.lock().expect("receiver list")[worker.index()].take().expect("one receiver per worker");
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<R>>>::new();
        let windows = Tumbling::new(window_ms);
        let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = std::rc::Rc::clone(&out);
        worker.dataflow(|scope| {
            build(input.to_stream(scope), &windows).inspect_core(move |event| {
                if let Ok((_, data)) = event {
                    sink.borrow_mut().extend_from_slice(data);
                }
            });
        });
        while let Ok(mut batch) = rx.recv() {
            input.send_batch(&mut batch.rows);
            if batch.watermark > *input.time() {
                input.advance_to(batch.watermark);
            }
            worker.step();
        }
        input.close();
        while worker.step() {}
        let rows: Vec<O> = out.take();
        (rows, windows.late())
    })
    .map_err(BenchError::Worker)?;

    let mut feeder = Feeder {
        senders,
        pending: (0..workers).map(|_| Vec::with_capacity(replay.batch_rows / workers + 1)).collect(),
        next_worker: 0,
        in_batch: 0,
        max_ts: None,
        stats: ReplayStats::default(),
        replay,
    };
    let read_result = read(&mut feeder).and_then(|t| feeder.flush().map(|()| t));
    let mut stats = feeder.stats;
    drop(feeder);

    let mut rows = Vec::new();
    for result in guards.join() {
        let (part, late) = result.map_err(BenchError::Worker)?;
        rows.extend(part);
        stats.operator_late += late;
    }
    Ok((rows, read_result?, stats))
}
