//! Live mode: the same dataflow as replay, fed by ingest requests instead of
//! files, with the same admission ([`crate::admission`]: sequence numbers in
//! arrival order, the watermark and lateness of [`crate::lateness`], call
//! pairing checks).
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
//!
//! Reference rows sent while the service runs ([`LiveEngine::update_reference`]:
//! registrations, cancellations, roster changes) take effect from their time
//! in event time, never before the latest event time admitted (see
//! [`crate::changes`]).
//!
//! With a journal ([`LiveOptions::journal`], see [`crate::journal`]) every
//! epoch is written before it is fed to the workers and synced before
//! [`LiveEngine::ingest_keyed`] returns; [`LiveEngine::restore`] feeds the
//! journaled epochs again on start, so a restarted engine holds the model
//! state (open deadlines, windows) of the one that stopped, and fires the
//! same alerts with the same ids. A request's idempotency key is journaled
//! with it: a retry after a lost answer is recognised, also across a restart.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, bounded};

use crate::admission::{Admission, Pairing};
use crate::alert::Alert;
use crate::changes::{ReferenceChange, ReferenceLog};
use crate::dataflow::{self, Epoch, Waker};
use crate::event::Event;
use crate::journal::{Journal, JournalOptions, RecentKeys, Record, SyncHandle};
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
    /// The journal; `None`: events live only in memory (a restart loses the
    /// model state). Opened and read back by [`LiveEngine::restore`].
    pub journal: Option<JournalOptions>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions { workers: 1, lateness_ms: 60_000, journal: None }
    }
}

/// What [`LiveEngine::ingest_keyed`] did with a request it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (and journaled, when there is a journal).
    Applied(Ingested),
    /// A request with this idempotency key was applied before: nothing was done.
    Duplicate,
}

/// What [`LiveEngine::restore`] fed back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Journaled epochs (clock ticks included).
    pub epochs: u64,
    /// Events in them.
    pub events: u64,
}

/// What an accepted request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events accepted.
    pub events: u64,
    /// Of which late (processed at the watermark, marked late).
    pub late: u64,
}

/// What [`LiveEngine::update_reference`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReferenceApplied {
    /// Rows applied.
    pub rows: u64,
    /// Of which dated at or before the latest event time admitted, and
    /// applied from just after it.
    pub moved: u64,
    /// The earliest time from which a row applies (after moving).
    pub from_ms: Option<i64>,
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
    /// The ingest is one share: one watermark, `seq` in arrival order.
    admission: Admission,
    /// The open calls.
    pairing: Pairing,
    senders: Vec<Sender<Arc<Epoch>>>,
    /// Wakes the worker behind each sender: idle workers sleep until an epoch comes.
    wakers: Vec<Waker>,
    /// Totals since start.
    events: u64,
    late: u64,
    /// The journal, once [`LiveEngine::restore`] opened it.
    journal: Option<Journal>,
    /// Journal options not yet opened: ingest waits for `restore`.
    unopened: Option<JournalOptions>,
    /// Idempotency keys of recent requests.
    keys: RecentKeys,
    /// The newest key starting with [`LOG_KEY_PREFIX`] (see [`LiveEngine::log_position`]).
    log_position: Option<String>,
    /// Unit names, to journal with patrol events (tokens are hashes).
    units: crate::reference::UnitDirectory,
    /// Shared with [`LiveEngine::queue_depth`].
    depth: Arc<std::sync::atomic::AtomicUsize>,
    /// The reference data the workers share (live changes go into it).
    reference: Reference,
    /// Accepted live reference changes, once [`LiveEngine::restore`] opened it.
    changes: Option<ReferenceLog>,
    /// Live reference rows accepted, and of them moved past the latest event time.
    reference_rows: (u64, u64),
}

/// The call id of the call row at `index` of a request.
fn call_id_at(events: &[Event], index: usize) -> u64 {
    match &events[index] {
        Event::Call(c) => c.call_id,
        _ => unreachable!("pairing refuses call rows only"),
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // Close the channels first, then wake the workers to see them closed.
        self.senders.clear();
        self.wakers.iter().for_each(Waker::wake);
    }
}

impl Feed {
    /// Feeds an epoch to every worker; the number of workers that have stopped.
    fn send(&self, epoch: Epoch) -> usize {
        let epoch = Arc::new(epoch);
        let depth = self.senders.iter().map(|s| s.len() + 1).max().unwrap_or(0);
        self.depth.store(depth, std::sync::atomic::Ordering::Relaxed);
        // Each worker is woken as soon as its epoch is queued: a send that
        // waits on a full queue never holds back the wake-up of another.
        let mut stopped = 0;
        for (s, w) in self.senders.iter().zip(&self.wakers) {
            stopped += usize::from(s.send(Arc::clone(&epoch)).is_err());
            w.wake();
        }
        stopped
    }

    fn stopped(&self, stopped: usize) -> Refused {
        // A worker only hangs up when it has failed: say so rather than
        // acknowledge events that part of the dataflow will never see.
        Refused::Unavailable(format!(
            "{stopped} of {} dataflow workers have stopped (see the service log); restart the service",
            self.senders.len()
        ))
    }
}

/// Idempotency keys that start with this are a message-log feed's position:
/// the feed names, in its key, where every partition it reads stands after
/// the request, so the newest such key in the journal is where a restarted
/// feed resumes (the offsets are committed with the state they produced).
pub const LOG_KEY_PREFIX: &str = "log:";

/// The running live dataflow.
pub struct LiveEngine {
    feed: Mutex<Option<Feed>>,
    /// The busiest worker's queue as of the last hand-over (a gauge).
    depth: Arc<std::sync::atomic::AtomicUsize>,
    /// The journal's sync state, readable without the feed lock (a gauge).
    sync: std::sync::OnceLock<SyncHandle>,
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
        mut reference: Reference,
        opts: LiveOptions,
        alerts: Sender<Alert>,
    ) -> Result<Self> {
        // Before the workers clone it: they all see the rows sent live.
        Arc::make_mut(&mut reference.subscribers).make_live();
        let shared = reference.clone();
        let workers = opts.workers.max(1);
        let names: Arc<Vec<(String, String)>> = Arc::new(models.iter().map(|m| (m.name(), m.version())).collect());
        let models = Arc::new(models);
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        let wakers: Vec<Waker> = (0..workers).map(|_| Waker::default()).collect();
        for waker in &wakers {
            let (tx, rx) = bounded::<Arc<Epoch>>(64);
            senders.push(tx);
            receivers.push(Some((rx, waker.clone())));
        }
        let receivers = Arc::new(Mutex::new(receivers));
        let config = crate::replay::timely_config(workers, None)?;
        let units = reference.units.clone();
        let depth = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let guards = timely::execute(config, move |worker| {
            let (rx, waker) =
                receivers.lock().expect("receivers lock")[worker.index()].take().expect("one receiver per worker");
            let (names, refc, alerts) = (Arc::clone(&names), reference.clone(), alerts.clone());
            let inputs = dataflow::build(worker, &models, &reference, 0, None, move |draft| {
                // The consumer hanging up means the service is shutting down.
                let _ = alerts.send(complete(&names, &refc, draft));
            });
            dataflow::drive(worker, inputs, rx, &waker);
        })
        .map_err(Error::Runtime)?;
        Ok(LiveEngine {
            feed: Mutex::new(Some(Feed {
                admission: Admission::new(opts.lateness_ms, 0),
                pairing: Pairing::default(),
                senders,
                wakers,
                events: 0,
                late: 0,
                journal: None,
                unopened: opts.journal,
                keys: RecentKeys::default(),
                log_position: None,
                units,
                depth: Arc::clone(&depth),
                reference: shared,
                changes: None,
                reference_rows: (0, 0),
            })),
            guards: Mutex::new(Some(guards)),
            depth,
            sync: std::sync::OnceLock::new(),
        })
    }

    /// Opens the journal and feeds every journaled epoch to the workers again,
    /// restoring the sequence numbers, the watermark, open calls, unit names
    /// and recent idempotency keys. Call once, before ingest, with the alerts
    /// channel drained (the restored dataflow fires alerts). Without a
    /// journal it does nothing.
    pub fn restore(&self) -> Result<Restored> {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return Err(Error::Runtime("the engine is shut down".into())) };
        let Some(opts) = feed.unopened.take() else { return Ok(Restored::default()) };
        // The reference changes first: the journaled epochs saw them.
        let (log, changes) = ReferenceLog::open(&opts.dir, opts.fsync)?;
        for c in &changes {
            c.apply(&feed.reference);
            feed.reference_rows.0 += c.len() as u64;
        }
        feed.changes = Some(log);
        let mut done = Restored::default();
        let journal = Journal::open(opts, |rec| {
            for (token, name) in &rec.units {
                feed.units.insert(*token, name);
            }
            if let Some(k) = rec.key {
                // A log position is not a retry key: kept alone, not in the set.
                if k.starts_with(LOG_KEY_PREFIX) {
                    feed.log_position = Some(k);
                } else {
                    feed.keys.insert(k);
                }
            }
            if let Some(m) = rec.max_seen {
                feed.admission.observe(m);
            }
            for e in &rec.events {
                if let Event::Call(c) = e {
                    // Journaled rows passed the check once: this only
                    // rebuilds the open calls.
                    let _ = feed.pairing.check(c);
                }
                feed.admission.restored(e);
                feed.late += u64::from(e.late());
            }
            let n = rec.events.len() as u64;
            feed.events += n;
            done.events += n;
            done.epochs += 1;
            let stopped = feed.send(Epoch { events: rec.events, watermark: rec.watermark });
            if stopped > 0 {
                return Err(Error::Runtime(format!(
                    "{stopped} dataflow workers stopped while the journal was restored"
                )));
            }
            Ok(())
        })?;
        let _ = self.sync.set(journal.sync_handle());
        feed.journal = Some(journal);
        Ok(done)
    }

    /// Ingests one request's decoded events, in request order: all or nothing.
    /// `Err(Refused::Rows)` carries one reason per refused row, `(index in the
    /// request, reason)`; `Err(Refused::Unavailable)` says the engine is not running.
    pub fn ingest(&self, events: Vec<Event>) -> std::result::Result<Ingested, Refused> {
        match self.ingest_keyed(None, events)? {
            Outcome::Applied(i) => Ok(i),
            Outcome::Duplicate => Ok(Ingested::default()),
        }
    }

    /// [`LiveEngine::ingest`] with the request's idempotency key: a key seen
    /// before (in this process or in the journal) is [`Outcome::Duplicate`]
    /// and nothing is applied. With a journal the request is on disk (per
    /// its fsync policy) before this returns `Ok`.
    pub fn ingest_keyed(&self, key: Option<&str>, events: Vec<Event>) -> std::result::Result<Outcome, Refused> {
        self.ingest_with(key, events, true)
    }

    /// [`LiveEngine::ingest_keyed`] for a message-log feed (`key`: its
    /// position, [`LOG_KEY_PREFIX`]): applied and journaled, but not waited
    /// for on disk. Nobody is answered, and nothing is lost by not waiting:
    /// a journal cut short by a crash ends at an earlier position, and the
    /// feed resumes there and reads the same records again (the same
    /// batches, the same alert ids, which the store keeps once). So the feed
    /// does not pay one sync per batch.
    pub fn ingest_log(&self, key: &str, events: Vec<Event>) -> std::result::Result<Outcome, Refused> {
        self.ingest_with(Some(key), events, false)
    }

    fn ingest_with(
        &self,
        key: Option<&str>,
        mut events: Vec<Event>,
        wait_sync: bool,
    ) -> std::result::Result<Outcome, Refused> {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return Err(Refused::Unavailable("the engine is shut down".to_owned())) };
        if feed.unopened.is_some() {
            return Err(Refused::Unavailable("the journal has not been restored yet".to_owned()));
        }
        if key.is_some_and(|k| feed.keys.contains(k)) {
            return Ok(Outcome::Duplicate);
        }
        // Pairing is checked against the open calls and the request's own
        // rows, and applied only once the request is journaled: a refused
        // request changes nothing.
        let calls =
            events.iter().enumerate().filter_map(|(i, e)| if let Event::Call(c) = e { Some((i, c)) } else { None });
        let changes = feed.pairing.check_request(calls).map_err(|refused| {
            Refused::Rows(refused.into_iter().map(|(i, why)| (i, why.reason(call_id_at(&events, i)))).collect())
        })?;
        // Stamp on a copy of the admission: a journal that cannot be written
        // leaves the feed as it was.
        let mut admission = feed.admission.clone();
        let mut late = 0;
        for e in events.iter_mut() {
            late += u64::from(admission.admit(e, 0));
        }
        let mut lsn = None;
        if let Some(journal) = feed.journal.as_mut() {
            let mut units: Vec<(u64, String)> = events
                .iter()
                .filter_map(|e| if let Event::Patrol(p) = e { Some(p.unit) } else { None })
                .map(|t| (t, feed.units.name(t)))
                .collect();
            units.sort_unstable();
            units.dedup();
            let rec = Record {
                key: key.map(str::to_owned),
                max_seen: admission.max_seen(),
                watermark: admission.watermark(),
                units,
                events,
            };
            lsn = Some(journal.append(&rec).map_err(|e| {
                Refused::Unavailable(format!("the journal cannot be written ({e}); nothing was applied"))
            })?);
            events = rec.events;
        }
        feed.pairing.apply(changes);
        feed.admission = admission;
        let n = events.len() as u64;
        feed.events += n;
        feed.late += late;
        if let Some(k) = key {
            if k.starts_with(LOG_KEY_PREFIX) {
                feed.log_position = Some(k.to_owned());
            } else {
                feed.keys.insert(k.to_owned());
            }
        }
        let stopped = feed.send(Epoch { events, watermark: feed.admission.watermark() });
        if stopped > 0 {
            return Err(feed.stopped(stopped));
        }
        let sync = feed.journal.as_ref().map(Journal::sync_handle);
        drop(guard);
        // Group commit: wait for the sync outside the lock, so the requests
        // that arrive meanwhile share the next one.
        if let (Some(sync), Some(lsn), true) = (sync, lsn, wait_sync) {
            sync.sync_to(lsn).map_err(|e| Refused::Unavailable(format!("the journal cannot be synced: {e}")))?;
        }
        Ok(Outcome::Applied(Ingested { events: n, late }))
    }

    /// Applies reference rows sent live (registrations, cancellations,
    /// roster changes) from their `from_ms` in event time, as a replay of
    /// the same rows would. A row dated at or before the latest event time
    /// admitted (events and clock) is moved to just after it (see
    /// [`crate::changes`]); with a journal the change is on disk before it
    /// is applied. All rows or none.
    pub fn update_reference(&self, mut change: ReferenceChange) -> std::result::Result<ReferenceApplied, Refused> {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return Err(Refused::Unavailable("the engine is shut down".to_owned())) };
        if feed.unopened.is_some() {
            return Err(Refused::Unavailable("the journal has not been restored yet".to_owned()));
        }
        let floor = feed.admission.max_seen().map(|m| i64::try_from(m).unwrap_or(i64::MAX - 1) + 1);
        let moved = floor.map_or(0, |f| change.clamp(f));
        if let Some(log) = feed.changes.as_mut() {
            log.append(&change).map_err(|e| {
                Refused::Unavailable(format!("the reference change cannot be written ({e}); nothing was applied"))
            })?;
        }
        change.apply(&feed.reference);
        feed.reference_rows.0 += change.len() as u64;
        feed.reference_rows.1 += moved;
        Ok(ReferenceApplied { rows: change.len() as u64, moved, from_ms: change.earliest() })
    }

    /// Live reference rows accepted since start (restored ones included),
    /// and of them moved past the latest event time.
    pub fn reference_totals(&self) -> (u64, u64) {
        self.feed.lock().expect("feed lock").as_ref().map_or((0, 0), |f| f.reference_rows)
    }

    /// The newest applied idempotency key that starts with [`LOG_KEY_PREFIX`]
    /// (restored from the journal, then kept as requests are applied).
    pub fn log_position(&self) -> Option<String> {
        self.feed.lock().expect("feed lock").as_ref().and_then(|f| f.log_position.clone())
    }

    /// Advances event time to `now_ms - lateness` with no new events (never backwards).
    pub fn advance_clock(&self, now_ms: EventTime) {
        let mut guard = self.feed.lock().expect("feed lock");
        let Some(feed) = guard.as_mut() else { return };
        if feed.unopened.is_some() {
            return; // not restored yet: the journal decides where time stands
        }
        let before = feed.admission.watermark();
        let mut admission = feed.admission.clone();
        admission.observe(now_ms);
        let after = admission.watermark();
        if after > before {
            // Journaled (never synced on its own) so a restore feeds the same epochs.
            if let Some(journal) = feed.journal.as_mut() {
                let tick = Record {
                    key: None,
                    max_seen: admission.max_seen(),
                    watermark: after,
                    units: Vec::new(),
                    events: Vec::new(),
                };
                if let Err(e) = journal.append(&tick) {
                    tracing::error!(event_time_ms = before, error = %e, "clock tick not journaled; event time stays");
                    return;
                }
            }
            feed.admission = admission;
            let _ = feed.send(Epoch { events: Vec::new(), watermark: after });
        }
    }

    /// Epochs waiting for the busiest worker (each worker's queue holds up to
    /// 64), as of the last epoch handed over. Lock-free: a stalled engine
    /// (an ingest blocked holding the feed) still reports, at the full queue.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Journal bytes written but not yet synced (0 without a journal or with fsync off).
    pub fn journal_lag_bytes(&self) -> u64 {
        self.sync.get().map_or(0, SyncHandle::lag)
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        self.feed.lock().expect("feed lock").as_ref().map_or(0, |f| f.admission.watermark())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::CallPhase;

    fn call(ts_ms: u64, call_id: u64, phase: CallPhase) -> Event {
        Event::Call(crate::testkit::call_event(call_id, phase, ts_ms))
    }

    #[test]
    fn a_request_is_paired_against_the_open_calls_and_its_own_rows_all_or_nothing() {
        let (tx, _rx) = crossbeam_channel::bounded(16);
        let engine = LiveEngine::start(Vec::new(), Reference::empty(), LiveOptions::default(), tx).unwrap();
        engine.restore().unwrap();
        let t = 1_772_409_600_000;
        // A start and its end in one request; another call left open.
        let ok = engine.ingest(vec![
            call(t, 1, CallPhase::Start),
            call(t + 1, 1, CallPhase::End),
            call(t + 2, 2, CallPhase::Start),
        ]);
        assert_eq!(ok.unwrap().events, 3);
        // Refused whole: call 2 is open already (row 0), and call 1 ended (row 2);
        // the good row 1 (a new call 3) is not applied either.
        let refused = engine.ingest(vec![
            call(t + 3, 2, CallPhase::Start),
            call(t + 4, 3, CallPhase::Start),
            call(t + 5, 1, CallPhase::End),
        ]);
        match refused {
            Err(Refused::Rows(rows)) => assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 2]),
            other => panic!("expected refused rows, got {other:?}"),
        }
        assert_eq!(engine.totals().0, 3, "nothing of the refused request was applied");
        // Call 3 was not opened by the refused request; call 2 is still open.
        assert!(matches!(engine.ingest(vec![call(t + 6, 3, CallPhase::End)]), Err(Refused::Rows(_))));
        assert_eq!(
            engine.ingest(vec![call(t + 7, 2, CallPhase::End), call(t + 8, 2, CallPhase::Start)]).unwrap().events,
            2
        );
        engine.shutdown().unwrap();
    }

    #[test]
    fn reference_changes_are_moved_past_what_was_seen_and_restored_from_disk() {
        use crate::changes::ReferenceChange;
        use crate::reference::Subscriber;
        let dir = tempfile::tempdir().unwrap();
        let opts = LiveOptions { workers: 1, lateness_ms: 0, journal: Some(JournalOptions::in_dir(dir.path())) };
        let t = 1_772_409_600_000u64;
        let sub = Subscriber { age: Some(30), ..Subscriber::default() };
        let change = ReferenceChange::Subscribers(vec![(7, t as i64 - 5, Some(sub)), (8, t as i64 + 10, Some(sub))]);
        // Start with a reference made live here, so this test keeps a clone that sees the rows.
        let live_reference = || {
            let mut r = Reference::empty();
            Arc::make_mut(&mut r.subscribers).make_live();
            r
        };
        {
            let (tx, _rx) = crossbeam_channel::bounded(16);
            let engine = LiveEngine::start(Vec::new(), live_reference(), opts.clone(), tx).unwrap();
            assert!(matches!(engine.update_reference(change.clone()), Err(Refused::Unavailable(_))), "before restore");
            engine.restore().unwrap();
            engine.ingest(vec![call(t, 1, CallPhase::Start)]).unwrap();
            let applied = engine.update_reference(change).unwrap();
            // Number 7 was dated before the call already admitted: it holds from just after it.
            assert_eq!((applied.rows, applied.moved, applied.from_ms), (2, 1, Some(t as i64 + 1)));
            engine.shutdown().unwrap();
        }
        let (tx, _rx) = crossbeam_channel::bounded(16);
        let reference = live_reference();
        let engine = LiveEngine::start(Vec::new(), reference.clone(), opts, tx).unwrap();
        engine.restore().unwrap();
        assert_eq!(engine.reference_totals(), (2, 0), "restored from reference.ndjson");
        let subs = &reference.subscribers;
        assert_eq!((subs.get_at(&7, t), subs.get_at(&7, t + 1)), (None, Some(sub)));
        assert_eq!((subs.get_at(&8, t + 9), subs.get_at(&8, t + 10)), (None, Some(sub)));
        engine.shutdown().unwrap();
    }
}
