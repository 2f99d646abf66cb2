//! Replays a dataset with `fraud_call` (and `response_gap`, for the officers'
//! load), prints the fraud evaluation and the replay speed.
//!
//! `cargo run --release -p citywatch-fraud-call --example fraud_eval -- DIR [WORKERS] [CONFIG_JSON] [DUMP_CSV]`
//!
//! With `DUMP_CSV`, also writes one row per `fraud_in_progress` alert with its
//! features and whether the call is labelled fraud (for tuning the weights: run
//! with a low `in_progress_threshold`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use citywatch_engine::contract::Table;
use citywatch_engine::model::Model;
use citywatch_engine::parquet_io::require;
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::replay::{ReplayOptions, replay};
use citywatch_fraud_call::FraudCall;
use citywatch_fraud_call::eval::evaluate;
use citywatch_fraud_call::eval::read_fraud_labels;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let input = PathBuf::from(&args[1]);
    let workers: usize = args.get(2).map_or(2, |w| w.parse().expect("workers"));
    let mut model = FraudCall::default();
    if let Some(c) = args.get(3).filter(|c| !c.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(c).expect("config json");
        model.configure(&v).expect("config");
    }
    let models: Vec<Box<dyn Model>> = vec![Box::new(model), Box::new(citywatch_response_gap::ResponseGap::default())];
    let t = Instant::now();
    let opts = ReplayOptions { input: input.clone(), workers, ..ReplayOptions::default() };
    let out = replay(&opts, models).expect("replay");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "replay: {} events in {:.1} s = {:.0} events/s ({} workers), {} alerts",
        out.summary.events,
        secs,
        out.summary.events as f64 / secs,
        workers,
        out.alerts.len()
    );
    let e = evaluate(&input, &out.alerts, DEMO_KEY).expect("eval");
    println!("{e}");
    println!("{}", serde_json::to_string(&e).unwrap());
    if std::env::var("FRAUD_EVAL_MISSES").is_ok() {
        misses(&opts, &out.alerts);
    }
    if let Some(dump) = args.get(4).filter(|d| !d.is_empty()) {
        let files = require(&input, Table::FraudLabels, "labels").unwrap();
        let labels =
            read_fraud_labels(&files, &mut Pseudonymiser::new(DEMO_KEY, "86"), &mut Vec::new()).expect("labels");
        let by_call: HashMap<u64, Option<i64>> = labels.iter().map(|l| (l.call_id, l.loss_ts_ms)).collect();
        let mut w = std::io::BufWriter::new(std::fs::File::create(dump).unwrap());
        let cols = [
            "calls_1h",
            "fanout_1h",
            "calls_24h",
            "fanout_24h",
            "burst",
            "completed_24h",
            "short_24h",
            "new_callee_24h",
            "age_days",
            "seen_h",
            "reports",
            "linked_callees",
            "out_only_callees",
            "quiet_h",
            "international",
            "virtual_operator",
            "spoofed_service",
            "service",
            "callee_age",
        ];
        writeln!(w, "call_id,fraud,loss_lead_s,ts,{}", cols.join(",")).unwrap();
        for a in out.alerts.iter().filter(|a| a.kind == "fraud_in_progress") {
            let v: serde_json::Value = serde_json::from_str(&a.evidence).unwrap();
            let id = v["call_id"].as_u64().unwrap();
            let (fraud, lead) = match by_call.get(&id) {
                Some(Some(loss)) => (1, (loss - a.event_ts_ms) / 1000),
                Some(None) => (1, -1),
                None => (0, -1),
            };
            let vals: Vec<String> = cols
                .iter()
                .map(|c| match &v[*c] {
                    serde_json::Value::Bool(b) => u8::from(*b).to_string(),
                    serde_json::Value::Null => "".to_owned(),
                    x => x.to_string(),
                })
                .collect();
            writeln!(w, "{id},{fraud},{lead},{},{}", a.event_ts_ms, vals.join(",")).unwrap();
        }
    }
}

/// Prints, for each loss not alerted before it, the fraud number's shape and history.
fn misses(opts: &ReplayOptions, alerts: &[citywatch_engine::alert::Alert]) {
    use citywatch_engine::contract::CallPhase;
    use citywatch_engine::event::Event;
    let (events, reference) = citywatch_engine::replay::merged_events(opts).expect("events");
    let files = require(&opts.input, Table::FraudLabels, "labels").unwrap();
    let labels = read_fraud_labels(&files, &mut Pseudonymiser::new(DEMO_KEY, "86"), &mut Vec::new()).unwrap();
    let mut alerted: HashMap<u64, i64> = HashMap::new();
    for a in alerts.iter().filter(|a| a.model == "fraud_call") {
        let v: serde_json::Value = serde_json::from_str(&a.evidence).unwrap_or_default();
        if let Some(id) = v["call_id"].as_u64() {
            let e = alerted.entry(id).or_insert(a.event_ts_ms);
            *e = (*e).min(a.event_ts_ms);
        }
    }
    let starts: HashMap<u64, citywatch_engine::event::CallEvent> = events
        .iter()
        .filter_map(|e| match e {
            Event::Call(c) if c.phase == CallPhase::Start => Some((c.call_id, *c)),
            _ => None,
        })
        .collect();
    let mut tally: HashMap<String, (usize, usize)> = HashMap::new();
    for l in labels.iter().filter(|l| l.loss_ts_ms.is_some()) {
        let Some(s) = starts.get(&l.call_id) else { continue };
        let prior: std::collections::HashSet<u64> = starts
            .values()
            .filter(|c| c.caller == s.caller && c.ts_ms < s.ts_ms && c.ts_ms + 86_400_000 > s.ts_ms)
            .map(|c| c.callee)
            .collect();
        let young = reference
            .subscribers
            .get_at(&s.caller, s.ts_ms)
            .and_then(|x| x.activated_ms)
            .map(|a| (s.ts_ms as i64 - a) < 90 * 86_400_000);
        let shape = if s.caller_class.has(citywatch_engine::pseudonym::NumberClass::SPOOFED_SERVICE) {
            "spoofed"
        } else if s.caller_class.is_risky_prefix() {
            "intl/virtual"
        } else {
            match young {
                Some(true) => "local young",
                Some(false) => "local old",
                None => "local unregistered",
            }
        };
        let fanout = match prior.len() {
            0 => "0 prior callees/24h",
            1..=11 => "1-11 prior callees/24h",
            _ => "12+ prior callees/24h",
        };
        let hit = alerted.get(&l.call_id).is_some_and(|&t| t < l.loss_ts_ms.unwrap_or(0));
        let e = tally.entry(format!("{shape:20} {fanout}")).or_default();
        e.0 += 1;
        e.1 += usize::from(hit);
    }
    let mut rows: Vec<_> = tally.into_iter().collect();
    rows.sort();
    println!("losses by number shape and prior fan-out: (losses, alerted before loss by call)");
    for (k, (n, hit)) in rows {
        println!("  {k:45} {n:4} {hit:4}");
    }
}
