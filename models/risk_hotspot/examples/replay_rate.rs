//! Replay a dataset with `risk_hotspot` (and nothing else) and print events/s,
//! alerts by kind and the top of the published surface: the same library call
//! `citywatch replay` makes once the model is in its `models()` list.
//!
//! ```text
//! cargo run --release -p citywatch-risk-hotspot --example replay_rate -- DIR [WORKERS] [OUT_DIR]
//! ```

use citywatch_engine::replay::{ReplayOptions, replay};
use citywatch_risk_hotspot::RiskHotspot;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = std::path::PathBuf::from(args.first().expect("usage: replay_rate DIR [WORKERS] [OUT_DIR]"));
    let workers = args.get(1).map_or(1, |w| w.parse().expect("workers"));
    let out = args.get(2).map(std::path::PathBuf::from);
    let model = RiskHotspot::default();
    let surface = model.surface();
    let opts = ReplayOptions { input, workers, out, ..ReplayOptions::default() };
    // `RH_MODEL_OFF=1`: the same replay with no model, for comparison.
    let models: Vec<Box<dyn citywatch_engine::model::Model>> =
        if std::env::var_os("RH_MODEL_OFF").is_some() { Vec::new() } else { vec![Box::new(model)] };
    let outcome = replay(&opts, models).expect("replay");
    let s = &outcome.stats;
    println!(
        "{} events in {:.2} s with {} worker(s): {:.0} events/s",
        outcome.summary.events, s.wall_s, s.workers, s.events_per_s
    );
    let mut kinds = std::collections::BTreeMap::new();
    for a in &outcome.alerts {
        *kinds.entry(a.kind.clone()).or_insert(0usize) += 1;
    }
    println!("alerts by kind: {kinds:?}");
    println!("surface as of {:?}: top 5 {:?}", surface.as_of_ms(), surface.top_cells(5));
}
