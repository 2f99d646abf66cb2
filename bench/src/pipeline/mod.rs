//! Full-pipeline scenarios: one per file, each stating what it measures.
//!
//! A scenario is a seeded synthetic city ([`citywatch_datasets::GenOptions`]);
//! the runner (`src/bin/pipeline.rs`) generates it once into a cache folder
//! and replays it through every model.

use std::path::Path;

use citywatch_datasets::GenOptions;

mod city_10m;
mod city_1m;
mod city_3m;
mod smoke;

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name on the command line and of the cached dataset folder.
    pub name: &'static str,
    /// What it measures (printed with the results).
    pub question: &'static str,
    /// The generator's options for an output folder.
    pub options: fn(&Path) -> GenOptions,
}

/// The registration list.
pub fn scenarios() -> Vec<Scenario> {
    vec![smoke::scenario(), city_1m::scenario(), city_3m::scenario(), city_10m::scenario()]
}
