//! Sliding count: "N or more events of one key within W", with the events.
//!
//! For models like "3 or more alarms in one community within 10 minutes":
//! counts each key's events over a window that slides with every event, and
//! emits a [`Burst`] holding the events that made it (the alert's evidence).
//!
//! - **Input**: a timely stream of events implementing [`Timed`], and a key
//!   function (for a string id, [`citywatch_engine::event::stable_key`]; for
//!   a place, [`citywatch_engine::jurisdiction::Jurisdiction::community_of`]).
//!   The operator exchanges by the key itself.
//! - **Output**: a [`Burst`] when an event at `t` brings its key's count of
//!   events with `ts_ms` in `(t - window, t]` to `min` or more, having been
//!   below `min` before it: one burst per run of activity, not one per event.
//!   When the count falls below `min` again (events age out of the window),
//!   the key re-arms. Emitted at event time `t`.
//! - **State**: per key, the events in the window (with their `ts_ms`), and a
//!   timer per event at `ts_ms + window` that ages it out; a key whose window
//!   empties is forgotten. Memory is the events of the last `window` per key.
//! - **Time semantics**: [`crate::ordered`]: events in `(ts_ms, seq)` order per
//!   key, so the output is the same for any number of workers. An event
//!   exactly `window` older than `t` is outside the window.
//! - **Cost per update**: a map lookup, a push, the pops of aged-out events,
//!   a timer (O(log t)); a burst copies the window's events.

use std::collections::{HashMap, VecDeque};

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use timely::ExchangeData;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;

use crate::ordered::{Ordered, OrderedStep};

/// `min` or more events of one key within the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst<A> {
    /// The key.
    pub key: u64,
    /// Event time of the event that brought the count to `min`.
    pub at_ms: u64,
    /// The events in the window at that moment, oldest first (`(ts_ms, seq)` order).
    pub events: Vec<A>,
}

#[derive(Debug)]
struct Window<A> {
    events: VecDeque<A>,
    /// Whether the count was below `min` since the last burst.
    armed: bool,
}

/// Extension trait: keyed sliding counts with their evidence.
pub trait SlidingCount<'s, A> {
    /// Emits a [`Burst`] when a key has `min` events within `window_ms` (see the module docs).
    fn sliding_count<K>(self, name: &str, window_ms: u64, min: usize, key: K) -> StreamVec<'s, EventTime, Burst<A>>
    where
        K: Fn(&A) -> u64 + Clone + 'static,
        A: Clone + ExchangeData;
}

impl<'s, A: Timed + Clone + ExchangeData> SlidingCount<'s, A> for StreamVec<'s, EventTime, A> {
    fn sliding_count<K>(self, name: &str, window_ms: u64, min: usize, key: K) -> StreamVec<'s, EventTime, Burst<A>>
    where
        K: Fn(&A) -> u64 + Clone + 'static,
    {
        assert!(window_ms > 0 && min > 0, "{name}: a sliding count needs a window and a count above zero");
        let route = key.clone();
        let state: HashMap<u64, Window<A>> = HashMap::new();
        self.ordered(Exchange::new(move |a: &A| route(a)), name, state, move |windows, step, ctx| match step {
            OrderedStep::Event(a) => {
                let (k, now) = (key(a), a.ts_ms());
                let w = windows.entry(k).or_insert_with(|| Window { events: VecDeque::new(), armed: true });
                while w.events.front().is_some_and(|e| e.ts_ms() + window_ms <= now) {
                    w.events.pop_front();
                }
                w.events.push_back(a.clone());
                ctx.set_timer(now + window_ms, k);
                if w.events.len() >= min && w.armed {
                    w.armed = false;
                    ctx.emit(Burst { key: k, at_ms: now, events: w.events.iter().cloned().collect() });
                }
            }
            OrderedStep::Timer { at_ms, key: k } => {
                if let Some(w) = windows.get_mut(&k) {
                    while w.events.front().is_some_and(|e| e.ts_ms() + window_ms <= at_ms) {
                        w.events.pop_front();
                    }
                    if w.events.len() < min {
                        w.armed = true;
                    }
                    if w.events.is_empty() {
                        windows.remove(&k);
                    }
                }
            }
        })
    }
}
