//! Model `risk_hotspot`: where the next incident is likely and no patrol has been.
//!
//! A risk surface over H3 cells ([`surface`]): exponentially decayed,
//! spatially smoothed incident intensity weighted by category, plus a
//! near-repeat term after burglaries. Patrol fixes give each cell the time a
//! unit was last there. Two alert kinds, both to the community officer:
//!
//! - `hotspot`: at each forecast tick (every `tick_ms`, hourly by default, and
//!   at every shift start) the `top_cells_per_community` riskiest cells of each
//!   community are looked at; those with risk of at least `min_risk` that no
//!   patrol has been in or next to within `covered_within_ms`, and that were
//!   not alerted within `cell_cooldown_ms`, are candidates; the officer gets
//!   the riskiest `hotspots_per_tick` of them, at most
//!   `max_hotspot_alerts_per_shift` per shift. Evidence: the risk and its
//!   parts, the last patrol nearby, the nearest available unit.
//! - `near_repeat`: after a burglary, the cells within `near_repeat_rings`
//!   rings, once (not when an alert within the window already covers the
//!   burglary's cell), at most `max_near_repeat_alerts_per_shift` per officer
//!   and shift.
//!
//! Dataflow: alarms and patrols are broadcast (both are small next to calls;
//! each patrol fix located first, once, by the worker that reads it) and go
//! through one [`Deadlines`] operator per worker, which interleaves them
//! in event time with the tick timers. Every worker keeps the whole surface
//! (one alarm costs a few hash updates); the ranking work at each tick, and the
//! alerts, are split by officer group (`hash(officer) % peers`). Worker 0
//! publishes the top of the surface to the [`SurfaceHandle`] at each tick.
//! [`reference`] is the single-threaded reference, [`eval`] the PAI/PEI*
//! evaluation. See `README.md` (the model card).
#![deny(missing_docs)]

pub mod alert_eval;
pub mod eval;
pub mod locate;
pub mod places;
pub mod reference;
pub mod surface;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use citywatch_engine::alert::{AlertDraft, RouteLevel, Severity};
use citywatch_engine::contract::{Category, PatrolStatus};
use citywatch_engine::event::{AlarmEvent, Event, PatrolEvent, Timed, UnitToken};
use citywatch_engine::geo::Point;
use citywatch_engine::hash::FastMap;
use citywatch_engine::model::{Inputs, Model};
use citywatch_engine::reference::{Reference, UnitDirectory};
use citywatch_engine::{Error, EventTime, Result};
use citywatch_operators::deadline::{Deadlines, Step};
use h3o::CellIndex;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::{Broadcast, Map};

use crate::locate::FixLocator;
use crate::places::{NO_COMMUNITY, NearRepeatWatch, Places, shift_index};
use crate::surface::{Params, Surface, round4};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Settings, with the defaults the model card explains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// H3 resolution of the surface cells (9: ~0.1 km², ~350 m across).
    pub resolution: u8,
    /// Weight of an alarm by category (missing categories weigh 0).
    pub category_weights: BTreeMap<String, f64>,
    /// Rings of the smoothing kernel around an incident's cell.
    pub smooth_rings: u32,
    /// Kernel weight per ring step: ring k gets `ring_weight^k`.
    pub ring_weight: f64,
    /// Half-life of the recent component, days.
    pub recent_half_life_days: f64,
    /// Half-life of the background component, days.
    pub background_half_life_days: f64,
    /// Weight of the background component in the risk.
    pub background_weight: f64,
    /// Weight of a burglary's near-repeat term (0 turns it off).
    pub near_repeat_weight: f64,
    /// Rings of the near-repeat term and of a `near_repeat` alert's area.
    pub near_repeat_rings: u32,
    /// Near-repeat kernel weight per ring step.
    pub near_repeat_ring_weight: f64,
    /// Half-life of the near-repeat term, days.
    pub near_repeat_half_life_days: f64,
    /// How long a `near_repeat` alert covers its area, ms.
    pub near_repeat_alert_window_ms: u64,
    /// Forecast tick period, ms (ticks at multiples of it, UTC).
    pub tick_ms: u64,
    /// Shift length, ms; a tick also fires at every shift start.
    pub shift_ms: u64,
    /// Shift starts are at `shift_offset_ms + k * shift_ms` (UTC).
    pub shift_offset_ms: u64,
    /// A cell counts as covered when a unit was in it or next to it this recently, ms.
    pub covered_within_ms: u64,
    /// Rings around a cell in which a patrol fix covers it.
    pub coverage_rings: u32,
    /// How many of each community's riskiest cells are looked at per tick.
    pub top_cells_per_community: usize,
    /// Smallest risk worth a `hotspot` alert.
    pub min_risk: f64,
    /// Hotspot alerts per officer per tick, at most.
    pub hotspots_per_tick: usize,
    /// Hotspot alerts per officer per shift, at most.
    pub max_hotspot_alerts_per_shift: u32,
    /// Hotspot alerts per community per shift, at most: its top-k uncovered cells.
    pub max_hotspot_alerts_per_community_per_shift: u32,
    /// Hotspot alerts per clock hour (UTC) across the whole city, at most.
    pub max_hotspot_alerts_per_hour: u32,
    /// Near-repeat alerts per officer per shift, at most.
    pub max_near_repeat_alerts_per_shift: u32,
    /// A cell is not alerted again as a hotspot within this, ms.
    pub cell_cooldown_ms: u64,
    /// Cells in the published snapshot of the surface.
    pub snapshot_cells: usize,
}

/// Default category weights: violent and property crime count fully,
/// disturbances half; traffic, fire, medical, fraud reports (not tied to a
/// place of crime) and `other` not at all.
pub fn default_category_weights() -> BTreeMap<String, f64> {
    [
        ("burglary", 1.0),
        ("robbery", 1.0),
        ("assault", 1.0),
        ("theft", 1.0),
        ("vehicle_theft", 1.0),
        ("disturbance", 0.5),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolution: 9,
            category_weights: default_category_weights(),
            smooth_rings: 0,
            ring_weight: 0.1,
            recent_half_life_days: 30.0,
            background_half_life_days: 500.0,
            background_weight: 0.3,
            near_repeat_weight: 1.0,
            near_repeat_rings: 1,
            near_repeat_ring_weight: 0.5,
            near_repeat_half_life_days: 7.0,
            near_repeat_alert_window_ms: 14 * DAY_MS,
            tick_ms: HOUR_MS,
            shift_ms: 8 * HOUR_MS,
            shift_offset_ms: 0,
            covered_within_ms: 60 * MINUTE_MS,
            coverage_rings: 1,
            top_cells_per_community: 3,
            min_risk: 2.0,
            hotspots_per_tick: 1,
            max_hotspot_alerts_per_shift: 4,
            max_hotspot_alerts_per_community_per_shift: 1,
            max_hotspot_alerts_per_hour: 6,
            max_near_repeat_alerts_per_shift: 4,
            cell_cooldown_ms: 8 * HOUR_MS,
            snapshot_cells: 500,
        }
    }
}

impl Config {
    /// Checks the settings; the error names the setting and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, detail: String| Err(Error::config(format!("risk_hotspot.{what}"), detail));
        if !(5..=12).contains(&self.resolution) {
            return bad("resolution", format!("expected an H3 resolution from 5 to 12, got {}", self.resolution));
        }
        for (k, v) in &self.category_weights {
            if Category::parse(k).is_none() {
                return bad("category_weights", format!("unknown category `{k}`; expected {}", Category::expected()));
            }
            if !(v.is_finite() && *v >= 0.0) {
                return bad("category_weights", format!("weight of `{k}` must be a finite number >= 0, got {v}"));
            }
        }
        for (name, v) in [
            ("recent_half_life_days", self.recent_half_life_days),
            ("background_half_life_days", self.background_half_life_days),
            ("near_repeat_half_life_days", self.near_repeat_half_life_days),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, format!("expected a positive number of days, got {v}"));
            }
        }
        for (name, v) in [("ring_weight", self.ring_weight), ("near_repeat_ring_weight", self.near_repeat_ring_weight)]
        {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, format!("expected 0 to 1, got {v}"));
            }
        }
        for (name, v) in
            [("background_weight", self.background_weight), ("near_repeat_weight", self.near_repeat_weight)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, format!("expected a finite number >= 0, got {v}"));
            }
        }
        if self.tick_ms == 0 || self.shift_ms == 0 {
            return bad("tick_ms/shift_ms", "must be positive".to_owned());
        }
        if self.smooth_rings > 5 || self.near_repeat_rings > 5 || self.coverage_rings > 5 {
            return bad("*_rings", "at most 5 rings".to_owned());
        }
        Ok(())
    }
}

/// The current risk surface as last published: the top cells by risk.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// Event time of the tick it was computed at; `None` before the first tick.
    pub as_of_ms: Option<u64>,
    /// H3 resolution of the cells.
    pub resolution: u8,
    /// (cell, risk), riskiest first, ties by cell.
    pub cells: Vec<(u64, f64)>,
}

/// A shared, cheap-to-clone view of the surface, updated by the dataflow at
/// every tick (by worker 0, which holds the whole surface): what the server
/// serves at `GET /api/v1/risk`.
#[derive(Debug, Clone, Default)]
pub struct SurfaceHandle(Arc<RwLock<Snapshot>>);

impl SurfaceHandle {
    /// The `n` riskiest cells (at most `snapshot_cells`) as (H3 hex, risk).
    pub fn top_cells(&self, n: usize) -> Vec<(String, f64)> {
        let s = self.0.read().expect("surface lock");
        s.cells
            .iter()
            .take(n)
            .map(|(c, r)| (CellIndex::try_from(*c).map(|c| c.to_string()).unwrap_or_default(), *r))
            .collect()
    }

    /// Event time of the last published tick.
    pub fn as_of_ms(&self) -> Option<u64> {
        self.0.read().expect("surface lock").as_of_ms
    }

    /// A copy of the whole snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.0.read().expect("surface lock").clone()
    }

    fn publish(&self, s: Snapshot) {
        *self.0.write().expect("surface lock") = s;
    }
}

/// The model.
#[derive(Debug, Clone, Default)]
pub struct RiskHotspot {
    /// Its settings.
    pub config: Config,
    surface: SurfaceHandle,
}

impl RiskHotspot {
    /// The model with these settings.
    pub fn new(config: Config) -> RiskHotspot {
        RiskHotspot { config, surface: SurfaceHandle::default() }
    }

    /// The handle the dataflow publishes the surface to (clone it before the run).
    pub fn surface(&self) -> SurfaceHandle {
        self.surface.clone()
    }
}

/// The first tick at or after `ts_ms`: the next multiple of `tick_ms` or shift start.
pub fn tick_at_or_after(c: &Config, ts_ms: u64) -> u64 {
    let up = |t: u64, period: u64, offset: u64| {
        let off = offset % period;
        if t <= off { off } else { off + (t - off).div_ceil(period) * period }
    };
    up(ts_ms, c.tick_ms, 0).min(up(ts_ms, c.shift_ms, c.shift_offset_ms))
}

/// Where a unit is and what it is doing, as of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitState {
    /// Last position.
    pub pos: Point,
    /// Last status.
    pub status: PatrolStatus,
}

/// The nearest available unit to `pos`: smallest distance, ties by token.
pub fn nearest_available<'a>(
    units: impl Iterator<Item = (&'a UnitToken, &'a UnitState)>,
    pos: Point,
) -> Option<(UnitToken, f64)> {
    units
        .filter(|(_, u)| u.status == PatrolStatus::Available)
        .map(|(t, u)| (*t, u.pos.distance_m(pos)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
}

/// The centre of a cell.
pub fn cell_centre(cell: u64) -> Point {
    CellIndex::try_from(cell).map(|c| Point::from(h3o::LatLng::from(c))).unwrap_or_default()
}

/// The hex form of a cell.
pub fn cell_hex(cell: u64) -> String {
    CellIndex::try_from(cell).map(|c| c.to_string()).unwrap_or_else(|_| format!("{cell:x}"))
}

/// One hotspot alert's facts (shared by the dataflow and the reference, so that
/// both are compared on *which* alerts fire, not on wording).
#[derive(Debug, Clone)]
pub struct HotspotFacts<'a> {
    /// The cell.
    pub cell: u64,
    /// Its community.
    pub community: &'a str,
    /// Tick time.
    pub at_ms: u64,
    /// Risk at the tick.
    pub risk: f64,
    /// Recent, background and near-repeat parts of the risk.
    pub parts: [f64; 3],
    /// 0-based rank within the community.
    pub rank: usize,
    /// Last patrol fix in or next to the cell.
    pub last_patrol_ms: Option<u64>,
    /// Nearest available unit and its distance, m.
    pub nearest: Option<(UnitToken, f64)>,
}

/// Builds a `hotspot` alert.
pub fn hotspot_draft(config: &Config, f: &HotspotFacts<'_>, units: &UnitDirectory) -> AlertDraft {
    let hex = cell_hex(f.cell);
    let nearest_name = f.nearest.map(|(t, _)| units.name(t));
    let nearest_text = match (&nearest_name, f.nearest) {
        (Some(n), Some((_, d))) => format!("nearest available unit {n} is {:.1} km away", d / 1000.0),
        _ => "no unit is available".to_owned(),
    };
    let since = match f.last_patrol_ms {
        Some(t) => format!("last patrol {} min ago", (f.at_ms - t.min(f.at_ms)) / MINUTE_MS),
        None => "no patrol seen yet".to_owned(),
    };
    let severity = if f.rank == 0 && f.risk >= 2.0 * config.min_risk { Severity::Moderate } else { Severity::Minor };
    let summary = format!(
        "Hotspot {hex} (#{} in community {}): risk {:.2}, {since}; {nearest_text}",
        f.rank + 1,
        f.community,
        f.risk
    );
    let action = match &nearest_name {
        Some(n) => format!("Send {n} to patrol cell {hex} for 15-20 minutes this hour (visible presence)."),
        None => format!("Ask the station for a unit to patrol cell {hex} for 15-20 minutes when one is free."),
    };
    let evidence = serde_json::json!({
        "cell": hex,
        "community": f.community,
        "tick_ts_ms": f.at_ms,
        "risk": round4(f.risk),
        "recent": round4(f.parts[0]),
        "background": round4(f.parts[1]),
        "near_repeat": round4(f.parts[2]),
        "rank_in_community": f.rank + 1,
        "last_patrol_ts_ms": f.last_patrol_ms,
        "covered_within_ms": config.covered_within_ms,
        "nearest_unit": nearest_name,
        "nearest_unit_distance_m": f.nearest.map(|(_, d)| d.round()),
    });
    AlertDraft {
        kind: "hotspot".to_owned(),
        severity,
        score: round4(f.risk),
        event_ts_ms: f.at_ms,
        subject: format!("cell:{hex}"),
        pos: Some(cell_centre(f.cell)),
        cell: Some(f.cell),
        route: RouteLevel::Community,
        summary,
        evidence: evidence.to_string(),
        action,
    }
}

/// Builds a `near_repeat` alert for a burglary in `cell`; `area` is the disk it covers.
pub fn near_repeat_draft(config: &Config, alarm: &AlarmEvent, cell: u64, area: &[(u64, u32)]) -> AlertDraft {
    let hex = cell_hex(cell);
    let cells: Vec<String> =
        area.iter().filter(|(_, r)| *r <= config.near_repeat_rings).map(|(c, _)| cell_hex(*c)).collect();
    let days = config.near_repeat_alert_window_ms / DAY_MS;
    let until = alarm.ts_ms + config.near_repeat_alert_window_ms;
    let summary = format!(
        "Burglary (alarm {}) in {hex}: raised risk of another within {} cells around it for {days} days",
        alarm.alarm_id,
        cells.len()
    );
    let action = format!(
        "Patrol the streets of the {} cells around {hex} at dusk and night for the next {days} days; \
         tell neighbours of the burglary and ask them to lock doors and windows.",
        cells.len()
    );
    let evidence = serde_json::json!({
        "alarm_id": alarm.alarm_id,
        "burglary_ts_ms": alarm.ts_ms,
        "cell": hex,
        "cells": cells,
        "until_ts_ms": until,
        "rings": config.near_repeat_rings,
        "late_input": alarm.late,
    });
    AlertDraft {
        kind: "near_repeat".to_owned(),
        severity: Severity::Moderate,
        score: config.near_repeat_weight,
        event_ts_ms: alarm.ts_ms,
        subject: format!("cell:{hex}"),
        pos: Some(alarm.pos),
        cell: Some(cell),
        route: RouteLevel::Community,
        summary,
        evidence: evidence.to_string(),
        action,
    }
}

/// The one notice that no patrol positions have arrived: every hotspot then
/// counts as uncovered, and only the budget limits the alerts.
pub fn no_patrol_feed_draft(config: &Config, at_ms: u64) -> AlertDraft {
    let summary = format!(
        "No patrol positions received: every hotspot counts as uncovered; hotspot alerts are limited to the budget \
         ({} per community and {} per officer per shift, {} per hour city-wide)",
        config.max_hotspot_alerts_per_community_per_shift,
        config.max_hotspot_alerts_per_shift,
        config.max_hotspot_alerts_per_hour
    );
    let evidence = serde_json::json!({
        "tick_ts_ms": at_ms,
        "max_hotspot_alerts_per_community_per_shift": config.max_hotspot_alerts_per_community_per_shift,
        "max_hotspot_alerts_per_shift": config.max_hotspot_alerts_per_shift,
        "max_hotspot_alerts_per_hour": config.max_hotspot_alerts_per_hour,
    });
    AlertDraft {
        kind: "no_patrol_feed".to_owned(),
        severity: Severity::Minor,
        score: 0.0,
        event_ts_ms: at_ms,
        subject: "patrols".to_owned(),
        pos: None,
        cell: None,
        route: RouteLevel::City,
        summary,
        evidence: evidence.to_string(),
        action: "Connect the patrol position (AVL) feed; until then read hotspot alerts as the riskiest places to \
                 visit, not as gaps in patrol coverage."
            .to_owned(),
    }
}

/// A hotspot candidate during a tick.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    risk: f64,
    cell: u64,
    rank: usize,
    community: u32,
    last_patrol_ms: Option<u64>,
}

/// Per-worker state of the operator.
struct State {
    config: Config,
    units_dir: UnitDirectory,
    index: usize,
    surface: Surface,
    places: Places,
    near_repeat: NearRepeatWatch,
    units: FastMap<UnitToken, UnitState>,
    /// Cell -> latest fix of an on-duty unit in it.
    last_seen: FastMap<u64, u64>,
    /// Cell -> its coverage disk.
    coverage_disks: FastMap<u64, Box<[u64]>>,
    /// Cell -> last hotspot alert time.
    alerted: FastMap<u64, u64>,
    next_tick: Option<u64>,
    handle: SurfaceHandle,
    scratch: Vec<(f64, u64)>,
    candidates: Vec<Candidate>,
    /// The tick's selection over all officers: (officer group, candidate).
    pool: Vec<(u32, Candidate)>,
    /// Clock hour and hotspot alerts in it, city-wide.
    city_hour: (u64, u32),
    /// Whether any patrol fix has arrived.
    patrol_seen: bool,
    /// Whether the missing patrol feed has been reported.
    no_feed_noted: bool,
}

/// A patrol fix and, on duty, the cell it lies in (off duty it is no
/// coverage). The cell is the fix's H3 cell whatever the locator had cached
/// (see [`FixLocator::cell_of`]), so it does not matter which worker located it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct LocatedFix {
    fix: PatrolEvent,
    cell: Option<u64>,
}

impl Timed for LocatedFix {
    fn ts_ms(&self) -> u64 {
        self.fix.ts_ms
    }

    fn seq(&self) -> u64 {
        self.fix.seq
    }
}

impl State {
    fn on_alarm(&mut self, a: &AlarmEvent, emit: &mut impl FnMut(AlertDraft)) {
        let Some(cell) = self.surface.add(a.ts_ms, a.pos, a.category) else { return };
        let disk = self.surface.disk(cell);
        for &(n, _) in disk {
            self.places.register(n);
        }
        if a.category != Category::Burglary || self.config.near_repeat_weight <= 0.0 {
            return;
        }
        let community = self.places.register(cell);
        let Some(officer) = self.places.officer_of(community).filter(|_| community != NO_COMMUNITY) else {
            return;
        };
        let disk = self.surface.disk(cell);
        if self.near_repeat.on_burglary(a.ts_ms, cell, disk, officer)
            && self.places.officers[officer as usize].owner == self.index
        {
            emit(near_repeat_draft(&self.config, a, cell, disk));
        }
    }

    fn on_patrol(&mut self, LocatedFix { fix: p, cell }: &LocatedFix) {
        self.patrol_seen = true;
        self.units.insert(p.unit, UnitState { pos: p.pos, status: p.status });
        if let Some(cell) = *cell {
            let e = self.last_seen.entry(cell).or_insert(p.ts_ms);
            *e = (*e).max(p.ts_ms);
        }
    }

    /// Latest on-duty fix within `coverage_rings` of `cell`.
    fn last_patrol(&mut self, cell: u64) -> Option<u64> {
        let rings = self.config.coverage_rings;
        let disk = self.coverage_disks.entry(cell).or_insert_with(|| {
            let c = CellIndex::try_from(cell).expect("surface cell");
            c.grid_disk::<Vec<_>>(rings).into_iter().map(u64::from).collect()
        });
        disk.iter().filter_map(|n| self.last_seen.get(n).copied()).max()
    }

    /// A forecast tick. Every worker selects the alerts of every officer (it
    /// holds the whole surface, so all select the same) and keeps the same
    /// counts, so that the city-wide hourly budget needs no exchange; each
    /// emits only the alerts of the officers it owns.
    fn on_tick(&mut self, at_ms: u64, emit: &mut impl FnMut(AlertDraft)) {
        let f = self.surface.factors(at_ms);
        let c = &self.config;
        let shift = shift_index(at_ms, c.shift_ms, c.shift_offset_ms);
        let stale = at_ms.saturating_sub(c.covered_within_ms);
        self.pool.clear();
        for oi in 0..self.places.officers.len() {
            self.candidates.clear();
            for k in 0..self.places.officers[oi].communities.len() {
                let ci = self.places.officers[oi].communities[k];
                let community = &mut self.places.communities[ci as usize];
                if community.hotspot_shift.0 != shift {
                    community.hotspot_shift = (shift, 0);
                }
                let mut room =
                    self.config.max_hotspot_alerts_per_community_per_shift.saturating_sub(community.hotspot_shift.1)
                        as usize;
                if room == 0 {
                    continue;
                }
                self.scratch.clear();
                for &cell in &community.cells {
                    let r = Surface::risk_of(&self.surface.parts(cell), &f);
                    if r >= self.config.min_risk {
                        self.scratch.push((r, cell));
                    }
                }
                self.scratch.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for rank in 0..self.scratch.len().min(self.config.top_cells_per_community) {
                    let (risk, cell) = self.scratch[rank];
                    if self.alerted.get(&cell).is_some_and(|t| at_ms - t < self.config.cell_cooldown_ms) {
                        continue;
                    }
                    let last = self.last_patrol(cell);
                    if last.is_some_and(|t| t >= stale) {
                        continue;
                    }
                    self.candidates.push(Candidate { risk, cell, rank, community: ci, last_patrol_ms: last });
                    room -= 1;
                    if room == 0 {
                        break;
                    }
                }
            }
            if self.candidates.is_empty() {
                continue;
            }
            self.candidates.sort_unstable_by(by_risk);
            let group = &mut self.places.officers[oi];
            if group.hotspot_shift.0 != shift {
                group.hotspot_shift = (shift, 0);
            }
            let room = self.config.max_hotspot_alerts_per_shift.saturating_sub(group.hotspot_shift.1) as usize;
            let n = room.min(self.config.hotspots_per_tick).min(self.candidates.len());
            self.pool.extend(self.candidates[..n].iter().map(|c| (oi as u32, *c)));
        }
        if self.pool.is_empty() {
            self.publish(at_ms);
            return;
        }
        if !self.patrol_seen && !self.no_feed_noted {
            self.no_feed_noted = true;
            if self.index == 0 {
                emit(no_patrol_feed_draft(&self.config, at_ms));
            }
        }
        let hour = at_ms / HOUR_MS;
        if self.city_hour.0 != hour {
            self.city_hour = (hour, 0);
        }
        let room = self.config.max_hotspot_alerts_per_hour.saturating_sub(self.city_hour.1) as usize;
        self.pool.sort_unstable_by(|a, b| by_risk(&a.1, &b.1));
        self.pool.truncate(room);
        self.city_hour.1 += self.pool.len() as u32;
        for &(oi, c) in &self.pool {
            self.places.officers[oi as usize].hotspot_shift.1 += 1;
            self.places.communities[c.community as usize].hotspot_shift.1 += 1;
            self.alerted.insert(c.cell, at_ms);
            if self.places.officers[oi as usize].owner != self.index {
                continue;
            }
            let centre = cell_centre(c.cell);
            let facts = HotspotFacts {
                cell: c.cell,
                community: &self.places.communities[c.community as usize].name,
                at_ms,
                risk: c.risk,
                parts: {
                    let p = self.surface.parts(c.cell);
                    [p[0] * f[0], p[1] * f[1], p[2] * f[2]]
                },
                rank: c.rank,
                last_patrol_ms: c.last_patrol_ms,
                nearest: nearest_available(self.units.iter(), centre),
            };
            emit(hotspot_draft(&self.config, &facts, &self.units_dir));
        }
        self.publish(at_ms);
    }

    fn publish(&self, at_ms: u64) {
        if self.index == 0 {
            self.handle.publish(snapshot(&self.surface, at_ms, self.config.snapshot_cells));
        }
    }
}

/// Riskiest first, ties by cell: the one order of hotspot candidates.
fn by_risk(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.risk.total_cmp(&a.risk).then(a.cell.cmp(&b.cell))
}

/// The top `n` cells of a surface at `at_ms`.
pub fn snapshot(surface: &Surface, at_ms: u64, n: usize) -> Snapshot {
    let f = surface.factors(at_ms);
    let mut cells: Vec<(u64, f64)> = surface.cells().map(|(c, p)| (c, Surface::risk_of(p, &f))).collect();
    let by = |a: &(u64, f64), b: &(u64, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if cells.len() > n && n > 0 {
        cells.select_nth_unstable_by(n - 1, by);
        cells.truncate(n);
    }
    cells.sort_unstable_by(by);
    cells.truncate(n);
    Snapshot { as_of_ms: Some(at_ms), resolution: u8::from(surface.params().resolution), cells }
}

impl Model for RiskHotspot {
    fn name(&self) -> String {
        "risk_hotspot".to_owned()
    }

    fn card(&self) -> &'static str {
        include_str!("../README.md")
    }

    citywatch_engine::config_field!(config, Config::validate);

    fn reference(&self, events: &[Event], reference: &Reference) -> Option<Vec<AlertDraft>> {
        Some(reference::run(&self.config, events, reference))
    }

    fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
        let config = self.config.clone();
        let scope = inputs.alarms.scope();
        let state = State {
            units_dir: inputs.reference.units.clone(),
            index: scope.index(),
            surface: Surface::new(Params::new(&config)),
            places: Places::new(inputs.reference.jurisdiction.clone(), scope.peers()),
            near_repeat: NearRepeatWatch::new(&config),
            units: FastMap::default(),
            last_seen: FastMap::default(),
            coverage_disks: FastMap::default(),
            alerted: FastMap::default(),
            next_tick: None,
            handle: self.surface.clone(),
            scratch: Vec::new(),
            candidates: Vec::new(),
            pool: Vec::new(),
            city_hour: (u64::MAX, 0),
            patrol_seen: false,
            no_feed_noted: false,
            config,
        };
        if state.index == 0 {
            state.handle.publish(Snapshot { resolution: state.config.resolution, ..Snapshot::default() });
        }
        // Each fix is located by the worker that reads it, then broadcast
        // with its cell: one H3 lookup per fix, not one per fix and worker.
        let mut locator = FixLocator::new(Params::new(&state.config).resolution);
        let patrols = inputs
            .patrols
            .clone()
            .map(move |fix: PatrolEvent| LocatedFix {
                cell: (fix.status != PatrolStatus::OffDuty).then(|| locator.cell_of(fix.unit, fix.pos)),
                fix,
            })
            .broadcast();
        inputs.alarms.clone().broadcast().deadlines(
            patrols,
            Pipeline,
            Pipeline,
            "RiskHotspot",
            state,
            move |state: &mut State, step: Step<'_, AlarmEvent, LocatedFix>, ctx| {
                let now = ctx.now_ms();
                if state.next_tick.is_none() && !matches!(step, Step::Timer { .. }) {
                    let t = tick_at_or_after(&state.config, now);
                    state.next_tick = Some(t);
                    ctx.set_timer(t, 0);
                }
                match step {
                    Step::Left(a) => state.on_alarm(a, &mut |d| ctx.emit(d)),
                    Step::Right(p) => state.on_patrol(p),
                    Step::Timer { at_ms, .. } => {
                        state.on_tick(at_ms, &mut |d| ctx.emit(d));
                        let t = tick_at_or_after(&state.config, at_ms + 1);
                        state.next_tick = Some(t);
                        ctx.set_timer(t, 0);
                    }
                }
            },
        )
    }
}
