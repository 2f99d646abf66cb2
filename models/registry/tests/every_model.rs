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

/// A registered model whose dataflow sends its alerts one level up (a
/// routing mistake), with the reference left right.
struct Misrouted(Box<dyn citywatch_engine::model::Model>);

impl citywatch_engine::model::Model for Misrouted {
    fn name(&self) -> String {
        self.0.name()
    }

    fn reference(
        &self,
        events: &[citywatch_engine::event::Event],
        reference: &citywatch_engine::reference::Reference,
    ) -> Option<Vec<citywatch_engine::alert::AlertDraft>> {
        self.0.reference(events, reference)
    }

    fn build<'s>(
        &self,
        inputs: &citywatch_engine::model::Inputs<'s>,
    ) -> timely::dataflow::StreamVec<'s, citywatch_engine::EventTime, citywatch_engine::alert::AlertDraft> {
        use timely::dataflow::operators::vec::Map;
        self.0.build(inputs).map(|mut d| {
            d.route = citywatch_engine::alert::RouteLevel::District;
            d
        })
    }
}

#[test]
fn a_routing_mistake_fails_the_reference_test() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RandomSpec { seed: 13, alarms: 300, units: 8, calls: 100, grids: true, ..RandomSpec::default() };
    write_random_dataset(dir.path(), &spec).unwrap();
    let opts = ReplayOptions { input: dir.path().to_owned(), lateness_ms: 20_000, ..ReplayOptions::default() };
    for name in ["risk_hotspot", "response_gap"] {
        let model = || -> Box<dyn citywatch_engine::model::Model> {
            let m = citywatch_registry::models().into_iter().find(|m| m.name() == name).unwrap();
            Box::new(Misrouted(m))
        };
        let failed = std::panic::catch_unwind(|| assert_model_matches_reference(&opts, model, 5));
        let message = failed.expect_err("a misrouted dataflow passed its reference test");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("missing") && text.contains("assignee"), "{name}: {text}");
    }
}
