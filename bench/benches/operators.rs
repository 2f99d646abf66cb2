//! Micro-benchmarks of the operators in `citywatch-operators`, one worker, one
//! group per operator: `WindowCount`, `WindowDistinctCount`,
//! `WindowFold::window_fold_distinct` (the fan-out fold: three counters and a
//! distinct set) and `Deadlines` (alarms expecting a patrol within 3 minutes).
//! Each feeds seeded records in replay-shaped batches (4,096 records sent at the
//! watermark, then the input advanced to the largest event time minus 5 s) and
//! counts the outputs, so a figure is the operator's cost per record with its
//! timely plumbing (exchange, capabilities, progress) and nothing else.
//!
//! `cargo bench -p citywatch-bench --bench operators` (about 30 s).

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use citywatch_operators::deadline::{Deadlines, Step};
use citywatch_operators::{Tumbling, WindowCount, WindowDistinctCount, WindowFold, WindowKey};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Inspect;
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::{InputHandle, StreamVec};

/// Records per benchmark run.
const RECORDS: u64 = 200_000;
/// Records per batch between watermark advances.
const BATCH: usize = 4_096;
/// Out-of-order bound of the watermark.
const BOUND_MS: u64 = 5_000;

/// A call: (event time ms, caller, callee, duration s).
type Call = (u64, u64, u64, u32);

/// 200,000 calls over an hour (18 ms apart, 1 in 20 up to 2 s early) from 20,000
/// callers to their ~10 contacts, as in the fan-out workload.
fn calls() -> Vec<Call> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..RECORDS)
        .map(|i| {
            let r = next();
            let jitter = if r % 20 == 0 { (r >> 8) % 2_000 } else { 0 };
            let caller = (r >> 16) % 20_000;
            let callee = caller * 31 + (r >> 40) % 10;
            (1_700_000_000_000 + i * 18 - jitter, caller, callee, ((r >> 50) % 300) as u32)
        })
        .collect()
}

/// Feeds `records` to `build` on one worker in replay-shaped batches; returns the
/// number of outputs.
fn replay<D, O>(
    records: Vec<D>,
    ts: fn(&D) -> u64,
    build: fn(StreamVec<'_, EventTime, D>) -> StreamVec<'_, EventTime, O>,
) -> usize
where
    D: ExchangeData + Clone + Sync,
    O: ExchangeData + Clone,
{
    timely::execute_directly(move |worker| {
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<D>>>::new();
        let outputs = Rc::new(Cell::new(0usize));
        let sink = Rc::clone(&outputs);
        worker.dataflow(|scope| {
            build(input.to_stream(scope)).inspect_core(move |event| {
                if let Ok((_, data)) = event {
                    sink.set(sink.get() + data.len());
                }
            });
        });
        let mut max_ts = 0;
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut batch: Vec<D> = records.by_ref().take(BATCH).collect();
            max_ts = batch.iter().map(ts).max().unwrap_or(0).max(max_ts);
            input.send_batch(&mut batch);
            input.advance_to(max_ts.saturating_sub(BOUND_MS).max(*input.time()));
            worker.step();
        }
        input.close();
        while worker.step() {}
        outputs.get()
    })
}

fn windows(c: &mut Criterion) {
    let calls = calls();
    let mut g = c.benchmark_group("window operators");
    g.throughput(Throughput::Elements(RECORDS));
    let ts = |c: &Call| c.0;
    g.bench_function("window_count, 1-min windows, 20k keys", |b| {
        b.iter_batched(
            || calls.clone(),
            |calls| replay(calls, ts, |s| s.window_count("Count", &Tumbling::new(60_000), |c: &Call| (c.1, c.0))),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("window_distinct_count, 10-min windows, 20k keys", |b| {
        b.iter_batched(
            || calls.clone(),
            |calls| {
                replay(calls, ts, |s| {
                    s.window_distinct_count("Distinct", &Tumbling::new(600_000), |c: &Call| (c.1, c.0), |c: &Call| c.2)
                })
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("window_fold_distinct (fan-out: 3 counters, distinct set, filter)", |b| {
        b.iter_batched(
            || calls.clone(),
            |calls| {
                replay(calls, ts, |s| {
                    s.window_fold_distinct(
                        "Fanout",
                        &Tumbling::new(600_000),
                        |c: &Call| (c.1, c.0),
                        |c: &Call| c.2,
                        |acc: &mut (u32, u32, u32), c: &Call, first: bool| {
                            acc.0 += u32::from(first);
                            acc.1 += 1;
                            acc.2 += u32::from(c.3 < 30);
                        },
                        |wk: WindowKey, acc: &(u32, u32, u32)| (acc.0 >= 5).then_some((wk, *acc)),
                    )
                })
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// An alarm (`patrol == false`) or a patrol arriving for alarm `id`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Report {
    ts_ms: u64,
    seq: u64,
    id: u64,
    patrol: bool,
}

impl Timed for Report {
    fn ts_ms(&self) -> u64 {
        self.ts_ms
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// 100,000 alarms 36 ms apart; four in five get a patrol 1 to 4 minutes later
/// (so some miss the 3-minute deadline): 180,000 reports in event-time order.
fn reports() -> Vec<Report> {
    let mut out = Vec::new();
    for id in 0..RECORDS / 2 {
        let ts_ms = 1_700_000_000_000 + id * 36;
        out.push(Report { ts_ms, seq: 0, id, patrol: false });
        if id % 5 != 0 {
            out.push(Report { ts_ms: ts_ms + 60_000 + (id * 7_919) % 180_000, seq: 0, id, patrol: true });
        }
    }
    out.sort_by_key(|r| r.ts_ms);
    for (seq, r) in out.iter_mut().enumerate() {
        r.seq = seq as u64;
    }
    out
}

fn deadlines(c: &mut Criterion) {
    let reports = reports();
    let mut g = c.benchmark_group("deadlines");
    g.throughput(Throughput::Elements(reports.len() as u64));
    g.bench_function("alarms expecting a patrol within 3 min", |b| {
        b.iter_batched(
            || reports.clone(),
            |reports| {
                replay(
                    reports,
                    |r: &Report| r.ts_ms,
                    |s| {
                        let alarms = s.clone().filter(|r: &Report| !r.patrol);
                        let patrols = s.filter(|r: &Report| r.patrol);
                        alarms.deadlines(
                            patrols,
                            Pipeline,
                            Pipeline,
                            "Gap",
                            HashSet::<u64>::new(),
                            |open: &mut HashSet<u64>, step: Step<'_, Report, Report>, ctx| match step {
                                Step::Left(alarm) => {
                                    open.insert(alarm.id);
                                    ctx.set_timer(alarm.ts_ms + 180_000, alarm.id);
                                }
                                Step::Right(patrol) => {
                                    open.remove(&patrol.id);
                                }
                                Step::Timer { key, .. } => {
                                    if open.remove(&key) {
                                        ctx.emit(key);
                                    }
                                }
                            },
                        )
                    },
                )
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = windows, deadlines }
criterion_main!(benches);
