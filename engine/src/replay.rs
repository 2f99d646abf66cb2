//! Deterministic replay of a dataset folder through the models.
//!
//! ```text
//!  shares (row groups of calls/alarms/patrols, dealt round robin)
//!  worker 0's shares ── source thread: decode, pseudonymise, stamp ─ worker 0 ─┐  models exchange
//!  worker 1's shares ── source thread: decode, pseudonymise, stamp ─ worker 1 ─┼─ by their keys ─ alerts,
//!  ...                                                                         ┘  (calls: pairing)  a sorted run per worker
//! ```
//!
//! The input is cut into shares (one Parquet row group each, [`crate::share`]),
//! dealt to the workers of the whole cluster; each worker's source thread
//! reads only its shares, decodes them (bad rows to the dead-letter log),
//! stamps each event with its source position (`seq`) and its share's
//! watermark, and hands batches to its worker, which feeds them into the
//! dataflow at its input capability (the least bound of its shares). The
//! models exchange by their own keys and order by `(ts_ms, seq)`; call
//! pairing is checked in the dataflow by `call_id`. No thread sees every
//! event.
//!
//! End of input: each worker tells every other (the finish line, a second
//! small dataflow) what it read; all move their inputs to just past the
//! largest event time, let the dataflow see that frontier, and close:
//! deadlines up to the last event time pass, later ones do not.
//!
//! Outputs: each worker keeps the alerts that reach it (in a cluster, those of
//! the worker with the same local index on every process go to that worker of
//! process 0) and the rejected rows, and sorts them; the sorted runs are
//! merged once the workers are done. Nothing depends on the number of workers
//! or processes, so the outputs are byte-identical for any layout.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, bounded};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::vec::{Broadcast, Input};

use crate::EventTime;
use crate::alert::{self, Alert};
use crate::contract::Table;
use crate::dataflow::{self, TaggedDraft, WakeOnDrop, Waker, WorkerInputs};
use crate::decode::{Decoder, TimeBounds};
use crate::event::Event;
use crate::load;
use crate::model::Model;
use crate::parquet_io::{self, TableFiles};
use crate::pseudonym::Pseudonymiser;
use crate::reference::{Reference, UnitDirectory};
use crate::reject::{RejectLog, Rejected};
use crate::share::{self, Batch, Plan, Source, SourceCounts};
use crate::summary::{ReasonCount, RunStats, Summary, TableCounts};
use crate::{Error, Result};

/// Events per batch a worker feeds at once (and per epoch of the live
/// engine): large enough to amortise timely's progress tracking, small enough
/// to keep latency and memory low.
pub const EPOCH_EVENTS: usize = 16_384;

/// Hears how a replay gets on. The engine library never prints or draws:
/// the binary implements this with a progress bar, a service could export it.
/// (`RefUnwindSafe`: replay options cross `catch_unwind` in the test kit.)
pub trait Progress: Send + Sync + std::fmt::Debug + std::panic::RefUnwindSafe {
    /// The replay starts: this process will read `rows` rows of stream tables.
    fn start(&self, rows: u64);
    /// `rows` more rows were read (called from the source threads, often).
    fn advance(&self, rows: u64);
    /// The replay is over (also when it failed).
    fn finish(&self);
}

/// [`Progress`] that ignores everything (no `--progress`, other processes of a cluster).
#[derive(Debug)]
struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// This multiple of real time (e.g. 60: one hour of events per minute).
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = Error;
    fn from_str(s: &str) -> Result<Speed> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let x: f64 = s.trim_end_matches('x').parse().map_err(|_| {
            Error::config("--speed", format!("'{s}' is neither `max` nor a positive multiple of real time (e.g. 60)"))
        })?;
        if x.is_finite() && x > 0.0 {
            Ok(Speed::Times(x))
        } else {
            Err(Error::config("--speed", format!("{s} must be positive")))
        }
    }
}

/// Running beyond one process: timely's own cluster mode.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Number of processes.
    pub processes: usize,
    /// This process's index, 0-based.
    pub process: usize,
    /// File with one `host:port` per line, one line per process.
    pub hostfile: PathBuf,
}

/// Options of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Dataset folder.
    pub input: PathBuf,
    /// Output folder (`None`: keep alerts in memory only).
    pub out: Option<PathBuf>,
    /// Worker threads per process.
    pub workers: usize,
    /// Cluster layout, when more than one process.
    pub cluster: Option<Cluster>,
    /// Allowed lateness, ms.
    pub lateness_ms: u64,
    /// Pace.
    pub speed: Speed,
    /// Key of the phone-number pseudonyms.
    pub pseudonym_key: String,
    /// Home country calling code (digits), to tell international numbers.
    pub home_cc: String,
    /// Told how the replay gets on (rows read), on process 0; the engine
    /// draws nothing itself (the binary draws a bar).
    pub progress: Option<Arc<dyn Progress>>,
    /// Rows dated more than this far ahead of the wall clock are rejected
    /// (`out_of_range`) instead of dragging the watermark into the future.
    /// Default 5 minutes; `None` turns the bound off (data generated for the future).
    pub max_ahead_ms: Option<u64>,
    /// Who gets alerts that no officer's scope covers (see [`crate::jurisdiction::Jurisdiction::set_fallback`]).
    pub fallback_officer: Option<String>,
    /// Read the stream tables from this message log instead of `input`
    /// (which then holds the reference tables only).
    pub log: Option<Arc<dyn share::LogSource>>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            input: PathBuf::new(),
            out: None,
            workers: 1,
            cluster: None,
            lateness_ms: 60_000,
            speed: Speed::Max,
            pseudonym_key: crate::pseudonym::DEMO_KEY.to_owned(),
            home_cc: "86".to_owned(),
            progress: None,
            max_ahead_ms: Some(TimeBounds::DEFAULT_MAX_AHEAD_MS),
            fallback_officer: None,
            log: None,
        }
    }
}

/// What a replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Deterministic summary (also in `summary.json`).
    pub summary: Summary,
    /// Timing.
    pub stats: RunStats,
    /// The alerts, sorted (empty on processes other than 0).
    pub alerts: Vec<Alert>,
}

/// A dataset folder, validated and with its reference data loaded.
#[derive(Debug)]
pub struct Dataset {
    /// The stream tables present.
    pub streams: Vec<TableFiles>,
    /// Rows per stream table (from Parquet metadata).
    pub stream_rows: BTreeMap<Table, u64>,
    /// The caller's pseudonymiser with a cache sized for the city and warmed
    /// with the subscribers' numbers: the calls decoders share it as a
    /// read-only layer, so each subscriber is hashed once per replay.
    pub pseudonymiser: Pseudonymiser,
    /// Subscribers, jurisdiction, unit directory.
    pub reference: Reference,
    /// Bad rows of the reference tables.
    pub reference_rejects: Vec<Rejected>,
    /// Rows read per reference table.
    pub reference_rows: BTreeMap<Table, u64>,
}

/// Opens a dataset folder: locates and validates every table (schema errors
/// stop here, before anything runs) and loads the reference tables.
pub fn open_dataset(dir: &Path, pseudonymiser: &Pseudonymiser) -> Result<Dataset> {
    open_dataset_with(dir, pseudonymiser, true)
}

/// [`open_dataset`], where the stream tables may all be missing when
/// `need_streams` is false (they come from a log).
fn open_dataset_with(dir: &Path, pseudonymiser: &Pseudonymiser, need_streams: bool) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::config(
            "--input",
            format!(
                "{} is not a folder; expected a dataset folder with calls/alarms/patrols tables (run `citywatch gen --out DIR` to make one)",
                dir.display()
            ),
        ));
    }
    let mut streams = Vec::new();
    let mut stream_rows = BTreeMap::new();
    for t in Table::STREAMS {
        if let Some(files) = parquet_io::locate(dir, t)? {
            stream_rows.insert(t, parquet_io::check(&files)?);
            streams.push(files);
        }
    }
    if streams.is_empty() && need_streams {
        return Err(Error::MissingTable {
            table: "calls",
            dir: dir.to_owned(),
            hint: "a dataset needs at least one of calls, alarms, patrols (as <table>.parquet or a <table>/ folder of parts)",
        });
    }
    let mut rejects = Vec::new();
    let (jurisdiction, mut reference_rows) = load::jurisdiction(dir, &mut rejects)?;
    // Size the cache for the city's subscribers (twice their count, so they
    // all fit); without that table there is nothing to warm.
    let mut warm = pseudonymiser.with_cache_for(0);
    let subscribers = match parquet_io::locate(dir, Table::Subscribers)? {
        Some(f) => {
            let n = parquet_io::check(&f)?;
            reference_rows.insert(Table::Subscribers, n);
            warm = pseudonymiser.with_cache_for(n as usize);
            load::read_subscribers(&f, &mut warm, &mut rejects)?
        }
        None => Default::default(),
    };
    Ok(Dataset {
        streams,
        stream_rows,
        pseudonymiser: warm,
        reference: Reference {
            subscribers: Arc::new(subscribers),
            jurisdiction: Arc::new(jurisdiction),
            units: UnitDirectory::default(),
        },
        reference_rejects: rejects,
        reference_rows,
    })
}

/// Applies the options' fallback officer to the dataset's jurisdiction.
fn set_fallback(dataset: &mut Dataset, opts: &ReplayOptions) {
    if opts.fallback_officer.is_some() {
        Arc::make_mut(&mut dataset.reference.jurisdiction).set_fallback(opts.fallback_officer.clone());
    }
}

/// Turns a model's draft into a routed alert: routed with the grids and the
/// roster in force at its event time (the officer on duty when it was raised).
pub fn complete(models: &[(String, String)], reference: &Reference, (tag, d): TaggedDraft) -> Alert {
    let (model, version) = &models[tag as usize];
    let at = i64::try_from(d.event_ts_ms).unwrap_or(i64::MAX);
    let route = reference.jurisdiction.route_at(d.pos, d.cell, d.route, at);
    Alert {
        alert_id: alert::alert_id(model, &d.kind, &d.subject, d.event_ts_ms),
        model: model.clone(),
        model_version: version.clone(),
        kind: d.kind,
        severity: d.severity.as_str().to_owned(),
        score: d.score,
        event_ts_ms: d.event_ts_ms as i64,
        subject: d.subject,
        lat: d.pos.map(|p| p.lat()),
        lon: d.pos.map(|p| p.lon()),
        cell: route.cell,
        grid: route.grid,
        community: route.community,
        street: route.street,
        district: route.district,
        assignee: route.assignee,
        summary: d.summary,
        evidence: d.evidence,
        action: d.action,
    }
}

/// The timely configuration for a worker/cluster layout.
pub fn timely_config(workers: usize, cluster: Option<&Cluster>) -> Result<timely::Config> {
    let workers = workers.max(1);
    let Some(c) = cluster else {
        return Ok(if workers == 1 { timely::Config::thread() } else { timely::Config::process(workers) });
    };
    let text = std::fs::read_to_string(&c.hostfile).map_err(|e| Error::io(&c.hostfile, e))?;
    let addresses: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    if addresses.len() != c.processes {
        return Err(Error::config(
            "--hostfile",
            format!(
                "{} lists {} hosts but --processes is {}; one host:port line per process",
                c.hostfile.display(),
                addresses.len(),
                c.processes
            ),
        ));
    }
    if c.process >= c.processes {
        return Err(Error::config("--process", format!("{} is not below --processes {}", c.process, c.processes)));
    }
    Ok(timely::Config {
        communication: timely::CommunicationConfig::Cluster {
            threads: workers,
            process: c.process,
            addresses,
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    })
}

/// What travels to process 0 at the end of a replay: rejected rows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Collected {
    /// A row rejected while decoding (never an event).
    Row(Rejected),
    /// A decoded event refused by the pairing check (counted as an event
    /// until then; `true` when it was late).
    Unpaired(Rejected, bool),
}

impl Collected {
    fn rejected(&self) -> &Rejected {
        match self {
            Collected::Row(r) | Collected::Unpaired(r, _) => r,
        }
    }
}

/// Dead-letter order: table (as in [`Table::STREAMS`]), file, row.
fn reject_key(c: &Collected) -> (usize, &str, u64) {
    let r = c.rejected();
    (Table::STREAMS.iter().position(|t| t.name() == r.table).unwrap_or(usize::MAX), r.file.as_str(), r.row)
}

/// What one worker hands back.
#[derive(Debug, Default)]
struct WorkerOut {
    /// The alerts it collected, sorted by [`alert::alert_order`] (a run for [`merge_runs`]).
    alerts: Vec<Alert>,
    /// Rejected rows it collected, sorted by [`reject_key`].
    collected: Vec<Collected>,
    /// Every worker's source counts, summed.
    totals: SourceCounts,
}

/// A worker's end of its source: the batches, and the waker the source uses.
type WorkerFeed = (Receiver<Result<Batch>>, Waker);

/// Spawns one reader thread per local worker: worker `index` (of `peers` in
/// the cluster) reads the shares dealt to it and sends batches to its channel.
fn spawn_sources(
    plan: &Plan,
    first_index: usize,
    peers: usize,
    mut decoders: impl FnMut(Table, usize) -> Vec<Decoder>,
    local: usize,
    opts: &ReplayOptions,
    progress: &Arc<dyn Progress>,
) -> (Vec<WorkerFeed>, Vec<std::thread::JoinHandle<()>>) {
    let mut per_table: Vec<std::vec::IntoIter<Decoder>> = Table::STREAMS
        .iter()
        .map(|&t| if plan.files[table_index(t)].is_empty() { Vec::new() } else { decoders(t, local) }.into_iter())
        .collect();
    let pace = match opts.speed {
        Speed::Max => None,
        Speed::Times(x) => Some(x),
    };
    let mut receivers = Vec::with_capacity(local);
    let mut handles = Vec::with_capacity(local);
    for k in 0..local {
        let decs: Vec<Option<Decoder>> = per_table.iter_mut().map(Iterator::next).collect();
        let mut source = Source::new(plan.dealt(first_index + k, peers), decs, opts.lateness_ms);
        let (tx, rx) = bounded::<Result<Batch>>(2);
        let waker = Waker::default();
        let progress = Arc::clone(progress);
        let wake = waker.clone();
        let handle = std::thread::Builder::new()
            .name(format!("source-{}", first_index + k))
            .spawn(move || {
                // Declared first, dropped last: the worker wakes to find the
                // channel closed, also when this thread panics.
                let _closed = WakeOnDrop(wake.clone());
                let tx = tx;
                let send = |b| {
                    let sent = tx.send(b).is_ok();
                    wake.wake();
                    sent
                };
                if let Err(e) = share::pump(&mut source, EPOCH_EVENTS, pace, progress.as_ref(), |b| send(Ok(b))) {
                    send(Err(e));
                }
            })
            .expect("spawn source thread");
        receivers.push((rx, waker));
        handles.push(handle);
    }
    (receivers, handles)
}

fn table_index(t: Table) -> usize {
    Table::STREAMS.iter().position(|s| *s == t).expect("a stream table")
}

/// How many batches a worker may admit ahead of the probe: shares are dealt
/// round robin, so on time-sorted input worker `k` reads about `k` shares
/// ahead of worker 0 and must run that far ahead to read at the same time as
/// the others; two batches more keep it busy, and the cap bounds memory.
fn in_flight(plan: &Plan, peers: usize) -> usize {
    let largest = plan.shares.iter().map(|s| s.rows).max().unwrap_or(0) as usize;
    (2 + (peers - 1) * largest.div_ceil(EPOCH_EVENTS)).min(64)
}

/// Feeds a worker's batches into its dataflow until its source ends; returns
/// what the source counted. At most `in_flight` batches are admitted ahead of
/// the probe, which bounds memory, until some worker has finished (then the
/// frontier waits for the end of the input and holding back could deadlock).
fn feed(
    worker: &mut timely::worker::Worker,
    inputs: &mut WorkerInputs,
    batches: &Receiver<Result<Batch>>,
    waker: &Waker,
    in_flight: usize,
    collect: &mut InputHandle<u64, Collected>,
    finished: &Rc<RefCell<Vec<SourceCounts>>>,
) -> Result<SourceCounts> {
    let mut admitted: std::collections::VecDeque<EventTime> = std::collections::VecDeque::new();
    waker.register();
    loop {
        while admitted.len() >= in_flight {
            let oldest = *admitted.front().expect("non-empty");
            if inputs.probe.less_than(&oldest) && finished.borrow().is_empty() {
                worker.step_or_park(None);
            } else {
                admitted.pop_front();
            }
        }
        match batches.try_recv() {
            Ok(Ok(batch)) => {
                for r in batch.rejects {
                    collect.send(Collected::Row(r));
                }
                inputs.give(&batch.events);
                if let Some(counts) = batch.end {
                    return Ok(counts);
                }
                inputs.advance(batch.bound);
                admitted.push_back(batch.bound);
            }
            Ok(Err(e)) => return Err(e),
            Err(crossbeam_channel::TryRecvError::Empty) => {
                // The source thread wakes this one when it sends.
                worker.step_or_park(None);
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return Err(Error::Bug("a source thread ended without its last batch".into()));
            }
        }
    }
}

/// One worker of a replay: builds the dataflow and its two small companions
/// (the finish line, where every worker tells the others what it read, and
/// the collection of rejected rows on process 0), feeds its shares, ends the
/// input at the same time on every worker, and returns what it collected.
#[allow(clippy::too_many_arguments)]
fn run_worker(
    worker: &mut timely::worker::Worker,
    models: &[Box<dyn Model>],
    names: &Arc<Vec<(String, String)>>,
    reference: &Reference,
    plan: &Plan,
    (batches, waker): WorkerFeed,
    local_workers: usize,
) -> Result<WorkerOut> {
    let local = worker.index() % local_workers;
    let peers = worker.peers();
    // This worker's alerts and rejects go to the worker with the same local
    // index on process 0: within a process they stay where they are made.
    let target = local as u64;
    // Drafts are completed (routed) and sorted at the end, a run per worker.
    let drafts: Rc<RefCell<Vec<TaggedDraft>>> = Rc::default();
    let unpaired: dataflow::Unpaired = Rc::default();
    let mut inputs = {
        let drafts = Rc::clone(&drafts);
        dataflow::build(worker, models, reference, target, Some(Rc::clone(&unpaired)), move |d| {
            drafts.borrow_mut().push(d);
        })
    };
    let finished: Rc<RefCell<Vec<SourceCounts>>> = Rc::default();
    let mut finish_line = InputHandle::<u64, SourceCounts>::new();
    let collected: Rc<RefCell<Vec<Collected>>> = Rc::default();
    let mut collect = InputHandle::<u64, Collected>::new();
    {
        let (finished, collected) = (Rc::clone(&finished), Rc::clone(&collected));
        worker.dataflow::<u64, _, _>(|scope| {
            scope.input_from(&mut finish_line).broadcast().sink(Pipeline, "FinishLine", move |(input, _)| {
                input.for_each(|_, d| finished.borrow_mut().append(d));
            });
            scope.input_from(&mut collect).sink(
                Exchange::new(move |_: &Collected| target),
                "Collect",
                move |(input, _)| {
                    input.for_each(|_, d| collected.borrow_mut().append(d));
                },
            );
        });
    }
    let fed = feed(worker, &mut inputs, &batches, &waker, in_flight(plan, peers), &mut collect, &finished);
    // Every worker reaches the finish line, even one whose source failed, so
    // that the others end; the failure is reported after.
    let mine = fed.as_ref().map_or_else(|_| SourceCounts::default(), |c| *c);
    finish_line.send(mine);
    finish_line.close();
    if let Some((_, last)) = mine.range {
        inputs.advance(last + 1);
    }
    while finished.borrow().len() < peers {
        worker.step_or_park(None);
    }
    let mut totals = SourceCounts::default();
    for c in finished.borrow().iter() {
        totals.add(c);
    }
    // End of input: time moves to just past the last event, everywhere.
    let end = totals.range.map_or(0, |(_, last)| last + 1).max(inputs.time());
    inputs.advance(end);
    while inputs.probe.less_than(&end) {
        worker.step_or_park(None);
    }
    let probe = inputs.probe.clone();
    inputs.close();
    while !probe.done() {
        worker.step_or_park(None);
    }
    for (call, why) in unpaired.borrow_mut().drain(..) {
        let row = share::unpack(call.seq).2;
        collect.send(Collected::Unpaired(why.rejected(&call, plan.file_of(call.seq), row), call.late));
    }
    collect.close();
    while worker.step_or_park(None) {}
    fed?;
    let mut collected = std::mem::take(&mut *collected.borrow_mut());
    let mut alerts: Vec<Alert> = drafts.borrow_mut().drain(..).map(|d| complete(names, reference, d)).collect();
    alert::sort_alerts(&mut alerts);
    collected.sort_by(|a, b| reject_key(a).cmp(&reject_key(b)));
    Ok(WorkerOut { alerts, collected, totals })
}

/// The decoders of each stream table, one per decode thread, for
/// the workers' sources; takes the dataset's warmed pseudonymiser. The calls decoders
/// share it as a read-only layer (each subscriber hashed once per replay, the
/// table not copied) in front of a cache of their own for the other numbers,
/// sized from the call rows; the other tables get caches sized for their rows.
fn table_decoders(dataset: &mut Dataset, bounds: TimeBounds) -> impl FnMut(Table, usize) -> Vec<Decoder> + use<> {
    let base = dataset.pseudonymiser.with_cache_for(0);
    let mut warm = Some(std::mem::replace(&mut dataset.pseudonymiser, base.clone()));
    let subscribers = !dataset.reference.subscribers.is_empty();
    let units = dataset.reference.units.clone();
    let rows_of = |t| dataset.stream_rows.get(&t).copied().unwrap_or(0) as usize;
    let (calls_rows, alarm_rows) = (rows_of(Table::Calls), rows_of(Table::Alarms));
    move |t, threads| {
        let ps = match t {
            Table::Calls => {
                // Numbers outside the subscribers table mostly appear in one
                // call (its start and end rows, close together): a small cache
                // of recent ones hashes as few as a big one (on the 1M city,
                // 746k numbers hashed with 1 MiB per thread, 732k with 24 MiB).
                // Without subscribers every number is one of those.
                let w = warm.take().expect("one calls table");
                if subscribers { w.share_warm(calls_rows / 256) } else { base.with_cache_for(calls_rows / 8) }
            }
            Table::Alarms => base.with_cache_for(alarm_rows),
            _ => base.with_cache_for(0),
        };
        (0..threads).map(|_| Decoder::new(t, ps.clone(), units.clone()).with_time_bounds(bounds)).collect()
    }
}

/// Runs a replay; writes outputs when `opts.out` is set (process 0 only).
pub fn replay(opts: &ReplayOptions, models: Vec<Box<dyn Model>>) -> Result<ReplayOutcome> {
    let started = Instant::now();
    let pseudonymiser = Pseudonymiser::new(&opts.pseudonym_key, &opts.home_cc);
    let mut dataset = open_dataset_with(&opts.input, &pseudonymiser, opts.log.is_none())?;
    set_fallback(&mut dataset, opts);
    let process = opts.cluster.as_ref().map_or(0, |c| c.process);
    let processes = opts.cluster.as_ref().map_or(1, |c| c.processes);
    let writes = process == 0 && opts.out.is_some();
    if let Some(out) = opts.out.as_ref().filter(|_| writes) {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let mut log = match opts.out.as_ref().filter(|_| writes) {
        Some(out) => RejectLog::to_file(&out.join("rejected.ndjson"))?,
        None => RejectLog::counting(),
    };
    for r in &dataset.reference_rejects {
        log.record(r)?;
    }
    let plan = match &opts.log {
        None => share::plan(&dataset.streams)?,
        Some(log) => {
            // Every process lists the partitions and their offsets itself:
            // the same plan as long as nobody writes to the topics meanwhile.
            let tables = log.tables()?;
            if processes > 1
                && let Some((_, patrols)) = tables.iter().find(|(t, _)| *t == Table::Patrols)
            {
                load::read_log_unit_names(patrols, &dataset.reference.units)?;
            }
            dataset.streams.clear();
            dataset.stream_rows = tables.iter().map(|(t, parts)| (*t, parts.iter().map(|p| p.records).sum())).collect();
            share::log_plan(tables)?
        }
    };
    let plan = Arc::new(plan);
    if processes > 1
        && let Some(patrols) = dataset.streams.iter().find(|f| f.table == Table::Patrols)
    {
        load::read_unit_names(patrols, &dataset.reference.units)?;
    }

    let model_names: Arc<Vec<(String, String)>> = Arc::new(models.iter().map(|m| (m.name(), m.version())).collect());
    let models = Arc::new(models);
    let config = timely_config(opts.workers, opts.cluster.as_ref())?;
    let workers = opts.workers.max(1);

    let progress: Arc<dyn Progress> = match &opts.progress {
        Some(p) if process == 0 => Arc::clone(p),
        _ => Arc::new(Silent),
    };
    {
        // This process's rows: those of its workers' shares.
        let peers = processes * workers;
        let mine = plan.shares.iter().enumerate().filter(|(i, _)| (i % peers) / workers == process);
        progress.start(mine.map(|(_, s)| s.rows).sum());
    }
    let decoders = table_decoders(&mut dataset, TimeBounds { max_ahead_ms: opts.max_ahead_ms, max_behind_ms: None });
    let (receivers, sources) =
        spawn_sources(&plan, process * workers, processes * workers, decoders, workers, opts, &progress);
    let receivers = Arc::new(Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>()));
    let guards = {
        let (models, names, reference, plan) =
            (Arc::clone(&models), Arc::clone(&model_names), dataset.reference.clone(), Arc::clone(&plan));
        timely::execute(config, move |worker| {
            let rx = receivers.lock().expect("receivers lock")[worker.index() % workers]
                .take()
                .expect("one receiver per worker");
            run_worker(worker, &models, &names, &reference, &plan, rx, workers)
        })
        .map_err(Error::Runtime)?
    };
    // Workers finish (or fail) before we report anything.
    let joined: Vec<_> = guards.join();
    progress.finish();
    for s in sources {
        s.join().map_err(|_| Error::Bug("a source thread panicked".into()))?;
    }
    let mut outs = Vec::with_capacity(joined.len());
    for r in joined {
        outs.push(r.map_err(|e| Error::Bug(format!("a worker failed: {e}")))??);
    }
    let totals = outs.first().map(|o| o.totals).unwrap_or_default();
    let (mut events, mut late) = (totals.events, totals.late);
    let runs: Vec<Vec<Collected>> = outs.iter_mut().map(|o| std::mem::take(&mut o.collected)).collect();
    for c in merge_runs(runs, |a, b| reject_key(a).cmp(&reject_key(b))) {
        if let Collected::Unpaired(_, was_late) = &c {
            events -= 1;
            late -= u64::from(*was_late);
        }
        log.record(c.rejected())?;
    }
    log.finish()?;

    let mut alerts = merge_runs(outs.into_iter().map(|o| o.alerts).collect(), alert::alert_order);
    let folded = alert::fold_duplicates(&mut alerts);
    let mut summary = Summary {
        lateness_ms: opts.lateness_ms,
        events,
        late_events: late,
        event_time_range_ms: totals.range,
        models: model_names.as_ref().clone(),
        duplicate_alerts_folded: folded,
        ..Summary::default()
    };
    let rows = Table::STREAMS.iter().zip(totals.rows).filter(|(t, _)| dataset.stream_rows.contains_key(t));
    for (t, n) in rows.chain(dataset.reference_rows.iter().map(|(t, n)| (t, *n))) {
        summary.tables.insert(t.name().to_owned(), TableCounts { read: n, rejected: 0 });
    }
    for (t, n) in log.by_table() {
        summary.tables.entry(t.clone()).or_default().rejected = *n;
    }
    summary.top_reject_reasons = log
        .top_reasons(10)
        .into_iter()
        .map(|(table, column, code, count)| ReasonCount { table, column, code, count })
        .collect();
    for a in &alerts {
        *summary.alerts.entry(a.model.clone()).or_default().entry(a.kind.clone()).or_default() += 1;
    }
    summary.alerts_total = alerts.len() as u64;
    let wall_s = started.elapsed().as_secs_f64();
    let stats = RunStats { workers, processes, wall_s, events_per_s: events as f64 / wall_s.max(1e-9) };
    if let Some(out) = opts.out.as_ref().filter(|_| writes) {
        write_outputs(out, &alerts, &summary, &stats)?;
    }
    Ok(ReplayOutcome { summary, stats, alerts })
}

/// Merges sorted runs into one sorted vector (stable: on ties, earlier runs first).
fn merge_runs<T>(runs: Vec<Vec<T>>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    let mut out = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    let mut iters: Vec<std::vec::IntoIter<T>> = runs.into_iter().map(Vec::into_iter).collect();
    let mut heads: Vec<Option<T>> = iters.iter_mut().map(Iterator::next).collect();
    loop {
        let mut best: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            if let Some(x) = h
                && best.is_none_or(|b| cmp(x, heads[b].as_ref().expect("a head")).is_lt())
            {
                best = Some(i);
            }
        }
        let Some(b) = best else { return out };
        out.push(std::mem::replace(&mut heads[b], iters[b].next()).expect("a head"));
    }
}

fn write_outputs(out: &Path, alerts: &[Alert], summary: &Summary, stats: &RunStats) -> Result<()> {
    alert::write_parquet(&out.join("alerts.parquet"), alerts)?;
    alert::write_ndjson(&out.join("alerts.ndjson"), alerts)?;
    write_json(&out.join("summary.json"), summary)?;
    write_json(&out.join("run.json"), stats)?;
    Ok(())
}

/// Writes a value as pretty JSON with a final newline.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Bug(format!("summary json: {e}")))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

/// The input exactly as the workers feed it (seq, late flag and processing
/// time stamped, call pairing applied), in the canonical `(ts_ms, seq)`
/// order, without running any dataflow, plus the reference data: what a
/// single-threaded reference implementation consumes.
pub fn merged_events(opts: &ReplayOptions) -> Result<(Vec<Event>, Reference)> {
    let pseudonymiser = Pseudonymiser::new(&opts.pseudonym_key, &opts.home_cc);
    let mut dataset = open_dataset_with(&opts.input, &pseudonymiser, opts.log.is_none())?;
    set_fallback(&mut dataset, opts);
    let plan = share::plan(&dataset.streams)?;
    let mut decoders =
        table_decoders(&mut dataset, TimeBounds { max_ahead_ms: opts.max_ahead_ms, max_behind_ms: None });
    let decs = Table::STREAMS
        .iter()
        .map(|&t| (!plan.files[table_index(t)].is_empty()).then(|| decoders(t, 1).pop().expect("one decoder")))
        .collect();
    let mut source = Source::new(plan.dealt(0, 1), decs, opts.lateness_ms);
    let mut events = Vec::new();
    while let Some(chunk) = source.next_chunk()? {
        events.extend_from_slice(&chunk.events);
    }
    events.sort_by_key(|e| (e.ts_ms(), e.seq()));
    let mut pairing = crate::admission::Pairing::default();
    events.retain(|e| match e {
        Event::Call(c) => pairing.check(c).is_ok(),
        _ => true,
    });
    Ok((events, dataset.reference))
}
