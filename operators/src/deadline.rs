//! Deadlines: two event streams processed in event-time order, with timers.
//!
//! This is the building block for models whose logic is "when X happens,
//! expect Y before a deadline" (response_gap: an urgent alarm expects a unit
//! dispatched within 3 minutes) or that must interleave two streams exactly
//! in event time (alarms with patrol positions).
//!
//! - **Inputs**: two timely streams of events that implement
//!   [`Timed`] (`ts_ms`, `seq`), each with its own parallelisation contract
//!   (exchange by a key, or broadcast).
//! - **Output**: whatever the logic emits, at a timely time no later than the
//!   event time it was emitted at (the invariant every citywatch operator keeps:
//!   timely time is a lower bound of event time).
//! - **State**: the events not yet ready (event time at or after the input
//!   frontier), the pending timers (a binary heap), and the caller's state `S`.
//! - **Time semantics**: once both input frontiers have passed `F`, every event
//!   with `ts_ms < F` is handed to the logic in `(ts_ms, seq, left-before-right)`
//!   order, interleaved with timers: a timer set for `at` fires after every event
//!   with `ts_ms <= at` and before any later one ("a patrol stamped at the
//!   deadline is in time"). Timers fire only when the frontier passes them (or,
//!   once the input has ended, when a later event is still to be handled):
//!   when the input ends, the timers after the last event are dropped, since
//!   their time never came. A driver should advance the inputs to its final
//!   watermark and wait (on a probe) until every operator has seen it before
//!   closing them, as the engine does; otherwise the timers between an
//!   operator's last event and that watermark depend on scheduling.
//!   The order depends only on the data, so the output is the same for any
//!   number of workers, provided the contracts route each key's events to one
//!   worker (or broadcast).
//! - **Cost per update**: one push into a buffer, a share of one sort per
//!   activation (O(log n); the buffer arrives nearly sorted and the ready
//!   prefix is processed in place), and the logic; a timer costs O(log t).
//!   With [`Deadlines::deadlines_touching`], a left event is also shown
//!   once, read-only, to a `touch` hook some events before the logic (to
//!   overlap the cache misses of independent lookups).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::generic::operator::Operator;

/// One step of the ordered processing.
#[derive(Debug)]
pub enum Step<'a, A, B> {
    /// An event of the first stream.
    Left(&'a A),
    /// An event of the second stream.
    Right(&'a B),
    /// A timer set earlier, now due.
    Timer {
        /// The event time it was set for.
        at_ms: u64,
        /// The caller's key for it (e.g. an alarm id).
        key: u64,
    },
}

/// What the logic can do at a step.
#[derive(Debug)]
pub struct Context<'a, O> {
    out: &'a mut Vec<O>,
    timers: &'a mut BinaryHeap<Reverse<(u64, u64)>>,
    now_ms: u64,
}

impl<O> Context<'_, O> {
    /// Emits an output record.
    pub fn emit(&mut self, record: O) {
        self.out.push(record);
    }

    /// Sets a timer to fire at event time `at_ms` (clamped to now) with `key`.
    pub fn set_timer(&mut self, at_ms: u64, key: u64) {
        self.timers.push(Reverse((at_ms.max(self.now_ms), key)));
    }

    /// The event time of the current step.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
}

/// Extension trait: process two streams in event-time order with timers.
pub trait Deadlines<'s, A> {
    /// Runs `logic` over both streams in event-time order (see the module docs).
    fn deadlines<B, O, S, L, PA, PB>(
        self,
        other: StreamVec<'s, EventTime, B>,
        pact_left: PA,
        pact_right: PB,
        name: &str,
        state: S,
        logic: L,
    ) -> StreamVec<'s, EventTime, O>
    where
        B: Timed + Clone + 'static,
        O: Clone + 'static,
        S: 'static,
        L: FnMut(&mut S, Step<'_, A, B>, &mut Context<'_, O>) + 'static,
        PA: ParallelizationContract<EventTime, Vec<A>>,
        PB: ParallelizationContract<EventTime, Vec<B>>,
        Self: Sized,
    {
        self.deadlines_touching(other, pact_left, pact_right, name, state, |_: &S, _: &A| {}, logic)
    }

    /// [`Deadlines::deadlines`], with a read-only look-ahead over the left
    /// stream: `touch` sees each ready left event (with the state as it is)
    /// [`TOUCH_AHEAD`] to twice that many events before `logic` handles it.
    ///
    /// For logic whose cost is cache misses on state much larger than the CPU
    /// caches: a `touch` that looks up the event's key (and folds what it
    /// reads into [`std::hint::black_box`]) issues the misses of many
    /// independent lookups together, so they overlap, and `logic` then finds
    /// the lines warm. It cannot change the state, so the order of the steps
    /// and the output are those of [`Deadlines::deadlines`].
    // One argument more than `deadlines`: the hook is a closure like `logic`.
    #[allow(clippy::too_many_arguments)]
    fn deadlines_touching<B, O, S, T, L, PA, PB>(
        self,
        other: StreamVec<'s, EventTime, B>,
        pact_left: PA,
        pact_right: PB,
        name: &str,
        state: S,
        touch: T,
        logic: L,
    ) -> StreamVec<'s, EventTime, O>
    where
        B: Timed + Clone + 'static,
        O: Clone + 'static,
        S: 'static,
        T: FnMut(&S, &A) + 'static,
        L: FnMut(&mut S, Step<'_, A, B>, &mut Context<'_, O>) + 'static,
        PA: ParallelizationContract<EventTime, Vec<A>>,
        PB: ParallelizationContract<EventTime, Vec<B>>;
}

/// How far ahead of the logic [`Deadlines::deadlines_touching`] touches left
/// events: in chunks of this many, each chunk touched while the logic is
/// between this many and twice this many events before it. On the fraud_call
/// model (1M city) 16 and 32 did about as well.
pub const TOUCH_AHEAD: usize = 32;

impl<'s, A: Timed + Clone + 'static> Deadlines<'s, A> for StreamVec<'s, EventTime, A> {
    fn deadlines_touching<B, O, S, T, L, PA, PB>(
        self,
        other: StreamVec<'s, EventTime, B>,
        pact_left: PA,
        pact_right: PB,
        name: &str,
        mut state: S,
        mut touch: T,
        mut logic: L,
    ) -> StreamVec<'s, EventTime, O>
    where
        B: Timed + Clone + 'static,
        O: Clone + 'static,
        S: 'static,
        T: FnMut(&S, &A) + 'static,
        L: FnMut(&mut S, Step<'_, A, B>, &mut Context<'_, O>) + 'static,
        PA: ParallelizationContract<EventTime, Vec<A>>,
        PB: ParallelizationContract<EventTime, Vec<B>>,
    {
        self.binary_frontier(other, pact_left, pact_right, name, move |cap, _info| {
            let mut cap = Some(cap);
            let mut left: Vec<A> = Vec::new();
            let mut right: Vec<B> = Vec::new();
            let mut timers: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
            let mut out: Vec<O> = Vec::new();
            move |(in1, f1), (in2, f2), output| {
                in1.for_each(|_, data| left.append(data));
                in2.for_each(|_, data| right.append(data));
                // The combined frontier: every event below it has arrived.
                let frontier = match (f1.frontier().first(), f2.frontier().first()) {
                    (Some(a), Some(b)) => Some(*a.min(b)),
                    (a, b) => a.or(b).copied(),
                };
                // Sort the buffers by (ts, seq) and take the ready prefix in
                // place. They arrive as a few nearly sorted runs (the held-back
                // rest, then each sender's batch in merge order), which the
                // stable sort merges in close to linear time; rows that share
                // (ts, seq) (one event fanned out) keep their arrival order.
                left.sort_by_key(|e| (e.ts_ms(), e.seq()));
                right.sort_by_key(|e| (e.ts_ms(), e.seq()));
                let n_l = frontier.map_or(left.len(), |f| left.partition_point(|e| e.ts_ms() < f));
                let n_r = frontier.map_or(right.len(), |f| right.partition_point(|e| e.ts_ms() < f));
                let (ready_l, ready_r) = (&left[..n_l], &right[..n_r]);
                // A timer is due once the frontier has passed it, or, after
                // the input has ended, when a later event is still to come
                // (its time certainly came). Drivers should let operators see
                // the final watermark before closing (`dataflow::drive` does).
                let due = |at: u64, next_event: Option<u64>| match frontier {
                    Some(f) => at < f,
                    None => next_event.is_some_and(|ts| at < ts),
                };
                let (mut i, mut j) = (0, 0);
                // Left events before this index have been touched.
                let mut touched = 0;
                loop {
                    let next_l = ready_l.get(i).map(|e| (e.ts_ms(), e.seq()));
                    let next_r = ready_r.get(j).map(|e| (e.ts_ms(), e.seq()));
                    let next_event = match (next_l, next_r) {
                        (Some(l), Some(r)) => Some(if l <= r { (l.0, true) } else { (r.0, false) }),
                        (Some(l), None) => Some((l.0, true)),
                        (None, Some(r)) => Some((r.0, false)),
                        (None, None) => None,
                    };
                    let next_timer =
                        timers.peek().map(|Reverse(t)| *t).filter(|(at, _)| due(*at, next_event.map(|(ts, _)| ts)));
                    match (next_event, next_timer) {
                        (Some((ts, _)), Some((at, key))) if at < ts => {
                            timers.pop();
                            let mut ctx = Context { out: &mut out, timers: &mut timers, now_ms: at };
                            logic(&mut state, Step::Timer { at_ms: at, key }, &mut ctx);
                        }
                        (Some((ts, is_left)), _) => {
                            let mut ctx = Context { out: &mut out, timers: &mut timers, now_ms: ts };
                            if is_left {
                                if touched <= i + TOUCH_AHEAD && touched < n_l {
                                    let end = (i + 2 * TOUCH_AHEAD).min(n_l);
                                    for e in &ready_l[touched..end] {
                                        touch(&state, e);
                                    }
                                    touched = end;
                                }
                                logic(&mut state, Step::Left(&ready_l[i]), &mut ctx);
                                i += 1;
                            } else {
                                logic(&mut state, Step::Right(&ready_r[j]), &mut ctx);
                                j += 1;
                            }
                        }
                        (None, Some((at, key))) => {
                            timers.pop();
                            let mut ctx = Context { out: &mut out, timers: &mut timers, now_ms: at };
                            logic(&mut state, Step::Timer { at_ms: at, key }, &mut ctx);
                        }
                        (None, None) => break,
                    }
                }
                left.drain(..n_l);
                right.drain(..n_r);
                if let Some(c) = cap.as_mut() {
                    if !out.is_empty() {
                        output.session(&*c).give_container(&mut out);
                        out.clear();
                    }
                    match frontier {
                        None => {
                            // The input has ended: timers whose time never came are dropped.
                            timers.clear();
                            cap = None;
                        }
                        Some(f) => {
                            let pending = timers.peek().map_or(f, |Reverse((at, _))| (*at).min(f));
                            // Both buffers are sorted: their first events are the earliest.
                            let buffered = [left.first().map(|e| e.ts_ms()), right.first().map(|e| e.ts_ms())]
                                .into_iter()
                                .flatten()
                                .min();
                            let hold = buffered.map_or(pending, |b| b.min(pending));
                            if hold > *c.time() {
                                c.downgrade(&hold);
                            }
                        }
                    }
                }
            }
        })
    }
}
