//! Windowed operators against a from-scratch reference on seeded random input,
//! with 1 and 2 workers: a replay-shaped input (out of order within a bound,
//! watermark = largest event time seen minus the bound, advanced in batches).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use citywatch_engine::EventTime;
use citywatch_operators::{Tumbling, WindowCount, WindowDistinctCount, WindowFold, WindowKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, StreamVec};

/// (event time ms, key, value).
type Ev = (u64, u64, u64);

/// Shape of one random case.
#[derive(Debug, Clone, Copy)]
struct Case {
    seed: u64,
    events: usize,
    keys: u64,
    values: u64,
    width_ms: u64,
    /// Largest backward jitter; the out-of-order bound is this plus a margin.
    jitter_ms: u64,
    bound_ms: u64,
    batch: usize,
}

fn events(case: Case) -> Vec<Ev> {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let mut ts = 1_700_000_000_123u64;
    (0..case.events)
        .map(|_| {
            ts += rng.random_range(0..40);
            let jitter = if rng.random_bool(0.1) { rng.random_range(0..=case.jitter_ms) } else { 0 };
            (ts - jitter, rng.random_range(0..case.keys), rng.random_range(0..case.values))
        })
        .collect()
}

/// Drops rows whose window was final under the watermark before them (the rule of
/// the bench workloads' references); the generator here makes none.
fn on_time(case: Case, events: &[Ev]) -> Vec<Ev> {
    let mut max_ts = 0u64;
    let mut kept = Vec::new();
    for &(ts, k, v) in events {
        let end = ts - ts % case.width_ms + case.width_ms;
        if end <= max_ts.saturating_sub(case.bound_ms) {
            continue;
        }
        max_ts = max_ts.max(ts);
        kept.push((ts, k, v));
    }
    kept
}

/// Runs `build` over `events` on `peers` workers; returns (timely time, output).
fn run<O>(
    case: Case,
    peers: usize,
    events: Vec<Ev>,
    build: for<'s> fn(StreamVec<'s, EventTime, Ev>, &Tumbling) -> StreamVec<'s, EventTime, O>,
) -> Vec<(EventTime, O)>
where
    O: timely::ExchangeData + Ord + Clone,
{
    let events = std::sync::Arc::new(events);
    let guards = timely::execute(timely::Config::process(peers), move |worker| {
        let index = worker.index();
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<Ev>>>::new();
        let probe = ProbeHandle::new();
        let seen: Rc<RefCell<Vec<(EventTime, O)>>> = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&seen);
        let windows = Tumbling::new(case.width_ms);
        worker.dataflow(|scope| {
            build(input.to_stream(scope), &windows)
                .inspect_core(move |event| {
                    if let Ok((stamp, data)) = event {
                        let time = *stamp.least().expect("outputs carry a time");
                        sink.borrow_mut().extend(data.iter().map(|o: &O| (time, o.clone())));
                    }
                })
                .probe_with(&probe);
        });
        let mut max_ts = 0u64;
        for (i, ev) in events.iter().enumerate() {
            if i % peers == index {
                input.send(*ev);
            }
            max_ts = max_ts.max(ev.0);
            if (i + 1) % case.batch == 0 {
                let watermark = max_ts.saturating_sub(case.bound_ms);
                if watermark > *input.time() {
                    input.advance_to(watermark);
                }
                worker.step();
            }
        }
        input.close();
        while worker.step() {}
        assert_eq!(windows.late(), 0, "no record of an on-time replay is late");
        seen.take()
    })
    .expect("timely runs");
    let mut all: Vec<(EventTime, O)> = guards.join().into_iter().flat_map(|r| r.expect("worker ok")).collect();
    all.sort();
    all
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for seed in 0..6u64 {
        out.push(Case {
            seed,
            events: 4_000 + 1_000 * seed as usize,
            keys: [3, 50, 1_000][seed as usize % 3],
            values: [2, 40, 100_000][(seed as usize / 2) % 3],
            width_ms: [1_000, 7_000, 60_000][seed as usize % 3],
            jitter_ms: [0, 500, 2_000][(seed as usize + 1) % 3],
            bound_ms: 2_000,
            batch: [1, 17, 1_000][seed as usize % 3],
        });
    }
    out
}

fn count_op<'s>(s: StreamVec<'s, EventTime, Ev>, w: &Tumbling) -> StreamVec<'s, EventTime, (WindowKey, u64)> {
    s.window_count("Count", w, |e: &Ev| (e.1, e.0))
}

fn distinct_op<'s>(s: StreamVec<'s, EventTime, Ev>, w: &Tumbling) -> StreamVec<'s, EventTime, (WindowKey, u64)> {
    s.window_distinct_count("Distinct", w, |e: &Ev| (e.1, e.0), |e: &Ev| e.2)
}

/// (distinct values, events, events with an even value), only where distinct >= 3:
/// several counters and a filter in one pass.
fn fold_op<'s>(
    s: StreamVec<'s, EventTime, Ev>,
    w: &Tumbling,
) -> StreamVec<'s, EventTime, (WindowKey, (u64, u64, u64))> {
    s.window_fold_distinct(
        "Fold",
        w,
        |e: &Ev| (e.1, e.0),
        |e: &Ev| e.2,
        |acc: &mut (u64, u64, u64), e: &Ev, first| {
            acc.0 += u64::from(first);
            acc.1 += 1;
            acc.2 += u64::from(e.2.is_multiple_of(2));
        },
        |wk, acc| (acc.0 >= 3).then_some((wk, *acc)),
    )
}

/// Reference: (key, window start) -> (distinct values, events, even-valued events).
fn reference(case: Case, events: &[Ev]) -> BTreeMap<(u64, u64), (u64, u64, u64)> {
    let mut sets: BTreeMap<(u64, u64), (BTreeSet<u64>, u64, u64)> = BTreeMap::new();
    for &(ts, k, v) in events {
        let e = sets.entry((k, ts - ts % case.width_ms)).or_default();
        e.0.insert(v);
        e.1 += 1;
        e.2 += u64::from(v.is_multiple_of(2));
    }
    sets.into_iter().map(|(k, (s, n, even))| (k, (s.len() as u64, n, even))).collect()
}

fn expected<V: Ord + Clone>(
    case: Case,
    reference: &BTreeMap<(u64, u64), (u64, u64, u64)>,
    pick: impl Fn(&(u64, u64, u64)) -> Option<V>,
) -> Vec<(EventTime, (WindowKey, V))> {
    let mut out: Vec<_> = reference
        .iter()
        .filter_map(|(&(key, start), acc)| {
            pick(acc).map(|v| (start + case.width_ms, (WindowKey { key, window_start_ms: start }, v)))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn window_count_matches_reference() {
    for case in cases() {
        let evs = on_time(case, &events(case));
        let want = expected(case, &reference(case, &evs), |a| Some(a.1));
        for peers in [1, 2] {
            assert_eq!(run(case, peers, evs.clone(), count_op), want, "{case:?} peers {peers}");
        }
    }
}

#[test]
fn window_distinct_count_matches_reference() {
    for case in cases() {
        let evs = on_time(case, &events(case));
        let want = expected(case, &reference(case, &evs), |a| Some(a.0));
        for peers in [1, 2] {
            assert_eq!(run(case, peers, evs.clone(), distinct_op), want, "{case:?} peers {peers}");
        }
    }
}

#[test]
fn window_fold_distinct_several_counters_and_filter_match_reference() {
    for case in cases() {
        let evs = on_time(case, &events(case));
        let want = expected(case, &reference(case, &evs), |a| (a.0 >= 3).then_some(*a));
        for peers in [1, 2] {
            assert_eq!(run(case, peers, evs.clone(), fold_op), want, "{case:?} peers {peers}");
        }
    }
}

/// A record sent below the watermark its input had announced, for a window that was
/// already emitted, is dropped and counted, not folded into a new partial result.
#[test]
fn late_record_is_counted_and_dropped() {
    let guards = timely::execute(timely::Config::thread(), |worker| {
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<Ev>>>::new();
        let probe = ProbeHandle::new();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&seen);
        let windows = Tumbling::new(1_000);
        worker.dataflow(|scope| {
            count_op(input.to_stream(scope), &windows).inspect(move |x| sink.borrow_mut().push(*x)).probe_with(&probe);
        });
        input.send((500, 1, 0));
        input.advance_to(2_500);
        worker.step_while(|| probe.less_than(&2_500));
        input.send((700, 1, 0)); // window [0, 1000) was emitted at 1000
        input.send((2_600, 1, 0));
        input.close();
        while worker.step() {}
        (windows.late(), seen.take())
    })
    .expect("timely runs");
    let (late, seen) = guards.join().pop().unwrap().unwrap();
    assert_eq!(late, 1);
    let k = |s| WindowKey { key: 1, window_start_ms: s };
    assert_eq!(seen, vec![(k(0), 1), (k(2_000), 1)]);
}
