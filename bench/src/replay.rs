//! The replay driver shared by the scenarios: the timely workers read the input
//! themselves, in parallel, and apply the watermark rule of the peer workloads
//! exactly as a single reader going through the file in order would; the output
//! is collected from every worker.
//!
//! - **Pieces**: the input is split into pieces that can be read independently
//!   ([`Source`]: CSV byte ranges, Parquet row groups); worker `w` reads pieces
//!   `w, w + workers, ...` in order, so parsing and decoding, the cost that bounds a
//!   single reader thread, are spread over all workers. The window operators then
//!   exchange rows by key themselves.
//! - **Watermark**: the largest event time in the input before a row, minus the
//!   out-of-order bound. A row whose window already ended at or before the
//!   watermark is late: counted and dropped, exactly as the references in `workload.rs`
//!   do. A worker reading piece `k` needs the largest event time of pieces
//!   `0..k`; each worker publishes its piece's maximum in [`Watermarks`] as soon as
//!   it has read it, and waits there (stepping its dataflow meanwhile) for the
//!   pieces before it. Every piece's maximum needs only that piece, so the wait
//!   always ends.
//! - **Time**: a worker sends piece `k`'s rows at its input's current time (the
//!   watermark after its previous piece: at most the watermark before piece `k`,
//!   hence before the window end of any row that is not late), then advances its
//!   input to the watermark after piece `k`. The input frontier, the least time over
//!   the workers' inputs, is then at most the watermark before any piece not yet
//!   sent, so a window is emitted only once no row of it can still come. Timely
//!   handles one timestamp per piece.
//! - **Idle workers park** (`step_or_park`) instead of spinning: a spinning
//!   worker would take a core from one still reading on a 2-core machine.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

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
}

/// An input split into pieces that any worker can read on its own.
pub trait Source: Send + Sync + 'static {
    /// One row as the dataflow sees it.
    type Row: ExchangeData + Clone;
    /// A worker's reusable buffers.
    type Scratch: Default;
    /// How many pieces there are.
    fn pieces(&self) -> usize;
    /// Appends the rows of piece `piece`, in input order, to `rows`.
    fn read(&self, piece: usize, scratch: &mut Self::Scratch, rows: &mut Vec<Self::Row>) -> Result<(), BenchError>;
    /// A row's event time, ms.
    fn event_ts_ms(row: &Self::Row) -> EventTime;
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

/// The watermark rule, applied row by row in input order.
#[derive(Debug, Clone, Copy)]
struct Watermark {
    /// Largest event time so far (`None` before the first row).
    max_ts: Option<EventTime>,
    bound_ms: u64,
    window_ms: u64,
}

impl Watermark {
    /// Whether a row at `ts_ms` is on time (and then takes it into account).
    #[inline]
    fn admit(&mut self, ts_ms: EventTime) -> bool {
        match self.max_ts {
            Some(max_ts) if ts_ms < max_ts => {
                // Only a row below the watermark can be late (its window ends after
                // it); the division is paid for those rows only.
                let watermark = max_ts.saturating_sub(self.bound_ms);
                let width = self.window_ms;
                !(ts_ms < watermark && ts_ms - ts_ms % width + width <= watermark)
            }
            _ => {
                self.max_ts = Some(ts_ms);
                true
            }
        }
    }

    /// The current watermark.
    fn value(&self) -> EventTime {
        self.max_ts.map_or(0, |m| m.saturating_sub(self.bound_ms))
    }
}

/// Each piece's largest event time, published by the worker that read it.
#[derive(Debug)]
struct Watermarks {
    state: Mutex<Published>,
    changed: Condvar,
}

#[derive(Debug)]
struct Published {
    /// Per piece: `None` until read, then its largest event time (`None` if empty).
    piece_max: Vec<Option<Option<EventTime>>>,
    /// Pieces `0..ready` are all read.
    ready: usize,
    /// Largest event time of pieces `0..ready`.
    max_before_ready: Option<EventTime>,
    /// `prefix_max[k]`: largest event time of pieces `0..k`, for `k <= ready`.
    prefix_max: Vec<Option<EventTime>>,
    /// A worker failed: the others stop instead of waiting for its pieces.
    failed: bool,
}

impl Watermarks {
    fn new(pieces: usize) -> Self {
        Watermarks {
            state: Mutex::new(Published {
                piece_max: vec![None; pieces],
                ready: 0,
                max_before_ready: None,
                prefix_max: vec![None],
                failed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records piece `piece`'s largest event time.
    fn publish(&self, piece: usize, max_ts: Option<EventTime>) {
        let mut s = self.lock();
        s.piece_max[piece] = Some(max_ts);
        while let Some(Some(max_ts)) = s.piece_max.get(s.ready).copied() {
            s.max_before_ready = s.max_before_ready.max(max_ts);
            let m = s.max_before_ready;
            s.prefix_max.push(m);
            s.ready += 1;
        }
        drop(s);
        self.changed.notify_all();
    }

    /// Tells the other workers to stop.
    fn fail(&self) {
        self.lock().failed = true;
        self.changed.notify_all();
    }

    /// The largest event time of the pieces before `piece`: `Ok(None)` until they
    /// are all read (after waiting up to `wait`), `Err(())` if a worker failed.
    fn max_before(&self, piece: usize, wait: Duration) -> Result<Option<Option<EventTime>>, ()> {
        let s = self.lock();
        let s = if s.ready < piece && !s.failed {
            self.changed.wait_timeout(s, wait).unwrap_or_else(PoisonError::into_inner).0
        } else {
            s
        };
        if s.failed {
            return Err(());
        }
        Ok((s.ready >= piece).then(|| s.prefix_max[piece]))
    }
}

/// Tells the other workers to stop if this one unwinds (a bug), so they do not
/// wait for its pieces forever.
struct FailOnPanic<'a>(&'a Watermarks);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail();
        }
    }
}

/// Builds a scenario's dataflow on one worker.
pub type Build<R, O> = for<'s> fn(StreamVec<'s, EventTime, R>, &Tumbling) -> StreamVec<'s, EventTime, O>;

/// One worker's result: its output rows and counts, or the error that stopped it
/// (`None`: stopped because another worker failed).
type WorkerResult<O> = (Vec<O>, ReplayStats, Option<BenchError>);

/// Runs `build` on `replay.workers` timely workers that read `source` between
/// them; returns every worker's output (unordered) and the counts.
pub fn run<S: Source, O: ExchangeData + Clone>(
    replay: Replay,
    source: Arc<S>,
    build: Build<S::Row, O>,
) -> Result<(Vec<O>, ReplayStats), BenchError> {
    let workers = replay.workers.max(1);
    let marks = Arc::new(Watermarks::new(source.pieces()));
    let guards = timely::execute(timely::Config::process(workers), move |worker| -> WorkerResult<O> {
        let _fail_on_panic = FailOnPanic(&marks);
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<S::Row>>>::new();
        let windows = Tumbling::new(replay.window_ms);
        let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = std::rc::Rc::clone(&out);
        worker.dataflow(|scope| {
            build(input.to_stream(scope), &windows).inspect_core(move |event| {
                if let Ok((_, data)) = event {
                    sink.borrow_mut().extend_from_slice(data);
                }
            });
        });
        let mut stats = ReplayStats::default();
        let mut scratch = S::Scratch::default();
        let mut error = None;
        // Rows of this worker's previous piece: the next is about as long, and a
        // vector allocated at its size is not copied as it grows.
        let mut last_rows = 0;
        for piece in (worker.index()..source.pieces()).step_by(worker.peers()) {
            let mut rows = Vec::with_capacity(last_rows + last_rows / 8);
            if let Err(e) = source.read(piece, &mut scratch, &mut rows) {
                marks.fail();
                error = Some(e);
                break;
            }
            last_rows = rows.len();
            marks.publish(piece, rows.iter().map(S::event_ts_ms).max());
            let max_before = loop {
                match marks.max_before(piece, Duration::from_millis(1)) {
                    Ok(Some(max_ts)) => break Some(max_ts),
                    Ok(None) => {
                        // The pieces before are still being read: fold what has arrived.
                        worker.step();
                    }
                    Err(()) => break None,
                }
            };
            let Some(max_ts) = max_before else { break };
            let mut watermark = Watermark { max_ts, bound_ms: replay.bound_ms, window_ms: replay.window_ms };
            let read = rows.len() as u64;
            rows.retain(|row| watermark.admit(S::event_ts_ms(row)));
            stats.rows += read;
            stats.late += read - rows.len() as u64;
            input.send_batch(&mut rows);
            if watermark.value() > *input.time() {
                input.advance_to(watermark.value());
            }
            worker.step();
        }
        input.close();
        while worker.step_or_park(None) {}
        stats.operator_late = windows.late();
        (out.take(), stats, error)
    })
    .map_err(BenchError::Worker)?;

    let mut rows = Vec::new();
    let mut stats = ReplayStats::default();
    let mut first_error = None;
    for result in guards.join() {
        let (part, s, error) = result.map_err(BenchError::Worker)?;
        rows.extend(part);
        stats.rows += s.rows;
        stats.late += s.late;
        stats.operator_late += s.operator_late;
        first_error = first_error.or(error);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((rows, stats)),
    }
}
