//! `import_incidents` on small exports shaped like real ones (committed under
//! `tests/fixtures/import/`): quoted fields with commas, quotes and newlines, a
//! BOM, several date formats, local times in DST gaps and repeats, missing and
//! placeholder coordinates, projected coordinates, and a Parquet export.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type, UInt64Type};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use citywatch_datasets::import::{ImportOptions, import_incidents};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

/// (alarm_id, ts_ms, category, priority, lat, lon) of the written alarms.
fn alarms(dir: &Path) -> Vec<(u64, i64, String, u8, f64, f64)> {
    let batches = citywatch_engine::parquet_io::read_whole_file(&dir.join("alarms.parquet"), "alarms").unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = |n: &str| b.column(b.schema().index_of(n).unwrap()).clone();
        let (id, ts, cat, pri, lat, lon) =
            (col("alarm_id"), col("ts_ms"), col("category"), col("priority"), col("lat"), col("lon"));
        for i in 0..b.num_rows() {
            out.push((
                id.as_primitive::<UInt64Type>().value(i),
                ts.as_primitive::<Int64Type>().value(i),
                cat.as_string::<i32>().value(i).to_owned(),
                pri.as_primitive::<UInt8Type>().value(i),
                lat.as_primitive::<Float64Type>().value(i),
                lon.as_primitive::<Float64Type>().value(i),
            ));
        }
    }
    out
}

fn rejected(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("rejected.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc().timestamp_millis()
}

#[test]
fn a_calls_for_service_csv() {
    let out = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        input: fixture("calls_for_service.csv"),
        out: out.path().to_owned(),
        time: "Occurred".into(),
        time_formats: vec![
            "%Y-%m-%d %H:%M:%S".into(),
            "%m/%d/%Y %I:%M:%S %p".into(),
            "rfc3339".into(),
            "%Y-%m-%d".into(),
        ],
        time_zone: "America/Toronto".into(),
        lat_lon: Some(("Latitude".into(), "Longitude".into())),
        category: "Call Type".into(),
        categories: fixture("categories.csv"),
        id: Some("Incident Number".into()),
        priority: Some("Priority".into()),
        analyst: "A01".into(),
        ..ImportOptions::default()
    };
    let s = import_incidents(&opts).unwrap();
    assert_eq!((s.rows_read, s.alarms, s.skipped, s.rejected), (12, 5, 1, 6), "{s}");
    assert_eq!((s.dst_gap_rows, s.dst_ambiguous_rows), (1, 1), "{s}");
    let codes: Vec<(String, u64)> = s.rejected_by_code.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let want = [("bad_time", 1), ("duplicate", 1), ("null", 1), ("out_of_range", 2), ("unknown_value", 1)];
    assert_eq!(codes, want.map(|(k, v)| (k.to_owned(), v)).to_vec());
    let a = alarms(out.path());
    let got: Vec<(i64, &str, u8)> = a.iter().map(|r| (r.1, r.2.as_str(), r.3)).collect();
    assert_eq!(
        got,
        vec![
            (utc(2021, 3, 14, 3, 15), "burglary", 2),    // 22:15 EST
            (utc(2021, 3, 14, 7, 30), "disturbance", 3), // 02:30 does not exist: 03:30 EDT
            (utc(2021, 3, 14, 13, 0), "traffic", 4),     // RFC 3339 with its offset
            (utc(2021, 11, 7, 5, 30), "theft", 3),       // 01:30 twice: the first (EDT); no priority: the mapping's
            (utc(2021, 11, 9, 5, 0), "robbery", 1),      // a date alone: local midnight; a multi-line quoted address
        ]
    );
    assert_eq!((a[0].4, a[0].5), (43.6534, -79.3841));
    assert!(a.iter().all(|r| r.0 != 24), "text ids are hashed, not cut to their digits");
    let ids: std::collections::HashSet<u64> = a.iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 5);
    // Rejected rows name the row and column, never the raw value.
    let r = rejected(out.path());
    assert_eq!(r.len(), 6);
    let no_coords = r.iter().find(|r| r["code"] == "null").unwrap();
    assert_eq!((no_coords["row"].as_u64(), no_coords["column"].as_str()), (Some(4), Some("Latitude")));
    assert!(r.iter().all(|r| !r.to_string().contains("yesterday")));
    // The folder is a dataset: an officers table with the analyst, readable by replay's reader.
    assert!(s.wrote_officers && out.path().join("officers.parquet").exists());
    let (events, _) = citywatch_engine::replay::merged_events(&citywatch_engine::replay::ReplayOptions {
        input: out.path().to_owned(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(events.len(), 5);
}

#[test]
fn projected_coordinates_with_an_epsg_code() {
    let out = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        input: fixture("projected_utm17n.csv"),
        out: out.path().to_owned(),
        time: "report_date".into(),
        time_formats: vec!["%Y-%m-%d %H:%M".into()],
        time_zone: "America/Toronto".into(),
        xy: Some(("x".into(), "y".into(), 32617)),
        category: "offence".into(),
        categories: fixture("projected_categories.csv"),
        id: Some("id".into()),
        analyst: "A01".into(),
        ..ImportOptions::default()
    };
    let s = import_incidents(&opts).unwrap();
    assert_eq!((s.alarms, s.rejected), (3, 2), "{s}");
    assert_eq!(s.rejected_by_code.get("null"), Some(&1));
    assert_eq!(s.rejected_by_code.get("bad_number"), Some(&1));
    // UTM 17N easting/northing of three Toronto corners, computed independently (Snyder's series).
    let want = [(43.6534, -79.3841, "burglary"), (43.7001, -79.4163, "burglary"), (43.6426, -79.3871, "assault")];
    for (a, (lat, lon, cat)) in alarms(out.path()).iter().zip(want) {
        assert!((a.4 - lat).abs() < 1e-5 && (a.5 - lon).abs() < 1e-5, "{a:?} vs {lat}, {lon}");
        assert_eq!(a.2, cat, "`*` maps what the file does not list");
    }
}

#[test]
fn a_parquet_export_with_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.parquet");
    let ts = TimestampMillisecondArray::from(vec![Some(utc(2022, 1, 2, 3, 4)), Some(utc(2022, 1, 3, 0, 0)), None])
        .with_timezone("UTC");
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("case", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
        ("offense", Arc::new(StringArray::from(vec!["ASSAULT", "ASSAULT", "ASSAULT"]))),
        ("when", Arc::new(ts)),
        ("lat", Arc::new(Float64Array::from(vec![Some(40.7), None, Some(40.7)]))),
        ("lon", Arc::new(Float64Array::from(vec![Some(-74.0), Some(-74.0), Some(-74.0)]))),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&input).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = dir.path().join("city");
    let opts = ImportOptions {
        input,
        out: out.clone(),
        time: "when".into(),
        time_formats: vec!["rfc3339".into()],
        time_zone: "America/New_York".into(),
        lat_lon: Some(("lat".into(), "lon".into())),
        category: "offense".into(),
        categories: fixture("categories.csv"),
        id: Some("case".into()),
        analyst: "A01".into(),
        ..ImportOptions::default()
    };
    let s = import_incidents(&opts).unwrap();
    assert_eq!((s.alarms, s.rejected), (1, 2), "{s}");
    assert_eq!(alarms(&out)[0].1, utc(2022, 1, 2, 3, 4));
    let mut bad = opts.clone();
    bad.category = "offence".into();
    let err = import_incidents(&bad).unwrap_err().to_string();
    assert!(err.contains("no column `offence`") && err.contains("offense"), "{err}");
}

#[test]
fn bad_options_say_what_to_do() {
    let out = tempfile::tempdir().unwrap();
    let opts = ImportOptions {
        input: fixture("calls_for_service.csv"),
        out: out.path().to_owned(),
        time: "Occurred".into(),
        time_formats: vec!["rfc3339".into()],
        time_zone: "Toronto".into(),
        lat_lon: Some(("Latitude".into(), "Longitude".into())),
        category: "Call Type".into(),
        categories: fixture("categories.csv"),
        analyst: "A01".into(),
        ..ImportOptions::default()
    };
    assert!(import_incidents(&opts).unwrap_err().to_string().contains("IANA"));
    let epsg = ImportOptions {
        time_zone: "UTC".into(),
        lat_lon: None,
        xy: Some(("Longitude".into(), "Latitude".into(), 1)),
        ..opts.clone()
    };
    assert!(import_incidents(&epsg).unwrap_err().to_string().contains("EPSG:1"));
    let map = ImportOptions { time_zone: "UTC".into(), categories: fixture("projected_utm17n.csv"), ..opts };
    assert!(import_incidents(&map).unwrap_err().to_string().contains("source,category"));
}
