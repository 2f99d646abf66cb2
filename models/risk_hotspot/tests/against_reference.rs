//! The dataflow gives exactly the reference's alerts, with 1, 2 and 4 workers,
//! on seeded random inputs (messy: disorder within and beyond the lateness),
//! with the default grid and with a grids table where some officers answer
//! for several communities.

use citywatch_engine::replay::{ReplayOptions, merged_events, replay};
use citywatch_engine::rows::{GridRow, OfficerRow, write_table};
use citywatch_engine::testkit::{RandomSpec, write_random_dataset};
use citywatch_risk_hotspot::{Config, RiskHotspot, reference};
use h3o::{LatLng, Resolution};

fn key(kind: &str, subject: &str, ts: u64, summary: &str, evidence: &str) -> String {
    format!("{ts} {kind} {subject} | {summary} | {evidence}")
}

/// Settings that make a 4-hour random dataset exercise every rule.
fn busy() -> Config {
    Config {
        min_risk: 0.3,
        tick_ms: 20 * 60_000,
        shift_ms: 3_600_000,
        shift_offset_ms: 15 * 60_000,
        covered_within_ms: 15 * 60_000,
        hotspots_per_tick: 2,
        max_hotspot_alerts_per_shift: 3,
        max_near_repeat_alerts_per_shift: 2,
        cell_cooldown_ms: 3_600_000,
        near_repeat_alert_window_ms: 3_600_000,
        near_repeat_rings: 2,
        resolution: 8,
        ..Config::default()
    }
}

/// Grids: res-8 cells; community = res-7 parent; a community officer for
/// every other community, a station for every street (res-6 parent).
fn write_grids(dir: &std::path::Path) {
    let centre = LatLng::new(36.07, 120.38).unwrap().to_cell(Resolution::Eight);
    let mut grids = Vec::new();
    let mut communities = std::collections::BTreeSet::new();
    let mut streets = std::collections::BTreeSet::new();
    for c in centre.grid_disk::<Vec<_>>(9) {
        let community = c.parent(Resolution::Seven).unwrap().to_string();
        let street = c.parent(Resolution::Six).unwrap().to_string();
        grids.push(GridRow {
            cell: c.to_string(),
            grid: c.to_string(),
            community: community.clone(),
            street: street.clone(),
            district: "D1".into(),
        });
        communities.insert(community);
        streets.insert(street);
    }
    let mut officers = Vec::new();
    for (i, c) in communities.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        officers.push(OfficerRow {
            officer_id: format!("C{i:03}"),
            name: format!("Officer {i}"),
            role: "community".into(),
            scope: c.clone(),
        });
    }
    for (i, s) in streets.iter().enumerate() {
        officers.push(OfficerRow {
            officer_id: format!("S{i:03}"),
            name: format!("Station {i}"),
            role: "station".into(),
            scope: s.clone(),
        });
    }
    write_table(dir, &grids).unwrap();
    write_table(dir, &officers).unwrap();
}

fn check(seed: u64, config: Config, with_grids: bool) {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed, alarms: 160, units: 8, calls: 30, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    if with_grids {
        write_grids(dir.path());
    }
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };

    let (events, reference_data) = merged_events(&opts).unwrap();
    let expected: Vec<String> = reference::run(&config, &events, &reference_data)
        .iter()
        .map(|d| key(&d.kind, &d.subject, d.event_ts_ms, &d.summary, &d.evidence))
        .collect();
    let hot = expected.iter().filter(|k| k.contains(" hotspot ")).count();
    let near = expected.iter().filter(|k| k.contains(" near_repeat ")).count();
    assert!(
        hot > 5 && near > 2,
        "seed {seed}: the input should raise both kinds, got {hot} hotspot, {near} near_repeat"
    );

    for workers in [1, 2, 4] {
        let model = RiskHotspot::new(config.clone());
        let surface = model.surface();
        let out = replay(&ReplayOptions { workers, ..opts.clone() }, vec![Box::new(model)]).unwrap();
        let mut got: Vec<String> = out
            .alerts
            .iter()
            .map(|a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence))
            .collect();
        got.sort();
        let mut want = expected.clone();
        want.sort();
        let missing: Vec<_> = want.iter().filter(|k| !got.contains(k)).take(3).collect();
        let extra: Vec<_> = got.iter().filter(|k| !want.contains(k)).take(3).collect();
        assert!(
            got == want,
            "seed {seed}, {workers} workers: {} alerts vs reference {}; missing {missing:#?}; extra {extra:#?}",
            got.len(),
            want.len()
        );
        let top = surface.top_cells(5);
        assert_eq!(top.len(), 5, "the surface snapshot is published");
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1), "riskiest first: {top:?}");
        assert!(surface.as_of_ms().is_some());
    }
}

#[test]
fn matches_reference_default_grid() {
    for seed in [1, 2] {
        check(seed, busy(), false);
    }
}

#[test]
fn matches_reference_with_grids_and_shared_officers() {
    for seed in [3, 4] {
        check(seed, busy(), true);
    }
}

#[test]
fn matches_reference_default_config() {
    // Default settings (res 9, hourly ticks, min risk 2): a quieter feed, the same alerts.
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed: 5, alarms: 400, units: 6, calls: 10, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };
    let (events, reference_data) = merged_events(&opts).unwrap();
    let config = Config { min_risk: 0.5, ..Config::default() };
    let mut want: Vec<String> = reference::run(&config, &events, &reference_data)
        .iter()
        .map(|d| key(&d.kind, &d.subject, d.event_ts_ms, &d.summary, &d.evidence))
        .collect();
    want.sort();
    assert!(!want.is_empty());
    for workers in [1, 2, 4] {
        let out = replay(&ReplayOptions { workers, ..opts.clone() }, vec![Box::new(RiskHotspot::new(config.clone()))])
            .unwrap();
        let mut got: Vec<String> = out
            .alerts
            .iter()
            .map(|a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence))
            .collect();
        got.sort();
        assert_eq!(got, want, "{workers} workers");
    }
}

#[test]
fn config_rejects_unknown_fields_and_bad_values() {
    use citywatch_engine::model::Model;
    let mut m = RiskHotspot::default();
    assert!(m.configure(&serde_json::json!({"tick_minutes": 5})).is_err());
    assert!(m.configure(&serde_json::json!({"category_weights": {"burglery": 1.0}})).is_err());
    assert!(m.configure(&serde_json::json!({"resolution": 15})).is_err());
    m.configure(&serde_json::json!({"resolution": 8, "min_risk": 1.5})).unwrap();
    assert_eq!(m.config.resolution, 8);
    assert_eq!(m.config.tick_ms, 3_600_000, "unset fields keep their defaults");
}
