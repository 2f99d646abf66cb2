//! Micro-benchmark of one `fraud_call` decision: the committed trees'
//! probability for a caller's features (the feature vector and the walk of
//! the trees), `all_trees` (training, explanations) and `to_threshold` (the
//! dataflow's check at each call still open at `open_s`: the walk stops once
//! the default threshold is out of reach). Two callers: an ordinary one (one
//! call) and a call-list caller (30 calls today, most hung up, nobody calling back).
//!
//! `cargo bench -p citywatch-bench --bench fraud_call` (about 10 s).

use citywatch_fraud_call::Learned;
use citywatch_fraud_call::features::Features;
use criterion::{Criterion, criterion_group, criterion_main};

fn decision(c: &mut Criterion) {
    let model = Learned::committed();
    let ordinary = Features {
        calls_1h: 1,
        fanout_1h: 1,
        calls_24h: 1,
        fanout_24h: 1,
        burst: 1,
        seen_h: 30,
        ..Features::default()
    };
    let call_list = Features {
        calls_1h: 5,
        fanout_1h: 4,
        calls_24h: 30,
        fanout_24h: 28,
        completed_24h: 25,
        short_24h: 20,
        very_short_24h: 12,
        contacts: 28,
        out_only_callees: 28,
        ..Features::default()
    };
    // The dataflow's decision stops walking once the default threshold is out of reach.
    let floor = citywatch_fraud_call::Config::default().threshold();
    let mut group = c.benchmark_group("fraud_call");
    for (name, f) in [("ordinary", ordinary), ("call_list", call_list)] {
        let mut at = 1_772_409_721_146u64;
        group.bench_function(format!("all_trees/{name}"), |b| {
            b.iter(|| {
                at += 1_000;
                model.prob(std::hint::black_box(&f), at)
            })
        });
        group.bench_function(format!("to_threshold/{name}"), |b| {
            b.iter(|| {
                at += 1_000;
                model.prob_at_least(std::hint::black_box(&f), at, floor)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
