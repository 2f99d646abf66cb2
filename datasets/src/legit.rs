//! Legitimate callers that look like fraud (scenario families `legit-virtual`
//! and `legit-fanout`), planned up front like the fraud plan. Nothing here is
//! labelled: every call of these families is legitimate, and a model that
//! alerts on them is wrong.
//!
//! - **legit-virtual**: people on virtual-operator (170/171/162) and foreign
//!   numbers who call several subscribers repeatedly over days: families
//!   abroad, small traders, people with a cheap MVNO SIM. 2-15 contacts each,
//!   1-6 calls a day, ordinary talk times; a third of their calls are
//!   returned.
//! - **legit-fanout**: subscribers with old registrations that call dozens of
//!   people a day with short calls: clinics and schools (office hours, a
//!   client list of their district), couriers and delivery riders (street
//!   and district, every day). 15-50% of the people they call call them back
//!   within minutes ("I missed your call").

use crate::fraud::ExtraCall;
use crate::people::{Party, Population};
use crate::rng::Rng;

const TAG_LEGIT: u64 = 0x4c45_4749;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The planned calls of the legitimate families, and who made them.
#[derive(Debug, Clone, Default)]
pub struct LegitPlan {
    /// Calls, sorted by answer time.
    pub calls: Vec<ExtraCall>,
    /// The family's callers: (party, family name).
    pub callers: Vec<(Party, &'static str)>,
}

/// Plans the legitimate families that are switched on.
pub fn plan(pop: &Population, virtual_on: bool, fanout_on: bool, start_ms: i64, days: u32) -> LegitPlan {
    let mut out = LegitPlan::default();
    if virtual_on {
        plan_virtual(pop, start_ms, days, &mut out);
    }
    if fanout_on {
        plan_fanout(pop, start_ms, days, &mut out);
    }
    out.calls.sort_by_key(|c| (c.ts_ms, c.caller, c.callee));
    out
}

/// A time in local hours `[from, to)` of a day (local = UTC + 8).
fn at_local(rng: &mut Rng, day_start: i64, from: i64, to: i64) -> i64 {
    day_start + (from - 8) * HOUR_MS + rng.below(((to - from) * HOUR_MS) as u64) as i64
}

fn plan_virtual(pop: &Population, start_ms: i64, days: u32, out: &mut LegitPlan) {
    let mut rng = Rng::new(&[pop.seed, TAG_LEGIT, 1]);
    let k = ((pop.n as f64 / 400.0 * rng.range(0.7, 1.3)).round() as u64).max(1);
    for i in 0..k {
        let mut r = Rng::new(&[pop.seed, TAG_LEGIT, 1, i]);
        let party =
            if r.chance(0.6) { Party::ExtVirtual(r.below(150_000_000)) } else { Party::ExtIntl(r.below(1 << 40)) };
        out.callers.push((party, "legit_virtual"));
        let trader = r.chance(0.3);
        let n_contacts = if trader { 5 + r.below(11) } else { 2 + r.below(5) };
        let (lo, hi) = pop.district_range(r.below(pop.n));
        let contacts: Vec<u64> =
            (0..n_contacts).map(|_| if trader || hi <= lo { r.below(pop.n) } else { lo + r.below(hi - lo) }).collect();
        let per_day = r.range(1.0, 6.0);
        let median = r.range(60.0, 400.0);
        let returned = r.range(0.2, 0.45);
        for d in 0..days {
            let day_start = start_ms + i64::from(d) * DAY_MS;
            for _ in 0..r.poisson(per_day) {
                let ts = at_local(&mut r, day_start, 8, 23);
                let c = contacts[r.below(contacts.len() as u64) as usize];
                let duration_s = r.lognormal(median, 1.0).clamp(5.0, 7_200.0) as u32;
                out.calls.push(ExtraCall { ts_ms: ts, caller: party, callee: Party::Sub(c), duration_s });
                if r.chance(returned) {
                    let back = ts + i64::from(duration_s) * 1000 + (r.range(2.0, 180.0) * 60_000.0) as i64;
                    let duration_s = r.lognormal(median, 1.0).clamp(5.0, 7_200.0) as u32;
                    out.calls.push(ExtraCall { ts_ms: back, caller: Party::Sub(c), callee: party, duration_s });
                }
            }
        }
    }
}

fn plan_fanout(pop: &Population, start_ms: i64, days: u32, out: &mut LegitPlan) {
    let mut rng = Rng::new(&[pop.seed, TAG_LEGIT, 2]);
    let k = ((pop.n as f64 / 300.0 * rng.range(0.7, 1.3)).round() as u64).max(1);
    // Old registrations only: at least a year before the start.
    let old = start_ms - 365 * DAY_MS;
    for i in 0..k {
        let mut r = Rng::new(&[pop.seed, TAG_LEGIT, 2, i]);
        let who = loop {
            let c = r.below(pop.n);
            if pop.person(c).activated_ms < old {
                break c;
            }
        };
        let party = Party::Sub(who);
        // 0: clinic, 1: school, 2: courier, 3: delivery rider.
        let what = r.below(4);
        out.callers.push((party, "legit_fanout"));
        let (lo, hi) = if what == 2 { pop.street_range(who) } else { pop.district_range(who) };
        let pool: Vec<u64> = if what < 2 {
            (0..100 + r.below(500)).map(|_| if hi > lo { lo + r.below(hi - lo) } else { r.below(pop.n) }).collect()
        } else {
            Vec::new()
        };
        let per_day = r.range(15.0, 50.0);
        let median = r.range(8.0, 25.0);
        let returned = r.range(0.15, 0.5);
        let (from, to) = if what < 2 { (8, 17) } else { (9, 21) };
        for d in 0..days {
            let day_start = start_ms + i64::from(d) * DAY_MS;
            let (_, weekday) = crate::people::local_hour_weekday(day_start + 4 * HOUR_MS);
            if what < 2 && weekday >= 5 {
                continue;
            }
            for _ in 0..r.poisson(per_day) {
                let ts = at_local(&mut r, day_start, from, to);
                let c = if pool.is_empty() {
                    if hi > lo { lo + r.below(hi - lo) } else { r.below(pop.n) }
                } else {
                    pool[r.below(pool.len() as u64) as usize]
                };
                if c == who {
                    continue;
                }
                let duration_s = r.lognormal(median, 0.8).clamp(2.0, 1_800.0) as u32;
                out.calls.push(ExtraCall { ts_ms: ts, caller: party, callee: Party::Sub(c), duration_s });
                if r.chance(returned) {
                    let back = ts + i64::from(duration_s) * 1000 + (r.range(1.0, 90.0) * 60_000.0) as i64;
                    let duration_s = r.lognormal(40.0, 0.8).clamp(3.0, 1_800.0) as u32;
                    out.calls.push(ExtraCall { ts_ms: back, caller: Party::Sub(c), callee: party, duration_s });
                }
            }
        }
    }
}
