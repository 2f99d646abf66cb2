//! The fraud labels (`labels/fraud_calls`), this model's evaluation input,
//! decoded by `eval::read_fraud_labels` (moved here from the engine in issue
//! 21): every generated label row is read, none rejected, and each names a
//! fraud call whose victim is not its caller.

use citywatch_datasets::{GenOptions, generate};
use citywatch_engine::contract::Table;
use citywatch_engine::parquet_io::require;
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_fraud_call::eval::read_fraud_labels;

#[test]
fn issue_21_generated_labels_are_read_whole_with_no_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = GenOptions {
        days: 1,
        subscribers: 4_000,
        seed: 3,
        out: dir.path().to_owned(),
        threads: Some(1),
        ..GenOptions::default()
    };
    opts.rates.fraud.calls_per_million_per_day = 50_000.0;
    let summary = generate(&opts).unwrap();
    let files = require(dir.path(), Table::FraudLabels, "generated").unwrap();
    let mut rejects = Vec::new();
    let labels = read_fraud_labels(&files, &mut Pseudonymiser::new(DEMO_KEY, "86"), &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
    assert!(summary.fraud_calls > 0, "the city has fraud");
    assert_eq!(labels.len() as u64, summary.fraud_calls);
    assert!(labels.iter().all(|l| l.caller != l.victim), "a fraud call has a victim other than its caller");
    let mut ids: Vec<u64> = labels.iter().map(|l| l.call_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), labels.len(), "one label per fraud call");
}
