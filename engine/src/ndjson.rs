//! JSON records (one object per line of an ingest body, or one per message
//! of a log) into one Arrow record batch with the contract's schema, so that
//! they go through the same [`crate::decode::Decoder`] as replayed files.
//!
//! A value of the wrong JSON type becomes a null in the batch and a
//! [`RowFault`] naming the column, what it found and what was expected. A
//! record that is not a JSON object is all nulls and one fault. Phone numbers
//! are never echoed in a reason.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};

use crate::contract::{Column, ColumnType, Table};
use crate::rows::{AlarmRow, CallRow, ContractRow, PatrolRow};

/// What is wrong with one record, by its index among the records given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFault {
    /// 0-based index of the record (blank lines not counted).
    pub row: u64,
    /// The column at fault, when one is.
    pub column: Option<&'static str>,
    /// Machine-readable code: `wrong_type`, `not_an_object`, `bad_json`.
    pub code: &'static str,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// Columns holding phone numbers: their values are never echoed in an error.
const NUMBER_COLUMNS: [&str; 4] = ["caller", "callee", "reporter", "suspect_number"];

/// What a refused JSON value was, for an error reason: the value itself
/// (shortened) except in phone-number columns, where only its JSON type.
fn describe(column: &str, v: Option<&serde_json::Value>) -> String {
    use serde_json::Value as V;
    match v {
        _ if !NUMBER_COLUMNS.contains(&column) => {
            let found = v.map(|v| v.to_string()).unwrap_or_default();
            found.chars().take(40).collect()
        }
        Some(V::Number(_)) => "a JSON number".into(),
        Some(V::Bool(_)) => "a JSON boolean".into(),
        Some(V::Array(_)) => "a JSON array".into(),
        Some(V::Object(_)) => "a JSON object".into(),
        _ => "of another JSON type".into(),
    }
}

enum Builder {
    U64(UInt64Builder),
    U32(UInt32Builder),
    U8(UInt8Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Str(StringBuilder),
}

impl Builder {
    fn new(t: ColumnType) -> Builder {
        match t {
            ColumnType::UInt64 => Builder::U64(UInt64Builder::new()),
            ColumnType::UInt32 => Builder::U32(UInt32Builder::new()),
            ColumnType::UInt8 => Builder::U8(UInt8Builder::new()),
            ColumnType::Int64 => Builder::I64(Int64Builder::new()),
            ColumnType::Float64 => Builder::F64(Float64Builder::new()),
            ColumnType::Utf8 => Builder::Str(StringBuilder::new()),
        }
    }

    /// Appends a JSON value; `Err(expected type)` when it has the wrong JSON type or range.
    fn push(&mut self, v: Option<&serde_json::Value>) -> Result<(), &'static str> {
        fn get<T>(
            v: Option<&serde_json::Value>,
            f: impl Fn(&serde_json::Value) -> Option<T>,
            expected: &'static str,
        ) -> Result<Option<T>, &'static str> {
            match v.filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(x) => f(x).map(Some).ok_or(expected),
            }
        }
        match self {
            Builder::U64(b) => b.append_option(get(v, |x| x.as_u64(), "an unsigned integer (uint64)")?),
            Builder::U32(b) => b.append_option(get(
                v,
                |x| x.as_u64().and_then(|n| u32::try_from(n).ok()),
                "an unsigned integer up to 4294967295 (uint32)",
            )?),
            Builder::U8(b) => b.append_option(get(
                v,
                |x| x.as_u64().and_then(|n| u8::try_from(n).ok()),
                "an unsigned integer up to 255 (uint8)",
            )?),
            Builder::I64(b) => b.append_option(get(v, |x| x.as_i64(), "an integer (int64)")?),
            Builder::F64(b) => b.append_option(get(v, |x| x.as_f64(), "a number (float64)")?),
            Builder::Str(b) => match v.filter(|v| !v.is_null()) {
                None => b.append_null(),
                Some(x) => b.append_value(x.as_str().ok_or("a string (utf8)")?),
            },
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::U64(mut b) => Arc::new(b.finish()),
            Builder::U32(mut b) => Arc::new(b.finish()),
            Builder::U8(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
            Builder::Str(mut b) => Arc::new(b.finish()),
        }
    }
}

/// The schema of the batches made here: the contract's, with a reference
/// table's optional columns ([`Table::optional_columns`]), every column nullable.
pub fn schema(table: Table) -> arrow_schema::SchemaRef {
    let fields: Vec<arrow_schema::Field> =
        table.schema_with_optional().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(arrow_schema::Schema::new(fields))
}

/// JSON records into one batch with the contract's schema (all columns
/// nullable: a null in a required column is a row error the decoder reports)
/// and the faults of the records that are not what the contract says. Empty
/// (all-blank) records are skipped and not counted.
pub fn records_to_batch<'a>(table: Table, records: impl IntoIterator<Item = &'a [u8]>) -> (RecordBatch, Vec<RowFault>) {
    let records: Vec<&[u8]> = records.into_iter().filter(|r| !r.iter().all(u8::is_ascii_whitespace)).collect();
    // Fast path: every record parses as the table's row type (no value tree
    // per record). The first that does not sends the whole run through the
    // checking path, which says what is wrong with each; both accept and
    // refuse the same records.
    let typed = match table {
        Table::Calls => typed::<CallRow>(&records),
        Table::Alarms => typed::<AlarmRow>(&records),
        Table::Patrols => typed::<PatrolRow>(&records),
        _ => None,
    };
    match typed {
        Some(batch) => (batch, Vec::new()),
        None => checked(table, records),
    }
}

/// The records as rows of `R`, or `None` at the first that is not one.
fn typed<R: ContractRow + serde::de::DeserializeOwned>(records: &[&[u8]]) -> Option<RecordBatch> {
    let rows: Option<Vec<R>> = records.iter().map(|r| serde_json::from_slice::<R>(r).ok()).collect();
    rows.map(|rows| R::to_batch(&rows))
}

/// The checking path: each record through a JSON value, column by column.
fn checked(table: Table, records: Vec<&[u8]>) -> (RecordBatch, Vec<RowFault>) {
    let cols: Vec<&Column> = table.columns().iter().chain(table.optional_columns()).collect();
    let mut builders: Vec<Builder> = cols.iter().map(|c| Builder::new(c.data_type)).collect();
    let mut faults = Vec::new();
    let mut row = 0u64;
    for record in records {
        if record.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let fault =
            |column: Option<&'static str>, code: &'static str, reason: String| RowFault { row, column, code, reason };
        match serde_json::from_slice::<serde_json::Value>(record) {
            Ok(serde_json::Value::Object(obj)) => {
                for (c, b) in cols.iter().zip(builders.iter_mut()) {
                    if let Err(expected) = b.push(obj.get(c.name)) {
                        b.push(None).ok();
                        let found = describe(c.name, obj.get(c.name));
                        faults.push(fault(
                            Some(c.name),
                            "wrong_type",
                            format!("`{}` is {found}; expected {expected}", c.name),
                        ));
                    }
                }
            }
            Ok(_) => {
                faults.push(fault(None, "not_an_object", "each record must be one JSON object".into()));
                builders.iter_mut().for_each(|b| b.push(None).unwrap_or(()));
            }
            Err(e) => {
                faults.push(fault(None, "bad_json", format!("not JSON: {e}")));
                builders.iter_mut().for_each(|b| b.push(None).unwrap_or(()));
            }
        }
        row += 1;
    }
    let arrays: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
    let batch = RecordBatch::try_new(schema(table), arrays).expect("one array per contract column, each of its type");
    (batch, faults)
}

/// The number of non-blank records (what [`records_to_batch`] would count).
pub fn count_records<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> usize {
    records.into_iter().filter(|r| !r.iter().all(u8::is_ascii_whitespace)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of each stream table, nulls and extra keys included.
    fn records(table: Table) -> Vec<&'static [u8]> {
        match table {
            Table::Calls => vec![
                br#"{"call_id":1,"event":"start","ts_ms":1000,"caller":"+8613800000001","callee":"+8613900000002","caller_lat":36.1,"caller_lon":120.4,"callee_lat":null,"callee_lon":null,"duration_s":null}"#,
                br#"{"call_id":1,"event":"end","ts_ms":61000,"caller":"+8613800000001","callee":"+8613900000002","duration_s":60,"extra":"ignored"}"#,
            ],
            Table::Alarms => vec![
                br#"{"alarm_id":7,"ts_ms":5,"category":"theft","priority":2,"lat":36.07,"lon":120.38,"source":"110"}"#,
                br#"{"alarm_id":8,"ts_ms":6,"category":"fire","priority":1,"lat":36,"lon":120,"reporter":"+8613800000003","suspect_number":null,"source":"app"}"#,
            ],
            _ => vec![
                br#"{"unit_id":"car-1","ts_ms":9,"lat":36.0,"lon":120.0,"status":"available","alarm_id":null}"#,
                br#"{"unit_id":"car-2","ts_ms":10,"lat":36.5,"lon":120.5,"status":"dispatched","alarm_id":7}"#,
            ],
        }
    }

    #[test]
    fn the_typed_path_gives_the_checking_paths_columns() {
        for table in Table::STREAMS {
            let rows = records(table);
            let (fast, faults) = records_to_batch(table, rows.iter().copied());
            assert!(faults.is_empty(), "{table:?}: {faults:?}");
            let (checked, faults) = checked(table, rows.clone());
            assert!(faults.is_empty(), "{table:?}: {faults:?}");
            assert_eq!(fast.num_rows(), rows.len());
            for (i, c) in table.columns().iter().enumerate() {
                assert_eq!(
                    fast.column(i).as_ref(),
                    checked.column(i).as_ref(),
                    "{table:?}.{}: the two paths differ",
                    c.name
                );
            }
        }
    }

    #[test]
    fn one_bad_record_sends_the_run_through_the_checking_path_with_its_reason() {
        let mut rows = records(Table::Alarms);
        rows.insert(
            1,
            br#"{"alarm_id":"seven","ts_ms":5,"category":"theft","priority":2,"lat":1,"lon":2,"source":"110"}"#,
        );
        rows.push(b"[1,2]");
        let (batch, faults) = records_to_batch(Table::Alarms, rows.iter().copied());
        assert_eq!(batch.num_rows(), 4, "one row per record, the bad ones null");
        let got: Vec<(u64, Option<&str>, &str)> = faults.iter().map(|f| (f.row, f.column, f.code)).collect();
        assert_eq!(got, vec![(1, Some("alarm_id"), "wrong_type"), (3, None, "not_an_object")]);
        assert!(batch.column(0).is_valid(0) && batch.column(0).is_null(1) && batch.column(0).is_valid(2));
    }
}
