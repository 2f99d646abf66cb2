//! The dataflow gives exactly the reference's alerts, with 1, 2 and 4 workers,
//! on seeded random inputs (messy: disorder within and beyond the lateness).

use citywatch_engine::replay::{ReplayOptions, merged_events, replay};
use citywatch_engine::testkit::{RandomSpec, assert_alerts_for_1_2_4_workers, write_random_dataset};
use citywatch_response_gap::{Config, ResponseGap, reference};

fn key(kind: &str, subject: &str, ts: u64, summary: &str, evidence: &str) -> String {
    format!("{ts} {kind} {subject} | {summary} | {evidence}")
}

fn check(seed: u64, config: Config) {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed, alarms: 150, units: 8, calls: 50, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };

    let (events, reference_data) = merged_events(&opts).unwrap();
    let expected: Vec<String> = reference::run(&config, &events, &reference_data.units)
        .iter()
        .map(|d| key(&d.kind, &d.subject, d.event_ts_ms, &d.summary, &d.evidence))
        .collect();
    assert!(expected.len() > 10, "seed {seed}: the input should produce some gaps, got {}", expected.len());
    assert!(expected.iter().any(|k| k.contains("not_on_scene")) && expected.iter().any(|k| k.contains("no_dispatch")));

    assert_alerts_for_1_2_4_workers(
        &opts,
        || Box::new(ResponseGap { config: config.clone() }),
        |a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence),
        &expected,
        &format!("seed {seed}"),
    );
}

#[test]
fn matches_reference_default_config() {
    for seed in [1, 2, 3] {
        check(seed, Config::default());
    }
}

#[test]
fn matches_reference_other_limits() {
    check(7, Config { max_priority: 3, dispatch_within_ms: 120_000, on_scene_within_ms: 600_000 });
}

#[test]
fn a_unit_stamped_at_the_deadline_is_in_time() {
    // One P1 alarm; the dispatch row is stamped exactly at the 3-minute deadline but
    // arrives after a later row (within the lateness): no `no_dispatch` alert.
    use citywatch_engine::rows::{AlarmRow, PatrolRow, write_table};
    let dir = tempfile::tempdir().unwrap();
    let t0 = citywatch_engine::testkit::T0_MS;
    let alarm = AlarmRow {
        alarm_id: 9,
        ts_ms: t0,
        category: "robbery".into(),
        priority: 1,
        lat: 36.07,
        lon: 120.38,
        reporter: None,
        suspect_number: None,
        source: "110".into(),
    };
    let fix = |ts: i64, status: &str, alarm_id| PatrolRow {
        unit_id: "A1".into(),
        ts_ms: ts,
        lat: 36.07,
        lon: 120.38,
        status: status.into(),
        alarm_id,
    };
    let patrols = vec![
        fix(t0 + 200_000, "available", None),     // after the deadline, arrives first
        fix(t0 + 180_000, "dispatched", Some(9)), // stamped at the deadline, arrives later
        fix(t0 + 1_000_000, "available", None),
    ];
    write_table(dir.path(), &[alarm]).unwrap();
    write_table(dir.path(), &patrols).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 60_000, ..ReplayOptions::default() };
    let out = replay(&opts, vec![Box::new(ResponseGap::default())]).unwrap();
    let kinds: Vec<&str> = out.alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, vec!["not_on_scene"], "dispatched in time, never on scene");
    assert_eq!(out.alerts[0].event_ts_ms, t0 + 720_000, "fires exactly at the on-scene deadline");
    assert_eq!(out.summary.late_events, 0);
}
