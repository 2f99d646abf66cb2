//! Evaluation of fraud alerts against a dataset's labels (`citywatch eval`).
//!
//! Works on any dataset with `labels/fraud_calls` (call_id, caller, victim,
//! loss_ts_ms), generated or not; the numbers in the labels are pseudonymised
//! with the same key as the replay, so they meet the alerts' subjects.
//!
//! Definitions (the model card repeats them with the figures):
//! - An alert of model `fraud_call` **concerns** a labelled call when its
//!   evidence lists the call's id (`call_ids` or `call_id`), or when it is a
//!   victim-facing alert (`fraud_in_progress`, `fraud_exposure`) whose subject is
//!   the call's victim and whose evidence names the same fraud number (`caller`
//!   or `number`: an earlier call of a grooming sequence, an exposure), fired no
//!   earlier than [`VICTIM_WINDOW_MS`] before the loss.
//! - **Alerted before the loss**: some concerning alert fired strictly before
//!   `loss_ts_ms`; its **lead time** is the loss time minus the earliest such alert.
//! - **Precision**: share of `fraud_call` alerts that concern a labelled fraud
//!   call or its callee: evidence names a labelled call, or the subject is a
//!   labelled victim and the evidence names a labelled fraud number, or (for
//!   `fraud_number`) the subject is a labelled fraud number.
//! - **Recall**: share of labelled fraud calls with a loss concerned by some
//!   alert at all (before or after the loss).
//! - **Load**: alerts of *all* models per community officer (officers table,
//!   role `community`, by `assignee`) per 8-hour shift (local shifts of UTC+8:
//!   00-08, 08-16, 16-24), over every shift from the first to the last alert;
//!   median and p95 over all officer-shifts, and over the officer-shifts that
//!   had at least one alert.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use citywatch_engine::alert::Alert;
use citywatch_engine::columns::{Strs, col, for_each_row, number_of, prim};
use citywatch_engine::contract::{Role, Table};
use citywatch_engine::load::read_officers;
use citywatch_engine::parquet_io::{TableFiles, locate, require};
use citywatch_engine::pseudonym::{Pseudonymiser, Token, token_hex};
use citywatch_engine::reject::Rejected;
use citywatch_engine::{Error, Result};

use crate::features::{KIND_EXPOSURE, KIND_IN_PROGRESS, KIND_NUMBER};

/// How long before a loss a victim-facing alert on the victim still counts as a warning.
pub const VICTIM_WINDOW_MS: i64 = 24 * 3_600_000;
const SHIFT_MS: i64 = 8 * 3_600_000;
/// Local time is UTC+8: shifts start at 00, 08, 16 local.
const SHIFT_OFFSET_MS: i64 = 8 * 3_600_000;

/// Alerts and how many concern labelled fraud, for one kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KindFigures {
    /// Alert kind.
    pub kind: String,
    /// Alerts of that kind.
    pub alerts: usize,
    /// Of those, concerning a labelled fraud call, its victim or its number.
    pub true_alerts: usize,
}

/// Figures for one scenario family (`labels/families.json`; without that
/// file every fraud number is `standard` and every other caller `everyday`).
/// Losses are attributed to the family of the fraud number that caused them,
/// alerts to the family of the number their evidence names (`caller` or
/// `number`): a legitimate family's alerts are all false.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FamilyFigures {
    /// Family name.
    pub family: String,
    /// Labelled fraud calls with a loss from this family's numbers.
    pub losses: usize,
    /// Of those, warned strictly before the loss.
    pub warned: usize,
    /// Median lead time, seconds.
    pub lead_median_s: Option<f64>,
    /// Alerts naming a number of this family.
    pub alerts: usize,
    /// Of those, true (as for precision).
    pub true_alerts: usize,
}

/// The fraud evaluation (issue 4's list).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FraudEval {
    /// The model scored (`fraud_call`, or `simple_rule` for the baseline).
    pub model: String,
    /// Labelled fraud calls.
    pub fraud_calls: usize,
    /// Labelled fraud calls with a loss.
    pub fraud_calls_with_loss: usize,
    /// Of those, alerted strictly before the loss.
    pub alerted_before_loss: usize,
    /// `alerted_before_loss / fraud_calls_with_loss`.
    pub share_alerted_before_loss: f64,
    /// Median lead time before the loss, seconds (over calls alerted before the loss).
    pub lead_median_s: Option<f64>,
    /// 10th percentile of the lead time, seconds (the short leads).
    pub lead_p10_s: Option<f64>,
    /// Alerts of model `fraud_call`.
    pub fraud_alerts: usize,
    /// Of those, concerning a labelled fraud call, its callee, or its number.
    pub true_alerts: usize,
    /// `true_alerts / fraud_alerts`.
    pub precision: f64,
    /// Share of fraud calls with a loss concerned by some alert at all.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Per kind.
    pub by_kind: Vec<KindFigures>,
    /// Community officers in the officers table.
    pub community_officers: usize,
    /// 8-hour shifts spanned by the alerts.
    pub shifts: usize,
    /// Alerts (all models) per community officer per shift: median over all officer-shifts.
    pub load_median: f64,
    /// ... 95th percentile over all officer-shifts.
    pub load_p95: f64,
    /// Median over officer-shifts with at least one alert.
    pub busy_load_median: f64,
    /// 95th percentile over officer-shifts with at least one alert.
    pub busy_load_p95: f64,
    /// Per scenario family.
    pub families: Vec<FamilyFigures>,
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn median(sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    Some(if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 })
}

/// The call ids an alert's evidence names.
fn call_ids(evidence: &str) -> Vec<u64> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(evidence) else { return Vec::new() };
    let mut out: Vec<u64> =
        v["call_ids"].as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default();
    if let Some(id) = v["call_id"].as_u64() {
        out.push(id);
    }
    out
}

/// The fraud number an alert's evidence names (`caller` or `number`).
fn evidence_number(evidence: &str) -> Option<String> {
    let v = serde_json::from_str::<serde_json::Value>(evidence).ok()?;
    v["caller"].as_str().or(v["number"].as_str()).map(str::to_owned)
}

/// The scenario family of each number (`labels/families.json`, written by
/// `citywatch gen --families`), by pseudonym hex; empty without the file.
pub fn read_families(dataset_dir: &Path, pseudonym_key: &str) -> Result<HashMap<String, String>> {
    let path = dataset_dir.join("labels").join("families.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |why: String| Error::config(path.display().to_string(), why);
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let numbers = v["numbers"].as_object().ok_or_else(|| bad("no `numbers` object".into()))?;
    let mut ps = Pseudonymiser::new(pseudonym_key, "86");
    let mut out = HashMap::with_capacity(numbers.len());
    for (number, family) in numbers {
        let family = family.as_str().ok_or_else(|| bad(format!("family of {number} is not a string")))?;
        out.insert(token_hex(ps.pseudonymise(number).0), family.to_owned());
    }
    Ok(out)
}

/// Evaluates the alerts of model `fraud_call` against the labels of the dataset in `dataset_dir`.
pub fn evaluate(dataset_dir: &Path, alerts: &[Alert], pseudonym_key: &str) -> Result<FraudEval> {
    evaluate_model(dataset_dir, alerts, pseudonym_key, "fraud_call")
}

/// Evaluates the alerts of `model` (e.g. [`rule::MODEL`](crate::rule::MODEL)); load counts only that model's alerts
/// when it is not `fraud_call`.
pub fn evaluate_model(dataset_dir: &Path, alerts: &[Alert], pseudonym_key: &str, model: &str) -> Result<FraudEval> {
    let files = require(dataset_dir, Table::FraudLabels, "fraud evaluation needs labels/fraud_calls")?;
    let mut ps = Pseudonymiser::new(pseudonym_key, "86");
    let mut rejects = Vec::new();
    let labels = read_fraud_labels(&files, &mut ps, &mut rejects)?;
    if let Some(r) = rejects.first() {
        return Err(Error::config(
            format!("labels in {}", dataset_dir.display()),
            format!("{} bad label row(s), first: {r:?}", rejects.len()),
        ));
    }
    let officers = match locate(dataset_dir, Table::Officers)? {
        Some(f) => read_officers(&f, &mut rejects)?,
        None => Vec::new(),
    };

    let by_call: HashMap<u64, usize> = labels.iter().enumerate().map(|(i, l)| (l.call_id, i)).collect();
    let victims: HashSet<String> = labels.iter().map(|l| token_hex(l.victim)).collect();
    let numbers: HashSet<String> = labels.iter().map(|l| token_hex(l.caller)).collect();
    let fraud: Vec<&Alert> = alerts.iter().filter(|a| a.model == model).collect();
    let family_of = read_families(dataset_dir, pseudonym_key)?;
    let family = |number: Option<&str>| -> String {
        match number.and_then(|n| family_of.get(n)) {
            Some(f) => f.clone(),
            None if number.is_some_and(|n| numbers.contains(n)) => "standard".to_owned(),
            None => "everyday".to_owned(),
        }
    };
    let mut fams: Vec<FamilyFigures> = Vec::new();
    fn fam_entry(fams: &mut Vec<FamilyFigures>, name: String) -> &mut FamilyFigures {
        match fams.iter().position(|f| f.family == name) {
            Some(i) => &mut fams[i],
            None => {
                fams.push(FamilyFigures {
                    family: name,
                    losses: 0,
                    warned: 0,
                    lead_median_s: None,
                    alerts: 0,
                    true_alerts: 0,
                });
                fams.last_mut().expect("pushed")
            }
        }
    }

    // Victim-facing alerts by subject, and labelled calls named in evidence.
    let mut on_subject: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let mut on_call: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut kinds: Vec<KindFigures> = Vec::new();
    let mut true_alerts = 0;
    for a in &fraud {
        let ids = call_ids(&a.evidence);
        let victim_facing = a.kind == KIND_IN_PROGRESS || a.kind == KIND_EXPOSURE;
        let mut hit = false;
        for id in ids {
            if by_call.contains_key(&id) {
                on_call.entry(id).or_default().push(a.event_ts_ms);
                hit = true;
            }
        }
        // A victim-facing alert about a labelled victim and a labelled fraud number.
        let number = evidence_number(&a.evidence);
        let about_fraud_number = number.as_deref().is_some_and(|n| numbers.contains(n));
        if victim_facing && victims.contains(&a.subject) && about_fraud_number {
            let n = number.unwrap_or_default();
            on_subject.entry((a.subject.clone(), n)).or_default().push(a.event_ts_ms);
            hit = true;
        }
        hit |= a.kind == KIND_NUMBER && numbers.contains(&a.subject);
        true_alerts += usize::from(hit);
        let named = if a.kind == KIND_NUMBER { Some(a.subject.clone()) } else { evidence_number(&a.evidence) };
        let f = fam_entry(&mut fams, family(named.as_deref()));
        f.alerts += 1;
        f.true_alerts += usize::from(hit);
        let k = match kinds.iter_mut().position(|k| k.kind == a.kind) {
            Some(i) => &mut kinds[i],
            None => {
                kinds.push(KindFigures { kind: a.kind.clone(), alerts: 0, true_alerts: 0 });
                kinds.last_mut().expect("pushed")
            }
        };
        k.alerts += 1;
        k.true_alerts += usize::from(hit);
    }
    kinds.sort_by(|a, b| a.kind.cmp(&b.kind));

    let mut with_loss = 0;
    let mut before = 0;
    let mut at_all = 0;
    let mut leads: Vec<f64> = Vec::new();
    let mut fam_leads: HashMap<String, Vec<f64>> = HashMap::new();
    for l in &labels {
        let Some(loss) = l.loss_ts_ms else { continue };
        with_loss += 1;
        let fam_name = family(Some(&token_hex(l.caller)));
        fam_entry(&mut fams, fam_name.clone()).losses += 1;
        let pair = (token_hex(l.victim), token_hex(l.caller));
        let times = on_call
            .get(&l.call_id)
            .into_iter()
            .flatten()
            .copied()
            .chain(on_subject.get(&pair).into_iter().flatten().copied().filter(|&t| t >= loss - VICTIM_WINDOW_MS));
        let times: Vec<i64> = times.collect();
        if !times.is_empty() {
            at_all += 1;
        }
        if let Some(first) = times.iter().copied().filter(|&t| t < loss).min() {
            before += 1;
            leads.push((loss - first) as f64 / 1000.0);
            fam_entry(&mut fams, fam_name.clone()).warned += 1;
            fam_leads.entry(fam_name).or_default().push((loss - first) as f64 / 1000.0);
        }
    }
    for f in &mut fams {
        if let Some(v) = fam_leads.get_mut(&f.family) {
            v.sort_by(f64::total_cmp);
            f.lead_median_s = median(v);
        }
    }
    fams.sort_by(|a, b| a.family.cmp(&b.family));
    leads.sort_by(f64::total_cmp);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(true_alerts, fraud.len());
    let recall = ratio(at_all, with_loss);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };

    // Load per community officer per shift, over all models.
    let community: HashSet<&str> =
        officers.iter().filter(|o| o.role == Role::Community).map(|o| o.officer_id.as_str()).collect();
    let shift_of = |ts: i64| (ts + SHIFT_OFFSET_MS).div_euclid(SHIFT_MS);
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut counts: HashMap<(&str, i64), usize> = HashMap::new();
    let counted = |a: &&Alert| model == "fraud_call" || a.model == model;
    for a in alerts.iter().filter(counted) {
        let s = shift_of(a.event_ts_ms);
        first = first.min(s);
        last = last.max(s);
        if let Some(who) = a.assignee.as_deref().filter(|w| community.contains(w)) {
            *counts.entry((who, s)).or_default() += 1;
        }
    }
    let shifts = if first > last { 0 } else { (last - first + 1) as usize };
    let mut busy: Vec<f64> = counts.values().map(|&c| c as f64).collect();
    busy.sort_by(f64::total_cmp);
    let slots = community.len() * shifts;
    let mut all: Vec<f64> = vec![0.0; slots.saturating_sub(busy.len())];
    all.extend(busy.iter().copied());
    all.sort_by(f64::total_cmp);

    Ok(FraudEval {
        model: model.to_owned(),
        fraud_calls: labels.len(),
        fraud_calls_with_loss: with_loss,
        alerted_before_loss: before,
        share_alerted_before_loss: ratio(before, with_loss),
        lead_median_s: median(&leads),
        lead_p10_s: percentile(&leads, 0.1),
        fraud_alerts: fraud.len(),
        true_alerts,
        precision,
        recall,
        f1,
        by_kind: kinds,
        community_officers: community.len(),
        shifts,
        load_median: median(&all).unwrap_or(0.0),
        load_p95: percentile(&all, 0.95).unwrap_or(0.0),
        busy_load_median: median(&busy).unwrap_or(0.0),
        busy_load_p95: percentile(&busy, 0.95).unwrap_or(0.0),
        families: fams,
    })
}

impl fmt::Display for FraudEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let mins = |x: Option<f64>| x.map_or("-".to_owned(), |s| format!("{:.1} min", s / 60.0));
        let rows: Vec<(String, String)> = vec![
            ("fraud calls (labelled)".into(), self.fraud_calls.to_string()),
            ("fraud calls with a loss".into(), self.fraud_calls_with_loss.to_string()),
            (
                "alerted before the loss".into(),
                format!("{} ({})", self.alerted_before_loss, pct(self.share_alerted_before_loss)),
            ),
            ("lead time before loss, median".into(), mins(self.lead_median_s)),
            ("lead time before loss, p10".into(), mins(self.lead_p10_s)),
            ("fraud alerts".into(), self.fraud_alerts.to_string()),
            ("precision".into(), format!("{} ({} of {})", pct(self.precision), self.true_alerts, self.fraud_alerts)),
            ("recall (loss calls alerted at all)".into(), pct(self.recall)),
            ("F1".into(), format!("{:.3}", self.f1)),
        ];
        let mut rows = rows;
        for k in &self.by_kind {
            rows.push((format!("  {}", k.kind), format!("{} alerts, {} true", k.alerts, k.true_alerts)));
        }
        rows.push(("community officers x shifts".into(), format!("{} x {}", self.community_officers, self.shifts)));
        rows.push((
            "alerts/officer/shift (all shifts)".into(),
            format!("median {:.1}, p95 {:.1}", self.load_median, self.load_p95),
        ));
        rows.push((
            "alerts/officer/shift (shifts with alerts)".into(),
            format!("median {:.1}, p95 {:.1}", self.busy_load_median, self.busy_load_p95),
        ));
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        writeln!(f, "{:<w$}  value", format!("fraud evaluation: {}", self.model))?;
        writeln!(f, "{}  {}", "-".repeat(w), "-".repeat(24))?;
        for (k, v) in rows {
            writeln!(f, "{k:<w$}  {v}")?;
        }
        if !self.families.is_empty() {
            writeln!(f, "by family: losses, warned before the loss, median lead, alerts naming its numbers (true)")?;
            for g in &self.families {
                let warned = if g.losses == 0 { "-".to_owned() } else { pct(g.warned as f64 / g.losses as f64) };
                writeln!(
                    f,
                    "  {:<14} {:>5} {:>6} ({warned:>6})  lead {:>9}  alerts {:>6} ({} true)",
                    g.family,
                    g.losses,
                    g.warned,
                    mins(g.lead_median_s),
                    g.alerts,
                    g.true_alerts
                )?;
            }
        }
        Ok(())
    }
}

/// The model and the simple rule side by side: per family (losses, warned
/// before the loss, median lead, alerts naming its numbers) and over the
/// whole dataset (precision, load).
pub fn side_by_side(model: &FraudEval, rule: &FraudEval) -> String {
    use std::fmt::Write as _;
    let pct = |a: usize, b: usize| if b == 0 { "-".to_owned() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) };
    let mins = |x: Option<f64>| x.map_or("-".to_owned(), |s| format!("{:.1}", s / 60.0));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model vs simple rule ({}: >= {} callees in 1 h, median talk <= {} s, at {} s)",
        crate::rule::MODEL,
        crate::rule::MIN_CALLEES,
        crate::rule::MAX_MEDIAN_TALK_S,
        crate::rule::OPEN_S
    );
    let _ = writeln!(
        out,
        "{:<14} {:>6} | {:>8} {:>9} {:>8} | {:>8} {:>9} {:>8}",
        "family", "losses", "warned", "lead min", "alerts", "warned", "lead min", "alerts"
    );
    let mut names: Vec<&str> = model.families.iter().chain(&rule.families).map(|f| f.family.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let empty = |n: &str| FamilyFigures {
        family: n.to_owned(),
        losses: 0,
        warned: 0,
        lead_median_s: None,
        alerts: 0,
        true_alerts: 0,
    };
    for n in names {
        let m = model.families.iter().find(|f| f.family == n).cloned().unwrap_or_else(|| empty(n));
        let r = rule.families.iter().find(|f| f.family == n).cloned().unwrap_or_else(|| empty(n));
        let losses = m.losses.max(r.losses);
        let _ = writeln!(
            out,
            "{n:<14} {losses:>6} | {:>8} {:>9} {:>8} | {:>8} {:>9} {:>8}",
            pct(m.warned, m.losses),
            mins(m.lead_median_s),
            m.alerts,
            pct(r.warned, r.losses),
            mins(r.lead_median_s),
            r.alerts
        );
    }
    for (name, e) in [("model", model), ("rule", rule)] {
        let _ = writeln!(
            out,
            "{name:<6} all: warned {} of {} losses ({}), median lead {} min, precision {} ({} of {}), alerts/community officer/shift median {:.1} (busy shifts: median {:.1}, p95 {:.1})",
            e.alerted_before_loss,
            e.fraud_calls_with_loss,
            pct(e.alerted_before_loss, e.fraud_calls_with_loss),
            mins(e.lead_median_s),
            pct(e.true_alerts, e.fraud_alerts),
            e.true_alerts,
            e.fraud_alerts,
            e.load_median,
            e.busy_load_median,
            e.busy_load_p95
        );
    }
    out
}

/// One row of `labels/fraud_calls`, numbers pseudonymised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FraudLabel {
    /// The fraud call.
    pub call_id: u64,
    /// Fraudster's pseudonym.
    pub caller: Token,
    /// Victim's pseudonym.
    pub victim: Token,
    /// When money left the victim, if it did.
    pub loss_ts_ms: Option<i64>,
}

/// Reads the fraud labels (this model's evaluation and training input; the
/// engine never reads them).
// A rejected row is the cold path: boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub fn read_fraud_labels(
    files: &TableFiles,
    ps: &mut Pseudonymiser,
    rejects: &mut Vec<Rejected>,
) -> Result<Vec<FraudLabel>> {
    let t = Table::FraudLabels;
    let mut out = Vec::new();
    for_each_row(files, |ctx, b, m| {
        let call_id = col(b, m, t, "call_id").as_primitive::<UInt64Type>();
        let caller = Strs::new(col(b, m, t, "caller"));
        let victim = Strs::new(col(b, m, t, "victim"));
        let loss = col(b, m, t, "loss_ts_ms").as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let row = (|| -> Result<FraudLabel, Rejected> {
                let call_id = prim(call_id, i).ok_or_else(|| ctx.null(i, "call_id"))?;
                let (caller, _) =
                    number_of(ctx, i, "caller", caller.get(i), ps)?.ok_or_else(|| ctx.null(i, "caller"))?;
                let (victim, _) =
                    number_of(ctx, i, "victim", victim.get(i), ps)?.ok_or_else(|| ctx.null(i, "victim"))?;
                Ok(FraudLabel { call_id, caller, victim, loss_ts_ms: prim(loss, i) })
            })();
            match row {
                Ok(l) => out.push(l),
                Err(r) => rejects.push(r),
            }
        }
        Ok(())
    })?;
    Ok(out)
}
