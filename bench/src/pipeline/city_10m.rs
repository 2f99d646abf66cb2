//! `city_10m`: the same day with 10M subscribers (about 9x the calls). How do
//! throughput and memory per active subscriber grow with the city?

use std::path::Path;

use citywatch_datasets::GenOptions;

use super::Scenario;

pub fn scenario() -> Scenario {
    Scenario {
        name: "city_10m",
        question: "how do events/s and memory per active subscriber change from 1M to 10M subscribers?",
        options: |out: &Path| GenOptions {
            days: 1,
            subscribers: 10_000_000,
            seed: 7,
            out: out.to_owned(),
            ..GenOptions::default()
        },
    }
}
