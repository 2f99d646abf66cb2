//! Micro-benchmarks of the reader side (issue 7; the operators are in `operators.rs`):
//! the pseudonymiser (cache hit, miss = one HMAC, batched lookups and batched
//! misses hashed a SIMD lane per number), decoding a
//! batch of call rows from Parquet into events, and the subscribers table the
//! models look numbers up in (against the hash map it replaced).
//!
//! `cargo bench -p citywatch-bench --bench reader` (about a minute; the first
//! run generates a 20k-subscriber city into a temporary folder).

use std::hint::black_box;

use citywatch_engine::contract::Table;
use citywatch_engine::decode::{self, Decoder};
use citywatch_engine::parquet_io;
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::reference::{Subscriber, Subscribers, UnitDirectory};
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
    // Below the parallel threshold (512 misses), so one thread: the lanes alone.
    let misses = &refs[..500];
    g.throughput(Throughput::Elements(misses.len() as u64));
    g.bench_function("batch of 500 misses (a SIMD lane per number)", |b| {
        b.iter_batched(
            || Pseudonymiser::with_capacity(DEMO_KEY, "86", 0),
            |mut cold| cold.pseudonymise_batch(black_box(misses), &mut out),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// What a decode thread does in a city replay: look up a batch of numbers,
/// mostly subscribers (in the shared warm layer, 1M of them), the rest
/// outsiders (in the thread's own cache after their first sighting).
fn warm_layer(c: &mut Criterion) {
    let city = numbers(1 << 20);
    let refs: Vec<&str> = city.iter().map(String::as_str).collect();
    let mut loading = Pseudonymiser::with_capacity(DEMO_KEY, "86", refs.len());
    let mut out = Vec::new();
    loading.pseudonymise_batch(&refs, &mut out);
    let outsiders: Vec<String> = (0..1u64 << 14).map(|i| format!("+4915{:09}", i * 13)).collect();
    let mut thread = loading.share_warm(outsiders.len());
    // 48k subscribers in scattered order, then 16k outsiders.
    let mut batch: Vec<&str> = (0..3u64 << 14).map(|i| refs[(i * 40_503 % (1 << 20)) as usize]).collect();
    batch.extend(outsiders.iter().map(String::as_str));
    thread.pseudonymise_batch(&batch, &mut out);
    let mut g = c.benchmark_group("pseudonymiser");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("batch of 64k, 1M-subscriber warm layer", |b| {
        b.iter(|| thread.pseudonymise_batch(black_box(&batch), &mut out))
    });
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
    let files = parquet_io::require(dir.path(), Table::Calls, "generated").expect("calls");
    let (mut reader, map) = parquet_io::open(&files.files[0], Table::Calls).expect("open");
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
            let mut r = decode::TableReader::new(
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

/// Lookups of a million-subscriber city's table, in the random order of
/// callers: the sorted table with its directory against a foldhash map of
/// the same rows (what the table replaced), both far larger than the CPU caches.
fn subscribers(c: &mut Criterion) {
    const N: u64 = 1 << 20;
    // Tokens spread like HMAC outputs (an odd multiplier's products).
    let token = |i: u64| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let row = |i: u64| Subscriber { age: Some((i % 90) as u8), home: None, activated_ms: Some(i as i64) };
    let table: Subscribers = (0..N).map(|i| (token(i), row(i))).collect();
    let map: std::collections::HashMap<u64, Subscriber, foldhash::fast::FixedState> =
        (0..N).map(|i| (token(i), row(i))).collect();
    // 64k lookups, three in four of subscribers, in a scattered order.
    let probes: Vec<u64> = (0..1u64 << 16)
        .map(|k| {
            let i = k.wrapping_mul(40_503) % N;
            if k % 4 == 3 { token(i) ^ 1 } else { token(i) }
        })
        .collect();
    let mut g = c.benchmark_group("subscribers");
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.bench_function("sorted table, 1M, 64k lookups", |b| {
        b.iter(|| {
            probes
                .iter()
                .filter_map(|t| table.get_at(black_box(t), 0))
                .map(|s| s.activated_ms.unwrap_or(0))
                .sum::<i64>()
        })
    });
    g.bench_function("foldhash map, 1M, 64k lookups", |b| {
        b.iter(|| probes.iter().filter_map(|t| map.get(black_box(t))).map(|s| s.activated_ms.unwrap_or(0)).sum::<i64>())
    });
    g.finish();
}

criterion_group! { name = benches; config = config(); targets = pseudonymiser, warm_layer, decoder, subscribers }
criterion_main!(benches);
