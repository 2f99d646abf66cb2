//! Live mode: the same dataflow as replay, fed by ingest requests instead of
//! files, with the same semantics (sequence numbers in arrival order, the
//! watermark and lateness of [`crate::lateness`], call pairing checks).
//!
//! Each [`LiveEngine::ingest`] call is one epoch: its events get the next
//! sequence numbers and the watermark advances past them. Event time also
//! advances with no events through [`LiveEngine::advance_clock`] (the server
//! calls it with the wall clock), so deadlines fire in quiet periods: a
//! dispatch deadline passes at 3 a.m. even when nobody calls.
//!
//! A request is applied whole or not at all: if any call row breaks pairing
//! (an `end` with no open `start`, a second `start`), the request is refused
//! with every reason and nothing of it enters the dataflow.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, bounded};

use crate::alert::Alert;
use crate::contract::CallPhase;
use crate::dataflow::{self, Epoch};
use crate::event::Event;
use crate::lateness::Watermark;
use crate::model::Model;
use crate::reference::Reference;
use crate::replay::complete;
use crate::{Error, EventTime, Result};

/// Options of the live engine.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Worker threads.
    pub workers: usize,
    /// Allowed lateness, ms.
    pub lateness_ms: u64,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions { workers: 1, lateness_ms: 60_000 }
    }
}

/// What an accepted request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events accepted.
    pub events: u64,
    /// Of which late (processed at the watermark, marked late).
    pub late: u64,
}

/// Why [`LiveEngine::ingest`] took nothing of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Rows the dataflow cannot take (a call `end` with no open `start`, a
    /// second `start`): `(index in the request, reason)`. The sender's data is wrong.
    Rows(Vec<(usize, String)>),
    /// The engine cannot take events (shut down, or a worker has stopped).
    /// The data may be fine: retry against a running engine.
    Unavailable(String),
}

struct Feed {
    watermark: Watermark,
    seq: u64,
    open_calls: HashSet<u64>,
    senders: Vec<Sender<Arc<Epoch>>>,
    /// Totals since start.
    events: u64,
    late: u64,
}

/// The running live dataflow.
pub struct LiveEngine {
    feed: Mutex<Option<Feed>>,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
}

impl std::fmt::Debug for LiveEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEngine").finish_non_exhaustive()
    }
}

impl LiveEngine {
    /// Starts the workers. Routed alerts go to `alerts` (a bounded channel: a
    /// slow consumer slows the dataflow down instead of growing memory).
    pub fn start(
        models: Vec<Box<dyn Model>>,
        reference: Reference,
        opts: LiveOptions,
        alerts: Sender<Alert>,
    ) -> Result<Self> {
        let workers = opts.workers.max(1);
        let names: Arc<Vec<(String, String)>> = Arc::new(models.iter().map(|m| (m.name(), m.version())).collect());
        let models = Arc::new(models);
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = bounded::<Arc<Epoch>>(64);
            senders.push(tx);
            receivers.push(Some(rx));
        }
        let receivers = Arc::new(Mutex::new(receivers));
        let config = crate::replay::timely_config(workers, None)?;
        let guards = timely::execute(config, move |worker| {
            let rx = receivers.lock().expect("receivers lock")[worker.index()].take().expect("one receiver per worker");
            let (names, refc, alerts) = (Arc::clone(&names), reference.clone(), alerts.clone());
            let inputs = dataflow::build(worker, &models, &reference, move |draft| {
                // The consumer hanging up means the service is shutting down.
                let _ = alerts.send(complete(&names, &refc, draft));
            });
            dataflow::drive(worker, inputs, rx);
        })
        .map_err(Error::Runtime)?;
        Ok(LiveEngine {
            feed: Mutex::new(Some(Feed {
                watermark: Watermark::new(opts.lateness_ms),
                seq: 0,
                open_calls: HashSet::new(),
                senders,
                events: 0,
                late: 0,
            })),
            guards: Mutex::new(Some(guards)),
        })
    }

    /// Ingests one request's decoded events, in request order: all or nothing.
    /// `Err(Refused::Rows)` carries one reason per refused row, `(index in the
    /// request, reason)`; `Err(Refused::Unavailable)` says the engine is not running.
    pub fn ingest(&self, mut events: Vec<Event>) -> std::result::Result<Ingested, Refused> {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return Err(Refused::Unavailable("the engine is shut down".to_owned())) };
        // Check pairing on a copy first, so a refused request changes nothing.
        let mut open = feed.open_calls.clone();
        let mut refused = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if let Event::Call(c) = e {
                match c.phase {
                    CallPhase::Start if !open.insert(c.call_id) => {
                        refused.push((i, format!("call_id {} already has an open start row", c.call_id)))
                    }
                    CallPhase::End if !open.remove(&c.call_id) => {
                        refused.push((i, format!("end row of call_id {} has no open start row before it", c.call_id)))
                    }
                    _ => {}
                }
            }
        }
        if !refused.is_empty() {
            return Err(Refused::Rows(refused));
        }
        feed.open_calls = open;
        let mut late = 0;
        for e in events.iter_mut() {
            let (time, is_late) = feed.watermark.admit(e.ts_ms());
            late += u64::from(is_late);
            e.stamp(feed.seq, is_late);
            e.set_ts(time);
            feed.seq += 1;
        }
        let n = events.len() as u64;
        feed.events += n;
        feed.late += late;
        let epoch = Arc::new(Epoch { events, watermark: feed.watermark.current() });
        let mut stopped = 0;
        for s in &feed.senders {
            stopped += usize::from(s.send(Arc::clone(&epoch)).is_err());
        }
        if stopped > 0 {
            // A worker only hangs up when it has failed: say so rather than
            // acknowledge events that part of the dataflow will never see.
            return Err(Refused::Unavailable(format!(
                "{stopped} of {} dataflow workers have stopped (see the service log); restart the service",
                feed.senders.len()
            )));
        }
        Ok(Ingested { events: n, late })
    }

    /// Advances event time to `now_ms - lateness` with no new events (never backwards).
    pub fn advance_clock(&self, now_ms: EventTime) {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return };
        let before = feed.watermark.current();
        feed.watermark.observe(now_ms);
        let after = feed.watermark.current();
        if after > before {
            let epoch = Arc::new(Epoch { events: Vec::new(), watermark: after });
            for s in &feed.senders {
                let _ = s.send(Arc::clone(&epoch));
            }
        }
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        self.feed.lock().expect("feed lock").as_ref().map_or(0, |f| f.watermark.current())
    }

    /// Events ingested and late events since start.
    pub fn totals(&self) -> (u64, u64) {
        self.feed.lock().expect("feed lock").as_ref().map_or((0, 0), |f| (f.events, f.late))
    }

    /// Stops accepting events, lets the dataflow finish what it has, and joins the workers.
    pub fn shutdown(&self) -> Result<()> {
        drop(self.feed.lock().expect("feed lock").take());
        if let Some(g) = self.guards.lock().expect("guards lock").take() {
            for r in g.join() {
                r.map_err(|e| Error::Bug(format!("a live worker failed: {e}")))?;
            }
        }
        Ok(())
    }
}

impl Drop for LiveEngine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
