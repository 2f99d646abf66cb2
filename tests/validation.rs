//! Every way a dataset can be unreadable stops the run with a non-zero exit
//! and a message naming the file, the column, what was expected and found.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use citywatch_engine::rows::{AlarmRow, write_table};
use common::{citywatch, stderr};

fn alarm() -> AlarmRow {
    AlarmRow {
        alarm_id: 1,
        ts_ms: 1_772_409_600_000,
        category: "burglary".into(),
        priority: 1,
        lat: 36.07,
        lon: 120.38,
        reporter: None,
        suspect_number: None,
        source: "110".into(),
    }
}

fn replay_err(dir: &std::path::Path) -> String {
    let out = dir.join("out");
    let o = citywatch(&["replay", "--quiet", "--input", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success(), "replay should fail");
    assert!(!out.join("alerts.parquet").exists(), "a failed validation writes no alerts");
    stderr(&o)
}

/// An alarms file whose `priority` column is `kind` (or absent when `None`).
fn alarms_with_priority(dir: &std::path::Path, kind: Option<DataType>) {
    let mut fields = vec![
        Field::new("alarm_id", DataType::UInt64, false),
        Field::new("ts_ms", DataType::Int64, false),
        Field::new("category", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![1u64])),
        Arc::new(Int64Array::from(vec![1_772_409_600_000i64])),
        Arc::new(StringArray::from(vec!["burglary"])),
    ];
    if let Some(k) = kind {
        fields.push(Field::new("priority", k, false));
        cols.push(Arc::new(Int64Array::from(vec![1i64])));
    }
    fields.push(Field::new("lat", DataType::Float64, false));
    fields.push(Field::new("lon", DataType::Float64, false));
    fields.push(Field::new("reporter", DataType::Utf8, true));
    fields.push(Field::new("suspect_number", DataType::Utf8, true));
    fields.push(Field::new("source", DataType::Utf8, false));
    cols.push(Arc::new(Float64Array::from(vec![36.07])));
    cols.push(Arc::new(Float64Array::from(vec![120.38])));
    cols.push(Arc::new(StringArray::from(vec![None::<&str>])));
    cols.push(Arc::new(StringArray::from(vec![None::<&str>])));
    cols.push(Arc::new(StringArray::from(vec!["110"])));
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    citywatch_engine::parquet_io::write_parquet_batches(&dir.join("alarms.parquet"), schema, [batch]).unwrap();
}

#[test]
fn missing_stream_tables() {
    let dir = tempfile::tempdir().unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("calls") && msg.contains(dir.path().to_str().unwrap()), "{msg}");
    assert!(msg.contains("at least one of calls, alarms, patrols"), "{msg}");
}

#[test]
fn empty_parts_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("calls")).unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("calls") && msg.contains("no *.parquet parts"), "{msg}");
}

#[test]
fn missing_column() {
    let dir = tempfile::tempdir().unwrap();
    alarms_with_priority(dir.path(), None);
    let msg = replay_err(dir.path());
    assert!(msg.contains("alarms.parquet"), "names the file: {msg}");
    assert!(msg.contains("column `priority` is missing"), "names the column: {msg}");
    assert!(msg.contains("expected uint8"), "says what was expected: {msg}");
    assert!(msg.contains("found columns: alarm_id (uint64)"), "says what was found: {msg}");
}

#[test]
fn wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    alarms_with_priority(dir.path(), Some(DataType::Int64));
    let msg = replay_err(dir.path());
    assert!(msg.contains("alarms.parquet"), "{msg}");
    assert!(msg.contains("column `priority` has type int64; expected uint8"), "{msg}");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("patrols.parquet"), b"").unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("patrols.parquet") && msg.contains("empty (0 bytes)"), "{msg}");
}

#[test]
fn corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calls.parquet"), b"call_id,event\n1,start\n").unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("calls.parquet") && msg.contains("not a readable Parquet file"), "{msg}");
}

#[test]
fn bad_reference_file_is_named_too() {
    let dir = tempfile::tempdir().unwrap();
    write_table(dir.path(), &[alarm()]).unwrap();
    std::fs::write(dir.path().join("grids.parquet"), b"PAR1garbage").unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("grids.parquet") && msg.contains("grids"), "{msg}");
}

#[test]
fn a_valid_file_with_zero_rows_is_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    write_table(dir.path(), &[alarm()]).unwrap();
    write_table::<citywatch_engine::rows::PatrolRow>(dir.path(), &[]).unwrap();
    let out = dir.path().join("out");
    common::replay_ok(dir.path(), &out, 1, &[]);
    let s = common::json(&out.join("summary.json"));
    assert_eq!(s["tables"]["patrols"]["read"], 0);
    assert_eq!(s["tables"]["alarms"]["read"], 1);
}

#[test]
fn bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_table(dir.path(), &[alarm()]).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = citywatch(&["replay", "--input", d, "--out", d, "--lateness", "soon"]);
    assert!(!o.status.success() && stderr(&o).contains("--lateness"), "{}", stderr(&o));
    let o = citywatch(&["replay", "--input", d, "--out", d, "--models", "nope"]);
    assert!(!o.status.success() && stderr(&o).contains("unknown model `nope`"), "{}", stderr(&o));
    let o = citywatch(&["replay", "--input", d, "--out", d, "--speed=-3"]);
    assert!(!o.status.success() && stderr(&o).contains("--speed"), "{}", stderr(&o));
}

#[test]
fn a_grids_name_column_of_another_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_table(dir.path(), &[alarm()]).unwrap();
    let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let mut fields: Vec<Field> =
        ["cell", "grid", "community", "street", "district"].map(|n| Field::new(n, DataType::Utf8, false)).into();
    fields.push(Field::new("community_name", DataType::Int64, true));
    let cols = vec![
        s("8930acc9b47ffff"),
        s("g1"),
        s("c1"),
        s("s1"),
        s("d1"),
        Arc::new(Int64Array::from(vec![7i64])) as ArrayRef,
    ];
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    citywatch_engine::parquet_io::write_parquet_batches(&dir.path().join("grids.parquet"), schema, [batch]).unwrap();
    let msg = replay_err(dir.path());
    assert!(msg.contains("grids.parquet") && msg.contains("community_name"), "{msg}");
    assert!(msg.contains("utf8") && msg.contains("int64"), "{msg}");
}
