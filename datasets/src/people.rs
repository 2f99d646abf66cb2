//! Subscribers: who they are, where they live and work, whom they call.
//!
//! A subscriber is an index `0..n`. Everything about subscriber `i` (number,
//! age, kind, home, workplace, contacts, activity) is a pure function of
//! `(seed, i)`, so any thread can compute any subscriber without shared state
//! and a 10-million-subscriber city needs no table in memory.
//!
//! Subscribers are allocated to communities in proportion to population, in
//! contiguous index ranges (community, street and district ranges are
//! contiguous too), and live in households of three consecutive indices that
//! share a home.
//!
//! **Numbers**: the operator's own subscribers get 11-digit mobile numbers from
//! twenty ordinary prefixes (never the virtual-operator ranges 170/171/162/165/167);
//! the index is scrambled by a bijection so numbers look random and never
//! collide. Other operators' customers ([`Party::Ext`]) get other prefixes; they
//! are not in the subscribers table and their cell position is unknown (null),
//! as for a real operator.

use std::sync::Arc;

use crate::city::{City, offset_km};
use crate::rng::{Rng, key, mix, pick_cumulative, unit};

/// What a subscriber does with the phone (decides volume, hours, fan-out and length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kind {
    /// An ordinary person: a circle of contacts, family, occasionally a new number.
    Resident,
    /// A courier: dozens of short calls a day to new numbers in their street.
    Courier,
    /// A sales line: a hundred or more very short calls a day to new numbers city-wide.
    Sales,
    /// A person who calls many new numbers (agents, job seekers, realtors).
    Agent,
}

/// A party to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// One of the operator's subscribers (index).
    Sub(u64),
    /// Another operator's domestic mobile customer (index in its own number space).
    Ext(u64),
    /// A legitimate virtual-operator number (170/171/162): risky-looking, harmless.
    ExtVirtual(u64),
    /// A legitimate caller from abroad (family, business).
    ExtIntl(u64),
    /// A legitimate service line (bank/telecom 95xxx/100xx, company 400 number).
    Service(u16),
    /// A fraud number (index into the fraud plan's numbers).
    Fraud(u32),
}

/// Prefixes of the operator's own mobile numbers.
const OWN_PREFIXES: [&str; 20] = [
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159", "178", "182", "183",
    "184", "187", "188", "198",
];
/// Prefixes of other operators' mobile numbers.
const EXT_PREFIXES: [&str; 10] = ["130", "131", "132", "155", "156", "185", "186", "133", "153", "189"];
/// Legitimate virtual-operator prefixes (fraud numbers use these and 165/167).
const EXT_VIRTUAL_PREFIXES: [&str; 3] = ["170", "171", "162"];
/// Countries legitimate international callers come from (code, national digits).
const EXT_INTL: [(&str, usize); 5] = [("1", 10), ("81", 10), ("82", 10), ("852", 8), ("49", 11)];
/// Legitimate service lines that call customers.
pub const SERVICE_LINES: [&str; 14] = [
    "95588",
    "95533",
    "95599",
    "95566",
    "95555",
    "10086",
    "10010",
    "95338",
    "95311",
    "4008123123",
    "4006959595",
    "4008205555",
    "95017",
    "95118",
];

/// A number formed as a prefix + 8 digits from an index in a space of `20 x 10^8`.
fn scrambled(prefixes: &[&str], idx: u64, salt: u64, out: &mut String) {
    let p = prefixes[(idx % prefixes.len() as u64) as usize];
    let r = idx / prefixes.len() as u64;
    // r -> (r * A + B) mod 10^8 is a bijection when A is coprime with 10.
    let x = (r % 100_000_000).wrapping_mul(48_271).wrapping_add(salt % 100_000_000) % 100_000_000;
    out.push_str(p);
    push_digits(out, x, 8);
}

/// Appends `x` as exactly `width` decimal digits.
pub fn push_digits(out: &mut String, mut x: u64, width: usize) {
    let mut buf = [b'0'; 20];
    for i in (0..width).rev() {
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[..width]).expect("digits"));
}

/// Age, kind and daily call volume of a subscriber: the cheap part of a person.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// What they do with the phone.
    pub kind: Kind,
    /// Age in years; `None` for the few numbers registered to companies.
    pub age: Option<u8>,
    /// Expected answered outgoing calls per day.
    pub calls_per_day: f64,
}

/// Everything about one subscriber.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Index.
    pub idx: u64,
    /// Age, kind, volume.
    pub profile: Profile,
    /// Home position.
    pub home: (f64, f64),
    /// Workplace, for working-age people with a job.
    pub work: Option<(f64, f64)>,
    /// When the number was activated.
    pub activated_ms: i64,
}

/// The rates that shape subscribers (see `datasets/README.md`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PeopleRates {
    /// Mean answered outgoing calls per resident per day.
    pub calls_per_day: f64,
    /// Share of subscribers aged 60 or more (Qingdao 2020: ~22%).
    pub elderly_share: f64,
    /// Share of subscribers who are couriers.
    pub courier_share: f64,
    /// Share of subscribers who are sales lines.
    pub sales_share: f64,
    /// Share of subscribers who call many new numbers.
    pub agent_share: f64,
    /// Incoming calls per subscriber per day from other operators' customers.
    pub external_in_per_day: f64,
    /// Calls per subscriber per day from legitimate service lines.
    pub service_in_per_day: f64,
}

impl Default for PeopleRates {
    fn default() -> Self {
        PeopleRates {
            calls_per_day: 2.2,
            elderly_share: 0.22,
            courier_share: 0.003,
            sales_share: 0.0005,
            agent_share: 0.02,
            external_in_per_day: 0.5,
            service_in_per_day: 0.01,
        }
    }
}

/// The subscriber population of one generated dataset.
#[derive(Debug, Clone)]
pub struct Population {
    /// The city they live in.
    pub city: Arc<City>,
    /// Number of subscribers.
    pub n: u64,
    /// The generator seed.
    pub seed: u64,
    /// Rates.
    pub rates: PeopleRates,
    /// First subscriber index of each community (len = communities + 1).
    pub comm_start: Vec<u64>,
    /// First subscriber index of each district (len = districts + 1).
    pub district_start: Vec<u64>,
    /// First subscriber index of each street (len = streets + 1).
    pub street_start: Vec<u64>,
    /// Salt of the number bijection.
    salt: u64,
    /// Reference time for activation dates (the dataset start).
    pub start_ms: i64,
}

const TAG_PERSON: u64 = 0x5045_5253;
const TAG_HOME: u64 = 0x484f_4d45;
/// Calls per day of a log-normal(0, 0.75) multiplier: mean e^{0.28}.
const LN_MEAN: f64 = 1.324_919_696;
const DAY_MS: i64 = 86_400_000;

impl Population {
    /// Allocates `n` subscribers to the city's communities by population
    /// (largest-remainder rounding, deterministic).
    pub fn new(city: Arc<City>, n: u64, seed: u64, rates: PeopleRates, start_ms: i64) -> Population {
        let total = city.population;
        let quotas: Vec<f64> = city.communities.iter().map(|c| n as f64 * c.population / total).collect();
        let mut counts: Vec<u64> = quotas.iter().map(|q| q.floor() as u64).collect();
        let assigned: u64 = counts.iter().sum();
        let mut order: Vec<usize> = (0..quotas.len()).collect();
        order.sort_by(|&a, &b| {
            (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())).then(a.cmp(&b))
        });
        for &i in order.iter().take((n - assigned) as usize) {
            counts[i] += 1;
        }
        let mut comm_start = Vec::with_capacity(counts.len() + 1);
        let mut acc = 0;
        for c in &counts {
            comm_start.push(acc);
            acc += c;
        }
        comm_start.push(acc);
        let street_start: Vec<u64> =
            city.streets.iter().map(|s| comm_start[s.communities.start]).chain(std::iter::once(n)).collect();
        let district_start: Vec<u64> =
            city.districts.iter().map(|d| street_start[d.streets.start]).chain(std::iter::once(n)).collect();
        Population {
            city,
            n,
            seed,
            rates,
            comm_start,
            district_start,
            street_start,
            salt: mix(seed ^ 0x4e55_4d42),
            start_ms,
        }
    }

    /// The community of a subscriber.
    pub fn community_of(&self, idx: u64) -> usize {
        self.comm_start.partition_point(|&s| s <= idx) - 1
    }

    /// The subscriber index range of the district holding `idx`.
    pub fn district_range(&self, idx: u64) -> (u64, u64) {
        let d = self.district_start.partition_point(|&s| s <= idx) - 1;
        (self.district_start[d], self.district_start[d + 1])
    }

    /// The subscriber index range of the street holding `idx`.
    pub fn street_range(&self, idx: u64) -> (u64, u64) {
        let s = self.street_start.partition_point(|&s| s <= idx) - 1;
        (self.street_start[s], self.street_start[s + 1])
    }

    /// Age, kind and volume (cheap: a few hashes).
    pub fn profile(&self, idx: u64) -> Profile {
        let h = key(&[self.seed, TAG_PERSON, idx]);
        let r = &self.rates;
        let u_kind = unit(mix(h ^ 1));
        let kind = if u_kind < r.courier_share {
            Kind::Courier
        } else if u_kind < r.courier_share + r.sales_share {
            Kind::Sales
        } else if u_kind < r.courier_share + r.sales_share + r.agent_share {
            Kind::Agent
        } else {
            Kind::Resident
        };
        let u_age = unit(mix(h ^ 2));
        let u_age2 = unit(mix(h ^ 3));
        let age = if unit(mix(h ^ 4)) < 0.01 {
            None
        } else {
            Some(match kind {
                Kind::Courier => 20 + (u_age2 * 26.0) as u8,
                Kind::Sales => 22 + (u_age2 * 30.0) as u8,
                _ => age_from(u_age, u_age2, r.elderly_share),
            })
        };
        let normal = {
            let u1 = 1.0 - unit(mix(h ^ 5));
            let u2 = unit(mix(h ^ 6));
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let base = r.calls_per_day * (0.75 * normal).exp() / LN_MEAN;
        let age_factor = match age {
            Some(a) if a >= 60 => 0.7,
            Some(a) if a < 18 => 0.5,
            _ => 1.1,
        };
        let calls_per_day = match kind {
            Kind::Resident => base * age_factor,
            Kind::Agent => base * 3.0,
            Kind::Courier => 25.0 + 35.0 * u_age,
            Kind::Sales => 80.0 + 120.0 * u_age,
        };
        Profile { kind, age, calls_per_day }
    }

    /// Everything about a subscriber.
    pub fn person(&self, idx: u64) -> Person {
        let profile = self.profile(idx);
        let h = key(&[self.seed, TAG_HOME, idx]);
        // Households of three consecutive indices share a home.
        let hh = idx / 3;
        let comm = self.community_of(idx);
        let home = self.place_in_community(comm, key(&[self.seed, TAG_HOME, hh, 1]));
        let works = match (profile.kind, profile.age) {
            (Kind::Courier, _) => true,
            (_, Some(a)) => (18..65).contains(&a) && unit(mix(h ^ 7)) < 0.72,
            _ => false,
        };
        let work = works.then(|| {
            let city = &self.city;
            let u = unit(mix(h ^ 8));
            let g = if profile.kind == Kind::Courier {
                let c = &city.communities[comm];
                let street = &city.streets[c.street];
                let cc = street.communities.start
                    + (unit(mix(h ^ 9)) * street.communities.len() as f64) as usize % street.communities.len();
                let com = &city.communities[cc];
                com.grids.start + pick_cumulative(&com.grid_cum, unit(mix(h ^ 10)))
            } else if u < 0.6 {
                pick_cumulative(&city.commerce_cum, unit(mix(h ^ 9)))
            } else {
                pick_cumulative(&city.pop_cum, unit(mix(h ^ 9)))
            };
            let mut rng = Rng::new(&[h, 11]);
            city.point_in_grid(g, &mut rng)
        });
        // Years since activation: most numbers are old; ~2% were activated in the last two months.
        let u_act = unit(mix(h ^ 12));
        let activated_ms = if u_act < 0.02 {
            self.start_ms - (unit(mix(h ^ 13)) * 60.0 * DAY_MS as f64) as i64 - DAY_MS
        } else {
            let years = (-6.0 * (1.0 - unit(mix(h ^ 13))).ln()).min(22.0) + 60.0 / 365.0;
            self.start_ms - (years * 365.25 * DAY_MS as f64) as i64
        };
        Person { idx, profile, home, work, activated_ms }
    }

    /// A home position in a community, drawn by its grids' population.
    pub fn place_in_community(&self, comm: usize, h: u64) -> (f64, f64) {
        let c = &self.city.communities[comm];
        let g = c.grids.start + pick_cumulative(&c.grid_cum, unit(mix(h ^ 1)));
        let centre = self.city.grids[g].centre;
        offset_km(centre, (unit(mix(h ^ 2)) - 0.5) * 0.76, (unit(mix(h ^ 3)) - 0.5) * 0.76)
    }

    /// Writes the number of a party into `out` (cleared first). Fraud numbers come from `fraud`.
    pub fn number(&self, party: Party, fraud: &[String], out: &mut String) {
        out.clear();
        match party {
            Party::Sub(i) => scrambled(&OWN_PREFIXES, i, self.salt, out),
            Party::Ext(i) => scrambled(&EXT_PREFIXES, i, self.salt ^ 0x55, out),
            Party::ExtVirtual(i) => {
                out.push_str(EXT_VIRTUAL_PREFIXES[(i % 3) as usize]);
                push_digits(out, (i / 3) % 50_000_000, 8);
            }
            Party::ExtIntl(i) => {
                let (cc, len) = EXT_INTL[(i % EXT_INTL.len() as u64) as usize];
                out.push('+');
                out.push_str(cc);
                push_digits(out, mix(i ^ self.salt) % 10u64.pow(len as u32 - 1) + 10u64.pow(len as u32 - 1), len);
            }
            Party::Service(s) => out.push_str(SERVICE_LINES[s as usize % SERVICE_LINES.len()]),
            Party::Fraud(f) => out.push_str(&fraud[f as usize]),
        }
    }

    /// Where a subscriber is at `ts_ms` (home, or work on weekday working hours).
    pub fn position_at(&self, p: &Person, ts_ms: i64) -> (f64, f64) {
        let (hour, weekday) = local_hour_weekday(ts_ms);
        match p.work {
            Some(w) if weekday < 5 && (9..18).contains(&hour) => w,
            _ => p.home,
        }
    }
}

/// The position reported for a party: its serving cell, approximated by
/// snapping to a ~450 m lattice (cell towers are ~0.5-1 km apart in cities).
pub fn serving_cell(p: (f64, f64)) -> (f64, f64) {
    const STEP: f64 = 0.004;
    (((p.0 / STEP).round() * STEP * 1e6).round() / 1e6, ((p.1 / STEP).round() * STEP * 1e6).round() / 1e6)
}

/// Age from two uniforms: under 18 8%, 18-39 and 40-59 share the rest, 60+ `elderly`.
fn age_from(u: f64, v: f64, elderly: f64) -> u8 {
    let young = 0.08;
    let rest = 1.0 - young - elderly;
    if u < young {
        10 + (v * 8.0) as u8
    } else if u < young + rest * 0.48 {
        18 + (v * 22.0) as u8
    } else if u < young + rest {
        40 + (v * 20.0) as u8
    } else {
        (60.0 + (-11.0 * (1.0 - v).ln()).min(39.0)) as u8
    }
}

/// Local (UTC+8, Qingdao has no DST) hour of day and weekday (Monday = 0).
pub fn local_hour_weekday(ts_ms: i64) -> (u32, u32) {
    let local = ts_ms + 8 * 3_600_000;
    let days = local.div_euclid(DAY_MS);
    let hour = (local.rem_euclid(DAY_MS) / 3_600_000) as u32;
    (hour, (days + 3).rem_euclid(7) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_valid() {
        let city = Arc::new(City::qingdao());
        let pop = Population::new(city, 5_000, 7, PeopleRates::default(), 0);
        let mut seen = std::collections::HashSet::new();
        let mut s = String::new();
        for i in 0..5_000 {
            pop.number(Party::Sub(i), &[], &mut s);
            assert_eq!(s.len(), 11);
            assert!(seen.insert(s.clone()));
            let class = citywatch_engine::pseudonym::NumberClass::classify(&s, "86");
            assert!(!class.is_risky_prefix(), "{s}");
        }
        assert_eq!(pop.comm_start.last(), Some(&5_000));
    }

    #[test]
    fn weekday() {
        // 2026-03-02 is a Monday; 00:00 UTC is 08:00 local.
        let ms = citywatch_engine::lateness::parse_date_ms("2026-03-02").unwrap();
        assert_eq!(local_hour_weekday(ms), (8, 0));
        assert_eq!(local_hour_weekday(ms + 16 * 3_600_000), (0, 1));
    }
}
