//! Helpers shared by the datasets tests: read tables back, raw and through the engine.

#![allow(dead_code)]

use std::path::Path;

use arrow_array::RecordBatch;
use citywatch_engine::contract::Table;
use citywatch_engine::decode::{Decoder, TableReader};
use citywatch_engine::event::Event;
use citywatch_engine::parquet_io::{locate, read_whole_file};
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::reference::UnitDirectory;
use citywatch_engine::reject::Rejected;

/// Every batch of a table, raw (no contract decoding).
pub fn raw(dir: &Path, table: Table) -> Vec<RecordBatch> {
    let files = locate(dir, table).expect("locate").unwrap_or_else(|| panic!("{} missing", table.name()));
    files.files.iter().flat_map(|f| read_whole_file(f, "test").expect("read")).collect()
}

/// Decodes a stream table with the engine's reader: (events, rejects).
pub fn decode(dir: &Path, table: Table) -> (Vec<Event>, Vec<Rejected>) {
    let files = locate(dir, table).expect("locate").expect("table present");
    let mut r =
        TableReader::new(files, Decoder::new(table, Pseudonymiser::new(DEMO_KEY, "86"), UnitDirectory::default()));
    let (mut ev, mut rej) = (Vec::new(), Vec::new());
    while r.next_batch(&mut ev, &mut rej).expect("read").is_some() {}
    (ev, rej)
}

/// A string column of a batch.
pub fn strs(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let a = b.column(b.schema().index_of(name).expect("column")).as_string::<i32>();
    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_owned())).collect()
}

/// A primitive column of a batch.
pub fn prims<T: arrow_array::ArrowPrimitiveType>(b: &RecordBatch, name: &str) -> Vec<Option<T::Native>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let a = b.column(b.schema().index_of(name).expect("column")).as_primitive::<T>();
    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
}

/// Every file under a folder, with its bytes, sorted by relative path.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("prefix").display().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}
