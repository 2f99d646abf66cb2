//! The dataflow raises exactly the reference's alerts, routed alike, with 1,
//! 2 and 4 workers, on seeded random datasets with grids and officers.

use citywatch_engine::replay::ReplayOptions;
use citywatch_engine::testkit::{RandomSpec, assert_model_matches_reference, write_random_dataset};
use citywatch_model_template::{Config, ModelTemplate};

fn check(spec: RandomSpec, config: Config, min_alerts: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };
    assert_model_matches_reference(&opts, || Box::new(ModelTemplate { config: config.clone() }), min_alerts);
}

#[test]
fn matches_reference_with_grids() {
    for seed in [1, 2] {
        let spec = RandomSpec { seed, alarms: 400, grids: true, ..RandomSpec::default() };
        check(spec, Config::default(), 5);
    }
}

#[test]
fn matches_reference_on_hourly_timestamps_with_a_wide_window() {
    let spec = RandomSpec { seed: 3, alarms: 300, grids: true, coarse_ms: Some(3_600_000), ..RandomSpec::default() };
    check(spec, Config { min_alarms: 4, window_min: 90, max_priority: 3 }, 5);
}
