//! `evaluate_dataset` works on any dataset folder with alarms (here a random one),
//! with or without an alerts folder from a replay.

use citywatch_engine::replay::{ReplayOptions, replay};
use citywatch_engine::testkit::{RandomSpec, T0_MS, write_random_dataset};
use citywatch_risk_hotspot::RiskHotspot;
use citywatch_risk_hotspot::eval::{EvalOptions, evaluate_dataset};

#[test]
fn evaluates_a_dataset_folder_and_a_replays_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let spec =
        RandomSpec { seed: 9, alarms: 300, units: 4, calls: 10, span_ms: 3 * 86_400_000, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = EvalOptions { score_from_ms: Some(T0_MS as u64 + 86_400_000), ..EvalOptions::default() };
    let e = evaluate_dataset(dir.path(), &opts).unwrap();
    assert_eq!(e.rows.len(), 2 * 2 * 6 * 2, "crimes x horizons x methods (model, 3 naive, kde, ceiling) x shares");
    assert_eq!(e.comparisons.len(), 2 * 2 * 2, "crimes x horizons x shares");
    assert!(e.rows.iter().any(|r| r.periods > 0 && r.incidents > 0), "{e}");
    assert!(e.to_string().contains("risk_hotspot"));
    let replayed = e.near_repeat.clone().expect("the random data has burglaries");

    let out = tempfile::tempdir().unwrap();
    let ropts = ReplayOptions {
        input: dir.path().to_owned(),
        out: Some(out.path().to_owned()),
        lateness_ms: 20_000,
        ..ReplayOptions::default()
    };
    replay(&ropts, vec![Box::new(RiskHotspot::default())]).unwrap();
    let with_alerts =
        evaluate_dataset(dir.path(), &EvalOptions { alerts: Some(out.path().to_owned()), ..opts }).unwrap();
    let from_alerts = with_alerts.near_repeat.unwrap();
    assert_eq!(from_alerts.follow_ups, replayed.follow_ups);
    assert_eq!(from_alerts.alerts, replayed.alerts, "the replayed rule is the model's rule");
    assert_eq!(from_alerts.captured, replayed.captured);
}
