//! The Toronto conversion keeps every valid row, maps every category, and the
//! committed file is exactly what the converter writes.

mod common;

use std::path::Path;

use citywatch_datasets::toronto::{COMMITTED_ALARMS, SOURCE_CSV, convert, write_dataset};
use citywatch_engine::contract::Table;
use citywatch_engine::event::Event;
use citywatch_engine::load::{read_jurisdiction, read_roster};
use citywatch_engine::parquet_io::locate;
use common::decode;

#[test]
fn conversion_keeps_every_valid_row_and_maps_every_category() {
    assert!(Path::new(SOURCE_CSV).is_file(), "{SOURCE_CSV} is missing: it is committed in the repository");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alarms.parquet");
    let s = convert(Path::new(SOURCE_CSV), &out).unwrap();
    assert_eq!(s.rows_read, 240_992);
    assert_eq!(s.dropped_malformed, 0);
    assert_eq!(s.dropped_before_2014, 1_057);
    assert_eq!(s.rows_kept, s.rows_read - s.dropped_before_2014);
    assert!(s.exact_duplicates > 1_500 && s.exact_duplicates < 2_100, "{}", s.exact_duplicates);
    // Every source category maps, one to one.
    let pairs = [
        ("Break and Enter", "burglary"),
        ("Auto Theft", "vehicle_theft"),
        ("Robbery", "robbery"),
        ("Assault", "assault"),
        ("Theft Over", "theft"),
    ];
    assert_eq!(s.by_source_category.len(), 5);
    for (src, cat) in pairs {
        assert_eq!(s.by_source_category[src], s.by_category[cat], "{src} -> {cat}");
    }
    assert_eq!(s.by_category.values().sum::<u64>(), s.rows_kept);
    assert!(s.first.starts_with("2014-01-01T05:00"), "{}", s.first);
    assert!(s.last.starts_with("2022-01-01T04:00"), "{}", s.last);
    // The committed file is byte-for-byte the converter's output.
    let committed = std::fs::read(COMMITTED_ALARMS).expect("committed datasets/toronto/alarms.parquet");
    assert!(committed == std::fs::read(&out).unwrap(), "committed Toronto alarms differ from a fresh conversion");
}

#[test]
fn toronto_dataset_is_accepted_by_the_engine_and_every_alarm_has_a_grid() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_dataset(dir.path()).unwrap();
    assert_eq!(s.alarms, 239_935);
    let (events, rejects) = decode(dir.path(), Table::Alarms);
    assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
    assert_eq!(events.len() as u64, s.alarms);
    let mut rej = Vec::new();
    let officers = read_roster(&locate(dir.path(), Table::Officers).unwrap().unwrap(), &mut rej).unwrap();
    let j = read_jurisdiction(&locate(dir.path(), Table::Grids).unwrap().unwrap(), officers, &mut rej).unwrap();
    assert!(rej.is_empty());
    assert_eq!(j.resolution(), citywatch_engine::jurisdiction::DEFAULT_GRID_RESOLUTION);
    let mut last = 0;
    for e in &events {
        let Event::Alarm(a) = e else { panic!("alarms only") };
        assert!(a.ts_ms >= last, "sorted by time");
        last = a.ts_ms;
        assert!(j.grid_of_cell(j.cell_of(a.pos)).is_some(), "alarm {} outside the grid", a.alarm_id);
    }
}
