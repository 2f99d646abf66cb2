//! The peer-workload scenarios on 20,000-row inputs from the project's own
//! seeded generators, against the exact answers of the plain single-threaded
//! references in `workload.rs`, byte for byte: CSV and Parquet input, 1 to 3
//! workers, small and large pieces; rows that are late under the watermark;
//! errors. Needs nothing outside the repository.

use std::path::Path;

use citywatch_bench::{Format, Options, fanout, table, window_count, workload};

const ROWS: usize = 20_000;

/// Runs `scenario` on `csv` and on its Parquet conversion with 1 and 2 workers,
/// and compares each output with `expected` exactly.
fn check(dir: &Path, csv: &Path, expected: &Path, scenario: citywatch_bench::Scenario) {
    let want = std::fs::read_to_string(expected).unwrap();
    assert!(want.lines().count() > 10, "the reference answer has rows to compare");
    // Small pieces (CSV byte ranges, Parquet row groups) as well as one or two, so
    // windows close while rows are still arriving and the workers wait for each
    // other's watermarks.
    let mut inputs = vec![];
    for row_group_rows in [1_000, table::ROW_GROUP_ROWS] {
        let parquet = dir.join(format!("events-{row_group_rows}.parquet"));
        let layout = table::Layout { row_group_rows, ..table::Layout::default() };
        assert_eq!(table::convert(csv, &parquet, layout).unwrap(), ROWS as u64);
        inputs.push((parquet, Format::Parquet, 0));
    }
    for piece_bytes in [16 << 10, 1 << 20] {
        inputs.push((csv.to_owned(), Format::Csv, piece_bytes));
    }
    for (input, format, piece_bytes) in &inputs {
        for workers in [1, 2, 3] {
            let options = Options { workers, piece_bytes: (*piece_bytes).max(1) };
            let out = dir.join("out.csv");
            let summary = scenario(input, &out, *format, &options).unwrap();
            assert_eq!((summary.stats.rows, summary.stats.late, summary.stats.operator_late), (ROWS as u64, 0, 0));
            let got = std::fs::read_to_string(&out).unwrap();
            assert!(
                got == want,
                "{} with {workers} workers ({options:?}): output differs from the reference",
                input.display()
            );
        }
    }
}

#[test]
fn fanout_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let expected = dir.path().join("ref_out.csv");
    workload::generate_fanout(&csv, ROWS, workload::DEFAULT_SEED).unwrap();
    let stats = workload::reference_fanout(&csv, &expected).unwrap();
    assert_eq!((stats.rows, stats.late), (ROWS as u64, 0), "the generator makes no late rows");
    check(dir.path(), &csv, &expected, fanout::run_scenario);
}

#[test]
fn window_count_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let expected = dir.path().join("ref_out.csv");
    workload::generate_window_count(&csv, ROWS, workload::DEFAULT_SEED).unwrap();
    workload::reference_window_count(&csv, &expected).unwrap();
    check(dir.path(), &csv, &expected, window_count::run_scenario);
}

#[test]
fn a_file_that_is_not_the_workload_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    std::fs::write(&csv, "ts_ms,caller,callee,duration_s\n1700000000000,123,x,5\n").unwrap();
    let two = Options { workers: 2, ..Options::default() };
    let err = fanout::run_scenario(&csv, &dir.path().join("o.csv"), Format::Csv, &two).unwrap_err().to_string();
    assert!(err.contains("events.csv") && err.contains("line 2"), "{err}");
    let err = window_count::run_scenario(&csv, &dir.path().join("o.csv"), Format::Csv, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1") && err.contains("ts_ms,phone,cell,kind"), "{err}");
}

/// Rows far behind the watermark, some in pieces read by another worker than the
/// rows that made them late: dropped exactly as the reference drops them, for any number
/// of workers and piece size.
#[test]
fn late_rows_are_dropped_as_the_reference_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let expected = dir.path().join("ref_out.csv");
    let mut text = String::from("ts_ms,caller,callee,duration_s\n");
    let t0 = 1_700_000_000_000u64;
    for i in 0..6_000u64 {
        let ts = t0 + i * 400;
        text += &format!("{ts},{},{},{}\n", 10_000_000_000 + i % 20, 20_000_000_000 + (i * 7_919) % 997, i % 90);
        if i % 150 == 149 {
            // Back in time: late if the watermark has passed that window's end.
            let back = [1_000, 180_000, 480_000, 720_000][(i / 150) as usize % 4];
            text += &format!("{},{},{},5\n", ts - back, 10_000_000_000 + i % 20, 30_000_000_000 + i);
        }
    }
    std::fs::write(&csv, &text).unwrap();
    let stats = workload::reference_fanout(&csv, &expected).unwrap();
    let late = stats.late;
    assert!(late > 10 && late < 35, "some of the 40 rows back in time are late: {stats:?}");
    let want = std::fs::read_to_string(&expected).unwrap();
    assert!(want.lines().count() > 10, "{want}");
    // Pieces of one or two rows put late rows first in a piece, after a row read
    // by another worker.
    let mut inputs = vec![];
    for piece_bytes in [40, 8 << 10, 1 << 20] {
        inputs.push((csv.clone(), Format::Csv, piece_bytes));
    }
    for row_group_rows in [2, 700] {
        let parquet = dir.path().join(format!("events-{row_group_rows}.parquet"));
        table::convert(&csv, &parquet, table::Layout { row_group_rows, ..table::Layout::default() }).unwrap();
        inputs.push((parquet, Format::Parquet, 1));
    }
    for (input, format, piece_bytes) in &inputs {
        for workers in [1, 2, 3] {
            let options = Options { workers, piece_bytes: *piece_bytes };
            let out = dir.path().join("out.csv");
            let summary = fanout::run_scenario(input, &out, *format, &options).unwrap();
            assert_eq!((summary.stats.rows, summary.stats.late, summary.stats.operator_late), (6_040, late, 0));
            assert!(std::fs::read_to_string(&out).unwrap() == want, "{}, {options:?}", input.display());
        }
    }
}

/// A bad line in a piece read late by one worker stops every worker (none waits
/// for the failed piece's watermark) and names the line.
#[test]
fn a_bad_line_far_into_the_file_stops_all_workers_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let mut text = String::from("ts_ms,caller,callee,duration_s\n");
    for i in 0..5_000u64 {
        text += &format!("{},{},{},{}\n", 1_700_000_000_000 + i, 10_000_000_000 + i % 7, 20_000_000_000 + i, 40);
    }
    text += "1700000009999,012345678901,20000000000,4\n";
    for i in 0..100u64 {
        text += &format!("{},{},{},{}\n", 1_700_000_010_000 + i, 10_000_000_000u64, 20_000_000_000u64, 40);
    }
    std::fs::write(&csv, &text).unwrap();
    for workers in [1, 2, 3] {
        let options = Options { workers, piece_bytes: 4 << 10 };
        let err = fanout::run_scenario(&csv, &dir.path().join("o.csv"), Format::Csv, &options).unwrap_err().to_string();
        assert!(err.contains("line 5002") && err.contains("012345678901"), "{err}");
    }
}
