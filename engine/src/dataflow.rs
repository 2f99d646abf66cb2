//! The worker side shared by replay and live mode: the three inputs, the
//! models' dataflows, and the alert sink.
//!
//! Time: the inputs hold a capability at the current watermark `W`. An epoch of
//! events is sent at `W` (every event in it has `ts_ms >= W`), then the inputs
//! advance to the next watermark. So the timely time of a record is a lower
//! bound of its event time, one message carries a whole epoch instead of one
//! message per millisecond, and an operator that has seen its input frontier
//! pass `F` has seen every event with `ts_ms < F` (see `citywatch-operators`).
//!
//! Partitioning: in a replay each worker feeds the events of its own shares
//! of the input ([`WorkerInputs::give`], see [`crate::share`]); the live
//! engine's single admission numbers events in arrival order and worker `w` of
//! `p` takes those with `seq % p == w` ([`WorkerInputs::send`]). Either way
//! the models exchange by their own keys, and order by `(ts_ms, seq)`.
//!
//! Call pairing: when the workers read their own shares, a call's `start` and
//! `end` rows may be read by different workers, so [`build`] can check
//! pairing in the dataflow: calls are exchanged by `call_id` and checked in
//! `(ts_ms, seq)` order once the frontier has passed them; a refused row is
//! kept aside for the dead-letter log and never reaches a model.

use std::rc::Rc;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::unordered_input::UnorderedHandle;
use timely::dataflow::operators::core::unordered_input::UnorderedInput;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{ActivateCapability, Concatenate, Probe};
use timely::dataflow::{ProbeHandle, StreamVec};
use timely::worker::Worker;

use crate::EventTime;
use crate::alert::AlertDraft;
use crate::event::{AlarmEvent, CallEvent, Event, PatrolEvent};
use crate::model::{Inputs, Model};
use crate::reference::Reference;

/// A chunk of the live engine's admitted input with the watermark reached after it.
#[derive(Debug, Default)]
pub struct Epoch {
    /// Events in arrival order, `seq` and `late` stamped, each with `ts_ms >=` the
    /// watermark before this epoch.
    pub events: Vec<Event>,
    /// The watermark after this epoch (non-decreasing from epoch to epoch).
    pub watermark: EventTime,
}

/// A model's alert, tagged with the model's index in the registration list.
pub type TaggedDraft = (u32, AlertDraft);

type Handle<D> = (UnorderedHandle<EventTime, CapacityContainerBuilder<Vec<D>>>, ActivateCapability<EventTime>);

/// One worker's inputs and progress probe.
pub struct WorkerInputs {
    calls: Handle<CallEvent>,
    alarms: Handle<AlarmEvent>,
    patrols: Handle<PatrolEvent>,
    /// Frontier of the alert stream: everything upstream is done below it.
    pub probe: ProbeHandle<EventTime>,
    buf_calls: Vec<CallEvent>,
    buf_alarms: Vec<AlarmEvent>,
    buf_patrols: Vec<PatrolEvent>,
    index: u64,
    peers: u64,
}

impl std::fmt::Debug for WorkerInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerInputs").field("index", &self.index).field("peers", &self.peers).finish_non_exhaustive()
    }
}

impl WorkerInputs {
    /// Sends this worker's share of an epoch at the current watermark, then advances to the epoch's watermark.
    pub fn send(&mut self, epoch: &Epoch) {
        let events = &epoch.events;
        let consecutive = match (events.first(), events.last()) {
            (Some(a), Some(b)) => seq_of(b).wrapping_sub(seq_of(a)) == events.len() as u64 - 1,
            _ => true,
        };
        if consecutive && !events.is_empty() {
            // The admission numbers an epoch's events consecutively: this worker's
            // share is every `peers`-th event from the first one it owns, so the
            // other workers' events are never touched.
            let first = seq_of(&events[0]) % self.peers;
            let skip = ((self.index + self.peers - first) % self.peers) as usize;
            for e in events.iter().skip(skip).step_by(self.peers as usize) {
                debug_assert_eq!(seq_of(e) % self.peers, self.index);
                self.take(e);
            }
        } else {
            let (peers, index) = (self.peers, self.index);
            for e in events.iter().filter(|e| seq_of(e) % peers == index) {
                self.take(e);
            }
        }
        give(&mut self.calls, &mut self.buf_calls);
        give(&mut self.alarms, &mut self.buf_alarms);
        give(&mut self.patrols, &mut self.buf_patrols);
        self.advance(epoch.watermark);
    }

    /// Sends every event of `events` (this worker's own shares) at the current
    /// time; each must have `ts_ms >=` it. The caller advances afterwards.
    pub fn give(&mut self, events: &[Event]) {
        for e in events {
            self.take(e);
        }
        give(&mut self.calls, &mut self.buf_calls);
        give(&mut self.alarms, &mut self.buf_alarms);
        give(&mut self.patrols, &mut self.buf_patrols);
    }

    #[inline]
    fn take(&mut self, e: &Event) {
        match e {
            Event::Call(c) => self.buf_calls.push(*c),
            Event::Alarm(a) => self.buf_alarms.push(*a),
            Event::Patrol(p) => self.buf_patrols.push(*p),
        }
    }

    /// Advances every input to `watermark` (no-op if not later).
    pub fn advance(&mut self, watermark: EventTime) {
        for cap in [&mut self.calls.1, &mut self.alarms.1, &mut self.patrols.1] {
            if *cap.time() < watermark {
                cap.downgrade(&watermark);
            }
        }
    }

    /// The time the inputs stand at.
    pub fn time(&self) -> EventTime {
        *self.calls.1.time()
    }

    /// Closes the inputs: no more events.
    pub fn close(self) {}
}

#[inline]
fn seq_of(e: &Event) -> u64 {
    match e {
        Event::Call(c) => c.seq,
        Event::Alarm(a) => a.seq,
        Event::Patrol(p) => p.seq,
    }
}

fn give<D: Clone + 'static>(handle: &mut Handle<D>, buf: &mut Vec<D>) {
    if buf.is_empty() {
        return;
    }
    let (h, cap) = handle;
    let mut activated = h.activate();
    activated.session(&*cap).give_container(buf);
    buf.clear();
}

/// Call rows refused by the pairing check, kept on the worker that checked them.
pub type Unpaired = Rc<std::cell::RefCell<Vec<(CallEvent, crate::admission::Unpaired)>>>;

/// Builds the dataflow on one worker: inputs, every model, and a sink that
/// passes each alert draft to `sink` on worker `alerts_to` (every worker's
/// drafts are exchanged there). With `pairing`, the calls go through the
/// pairing check first and the refused rows are pushed there.
pub fn build<F>(
    worker: &mut Worker,
    models: &[Box<dyn Model>],
    reference: &Reference,
    alerts_to: u64,
    pairing: Option<Unpaired>,
    sink: F,
) -> WorkerInputs
where
    F: FnMut(TaggedDraft) + 'static,
{
    let index = worker.index() as u64;
    let peers = worker.peers() as u64;
    let probe = ProbeHandle::new();
    let sink = Rc::new(std::cell::RefCell::new(sink));
    let (calls, alarms, patrols) = worker.dataflow::<EventTime, _, _>(|scope| {
        let (calls_handle, calls) = scope.new_unordered_input::<CapacityContainerBuilder<Vec<CallEvent>>>();
        let (alarms_handle, alarms) = scope.new_unordered_input::<CapacityContainerBuilder<Vec<AlarmEvent>>>();
        let (patrols_handle, patrols) = scope.new_unordered_input::<CapacityContainerBuilder<Vec<PatrolEvent>>>();
        let calls = match pairing {
            Some(refused) => pair_calls(calls, refused),
            None => calls,
        };
        let inputs = Inputs { calls, alarms, patrols, reference: reference.clone() };
        let outputs: Vec<StreamVec<'_, EventTime, TaggedDraft>> = models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let tag = i as u32;
                m.build(&inputs).map(move |d| (tag, d))
            })
            .collect();
        let sink = Rc::clone(&sink);
        scope.concatenate(outputs).probe_with(&probe).sink(
            Exchange::new(move |_: &TaggedDraft| alerts_to),
            "AlertSink",
            move |(input, _frontier)| {
                input.for_each(|_cap, data: &mut Vec<TaggedDraft>| {
                    let mut s = sink.borrow_mut();
                    for d in data.drain(..) {
                        (s)(d);
                    }
                });
            },
        );
        (calls_handle, alarms_handle, patrols_handle)
    });
    WorkerInputs {
        calls,
        alarms,
        patrols,
        probe,
        buf_calls: Vec::new(),
        buf_alarms: Vec::new(),
        buf_patrols: Vec::new(),
        index,
        peers,
    }
}

/// The pairing check (see the module doc): calls exchanged by `call_id`, held
/// until the frontier passes their time, checked in `(ts_ms, seq)` order.
/// Passes the accepted calls on at a time no later than their event time.
fn pair_calls<'s>(
    calls: StreamVec<'s, EventTime, CallEvent>,
    refused: Unpaired,
) -> StreamVec<'s, EventTime, CallEvent> {
    let by_call = Exchange::new(|c: &CallEvent| c.call_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32);
    calls.unary_frontier(by_call, "CallPairing", move |cap, _info| {
        let mut cap = Some(cap);
        let mut held: Vec<CallEvent> = Vec::new();
        let mut out: Vec<CallEvent> = Vec::new();
        let mut pairing = crate::admission::Pairing::default();
        move |(input, frontier), output| {
            input.for_each(|_, data| held.append(data));
            let f = frontier.frontier().first().copied();
            // Held calls arrive as a few nearly sorted runs: the stable sort
            // merges them in close to linear time.
            held.sort_by_key(|c| (c.ts_ms, c.seq));
            let ready = f.map_or(held.len(), |f| held.partition_point(|c| c.ts_ms < f));
            for c in held.drain(..ready) {
                match pairing.check(&c) {
                    Ok(()) => out.push(c),
                    Err(why) => refused.borrow_mut().push((c, why)),
                }
            }
            if let Some(c) = cap.as_mut() {
                if !out.is_empty() {
                    output.session(&*c).give_container(&mut out);
                    out.clear();
                }
                match f {
                    Some(f) if *c.time() < f => c.downgrade(&f),
                    Some(_) => {}
                    None => cap = None,
                }
            }
        }
    })
}

/// Wakes a worker parked in `step_or_park(None)` when its input channel has
/// something for it: whoever sends on the channel (the live ingest, a
/// replay's source thread) calls [`Waker::wake`] after each send, and a
/// sender going away wakes it through [`WakeOnDrop`].
///
/// So an idle worker sleeps until there is work: no timer polls it. Messages
/// and progress from other workers wake it already (timely unparks the
/// receiving thread); event time moving on a quiet live feed comes as an
/// epoch too (the service's clock tick, [`crate::live::LiveEngine::advance_clock`]),
/// so nothing waits on a timer inside the dataflow.
///
/// A wake-up cannot be lost: the worker registers its thread before it first
/// looks at the channel, and `unpark` before `park` makes that `park` return
/// at once.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<std::sync::OnceLock<std::thread::Thread>>);

impl Waker {
    /// Called by the worker, on its own thread, before it first reads the channel.
    pub fn register(&self) {
        let _ = self.0.set(std::thread::current());
    }

    /// Wakes the worker (nothing when it has not registered yet: then it has
    /// not looked at the channel yet either).
    pub fn wake(&self) {
        if let Some(t) = self.0.get() {
            t.unpark();
        }
    }
}

/// Wakes a worker when dropped: held by the sending side of its channel, so
/// that the worker sees the channel close (or the sender fail) at once.
#[derive(Debug, Clone)]
pub struct WakeOnDrop(pub Waker);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// Drives a worker from a channel of epochs until it closes, then drains the dataflow.
///
/// At most `in_flight` epochs are admitted ahead of the probe, which bounds
/// memory; the worker keeps stepping while it waits, so peers never starve.
/// With nothing to do it parks until `waker` (the sender's) wakes it.
pub fn drive(
    worker: &mut Worker,
    mut inputs: WorkerInputs,
    epochs: crossbeam_channel::Receiver<Arc<Epoch>>,
    waker: &Waker,
) {
    const IN_FLIGHT: usize = 2;
    waker.register();
    let mut admitted: std::collections::VecDeque<EventTime> = std::collections::VecDeque::new();
    loop {
        while admitted.len() >= IN_FLIGHT {
            let oldest = *admitted.front().expect("non-empty");
            if inputs.probe.less_than(&oldest) {
                // Waiting on the peers: park until a message or progress
                // update wakes this thread, instead of spinning on a core the
                // reader and the other workers need.
                worker.step_or_park(None);
            } else {
                admitted.pop_front();
            }
        }
        match epochs.try_recv() {
            Ok(epoch) => {
                inputs.send(&epoch);
                admitted.push_back(epoch.watermark);
            }
            Err(crossbeam_channel::TryRecvError::Empty) => {
                worker.step_or_park(None);
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
        }
    }
    // Let every operator see the final watermark before the inputs close: an
    // operator that saw only the closed (empty) frontier could not tell which
    // deadlines passed before the end of the input.
    let last = inputs.time();
    while inputs.probe.less_than(&last) {
        worker.step_or_park(None);
    }
    inputs.close();
    while worker.step() {}
}
