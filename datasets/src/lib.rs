//! citywatch datasets: a synthetic city with ground truth, and real Toronto incidents.
//!
//! No real call records are public, so models are built and judged on a
//! generated city whose output follows the input contract (`docs/input-contract.md`) and
//! carries ground-truth labels, plus real incident data for hotspot evaluation.
//!
//! - [`generate`] (module `r#gen`): `citywatch gen` — a Qingdao-like city ([`city`]), its subscribers
//!   and their calls ([`people`], [`calls`]), fraud campaigns with labels
//!   ([`fraud`]), self-exciting crime mapped to alarms ([`crime`]) and patrol
//!   units answering them ([`patrol`]). Same seed, same bytes, for any thread count.
//! - [`toronto`]: the Toronto Police "Major Crime Indicators" 2014–2021 converted
//!   to the alarms contract, committed under `datasets/toronto/`, and laid out as
//!   a dataset folder.
//! - [`import`]: `citywatch import incidents`, an analyst's incident export
//!   (CSV or Parquet) to a dataset's alarms table.
//! - [`knox`]: the Knox space-time interaction test, used to check that the
//!   generated burglaries carry near-repeats.
//!
//! ```no_run
//! use citywatch_datasets::{generate, GenOptions};
//! let summary = generate(&GenOptions { out: "demo-city".into(), ..GenOptions::default() })?;
//! println!("{summary}");
//! # Ok::<(), citywatch_datasets::Error>(())
//! ```
#![deny(missing_docs)]

pub mod calls;
pub mod city;
pub mod crime;
pub mod error;
pub mod fraud;
/// `gen` is a reserved word in edition 2024: write `citywatch_datasets::r#gen`, or use the re-exports
/// [`GenOptions`], [`GenSummary`] and [`generate`] at the crate root.
pub mod r#gen;
pub mod import;
pub mod knox;
pub mod legit;
pub mod patrol;
pub mod people;
pub mod rng;
pub mod roster;
pub mod sink;
pub mod toronto;

pub use error::{Error, Result};
pub use r#gen::{DEFAULT_START_MS, GenOptions, GenSummary, Rates, generate};
