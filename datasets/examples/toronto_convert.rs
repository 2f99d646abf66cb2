//! Regenerates the committed `datasets/toronto/alarms.parquet` from the committed source CSV (`datasets/toronto/`).
//!
//! `cargo run -p citywatch-datasets --example toronto_convert`

use std::path::Path;

use citywatch_datasets::toronto::{COMMITTED_ALARMS, SOURCE_CSV, convert};

fn main() -> Result<(), citywatch_datasets::Error> {
    let s = convert(Path::new(SOURCE_CSV), Path::new(COMMITTED_ALARMS))?;
    println!("{}", serde_json::to_string_pretty(&s).expect("summary serialises"));
    Ok(())
}
