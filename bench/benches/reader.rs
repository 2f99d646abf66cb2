//! Micro-benchmarks of the reader side (issue 7; the operators are in `operators.rs`):
//! the pseudonymiser (cache hit, miss = one HMAC, batched lookups), decoding a
//! batch of call rows from Parquet into events.
//!
//! `cargo bench -p citywatch-bench --bench reader` (about a minute; the first
//! run generates a 20k-subscriber city into a temporary folder).

use std::hint::black_box;

use citywatch_engine::contract::Table;
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::read::{self, Decoder};
use citywatch_engine::reference::UnitDirectory;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn numbers(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{}", 13_800_000_000 + i * 7)).collect()
}

fn pseudonymiser(c: &mut Criterion) {
    let mut g = c.benchmark_group("pseudonymiser");
    let city = numbers(1 << 16);
    let refs: Vec<&str> = city.iter().map(String::as_str).collect();
    g.throughput(Throughput::Elements(1));
    let p = Pseudonymiser::new(DEMO_KEY, "86");
    g.bench_function("hmac (cache miss)", |b| b.iter(|| p.token_uncached(black_box("13812345678"))));
    let mut warm = Pseudonymiser::with_capacity(DEMO_KEY, "86", refs.len());
    for n in &refs {
        warm.pseudonymise(n);
    }
    let mut i = 0;
    g.bench_function("cache hit", |b| {
        b.iter(|| {
            i = (i + 40_503) % refs.len();
            warm.pseudonymise(black_box(refs[i]))
        })
    });
    g.throughput(Throughput::Elements(refs.len() as u64));
    let mut out = Vec::new();
    g.bench_function("batch of 64k, all hits", |b| b.iter(|| warm.pseudonymise_batch(black_box(&refs), &mut out)));
    g.finish();
}

fn decoder(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    citywatch_datasets::generate(&citywatch_datasets::GenOptions {
        subscribers: 20_000,
        seed: 7,
        out: dir.path().to_owned(),
        ..Default::default()
    })
    .expect("generate");
    let files = read::require(dir.path(), Table::Calls, "generated").expect("calls");
    let (mut reader, map) = read::open(&files.files[0], Table::Calls).expect("open");
    let batch = reader.next().expect("a batch").expect("readable");
    let mut dec =
        Decoder::new(Table::Calls, Pseudonymiser::with_capacity(DEMO_KEY, "86", 40_000), UnitDirectory::default());
    let mut g = c.benchmark_group("reader");
    g.throughput(Throughput::Elements(batch.num_rows() as u64));
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    g.bench_function("decode 8192 call rows (warm cache)", |b| {
        b.iter(|| {
            events.clear();
            rejects.clear();
            dec.decode(&files.files[0], 0, &batch, &map, &mut events, &mut rejects);
            events.len()
        })
    });
    g.bench_function("parquet read + decode, whole calls table", |b| {
        b.iter(|| {
            let mut r = read::TableReader::new(
                files.clone(),
                Decoder::new(
                    Table::Calls,
                    Pseudonymiser::with_capacity(DEMO_KEY, "86", 40_000),
                    UnitDirectory::default(),
                ),
            );
            let mut n = 0;
            while r.next_batch(&mut events, &mut rejects).expect("read").is_some() {
                n += events.len();
                events.clear();
            }
            n
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = pseudonymiser, decoder }
criterion_main!(benches);
