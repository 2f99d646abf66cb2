//! Generates a synthetic city and prints the summary: the speed measurement.
//!
//! `cargo run --release -p citywatch-datasets --example gen -- [subscribers] [days] [out] [threads]`
//! (defaults: 1,000,000 subscribers, 1 day, `/tmp/citywatch-gen`, all cores).

use citywatch_datasets::{GenOptions, generate};

fn main() -> Result<(), citywatch_datasets::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let subscribers = args.first().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let days = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let out = args.get(2).cloned().unwrap_or_else(|| "/tmp/citywatch-gen".into());
    let threads = args.get(3).and_then(|s| s.parse().ok());
    let opts = GenOptions { subscribers, days, out: out.into(), threads, progress: true, ..GenOptions::default() };
    let summary = generate(&opts)?;
    println!("{summary}");
    Ok(())
}
