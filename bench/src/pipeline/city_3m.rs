//! `city_3m`: the same day with 3M subscribers (about 3x the calls). How do
//! throughput and memory per active subscriber grow with the city?

use std::path::Path;

use citywatch_datasets::GenOptions;

use super::Scenario;

pub fn scenario() -> Scenario {
    Scenario {
        name: "city_3m",
        question: "how do events/s and memory per active subscriber change from 1M to 3M subscribers?",
        options: |out: &Path| GenOptions {
            days: 1,
            subscribers: 3_000_000,
            seed: 7,
            out: out.to_owned(),
            ..GenOptions::default()
        },
    }
}
