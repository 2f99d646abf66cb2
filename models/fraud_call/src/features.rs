//! The caller features, the risk score, and the alert texts: shared by the
//! dataflow and the reference, so that both are compared on *which* alerts fire
//! and with which feature values, not on wording.

use citywatch_engine::alert::{AlertDraft, RouteLevel, Severity};
use citywatch_engine::event::CallEvent;
use citywatch_engine::geo::Point;
use citywatch_engine::pseudonym::{NumberClass, Token, token_hex};
use citywatch_engine::reference::{Subscriber, Subscribers};

use crate::Config;

/// Alert kind: a risky call still open after the configured time.
pub const KIND_IN_PROGRESS: &str = "fraud_in_progress";
/// Alert kind: an earlier callee of a number just reported as fraud.
pub const KIND_EXPOSURE: &str = "fraud_exposure";
/// Alert kind: a number judged fraudulent, for the analysts.
pub const KIND_NUMBER: &str = "fraud_number";

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// What is known about a caller at one instant (counts over windows ending at
/// that instant, inclusive of events stamped at it). Integers only, so the
/// dataflow and the reference agree bit for bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// Shape of the caller's number (international, virtual, spoofed, service).
    #[serde(skip)]
    pub class: NumberClass,
    /// Calls started in the last hour.
    pub calls_1h: u32,
    /// Distinct callees of those (fan-out per hour).
    pub fanout_1h: u32,
    /// Calls started in the last 24 hours.
    pub calls_24h: u32,
    /// Distinct callees of those (fan-out per day).
    pub fanout_24h: u32,
    /// Calls started within the burst window (default 10 minutes).
    pub burst: u32,
    /// Calls of the last 24 h that have ended.
    pub completed_24h: u32,
    /// Of those, how many were short (under `short_call_s`).
    pub short_24h: u32,
    /// Of those, how many were hang-ups (under `very_short_call_s`).
    pub very_short_24h: u32,
    /// Calls of the last 24 h to a callee with no prior contact.
    pub new_callee_24h: u32,
    /// Days since the number was activated (subscribers table), when known.
    pub age_days: Option<u32>,
    /// Hours since this caller was first seen in the stream (its current run of activity).
    pub seen_h: u32,
    /// Fraud reports naming the number (within the report memory).
    pub reports: u32,
    /// Distinct callees of the last 24 h that a reported number had also called.
    pub linked_callees: u32,
    /// Distinct callees (among the remembered contacts, within the contact
    /// memory) called after the number last answered a call itself: how far it
    /// only calls out.
    pub out_only_callees: u32,
    /// Hours since the number last answered a call, at most `seen_h` and the
    /// contact memory: how long it has only called out.
    pub quiet_h: u32,
    /// Distinct callees remembered within the contact memory (at most `contacts`).
    pub contacts: u32,
    /// Whether the number answered a call within the contact memory (somebody called it).
    pub answered: bool,
    /// The call being judged goes to a callee with no prior contact.
    pub current_new: bool,
    /// Ended calls of the last 24 h that lasted at least [`LONG_CALL_S`].
    pub long_24h: u32,
    /// Calls of the last 24 h with both ends' cells known at the start.
    pub located_24h: u32,
    /// Of those, calls to a callee within [`NEAR_M`] of the caller.
    pub near_24h: u32,
    /// How long the call being judged has been open, seconds (its decision
    /// point; 0 at a report). Not in the features' JSON: the in-progress
    /// alert's evidence gives it as `open_s`.
    #[serde(skip)]
    pub open_s: u32,
}

/// A call this long or longer is long (the talk of a hooked victim), seconds.
pub const LONG_CALL_S: u32 = 300;

/// A callee whose serving cell is this close to the caller's is near, metres
/// (a clinic, a school, a courier calls its own district).
pub const NEAR_M: f64 = 2_000.0;

/// Where a call's callee was from its caller at the start: 0 unknown (a
/// cell missing, e.g. roaming), 1 near, 2 far.
pub fn nearness(start: &CallEvent) -> u8 {
    match (start.caller_pos, start.callee_pos) {
        (Some(a), Some(b)) => {
            if a.distance_m(b) < NEAR_M {
                1
            } else {
                2
            }
        }
        _ => 0,
    }
}

/// Per-hour and per-day window lengths, and the burst window, in ms.
pub fn windows(config: &Config) -> (u64, u64, u64) {
    (HOUR_MS, DAY_MS, config.burst_window_s * 1000)
}

/// Day index (UTC) of an event time: `fraud_number` fires once per number per day.
pub fn day_of(ts_ms: u64) -> u64 {
    ts_ms / DAY_MS
}

/// Days since activation at `now_ms`, from the subscribers table.
pub fn age_days(sub: Option<&Subscriber>, now_ms: u64) -> Option<u32> {
    let act = sub?.activated_ms?;
    let age = (now_ms as i64 - act).max(0) as u64;
    Some((age / DAY_MS) as u32)
}

/// Whether the callee is vulnerable (by age) and their age, when known.
pub fn vulnerability(c: &Config, sub: Option<&Subscriber>) -> (bool, Option<u8>) {
    let age = sub.and_then(|s| s.age);
    (age.is_some_and(|a| a >= c.elderly_age || a < c.minor_age), age)
}

fn raise(s: Severity) -> Severity {
    match s {
        Severity::Minor => Severity::Moderate,
        Severity::Moderate => Severity::Severe,
        Severity::Severe | Severity::Extreme => Severity::Extreme,
    }
}

fn shape(class: NumberClass) -> &'static str {
    if class.has(NumberClass::SPOOFED_SERVICE) {
        "a service number with an international prefix (spoofed)"
    } else if class.has(NumberClass::INTERNATIONAL) {
        "an international number"
    } else if class.has(NumberClass::VIRTUAL_OPERATOR) {
        "a virtual-operator number"
    } else if class.has(NumberClass::SERVICE) {
        "a service number"
    } else {
        "a local number"
    }
}

/// "1 person", "2 people".
fn people(n: u64) -> String {
    if n == 1 { "1 person".to_owned() } else { format!("{n} people") }
}

fn features_json(f: &Features, risk: f64) -> serde_json::Value {
    let mut v = serde_json::to_value(f).expect("features serialise");
    v["risk"] = serde_json::json!(risk);
    v["international"] = serde_json::json!(f.class.has(NumberClass::INTERNATIONAL));
    v["virtual_operator"] = serde_json::json!(f.class.has(NumberClass::VIRTUAL_OPERATOR));
    v["spoofed_service"] = serde_json::json!(f.class.has(NumberClass::SPOOFED_SERVICE));
    v["service"] = serde_json::json!(f.class.has(NumberClass::SERVICE));
    v
}

/// Where to send an alert about a person at `at_ms`: their registered home
/// (the registration in force then), else the serving cell.
pub fn person_pos(subs: &Subscribers, who: Token, cell_pos: Option<Point>, at_ms: u64) -> Option<Point> {
    subs.get_at(&who, at_ms).and_then(|s| s.home).or(cell_pos)
}

/// `fraud_in_progress` for the call `start`, still open at `at_ms`.
pub fn draft_in_progress(
    c: &Config,
    subs: &Subscribers,
    start: &CallEvent,
    at_ms: u64,
    f: &Features,
    risk: f64,
) -> AlertDraft {
    let sub = subs.get_at(&start.callee, at_ms);
    let (vulnerable, age) = vulnerability(c, sub.as_ref());
    let mut severity = if risk >= c.high_threshold() { Severity::Severe } else { Severity::Moderate };
    if vulnerable {
        severity = raise(severity);
    }
    let callee = token_hex(start.callee);
    let caller = token_hex(start.caller);
    let open_min = (at_ms - start.ts_ms) as f64 / 60_000.0;
    let who = match age {
        Some(a) => format!("subscriber {callee} (age {a})"),
        None => format!("subscriber {callee}"),
    };
    let reasons = c.model.reasons(f, at_ms);
    let why = if reasons.is_empty() { format!("fraud probability {:.0}%", risk * 100.0) } else { reasons.join("; ") };
    let summary = format!(
        "Possible fraud call in progress: {who} has been on the phone {open_min:.0} min with {} ({caller}): {why}",
        shape(f.class)
    );
    let action = format!(
        "Call {callee} now (in-app reveal of the number): tell them to hang up, not to transfer money or share codes, \
         and to call 110 if they already paid. If unreachable within 5 minutes, visit the home address."
    );
    let mut ev = features_json(f, risk);
    ev["reasons"] = serde_json::json!(reasons);
    ev["call_id"] = serde_json::json!(start.call_id);
    ev["call_ids"] = serde_json::json!([start.call_id]);
    ev["caller"] = serde_json::json!(caller);
    ev["callee"] = serde_json::json!(callee);
    ev["call_start_ts_ms"] = serde_json::json!(start.ts_ms);
    ev["open_s"] = serde_json::json!((at_ms - start.ts_ms) / 1000);
    ev["callee_age"] = serde_json::json!(age);
    ev["callee_vulnerable"] = serde_json::json!(vulnerable);
    ev["late_input"] = serde_json::json!(start.late);
    AlertDraft {
        kind: KIND_IN_PROGRESS.to_owned(),
        severity,
        score: risk + if vulnerable { c.vulnerable_bonus } else { 0.0 },
        event_ts_ms: at_ms,
        subject: callee,
        pos: person_pos(subs, start.callee, start.callee_pos, at_ms),
        cell: None,
        route: RouteLevel::Community,
        summary,
        evidence: ev.to_string(),
        action,
    }
}

/// Why a number is raised to the analysts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberReason {
    /// A fraud report named it.
    Reported,
    /// Its risk passed the high threshold during a call.
    HighRisk,
}

/// `fraud_number` for `number` at `at_ms`; `call_id` is the call it was judged on (if any).
pub fn draft_number(
    c: &Config,
    number: Token,
    at_ms: u64,
    f: &Features,
    risk: f64,
    reason: NumberReason,
    call_id: Option<u64>,
) -> AlertDraft {
    let n = token_hex(number);
    let why = match reason {
        NumberReason::Reported => "named in a fraud report",
        NumberReason::HighRisk => "fraud probability above the high threshold",
    };
    let reasons = c.model.reasons(f, at_ms);
    let summary = format!(
        "Fraud number {n} ({}): {why}; {}",
        shape(f.class),
        if reasons.is_empty() {
            format!("{} called today", people(u64::from(f.fanout_24h)))
        } else {
            reasons.join("; ")
        }
    );
    let action = format!(
        "Review {n}; ask the operator to suspend it and to list its current calls; \
         check its other callees for exposure alerts."
    );
    let mut ev = features_json(f, risk);
    ev["reasons"] = serde_json::json!(reasons);
    ev["number"] = serde_json::json!(n);
    ev["reason"] = serde_json::json!(match reason {
        NumberReason::Reported => "reported",
        NumberReason::HighRisk => "high_risk",
    });
    ev["call_ids"] = serde_json::json!(call_id.into_iter().collect::<Vec<_>>());
    AlertDraft {
        kind: KIND_NUMBER.to_owned(),
        severity: Severity::Severe,
        score: risk,
        event_ts_ms: at_ms,
        subject: n,
        pos: None,
        cell: None,
        route: RouteLevel::City,
        summary,
        evidence: ev.to_string(),
        action,
    }
}

/// One past call of a reported number, as kept for exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastCall {
    /// The call.
    pub call_id: u64,
    /// Its callee.
    pub callee: Token,
    /// When it ended.
    pub end_ms: u64,
    /// Talk time, seconds.
    pub duration_s: u32,
    /// The callee's serving cell at the end.
    pub callee_pos: Option<Point>,
}

/// `fraud_exposure` for the callee of `call`, after a report on `number` at `at_ms`.
pub fn draft_exposure(
    c: &Config,
    subs: &Subscribers,
    number: Token,
    call: &PastCall,
    at_ms: u64,
    alarm_id: u64,
) -> AlertDraft {
    let sub = subs.get_at(&call.callee, at_ms);
    let (vulnerable, age) = vulnerability(c, sub.as_ref());
    let severity = if vulnerable { Severity::Severe } else { Severity::Moderate };
    let callee = token_hex(call.callee);
    let n = token_hex(number);
    let ago_h = at_ms.saturating_sub(call.end_ms) as f64 / HOUR_MS as f64;
    let summary = format!(
        "Fraud exposure: subscriber {callee}{} talked {:.0} min with {n}, reported as fraud, {ago_h:.0} h ago",
        age.map(|a| format!(" (age {a})")).unwrap_or_default(),
        f64::from(call.duration_s) / 60.0
    );
    let action = format!(
        "Call {callee} now: ask whether they sent money or shared codes after the call with {n}; \
         if they did, help them call the bank and file a report; if unreachable, visit."
    );
    let ev = serde_json::json!({
        "call_id": call.call_id,
        "call_ids": [call.call_id],
        "number": n,
        "callee": callee,
        "duration_s": call.duration_s,
        "call_end_ts_ms": call.end_ms,
        "report_alarm_id": alarm_id,
        "callee_age": age,
        "callee_vulnerable": vulnerable,
    });
    AlertDraft {
        kind: KIND_EXPOSURE.to_owned(),
        severity,
        score: 0.5 + if vulnerable { c.vulnerable_bonus } else { 0.0 },
        event_ts_ms: at_ms,
        subject: callee,
        pos: person_pos(subs, call.callee, call.callee_pos, at_ms),
        cell: None,
        route: RouteLevel::Community,
        summary,
        evidence: ev.to_string(),
        action,
    }
}
