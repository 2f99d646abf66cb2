//! The simple-rule baseline that `citywatch eval` prints beside the model:
//! "at [`OPEN_S`] (120 s) into a call, the caller has at least
//! [`MIN_CALLEES`] (3) distinct callees in the last hour and a median talk
//! time of at most [`MAX_MEDIAN_TALK_S`] (15 s)".
//!
//! Computed from the same calls the model saw (the dataset's merged,
//! pseudonymised events), causally: at the decision instant `start + 120 s`
//! of every call still open then (no end row stamped at or before it), over
//! the caller's calls answered in the hour up to that instant; the median is
//! over those of them that had ended by then (none ended: the rule does not
//! fire). Each firing is a `fraud_in_progress` alert of model [`MODEL`] about
//! the callee, naming the call and the caller, stamped at the decision time,
//! routed like the model's (the callee's registered home, else their cell),
//! so the evaluation scores both the same way.

use std::collections::HashMap;
use std::path::Path;

use citywatch_engine::Result;
use citywatch_engine::alert::{Alert, AlertDraft, RouteLevel, Severity};
use citywatch_engine::contract::CallPhase;
use citywatch_engine::event::{CallEvent, Event};
use citywatch_engine::pseudonym::{Token, token_hex};
use citywatch_engine::replay::{ReplayOptions, complete, merged_events};

use crate::features::{KIND_IN_PROGRESS, person_pos};

/// The baseline's model name in its alerts.
pub const MODEL: &str = "simple_rule";
/// Decision instant after the answer, seconds.
pub const OPEN_S: u64 = 120;
/// Distinct callees in the last hour.
pub const MIN_CALLEES: usize = 3;
/// Median talk time of the hour's ended calls, seconds.
pub const MAX_MEDIAN_TALK_S: u32 = 15;

const HOUR_MS: u64 = 3_600_000;

/// The rule's decisions over call rows: `(decision time, start row)` of
/// every call it fires on, in decision order.
pub fn decisions(calls: &[CallEvent]) -> Vec<(u64, CallEvent)> {
    let Some(last_ts) = calls.iter().map(|c| c.ts_ms).max() else { return Vec::new() };
    // Per caller: starts, and (call id -> end time, talk) of the ends.
    let mut starts: HashMap<Token, Vec<CallEvent>> = HashMap::new();
    let mut ends: HashMap<u64, (u64, u32)> = HashMap::new();
    for c in calls {
        match c.phase {
            CallPhase::Start => starts.entry(c.caller).or_default().push(*c),
            CallPhase::End => {
                ends.insert(c.call_id, (c.ts_ms, c.duration_s.unwrap_or(0)));
            }
        }
    }
    let mut out = Vec::new();
    let mut callees: Vec<Token> = Vec::new();
    let mut talks: Vec<u32> = Vec::new();
    for list in starts.values_mut() {
        list.sort_by_key(|c| (c.ts_ms, c.seq));
        let mut lo = 0;
        for s in list.iter() {
            let at = s.ts_ms + OPEN_S * 1000;
            if at > last_ts || ends.get(&s.call_id).is_some_and(|&(t, _)| t <= at) {
                continue;
            }
            while list[lo].ts_ms + HOUR_MS <= at {
                lo += 1;
            }
            // Calls answered in (at - 1 h, at], this one and later ones included.
            let window = list[lo..].iter().take_while(|c| c.ts_ms <= at);
            callees.clear();
            talks.clear();
            for c in window {
                callees.push(c.callee);
                if let Some(&(t, d)) = ends.get(&c.call_id)
                    && t <= at
                {
                    talks.push(d);
                }
            }
            callees.sort_unstable();
            callees.dedup();
            if callees.len() < MIN_CALLEES || talks.is_empty() {
                continue;
            }
            talks.sort_unstable();
            let n = talks.len();
            // The median of an even count: the mean of the middle two.
            let twice_median = if n % 2 == 1 { 2 * talks[n / 2] } else { talks[n / 2 - 1] + talks[n / 2] };
            if twice_median <= 2 * MAX_MEDIAN_TALK_S {
                out.push((at, *s));
            }
        }
    }
    out.sort_by_key(|(at, s)| (*at, s.call_id));
    out
}

/// The rule's alerts on the dataset in `dataset_dir`, pseudonymised with `pseudonym_key`.
pub fn alerts(dataset_dir: &Path, pseudonym_key: &str) -> Result<Vec<Alert>> {
    let opts = ReplayOptions {
        input: dataset_dir.to_owned(),
        pseudonym_key: pseudonym_key.to_owned(),
        ..ReplayOptions::default()
    };
    let (events, reference) = merged_events(&opts)?;
    let calls: Vec<CallEvent> =
        events.iter().filter_map(|e| if let Event::Call(c) = e { Some(*c) } else { None }).collect();
    drop(events);
    let subs = &reference.subscribers;
    let models = [(MODEL.to_owned(), "1".to_owned())];
    let out = decisions(&calls)
        .into_iter()
        .map(|(at, s)| {
            let subject = token_hex(s.callee);
            let evidence = serde_json::json!({
                "call_id": s.call_id,
                "call_ids": [s.call_id],
                "caller": token_hex(s.caller),
                "callee": subject,
            });
            let draft = AlertDraft {
                kind: KIND_IN_PROGRESS.to_owned(),
                severity: Severity::Moderate,
                score: 1.0,
                event_ts_ms: at,
                pos: person_pos(subs, s.callee, s.callee_pos, at),
                cell: None,
                route: RouteLevel::Community,
                summary: format!(
                    "Simple rule: caller {} has called {MIN_CALLEES}+ people in the last hour with a median talk of \
                     {MAX_MEDIAN_TALK_S} s or less",
                    token_hex(s.caller)
                ),
                subject,
                evidence: evidence.to_string(),
                action: String::new(),
            };
            complete(&models, &reference, (0, draft))
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use citywatch_engine::pseudonym::NumberClass;

    use super::*;

    fn row(ts_s: u64, call_id: u64, caller: Token, callee: Token, end: Option<u32>) -> CallEvent {
        CallEvent {
            ts_ms: ts_s * 1000,
            seq: call_id * 2 + u64::from(end.is_some()),
            call_id,
            phase: if end.is_some() { CallPhase::End } else { CallPhase::Start },
            caller,
            callee,
            caller_class: NumberClass::default(),
            callee_class: NumberClass::default(),
            caller_pos: None,
            callee_pos: None,
            duration_s: end,
            late: false,
        }
    }

    /// Three short calls to three people, then a fourth call open at 120 s:
    /// fires on the fourth; with two distinct callees, or long calls, it does not.
    #[test]
    fn fires_on_fan_out_with_short_talk_only() {
        let (a, b) = (1, 2);
        let mut calls = Vec::new();
        for (i, talk) in [(0u64, 8u32), (1, 12), (2, 30)] {
            calls.push(row(100 * i, i, a, 10 + i, None));
            calls.push(row(100 * i + u64::from(talk), i, a, 10 + i, Some(talk)));
        }
        calls.push(row(400, 3, a, 20, None));
        calls.push(row(1_000, 3, a, 20, Some(600)));
        // Caller b: the same shape but only two distinct callees.
        for i in 0..3u64 {
            calls.push(row(100 * i, 10 + i, b, 30 + i % 2, None));
            calls.push(row(100 * i + 5, 10 + i, b, 30 + i % 2, Some(5)));
        }
        calls.push(row(400, 13, b, 30, None));
        calls.push(row(1_000, 13, b, 30, Some(600)));
        calls.sort_by_key(|c| (c.ts_ms, c.seq));
        let d = decisions(&calls);
        assert_eq!(d.iter().map(|(at, s)| (*at, s.call_id)).collect::<Vec<_>>(), vec![(520_000, 3)]);
        // Median talk 8, 12, 30 -> 12 s fires; make the calls long and it does not.
        let long: Vec<CallEvent> = calls
            .iter()
            .map(|c| CallEvent { duration_s: c.duration_s.map(|d| if d < 600 { d + 20 } else { d }), ..*c })
            .collect();
        assert!(decisions(&long).is_empty());
    }
}
