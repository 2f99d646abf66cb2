//! The single-threaded reference implementation of `fraud_call`.
//!
//! Written the plain way, independently of the dataflow's incremental state:
//! every event gets a position `(ts_ms, 0, seq)` and every in-progress check a
//! position `(start + point, 1, call_id)` for each decision point
//! (`early_checks_s`, then `open_s`) the call is still open at (a check happens
//! after every event stamped at or before it, as the dataflow's timers do; a
//! call that alerted is judged no more). Features are
//! recomputed from scratch at each check by scanning the caller's whole history
//! before that position; the windows, caps and the contact LRU are restated as
//! plain definitions ("the last `recent_cap` calls", "the `contacts` callees
//! called most recently"). Slow (quadratic per caller) and obviously correct:
//! the baseline the dataflow must match exactly.
//!
//! Input: the merged events as the dataflow receives them
//! ([`citywatch_engine::replay::merged_events`]).

use std::collections::HashMap;

use citywatch_engine::alert::AlertDraft;
use citywatch_engine::contract::{CallPhase, Category};
use citywatch_engine::event::{AlarmEvent, CallEvent, Event};
use citywatch_engine::pseudonym::Token;
use citywatch_engine::reference::Subscribers;

use crate::features::{
    self, Features, NumberReason, PastCall, day_of, draft_exposure, draft_in_progress, draft_number,
};
use crate::{Config, talk_s};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

type Pos = (u64, u8, u64);

fn pos_of_call(e: &CallEvent) -> Pos {
    (e.ts_ms, 0, e.seq)
}

/// A link: `callee` had been called by the reported `number`, known from `at` on.
#[derive(Debug, Clone, Copy)]
struct Link {
    at: Pos,
    ts_ms: u64,
    callee: Token,
    number: Token,
}

/// Everything the reference needs about a caller: their rows in order.
#[derive(Default)]
struct History {
    starts: Vec<CallEvent>,
    ends: Vec<CallEvent>,
}

/// Alerts of `fraud_call` over merged events, sorted by (time, subject, kind).
pub fn run(config: &Config, events: &[Event], subs: &Subscribers) -> Vec<AlertDraft> {
    let Some(last_ts) = events.iter().map(|e| e.ts_ms()).max() else { return Vec::new() };
    let mut calls: Vec<CallEvent> =
        events.iter().filter_map(|e| if let Event::Call(c) = e { Some(*c) } else { None }).collect();
    calls.sort_by_key(|c| (c.ts_ms, c.seq));
    let mut reports: Vec<AlarmEvent> = events
        .iter()
        .filter_map(|e| if let Event::Alarm(a) = e { Some(*a) } else { None })
        .filter(|a| a.category == Category::FraudReport && a.suspect.is_some())
        .collect();
    reports.sort_by_key(|a| (a.ts_ms, a.seq));
    let mut by_caller: HashMap<Token, History> = HashMap::new();
    for c in &calls {
        let h = by_caller.entry(c.caller).or_default();
        match c.phase {
            CallPhase::Start => h.starts.push(*c),
            CallPhase::End => h.ends.push(*c),
        }
    }
    // Answered calls by callee: (ts, position), in order.
    let mut received: HashMap<Token, Vec<Pos>> = HashMap::new();
    for c in calls.iter().filter(|c| c.phase == CallPhase::Start) {
        received.entry(c.callee).or_default().push(pos_of_call(c));
    }
    let mut out = Vec::new();

    // Exposure and links, report by report.
    let window = config.exposure_window_h * HOUR_MS;
    let mut links: Vec<Link> = Vec::new();
    let mut exposed: Vec<(Token, Token, u64)> = Vec::new(); // (number, callee, when)
    for r in &reports {
        let number = r.suspect.expect("filtered");
        let at = (r.ts_ms, 0, r.seq);
        let Some(h) = by_caller.get(&number) else { continue };
        let before: Vec<&CallEvent> = h.ends.iter().filter(|e| pos_of_call(e) < at).collect();
        let kept = &before[before.len().saturating_sub(config.exposure_cap)..];
        for e in kept.iter().filter(|e| e.ts_ms + window > r.ts_ms) {
            links.push(Link { at, ts_ms: r.ts_ms, callee: e.callee, number });
            let already = exposed.iter().any(|&(n, c, t)| n == number && c == e.callee && t + window > r.ts_ms);
            if talk_s(e) >= config.exposure_min_talk_s && Some(e.callee) != r.reporter && !already {
                exposed.push((number, e.callee, r.ts_ms));
                let p = PastCall {
                    call_id: e.call_id,
                    callee: e.callee,
                    end_ms: e.ts_ms,
                    duration_s: talk_s(e),
                    callee_pos: e.callee_pos,
                };
                out.push(draft_exposure(config, subs, number, &p, r.ts_ms, r.alarm_id));
            }
        }
    }

    // The timeline of checks: reports (fraud_number) and in-progress checks.
    enum Check {
        Report(AlarmEvent),
        Open(CallEvent),
    }
    let mut checks: Vec<(Pos, Check)> = reports.iter().map(|r| ((r.ts_ms, 0, r.seq), Check::Report(*r))).collect();
    for s in calls.iter().filter(|c| c.phase == CallPhase::Start) {
        // Every decision point while the call is open (a check that alerts ends its call's checks: below).
        for point in config.early_checks().iter().chain([&config.open_s]) {
            let at = s.ts_ms + point * 1000;
            if at > last_ts {
                break; // the input ended before the check was due
            }
            let ended = by_caller[&s.caller].ends.iter().any(|e| e.call_id == s.call_id && e.ts_ms <= at);
            if ended {
                break;
            }
            checks.push(((at, 1, s.call_id), Check::Open(*s)));
        }
    }
    checks.sort_by_key(|(p, _)| *p);
    // Calls that raised `fraud_in_progress`: judged no more.
    let mut alerted: std::collections::HashSet<u64> = std::collections::HashSet::new();

    let idle = config.idle_ms();
    // (caller, run start) -> day of the last fraud_number alert.
    let mut number_day: HashMap<(Token, u64), u64> = HashMap::new();
    let empty = History::default();
    for (p, check) in &checks {
        match check {
            Check::Report(r) => {
                let number = r.suspect.expect("filtered");
                let h = by_caller.get(&number).unwrap_or(&empty);
                let starts: Vec<&CallEvent> = h.starts.iter().filter(|s| pos_of_call(s) < *p).collect();
                let Some(last) = starts.last() else { continue };
                if last.ts_ms + idle <= r.ts_ms {
                    continue; // forgotten: idle too long
                }
                let f = features_at(config, subs, &by_caller, &received, &reports, &links, number, *p, r.ts_ms, None);
                let risk = config.score(&f, r.ts_ms);
                let run = run_start(&starts, idle);
                if number_day.get(&(number, run)) != Some(&day_of(r.ts_ms)) {
                    number_day.insert((number, run), day_of(r.ts_ms));
                    out.push(draft_number(config, number, r.ts_ms, &f, risk, NumberReason::Reported, None));
                }
            }
            Check::Open(s) => {
                if alerted.contains(&s.call_id) {
                    continue;
                }
                let at = p.0;
                let mut f =
                    features_at(config, subs, &by_caller, &received, &reports, &links, s.caller, *p, at, Some(s));
                f.open_s = ((at - s.ts_ms) / 1000) as u32;
                let risk = config.score(&f, at);
                if risk >= config.threshold() {
                    alerted.insert(s.call_id);
                    out.push(draft_in_progress(config, subs, s, at, &f, risk));
                }
                if risk >= config.high_threshold() {
                    let starts: Vec<&CallEvent> =
                        by_caller[&s.caller].starts.iter().filter(|x| pos_of_call(x) < *p).collect();
                    let run = run_start(&starts, idle);
                    if number_day.get(&(s.caller, run)) != Some(&day_of(at)) {
                        number_day.insert((s.caller, run), day_of(at));
                        out.push(draft_number(config, s.caller, at, &f, risk, NumberReason::HighRisk, Some(s.call_id)));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (a.event_ts_ms, &a.subject, &a.kind).cmp(&(b.event_ts_ms, &b.subject, &b.kind)));
    out
}

/// When the caller's current run of activity began: a gap of `idle` or more between
/// two call starts starts a new run.
fn run_start(starts: &[&CallEvent], idle: u64) -> u64 {
    let mut first = starts.first().map_or(0, |s| s.ts_ms);
    for w in starts.windows(2) {
        if w[0].ts_ms + idle <= w[1].ts_ms {
            first = w[1].ts_ms;
        }
    }
    first
}

#[allow(clippy::too_many_arguments)]
fn features_at(
    c: &Config,
    subs: &Subscribers,
    by_caller: &HashMap<Token, History>,
    received: &HashMap<Token, Vec<Pos>>,
    reports: &[AlarmEvent],
    links: &[Link],
    who: Token,
    p: Pos,
    at: u64,
    call: Option<&CallEvent>,
) -> Features {
    // A report check sees events stamped at its own position; an in-progress check is after them.
    let include_same_pos = call.is_none();
    let before = |q: Pos| q < p || (include_same_pos && q == p);
    let mut f = Features::default();
    let Some(h) = by_caller.get(&who) else { return f };
    let starts: Vec<&CallEvent> = h.starts.iter().filter(|s| before(pos_of_call(s))).collect();
    let Some(first) = starts.first() else { return f };
    f.class = first.caller_class;
    f.age_days = features::age_days(subs.get_at(&who, at).as_ref(), at);
    f.seen_h = ((at - run_start(&starts, c.idle_ms())) / HOUR_MS) as u32;
    let memory = c.contact_memory_h * HOUR_MS;
    let kept_from = starts.len().saturating_sub(c.recent_cap);
    let mut day_callees = Vec::new();
    let mut hour_callees = Vec::new();
    for (i, s) in starts.iter().enumerate().skip(kept_from) {
        if s.ts_ms + DAY_MS <= at {
            continue;
        }
        f.calls_24h += 1;
        // New callee: not among the `contacts` callees called most recently before s
        // (by their last call), or called too long ago.
        let mut last: HashMap<Token, (u64, u64)> = HashMap::new();
        for q in &starts[..i] {
            last.insert(q.callee, (q.ts_ms, q.seq));
        }
        let mut recent: Vec<(Token, (u64, u64))> = last.into_iter().collect();
        recent.sort_by_key(|&(_, t)| std::cmp::Reverse(t));
        recent.truncate(c.contacts);
        let known = recent.iter().any(|&(k, (t, _))| k == s.callee && t + memory > s.ts_ms);
        f.new_callee_24h += u32::from(!known);
        f.current_new |= call.is_some_and(|c| c.call_id == s.call_id) && !known;
        let end = h.ends.iter().find(|e| e.call_id == s.call_id && e.callee == s.callee && before(pos_of_call(e)));
        if let Some(e) = end {
            f.completed_24h += 1;
            f.short_24h += u32::from(talk_s(e) < c.short_call_s);
            f.very_short_24h += u32::from(talk_s(e) < c.very_short_call_s);
            f.long_24h += u32::from(talk_s(e) >= features::LONG_CALL_S);
        }
        let near = features::nearness(s);
        f.located_24h += u32::from(near != 0);
        f.near_24h += u32::from(near == 1);
        if s.ts_ms + HOUR_MS > at {
            f.calls_1h += 1;
            hour_callees.push(s.callee);
        }
        if s.ts_ms + c.burst_window_s * 1000 > at {
            f.burst += 1;
        }
        day_callees.push(s.callee);
    }
    day_callees.sort_unstable();
    day_callees.dedup();
    hour_callees.sort_unstable();
    hour_callees.dedup();
    f.fanout_24h = day_callees.len() as u32;
    f.fanout_1h = hour_callees.len() as u32;
    // Outbound only: of the `contacts` callees called most recently, those
    // called (last) within the memory and strictly after (in ms) the number
    // last answered a call.
    let last_in = received.get(&who).and_then(|v| v.iter().filter(|&&q| before(q)).map(|q| q.0).max());
    let mut last: HashMap<Token, (u64, u64)> = HashMap::new();
    for s in &starts {
        last.insert(s.callee, (s.ts_ms, s.seq));
    }
    let mut recent: Vec<(u64, u64)> = last.into_values().collect();
    recent.sort_by_key(|&t| std::cmp::Reverse(t));
    recent.truncate(c.contacts);
    f.out_only_callees =
        recent.iter().filter(|&&(t, _)| t + memory > at && last_in.is_none_or(|r| t > r)).count() as u32;
    f.contacts = recent.iter().filter(|&&(t, _)| t + memory > at).count() as u32;
    f.answered = last_in.is_some_and(|r| r + memory > at);
    let run = run_start(&starts, c.idle_ms());
    let since_in = last_in.map_or(u64::MAX, |r| at - r);
    f.quiet_h = (since_in.min(at - run).min(memory) / HOUR_MS) as u32;
    let link_ms = c.exposure_window_h * HOUR_MS;
    f.linked_callees = day_callees
        .iter()
        .filter(|&&k| links.iter().any(|l| l.callee == k && l.number != who && l.at < p && l.ts_ms + link_ms > at))
        .count() as u32;
    let report_ms = c.report_memory_h * HOUR_MS;
    f.reports = reports
        .iter()
        .filter(|r| r.suspect == Some(who) && before((r.ts_ms, 0, r.seq)) && r.ts_ms + report_ms > at)
        .count() as u32;
    f
}
