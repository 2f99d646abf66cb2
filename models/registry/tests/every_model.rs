//! Every registered model that has a reference raises exactly its
//! reference's alerts, routed alike, with 1, 2 and 4 workers, on random
//! datasets with grids and officers, with millisecond and with hour-rounded
//! event times. A new model registered with `citywatch new-model` is tested
//! here without a line of its own.

use citywatch_engine::replay::ReplayOptions;
use citywatch_engine::testkit::{RandomSpec, assert_model_matches_reference, write_random_dataset};

fn check(spec: RandomSpec) {
    let dir = tempfile::tempdir().unwrap();
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };
    let mut tested = 0;
    for (i, m) in citywatch_registry::models().iter().enumerate() {
        if m.reference(&[], &citywatch_engine::reference::Reference::empty()).is_none() {
            continue;
        }
        let n = assert_model_matches_reference(&opts, || citywatch_registry::models().swap_remove(i), 5);
        eprintln!("seed {} coarse {:?}: {} raises {n} alerts", spec.seed, spec.coarse_ms, m.name());
        tested += 1;
    }
    assert!(tested >= 3, "only {tested} registered models have a reference");
}

#[test]
fn models_match_their_references_with_grids() {
    check(RandomSpec { seed: 11, alarms: 300, units: 8, calls: 400, bursts: 6, grids: true, ..RandomSpec::default() });
}

#[test]
fn models_match_their_references_on_hourly_timestamps() {
    check(RandomSpec {
        seed: 12,
        alarms: 300,
        units: 8,
        calls: 400,
        bursts: 6,
        grids: true,
        coarse_ms: Some(3_600_000),
        ..RandomSpec::default()
    });
}
