//! The cost of finding the cell of every on-duty patrol fix of a dataset: an H3
//! lookup per fix (what the model did before) against [`FixLocator`] (what it
//! does now), single-threaded, best of 5 passes each (the machine is shared).
//! Also checks that both give the same cells.
//!
//! ```text
//! cargo run --release -p citywatch-risk-hotspot --example locate_bench -- DIR
//! ```

use std::time::Instant;

use citywatch_engine::contract::{PatrolStatus, Table};
use citywatch_engine::decode::{Decoder, TableReader};
use citywatch_engine::event::Event;
use citywatch_engine::parquet_io::locate;
use citywatch_engine::pseudonym::Pseudonymiser;
use citywatch_engine::reference::UnitDirectory;
use citywatch_risk_hotspot::locate::FixLocator;
use h3o::Resolution;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: locate_bench DIR"));
    let files = locate(&dir, Table::Patrols).expect("read").expect("the dataset has patrols");
    let decoder = Decoder::new(Table::Patrols, Pseudonymiser::new("bench", "86"), UnitDirectory::default());
    let mut reader = TableReader::new(files, decoder);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    while reader.next_batch(&mut events, &mut rejects).expect("read").is_some() {}
    let mut fixes: Vec<_> = events
        .into_iter()
        .filter_map(|e| if let Event::Patrol(p) = e { Some(p) } else { None })
        .filter(|p| p.status != PatrolStatus::OffDuty)
        .collect();
    fixes.sort_by_key(|p| (p.ts_ms, p.unit));
    let res = Resolution::Nine;
    let (mut best_direct, mut best_cached, mut lookups) = (f64::INFINITY, f64::INFINITY, 0);
    let mut direct = Vec::with_capacity(fixes.len());
    let mut cached = Vec::with_capacity(fixes.len());
    for _ in 0..5 {
        direct.clear();
        let t = Instant::now();
        direct.extend(fixes.iter().map(|p| u64::from(p.pos.cell(res))));
        best_direct = best_direct.min(t.elapsed().as_secs_f64());
        cached.clear();
        let t = Instant::now();
        let mut locator = FixLocator::new(res);
        cached.extend(fixes.iter().map(|p| locator.cell_of(p.unit, p.pos)));
        best_cached = best_cached.min(t.elapsed().as_secs_f64());
        lookups = locator.lookups();
    }
    assert_eq!(direct, cached, "the locator gives H3's cells");
    // Warm: the cells' discs and neighbours already known (a long replay's steady state).
    let mut locator = FixLocator::new(res);
    for p in &fixes {
        locator.cell_of(p.unit, p.pos);
    }
    let mut best_warm = f64::INFINITY;
    for _ in 0..5 {
        cached.clear();
        let t = Instant::now();
        cached.extend(fixes.iter().map(|p| locator.cell_of(p.unit, p.pos)));
        best_warm = best_warm.min(t.elapsed().as_secs_f64());
    }
    assert_eq!(direct, cached, "the warm locator gives H3's cells");
    let n = fixes.len() as f64;
    println!(
        "{} on-duty fixes: H3 per fix {:.0} ns, locator {:.0} ns ({:.2}x), warm locator {:.0} ns ({:.2}x); \
         locator looked up {:.1}% of fixes",
        fixes.len(),
        best_direct / n * 1e9,
        best_cached / n * 1e9,
        best_direct / best_cached,
        best_warm / n * 1e9,
        best_direct / best_warm,
        lookups as f64 / n * 100.0
    );
}
