//! Keyed tumbling event-time windows folded into one accumulator per key, with an
//! optional distinct-value set: the one pass behind windowed counts, distinct
//! counts and any combination of them (the fanout peer workload's calls, short
//! calls and distinct callees per caller and window are one
//! `window_fold_distinct`; fraud_call keeps its own per-caller state).
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
//! - **State**: per open window, one `FastMap` from key to a slot holding the
//!   accumulator and, for the distinct variant, the key's first
//!   [`INLINE_VALUES`] distinct values inline; a key's further values go to one
//!   `FastSet<(u64, u64)>` of (key, value) pairs shared by all keys of the
//!   window. No per-key set, so no per-key allocation; and since most keys see
//!   few distinct values in a window (a subscriber calls one or two numbers in
//!   ten minutes), most records cost one probe of one table. Tables of emitted
//!   windows are cleared and reused (new ones start at the largest size seen), so
//!   once the tables have grown to the largest window, the hot path does not
//!   allocate.
//! - **Cost per update**: one hash-map probe (the record's window is found by a
//!   binary search among the open windows, usually one or two, skipped when it is
//!   the previous record's window); for the distinct variant, a comparison with
//!   the key's inline values and, for a key past [`INLINE_VALUES`] distinct values,
//!   one hash-set insert. Per window: emit runs once per key; the emitted rows are
//!   sorted.

use std::cell::Cell;
use std::rc::Rc;

use citywatch_engine::EventTime;
use timely::ExchangeData;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use citywatch_engine::hash::{FastMap, FastSet, spread};

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
        fold_core::<0, _, _, _, _, _, _, _>(
            self,
            name,
            windows,
            key_ts,
            None::<fn(&D) -> u64>,
            move |a: &mut A, d: &D, _| fold(a, d),
            emit,
        )
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
        fold_core::<INLINE_VALUES, _, _, _, _, _, _, _>(self, name, windows, key_ts, Some(value), fold, emit)
    }
}

/// Distinct values a slot keeps inline before using its window's shared set.
/// Two: the fan-out workload's callers mostly call one or two numbers per
/// window; a larger slot makes every probe touch more memory (measured with the
/// peer workloads, `bench/RESULTS.md`).
pub const INLINE_VALUES: usize = 2;

/// A key's first distinct values in a window, inline. `EMPTY` marks a free
/// entry; the value `EMPTY` itself is never kept inline (it goes to the shared
/// set), so a value is either inline or in the set, never both.
#[derive(Debug, Clone, Copy)]
struct Inline<const N: usize>([u64; N]);

const EMPTY: u64 = u64::MAX;

impl<const N: usize> Default for Inline<N> {
    fn default() -> Self {
        Inline([EMPTY; N])
    }
}

impl<const N: usize> Inline<N> {
    /// Records `value` of `key`; true if it is new for the key in this window.
    #[inline]
    fn insert(&mut self, key: u64, value: u64, shared: &mut FastSet<(u64, u64)>) -> bool {
        if value != EMPTY {
            for v in &mut self.0 {
                if *v == value {
                    return false;
                }
                if *v == EMPTY {
                    *v = value;
                    return true;
                }
            }
        }
        shared.insert((key, value))
    }
}

/// A key's state in one window: the accumulator, and (distinct variant, `N > 0`)
/// its first distinct values.
#[derive(Debug, Default)]
struct Slot<A, const N: usize> {
    acc: A,
    values: Inline<N>,
}

/// State of one open window.
struct Pane<A, const N: usize> {
    /// Held so the window's results can be sent at its end, after the input has
    /// moved on.
    cap: Capability<EventTime>,
    /// One slot per key seen in the window.
    slots: FastMap<u64, Slot<A, N>>,
    /// (key, value) pairs past the keys' inline values (distinct variant only).
    seen: FastSet<(u64, u64)>,
}

/// A window's slot map and distinct set, kept for reuse once emitted.
type Tables<A, const N: usize> = (FastMap<u64, Slot<A, N>>, FastSet<(u64, u64)>);

/// The operator behind both trait methods; `value` is `None` for the plain fold.
fn fold_core<'s, const N: usize, D, A, O, KF, VF, FF, EF>(
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
        let mut panes: Vec<(EventTime, Pane<A, N>)> = Vec::new();
        // Cleared tables of emitted windows, reused by the next windows.
        let mut spare: Vec<Tables<A, N>> = Vec::new();
        // The most keys one window has had: a new table starts that large rather
        // than growing (and rehashing) step by step.
        let mut most_keys = 0usize;
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
                                        let (slots, seen) = spare.pop().unwrap_or_else(|| {
                                            (
                                                FastMap::with_capacity_and_hasher(most_keys, Default::default()),
                                                FastSet::default(),
                                            )
                                        });
                                        let cap = cap.delayed(&end.max(time), output.output_index());
                                        panes.insert(index, (start, Pane { cap, slots, seen }));
                                        index
                                    }
                                };
                                current = Some((start, index));
                                index
                            }
                        };
                        let pane = &mut panes[index].1;
                        let slot = pane.slots.entry(key).or_default();
                        let first = match &value {
                            Some(value) => slot.values.insert(key, value(d), &mut pane.seen),
                            None => false,
                        };
                        fold(&mut slot.acc, d, first);
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
                most_keys = most_keys.max(pane.slots.len());
                staged.extend(pane.slots.iter().filter_map(|(key, slot)| {
                    emit(WindowKey { key: *key, window_start_ms: start }, &slot.acc).map(|o| (*key, o))
                }));
                staged.sort_unstable_by_key(|(key, _)| *key);
                if !staged.is_empty() {
                    let mut session = output.session(&pane.cap);
                    for (_, o) in staged.drain(..) {
                        session.give(o);
                    }
                }
                emitted_through = emitted_through.max(end);
                pane.slots.clear();
                pane.seen.clear();
                spare.push((pane.slots, pane.seen));
            }
            // Windows with no data can be passed too: nothing may arrive for them.
            if let Some(least) = frontier.frontier().first() {
                emitted_through = emitted_through.max(*least - *least % width);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline values and the shared set together keep each key's distinct values
    /// exactly, whatever the order, the repeats and the sentinel value.
    #[test]
    fn inline_values_and_shared_set_count_each_value_once() {
        let values = [5, 5, 9, EMPTY, 9, 5, 0, EMPTY, 7, 0, 7, 3];
        for keys in [1u64, 3] {
            let mut shared = FastSet::default();
            let mut slots = vec![Inline::<INLINE_VALUES>::default(); keys as usize];
            let mut reference = std::collections::BTreeSet::new();
            for (i, v) in values.iter().enumerate() {
                let key = i as u64 % keys;
                let first = slots[key as usize].insert(key, *v, &mut shared);
                assert_eq!(first, reference.insert((key, *v)), "value {v} of key {key}");
            }
            assert!(shared.len() < reference.len(), "some values stayed inline");
        }
    }
}
