//! Crime and other incidents: a self-exciting point process mapped to 110 alarms.
//!
//! **Background**: for every hour and category, a Poisson number of incidents
//! with a rate per million people, a daily cycle (local time) and a weekly
//! factor; places are drawn in proportion to a mix of population and commerce
//! (burglary follows homes, theft and robbery follow commerce).
//!
//! **Near repeats** (burglary): each burglary triggers a Poisson number of
//! offspring (branching ratio [`CrimeRates::burglary_branching`]) an
//! exponentially distributed time later (mean [`CrimeRates::repeat_days`]) and
//! an exponentially distributed distance away (mean
//! [`CrimeRates::repeat_metres`]), recursively: the Hawkes/ETAS model that
//! ProMap-style forecasting assumes (Johnson & Bowers 2004; Mohler et al. 2011).
//! A 14-day burn-in before the start makes the first days stationary.
//!
//! **Alarms**: an incident is reported after a delay (burglaries are often
//! found later), with a priority by category and a source: the 110 hotline,
//! an app, a sensor (burglar and fire alarms) or an officer on patrol.

use citywatch_engine::contract::{AlarmSource, Category};

use crate::city::{City, offset_km};
use crate::people::local_hour_weekday;
use crate::rng::{Rng, cumulative};

/// Crime settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrimeRates {
    /// Multiplies every background rate (1 = the defaults below).
    pub scale: f64,
    /// Offspring per burglary (0 = no near repeats; must be < 1).
    pub burglary_branching: f64,
    /// Mean time from a burglary to a triggered one, days.
    pub repeat_days: f64,
    /// Mean distance from a burglary to a triggered one, metres.
    pub repeat_metres: f64,
}

impl Default for CrimeRates {
    fn default() -> Self {
        CrimeRates { scale: 1.0, burglary_branching: 0.3, repeat_days: 2.5, repeat_metres: 120.0 }
    }
}

/// Background incidents per million people per day, and where they happen
/// (weight of population vs commerce).
const BACKGROUND: [(Category, f64, f64); 10] = [
    (Category::Burglary, 2.5, 0.9),
    (Category::Theft, 10.0, 0.2),
    (Category::Robbery, 0.6, 0.4),
    (Category::Assault, 4.0, 0.5),
    (Category::VehicleTheft, 1.8, 0.8),
    (Category::Disturbance, 9.0, 0.5),
    (Category::Traffic, 22.0, 0.4),
    (Category::Fire, 0.8, 0.9),
    (Category::Medical, 7.0, 0.9),
    (Category::Other, 8.0, 0.7),
];

/// Relative rate by local hour (0..24) for a category.
fn hourly(c: Category) -> [f64; 24] {
    match c {
        Category::Burglary => {
            [3., 3., 3., 2., 2., 1., 1., 2., 4., 6., 7., 7., 6., 6., 7., 7., 6., 5., 4., 4., 3., 3., 3., 3.]
        }
        Category::Theft | Category::VehicleTheft => {
            [2., 1., 1., 1., 1., 1., 2., 4., 6., 7., 8., 9., 9., 9., 9., 9., 9., 9., 8., 7., 6., 5., 4., 3.]
        }
        Category::Robbery | Category::Assault | Category::Disturbance => {
            [8., 7., 5., 3., 2., 1., 1., 2., 3., 3., 4., 4., 5., 5., 5., 5., 6., 6., 7., 8., 9., 10., 10., 9.]
        }
        Category::Traffic => {
            [2., 1., 1., 1., 1., 2., 4., 9., 10., 7., 6., 6., 6., 6., 6., 7., 8., 10., 10., 7., 5., 4., 3., 2.]
        }
        _ => [3., 2., 2., 2., 2., 2., 3., 4., 5., 6., 6., 6., 6., 6., 6., 6., 6., 6., 6., 6., 5., 5., 4., 4.],
    }
}

fn weekly(c: Category, weekday: u32) -> f64 {
    let weekend = weekday >= 5;
    match c {
        Category::Assault | Category::Disturbance | Category::Robbery if weekend => 1.2,
        Category::Traffic if weekend => 0.8,
        Category::Burglary if weekend => 0.85,
        _ => 1.0,
    }
}

/// One incident and the alarm it raises.
#[derive(Debug, Clone, Copy)]
pub struct Incident {
    /// When it happened.
    pub occurred_ms: i64,
    /// When the alarm is received.
    pub ts_ms: i64,
    /// Category.
    pub category: Category,
    /// Priority, 1 (most urgent) to 4.
    pub priority: u8,
    /// Where (lat, lon).
    pub pos: (f64, f64),
    /// How it was reported.
    pub source: AlarmSource,
    /// Whether a near repeat (triggered by an earlier burglary) — ground truth, not written.
    pub triggered: bool,
}

const TAG_CRIME: u64 = 0x4352_494d;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const BURN_IN_DAYS: i64 = 14;

/// Simulates incidents whose alarms arrive in `[start_ms, start_ms + days)`, sorted by alarm time.
pub fn simulate(city: &City, rates: &CrimeRates, seed: u64, start_ms: i64, days: u32) -> Vec<Incident> {
    let end_ms = start_ms + i64::from(days) * DAY_MS;
    let from = start_ms - BURN_IN_DAYS * DAY_MS;
    let total_pop: f64 = city.population;
    let pop_total = *city.pop_cum.last().expect("grids");
    let com_total = *city.commerce_cum.last().expect("grids");
    let mut out = Vec::new();
    let mut burglaries: Vec<(i64, (f64, f64))> = Vec::new();
    for (ci, &(cat, per_million, w_pop)) in BACKGROUND.iter().enumerate() {
        let cum = cumulative(
            city.grids.iter().map(|g| w_pop * g.population / pop_total + (1.0 - w_pop) * g.commerce / com_total),
        );
        let prof = hourly(cat);
        let prof_sum: f64 = prof.iter().sum();
        let mut rng = Rng::new(&[seed, TAG_CRIME, ci as u64]);
        let per_hour = per_million * total_pop / 1e6 / 24.0 * rates.scale;
        let mut t = from;
        while t < end_ms {
            let (h, wd) = local_hour_weekday(t);
            let mean = per_hour * prof[h as usize] * 24.0 / prof_sum * weekly(cat, wd);
            for _ in 0..rng.poisson(mean) {
                let occurred = t + rng.below(HOUR_MS as u64) as i64;
                let g = rng.weighted(&cum);
                let pos = city.point_in_grid(g, &mut rng);
                let pos = city.inside_or(pos, g);
                if cat == Category::Burglary {
                    burglaries.push((occurred, pos));
                } else if let Some(i) = report(cat, occurred, pos, false, &mut rng) {
                    out.push(i);
                }
            }
            t += HOUR_MS;
        }
    }
    // Near repeats: offspring of every burglary, recursively (branching < 1 ends it).
    let mut rng = Rng::new(&[seed, TAG_CRIME, 0xB0]);
    let mut queue: Vec<(i64, (f64, f64), bool)> = burglaries.iter().map(|&(t, p)| (t, p, false)).collect();
    queue.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.0.total_cmp(&b.1.0)));
    let mut i = 0;
    let branching = rates.burglary_branching.clamp(0.0, 0.95);
    while i < queue.len() {
        let (t, p, _) = queue[i];
        for _ in 0..rng.poisson(branching) {
            let dt = (rng.exp(rates.repeat_days) * DAY_MS as f64) as i64 + HOUR_MS;
            let d = rng.exp(rates.repeat_metres / 1000.0);
            let a = rng.range(0.0, std::f64::consts::TAU);
            let child = (t + dt, offset_km(p, d * a.sin(), d * a.cos()), true);
            if child.0 < end_ms && city.grid_at(child.1).is_some() {
                queue.push(child);
            }
        }
        i += 1;
    }
    for (t, p, triggered) in queue {
        if let Some(inc) = report(Category::Burglary, t, p, triggered, &mut rng) {
            out.push(inc);
        }
    }
    out.retain(|i| i.ts_ms >= start_ms && i.ts_ms < end_ms);
    out.sort_by(|a, b| a.ts_ms.cmp(&b.ts_ms).then(a.pos.0.total_cmp(&b.pos.0)).then(a.pos.1.total_cmp(&b.pos.1)));
    out
}

/// The alarm an incident raises: delay, priority, source.
fn report(cat: Category, occurred: i64, pos: (f64, f64), triggered: bool, rng: &mut Rng) -> Option<Incident> {
    use AlarmSource::*;
    use Category::*;
    let (delay_median_min, sigma) = match cat {
        Burglary => (40.0, 1.2),
        VehicleTheft | Theft => (20.0, 1.2),
        _ => (3.0, 0.8),
    };
    let delay = (rng.lognormal(delay_median_min, sigma) * 60_000.0) as i64 + 20_000;
    let priority = match cat {
        Robbery | Fire => 1,
        Assault | Medical => {
            if rng.chance(0.6) {
                1
            } else {
                2
            }
        }
        Burglary => 2,
        Traffic => {
            if rng.chance(0.35) {
                2
            } else {
                3
            }
        }
        VehicleTheft | Theft | Disturbance | FraudReport => 3,
        Other => 4,
    };
    let u = rng.f64();
    let source = match cat {
        Burglary | Fire if u < 0.15 => Sensor,
        Traffic | Disturbance if u < 0.08 => Officer,
        _ if u > 0.88 => App,
        _ => Hotline,
    };
    Some(Incident { occurred_ms: occurred, ts_ms: occurred + delay, category: cat, priority, pos, source, triggered })
}
