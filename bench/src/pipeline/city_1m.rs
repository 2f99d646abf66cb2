//! `city_1m`: a city with 1M subscribers, one day, seed 7 (6.28M events:
//! 5.8M call rows, 454k patrol rows, ~700 alarms). The headline figure of
//! issue 7: full-pipeline events/s with 1 and 2 workers against the
//! single-threaded references, peak memory per active subscriber.

use std::path::Path;

use citywatch_datasets::GenOptions;

use super::Scenario;

pub fn scenario() -> Scenario {
    Scenario {
        name: "city_1m",
        question: "how fast does a day of a 1M-subscriber city replay with every model, 1 vs 2 workers, vs the references?",
        options: |out: &Path| GenOptions {
            days: 1,
            subscribers: 1_000_000,
            seed: 7,
            out: out.to_owned(),
            ..GenOptions::default()
        },
    }
}
