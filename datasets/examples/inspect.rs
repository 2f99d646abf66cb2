//! Prints how separable fraud callers are in a generated dataset: per caller,
//! calls, distinct callees and median talk time, for fraud numbers and for the
//! busiest legitimate callers. A sanity check that fraud is detectable but not trivially.
//!
//! `cargo run --release -p citywatch-datasets --example inspect -- /tmp/citywatch-gen`

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use citywatch_engine::contract::Table;
use citywatch_engine::parquet_io::{locate, read_whole_file};
use citywatch_engine::pseudonym::NumberClass;

#[derive(Default)]
struct Caller {
    calls: u64,
    callees: HashSet<String>,
    durations: Vec<u32>,
}

fn main() -> Result<(), citywatch_datasets::Error> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/citywatch-gen".into());
    let dir = Path::new(&dir);
    let mut fraud = HashSet::new();
    for f in locate(dir, Table::FraudLabels)?.map(|t| t.files).unwrap_or_default() {
        for b in read_whole_file(&f, "labels")? {
            let c = b.column(1).as_string::<i32>();
            fraud.extend((0..c.len()).map(|i| c.value(i).to_owned()));
        }
    }
    let mut callers: HashMap<String, Caller> = HashMap::new();
    for f in locate(dir, Table::Calls)?.map(|t| t.files).unwrap_or_default() {
        for b in read_whole_file(&f, "calls")? {
            let ev = b.column(1).as_string::<i32>();
            let caller = b.column(3).as_string::<i32>();
            let callee = b.column(4).as_string::<i32>();
            let dur = b.column(9).as_primitive::<UInt32Type>();
            for i in 0..b.num_rows() {
                if ev.value(i) != "end" {
                    continue;
                }
                let c = callers.entry(caller.value(i).to_owned()).or_default();
                c.calls += 1;
                c.callees.insert(callee.value(i).to_owned());
                c.durations.push(dur.value(i));
            }
        }
    }
    let mut rows: Vec<(u64, usize, u32, bool, String)> = callers
        .into_iter()
        .map(|(n, mut c)| {
            c.durations.sort_unstable();
            (c.calls, c.callees.len(), c.durations[c.durations.len() / 2], fraud.contains(&n), n)
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.4.cmp(&b.4)));
    let risky = |n: &str| NumberClass::classify(n, "86").is_risky_prefix();
    for k in [100, 1_000, 10_000] {
        let top = &rows[..k.min(rows.len())];
        println!(
            "top {k} callers by distinct callees: {} fraud numbers (of {} in labels), {} with a risky prefix",
            top.iter().filter(|r| r.3).count(),
            fraud.len(),
            top.iter().filter(|r| risky(&r.4)).count()
        );
    }
    let fraud_rows: Vec<_> = rows.iter().filter(|r| r.3).collect();
    let med = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "fraud numbers: median {} calls, {} distinct callees, median talk {} s; {} of {} have a risky prefix",
        med(fraud_rows.iter().map(|r| r.0).collect()),
        med(fraud_rows.iter().map(|r| r.1 as u64).collect()),
        med(fraud_rows.iter().map(|r| u64::from(r.2)).collect()),
        fraud_rows.iter().filter(|r| risky(&r.4)).count(),
        fraud_rows.len()
    );
    let legit_risky = rows.iter().filter(|r| !r.3 && risky(&r.4)).count();
    println!("legitimate callers with a risky prefix: {legit_risky}");
    Ok(())
}
