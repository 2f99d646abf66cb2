//! `eval::evaluate` on a small generated city: the model finds fraud, and the
//! figures are consistent (issue 4). Also checks that an in-progress alert never
//! fires after its call ended.

use std::collections::HashMap;

use citywatch_datasets::{GenOptions, generate};
use citywatch_engine::contract::CallPhase;
use citywatch_engine::event::Event;
use citywatch_engine::pseudonym::DEMO_KEY;
use citywatch_engine::replay::{ReplayOptions, merged_events, replay};
use citywatch_fraud_call::FraudCall;
use citywatch_fraud_call::eval::evaluate;

#[test]
fn issue_4_eval_on_a_small_city() {
    let dir = tempfile::tempdir().unwrap();
    let options = GenOptions {
        days: 2,
        subscribers: 60_000,
        seed: 7,
        out: dir.path().to_owned(),
        threads: Some(1),
        progress: false,
        ..GenOptions::default()
    };
    generate(&options).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), workers: 2, ..ReplayOptions::default() };
    // Default settings: the committed trees are trained with the other
    // decisions weighted to the generator's default fraud rate, this city's.
    let model = FraudCall::default();
    let out = replay(&opts, vec![Box::new(model)]).unwrap();
    let e = evaluate(dir.path(), &out.alerts, DEMO_KEY).unwrap();
    eprintln!("{e}");
    assert!(e.fraud_calls > 50, "the city has fraud: {}", e.fraud_calls);
    assert!(e.fraud_alerts > 0 && e.true_alerts <= e.fraud_alerts);
    assert!(e.precision >= 0.7, "precision {}", e.precision);
    assert!(e.alerted_before_loss <= e.fraud_calls_with_loss);
    assert!(e.recall >= e.share_alerted_before_loss);
    assert!(e.community_officers > 0 && e.shifts >= 3);
    let table = e.to_string();
    assert!(table.contains("precision") && table.contains("alerts/officer/shift"));
    let json = serde_json::to_value(&e).unwrap();
    assert!(json["lead_median_s"].is_number() || e.alerted_before_loss == 0);

    // Never after the call ended: every in-progress alert fires before its end row's time.
    let (events, _) = merged_events(&opts).unwrap();
    let ends: HashMap<u64, u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Call(c) if c.phase == CallPhase::End => Some((c.call_id, c.ts_ms)),
            _ => None,
        })
        .collect();
    for a in out.alerts.iter().filter(|a| a.kind == "fraud_in_progress") {
        let v: serde_json::Value = serde_json::from_str(&a.evidence).unwrap();
        let id = v["call_id"].as_u64().unwrap();
        if let Some(&end) = ends.get(&id) {
            assert!(
                (a.event_ts_ms as u64) < end,
                "alert {} fired at {} after its call ended at {end}",
                a.alert_id,
                a.event_ts_ms
            );
        }
    }
}

#[test]
fn issue_4_config_rejects_unknown_settings() {
    use citywatch_engine::model::Model;
    let mut m = FraudCall::default();
    assert!(m.configure(&serde_json::json!({"open_s": 90})).is_ok());
    assert_eq!(m.config.open_s, 90);
    assert!(m.configure(&serde_json::json!({"opn_s": 90})).is_err());
    assert!(m.configure(&serde_json::json!({"in_progress_threshold": 0.7})).is_ok());
    assert_eq!(m.config.threshold(), 0.7);
    assert!(m.configure(&serde_json::json!({"in_progress_threshold": 1.5})).is_err());
    // A precision target picks the weights file's threshold for it; one above its table is refused.
    assert!(m.configure(&serde_json::json!({"precision_target": 0.95})).is_ok());
    assert_eq!(Some(m.config.threshold()), m.config.model.file.threshold_for_precision(0.95));
    assert!(m.config.threshold() > m.config.model.file.threshold_for_precision(0.8).unwrap());
    let e = m.configure(&serde_json::json!({"precision_target": 0.999})).unwrap_err();
    assert!(e.to_string().contains("precision_target"), "{e}");
    let e = m.configure(&serde_json::json!({"weights_file": "/nonexistent/w.json"})).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/w.json"), "{e}");
    assert!(m.configure(&serde_json::json!({"open_s": 0})).is_err());
    assert_eq!(m.name(), "fraud_call");
}
