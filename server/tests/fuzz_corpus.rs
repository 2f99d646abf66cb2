//! Issue 16: the ingest decoders never panic. Replays the cargo-fuzz seed
//! corpus (`fuzz/corpus/<target>/`) and a bounded, seeded run of mutations
//! of it (byte flips, cuts, splices, repeats) through `Ingest::decode` for
//! every stream table, as NDJSON and as Arrow IPC. The open-ended search is
//! `cargo +nightly fuzz run ingest_ndjson|ingest_arrow` (see fuzz/Cargo.toml).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use citywatch_engine::contract::Table;
use citywatch_server::ingest::Ingest;
use rand::{Rng, SeedableRng};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// A valid Arrow IPC stream of two alarms.
fn arrow_alarms() -> Vec<u8> {
    common::alarms_arrow_ipc(1_767_225_600_000, [(36.07, 120.38), (36.08, 120.39)])
}

fn mutate(rng: &mut rand_chacha::ChaCha8Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..6) {
        let len = b.len().max(1);
        match rng.random_range(0..5) {
            0 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] = [0, 0xff, b'"', b'{', b'\n', b'9', 0x80][rng.random_range(0..7)];
            }
            2 => b.truncate(rng.random_range(0..len)),
            3 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let at = rng.random_range(0..len).min(b.len());
                let from = rng.random_range(0..other.len().max(1)).min(other.len());
                b.splice(at..at, other[from..].iter().copied());
            }
            _ => {
                let from = rng.random_range(0..len).min(b.len());
                let piece: Vec<u8> = b[from..].iter().copied().take(64).collect();
                for _ in 0..rng.random_range(1..20) {
                    b.extend_from_slice(&piece);
                }
            }
        }
    }
    b
}

fn run(arrow: bool, seeds: Vec<Vec<u8>>) -> usize {
    let cfg = citywatch_server::ServerConfig { max_event_age_ms: 0, ..Default::default() };
    let ingest = Ingest::new(&cfg, Default::default());
    let tables = [Table::Calls, Table::Alarms, Table::Patrols];
    for s in &seeds {
        for t in tables {
            let _ = ingest.decode(t, s, arrow);
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let start = Instant::now();
    let mut n = 0;
    // Bounded in count and in time (a busy CI machine stops early).
    while n < 3000 && start.elapsed() < Duration::from_secs(20) {
        let body = mutate(&mut rng, &seeds);
        let _ = ingest.decode(tables[n % 3], &body, arrow);
        n += 1;
    }
    n
}

#[test]
fn issue_16_ndjson_decoder_survives_the_corpus_and_its_mutations() {
    let seeds = corpus("ingest_ndjson");
    assert!(seeds.len() >= 5);
    assert!(run(false, seeds) > 100);
}

#[test]
fn issue_16_arrow_decoder_survives_the_corpus_and_its_mutations() {
    let mut seeds = corpus("ingest_arrow");
    seeds.push(arrow_alarms());
    // The valid seed decodes to two events.
    let cfg = citywatch_server::ServerConfig { max_event_age_ms: 0, ..Default::default() };
    let ok = Ingest::new(&cfg, Default::default()).decode(Table::Alarms, &arrow_alarms(), true).unwrap();
    assert_eq!(ok.events.len(), 2);
    assert!(run(true, seeds) > 100);
}
