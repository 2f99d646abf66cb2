//! Times the reader's phases on a dataset folder: opening it (reference
//! tables, the subscribers' pseudonyms), then reading and decoding each
//! stream table on one thread (the calls table as one replay decode thread).
//! `cargo run --release -p citywatch-engine --example read_phases -- DIR [open]`
//! (`open`: stop after opening the dataset, to profile that phase alone).
use std::time::Instant;

use citywatch_engine::decode::{Decoder, TableReader};
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::replay::open_dataset;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: read_phases DIR"));
    let ps = Pseudonymiser::new(DEMO_KEY, "86");
    let t = Instant::now();
    let (j, _) = citywatch_engine::load::jurisdiction(&dir, &mut Vec::new()).expect("jurisdiction");
    println!("load_jurisdiction {:.3} s ({} cells)", t.elapsed().as_secs_f64(), j.cells().count());
    let t = Instant::now();
    let ds = open_dataset(&dir, &ps).expect("open");
    println!("open_dataset {:.3} s ({} subscribers)", t.elapsed().as_secs_f64(), ds.reference.subscribers.len());
    if std::env::args().nth(2).as_deref() == Some("open") {
        return;
    }
    let mut warm = Some(ds.pseudonymiser);
    for files in ds.streams.clone() {
        let table = files.table;
        let p = warm.take().unwrap_or_else(|| ps.with_cache_for(0));
        let mut reader =
            TableReader::new(files, Decoder::new(table, p.share_warm(1 << 16), ds.reference.units.clone()));
        let t = Instant::now();
        let (mut events, mut rejects, mut n) = (Vec::new(), Vec::new(), 0usize);
        while reader.next_batch(&mut events, &mut rejects).expect("read").is_some() {
            n += events.len();
            events.clear();
        }
        let s = t.elapsed().as_secs_f64();
        println!("{:8} {:>9} events {:.3} s  {:.0} ns/event, 1 thread", table.name(), n, s, s * 1e9 / n.max(1) as f64);
    }
}
