//! Bad rows go to rejected.ndjson with table, row and reason, are counted in
//! the summary, and never stop the run: the good rows around them still count.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use citywatch_engine::contract::Table;
use citywatch_engine::rows::{AlarmRow, CallRow, PatrolRow, write_table};
use citywatch_engine::testkit::T0_MS;

fn alarm(id: u64, category: &str, priority: u8, lat: f64) -> AlarmRow {
    AlarmRow {
        alarm_id: id,
        ts_ms: T0_MS + id as i64 * 1000,
        category: category.into(),
        priority,
        lat,
        lon: 120.38,
        reporter: Some("13900000001".into()),
        suspect_number: None,
        source: "110".into(),
    }
}

fn call(id: u64, event: &str, ts: i64, caller: &str) -> CallRow {
    CallRow {
        call_id: id,
        event: event.into(),
        ts_ms: T0_MS + ts,
        caller: caller.into(),
        callee: "13900000002".into(),
        caller_lat: Some(36.0),
        caller_lon: Some(120.0),
        callee_lat: None,
        callee_lon: None,
        duration_s: (event == "end").then_some(10),
    }
}

/// Replays `input` with 2 workers into `out`; the lines of its `rejected.ndjson`.
fn replay_rejected(input: &std::path::Path, out: &std::path::Path) -> Vec<serde_json::Value> {
    common::replay_ok(input, out, 2, &[]);
    std::fs::read_to_string(out.join("rejected.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bad_rows_are_rejected_counted_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_table(
        d,
        &[
            alarm(1, "burglary", 1, 36.07),
            alarm(2, "arson", 1, 36.07), // unknown category
            alarm(3, "theft", 9, 36.07), // priority out of range
            alarm(4, "theft", 2, 200.0), // latitude out of range
            alarm(5, "robbery", 2, 36.07),
        ],
    )
    .unwrap();
    write_table(
        d,
        &[
            call(1, "start", 0, "13900000003"),
            call(1, "end", 5_000, "13900000003"),
            call(2, "end", 6_000, "13900000003"),    // end without a start
            call(3, "ring", 7_000, "13900000003"),   // unknown event
            call(4, "start", 8_000, "not-a-number"), // caller is not a phone number
        ],
    )
    .unwrap();
    let fix = |status: &str| PatrolRow {
        unit_id: "U1".into(),
        ts_ms: T0_MS,
        lat: 36.0,
        lon: 120.0,
        status: status.into(),
        alarm_id: None,
    };
    write_table(d, &[fix("available"), fix("napping")]).unwrap();
    // A null in a non-nullable column: written with a schema that allows it.
    let schema = Arc::new(arrow_schema::Schema::new(
        Table::Calls.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![9u64])),
        Arc::new(StringArray::from(vec!["start"])),
        Arc::new(Int64Array::from(vec![T0_MS + 9_000])),
        Arc::new(StringArray::from(vec![None::<&str>])),
        Arc::new(StringArray::from(vec!["13900000002"])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
        Arc::new(UInt32Array::from(vec![None::<u32>])),
    ];
    std::fs::create_dir(d.join("calls")).unwrap();
    std::fs::rename(d.join("calls.parquet"), d.join("calls/part-0.parquet")).unwrap();
    citywatch_engine::parquet_io::write_parquet_batches(
        &d.join("calls/part-1.parquet"),
        schema.clone(),
        [RecordBatch::try_new(schema, cols).unwrap()],
    )
    .unwrap();

    let out = d.join("out");
    let lines = replay_rejected(d, &out);
    let find = |table: &str, code: &str| {
        lines
            .iter()
            .find(|r| r["table"] == table && r["code"] == code)
            .unwrap_or_else(|| panic!("no {table}/{code} in {lines:#?}"))
            .clone()
    };
    let r = find("alarms", "unknown_value");
    assert_eq!((r["row"].as_u64(), r["column"].as_str()), (Some(1), Some("category")));
    assert!(r["reason"].as_str().unwrap().contains("unknown category 'arson'"));
    assert_eq!(find("alarms", "out_of_range")["row"], 2, "priority 9");
    assert!(lines.iter().any(|r| r["table"] == "alarms" && r["row"] == 3 && r["column"] == "lat"));
    assert_eq!(find("calls", "end_without_start")["row"], 2);
    assert_eq!(find("calls", "unknown_value")["column"], "event");
    assert_eq!(find("calls", "not_a_phone_number")["column"], "caller");
    let null = find("calls", "null");
    assert_eq!((null["column"].as_str(), null["row"].as_u64()), (Some("caller"), Some(0)));
    assert!(null["file"].as_str().unwrap().ends_with("part-1.parquet"));
    assert_eq!(find("patrols", "unknown_value")["column"], "status");
    assert!(
        !std::fs::read_to_string(out.join("rejected.ndjson")).unwrap().contains("not-a-number"),
        "raw values stay out of the log"
    );

    let s = common::json(&out.join("summary.json"));
    assert_eq!(s["tables"]["alarms"]["read"], 5);
    assert_eq!(s["tables"]["alarms"]["rejected"], 3);
    assert_eq!(s["tables"]["calls"]["rejected"], 4);
    assert_eq!(s["tables"]["patrols"]["rejected"], 1);
    assert_eq!(lines.len(), 8);
    assert_eq!(s["events"], 2 + 2 + 1, "the good rows still flow");
    let reasons = s["top_reject_reasons"].as_array().unwrap();
    for column in ["priority", "lat"] {
        assert!(
            reasons.iter().any(|r| r["table"] == "alarms"
                && r["column"] == column
                && r["code"] == "out_of_range"
                && r["count"] == 1),
            "{reasons:#?}"
        );
    }
}

/// A calls table of several files, each of several record batches and row
/// groups, is decoded on several threads, batch by batch: the events and the
/// rejected rows (file and row number) must come out exactly as one thread
/// reading in file order would give them.
#[test]
fn batches_decoded_in_parallel_keep_file_order_and_row_numbers() {
    use citywatch_engine::rows::ContractRow;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("calls")).unwrap();
    // Two parts of 20,000 rows (3 record batches each, row groups of 3,000
    // rows) opening and closing their own calls; the planted faults sit in
    // different batches, so on different decode threads.
    let mut expected_bad: Vec<(String, u64, &str)> = Vec::new();
    let mut expected_ids = Vec::new();
    for part in 0..2u64 {
        let mut rows = Vec::new();
        for i in 0..10_000u64 {
            let id = part * 100_000 + i;
            let ts = (part * 10_000 + i) as i64 * 10_000;
            rows.push(call(id, "start", ts, "13900000003"));
            rows.push(call(id, "end", ts + 5_000, "13900000003"));
        }
        let file = format!("part-{part}.parquet");
        for (row, fault) in [(3usize, "ring"), (8200, "bad-number"), (16385, "ring")] {
            if fault == "ring" {
                rows[row].event = "ring".into();
                expected_bad.push((file.clone(), row as u64, "unknown_value"));
            } else {
                rows[row].caller = "not-a-number".into();
                expected_bad.push((file.clone(), row as u64, "not_a_phone_number"));
            }
        }
        // Rows 3 and 16385 end calls (rejected: those calls stay open); row
        // 8200 starts a call (rejected), so its end at row 8201 is an end
        // without a start, rejected by the merge.
        expected_bad.push((file.clone(), 8201, "end_without_start"));
        for (row, r) in rows.iter().enumerate() {
            if ![3, 8200, 8201, 16385].contains(&row) {
                expected_ids.push((r.call_id, r.event.clone()));
            }
        }
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(3_000)).build();
        let f = std::fs::File::create(d.join("calls").join(&file)).unwrap();
        let mut w = ArrowWriter::try_new(f, Table::Calls.schema(), Some(props)).unwrap();
        w.write(&CallRow::to_batch(&rows)).unwrap();
        w.close().unwrap();
    }
    let (events, _) = citywatch_engine::replay::merged_events(&citywatch_engine::replay::ReplayOptions {
        input: d.to_owned(),
        ..Default::default()
    })
    .unwrap();
    let got: Vec<(u64, String)> = events
        .iter()
        .map(|e| match e {
            citywatch_engine::event::Event::Call(c) => (c.call_id, c.phase.as_str().to_owned()),
            other => panic!("only calls here, got {other:?}"),
        })
        .collect();
    assert_eq!(got, expected_ids);

    let out = d.join("out");
    let lines = replay_rejected(d, &out);
    let mut got_bad: Vec<(String, u64, String)> = lines
        .iter()
        .map(|r| {
            let file = r["file"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
            (file, r["row"].as_u64().unwrap(), r["code"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut want: Vec<(String, u64, String)> = expected_bad.into_iter().map(|(f, r, c)| (f, r, c.to_owned())).collect();
    got_bad.sort();
    want.sort();
    assert_eq!(got_bad, want);
    let s = common::json(&out.join("summary.json"));
    assert_eq!(s["tables"]["calls"]["read"], 40_000);
    assert_eq!(s["events"], expected_ids.len());
}

/// Issue 16: a row dated far ahead of the clock is rejected as
/// `out_of_range` in replay too, and the watermark never jumps to it: the
/// rows after it are not late.
#[test]
fn issue_16_far_future_row_is_rejected_and_the_watermark_never_jumps_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut future = alarm(2, "burglary", 1, 36.07);
    future.ts_ms = i64::MAX;
    let mut next_year = alarm(3, "burglary", 1, 36.07);
    next_year.ts_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        + 365 * 86_400_000;
    write_table(d, &[alarm(1, "burglary", 1, 36.07), future, next_year, alarm(4, "burglary", 1, 36.07)]).unwrap();
    let out = dir.path().join("out");
    let lines = replay_rejected(d, &out);
    let far: Vec<_> = lines.iter().filter(|l| l["code"] == "out_of_range" && l["column"] == "ts_ms").collect();
    assert_eq!(far.len(), 2, "{lines:?}");
    assert!(far[0]["reason"].as_str().unwrap().contains("ahead of this machine's clock"), "{far:?}");
    let s = common::json(&out.join("summary.json"));
    assert_eq!(s["events"], 2);
    assert_eq!(s["late_events"], 0, "alarm 4 is on time: the watermark did not jump");
}
