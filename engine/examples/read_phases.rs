//! Times the reader's phases on a dataset folder: opening it (reference
//! tables, the subscribers' pseudonyms), then decoding each stream table on
//! one thread, and the calls table again on two threads sharing out its
//! pieces as a replay does.
//! `cargo run --release -p citywatch-engine --example read_phases -- DIR [D]`
//! (D: the threads' own caches are sized for call rows / D numbers; 256 by default, as a replay).
use std::time::Instant;

use citywatch_engine::contract::Table;
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::read::{Decoder, TableReader, decode_piece, pieces};
use citywatch_engine::replay::open_dataset;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: read_phases DIR"));
    let ps = Pseudonymiser::new(DEMO_KEY, "86");
    let t = Instant::now();
    let ds = open_dataset(&dir, &ps).expect("open");
    println!("open_dataset {:.3} s ({} subscribers)", t.elapsed().as_secs_f64(), ds.reference.subscribers.len());
    let mut warm = Some(ds.pseudonymiser);
    for files in ds.streams.clone() {
        let table = files.table;
        let p = warm.take().unwrap_or_else(|| ps.with_cache_for(0));
        let mut reader = TableReader::new(files, Decoder::new(table, p, ds.reference.units.clone()));
        let t = Instant::now();
        let (mut events, mut rejects, mut n) = (Vec::new(), Vec::new(), 0usize);
        while reader.next_batch(&mut events, &mut rejects).expect("read").is_some() {
            n += events.len();
            events.clear();
        }
        let s = t.elapsed().as_secs_f64();
        println!("{:8} {:>9} events {:.3} s  {:.0} ns/event, 1 thread", table.name(), n, s, s * 1e9 / n.max(1) as f64);
    }
    let calls = ds.streams.iter().find(|f| f.table == Table::Calls).expect("a calls table");
    let pieces = pieces(calls).expect("pieces");
    let rows = *ds.stream_rows.get(&Table::Calls).expect("calls rows") as usize;
    let again = open_dataset(&dir, &ps).expect("open");
    let own: usize = std::env::args().nth(2).map_or(rows / 256, |d| rows / d.parse::<usize>().expect("a divisor"));
    let shared = again.pseudonymiser.share_warm(own);
    let t = Instant::now();
    let n: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|k| {
                let mut d = Decoder::new(Table::Calls, shared.clone(), ds.reference.units.clone());
                let pieces = &pieces;
                s.spawn(move || {
                    let mut n = 0;
                    for piece in pieces.iter().skip(k).step_by(2) {
                        decode_piece(piece, &mut d, |e, _, _, _| {
                            n += e.len();
                            true
                        })
                        .expect("decode");
                    }
                    println!(
                        "thread {k}: {} numbers hashed, own cache {} MiB",
                        d.pseudonymiser().hashed(),
                        d.pseudonymiser().cache_bytes() >> 20
                    );
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("decode thread")).sum()
    });
    let s = t.elapsed().as_secs_f64();
    println!("calls    {n:>9} events {s:.3} s  {:.0} ns/event, 2 threads, {} pieces", s * 1e9 / n as f64, pieces.len());
}
