//! The dataflow gives exactly the reference's alerts, with 1, 2 and 4 workers,
//! on seeded random inputs (messy: disorder within and beyond the lateness),
//! with the default grid and with a grids table where some officers answer
//! for several communities, and with units that linger near a spot (so that the
//! dataflow's per-unit cell cache answers many fixes; the reference always
//! looks the cell up).

use citywatch_engine::replay::{ReplayOptions, merged_events};
use citywatch_engine::rows::{PatrolRow, write_table};
use citywatch_engine::testkit::{
    RandomSpec, T0_MS, assert_alerts_for_1_2_4_workers, write_grids, write_random_dataset,
};
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

/// Replaces the patrols with 8 units that each hover around a spot (GPS-like
/// noise of up to ~450 m) and move to a new spot now and then, reporting every
/// 1-4 minutes; returns the share of fixes in the same cell as the unit's previous fix.
fn write_lingering_patrols(dir: &std::path::Path, seed: u64, resolution: Resolution) -> f64 {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut rows, mut same, mut pairs) = (Vec::new(), 0, 0);
    for u in 0..8 {
        let mut ts = T0_MS + (next() * 120_000.0) as i64;
        let (mut spot, mut last_cell) = ((36.07 + 0.1 * (next() - 0.5), 120.38 + 0.1 * (next() - 0.5)), None);
        while ts < T0_MS + 4 * 3_600_000 {
            if next() < 0.05 {
                spot = (36.07 + 0.1 * (next() - 0.5), 120.38 + 0.1 * (next() - 0.5));
            }
            let (lat, lon) = (spot.0 + 0.008 * (next() - 0.5), spot.1 + 0.008 * (next() - 0.5));
            let cell = LatLng::new(lat, lon).unwrap().to_cell(resolution);
            if let Some(prev) = last_cell {
                pairs += 1;
                same += usize::from(prev == cell);
            }
            last_cell = Some(cell);
            let status = if next() < 0.9 { "available" } else { "off_duty" };
            rows.push(PatrolRow {
                unit_id: format!("U{u:02}"),
                ts_ms: ts,
                lat,
                lon,
                status: status.into(),
                alarm_id: None,
            });
            ts += 60_000 + (next() * 180_000.0) as i64;
        }
    }
    rows.sort_by_key(|r| r.ts_ms);
    write_table(dir, &rows).unwrap();
    same as f64 / pairs as f64
}

fn check(seed: u64, config: Config, with_grids: bool) {
    check_with(seed, config, with_grids, false)
}

fn check_with(seed: u64, config: Config, with_grids: bool, linger: bool) {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed, alarms: 160, units: 8, calls: 30, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    if with_grids {
        write_grids(dir.path()).unwrap();
    }
    if linger {
        let res = Resolution::try_from(config.resolution).unwrap();
        let same = write_lingering_patrols(dir.path(), seed, res);
        assert!((0.2..0.9).contains(&same), "fixes should often stay in their cell and often leave it: {same}");
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

    let surfaces = std::cell::RefCell::new(Vec::new());
    assert_alerts_for_1_2_4_workers(
        &opts,
        || {
            let model = RiskHotspot::new(config.clone());
            surfaces.borrow_mut().push(model.surface());
            Box::new(model)
        },
        |a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence),
        &expected,
        &format!("seed {seed}"),
    );
    for (surface, workers) in surfaces.borrow().iter().zip([1, 2, 4]) {
        let top = surface.top_cells(5);
        assert_eq!(top.len(), 5, "{workers} workers: the surface snapshot is published");
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
fn matches_reference_when_units_linger() {
    for seed in [6, 7] {
        check_with(seed, busy(), seed == 7, true);
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
    assert_alerts_for_1_2_4_workers(
        &opts,
        || Box::new(RiskHotspot::new(config.clone())),
        |a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence),
        &want,
        "lingering units",
    );
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

#[test]
fn the_budget_holds_without_a_patrol_feed() {
    // No patrols: every hotspot is uncovered; the model says so once and the
    // budget (per community per shift, per city per hour) is all that limits it.
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed: 8, alarms: 300, units: 4, calls: 10, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    std::fs::remove_file(dir.path().join("patrols.parquet")).unwrap();
    write_grids(dir.path()).unwrap();
    let config = Config {
        max_hotspot_alerts_per_community_per_shift: 1,
        max_hotspot_alerts_per_hour: 3,
        hotspots_per_tick: 3,
        max_hotspot_alerts_per_shift: 10,
        cell_cooldown_ms: 0,
        ..busy()
    };
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };
    let (events, reference_data) = merged_events(&opts).unwrap();
    let drafts = reference::run(&config, &events, &reference_data);
    let notices: Vec<_> = drafts.iter().filter(|d| d.kind == "no_patrol_feed").collect();
    assert_eq!(notices.len(), 1, "said once");
    let hot: Vec<_> = drafts.iter().filter(|d| d.kind == "hotspot").collect();
    assert!(hot.len() > 5, "{}", hot.len());
    assert!(notices[0].event_ts_ms <= hot[0].event_ts_ms);
    let mut per_hour = std::collections::BTreeMap::new();
    let mut per_community_shift = std::collections::BTreeMap::new();
    for d in &hot {
        *per_hour.entry(d.event_ts_ms / 3_600_000).or_insert(0) += 1;
        let e: serde_json::Value = serde_json::from_str(&d.evidence).unwrap();
        let shift = (d.event_ts_ms + config.shift_ms - config.shift_offset_ms) / config.shift_ms;
        *per_community_shift.entry((e["community"].as_str().unwrap().to_owned(), shift)).or_insert(0) += 1;
    }
    assert_eq!(per_hour.values().copied().max(), Some(3), "the hourly budget binds: {per_hour:?}");
    assert!(per_community_shift.values().all(|n| *n == 1), "{per_community_shift:?}");
    let want: Vec<String> =
        drafts.iter().map(|d| key(&d.kind, &d.subject, d.event_ts_ms, &d.summary, &d.evidence)).collect();
    assert_alerts_for_1_2_4_workers(
        &opts,
        || Box::new(RiskHotspot::new(config.clone())),
        |a| key(&a.kind, &a.subject, a.event_ts_ms as u64, &a.summary, &a.evidence),
        &want,
        "no patrol feed",
    );
}
