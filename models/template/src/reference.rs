//! The single-threaded reference of `model_template`, written plainly: for
//! each counted alarm in `(ts_ms, seq)` order, the alarms of its community in
//! the window before it; a burst when there are `min_alarms` and the
//! community's count was below that at some moment since its last burst.

use std::collections::HashMap;

use citywatch_engine::alert::{AlertDraft, RouteLevel, Severity};
use citywatch_engine::event::{AlarmEvent, Event};
use citywatch_engine::reference::Reference;

use crate::{Config, counted, words};

/// The alerts of `model_template` over the merged events.
pub fn run(config: &Config, events: &[Event], reference: &Reference) -> Vec<AlertDraft> {
    let j = &reference.jurisdiction;
    let window = config.window_ms();
    let mut alarms: Vec<(u64, AlarmEvent)> = events
        .iter()
        .filter_map(|e| if let Event::Alarm(a) = e { Some(*a) } else { None })
        .filter_map(|a| counted(config, j, &a).map(|community| (community, a)))
        .collect();
    alarms.sort_by_key(|(_, a)| (a.ts_ms, a.seq));
    let mut seen: HashMap<u64, Vec<AlarmEvent>> = HashMap::new();
    let mut armed: HashMap<u64, bool> = HashMap::new();
    let mut out = Vec::new();
    for (community, alarm) in alarms {
        let earlier = seen.entry(community).or_default();
        let now = alarm.ts_ms;
        // Did the count drop below `min_alarms` at an instant since the
        // previous alarm of this community (an alarm leaving the window)?
        if let Some(prev) = earlier.last().map(|a| a.ts_ms) {
            let dipped = earlier
                .iter()
                .map(|a| a.ts_ms + window)
                .filter(|&at| at >= prev && at < now)
                .any(|at| earlier.iter().filter(|b| b.ts_ms + window > at).count() < config.min_alarms);
            if dipped {
                armed.insert(community, true);
            }
        }
        earlier.push(alarm);
        let in_window: Vec<AlarmEvent> = earlier.iter().filter(|b| b.ts_ms + window > now).copied().collect();
        let armed = armed.entry(community).or_insert(true);
        if in_window.len() >= config.min_alarms && *armed {
            *armed = false;
            // About the community, at this alarm, for its community officer.
            let id = j.community_id(alarm.pos).map(|c| c.into_owned()).unwrap_or_default();
            let (summary, evidence, action) = words(config, &id, &in_window);
            out.push(AlertDraft {
                kind: "model_template".to_owned(),
                severity: if in_window.iter().any(|a| a.priority <= 2) { Severity::Severe } else { Severity::Moderate },
                score: in_window.len() as f64,
                event_ts_ms: now,
                subject: format!("community:{id}"),
                pos: Some(alarm.pos),
                cell: None,
                route: RouteLevel::Community,
                summary,
                evidence,
                action,
            });
        }
    }
    out
}
