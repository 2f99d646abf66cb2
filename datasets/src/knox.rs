//! The Knox test for space-time interaction (Knox 1964).
//!
//! Among all pairs of events, count those close in space (within `space_m`),
//! close in time (within `time_ms`), and close in both. Without interaction
//! the close-in-both count is expected to be
//! `close_space * close_time / pairs`; near-repeat victimisation (Johnson &
//! Bowers 2004) makes it larger. The ratio observed/expected measures the
//! excess; a permutation of the times (Monte Carlo) gives a p-value that is
//! not fooled by the spatial and temporal clustering each on its own.

use crate::rng::Rng;

/// The result of a Knox test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Knox {
    /// Events.
    pub events: usize,
    /// Pairs close in space.
    pub close_space: u64,
    /// Pairs close in time.
    pub close_time: u64,
    /// Pairs close in both.
    pub close_both: u64,
    /// Expected close-in-both pairs without interaction.
    pub expected: f64,
    /// `close_both / expected`.
    pub ratio: f64,
    /// Share of time permutations with at least as many close-in-both pairs (Monte Carlo p-value).
    pub p_value: f64,
}

fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    crate::city::km(a, b) * 1000.0
}

fn close_both(events: &[(i64, (f64, f64))], times: &[i64], space_m: f64, time_ms: i64) -> u64 {
    let mut n = 0;
    for i in 0..events.len() {
        for j in i + 1..events.len() {
            if (times[i] - times[j]).abs() <= time_ms && metres(events[i].1, events[j].1) <= space_m {
                n += 1;
            }
        }
    }
    n
}

/// Runs the test on `(ts_ms, (lat, lon))` events with `permutations` Monte Carlo draws.
pub fn knox(events: &[(i64, (f64, f64))], space_m: f64, time_ms: i64, permutations: u32, seed: u64) -> Knox {
    let n = events.len();
    let times: Vec<i64> = events.iter().map(|e| e.0).collect();
    let (mut cs, mut ct) = (0u64, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            cs += u64::from(metres(events[i].1, events[j].1) <= space_m);
            ct += u64::from((times[i] - times[j]).abs() <= time_ms);
        }
    }
    let both = close_both(events, &times, space_m, time_ms);
    let pairs = (n as u64 * n.saturating_sub(1) as u64 / 2).max(1);
    let expected = cs as f64 * ct as f64 / pairs as f64;
    let mut rng = Rng::new(&[seed, 0x4b4e_4f58]);
    let mut at_least = 0u32;
    let mut shuffled = times.clone();
    for _ in 0..permutations {
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            shuffled.swap(i, j);
        }
        if close_both(events, &shuffled, space_m, time_ms) >= both {
            at_least += 1;
        }
    }
    Knox {
        events: n,
        close_space: cs,
        close_time: ct,
        close_both: both,
        expected,
        ratio: if expected > 0.0 { both as f64 / expected } else { 0.0 },
        p_value: f64::from(at_least + 1) / f64::from(permutations + 1),
    }
}
