//! `citywatch gen`: writes a synthetic Qingdao-like city as a dataset folder.
//!
//! Output (the input contract, `docs/input-contract.md`): `calls/part-*.parquet`,
//! `patrols/part-*.parquet`, `alarms.parquet`, `subscribers.parquet`,
//! `grids.parquet`, `officers.parquet`, `labels/fraud_calls.parquet`, and
//! `generated.json` (the options and the [`GenSummary`]; not a contract table).
//! Every event table is sorted by `ts_ms`, across parts too.
//!
//! **Order of work**: the small, whole-period plans first — the fraud plan,
//! crime incidents, alarms (with ids in time order), dispatches — then the big
//! streams, hour by hour (calls) and day by day (patrols), each written as it
//! is produced, so memory stays bounded by an hour of calls whatever the
//! number of days or subscribers.
//!
//! **Determinism**: every random draw comes from a stream keyed by what it is
//! for (see [`crate::rng`]); parallel work is split into fixed chunks of
//! subscribers (`CHUNK`) and units, collected in order, and sorted by total
//! keys; call ids are assigned in answer-time order after sorting. So the
//! bytes depend on the options, never on the thread count.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use citywatch_engine::contract::{AlarmSource, CallPhase, Category, PatrolStatus, Table};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::calls::{CallStart, chunk_hour};
use crate::city::{City, officers_batch};
use crate::crime::{CrimeRates, simulate};
use crate::fraud::{FraudPlan, FraudRates, plan};
use crate::patrol::{Call, DispatchStats, PatrolRates, PatrolRow, dispatch, shift_rows, units};
use crate::people::{Party, PeopleRates, Population, serving_cell};
use crate::rng::Rng;
use crate::sink::{BATCH_ROWS, PartWriter, write_file};
use crate::{Error, Result};

/// Subscribers per generation chunk (fixed: chunks, not threads, key the random streams).
pub const CHUNK: u64 = 16_384;
/// Rows per part file of `calls/` and `patrols/`.
pub const PART_ROWS: u64 = 4_000_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Every rate of the simulation, with documented defaults (see `datasets/README.md`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Rates {
    /// Subscribers and everyday calling.
    pub people: PeopleRates,
    /// Fraud campaigns, hooks and reports.
    pub fraud: FraudRates,
    /// Crime and other incidents.
    pub crime: CrimeRates,
    /// Patrols and dispatch.
    pub patrol: PatrolRates,
}

/// Options of [`generate`]. Build with `..GenOptions::default()`: fields may be added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenOptions {
    /// Days to generate (from `start_ms`).
    pub days: u32,
    /// Subscribers of the operator (the city itself is always Qingdao-sized).
    pub subscribers: u64,
    /// Seed: same seed and options, same bytes.
    pub seed: u64,
    /// Output dataset folder (created; tables in it are replaced).
    pub out: PathBuf,
    /// Start, ms since the epoch; must be a UTC midnight. Default 2026-03-02 00:00 UTC.
    pub start_ms: i64,
    /// Worker threads (`None`: all cores). Never changes the output.
    pub threads: Option<usize>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The simulation's rates.
    pub rates: Rates,
    /// Fresh local fraud SIMs are activated minutes before their first call
    /// and dated in the subscribers table (`valid_from_ms`; see
    /// [`crate::roster`]). Off by default (the default output is unchanged).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub intraday_registrations: bool,
    /// Community and station posts are held in 3 x 8 h shifts with
    /// hand-overs (a dated officers table; see [`crate::roster`]). Off by default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shifts: bool,
}

impl Default for GenOptions {
    /// A small demo city: 20,000 subscribers, one day, seed 1, into `./citywatch-gen`.
    fn default() -> Self {
        GenOptions {
            days: 1,
            subscribers: 20_000,
            seed: 1,
            out: PathBuf::from("citywatch-gen"),
            start_ms: DEFAULT_START_MS,
            threads: None,
            progress: false,
            rates: Rates::default(),
            intraday_registrations: false,
            shifts: false,
        }
    }
}

/// 2026-03-02 00:00 UTC (a Monday).
pub const DEFAULT_START_MS: i64 = 20_514 * DAY_MS;

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenSummary {
    /// Output folder.
    pub out: String,
    /// Days generated.
    pub days: u32,
    /// Subscribers.
    pub subscribers: u64,
    /// Seed.
    pub seed: u64,
    /// Rows written per table.
    pub rows: BTreeMap<String, u64>,
    /// Bytes written per table.
    pub bytes: BTreeMap<String, u64>,
    /// Fraud numbers used.
    pub fraud_numbers: u64,
    /// Fraud calls (= rows of `labels/fraud_calls`).
    pub fraud_calls: u64,
    /// People targeted by fraud.
    pub fraud_targets: u64,
    /// Victims who lost money (each has one `loss_ts_ms`).
    pub losses: u64,
    /// `fraud_report` alarms after a loss, inside the period.
    pub loss_reports: u64,
    /// Reports after a loss that would arrive after the period (not written).
    pub loss_reports_after_end: u64,
    /// `fraud_report` alarms about a suspicious call without a loss.
    pub suspicious_reports: u64,
    /// Calls of the scenario families that are not fraud calls (call-backs,
    /// legitimate look-alikes); 0 with every family off.
    pub family_calls: u64,
    /// Burglaries, and how many of them are near repeats (triggered).
    pub burglaries: u64,
    /// Near-repeat burglaries among them.
    pub near_repeat_burglaries: u64,
    /// Patrol units.
    pub units: u64,
    /// Dispatch figures.
    pub dispatch: DispatchStats,
    /// Wall time, seconds.
    pub wall_s: f64,
}

impl std::fmt::Display for GenSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "citywatch gen: {} day(s), {} subscribers, seed {} -> {} in {:.1} s",
            self.days, self.subscribers, self.seed, self.out, self.wall_s
        )?;
        for (t, r) in &self.rows {
            let mb = self.bytes.get(t).copied().unwrap_or(0) as f64 / 1e6;
            writeln!(f, "  {t:<20} {r:>12} rows {mb:>9.1} MB")?;
        }
        writeln!(
            f,
            "  fraud: {} numbers, {} calls to {} targets, {} losses, {} reports after a loss (+{} after the period), {} suspicious-call reports",
            self.fraud_numbers,
            self.fraud_calls,
            self.fraud_targets,
            self.losses,
            self.loss_reports,
            self.loss_reports_after_end,
            self.suspicious_reports
        )?;
        writeln!(f, "  crime: {} burglaries, {} of them near repeats", self.burglaries, self.near_repeat_burglaries)?;
        write!(
            f,
            "  patrols: {} units, {} alarms dispatched (median response {:.1} min), {} of {} priority-1 reached after 15 min, {} unanswered",
            self.units,
            self.dispatch.dispatched,
            self.dispatch.median_response_min,
            self.dispatch.late_priority1,
            self.dispatch.priority1,
            self.dispatch.unanswered
        )
    }
}

/// Generates the dataset described by `opts` into `opts.out`.
pub fn generate(opts: &GenOptions) -> Result<GenSummary> {
    if opts.days == 0 {
        return Err(Error::config("days", "0; generate at least one day"));
    }
    if !(100..=2_000_000_000).contains(&opts.subscribers) {
        return Err(Error::config("subscribers", format!("{}; expected 100 to 2,000,000,000", opts.subscribers)));
    }
    if opts.start_ms.rem_euclid(DAY_MS) != 0 {
        return Err(Error::config(
            "start",
            format!("{} ms is not a UTC midnight; give a date (YYYY-MM-DD)", opts.start_ms),
        ));
    }
    if opts.threads == Some(0) {
        return Err(Error::config("threads", "0; give at least 1, or leave it unset for all cores"));
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = opts.threads {
        builder = builder.num_threads(t);
    }
    let pool = builder.build().map_err(|e| Error::config("threads", e.to_string()))?;
    pool.install(|| run(opts))
}

fn run(opts: &GenOptions) -> Result<GenSummary> {
    let started = Instant::now();
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let days = opts.days;
    let start = opts.start_ms;
    let hours = u64::from(days) * 24;
    let bar = if opts.progress {
        let b = ProgressBar::new(hours + u64::from(days) + 3);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut summary = GenSummary {
        out: out.display().to_string(),
        days,
        subscribers: opts.subscribers,
        seed: opts.seed,
        ..GenSummary::default()
    };

    bar.set_message("city, fraud plan, crime");
    let city = Arc::new(City::qingdao());
    let pop = Population::new(city.clone(), opts.subscribers, opts.seed, opts.rates.people, start);
    let fraud = plan(&pop, &opts.rates.fraud, start, days);
    let fraud_numbers: Vec<String> = fraud.numbers.iter().map(|n| n.number.clone()).collect();
    let fam = opts.rates.fraud.families;
    let legit = crate::legit::plan(&pop, fam.legit_virtual, fam.legit_fanout, start, days);
    // Calls of the scenario families that are not fraud calls, in time order.
    let mut extra: Vec<crate::fraud::ExtraCall> = fraud.call_backs.iter().chain(&legit.calls).copied().collect();
    extra.sort_by_key(|c| (c.ts_ms, c.caller, c.callee));
    summary.family_calls = extra.len() as u64;
    summary.fraud_numbers = fraud.numbers.len() as u64;
    summary.fraud_calls = fraud.calls.len() as u64;
    summary.fraud_targets = fraud.targets;
    summary.losses = fraud.hooked;
    summary.loss_reports = fraud.reports.iter().filter(|r| r.after_loss).count() as u64;
    summary.suspicious_reports = fraud.reports.iter().filter(|r| !r.after_loss).count() as u64;
    summary.loss_reports_after_end = fraud.reports_after_end;

    let incidents = simulate(&city, &opts.rates.crime, opts.seed, start, days);
    summary.burglaries = incidents.iter().filter(|i| i.category == Category::Burglary).count() as u64;
    summary.near_repeat_burglaries =
        incidents.iter().filter(|i| i.category == Category::Burglary && i.triggered).count() as u64;

    // Alarms: incidents and fraud reports, ids in time order.
    let alarms = alarm_rows(&pop, &incidents, &fraud, opts.seed);
    let path = out.join("alarms.parquet");
    let batches: Vec<Result<RecordBatch>> =
        alarms.par_chunks(BATCH_ROWS).map(|c| alarms_batch(c, &pop, &fraud_numbers)).collect();
    summary.rows.insert("alarms".into(), write_file(&path, Table::Alarms.schema(), batches)?);
    bar.inc(1);

    // Patrols, day by day.
    bar.set_message("patrols");
    let units = units(&city);
    summary.units = units.len() as u64;
    let mut patrols = PartWriter::new(out, Table::Patrols, PART_ROWS)?;
    if opts.rates.patrol.enabled {
        let to_serve: Vec<Call> = alarms
            .iter()
            .filter(|a| a.category != Category::FraudReport)
            .map(|a| Call {
                alarm_id: a.alarm_id,
                ts_ms: a.ts_ms,
                pos: a.pos,
                priority: a.priority,
                category: a.category,
            })
            .collect();
        let (jobs, stats) = dispatch(&city, &units, &to_serve, &opts.rates.patrol, opts.seed);
        summary.dispatch = stats;
        let mut carry: Vec<PatrolRow> = Vec::new();
        for d in 0..days {
            let day_ms = start + i64::from(d) * DAY_MS;
            let mut rows: Vec<PatrolRow> = units
                .par_iter()
                .enumerate()
                .flat_map_iter(|(i, u)| shift_rows(i as u32, u, &jobs[i], day_ms, opts.seed))
                .collect();
            rows.append(&mut carry);
            rows.par_sort_unstable_by_key(|r| (r.ts_ms, r.unit, r.seq));
            let cut = if d + 1 == days { rows.len() } else { rows.partition_point(|r| r.ts_ms < day_ms + DAY_MS) };
            carry = rows.split_off(cut);
            write_batches(&mut patrols, &rows, |c| patrols_batch(c, &units))?;
            bar.inc(1);
        }
    }
    let (rows, _) = patrols.finish()?;
    summary.rows.insert("patrols".into(), rows);

    // Calls, hour by hour.
    let mut calls = PartWriter::new(out, Table::Calls, PART_ROWS)?;
    let mut labels: Vec<LabelRow> = Vec::with_capacity(fraud.calls.len());
    let mut pending: Vec<CallRow> = Vec::new();
    let mut next_id: u64 = 1;
    let mut fi = 0usize;
    let mut xi = 0usize;
    let chunks: Vec<(u64, u64, u64)> = (0..opts.subscribers.div_ceil(CHUNK))
        .map(|c| (c, c * CHUNK, ((c + 1) * CHUNK).min(opts.subscribers)))
        .collect();
    for h in 0..hours {
        bar.set_message("calls");
        let w0 = start + h as i64 * HOUR_MS;
        let w1 = w0 + HOUR_MS;
        let mut starts: Vec<CallStart> =
            chunks.par_iter().flat_map_iter(|&(c, lo, hi)| chunk_hour(&pop, w0, c, lo, hi)).collect();
        while fi < fraud.calls.len() && fraud.calls[fi].ts_ms < w1 {
            let fc = &fraud.calls[fi];
            let reg = fraud.numbers[fc.number as usize].registration;
            let victim = pop.person(fc.victim);
            starts.push(CallStart {
                ts_ms: fc.ts_ms,
                tie: (1 << 63) | fi as u64,
                caller: Party::Fraud(fc.number),
                callee: Party::Sub(fc.victim),
                caller_pos: reg.map(|r| serving_cell(r.home)),
                callee_pos: Some(serving_cell(pop.position_at(&victim, fc.ts_ms))),
                duration_s: fc.duration_s,
                fraud: Some(fi as u32),
            });
            fi += 1;
        }
        while xi < extra.len() && extra[xi].ts_ms < w1 {
            let x = &extra[xi];
            let pos = |p: Party| match p {
                Party::Sub(i) if i < pop.n => Some(serving_cell(pop.position_at(&pop.person(i), x.ts_ms))),
                Party::Fraud(n) => fraud.numbers[n as usize].registration.map(|r| serving_cell(r.home)),
                _ => None,
            };
            if x.ts_ms >= w0 {
                starts.push(CallStart {
                    ts_ms: x.ts_ms,
                    tie: (1 << 62) | xi as u64,
                    caller: x.caller,
                    callee: x.callee,
                    caller_pos: pos(x.caller),
                    callee_pos: pos(x.callee),
                    duration_s: x.duration_s,
                    fraud: None,
                });
            }
            xi += 1;
        }
        starts.par_sort_unstable_by_key(|s| (s.ts_ms, s.tie));
        let mut rows: Vec<CallRow> = Vec::with_capacity(starts.len() + pending.len());
        for s in &starts {
            let id = next_id;
            next_id += 1;
            let row = CallRow {
                ts_ms: s.ts_ms,
                call_id: id,
                end: false,
                caller: s.caller,
                callee: s.callee,
                caller_pos: s.caller_pos,
                callee_pos: s.callee_pos,
                duration_s: s.duration_s,
            };
            rows.push(row);
            pending.push(CallRow { ts_ms: s.ts_ms + i64::from(s.duration_s) * 1000, end: true, ..row });
            if let Some(f) = s.fraud {
                let fc = &fraud.calls[f as usize];
                labels.push(LabelRow { call_id: id, number: fc.number, victim: fc.victim, loss_ts_ms: fc.loss_ts_ms });
            }
        }
        let last = h + 1 == hours;
        let (due, keep): (Vec<CallRow>, Vec<CallRow>) = pending.into_iter().partition(|r| last || r.ts_ms < w1);
        pending = keep;
        rows.extend(due);
        rows.par_sort_unstable_by_key(|r| (r.ts_ms, r.call_id, r.end));
        write_batches(&mut calls, &rows, |c| calls_batch(c, &pop, &fraud_numbers))?;
        bar.inc(1);
    }
    let (rows, _) = calls.finish()?;
    summary.rows.insert("calls".into(), rows);

    bar.set_message("subscribers, grids, officers, labels");
    let activations =
        opts.intraday_registrations.then(|| crate::roster::intraday_activations(&fraud, opts.seed, opts.start_ms));
    summary.rows.insert("subscribers".into(), write_subscribers(out, &pop, &fraud, activations.as_ref())?);
    let grids = city.grids_batch()?;
    summary
        .rows
        .insert("grids".into(), write_file(&out.join("grids.parquet"), crate::city::grids_schema(), [Ok(grids)])?);
    let (officers, schema) = if opts.shifts {
        (
            crate::roster::shifts_batch(&city.officers(), opts.start_ms, opts.days)?,
            Table::Officers.schema_with_optional(),
        )
    } else {
        (officers_batch(&city.officers())?, Table::Officers.schema())
    };
    summary.rows.insert("officers".into(), write_file(&out.join("officers.parquet"), schema, [Ok(officers)])?);
    let batches: Vec<Result<RecordBatch>> =
        labels.par_chunks(BATCH_ROWS).map(|c| labels_batch(c, &pop, &fraud_numbers)).collect();
    let path = out.join(format!("{}.parquet", Table::FraudLabels.path_stem()));
    summary.rows.insert(Table::FraudLabels.name().into(), write_file(&path, Table::FraudLabels.schema(), batches)?);
    if fam.any() {
        write_families(out, &pop, &fraud, &legit)?;
    }
    bar.inc(1);
    bar.finish_and_clear();

    for t in Table::ALL {
        summary.bytes.insert(t.name().into(), table_bytes(out, t));
    }
    summary.wall_s = started.elapsed().as_secs_f64();
    let manifest = serde_json::json!({ "options": opts, "summary": summary });
    let path = out.join("generated.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).map_err(|e| Error::Bug(e.to_string()))?)
        .map_err(|e| Error::io(&path, e))?;
    Ok(summary)
}

/// `labels/families.json`: the scenario family of every fraud number
/// (`standard`, `aged_sim`, `sim_farm`) and of every legitimate look-alike
/// caller (`legit_virtual`, `legit_fanout`), by number as dialled. Written
/// only when a family is switched on; not a contract table.
fn write_families(out: &Path, pop: &Population, fraud: &FraudPlan, legit: &crate::legit::LegitPlan) -> Result<()> {
    let mut numbers = serde_json::Map::new();
    for n in &fraud.numbers {
        numbers.insert(n.number.clone(), serde_json::Value::from(n.family()));
    }
    let mut s = String::new();
    for &(party, family) in &legit.callers {
        pop.number(party, &[], &mut s);
        numbers.insert(s.clone(), serde_json::Value::from(family));
    }
    let v = serde_json::json!({ "numbers": numbers });
    let dir = out.join("labels");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join("families.json");
    std::fs::write(&path, serde_json::to_string(&v).map_err(|e| Error::Bug(e.to_string()))?)
        .map_err(|e| Error::io(&path, e))
}

/// Bytes of a table in a dataset folder (file or folder of parts).
fn table_bytes(dir: &Path, t: Table) -> u64 {
    let file = dir.join(format!("{}.parquet", t.path_stem()));
    if let Ok(m) = std::fs::metadata(&file) {
        return m.len();
    }
    std::fs::read_dir(dir.join(t.path_stem()))
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn write_batches<R: Sync>(
    w: &mut PartWriter,
    rows: &[R],
    build: impl Fn(&[R]) -> Result<RecordBatch> + Sync + Send,
) -> Result<()> {
    let batches: Vec<Result<RecordBatch>> = rows.par_chunks(BATCH_ROWS).map(build).collect();
    for b in batches {
        w.write(b?)?;
    }
    Ok(())
}

fn arc<A: arrow_array::Array + 'static>(a: A) -> ArrayRef {
    Arc::new(a)
}

/// One row of the calls table before rendering.
#[derive(Debug, Clone, Copy)]
struct CallRow {
    ts_ms: i64,
    call_id: u64,
    end: bool,
    caller: Party,
    callee: Party,
    caller_pos: Option<(f64, f64)>,
    callee_pos: Option<(f64, f64)>,
    duration_s: u32,
}

fn calls_batch(rows: &[CallRow], pop: &Population, fraud: &[String]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut ev = StringBuilder::with_capacity(n, n * 5);
    let mut ts = Int64Builder::with_capacity(n);
    let mut caller = StringBuilder::with_capacity(n, n * 12);
    let mut callee = StringBuilder::with_capacity(n, n * 12);
    let mut pos: [Float64Builder; 4] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    let mut dur = UInt32Builder::with_capacity(n);
    let mut s = String::with_capacity(24);
    for r in rows {
        id.append_value(r.call_id);
        ev.append_value(if r.end { CallPhase::End.as_str() } else { CallPhase::Start.as_str() });
        ts.append_value(r.ts_ms);
        pop.number(r.caller, fraud, &mut s);
        caller.append_value(&s);
        pop.number(r.callee, fraud, &mut s);
        callee.append_value(&s);
        for (k, p) in [r.caller_pos, r.callee_pos].into_iter().enumerate() {
            pos[2 * k].append_option(p.map(|p| p.0));
            pos[2 * k + 1].append_option(p.map(|p| p.1));
        }
        dur.append_option(r.end.then_some(r.duration_s));
    }
    let [a, b, c, d] = pos.map(|mut p| arc(p.finish()));
    Ok(RecordBatch::try_new(
        Table::Calls.schema(),
        vec![
            arc(id.finish()),
            arc(ev.finish()),
            arc(ts.finish()),
            arc(caller.finish()),
            arc(callee.finish()),
            a,
            b,
            c,
            d,
            arc(dur.finish()),
        ],
    )?)
}

/// One row of `labels/fraud_calls` before rendering.
#[derive(Debug, Clone, Copy)]
struct LabelRow {
    call_id: u64,
    number: u32,
    victim: u64,
    loss_ts_ms: Option<i64>,
}

fn labels_batch(rows: &[LabelRow], pop: &Population, fraud: &[String]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut caller = StringBuilder::with_capacity(n, n * 12);
    let mut victim = StringBuilder::with_capacity(n, n * 12);
    let mut loss = Int64Builder::with_capacity(n);
    let mut s = String::new();
    for r in rows {
        id.append_value(r.call_id);
        caller.append_value(&fraud[r.number as usize]);
        pop.number(Party::Sub(r.victim), fraud, &mut s);
        victim.append_value(&s);
        loss.append_option(r.loss_ts_ms);
    }
    Ok(RecordBatch::try_new(
        Table::FraudLabels.schema(),
        vec![arc(id.finish()), arc(caller.finish()), arc(victim.finish()), arc(loss.finish())],
    )?)
}

/// One alarm before rendering.
#[derive(Debug, Clone, Copy)]
struct AlarmRow {
    alarm_id: u64,
    ts_ms: i64,
    category: Category,
    priority: u8,
    pos: (f64, f64),
    reporter: Option<Party>,
    suspect: Option<u32>,
    source: AlarmSource,
}

fn alarm_rows(pop: &Population, incidents: &[crate::crime::Incident], fraud: &FraudPlan, seed: u64) -> Vec<AlarmRow> {
    let mut rng = Rng::new(&[seed, 0x414c_524d]);
    let mut rows: Vec<(u64, AlarmRow)> = Vec::with_capacity(incidents.len() + fraud.reports.len());
    for (i, inc) in incidents.iter().enumerate() {
        let reporter = match inc.source {
            AlarmSource::Sensor | AlarmSource::Officer => None,
            _ => Some(if rng.chance(0.85) {
                // Someone nearby: a subscriber of the district where it happened.
                let (lo, hi) = pop
                    .city
                    .grid_at(inc.pos)
                    .map(|g| {
                        let d = pop.city.streets[pop.city.street_of_grid(g)].district;
                        (pop.district_start[d], pop.district_start[d + 1])
                    })
                    .unwrap_or((0, pop.n));
                Party::Sub(if hi > lo { lo + rng.below(hi - lo) } else { rng.below(pop.n) })
            } else {
                Party::Ext(rng.below(1 << 40))
            }),
        };
        rows.push((
            i as u64,
            AlarmRow {
                alarm_id: 0,
                ts_ms: inc.ts_ms,
                category: inc.category,
                priority: inc.priority,
                pos: inc.pos,
                reporter,
                suspect: None,
                source: inc.source,
            },
        ));
    }
    for (i, r) in fraud.reports.iter().enumerate() {
        let victim = pop.person(r.reporter);
        let home_grid = pop.city.communities[pop.community_of(r.reporter)].grids.start;
        rows.push((
            (1 << 40) | i as u64,
            AlarmRow {
                alarm_id: 0,
                ts_ms: r.ts_ms,
                category: Category::FraudReport,
                priority: 3,
                pos: pop.city.inside_or(victim.home, home_grid),
                reporter: Some(Party::Sub(r.reporter)),
                suspect: Some(r.number),
                source: if rng.chance(0.65) { AlarmSource::Hotline } else { AlarmSource::App },
            },
        ));
    }
    rows.sort_by_key(|(tie, a)| (a.ts_ms, *tie));
    rows.into_iter()
        .enumerate()
        .map(|(i, (_, mut a))| {
            a.alarm_id = i as u64 + 1;
            a
        })
        .collect()
}

fn alarms_batch(rows: &[AlarmRow], pop: &Population, fraud: &[String]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut ts = Int64Builder::with_capacity(n);
    let mut cat = StringBuilder::new();
    let mut pri = UInt8Builder::with_capacity(n);
    let mut lat = Float64Builder::with_capacity(n);
    let mut lon = Float64Builder::with_capacity(n);
    let mut rep = StringBuilder::new();
    let mut sus = StringBuilder::new();
    let mut src = StringBuilder::new();
    let mut s = String::new();
    for a in rows {
        id.append_value(a.alarm_id);
        ts.append_value(a.ts_ms);
        cat.append_value(a.category.as_str());
        pri.append_value(a.priority);
        lat.append_value(round6(a.pos.0));
        lon.append_value(round6(a.pos.1));
        match a.reporter {
            Some(p) => {
                pop.number(p, fraud, &mut s);
                rep.append_value(&s);
            }
            None => rep.append_null(),
        }
        match a.suspect {
            Some(f) => sus.append_value(&fraud[f as usize]),
            None => sus.append_null(),
        }
        src.append_value(a.source.as_str());
    }
    Ok(RecordBatch::try_new(
        Table::Alarms.schema(),
        vec![
            arc(id.finish()),
            arc(ts.finish()),
            arc(cat.finish()),
            arc(pri.finish()),
            arc(lat.finish()),
            arc(lon.finish()),
            arc(rep.finish()),
            arc(sus.finish()),
            arc(src.finish()),
        ],
    )?)
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn patrols_batch(rows: &[PatrolRow], units: &[crate::patrol::Unit]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut unit = StringBuilder::with_capacity(n, n * 18);
    let mut ts = Int64Builder::with_capacity(n);
    let mut lat = Float64Builder::with_capacity(n);
    let mut lon = Float64Builder::with_capacity(n);
    let mut status = StringBuilder::with_capacity(n, n * 9);
    let mut alarm = UInt64Builder::with_capacity(n);
    for r in rows {
        unit.append_value(&units[r.unit as usize].id);
        ts.append_value(r.ts_ms);
        lat.append_value(round6(r.pos.0));
        lon.append_value(round6(r.pos.1));
        status.append_value(r.status.as_str());
        alarm.append_option(r.alarm_id);
    }
    let _ = PatrolStatus::Available;
    Ok(RecordBatch::try_new(
        Table::Patrols.schema(),
        vec![
            arc(unit.finish()),
            arc(ts.finish()),
            arc(lat.finish()),
            arc(lon.finish()),
            arc(status.finish()),
            arc(alarm.finish()),
        ],
    )?)
}

/// Streams the subscribers table: every subscriber in index order, with the
/// local fraud numbers' registrations interleaved at their table slots.
/// The subscribers table; with `activations` (intraday registrations), those
/// fraud numbers' activation times, and a `valid_from_ms` column that dates
/// their rows from it (null for everyone else: registered for all time).
fn write_subscribers(
    out: &Path,
    pop: &Population,
    fraud: &FraudPlan,
    activations: Option<&HashMap<usize, i64>>,
) -> Result<u64> {
    let mut regs: Vec<(u64, usize)> =
        fraud.numbers.iter().enumerate().filter_map(|(i, n)| n.registration.map(|r| (r.table_slot, i))).collect();
    regs.sort_unstable();
    let n = pop.n;
    let step = BATCH_ROWS as u64;
    let batch_ranges: Vec<(u64, u64)> = (0..n.div_ceil(step)).map(|b| (b * step, ((b + 1) * step).min(n))).collect();
    let schema =
        if activations.is_some() { Table::Subscribers.schema_with_optional() } else { Table::Subscribers.schema() };
    let build = |&(lo, hi): &(u64, u64)| -> Result<RecordBatch> {
        let len = (hi - lo) as usize;
        let mut num = StringBuilder::with_capacity(len, len * 12);
        let mut age = UInt8Builder::with_capacity(len);
        let mut lat = Float64Builder::with_capacity(len);
        let mut lon = Float64Builder::with_capacity(len);
        let mut act = Int64Builder::with_capacity(len);
        let mut from = Int64Builder::with_capacity(len);
        let mut s = String::new();
        let mut ri = regs.partition_point(|r| r.0 < lo);
        for idx in lo..hi {
            while ri < regs.len() && regs[ri].0 == idx {
                let f = &fraud.numbers[regs[ri].1];
                let r = f.registration.expect("filtered");
                let moved = activations.and_then(|a| a.get(&regs[ri].1)).copied();
                num.append_value(&f.number);
                age.append_value(r.age);
                lat.append_value(round5(r.home.0));
                lon.append_value(round5(r.home.1));
                act.append_value(moved.unwrap_or(r.activated_ms));
                from.append_option(moved);
                ri += 1;
            }
            let p = pop.person(idx);
            pop.number(Party::Sub(idx), &[], &mut s);
            num.append_value(&s);
            age.append_option(p.profile.age);
            lat.append_value(round5(p.home.0));
            lon.append_value(round5(p.home.1));
            act.append_value(p.activated_ms);
            from.append_null();
        }
        let mut columns =
            vec![arc(num.finish()), arc(age.finish()), arc(lat.finish()), arc(lon.finish()), arc(act.finish())];
        if activations.is_some() {
            let from = from.finish();
            let status = arrow_array::StringArray::new_null(from.len());
            columns.extend([arc(from), arc(status)]);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    };
    // Build 16 batches at a time in parallel, write in order: memory stays bounded.
    let groups = batch_ranges.chunks(16).flat_map(|g| g.par_iter().map(build).collect::<Vec<_>>());
    write_file(&out.join("subscribers.parquet"), schema.clone(), groups)
}

fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_2026_03_02_utc_midnight() {
        assert_eq!(Some(DEFAULT_START_MS), citywatch_engine::lateness::parse_date_ms("2026-03-02"));
    }
}
