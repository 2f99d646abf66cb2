//! Ordered: one event stream processed in event-time order, with timers.
//!
//! [`crate::deadline::Deadlines`] for a model with one input: "for each
//! event of a key, in event-time order, update the key's state, maybe set a
//! timer; when a timer comes due, look again".
//!
//! - **Input**: a timely stream of events implementing [`Timed`], with a
//!   parallelisation contract (exchange by the key the state is kept by, so
//!   that each key's events meet on one worker; or broadcast).
//! - **Output**: whatever the logic emits, at a timely time no later than the
//!   event time it was emitted at.
//! - **State**: the events not yet ready (at or after the input frontier), the
//!   pending timers, and the caller's state `S`.
//! - **Time semantics**: those of [`crate::deadline`] with an empty second
//!   input: once the frontier has passed `F`, every event with `ts_ms < F` is
//!   handed to the logic in `(ts_ms, seq)` order, interleaved with the timers
//!   (a timer for `at` fires after every event with `ts_ms <= at`); timers
//!   pending when the input ends are dropped. The order depends only on the
//!   data: the same output for any number of workers.
//! - **Cost per update**: as [`crate::deadline`].

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::operator::empty;

use crate::deadline::{Context, Deadlines, Step};

/// One step of the ordered processing.
#[derive(Debug)]
pub enum OrderedStep<'a, A> {
    /// An event.
    Event(&'a A),
    /// A timer set earlier, now due.
    Timer {
        /// The event time it was set for.
        at_ms: u64,
        /// The caller's key for it.
        key: u64,
    },
}

/// The second input that [`Ordered::ordered`] gives [`Deadlines`]: it has no values.
#[derive(Debug, Clone)]
enum Never {}

impl Timed for Never {
    fn ts_ms(&self) -> u64 {
        match *self {}
    }
    fn seq(&self) -> u64 {
        match *self {}
    }
}

/// Extension trait: process one stream in event-time order with timers.
pub trait Ordered<'s, A> {
    /// Runs `logic` over the stream in event-time order (see the module docs).
    fn ordered<O, S, L, P>(self, pact: P, name: &str, state: S, logic: L) -> StreamVec<'s, EventTime, O>
    where
        O: Clone + 'static,
        S: 'static,
        L: FnMut(&mut S, OrderedStep<'_, A>, &mut Context<'_, O>) + 'static,
        P: ParallelizationContract<EventTime, Vec<A>>;
}

impl<'s, A: Timed + Clone + 'static> Ordered<'s, A> for StreamVec<'s, EventTime, A> {
    fn ordered<O, S, L, P>(self, pact: P, name: &str, state: S, mut logic: L) -> StreamVec<'s, EventTime, O>
    where
        O: Clone + 'static,
        S: 'static,
        L: FnMut(&mut S, OrderedStep<'_, A>, &mut Context<'_, O>) + 'static,
        P: ParallelizationContract<EventTime, Vec<A>>,
    {
        let nothing = empty::<_, Vec<Never>>(self.scope());
        self.deadlines(nothing, pact, Pipeline, name, state, move |state, step: Step<'_, A, Never>, ctx| {
            let step = match step {
                Step::Left(a) => OrderedStep::Event(a),
                Step::Right(never) => match *never {},
                Step::Timer { at_ms, key } => OrderedStep::Timer { at_ms, key },
            };
            logic(state, step, ctx)
        })
    }
}
