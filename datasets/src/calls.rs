//! Everyday calling: who calls whom, when, and for how long.
//!
//! Calls are generated hour by hour, per chunk of subscribers, from a random
//! stream keyed by (seed, hour, chunk): the same for any thread count.
//!
//! - **Volume and rhythm**: each subscriber has a daily volume (log-normal
//!   across people; the elderly and children call less); the hour of a call
//!   follows a daily profile in local time (UTC+8), lower at weekends.
//! - **Whom**: a resident calls a circle of 4–33 contacts (70% in the home
//!   district), chosen with Zipf-like weights so a few are called repeatedly;
//!   family (household members and relatives, more often for the elderly);
//!   and sometimes a new number. Agents call many new numbers.
//! - **Suspicious-looking but legitimate**: couriers (25–60 short calls a day
//!   to new numbers in their street), sales lines (80–200 very short calls a
//!   day city-wide, on weekdays), service lines (bank/telecom 95xxx, 400
//!   numbers) calling customers, legitimate callers from other operators
//!   including virtual-operator numbers and from abroad, and long family calls.
//! - **Length**: log-normal by relation (family longest, sales shortest),
//!   with a Pareto tail on 2% of calls, capped at 4 hours.
//!
//! Contacts are a pure function of the caller, so they are not symmetric (A
//! may call B without B ever calling A), unlike a real social graph.

use crate::people::{Kind, Party, Person, Population, SERVICE_LINES, local_hour_weekday, serving_cell};
use crate::rng::{Rng, key, mix, unit};

/// Share of a resident's daily calls in each local hour, weekdays.
const RESIDENT_HOURS: [f64; 24] = [
    0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.7, 2.0, 4.0, 6.0, 6.8, 6.8, 5.8, 5.6, 6.0, 6.3, 6.3, 6.6, 6.8, 7.0, 6.8, 5.4, 3.4,
    1.6,
];
/// Couriers: working hours.
const COURIER_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.0, 7.0, 10.0, 10.0, 9.0, 7.0, 8.0, 10.0, 10.0, 9.0, 8.0, 6.0, 4.0, 1.0, 0.2,
    0.0, 0.0,
];
/// Sales and service lines: office hours.
const OFFICE_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 10.0, 10.0, 4.0, 6.0, 10.0, 10.0, 10.0, 8.0, 2.0, 0.5, 0.2, 0.0,
    0.0, 0.0,
];

/// Share of the day's calls in a local hour for a kind of caller, weekday-adjusted.
pub fn hour_share(kind: Kind, hour: u32, weekday: u32) -> f64 {
    let weekend = weekday >= 5;
    let (profile, weekend_factor) = match kind {
        Kind::Resident | Kind::Agent => (&RESIDENT_HOURS, 0.9),
        Kind::Courier => (&COURIER_HOURS, 0.8),
        Kind::Sales => (&OFFICE_HOURS, 0.2),
    };
    let sum: f64 = profile.iter().sum();
    profile[hour as usize] / sum * if weekend { weekend_factor } else { 1.0 }
}

/// A call as generated (before ids are assigned).
#[derive(Debug, Clone, Copy)]
pub struct CallStart {
    /// Answer time.
    pub ts_ms: i64,
    /// Deterministic tie-breaker among calls answered in the same millisecond.
    pub tie: u64,
    /// Caller.
    pub caller: Party,
    /// Callee.
    pub callee: Party,
    /// Caller's serving cell.
    pub caller_pos: Option<(f64, f64)>,
    /// Callee's serving cell.
    pub callee_pos: Option<(f64, f64)>,
    /// Talk time, seconds.
    pub duration_s: u32,
    /// For fraud calls: index into the fraud plan's calls.
    pub fraud: Option<u32>,
}

const TAG_CALLS: u64 = 0x4341_4c4c;
const TAG_CONTACT: u64 = 0x434f_4e54;
const HOUR_MS: i64 = 3_600_000;

fn heavy_tail(rng: &mut Rng, median: f64, sigma: f64) -> u32 {
    let mut d = rng.lognormal(median, sigma);
    if rng.chance(0.02) {
        d *= (1.0 - rng.f64()).powf(-1.0 / 1.3);
    }
    d.clamp(2.0, 4.0 * 3600.0) as u32
}

/// A random subscriber in `[lo, hi)`, or anywhere when the range is empty.
fn in_range(pop: &Population, rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi > lo { lo + rng.below(hi - lo) } else { rng.below(pop.n) }
}

/// The `k`-th contact of a caller (70% in the home district).
fn contact(pop: &Population, p: &Person, k: u64) -> u64 {
    let h = key(&[pop.seed, TAG_CONTACT, p.idx, k]);
    let (lo, hi) = pop.district_range(p.idx);
    let c = if unit(mix(h ^ 1)) < 0.7 && hi > lo { lo + mix(h ^ 2) % (hi - lo) } else { mix(h ^ 3) % pop.n };
    if c == p.idx { (c + 1) % pop.n } else { c }
}

/// Chooses whom a person calls and how long: (callee, duration).
fn callee_of(pop: &Population, p: &Person, rng: &mut Rng) -> (Party, u32) {
    let elderly = p.profile.age.is_some_and(|a| a >= 60);
    match p.profile.kind {
        Kind::Courier => {
            let (lo, hi) = pop.street_range(p.idx);
            let c = if rng.chance(0.9) { in_range(pop, rng, lo, hi) } else { rng.below(pop.n) };
            return (Party::Sub(c), heavy_tail(rng, 22.0, 0.5));
        }
        Kind::Sales => {
            let c = rng.below(pop.n);
            return (Party::Sub(c), heavy_tail(rng, 14.0, 0.9));
        }
        _ => {}
    }
    let new_share = if p.profile.kind == Kind::Agent { 0.5 } else { 0.06 };
    let family_share = if elderly { 0.45 } else { 0.22 };
    let u = rng.f64();
    if u < new_share {
        let v = rng.f64();
        let party = if v < 0.6 {
            let (lo, hi) = pop.district_range(p.idx);
            Party::Sub(in_range(pop, rng, lo, hi))
        } else if v < 0.85 {
            Party::Ext(rng.below(1 << 40))
        } else {
            Party::Service(rng.below(SERVICE_LINES.len() as u64) as u16)
        };
        (party, heavy_tail(rng, 45.0, 1.0))
    } else if u < new_share + family_share {
        // Household members (same home) or two relatives elsewhere.
        let hh = p.idx / 3 * 3;
        let r = rng.below(4);
        let c = if r < 2 {
            let m = hh + (p.idx - hh + 1 + r) % 3;
            if m < pop.n { m } else { contact(pop, p, 1000) }
        } else {
            contact(pop, p, 1000 + r)
        };
        let median = if elderly { 360.0 } else { 200.0 };
        (Party::Sub(c), heavy_tail(rng, median, 1.1))
    } else {
        let size = 4 + key(&[pop.seed, TAG_CONTACT, p.idx]) % 30;
        // Zipf-like: contact k with weight 1/(k+1), by inverse transform on the harmonic integral.
        let k = (((size as f64 + 1.0).ln() * rng.f64()).exp() - 1.0).floor() as u64;
        (Party::Sub(contact(pop, p, k.min(size - 1))), heavy_tail(rng, 75.0, 1.0))
    }
}

/// The positions of a subscriber party at a time (serving cell).
fn pos_of(pop: &Population, party: Party, ts_ms: i64, known: Option<&Person>) -> Option<(f64, f64)> {
    match party {
        Party::Sub(i) if i < pop.n => {
            let p = match known {
                Some(p) => *p,
                None => pop.person(i),
            };
            Some(serving_cell(pop.position_at(&p, ts_ms)))
        }
        _ => None,
    }
}

/// Generates the everyday calls answered in `[hour_ms, hour_ms + 1h)` by the
/// subscribers `[lo, hi)` (chunk `chunk`), plus calls into that chunk from
/// other operators' customers and service lines.
pub fn chunk_hour(pop: &Population, hour_ms: i64, chunk: u64, lo: u64, hi: u64) -> Vec<CallStart> {
    let mut rng = Rng::new(&[pop.seed, TAG_CALLS, hour_ms as u64, chunk]);
    let (hour, weekday) = local_hour_weekday(hour_ms);
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut tie = || {
        seq += 1;
        (chunk << 32) | seq
    };
    let share = [
        hour_share(Kind::Resident, hour, weekday),
        hour_share(Kind::Courier, hour, weekday),
        hour_share(Kind::Sales, hour, weekday),
    ];
    for idx in lo..hi {
        let prof = pop.profile(idx);
        let s = match prof.kind {
            Kind::Resident | Kind::Agent => share[0],
            Kind::Courier => share[1],
            Kind::Sales => share[2],
        };
        let k = rng.poisson(prof.calls_per_day * s);
        if k == 0 {
            continue;
        }
        let p = pop.person(idx);
        for _ in 0..k {
            let ts = hour_ms + rng.below(HOUR_MS as u64) as i64;
            let (callee, dur) = callee_of(pop, &p, &mut rng);
            out.push(CallStart {
                ts_ms: ts,
                tie: tie(),
                caller: Party::Sub(idx),
                callee,
                caller_pos: pos_of(pop, Party::Sub(idx), ts, Some(&p)),
                callee_pos: pos_of(pop, callee, ts, None),
                duration_s: dur,
                fraud: None,
            });
        }
    }
    // Incoming calls from outside the operator, and from service lines.
    let n = (hi - lo) as f64;
    let ext = rng.poisson(n * pop.rates.external_in_per_day * share[0]);
    let svc = rng.poisson(n * pop.rates.service_in_per_day * hour_share(Kind::Sales, hour, weekday));
    for i in 0..ext + svc {
        let ts = hour_ms + rng.below(HOUR_MS as u64) as i64;
        let callee = lo + rng.below(hi - lo);
        let (caller, dur) = if i < ext {
            let v = rng.f64();
            let party = if v < 0.08 {
                Party::ExtVirtual(rng.below(150_000_000))
            } else if v < 0.11 {
                Party::ExtIntl(rng.below(1 << 40))
            } else {
                Party::Ext(rng.below(1 << 40))
            };
            (party, heavy_tail(&mut rng, 70.0, 1.0))
        } else {
            (Party::Service(rng.below(SERVICE_LINES.len() as u64) as u16), heavy_tail(&mut rng, 80.0, 0.8))
        };
        out.push(CallStart {
            ts_ms: ts,
            tie: tie(),
            caller,
            callee: Party::Sub(callee),
            caller_pos: None,
            callee_pos: pos_of(pop, Party::Sub(callee), ts, None),
            duration_s: dur,
            fraud: None,
        });
    }
    out
}
