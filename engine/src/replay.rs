//! Deterministic replay of a dataset folder through the models.
//!
//! ```text
//!  calls/*.parquet ──decode──┐
//!  alarms.parquet  ──decode──┼─ merge by event time ─ watermark ─ epochs ─┬─ worker 0 ─┐
//!  patrols.parquet ──decode──┘   (pairing checks,      (late?)           ├─ worker 1 ─┼─ alerts ─ route ─ write
//!                                 seq numbers)                            └─ ...      ─┘
//! ```
//!
//! One thread per table reads its Parquet files in order; decode threads turn
//! the record batches into compact events (bad rows to the dead-letter log):
//! the calls table's batches are shared out over one thread per core and read
//! back in file order, the small tables have one decode thread each. The
//! merger takes, at each step, the event at the head of the table with the
//! smallest event time, so sorted tables merge exactly and unsorted ones in a
//! deterministic order; it numbers events
//! (`seq`), checks call pairing (an `end` needs an open `start`), applies the
//! watermark ([`crate::lateness`]) and cuts epochs that every worker receives.
//! Each worker keeps its share (`seq % peers`) and the models exchange by
//! their own keys. At the end of the input the watermark moves to just past the
//! last event: deadlines up to the last event time pass, later ones do not.
//!
//! Nothing here depends on the number of workers or processes, so the alerts
//! are byte-identical for any layout. In a cluster every process runs the same
//! merger over the same files (cheap next to the dataflow) and keeps its
//! workers' shares; process 0 holds worker 0, which receives every alert and
//! writes the outputs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::alert::{self, Alert};
use crate::contract::{CallPhase, Table};
use crate::dataflow::{self, Epoch, TaggedDraft};
use crate::event::Event;
use crate::lateness::{Watermark, utc_short};
use crate::model::Model;
use crate::pseudonym::Pseudonymiser;
use crate::read::{self, Decoder, TableFiles, TimeBounds};
use crate::reference::{Reference, UnitDirectory};
use crate::reject::{RejectLog, Rejected};
use crate::summary::{ReasonCount, RunStats, Summary, TableCounts};
use crate::{Error, Result};

/// Events per epoch: large enough to amortise timely's progress tracking,
/// small enough to keep latency and memory low.
pub const EPOCH_EVENTS: usize = 16_384;

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
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Rows dated more than this far ahead of the wall clock are rejected
    /// (`out_of_range`) instead of dragging the watermark into the future.
    /// Default 5 minutes; `None` turns the bound off (data generated for the future).
    pub max_ahead_ms: Option<u64>,
    /// Who gets alerts that no officer's scope covers (see [`crate::jurisdiction::Jurisdiction::set_fallback`]).
    pub fallback_officer: Option<String>,
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
            progress: false,
            max_ahead_ms: Some(crate::read::TimeBounds::DEFAULT_MAX_AHEAD_MS),
            fallback_officer: None,
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
        if let Some(files) = read::locate(dir, t)? {
            stream_rows.insert(t, read::check(&files)?);
            streams.push(files);
        }
    }
    if streams.is_empty() {
        return Err(Error::MissingTable {
            table: "calls",
            dir: dir.to_owned(),
            hint: "a dataset needs at least one of calls, alarms, patrols (as <table>.parquet or a <table>/ folder of parts)",
        });
    }
    let mut rejects = Vec::new();
    let (jurisdiction, mut reference_rows) = crate::reference::load_jurisdiction(dir, &mut rejects)?;
    // Size the cache for the city's subscribers (twice their count, so they
    // all fit); without that table there is nothing to warm.
    let mut warm = pseudonymiser.with_cache_for(0);
    let subscribers = match read::locate(dir, Table::Subscribers)? {
        Some(f) => {
            let n = read::check(&f)?;
            reference_rows.insert(Table::Subscribers, n);
            warm = pseudonymiser.with_cache_for(n as usize);
            read::read_subscribers(&f, &mut warm, &mut rejects)?
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

/// Turns a model's draft into a routed alert.
pub fn complete(models: &[(String, String)], reference: &Reference, (tag, d): TaggedDraft) -> Alert {
    let (model, version) = &models[tag as usize];
    let route = reference.jurisdiction.route(d.pos, d.cell, d.route);
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

/// A decoded chunk (one record batch) from one of a table's decode threads.
struct Chunk {
    events: Vec<Event>,
    /// Row number within its file of each event (for pairing rejects).
    rows: Vec<u64>,
    file: Arc<Path>,
    rejects: Vec<Rejected>,
}

/// Row numbers of a batch's accepted events: its rows minus the rejected
/// ones (rejects come in row order, at most one per row).
fn accepted_rows(rejects: &[Rejected], row0: u64, n: u64, accepted: usize) -> Vec<u64> {
    let mut bad = rejects.iter().map(|r| r.row).peekable();
    let mut rows = Vec::with_capacity(accepted);
    for r in row0..row0 + n {
        if bad.peek() == Some(&r) {
            bad.next();
        } else {
            rows.push(r);
        }
    }
    debug_assert_eq!(rows.len(), accepted);
    rows
}

/// Reads a table on one thread (Parquet decoding, in file order) and decodes
/// its record batches into events on one thread per decoder: batch `i` goes
/// to decoder `i % n`, whose chunks come back on its own channel, so the
/// merger, reading the channels in turn, gets the batches in file order. A
/// read error takes the place of the batch it stopped, so it arrives in order
/// too. Returns the channels and the threads: the reader's (it returns the
/// rows it read) and the decoders'.
fn spawn_readers(files: TableFiles, decoders: Vec<Decoder>) -> (Vec<Receiver<Result<Chunk>>>, TableThreads) {
    let table = files.table;
    let mut to_decoders = Vec::with_capacity(decoders.len());
    let mut receivers = Vec::with_capacity(decoders.len());
    let mut handles = Vec::with_capacity(decoders.len());
    for (k, mut decoder) in decoders.into_iter().enumerate() {
        let (raw_tx, raw_rx) = bounded::<Result<read::RawBatch>>(2);
        let (tx, rx) = bounded::<Result<Chunk>>(4);
        let handle = std::thread::Builder::new()
            .name(format!("decode-{}-{k}", table.name()))
            .spawn(move || {
                for raw in raw_rx {
                    let chunk = raw.map(|raw| {
                        let n = raw.batch.num_rows();
                        let (mut events, mut rejects) = (Vec::with_capacity(n), Vec::new());
                        raw.decode(&mut decoder, &mut events, &mut rejects);
                        let rows = accepted_rows(&rejects, raw.row0, n as u64, events.len());
                        Chunk { events, rows, file: raw.file, rejects }
                    });
                    if tx.send(chunk).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn decode thread");
        to_decoders.push(raw_tx);
        receivers.push(rx);
        handles.push(handle);
    }
    let reader = std::thread::Builder::new()
        .name(format!("read-{}", table.name()))
        .spawn(move || {
            let (mut batches, mut rows) = (read::RawBatches::new(files), 0);
            for i in 0.. {
                let item = match batches.next_batch() {
                    Ok(Some(raw)) => Ok(raw),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                rows += item.as_ref().map_or(0, |raw| raw.batch.num_rows() as u64);
                if to_decoders[i % to_decoders.len()].send(item).is_err() || failed {
                    break;
                }
            }
            rows
        })
        .expect("spawn reader thread");
    (receivers, TableThreads { reader, decoders: handles })
}

/// The threads reading one table.
struct TableThreads {
    /// Reads the files; returns the rows read.
    reader: std::thread::JoinHandle<u64>,
    decoders: Vec<std::thread::JoinHandle<()>>,
}

impl TableThreads {
    /// Waits for every thread; the rows read. A thread that panicked is a bug.
    fn join(self, table: Table) -> Result<u64> {
        let panicked = || Error::Bug(format!("a reader thread of {} panicked", table.name()));
        for d in self.decoders {
            d.join().map_err(|_| panicked())?;
        }
        self.reader.join().map_err(|_| panicked())
    }
}

/// One table's place in the merge.
struct Head {
    /// One channel per decode thread, read in turn batch by batch.
    rxs: Vec<Receiver<Result<Chunk>>>,
    /// The channel the next chunk comes from.
    next: usize,
    chunk: Option<Chunk>,
    pos: usize,
    alive: bool,
}

impl Head {
    /// Makes sure a current event is available; records the chunk's rejects on arrival.
    fn fill(&mut self, log: &mut RejectLog) -> Result<bool> {
        loop {
            if let Some(c) = &self.chunk
                && self.pos < c.events.len()
            {
                return Ok(true);
            }
            match self.rxs[self.next].recv() {
                Ok(Ok(c)) => {
                    for r in &c.rejects {
                        log.record(r)?;
                    }
                    self.next = (self.next + 1) % self.rxs.len();
                    self.chunk = Some(c);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The thread due for the next batch got none: the table is read.
                Err(_) => {
                    self.chunk = None;
                    return Ok(false);
                }
            }
        }
    }

    fn peek_ts(&self) -> u64 {
        let c = self.chunk.as_ref().expect("filled");
        c.events[self.pos].ts_ms()
    }
}

/// What the merger counted.
#[derive(Debug, Default)]
struct MergeCounts {
    events: u64,
    late: u64,
    range: Option<(u64, u64)>,
}

/// A hasher for call ids in the pairing set: one multiply (SipHash costs more
/// than the rest of the merge step; call ids are not attacker-chosen keys here,
/// and a skewed id set only slows the set down).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        let h = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

type IdSet = HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>;

/// The merger's running state: pairing, watermark, numbering, the open epoch.
struct MergeState<'a> {
    counts: MergeCounts,
    wm: Watermark,
    open_calls: IdSet,
    epoch: Epoch,
    seq: u64,
    started: Instant,
    first_ts: Option<u64>,
    epoch_first_ts: u64,
    paced_span_ms: u64,
    speed: Speed,
    senders: Vec<Sender<Arc<Epoch>>>,
    progress: &'a indicatif::ProgressBar,
}

impl MergeState<'_> {
    fn send(&self, epoch: Epoch) {
        let e = Arc::new(epoch);
        for s in &self.senders {
            // A worker that hung up has failed; its panic surfaces at join.
            let _ = s.send(Arc::clone(&e));
        }
    }

    /// Takes the next event in merge order: pairing check, watermark, seq, epoch cut.
    #[inline]
    fn admit(&mut self, mut event: Event, row: u64, file: &Arc<Path>, log: &mut RejectLog) -> Result<()> {
        if let Event::Call(call) = &event {
            let bad = match call.phase {
                CallPhase::Start if !self.open_calls.insert(call.call_id) => {
                    Some(("duplicate_start", format!("call_id {} already has an open start row", call.call_id)))
                }
                CallPhase::End if !self.open_calls.remove(&call.call_id) => Some((
                    "end_without_start",
                    format!("end row of call_id {} has no open start row before it", call.call_id),
                )),
                _ => None,
            };
            if let Some((code, reason)) = bad {
                log.record(&Rejected::new(Table::Calls, file, row, Some("call_id"), code, reason))?;
                return Ok(());
            }
        }
        let ts = event.ts_ms();
        let counts = &mut self.counts;
        counts.range = Some(counts.range.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
        let (time, late) = self.wm.admit(ts);
        counts.late += u64::from(late);
        counts.events += 1;
        event.stamp(self.seq, late);
        event.set_ts(time);
        self.seq += 1;
        if self.epoch.events.is_empty() {
            self.epoch_first_ts = time;
        }
        self.epoch.events.push(event);
        let span = time.saturating_sub(self.epoch_first_ts);
        if self.epoch.events.len() >= EPOCH_EVENTS || span >= self.paced_span_ms {
            self.cut(time);
        }
        Ok(())
    }

    /// Sends the open epoch (its last event at `last_ts`) and paces the replay.
    fn cut(&mut self, last_ts: u64) {
        self.epoch.watermark = self.wm.current();
        let n = self.epoch.events.len() as u64;
        let full = std::mem::replace(&mut self.epoch, Epoch { events: Vec::with_capacity(EPOCH_EVENTS), watermark: 0 });
        self.send(full);
        self.progress.inc(n);
        let first = *self.first_ts.get_or_insert(last_ts);
        if !self.progress.is_hidden() {
            let rate = self.counts.events as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            self.progress.set_message(format!("event time {}  {:.2}M events/s", utc_short(last_ts as i64), rate / 1e6));
        }
        if let Speed::Times(x) = self.speed {
            let target = Duration::from_secs_f64((last_ts - first) as f64 / 1000.0 / x);
            if let Some(wait) = target.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
}

/// Merges the stream tables into epochs and sends each to every local worker.
///
/// Order: at each step the head with the smallest `(event time, table index)`.
/// Rather than comparing heads per event, the merger takes a run from the
/// chosen head while it stays below the best of the others: the same order,
/// one comparison per event.
#[allow(clippy::too_many_arguments)]
fn merge(
    streams: Vec<TableFiles>,
    mut decoders: impl FnMut(Table, usize) -> Vec<Decoder>,
    lateness_ms: u64,
    speed: Speed,
    senders: Vec<Sender<Arc<Epoch>>>,
    log: &mut RejectLog,
    progress: &indicatif::ProgressBar,
) -> Result<(MergeCounts, BTreeMap<Table, u64>)> {
    let mut heads = Vec::new();
    let mut joins = Vec::new();
    for files in streams {
        let t = files.table;
        let (rxs, threads) = spawn_readers(files, decoders(t, decode_threads(t)));
        heads.push(Head { rxs, next: 0, chunk: None, pos: 0, alive: true });
        joins.push((t, threads));
    }
    let mut st = MergeState {
        counts: MergeCounts::default(),
        wm: Watermark::new(lateness_ms),
        open_calls: IdSet::default(),
        epoch: Epoch { events: Vec::with_capacity(EPOCH_EVENTS), watermark: 0 },
        seq: 0,
        started: Instant::now(),
        first_ts: None,
        epoch_first_ts: 0,
        paced_span_ms: match speed {
            Speed::Max => u64::MAX,
            Speed::Times(x) => ((100.0 * x) as u64).max(1),
        },
        speed,
        senders,
        progress,
    };
    loop {
        // Pick the head with the smallest event time (ties: table order), and
        // the best of the others: the bound of this run.
        let mut best: Option<(u64, usize)> = None;
        let mut second: Option<(u64, usize)> = None;
        for (i, h) in heads.iter_mut().enumerate() {
            if h.alive && !h.fill(log)? {
                h.alive = false;
            }
            if h.alive {
                let key = (h.peek_ts(), i);
                if best.is_none_or(|b| key < b) {
                    second = best;
                    best = Some(key);
                } else if second.is_none_or(|s| key < s) {
                    second = Some(key);
                }
            }
        }
        let Some((_, i)) = best else { break };
        let h = &mut heads[i];
        let c = h.chunk.as_ref().expect("filled");
        let file = Arc::clone(&c.file);
        while h.pos < c.events.len() {
            let event = c.events[h.pos];
            if second.is_some_and(|s| (event.ts_ms(), i) > s) {
                break;
            }
            let row = c.rows[h.pos];
            h.pos += 1;
            st.admit(event, row, &file, log)?;
        }
    }
    // End of input: every event is in; time moves to just past the last one.
    let mut epoch = std::mem::take(&mut st.epoch);
    epoch.watermark = st.counts.range.map_or(0, |(_, last)| last + 1).max(st.wm.current());
    progress.inc(epoch.events.len() as u64);
    st.send(epoch);
    let MergeState { counts, senders, .. } = st;
    drop(senders);
    let mut rows = BTreeMap::new();
    for (t, threads) in joins {
        rows.insert(t, threads.join(t)?);
    }
    Ok((counts, rows))
}

/// Decode threads per stream table: the calls table (most of the input, and
/// the HMACs of numbers outside the subscribers table) on every core, and at
/// least two so the piece order is exercised on every machine; the others
/// are small. The thread count changes nothing but speed.
fn decode_threads(table: Table) -> usize {
    match table {
        Table::Calls => std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8),
        _ => 1,
    }
}

/// The decoders of each stream table, one per decode thread, for
/// [`merge`]; takes the dataset's warmed pseudonymiser. The calls decoders
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
    replay_with_tap(opts, models, None)
}

/// Like [`replay`], and also sends each routed alert to `tap` as it is produced
/// (a hook for serving a replay's alerts while it runs; the binary's demo feeds
/// the live engine over HTTP instead).
pub fn replay_with_tap(
    opts: &ReplayOptions,
    models: Vec<Box<dyn Model>>,
    tap: Option<Sender<Alert>>,
) -> Result<ReplayOutcome> {
    let started = Instant::now();
    let pseudonymiser = Pseudonymiser::new(&opts.pseudonym_key, &opts.home_cc);
    let mut dataset = open_dataset(&opts.input, &pseudonymiser)?;
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

    let model_names: Arc<Vec<(String, String)>> = Arc::new(models.iter().map(|m| (m.name(), m.version())).collect());
    let models = Arc::new(models);
    let config = timely_config(opts.workers, opts.cluster.as_ref())?;
    let workers = opts.workers.max(1);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = bounded::<Arc<Epoch>>(4);
        senders.push(tx);
        receivers.push(Some(rx));
    }
    let receivers = Arc::new(Mutex::new(receivers));
    let collected: Arc<Mutex<Vec<Alert>>> = Arc::new(Mutex::new(Vec::new()));
    let reference = dataset.reference.clone();
    let guards = {
        let (models, model_names, collected, reference) =
            (Arc::clone(&models), Arc::clone(&model_names), Arc::clone(&collected), reference.clone());
        timely::execute(config, move |worker| {
            let local = worker.index() % workers;
            let rx = receivers.lock().expect("receivers lock")[local].take().expect("one receiver per worker");
            let (names, collected, refc, tap) =
                (Arc::clone(&model_names), Arc::clone(&collected), reference.clone(), tap.clone());
            let inputs = dataflow::build(worker, &models, &reference, move |draft| {
                let alert = complete(&names, &refc, draft);
                if let Some(t) = &tap {
                    let _ = t.send(alert.clone());
                }
                collected.lock().expect("alerts lock").push(alert);
            });
            dataflow::drive(worker, inputs, rx);
        })
        .map_err(Error::Runtime)?
    };

    let total: u64 = dataset.stream_rows.values().sum();
    let progress = if opts.progress && process == 0 {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent}% {msg}")
                .expect("valid template"),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let decoders = table_decoders(&mut dataset, TimeBounds { max_ahead_ms: opts.max_ahead_ms, max_behind_ms: None });
    let merged = merge(
        std::mem::take(&mut dataset.streams),
        decoders,
        opts.lateness_ms,
        opts.speed,
        senders,
        &mut log,
        &progress,
    );
    // Workers finish (or fail) before we report anything.
    let joined: Vec<_> = guards.join();
    progress.finish_and_clear();
    let (counts, rows) = merged?;
    for r in joined {
        r.map_err(|e| Error::Bug(format!("a worker failed: {e}")))?;
    }
    log.finish()?;

    let mut alerts = std::mem::take(&mut *collected.lock().expect("alerts lock"));
    alert::sort_alerts(&mut alerts);
    let folded = alert::fold_duplicates(&mut alerts);
    let mut summary = Summary {
        lateness_ms: opts.lateness_ms,
        events: counts.events,
        late_events: counts.late,
        event_time_range_ms: counts.range,
        models: model_names.as_ref().clone(),
        duplicate_alerts_folded: folded,
        ..Summary::default()
    };
    for (t, n) in rows.iter().chain(dataset.reference_rows.iter()) {
        summary.tables.insert(t.name().to_owned(), TableCounts { read: *n, rejected: 0 });
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
    let stats = RunStats { workers, processes, wall_s, events_per_s: counts.events as f64 / wall_s.max(1e-9) };
    if let Some(out) = opts.out.as_ref().filter(|_| writes) {
        write_outputs(out, &alerts, &summary, &stats)?;
    }
    Ok(ReplayOutcome { summary, stats, alerts })
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

/// The merged input exactly as the workers receive it (seq, late flag and
/// processing time stamped), without running any dataflow, plus the reference
/// data: what a single-threaded reference implementation consumes.
pub fn merged_events(opts: &ReplayOptions) -> Result<(Vec<Event>, Reference)> {
    let pseudonymiser = Pseudonymiser::new(&opts.pseudonym_key, &opts.home_cc);
    let mut dataset = open_dataset(&opts.input, &pseudonymiser)?;
    set_fallback(&mut dataset, opts);
    let (tx, rx) = bounded::<Arc<Epoch>>(4);
    let collector = std::thread::spawn(move || {
        let mut all = Vec::new();
        for e in rx {
            all.extend_from_slice(&e.events);
        }
        all
    });
    let mut log = RejectLog::counting();
    let decoders = table_decoders(&mut dataset, TimeBounds { max_ahead_ms: opts.max_ahead_ms, max_behind_ms: None });
    merge(
        std::mem::take(&mut dataset.streams),
        decoders,
        opts.lateness_ms,
        Speed::Max,
        vec![tx],
        &mut log,
        &indicatif::ProgressBar::hidden(),
    )?;
    let events = collector.join().map_err(|_| Error::Bug("collector thread panicked".into()))?;
    Ok((events, dataset.reference))
}
