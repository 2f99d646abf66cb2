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
//! Partitioning: worker `w` of `p` takes the events with `seq % p == w`; seq is
//! assigned by the merger in input order, so the split is the same for any
//! process layout, and models exchange by their own keys.

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

/// A chunk of merged input with the watermark reached after it.
#[derive(Debug, Default)]
pub struct Epoch {
    /// Events in merge order, `seq` and `late` stamped, each with `ts_ms >=` the
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
            // The merger numbers an epoch's events consecutively: this worker's
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

/// Builds the dataflow on one worker: inputs, every model, and a sink that
/// passes each alert draft to `sink` on worker 0 (all drafts are exchanged there).
pub fn build<F>(worker: &mut Worker, models: &[Box<dyn Model>], reference: &Reference, sink: F) -> WorkerInputs
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
            Exchange::new(|_: &TaggedDraft| 0u64),
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

/// Drives a worker from a channel of epochs until it closes, then drains the dataflow.
///
/// At most `in_flight` epochs are admitted ahead of the probe, which bounds
/// memory; the worker keeps stepping while it waits, so peers never starve.
pub fn drive(worker: &mut Worker, mut inputs: WorkerInputs, epochs: crossbeam_channel::Receiver<Arc<Epoch>>) {
    const IN_FLIGHT: usize = 2;
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
                worker.step_or_park(Some(std::time::Duration::from_millis(1)));
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
