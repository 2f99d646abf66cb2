//! `sliding_count` against a plain single-threaded model of its definition,
//! with 1, 2 and 4 workers, on keyed events with ties, disorder within the
//! watermark, and bursts that end and start again.

use std::sync::{Arc, Mutex};

use citywatch_engine::EventTime;
use citywatch_engine::event::Timed;
use citywatch_operators::{Burst, SlidingCount};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Ev {
    ts_ms: u64,
    seq: u64,
    key: u64,
}

impl Timed for Ev {
    fn ts_ms(&self) -> u64 {
        self.ts_ms
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

const WINDOW: u64 = 60_000;
const MIN: usize = 3;

/// 12 keys over an hour, stamped to the second (ties), a fifth of them up to
/// 20 s late in arrival order; every key has quiet spells and busy ones.
fn events() -> Vec<Ev> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let t0 = 1_700_000_000_000u64;
    let mut out = Vec::new();
    for key in 0..12u64 {
        let mut ts = t0 + rng.random_range(0..60_000);
        while ts < t0 + 3_600_000 {
            out.push(Ev { ts_ms: ts - ts % 1_000, seq: 0, key });
            ts += if rng.random_bool(0.3) { rng.random_range(60_000..400_000) } else { rng.random_range(0..30_000) };
        }
    }
    out.sort_by_key(|e| e.ts_ms);
    for e in out.iter_mut() {
        if rng.random_bool(0.2) {
            e.seq = 1; // mark: move later in arrival
        }
    }
    let (mut on_time, late): (Vec<Ev>, Vec<Ev>) = out.into_iter().partition(|e| e.seq == 0);
    for e in late {
        let at = on_time.partition_point(|o| o.ts_ms <= e.ts_ms + 20_000);
        on_time.insert(at, e);
    }
    for (seq, e) in on_time.iter_mut().enumerate() {
        e.seq = seq as u64;
    }
    on_time
}

/// The definition, plainly: events of a key in (ts, seq) order; a burst when
/// an event brings the count of the key's events in (t - W, t] to MIN having
/// been below MIN at some instant since the last burst (counts are looked at
/// when each event ages out, at its ts + W, after the events of that instant).
fn expected(events: &[Ev]) -> Vec<(u64, u64, Vec<u64>)> {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| (e.ts_ms, e.seq));
    let mut out = Vec::new();
    for key in 0..12u64 {
        let mine: Vec<&Ev> = sorted.iter().filter(|e| e.key == key).collect();
        let mut armed = true;
        for (i, e) in mine.iter().enumerate() {
            let t = e.ts_ms;
            if i > 0 {
                let prev = mine[i - 1].ts_ms;
                // Age-out instants in [prev, t): the count there.
                for a in &mine[..i] {
                    let at = a.ts_ms + WINDOW;
                    if at >= prev && at < t && mine[..i].iter().filter(|b| b.ts_ms + WINDOW > at).count() < MIN {
                        armed = true;
                    }
                }
            }
            let window: Vec<&&Ev> = mine[..=i].iter().filter(|b| b.ts_ms + WINDOW > t).collect();
            if window.len() >= MIN && armed {
                armed = false;
                out.push((key, t, window.iter().map(|b| b.seq).collect()));
            }
        }
    }
    out.sort();
    out
}

fn run(workers: usize, events: Vec<Ev>) -> Vec<(u64, u64, Vec<u64>)> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::<EventTime, CapacityContainerBuilder<Vec<Ev>>>::new();
        let sink = Arc::clone(&sink);
        let probe = ProbeHandle::new();
        worker.dataflow(|scope| {
            let bursts = input.to_stream(scope).sliding_count("Bursts", WINDOW, MIN, |e: &Ev| e.key);
            bursts.probe_with(&probe).inspect_core(move |event| {
                if let Ok((stamp, data)) = event {
                    let time = *stamp.least().expect("a time");
                    for b in data.iter() {
                        let b: &Burst<Ev> = b;
                        assert!(time <= b.at_ms, "emitted at timely time {time} after its event time {}", b.at_ms);
                        sink.lock().unwrap().push((b.key, b.at_ms, b.events.iter().map(|e| e.seq).collect()));
                    }
                }
            });
        });
        if worker.index() == 0 {
            let mut max_ts = 0;
            for (i, e) in events.iter().enumerate() {
                input.send(*e);
                max_ts = max_ts.max(e.ts_ms);
                if i % 40 == 39 {
                    let watermark = max_ts.saturating_sub(20_000);
                    if watermark > *input.time() {
                        input.advance_to(watermark);
                    }
                    worker.step();
                }
            }
        }
        // The final watermark, seen by every operator before the input
        // closes (as the engine's driver does): timers up to it fire.
        let last = events.iter().map(|e| e.ts_ms).max().unwrap_or(0) + 1;
        input.advance_to(last);
        while probe.less_than(&last) {
            worker.step();
        }
    })
    .expect("timely runs");
    let mut got = got.lock().unwrap().clone();
    got.sort();
    got
}

#[test]
fn matches_its_definition_with_1_2_4_workers() {
    let events = events();
    let want = expected(&events);
    assert!(want.len() >= 20, "too few bursts to prove much: {}", want.len());
    let by_seq = |s: u64| events.iter().find(|e| e.seq == s).unwrap().ts_ms;
    assert!(
        want.iter().any(|(_, _, ev)| ev.windows(2).any(|p| by_seq(p[0]) == by_seq(p[1]))),
        "no burst holds two events of one instant (ties)"
    );
    let keys_twice = (0..12u64).filter(|k| want.iter().filter(|b| b.0 == *k).count() >= 2).count();
    assert!(keys_twice >= 6, "bursts should end and start again for most keys, got {keys_twice}");
    for workers in [1, 2, 4] {
        assert_eq!(run(workers, events.clone()), want, "{workers} workers");
    }
}
