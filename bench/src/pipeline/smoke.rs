//! `smoke`: 20,000 subscribers, one day. Checks the runner end to end in a few
//! seconds; its throughput is dominated by fixed costs (dataflow set-up,
//! reference tables), so do not quote it.

use std::path::Path;

use citywatch_datasets::GenOptions;

use super::Scenario;

pub fn scenario() -> Scenario {
    Scenario {
        name: "smoke",
        question: "does the whole pipeline run, and do citywatch and the references agree on alert counts?",
        options: |out: &Path| GenOptions {
            days: 1,
            subscribers: 20_000,
            seed: 7,
            out: out.to_owned(),
            ..GenOptions::default()
        },
    }
}
