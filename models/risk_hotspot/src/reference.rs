//! The single-threaded reference implementation of `risk_hotspot`.
//!
//! Written the plain way, independently of the dataflow's state machine: one
//! loop over the alarms and patrols in `(ts_ms, seq)` order with the ticks
//! interleaved (a tick at `T` comes after every event with `ts_ms <= T`); at a
//! tick, every touched cell is looked up in the jurisdiction and grouped by
//! officer and community from scratch; coverage is a scan of every patrol fix
//! so far; caps (per community, officer, shift and city-wide hour),
//! cooldowns and the near-repeat "once" rule are scans of the alerts raised
//! so far. It shares with the dataflow only the risk arithmetic
//! ([`Surface`]: both must compute the same bits) and the alert wording.
//!
//! Input: the merged events as the dataflow receives them
//! ([`citywatch_engine::replay::merged_events`]). Ticks up to the last event's
//! time fire; later ones do not (the input ends there).

use std::collections::{BTreeMap, HashMap};

use citywatch_engine::alert::AlertDraft;
use citywatch_engine::contract::{Category, PatrolStatus};
use citywatch_engine::event::{Event, UnitToken};
use citywatch_engine::reference::Reference;
use h3o::CellIndex;

use crate::places::{lookup, shift_index};
use crate::surface::{Params, Surface};
use crate::{
    Config, HotspotFacts, UnitState, cell_centre, hotspot_draft, near_repeat_draft, no_patrol_feed_draft,
    tick_at_or_after,
};

const HOUR_MS: u64 = 3_600_000;

fn grid_distance(a: u64, b: u64) -> u32 {
    match (CellIndex::try_from(a), CellIndex::try_from(b)) {
        (Ok(a), Ok(b)) => a.grid_distance(b).map_or(u32::MAX, |d| d as u32),
        _ => u32::MAX,
    }
}

/// Alerts of `risk_hotspot` over merged events, sorted by (time, subject, kind).
pub fn run(config: &Config, events: &[Event], reference: &Reference) -> Vec<AlertDraft> {
    let Some(last_ts) = events.iter().map(|e| e.ts_ms()).max() else { return Vec::new() };
    let mut stream: Vec<&Event> = events.iter().filter(|e| !matches!(e, Event::Call(_))).collect();
    stream.sort_by_key(|e| match e {
        Event::Alarm(a) => (a.ts_ms, a.seq),
        Event::Patrol(p) => (p.ts_ms, p.seq),
        Event::Call(c) => (c.ts_ms, c.seq),
    });
    let jur = &reference.jurisdiction;
    let res = Params::new(config).resolution;
    let mut surface = Surface::new(Params::new(config));
    let mut fixes: Vec<(u64, u64)> = Vec::new(); // (ts, cell) of on-duty fixes
    let mut units: HashMap<UnitToken, UnitState> = HashMap::new();
    let mut near_alerts: Vec<(u64, u64, String)> = Vec::new(); // (ts, cell, officer)
    let mut hot_alerts: Vec<(u64, u64, String, String)> = Vec::new(); // (ts, cell, officer, community)
    let mut no_feed_noted = false;
    let mut out = Vec::new();

    let tick = |t: u64,
                surface: &Surface,
                fixes: &[(u64, u64)],
                units: &HashMap<UnitToken, UnitState>,
                hot_alerts: &mut Vec<(u64, u64, String, String)>,
                no_feed_noted: &mut bool,
                out: &mut Vec<AlertDraft>| {
        let f = surface.factors(t);
        let shift = shift_index(t, config.shift_ms, config.shift_offset_ms);
        let same_shift = |t0: u64| shift_index(t0, config.shift_ms, config.shift_offset_ms) == shift;
        // officer -> community -> [(risk, cell)]
        let mut groups: BTreeMap<String, BTreeMap<String, Vec<(f64, u64)>>> = BTreeMap::new();
        for (cell, parts) in surface.cells() {
            if let Some((community, officer)) = lookup(jur, cell) {
                let r = Surface::risk_of(parts, &f);
                groups.entry(officer).or_default().entry(community).or_default().push((r, cell));
            }
        }
        // Each officer's choice, then the city's budget over all of them.
        let mut pool = Vec::new();
        for (officer, communities) in groups {
            let mut candidates = Vec::new();
            for (community, mut cells) in communities {
                let used = hot_alerts.iter().filter(|(t0, _, _, c)| *c == community && same_shift(*t0)).count();
                let room = (config.max_hotspot_alerts_per_community_per_shift as usize).saturating_sub(used);
                cells.retain(|(r, _)| *r >= config.min_risk);
                cells.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let mut uncovered = Vec::new();
                for (rank, (risk, cell)) in cells.into_iter().take(config.top_cells_per_community).enumerate() {
                    let cooling =
                        hot_alerts.iter().any(|(t0, c0, _, _)| *c0 == cell && t - t0 < config.cell_cooldown_ms);
                    let last = fixes
                        .iter()
                        .filter(|(_, c)| grid_distance(*c, cell) <= config.coverage_rings)
                        .map(|(ts, _)| *ts)
                        .max();
                    let covered = last.is_some_and(|l| l >= t.saturating_sub(config.covered_within_ms));
                    if !cooling && !covered {
                        uncovered.push((risk, cell, rank, community.clone(), last, officer.clone()));
                    }
                }
                candidates.extend(uncovered.into_iter().take(room));
            }
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let used = hot_alerts.iter().filter(|(t0, _, o, _)| *o == officer && same_shift(*t0)).count();
            let room = (config.max_hotspot_alerts_per_shift as usize).saturating_sub(used);
            pool.extend(candidates.into_iter().take(room.min(config.hotspots_per_tick)));
        }
        if pool.is_empty() {
            return;
        }
        if units.is_empty() && !*no_feed_noted {
            *no_feed_noted = true;
            out.push(no_patrol_feed_draft(config, t));
        }
        pool.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let used = hot_alerts.iter().filter(|(t0, _, _, _)| t0 / HOUR_MS == t / HOUR_MS).count();
        let room = (config.max_hotspot_alerts_per_hour as usize).saturating_sub(used);
        for (risk, cell, rank, community, last, officer) in pool.into_iter().take(room) {
            let p = surface.parts(cell);
            let centre = cell_centre(cell);
            let nearest = units
                .iter()
                .filter(|(_, u)| u.status == PatrolStatus::Available)
                .map(|(tok, u)| (*tok, u.pos.distance_m(centre)))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let facts = HotspotFacts {
                cell,
                community: &community,
                at_ms: t,
                risk,
                parts: [p[0] * f[0], p[1] * f[1], p[2] * f[2]],
                rank,
                last_patrol_ms: last,
                nearest,
            };
            out.push(hotspot_draft(config, &facts, &reference.units));
            hot_alerts.push((t, cell, officer, community));
        }
    };

    let mut next_tick: Option<u64> = None;
    for e in stream {
        let ts = e.ts_ms();
        let mut t = *next_tick.get_or_insert_with(|| tick_at_or_after(config, ts));
        while t < ts {
            tick(t, &surface, &fixes, &units, &mut hot_alerts, &mut no_feed_noted, &mut out);
            t = tick_at_or_after(config, t + 1);
        }
        next_tick = Some(t);
        match e {
            Event::Alarm(a) => {
                let Some(cell) = surface.add(a.ts_ms, a.pos, a.category) else { continue };
                if a.category != Category::Burglary || config.near_repeat_weight <= 0.0 {
                    continue;
                }
                let Some((_, officer)) = lookup(jur, cell) else { continue };
                let active = near_alerts.iter().any(|(t0, c0, _)| {
                    a.ts_ms - t0 < config.near_repeat_alert_window_ms
                        && grid_distance(*c0, cell) <= config.near_repeat_rings
                });
                let shift = shift_index(a.ts_ms, config.shift_ms, config.shift_offset_ms);
                let used = near_alerts
                    .iter()
                    .filter(|(t0, _, o)| {
                        *o == officer && shift_index(*t0, config.shift_ms, config.shift_offset_ms) == shift
                    })
                    .count();
                if active || used >= config.max_near_repeat_alerts_per_shift as usize {
                    continue;
                }
                let area: Vec<(u64, u32)> = {
                    let c = CellIndex::try_from(cell).expect("cell");
                    let mut d: Vec<(u64, u32)> = c
                        .grid_disk_distances::<Vec<_>>(config.smooth_rings.max(config.near_repeat_rings))
                        .into_iter()
                        .map(|(n, r)| (u64::from(n), r))
                        .collect();
                    d.sort_unstable();
                    d
                };
                out.push(near_repeat_draft(config, a, cell, &area));
                near_alerts.push((a.ts_ms, cell, officer));
            }
            Event::Patrol(p) => {
                units.insert(p.unit, UnitState { pos: p.pos, status: p.status });
                if p.status != PatrolStatus::OffDuty {
                    fixes.push((p.ts_ms, u64::from(p.pos.cell(res))));
                }
            }
            Event::Call(_) => {}
        }
    }
    if let Some(mut t) = next_tick {
        while t <= last_ts {
            tick(t, &surface, &fixes, &units, &mut hot_alerts, &mut no_feed_noted, &mut out);
            t = tick_at_or_after(config, t + 1);
        }
    }
    out.sort_by(|a, b| (a.event_ts_ms, &a.subject, &a.kind).cmp(&(b.event_ts_ms, &b.subject, &b.kind)));
    out
}
