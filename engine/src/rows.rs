//! Rows of the contract tables as plain Rust structs (serde-ready), and their
//! conversion to Arrow record batches with the contract's schema.
//!
//! For small writers: test fixtures, golden scenarios, NDJSON ingest (parse
//! lines into these structs, build a batch, decode it with the same
//! [`crate::decode::Decoder`] as replay, so both validate identically).

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};

use crate::contract::Table;
use crate::{Error, Result};

/// A `calls` row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallRow {
    /// Shared by start and end.
    pub call_id: u64,
    /// `start` or `end`.
    pub event: String,
    /// Event time.
    pub ts_ms: i64,
    /// Calling number.
    pub caller: String,
    /// Called number.
    pub callee: String,
    /// Caller cell latitude.
    #[serde(default)]
    pub caller_lat: Option<f64>,
    /// Caller cell longitude.
    #[serde(default)]
    pub caller_lon: Option<f64>,
    /// Callee cell latitude.
    #[serde(default)]
    pub callee_lat: Option<f64>,
    /// Callee cell longitude.
    #[serde(default)]
    pub callee_lon: Option<f64>,
    /// Talk time (end rows).
    #[serde(default)]
    pub duration_s: Option<u32>,
}

/// An `alarms` row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlarmRow {
    /// Alarm id.
    pub alarm_id: u64,
    /// Received.
    pub ts_ms: i64,
    /// Category.
    pub category: String,
    /// 1..4.
    pub priority: u8,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Reporting number.
    #[serde(default)]
    pub reporter: Option<String>,
    /// Suspect number (fraud reports).
    #[serde(default)]
    pub suspect_number: Option<String>,
    /// `110`, `sensor`, `app`, `officer`.
    pub source: String,
}

/// A `patrols` row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatrolRow {
    /// Unit.
    pub unit_id: String,
    /// Event time.
    pub ts_ms: i64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Status.
    pub status: String,
    /// Alarm served.
    #[serde(default)]
    pub alarm_id: Option<u64>,
}

/// A `grids` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GridRow {
    /// H3 cell, hex.
    pub cell: String,
    /// Grid id.
    pub grid: String,
    /// Community id.
    pub community: String,
    /// Street id.
    pub street: String,
    /// District id.
    pub district: String,
}

/// An `officers` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OfficerRow {
    /// Id.
    pub officer_id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Scope.
    pub scope: String,
}

/// A row type of one contract table.
pub trait ContractRow: Sized {
    /// Its table.
    const TABLE: Table;
    /// Rows as one record batch with the contract schema.
    fn to_batch(rows: &[Self]) -> RecordBatch;
}

fn strs<R>(rows: &[R], f: impl Fn(&R) -> Option<&str>) -> ArrayRef {
    let mut b = StringBuilder::new();
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn f64s<R>(rows: &[R], f: impl Fn(&R) -> Option<f64>) -> ArrayRef {
    let mut b = Float64Builder::new();
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn i64s<R>(rows: &[R], f: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    let mut b = Int64Builder::new();
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn u64s<R>(rows: &[R], f: impl Fn(&R) -> Option<u64>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn batch(table: Table, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(table.schema(), columns).expect("columns follow the contract schema")
}

impl ContractRow for CallRow {
    const TABLE: Table = Table::Calls;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut dur = UInt32Builder::new();
        rows.iter().for_each(|r| dur.append_option(r.duration_s));
        batch(
            Table::Calls,
            vec![
                u64s(rows, |r| Some(r.call_id)),
                strs(rows, |r| Some(&r.event)),
                i64s(rows, |r| Some(r.ts_ms)),
                strs(rows, |r| Some(&r.caller)),
                strs(rows, |r| Some(&r.callee)),
                f64s(rows, |r| r.caller_lat),
                f64s(rows, |r| r.caller_lon),
                f64s(rows, |r| r.callee_lat),
                f64s(rows, |r| r.callee_lon),
                Arc::new(dur.finish()),
            ],
        )
    }
}

impl ContractRow for AlarmRow {
    const TABLE: Table = Table::Alarms;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut prio = UInt8Builder::new();
        rows.iter().for_each(|r| prio.append_value(r.priority));
        batch(
            Table::Alarms,
            vec![
                u64s(rows, |r| Some(r.alarm_id)),
                i64s(rows, |r| Some(r.ts_ms)),
                strs(rows, |r| Some(&r.category)),
                Arc::new(prio.finish()),
                f64s(rows, |r| Some(r.lat)),
                f64s(rows, |r| Some(r.lon)),
                strs(rows, |r| r.reporter.as_deref()),
                strs(rows, |r| r.suspect_number.as_deref()),
                strs(rows, |r| Some(&r.source)),
            ],
        )
    }
}

impl ContractRow for PatrolRow {
    const TABLE: Table = Table::Patrols;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        batch(
            Table::Patrols,
            vec![
                strs(rows, |r| Some(&r.unit_id)),
                i64s(rows, |r| Some(r.ts_ms)),
                f64s(rows, |r| Some(r.lat)),
                f64s(rows, |r| Some(r.lon)),
                strs(rows, |r| Some(&r.status)),
                u64s(rows, |r| r.alarm_id),
            ],
        )
    }
}

impl ContractRow for GridRow {
    const TABLE: Table = Table::Grids;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        batch(
            Table::Grids,
            vec![
                strs(rows, |r| Some(&r.cell)),
                strs(rows, |r| Some(&r.grid)),
                strs(rows, |r| Some(&r.community)),
                strs(rows, |r| Some(&r.street)),
                strs(rows, |r| Some(&r.district)),
            ],
        )
    }
}

impl ContractRow for OfficerRow {
    const TABLE: Table = Table::Officers;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        batch(
            Table::Officers,
            vec![
                strs(rows, |r| Some(&r.officer_id)),
                strs(rows, |r| Some(&r.name)),
                strs(rows, |r| Some(&r.role)),
                strs(rows, |r| Some(&r.scope)),
            ],
        )
    }
}

/// Writes rows as `<dir>/<table>.parquet`.
pub fn write_table<R: ContractRow>(dir: &Path, rows: &[R]) -> Result<()> {
    let path = dir.join(format!("{}.parquet", R::TABLE.path_stem()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    crate::parquet_io::write_parquet_batches(&path, R::TABLE.schema(), std::iter::once(R::to_batch(rows)))
}
