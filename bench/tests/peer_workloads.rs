//! The peer-workload scenarios on a 20,000-row prefix of each generator's output,
//! against the workload's own `ref.py` answer, byte for byte: CSV and Parquet
//! input, 1 and 2 workers. Needs python3 and `shared/bench-workloads` beside the
//! repository (as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use citywatch_bench::{Format, fanout, table, window_count};

const ROWS: usize = 20_000;

fn workloads() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench-workloads")
}

fn python(script: &Path, args: &[&Path], env: &[(&str, String)]) {
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 runs");
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
}

/// Runs `scenario` on `csv` and on its Parquet conversion with 1 and 2 workers,
/// and compares each output with `expected` exactly.
fn check(dir: &Path, csv: &Path, expected: &Path, scenario: citywatch_bench::Scenario) {
    let want = std::fs::read_to_string(expected).unwrap();
    assert!(want.lines().count() > 10, "the reference answer has rows to compare");
    let parquet = dir.join("events.parquet");
    assert_eq!(table::convert(csv, &parquet).unwrap(), ROWS as u64);
    for (input, format) in [(csv, Format::Csv), (parquet.as_path(), Format::Parquet)] {
        for workers in [1, 2] {
            // Small batches, so windows close while rows are still arriving.
            for batch_rows in [1_000, 32 * 1024] {
                let out = dir.join(format!("out-{format:?}-{workers}-{batch_rows}.csv"));
                let summary = scenario(input, &out, format, workers, batch_rows).unwrap();
                assert_eq!((summary.stats.rows, summary.stats.late, summary.stats.operator_late), (ROWS as u64, 0, 0));
                let got = std::fs::read_to_string(&out).unwrap();
                assert!(
                    got == want,
                    "{format:?} input, {workers} workers, batches of {batch_rows}: output differs from ref.py"
                );
            }
        }
    }
}

#[test]
fn fanout_prefix_matches_ref_py() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let expected = dir.path().join("ref_out.csv");
    let w = workloads().join("fanout");
    python(&w.join("gen.py"), &[&csv], &[("FANOUT_ROWS", ROWS.to_string())]);
    python(&w.join("ref.py"), &[&csv, &expected], &[]);
    check(dir.path(), &csv, &expected, fanout::run_scenario);
}

#[test]
fn window_count_prefix_matches_ref_py() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.csv");
    let csv = dir.path().join("events.csv");
    let expected = dir.path().join("ref_out.csv");
    let w = workloads().join("window-count");
    // gen.py has a fixed row count: keep the header and the first ROWS rows.
    python(&w.join("gen.py"), &[&full], &[]);
    let text = std::fs::read_to_string(&full).unwrap();
    let prefix: String = text.lines().take(ROWS + 1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&csv, prefix).unwrap();
    python(&w.join("ref.py"), &[&csv, &expected], &[]);
    check(dir.path(), &csv, &expected, window_count::run_scenario);
}

#[test]
fn a_file_that_is_not_the_workload_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    std::fs::write(&csv, "ts_ms,caller,callee,duration_s\n1700000000000,123,x,5\n").unwrap();
    let err = fanout::run_scenario(&csv, &dir.path().join("o.csv"), Format::Csv, 2, 1024).unwrap_err().to_string();
    assert!(err.contains("events.csv") && err.contains("line 2"), "{err}");
    let err =
        window_count::run_scenario(&csv, &dir.path().join("o.csv"), Format::Csv, 1, 1024).unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("ts_ms,phone,cell,kind"), "{err}");
}
