//! Keyed tumbling event-time windows folded into one accumulator per key, with an
//! optional distinct-value set: the one pass behind windowed counts, distinct
//! counts and any combination of them (a fraud model's calls, short calls and
//! distinct callees per caller and window are one `window_fold_distinct`).
//!
//! - **Input**: a stream of records `D` at timely time `t`. `key_ts(&d)` gives the
//!   record's 64-bit key and its event time `ts` in ms. The contract with the
//!   input: a record's timely time is at most its event time (`t <= ts`), and the
//!   input frontier is the watermark. A replay sends a batch of records at the
//!   current watermark and then advances the input to the next one, so timely
//!   carries one capability per batch, not one per event.
//! - **Windows**: tumbling, aligned to the epoch: `window_start_ms = ts - ts % width_ms`,
//!   covering `[window_start_ms, window_start_ms + width_ms)`.
//! - **Output**: when the input frontier reaches a window's end (no time below
//!   `window_start_ms + width_ms` can still arrive), `emit(WindowKey, &acc)` runs
//!   once for every key seen in that window, and each `Some(o)` it returns is sent
//!   at timely time `window_start_ms + width_ms` (the window end; later if the
//!   window's records arrived at a later timely time). Within one worker a
//!   window's outputs go out sorted by key; across workers the order is the
//!   merge of theirs, so consumers that need one order sort (output sets are
//!   identical for any number of workers).
//! - **Exchange**: records are routed to workers by a mix of their key, so each
//!   key's state lives on one worker.
//! - **Lateness**: a record whose window was already emitted is dropped and
//!   counted in [`Tumbling::late`]. That only happens when the input breaks the
//!   contract above (it sent a record below the watermark it had announced); the
//!   engine's lateness handling sees such rows before they get here.
//! - **State**: per open window, an `FxHashMap<u64, A>` of accumulators and, for
//!   the distinct variant, one `FxHashSet<(u64, u64)>` of (key, value) pairs
//!   shared by all keys of the window (no per-key set, so no per-key allocation).
//!   Tables of emitted windows are cleared and reused, so once the tables have
//!   grown to the largest window, the hot path does not allocate.
//! - **Cost per update**: one hash-map probe (the record's window is found by a
//!   binary search among the open windows, usually one or two, skipped when
//!   it is the previous record's window), and for the distinct variant one hash-set
//!   insert. Per window: emit runs once per key; the emitted rows are sorted.

use std::cell::Cell;
use std::rc::Rc;

use citywatch_engine::EventTime;
use timely::ExchangeData;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use crate::fxhash::{FxHashMap, FxHashSet, spread};

/// Which key and window a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct WindowKey {
    /// The record key (a caller token, a cell id ...).
    pub key: u64,
    /// Start of the window, ms since the epoch, a multiple of the window width.
    pub window_start_ms: EventTime,
}

/// Tumbling window settings, and the late-record counter of the operator built
/// with them (one per worker: each worker builds its own dataflow).
#[derive(Debug, Clone)]
pub struct Tumbling {
    /// Window width in ms; windows start at multiples of it.
    pub width_ms: u64,
    /// Records dropped because their window had already been emitted. Shared with
    /// the operator so the caller can read it after (or during) the run.
    late: Rc<Cell<u64>>,
}

impl Tumbling {
    /// Epoch-aligned tumbling windows `width_ms` wide.
    ///
    /// # Panics
    /// If `width_ms` is 0.
    pub fn new(width_ms: u64) -> Self {
        assert!(width_ms > 0, "a tumbling window needs a positive width");
        Tumbling { width_ms, late: Rc::new(Cell::new(0)) }
    }

    /// Late records this worker's operator has dropped so far.
    pub fn late(&self) -> u64 {
        self.late.get()
    }

    /// Start of the window holding event time `ts_ms`.
    #[inline]
    pub fn window_start(&self, ts_ms: EventTime) -> EventTime {
        ts_ms - ts_ms % self.width_ms
    }
}

/// Extension trait: keyed tumbling-window fold (see the module doc).
pub trait WindowFold<'s, D: ExchangeData> {
    /// Folds each record into its key's accumulator for its window;
    /// `fold(&mut acc, &record)`. `emit(window_key, &acc)` turns a finished
    /// accumulator into an output, or `None` to emit nothing for it.
    fn window_fold<A, O, KF, FF, EF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        fold: FF,
        emit: EF,
    ) -> StreamVec<'s, EventTime, O>
    where
        A: Default + 'static,
        O: ExchangeData,
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        FF: FnMut(&mut A, &D) + 'static,
        EF: FnMut(WindowKey, &A) -> Option<O> + 'static;

    /// As [`window_fold`](WindowFold::window_fold), and also tracks the distinct
    /// `value(&record)`s of each key and window: `fold(&mut acc, &record, first)`
    /// gets `first == true` when the record's value is new for its key in its
    /// window (so `acc` can count distinct values beside anything else).
    fn window_fold_distinct<A, O, KF, VF, FF, EF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        value: VF,
        fold: FF,
        emit: EF,
    ) -> StreamVec<'s, EventTime, O>
    where
        A: Default + 'static,
        O: ExchangeData,
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        VF: Fn(&D) -> u64 + 'static,
        FF: FnMut(&mut A, &D, bool) + 'static,
        EF: FnMut(WindowKey, &A) -> Option<O> + 'static;
}

impl<'s, D: ExchangeData> WindowFold<'s, D> for StreamVec<'s, EventTime, D> {
    fn window_fold<A, O, KF, FF, EF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        mut fold: FF,
        emit: EF,
    ) -> StreamVec<'s, EventTime, O>
    where
        A: Default + 'static,
        O: ExchangeData,
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        FF: FnMut(&mut A, &D) + 'static,
        EF: FnMut(WindowKey, &A) -> Option<O> + 'static,
    {
        fold_core(self, name, windows, key_ts, None::<fn(&D) -> u64>, move |a: &mut A, d: &D, _| fold(a, d), emit)
    }

    fn window_fold_distinct<A, O, KF, VF, FF, EF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        value: VF,
        fold: FF,
        emit: EF,
    ) -> StreamVec<'s, EventTime, O>
    where
        A: Default + 'static,
        O: ExchangeData,
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        VF: Fn(&D) -> u64 + 'static,
        FF: FnMut(&mut A, &D, bool) + 'static,
        EF: FnMut(WindowKey, &A) -> Option<O> + 'static,
    {
        fold_core(self, name, windows, key_ts, Some(value), fold, emit)
    }
}

/// State of one open window.
struct Pane<A> {
    /// Held so the window's results can be sent at its end, after the input has
    /// moved on.
    cap: Capability<EventTime>,
    /// One accumulator per key seen in the window.
    accs: FxHashMap<u64, A>,
    /// (key, value) pairs seen in the window (distinct variant only).
    seen: FxHashSet<(u64, u64)>,
}

/// A window's accumulator map and distinct set, kept for reuse once emitted.
type Tables<A> = (FxHashMap<u64, A>, FxHashSet<(u64, u64)>);

/// The operator behind both trait methods; `value` is `None` for the plain fold.
fn fold_core<'s, D, A, O, KF, VF, FF, EF>(
    stream: StreamVec<'s, EventTime, D>,
    name: &str,
    windows: &Tumbling,
    key_ts: KF,
    value: Option<VF>,
    mut fold: FF,
    mut emit: EF,
) -> StreamVec<'s, EventTime, O>
where
    D: ExchangeData,
    A: Default + 'static,
    O: ExchangeData,
    KF: Fn(&D) -> (u64, EventTime) + 'static,
    VF: Fn(&D) -> u64 + 'static,
    FF: FnMut(&mut A, &D, bool) + 'static,
    EF: FnMut(WindowKey, &A) -> Option<O> + 'static,
{
    let key_ts = Rc::new(key_ts);
    let route = Rc::clone(&key_ts);
    let width = windows.width_ms;
    let late = Rc::clone(&windows.late);
    stream.unary_frontier(Exchange::new(move |d: &D| spread(route(d).0)), name, move |_cap, _info| {
        // Open windows, sorted by start time (usually one or two).
        let mut panes: Vec<(EventTime, Pane<A>)> = Vec::new();
        // Cleared tables of emitted windows, reused by the next windows.
        let mut spare: Vec<Tables<A>> = Vec::new();
        // Every window ending at or before this has been emitted.
        let mut emitted_through: EventTime = 0;
        // Output rows of one window, sorted by key before sending.
        let mut staged: Vec<(u64, O)> = Vec::new();

        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                // An empty stamp (no time) carries no capability: its records can
                // only join windows that are already open.
                let time = cap.least().copied();
                // The window of the previous record, [start, start + width) and its
                // index in `panes`: consecutive records mostly share a window, and
                // then cost neither a division nor a search.
                let mut current: Option<(EventTime, usize)> = None;
                for container in containers {
                    for d in container.iter() {
                        let (key, ts) = key_ts(d);
                        let index = match current {
                            Some((start, index)) if ts >= start && ts - start < width => index,
                            _ => {
                                let start = ts - ts % width;
                                let end = start + width;
                                if end <= emitted_through {
                                    late.set(late.get() + 1);
                                    continue;
                                }
                                let index = match panes.binary_search_by_key(&start, |(s, _)| *s) {
                                    Ok(index) => {
                                        let pane = &mut panes[index].1;
                                        if let Some(time) = time
                                            && *pane.cap.time() > end.max(time)
                                        {
                                            pane.cap = cap.delayed(&end.max(time), output.output_index());
                                        }
                                        index
                                    }
                                    Err(index) => {
                                        let Some(time) = time else {
                                            late.set(late.get() + 1);
                                            continue;
                                        };
                                        let (accs, seen) = spare.pop().unwrap_or_default();
                                        let cap = cap.delayed(&end.max(time), output.output_index());
                                        panes.insert(index, (start, Pane { cap, accs, seen }));
                                        index
                                    }
                                };
                                current = Some((start, index));
                                index
                            }
                        };
                        let pane = &mut panes[index].1;
                        let first = match &value {
                            Some(value) => pane.seen.insert((key, value(d))),
                            None => false,
                        };
                        fold(pane.accs.entry(key).or_default(), d, first);
                    }
                }
            });

            // Emit every window the frontier has passed, oldest first.
            while let Some((start, _)) = panes.first() {
                let (start, end) = (*start, *start + width);
                if frontier.less_than(&end) {
                    break;
                }
                let (_, mut pane) = panes.remove(0);
                staged.extend(pane.accs.iter().filter_map(|(key, acc)| {
                    emit(WindowKey { key: *key, window_start_ms: start }, acc).map(|o| (*key, o))
                }));
                staged.sort_unstable_by_key(|(key, _)| *key);
                if !staged.is_empty() {
                    let mut session = output.session(&pane.cap);
                    for (_, o) in staged.drain(..) {
                        session.give(o);
                    }
                }
                emitted_through = emitted_through.max(end);
                pane.accs.clear();
                pane.seen.clear();
                spare.push((pane.accs, pane.seen));
            }
            // Windows with no data can be passed too: nothing may arrive for them.
            if let Some(least) = frontier.frontier().first() {
                emitted_through = emitted_through.max(*least - *least % width);
            }
        }
    })
}
