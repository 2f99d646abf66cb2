//! Patrol units: shifts, beats, dispatches and 30-second GPS fixes.
//!
//! Every street (police station) runs units on three 8-hour shifts (local
//! 08–16, 16–24, 00–08, i.e. UTC 00–08, 08–16, 16–24), about one unit per
//! 100,000 residents per shift and at least one. An available unit drives a
//! loop through its street's populated grids at patrol speed. Alarms (except
//! fraud reports, handled by desk officers) are dispatched in time order to
//! the nearest free on-duty unit of the street, else of the district: after a
//! call-handling delay by priority; a configurable share of alarms waits in a
//! queue 15–60 minutes, and when every unit is busy the alarm waits for the
//! first to come free, so **some responses are late** (response gaps exist to
//! be found). The unit is `dispatched` (one row, with `alarm_id`), then
//! `en_route` fixes until it arrives, `on_scene` for a time depending on the
//! category, then `available` on its way back to the loop. Each on-duty unit
//! reports a fix every 30 s; a shift ends with an `off_duty` row (later, if a
//! job runs over).

use citywatch_engine::contract::{Category, PatrolStatus};

use crate::city::{City, km};
use crate::rng::{Rng, cumulative, key};

/// Milliseconds between GPS fixes.
pub const FIX_MS: i64 = 30_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const SHIFT_MS: i64 = 8 * HOUR_MS;
/// Residents per on-duty unit.
const RESIDENTS_PER_UNIT: f64 = 100_000.0;
/// Average patrol speed along the beat (driving, stopping, walking), km/h.
const PATROL_KMH: f64 = 12.0;

/// A patrol unit.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Id, e.g. `QD-370202003-2`.
    pub id: String,
    /// Its street (station).
    pub street: usize,
    /// Its district.
    pub district: usize,
    /// Shift: 0 = UTC 00–08, 1 = 08–16, 2 = 16–24.
    pub shift: u8,
    loop_pts: Vec<(f64, f64)>,
    loop_cum_km: Vec<f64>,
    phase_km: f64,
}

impl Unit {
    /// Where the unit is on its beat at `t_ms` when patrolling.
    pub fn loop_pos(&self, t_ms: i64) -> (f64, f64) {
        let len = *self.loop_cum_km.last().expect("loop");
        if len <= 0.0 {
            return self.loop_pts[0];
        }
        let s = (self.phase_km + PATROL_KMH * t_ms as f64 / HOUR_MS as f64).rem_euclid(len);
        let i = self.loop_cum_km.partition_point(|&c| c <= s).clamp(1, self.loop_pts.len()) - 1;
        let seg = self.loop_cum_km[i + 1] - self.loop_cum_km[i];
        let f = if seg > 0.0 { (s - self.loop_cum_km[i]) / seg } else { 0.0 };
        let a = self.loop_pts[i];
        let b = self.loop_pts[(i + 1) % self.loop_pts.len()];
        lerp(a, b, f)
    }

    /// Whether `t_ms` falls in this unit's shift.
    pub fn on_duty(&self, t_ms: i64) -> bool {
        t_ms.rem_euclid(DAY_MS) / SHIFT_MS == i64::from(self.shift)
    }
}

fn lerp(a: (f64, f64), b: (f64, f64), f: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
}

/// The units of the city (fixed: depends on the layout only).
pub fn units(city: &City) -> Vec<Unit> {
    let mut out = Vec::new();
    for (si, s) in city.streets.iter().enumerate() {
        let per_shift = ((s.population / RESIDENTS_PER_UNIT).round() as usize).max(1);
        let grids: Vec<usize> = s.communities.clone().flat_map(|c| city.communities[c].grids.clone()).collect();
        let cum = cumulative(grids.iter().map(|&g| city.grids[g].population));
        for k in 0..per_shift * 3 {
            let mut rng = Rng::new(&[key(&[si as u64, k as u64]), 0x554e_4954]);
            let mut pts: Vec<(f64, f64)> = (0..6).map(|_| city.grids[grids[rng.weighted(&cum)]].centre).collect();
            let c = (pts.iter().map(|p| p.0).sum::<f64>() / 6.0, pts.iter().map(|p| p.1).sum::<f64>() / 6.0);
            pts.sort_by(|a, b| (a.0 - c.0).atan2(a.1 - c.1).total_cmp(&(b.0 - c.0).atan2(b.1 - c.1)));
            let mut loop_cum_km = vec![0.0];
            for i in 0..pts.len() {
                let d = km(pts[i], pts[(i + 1) % pts.len()]);
                loop_cum_km.push(loop_cum_km[i] + d);
            }
            let len = *loop_cum_km.last().expect("loop");
            out.push(Unit {
                id: format!("QD-{}-{}", s.id, k + 1),
                street: si,
                district: s.district,
                shift: (k % 3) as u8,
                phase_km: rng.f64() * len,
                loop_pts: pts,
                loop_cum_km,
            });
        }
    }
    out
}

/// An alarm to answer.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The alarm.
    pub alarm_id: u64,
    /// When it was received.
    pub ts_ms: i64,
    /// Where.
    pub pos: (f64, f64),
    /// Priority 1..4.
    pub priority: u8,
    /// Category.
    pub category: Category,
}

/// A job done by a unit.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// The alarm served.
    pub alarm_id: u64,
    /// Where the unit was when dispatched.
    pub from: (f64, f64),
    /// The scene.
    pub scene: (f64, f64),
    /// Dispatch time.
    pub dispatch_ms: i64,
    /// Arrival on scene.
    pub arrive_ms: i64,
    /// Leaves the scene.
    pub clear_ms: i64,
    /// Back on the beat (free again).
    pub free_ms: i64,
}

/// Dispatch statistics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DispatchStats {
    /// Alarms a unit was sent to.
    pub dispatched: u64,
    /// Alarms no unit could take (no unit on duty in the district).
    pub unanswered: u64,
    /// Priority-1 alarms reached more than 15 minutes after they were received.
    pub late_priority1: u64,
    /// All priority-1 alarms dispatched.
    pub priority1: u64,
    /// Median minutes from alarm to arrival.
    pub median_response_min: f64,
}

/// Settings of the dispatch simulation.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PatrolRates {
    /// Whether to simulate patrols at all.
    pub enabled: bool,
    /// Share of alarms that wait 15–60 minutes in a dispatch queue.
    pub queued_share: f64,
}

impl Default for PatrolRates {
    fn default() -> Self {
        PatrolRates { enabled: true, queued_share: 0.04 }
    }
}

/// Assigns alarms (sorted by time) to units; returns each unit's jobs.
pub fn dispatch(
    city: &City,
    units: &[Unit],
    calls: &[Call],
    rates: &PatrolRates,
    seed: u64,
) -> (Vec<Vec<Job>>, DispatchStats) {
    let mut jobs: Vec<Vec<Job>> = vec![Vec::new(); units.len()];
    let mut free_at: Vec<i64> = vec![i64::MIN; units.len()];
    let mut by_street: Vec<Vec<usize>> = vec![Vec::new(); city.streets.len()];
    let mut by_district: Vec<Vec<usize>> = vec![Vec::new(); city.districts.len()];
    for (i, u) in units.iter().enumerate() {
        by_street[u.street].push(i);
        by_district[u.district].push(i);
    }
    let mut stats = DispatchStats::default();
    let mut responses = Vec::new();
    let mut rng = Rng::new(&[seed, 0x4449_5350]);
    for c in calls {
        let Some(g) = city.grid_at(c.pos) else {
            stats.unanswered += 1;
            continue;
        };
        let street = city.street_of_grid(g);
        let district = city.streets[street].district;
        let handling_min = match c.priority {
            1 => rng.range(0.5, 2.0),
            2 => rng.range(1.0, 4.0),
            _ => rng.range(2.0, 10.0),
        };
        let mut t0 = c.ts_ms + (handling_min * 60_000.0) as i64;
        if rng.chance(rates.queued_share) {
            t0 += (rng.range(15.0, 60.0) * 60_000.0) as i64;
        }
        let speed = if c.priority == 1 { 45.0 } else { 35.0 };
        let travel_ms = |u: &Unit, t: i64| (km(u.loop_pos(t), c.pos) * 1.3 / speed * HOUR_MS as f64) as i64;
        let pick = |pool: &[usize], t: i64, free_at: &[i64]| {
            pool.iter()
                .copied()
                .filter(|&i| units[i].on_duty(t) && free_at[i] <= t)
                .min_by_key(|&i| (travel_ms(&units[i], t), i))
        };
        let mut chosen = pick(&by_street[street], t0, &free_at).or_else(|| pick(&by_district[district], t0, &free_at));
        if chosen.is_none() {
            // Everyone in the district is busy: wait for the first on-duty unit to come free.
            let next = by_district[district]
                .iter()
                .copied()
                .filter(|&i| units[i].on_duty(t0) && units[i].on_duty(free_at[i]))
                .min_by_key(|&i| (free_at[i], i));
            if let Some(i) = next {
                t0 = free_at[i];
                chosen = Some(i);
            }
        }
        let Some(i) = chosen else {
            stats.unanswered += 1;
            continue;
        };
        let u = &units[i];
        let from = u.loop_pos(t0);
        let arrive = t0 + travel_ms(u, t0) + rng.range(30_000.0, 90_000.0) as i64;
        let scene_min = match c.category {
            Category::Burglary => 40.0,
            Category::Robbery => 45.0,
            Category::Assault => 35.0,
            Category::Fire => 60.0,
            Category::Traffic | Category::VehicleTheft => 30.0,
            Category::Theft => 25.0,
            Category::Medical | Category::Disturbance => 20.0,
            _ => 15.0,
        };
        let clear = arrive + (rng.lognormal(scene_min, 0.5) * 60_000.0) as i64;
        let back = u.loop_pos(clear);
        let free = clear + (km(c.pos, back) * 1.35 / 25.0 * HOUR_MS as f64) as i64 + FIX_MS;
        free_at[i] = free;
        jobs[i].push(Job {
            alarm_id: c.alarm_id,
            from,
            scene: c.pos,
            dispatch_ms: t0,
            arrive_ms: arrive,
            clear_ms: clear,
            free_ms: free,
        });
        stats.dispatched += 1;
        let response_min = (arrive - c.ts_ms) as f64 / 60_000.0;
        if c.priority == 1 {
            stats.priority1 += 1;
            if response_min > 15.0 {
                stats.late_priority1 += 1;
            }
        }
        responses.push(response_min);
    }
    responses.sort_by(f64::total_cmp);
    stats.median_response_min = responses.get(responses.len() / 2).copied().unwrap_or(0.0);
    (jobs, stats)
}

/// One patrols row.
#[derive(Debug, Clone, Copy)]
pub struct PatrolRow {
    /// Event time.
    pub ts_ms: i64,
    /// Unit index.
    pub unit: u32,
    /// Order within the unit (ties at equal times).
    pub seq: u32,
    /// Position.
    pub pos: (f64, f64),
    /// Status.
    pub status: PatrolStatus,
    /// Alarm served.
    pub alarm_id: Option<u64>,
}

/// The rows of one unit's shift on the day starting at `day_ms` (UTC midnight-aligned days).
pub fn shift_rows(unit_idx: u32, unit: &Unit, jobs: &[Job], day_ms: i64, seed: u64) -> Vec<PatrolRow> {
    let start = day_ms + i64::from(unit.shift) * SHIFT_MS;
    let nominal_end = start + SHIFT_MS;
    // Jobs dispatched in this shift; the shift runs over until the last is done.
    let first = jobs.partition_point(|j| j.dispatch_ms < start);
    let last = jobs.partition_point(|j| j.dispatch_ms < nominal_end);
    let mine = &jobs[first..last];
    let end = mine.last().map_or(nominal_end, |j| j.free_ms.max(nominal_end));
    let mut rng = Rng::new(&[seed, 0x4750_5300, u64::from(unit_idx), day_ms as u64]);
    let mut rows = Vec::with_capacity(((end - start) / FIX_MS) as usize + 8 * mine.len() + 2);
    let mut seq = 0u32;
    let mut push = |rows: &mut Vec<PatrolRow>, ts: i64, pos: (f64, f64), status, alarm_id, rng: &mut Rng| {
        // GPS noise of a few metres.
        let p = (pos.0 + rng.range(-4e-5, 4e-5), pos.1 + rng.range(-5e-5, 5e-5));
        rows.push(PatrolRow { ts_ms: ts, unit: unit_idx, seq, pos: p, status, alarm_id });
        seq += 1;
    };
    let state_at = |t: i64| -> (PatrolStatus, (f64, f64), Option<u64>) {
        let k = mine.partition_point(|j| j.dispatch_ms <= t);
        if k > 0 {
            let j = &mine[k - 1];
            if t < j.arrive_ms {
                let f = (t - j.dispatch_ms) as f64 / (j.arrive_ms - j.dispatch_ms).max(1) as f64;
                return (PatrolStatus::EnRoute, lerp(j.from, j.scene, f), Some(j.alarm_id));
            }
            if t < j.clear_ms {
                return (PatrolStatus::OnScene, j.scene, Some(j.alarm_id));
            }
            if t < j.free_ms {
                let f = (t - j.clear_ms) as f64 / (j.free_ms - j.clear_ms).max(1) as f64;
                return (PatrolStatus::Available, lerp(j.scene, unit.loop_pos(j.free_ms), f), None);
            }
        }
        (PatrolStatus::Available, unit.loop_pos(t), None)
    };
    let mut ji = 0;
    let mut t = start;
    while t < end {
        // Status changes between the previous fix and this one, at their exact times.
        while ji < mine.len() && mine[ji].dispatch_ms < t {
            let j = mine[ji];
            if j.dispatch_ms >= t - FIX_MS {
                push(&mut rows, j.dispatch_ms, j.from, PatrolStatus::Dispatched, Some(j.alarm_id), &mut rng);
            }
            ji += 1;
        }
        for j in mine {
            if j.arrive_ms >= t - FIX_MS && j.arrive_ms < t {
                push(&mut rows, j.arrive_ms, j.scene, PatrolStatus::OnScene, Some(j.alarm_id), &mut rng);
            }
            if j.clear_ms >= t - FIX_MS && j.clear_ms < t {
                push(&mut rows, j.clear_ms, j.scene, PatrolStatus::Available, None, &mut rng);
            }
        }
        let (status, pos, alarm) = state_at(t);
        push(&mut rows, t, pos, status, alarm, &mut rng);
        t += FIX_MS;
    }
    let (_, pos, _) = state_at(end);
    push(&mut rows, end, pos, PatrolStatus::OffDuty, None, &mut rng);
    rows.sort_by_key(|r| (r.ts_ms, r.seq));
    rows
}
