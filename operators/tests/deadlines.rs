//! `deadlines_touching` against `deadlines`: the look-ahead hook changes no
//! output, and sees every left event once, before the logic handles it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use citywatch_operators::deadline::{Context, Deadlines, Step};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// An alarm (`patrol == false`) or the patrol that answers alarm `id`.
#[derive(Debug, Clone, Copy)]
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

/// Alarms every few seconds, out of order within a minute; two in three get a
/// patrol within 0-4 minutes (the deadline is 3).
fn reports(n: u64) -> Vec<Report> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000u64;
    for id in 0..n {
        ts += rng.random_range(0..5_000);
        let jitter = if rng.random_bool(0.2) { rng.random_range(0..60_000) } else { 0 };
        out.push(Report { ts_ms: ts - jitter, seq: 0, id, patrol: false });
        if rng.random_bool(0.66) {
            out.push(Report { ts_ms: ts + rng.random_range(0..240_000), seq: 0, id, patrol: true });
        }
    }
    // Arrival order: the alarms as generated, each patrol once its time comes.
    out.sort_by_key(|r| r.ts_ms + if r.patrol { 0 } else { 60_000 });
    for (seq, r) in out.iter_mut().enumerate() {
        r.seq = seq as u64;
    }
    out
}

/// What a run gives: its output (timely time, alarm id, deadline), how many
/// left events were touched, and how many reached the logic untouched.
struct Run {
    out: Vec<(EventTime, u64, u64)>,
    touched: usize,
    untouched: usize,
}

/// Alarms with no patrol within 3 minutes, on one worker, the input advanced
/// in batches of 50 behind a watermark 60 s back (many activations).
fn run(with_touch: bool) -> Run {
    let reports = reports(3_000);
    let guards = timely::execute(timely::Config::thread(), move |worker| {
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<Report>>>::new();
        let probe = ProbeHandle::new();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let touched = Rc::new(RefCell::new(HashSet::<u64>::new()));
        let untouched = Rc::new(RefCell::new(0usize));
        let (sink, touched_w, untouched_w) = (Rc::clone(&seen), Rc::clone(&touched), Rc::clone(&untouched));
        worker.dataflow(|scope| {
            let s = input.to_stream(scope);
            let alarms = s.clone().filter(|r: &Report| !r.patrol);
            let patrols = s.filter(|r: &Report| r.patrol);
            let logic = move |open: &mut HashMap<u64, u64>,
                              step: Step<'_, Report, Report>,
                              ctx: &mut Context<'_, (u64, u64)>| match step {
                Step::Left(alarm) => {
                    if with_touch && !touched_w.borrow().contains(&alarm.id) {
                        *untouched_w.borrow_mut() += 1;
                    }
                    open.insert(alarm.id, alarm.ts_ms + 180_000);
                    ctx.set_timer(alarm.ts_ms + 180_000, alarm.id);
                }
                Step::Right(patrol) => {
                    open.remove(&patrol.id);
                }
                Step::Timer { at_ms, key } => {
                    if open.remove(&key).is_some() {
                        ctx.emit((key, at_ms));
                    }
                }
            };
            let out = if with_touch {
                let touched_t = Rc::clone(&touched);
                alarms.deadlines_touching(
                    patrols,
                    Pipeline,
                    Pipeline,
                    "Gap",
                    HashMap::new(),
                    move |open: &HashMap<u64, u64>, alarm: &Report| {
                        std::hint::black_box(open.get(&alarm.id));
                        assert!(touched_t.borrow_mut().insert(alarm.id), "alarm {} touched twice", alarm.id);
                    },
                    logic,
                )
            } else {
                alarms.deadlines(patrols, Pipeline, Pipeline, "Gap", HashMap::new(), logic)
            };
            out.inspect_core(move |event| {
                if let Ok((stamp, data)) = event {
                    let time = *stamp.least().expect("outputs carry a time");
                    sink.borrow_mut().extend(data.iter().map(|&(id, at)| (time, id, at)));
                }
            })
            .probe_with(&probe);
        });
        let mut max_ts = 0u64;
        for (i, r) in reports.iter().enumerate() {
            input.send(*r);
            max_ts = max_ts.max(r.ts_ms);
            if (i + 1) % 50 == 0 {
                let watermark = max_ts.saturating_sub(60_000);
                if watermark > *input.time() {
                    input.advance_to(watermark);
                }
                worker.step();
            }
        }
        input.close();
        while worker.step() {}
        let touched = touched.borrow().len();
        let untouched = *untouched.borrow();
        (seen.take(), touched, untouched)
    })
    .expect("timely runs");
    let (out, touched, untouched) = guards.join().pop().expect("one worker").expect("worker ok");
    Run { out, touched, untouched }
}

#[test]
fn touching_changes_no_output_and_sees_each_left_event_before_the_logic() {
    let plain = run(false);
    let touching = run(true);
    assert!(plain.out.len() > 100, "the scenario misses deadlines: {}", plain.out.len());
    assert_eq!(plain.out, touching.out);
    assert_eq!(touching.touched, 3_000, "every alarm is touched once");
    assert_eq!(touching.untouched, 0, "no alarm reaches the logic before it is touched");
}
