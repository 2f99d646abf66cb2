//! Model `response_gap`: an urgent alarm that no patrol unit answers in time.
//!
//! An alarm of priority 1 or 2 (configurable) raises an alert to the station
//! responsible for its place when no unit is dispatched to it within 3 minutes
//! (`no_dispatch`), or none is on scene within 12 minutes (`not_on_scene`).
//! The alert fires at the event time the deadline passes, never later, and not
//! at all if a unit's status change stamped at or before the deadline names
//! the alarm (even if that row arrives after the deadline, within the allowed
//! lateness). Its evidence names the alarm and the nearest available unit at
//! that moment. See `README.md` (the model card).
//!
//! Dataflow: alarms are exchanged by `alarm_id`; patrol events are broadcast,
//! so every worker knows where every unit is and can name the nearest one.
//! Both go through the [`Deadlines`] operator, which interleaves them in event
//! time with one timer per deadline. [`reference`] is the single-threaded
//! reference implementation, written independently, that the dataflow must match.
#![deny(missing_docs)]

pub mod reference;

use std::collections::HashMap;

use citywatch_engine::EventTime;
use citywatch_engine::alert::{AlertDraft, RouteLevel, Severity};
use citywatch_engine::contract::PatrolStatus;
use citywatch_engine::event::{AlarmEvent, Event, PatrolEvent, UnitToken};
use citywatch_engine::geo::Point;
use citywatch_engine::model::{Inputs, Model};
use citywatch_engine::reference::{Reference, UnitDirectory};
use citywatch_operators::deadline::{Deadlines, Step};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::Broadcast;

/// Settings, with the defaults the card explains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Alarms with priority up to this (1 = most urgent) are watched.
    pub max_priority: u8,
    /// A unit must be dispatched (or en route, or on scene) within this, ms.
    pub dispatch_within_ms: u64,
    /// A unit must be on scene within this, ms.
    pub on_scene_within_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_priority: 2, dispatch_within_ms: 3 * 60_000, on_scene_within_ms: 12 * 60_000 }
    }
}

/// The model.
#[derive(Debug, Clone, Default)]
pub struct ResponseGap {
    /// Its settings.
    pub config: Config,
}

/// Which deadline an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// No unit dispatched in time.
    NoDispatch,
    /// No unit on scene in time.
    NotOnScene,
}

impl Gap {
    /// The alert kind.
    pub fn kind(self) -> &'static str {
        match self {
            Gap::NoDispatch => "no_dispatch",
            Gap::NotOnScene => "not_on_scene",
        }
    }
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
pub fn nearest_available(units: &HashMap<UnitToken, UnitState>, pos: Point) -> Option<(UnitToken, f64)> {
    units
        .iter()
        .filter(|(_, u)| u.status == PatrolStatus::Available)
        .map(|(t, u)| (*t, u.pos.distance_m(pos)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
}

/// Whether a patrol status answers an alarm's dispatch deadline / on-scene deadline.
pub fn answers(status: PatrolStatus) -> (bool, bool) {
    match status {
        PatrolStatus::Dispatched | PatrolStatus::EnRoute => (true, false),
        PatrolStatus::OnScene => (true, true),
        PatrolStatus::Available | PatrolStatus::OffDuty => (false, false),
    }
}

/// Builds the alert for a missed deadline (shared by the dataflow and the reference,
/// so that both are compared on *which* alerts fire, not on wording).
pub fn draft(
    config: &Config,
    alarm: &AlarmEvent,
    gap: Gap,
    at_ms: u64,
    nearest: Option<(UnitToken, f64)>,
    units: &UnitDirectory,
    dispatched: bool,
) -> AlertDraft {
    let (severity, score) = match (alarm.priority, gap) {
        (1, Gap::NoDispatch) => (Severity::Extreme, 1.0),
        (1, Gap::NotOnScene) | (_, Gap::NoDispatch) => (Severity::Severe, 0.75),
        _ => (Severity::Moderate, 0.5),
    };
    let minutes = |ms: u64| ms as f64 / 60_000.0;
    let limit = match gap {
        Gap::NoDispatch => config.dispatch_within_ms,
        Gap::NotOnScene => config.on_scene_within_ms,
    };
    let nearest_name = nearest.map(|(t, _)| units.name(t));
    let nearest_text = match (&nearest_name, nearest) {
        (Some(n), Some((_, d))) => format!("nearest available unit {n} is {:.1} km away", d / 1000.0),
        _ => "no unit is available".to_owned(),
    };
    let what = match gap {
        Gap::NoDispatch => "no unit dispatched",
        Gap::NotOnScene => "no unit on scene",
    };
    let summary = format!(
        "P{} {} alarm {}: {what} after {:.0} min; {nearest_text}",
        alarm.priority,
        alarm.category,
        alarm.alarm_id,
        minutes(limit)
    );
    let action = match (&nearest_name, gap) {
        (Some(n), Gap::NoDispatch) => {
            format!("Dispatch {n} to alarm {} now and confirm with the command centre.", alarm.alarm_id)
        }
        (Some(n), Gap::NotOnScene) => format!(
            "Check why the dispatched unit has not arrived; send {n} to alarm {} if it cannot make it.",
            alarm.alarm_id
        ),
        (None, _) => format!("No unit is free: ask the district command for a unit for alarm {}.", alarm.alarm_id),
    };
    let evidence = serde_json::json!({
        "alarm_id": alarm.alarm_id,
        "category": alarm.category.as_str(),
        "priority": alarm.priority,
        "received_ts_ms": alarm.ts_ms,
        "deadline_ts_ms": at_ms,
        "limit_ms": limit,
        "dispatched": dispatched,
        "nearest_unit": nearest_name,
        "nearest_unit_distance_m": nearest.map(|(_, d)| d.round()),
        "late_input": alarm.late,
    });
    AlertDraft {
        kind: gap.kind().to_owned(),
        severity,
        score,
        event_ts_ms: at_ms,
        subject: format!("alarm:{}", alarm.alarm_id),
        pos: Some(alarm.pos),
        cell: None,
        route: RouteLevel::Station,
        summary,
        evidence: evidence.to_string(),
        action,
    }
}

/// Per-alarm state on the worker that owns the alarm.
struct Watch {
    alarm: AlarmEvent,
    dispatched: bool,
    on_scene: bool,
}

/// Per-worker state of the operator.
#[derive(Default)]
struct State {
    units: HashMap<UnitToken, UnitState>,
    watched: HashMap<u64, Watch>,
    /// Service seen for an alarm before the alarm itself (event-time disorder
    /// between tables): alarm_id -> (dispatched, on scene, ts).
    early: HashMap<u64, (bool, bool, u64)>,
}

impl Model for ResponseGap {
    fn name(&self) -> String {
        "response_gap".to_owned()
    }

    fn card(&self) -> &'static str {
        include_str!("../README.md")
    }

    citywatch_engine::config_field!(config);

    fn reference(&self, events: &[Event], reference: &Reference) -> Option<Vec<AlertDraft>> {
        Some(reference::run(&self.config, events, &reference.units))
    }

    fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
        let config = self.config.clone();
        let units_dir = inputs.reference.units.clone();
        let patrols = inputs.patrols.clone().broadcast();
        inputs.alarms.clone().deadlines(
            patrols,
            Exchange::new(|a: &AlarmEvent| a.alarm_id),
            Pipeline,
            "ResponseGap",
            State::default(),
            move |state: &mut State, step: Step<'_, AlarmEvent, PatrolEvent>, ctx| match step {
                Step::Left(alarm) => {
                    if alarm.priority > config.max_priority || state.watched.contains_key(&alarm.alarm_id) {
                        return;
                    }
                    let (dispatched, on_scene) =
                        state.early.remove(&alarm.alarm_id).map_or((false, false), |(d, s, _)| (d, s));
                    if !dispatched {
                        ctx.set_timer(alarm.ts_ms + config.dispatch_within_ms, alarm.alarm_id);
                    }
                    if !on_scene {
                        ctx.set_timer(alarm.ts_ms + config.on_scene_within_ms, alarm.alarm_id);
                    }
                    if !(dispatched && on_scene) {
                        state.watched.insert(alarm.alarm_id, Watch { alarm: *alarm, dispatched, on_scene });
                    }
                }
                Step::Right(p) => {
                    state.units.insert(p.unit, UnitState { pos: p.pos, status: p.status });
                    let (d, s) = answers(p.status);
                    if let Some(id) = p.alarm_id.filter(|_| d) {
                        match state.watched.get_mut(&id) {
                            Some(w) => {
                                w.dispatched |= d;
                                w.on_scene |= s;
                            }
                            None => {
                                let e = state.early.entry(id).or_insert((false, false, p.ts_ms));
                                (e.0, e.1, e.2) = (e.0 | d, e.1 | s, p.ts_ms);
                                if state.early.len() > 65_536 {
                                    let horizon = p.ts_ms.saturating_sub(config.on_scene_within_ms);
                                    state.early.retain(|_, v| v.2 >= horizon);
                                }
                            }
                        }
                    }
                }
                Step::Timer { at_ms, key } => {
                    let Some(w) = state.watched.get(&key) else { return };
                    let gap = if at_ms == w.alarm.ts_ms + config.dispatch_within_ms && !w.dispatched {
                        Some(Gap::NoDispatch)
                    } else if at_ms == w.alarm.ts_ms + config.on_scene_within_ms && !w.on_scene {
                        Some(Gap::NotOnScene)
                    } else {
                        None
                    };
                    if let Some(gap) = gap {
                        let nearest = nearest_available(&state.units, w.alarm.pos);
                        ctx.emit(draft(&config, &w.alarm, gap, at_ms, nearest, &units_dir, w.dispatched));
                    }
                    if at_ms >= w.alarm.ts_ms + config.on_scene_within_ms.max(config.dispatch_within_ms) {
                        state.watched.remove(&key);
                    }
                }
            },
        )
    }
}
