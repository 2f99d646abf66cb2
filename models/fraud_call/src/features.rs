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

/// The caller's risk score: a sum of points, each feature's share explained in
/// the model card. 1.0 means "as suspicious as a spoofed service number".
pub fn score(c: &Config, f: &Features) -> f64 {
    let w = &c.weights;
    let mut s = 0.0;
    if f.class.has(NumberClass::SPOOFED_SERVICE) {
        s += w.spoofed_service;
    } else if f.class.has(NumberClass::SERVICE) {
        s += w.service;
    }
    if f.class.has(NumberClass::INTERNATIONAL) {
        s += w.international;
    }
    if f.class.has(NumberClass::VIRTUAL_OPERATOR) {
        s += w.virtual_operator;
    }
    if f.class.is_risky_prefix() && f.fanout_24h >= 2 {
        s += w.risky_fanout;
    }
    if f.fanout_24h >= c.stranger_fanout_min
        && f64::from(f.new_callee_24h) >= c.stranger_new_share * f64::from(f.calls_24h)
    {
        s += w.stranger_fanout;
    }
    if f.fanout_1h >= c.fanout_1h_min {
        s += w.fanout_1h;
    }
    if f.burst >= c.burst_min {
        s += w.burst;
    }
    if f.completed_24h >= c.min_calls_for_share {
        s += w.short_share * f64::from(f.short_24h) / f64::from(f.completed_24h);
    }
    if f.calls_24h >= c.min_calls_for_share {
        s += w.new_callee_share * f64::from(f.new_callee_24h) / f64::from(f.calls_24h);
    }
    let young = f.age_days.is_some_and(|d| d < c.young_number_days);
    if young {
        s += w.young_number;
    }
    // Only calls out: many callees since it last answered a call, and either a
    // long silence or no answered call at all since it appeared while calling
    // strangers only.
    let outbound = f.out_only_callees >= c.outbound_only_min
        && (f.quiet_h >= c.quiet_min_h || (f.quiet_h >= f.seen_h && f.new_callee_24h == f.calls_24h));
    if young && outbound {
        s += w.young_outbound;
    }
    if f.reports > 0 {
        s += w.reported;
    }
    if f.linked_callees >= c.linked_min.max(1) {
        s += w.linked;
    }
    (s * 1000.0).round() / 1000.0
}

/// The highest score a caller can have whatever its counts: the exact points of
/// its number shape, age and reports, plus every positive count-based weight
/// that can apply to it (the risky-prefix fan-out only to a risky prefix).
/// A check whose bound is below both thresholds cannot alert, so the dataflow
/// skips computing its features (most callers: old local numbers, not reported).
/// Counting the risky-prefix fan-out for every number put the default bound of
/// an old local number at 0.8, above the 0.6 threshold, so no check was ever
/// skipped; without it the bound is 0.5.
pub fn score_bound(c: &Config, class: NumberClass, age_days: Option<u32>, reported: bool) -> f64 {
    let w = &c.weights;
    let f = Features { class, age_days, reports: u32::from(reported), ..Features::default() };
    let mut s = 0.0;
    if class.has(NumberClass::SPOOFED_SERVICE) {
        s += w.spoofed_service;
    } else if class.has(NumberClass::SERVICE) {
        s += w.service;
    }
    if class.has(NumberClass::INTERNATIONAL) {
        s += w.international;
    }
    if class.has(NumberClass::VIRTUAL_OPERATOR) {
        s += w.virtual_operator;
    }
    if f.age_days.is_some_and(|d| d < c.young_number_days) {
        s += w.young_number + w.young_outbound.max(0.0);
    }
    if reported {
        s += w.reported;
    }
    let risky_fanout = if class.is_risky_prefix() { w.risky_fanout } else { 0.0 };
    let counts = [risky_fanout, w.stranger_fanout, w.fanout_1h, w.burst, w.short_share, w.new_callee_share, w.linked];
    s + counts.iter().map(|x| x.max(0.0)).sum::<f64>()
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

/// Where to send an alert about a person: their registered home, else the serving cell.
pub fn person_pos(subs: &Subscribers, who: Token, cell_pos: Option<Point>) -> Option<Point> {
    subs.get(&who).and_then(|s| s.home).or(cell_pos)
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
    let sub = subs.get(&start.callee);
    let (vulnerable, age) = vulnerability(c, sub);
    let mut severity = if risk >= c.number_threshold { Severity::Severe } else { Severity::Moderate };
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
    let why = if f.reports > 0 {
        "already reported for fraud".to_owned()
    } else {
        format!("{} called in the last hour, {} today", people(u64::from(f.fanout_1h)), f.fanout_24h)
    };
    let summary = format!(
        "Possible fraud call in progress: {who} has been on the phone {open_min:.0} min with {} ({caller}; {why})",
        shape(f.class)
    );
    let action = format!(
        "Call {callee} now (in-app reveal of the number): tell them to hang up, not to transfer money or share codes, \
         and to call 110 if they already paid. If unreachable within 5 minutes, visit the home address."
    );
    let mut ev = features_json(f, risk);
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
        pos: person_pos(subs, start.callee, start.callee_pos),
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
        NumberReason::HighRisk => "risk above the high threshold",
    };
    let summary = format!(
        "Fraud number {n} ({}): {why}; {} called today, {} report(s)",
        shape(f.class),
        people(u64::from(f.fanout_24h)),
        f.reports
    );
    let action = format!(
        "Review {n}; ask the operator to suspend it and to list its current calls; \
         check its other callees for exposure alerts."
    );
    let mut ev = features_json(f, risk);
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
    let sub = subs.get(&call.callee);
    let (vulnerable, age) = vulnerability(c, sub);
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
        pos: person_pos(subs, call.callee, call.callee_pos),
        cell: None,
        route: RouteLevel::Community,
        summary,
        evidence: ev.to_string(),
        action,
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The dataflow skips a check whose bound is below the thresholds: a score
    /// above its bound would be an alert lost. Random weights (negative ones
    /// too), shapes and counts.
    #[test]
    fn score_never_exceeds_its_bound() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut skippable = 0;
        for case in 0..20_000 {
            let mut c = Config::default();
            if case % 2 == 1 {
                let mut w = || rng.random_range(-1.0..1.0);
                c.weights = crate::Weights {
                    spoofed_service: w(),
                    service: w(),
                    international: w(),
                    virtual_operator: w(),
                    risky_fanout: w(),
                    stranger_fanout: w(),
                    fanout_1h: w(),
                    burst: w(),
                    short_share: w(),
                    new_callee_share: w(),
                    young_number: w(),
                    reported: w(),
                    linked: w(),
                    young_outbound: w(),
                };
            }
            let calls_24h = rng.random_range(0..30);
            let completed_24h = rng.random_range(0..=calls_24h);
            let f = Features {
                // Every combination of the four flags (the type has no
                // constructor from bits; it deserialises from them).
                class: serde_json::from_value(serde_json::json!(rng.random_range(0..16u8))).expect("a class"),
                calls_1h: rng.random_range(0..=calls_24h),
                fanout_1h: rng.random_range(0..=calls_24h),
                calls_24h,
                fanout_24h: rng.random_range(0..=calls_24h),
                burst: rng.random_range(0..=calls_24h),
                completed_24h,
                short_24h: rng.random_range(0..=completed_24h),
                new_callee_24h: rng.random_range(0..=calls_24h),
                age_days: rng.random_bool(0.7).then(|| rng.random_range(0..400)),
                seen_h: rng.random_range(0..200),
                reports: rng.random_range(0..3),
                linked_callees: rng.random_range(0..6),
                out_only_callees: rng.random_range(0..30),
                quiet_h: rng.random_range(0..200),
            };
            let bound = score_bound(&c, f.class, f.age_days, f.reports > 0);
            assert!(score(&c, &f) <= bound + 0.001, "case {case}: {f:?} scores over its bound {bound}");
            skippable += u32::from(case % 2 == 0 && bound + 0.001 < c.in_progress_threshold);
        }
        // With the default weights, the old local numbers are skipped.
        assert!(skippable > 0);
    }
}
