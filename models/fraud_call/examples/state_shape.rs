//! Shape of the per-caller state on a dataset: how many calls, distinct
//! callees and ended calls each caller has (sizes the compact state).
//! `cargo run --release -p citywatch-fraud-call --example state_shape -- DIR`
use std::collections::{HashMap, HashSet};

use citywatch_engine::contract::CallPhase;
use citywatch_engine::event::Event;
use citywatch_engine::replay::{ReplayOptions, merged_events};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: state_shape DIR");
    let opts = ReplayOptions { input: dir.into(), ..ReplayOptions::default() };
    let (events, _) = merged_events(&opts).expect("read");
    let mut starts: HashMap<u64, u32> = HashMap::new();
    let mut callees: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut received: HashSet<u64> = HashSet::new();
    let mut active: HashSet<u64> = HashSet::new();
    for e in &events {
        if let Event::Call(c) = e {
            active.insert(c.caller);
            active.insert(c.callee);
            if c.phase == CallPhase::Start {
                *starts.entry(c.caller).or_default() += 1;
                callees.entry(c.caller).or_default().insert(c.callee);
                received.insert(c.callee);
            }
        }
    }
    let mut hist = [0u64; 10];
    for &n in starts.values() {
        hist[(n as usize).min(9)] += 1;
    }
    let mut dh = [0u64; 10];
    for s in callees.values() {
        dh[s.len().min(9)] += 1;
    }
    println!("active {} callers {} receivers {}", active.len(), starts.len(), received.len());
    println!("calls per caller (0..9+): {hist:?}");
    println!("distinct callees per caller (0..9+): {dh:?}");
    println!("calls total {}", starts.values().map(|&n| n as u64).sum::<u64>());
}
