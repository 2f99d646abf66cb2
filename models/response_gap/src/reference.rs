//! The single-threaded reference implementation of `response_gap`.
//!
//! Written the plain way, independently of the dataflow's event-by-event
//! state machine: for each watched alarm, look through the patrol events for
//! the first status that answers each deadline, and for a missed deadline,
//! rebuild every unit's state from the patrol events up to the deadline to
//! find the nearest available unit. Quadratic, obviously correct, and the
//! baseline the dataflow must match exactly (and beat on speed: see `bench/`).
//!
//! Input: the merged events as the dataflow receives them
//! ([`citywatch_engine::replay::merged_events`]): same `ts_ms`, `seq`, `late`.
//! A deadline passes when some event arrives after it or the input (which ends
//! at its last event's time) reaches beyond it: it must be `<=` the last event time.

use std::collections::HashMap;

use citywatch_engine::alert::AlertDraft;
use citywatch_engine::event::{AlarmEvent, Event, PatrolEvent};
use citywatch_engine::reference::UnitDirectory;

use crate::{Config, Gap, UnitState, answers, draft, nearest_available};

/// Alerts of `response_gap` over merged events, in firing order.
pub fn run(config: &Config, events: &[Event], units: &UnitDirectory) -> Vec<AlertDraft> {
    let Some(last_ts) = events.iter().map(|e| e.ts_ms()).max() else { return Vec::new() };
    let mut patrols: Vec<PatrolEvent> =
        events.iter().filter_map(|e| if let Event::Patrol(p) = e { Some(*p) } else { None }).collect();
    patrols.sort_by_key(|p| (p.ts_ms, p.seq));
    let mut alarms: Vec<AlarmEvent> = events
        .iter()
        .filter_map(|e| if let Event::Alarm(a) = e { Some(*a) } else { None })
        .filter(|a| a.priority <= config.max_priority)
        .collect();
    alarms.sort_by_key(|a| (a.ts_ms, a.seq));
    // An alarm id seen twice is watched once, from its first row.
    let mut seen = std::collections::HashSet::new();
    alarms.retain(|a| seen.insert(a.alarm_id));

    let mut out = Vec::new();
    for alarm in &alarms {
        let first = |need_scene: bool| {
            patrols
                .iter()
                .filter(|p| p.alarm_id == Some(alarm.alarm_id))
                .filter(|p| {
                    let (d, s) = answers(p.status);
                    if need_scene { s } else { d }
                })
                .map(|p| p.ts_ms)
                .min()
        };
        let first_dispatch = first(false);
        let first_scene = first(true);
        for (gap, limit, answered) in [
            (Gap::NoDispatch, config.dispatch_within_ms, first_dispatch),
            (Gap::NotOnScene, config.on_scene_within_ms, first_scene),
        ] {
            let deadline = alarm.ts_ms + limit;
            if deadline > last_ts || answered.is_some_and(|t| t <= deadline) {
                continue;
            }
            let mut unit_states: HashMap<u64, UnitState> = HashMap::new();
            for p in patrols.iter().take_while(|p| p.ts_ms <= deadline) {
                unit_states.insert(p.unit, UnitState { pos: p.pos, status: p.status });
            }
            let nearest = nearest_available(&unit_states, alarm.pos);
            let dispatched = first_dispatch.is_some_and(|t| t <= deadline);
            out.push(draft(config, alarm, gap, deadline, nearest, units, dispatched));
        }
    }
    out.sort_by(|a, b| (a.event_ts_ms, &a.subject, &a.kind).cmp(&(b.event_ts_ms, &b.subject, &b.kind)));
    out
}
