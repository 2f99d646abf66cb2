//! Reading the contract columns of a record batch row by row, and naming a
//! bad row: the pieces every table's decoder is made of ([`crate::decode`]
//! for the stream tables, [`crate::load`] for the reference tables, and a
//! model's own evaluation inputs such as fraud_call's labels).
//!
//! A row that breaks the contract becomes a [`Rejected`] entry (null where
//! not allowed, unknown vocabulary, out-of-range coordinates, a value that is
//! not a phone number...), named by file, row and column. Phone numbers are
//! pseudonymised here and never leave this module in the clear.

// Row decoders return `Result<_, Rejected>`: the rejected row is the cold
// path, and boxing would only add an allocation per bad row without
// shrinking the good path.
#![allow(clippy::result_large_err)]

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, PrimitiveArray, RecordBatch};
use arrow_schema::DataType;

use crate::contract::{Column, Table};
use crate::geo::Point;
use crate::parquet_io::{ColumnMap, TableFiles, open};
use crate::pseudonym::{NumberClass, Pseudonymiser, Token, is_phone_number};
use crate::reject::Rejected;
use crate::{Error, Result};

/// A string column in any of Arrow's three layouts.
#[derive(Debug)]
pub enum Strs<'a> {
    /// `utf8`.
    Small(&'a arrow_array::StringArray),
    /// `large_utf8`.
    Large(&'a arrow_array::LargeStringArray),
    /// `utf8_view`.
    View(&'a arrow_array::StringViewArray),
}

impl<'a> Strs<'a> {
    /// The column `a` (a string column of any layout).
    pub fn new(a: &'a dyn Array) -> Strs<'a> {
        match a.data_type() {
            DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
            DataType::Utf8View => Strs::View(a.as_string_view()),
            _ => Strs::Small(a.as_string::<i32>()),
        }
    }

    /// Row `i`'s value; `None` when null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Small(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Row `i` of a primitive column; `None` when null.
#[inline]
pub fn prim<T: arrow_array::ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// Decoding context of one batch: the file and the row offset, to name
/// rejects, and the event times accepted for this batch.
#[derive(Debug)]
pub struct RowCtx<'a> {
    /// The table.
    pub table: Table,
    /// The file the batch comes from.
    pub file: &'a Path,
    /// Row number (within the file) of the batch's first row.
    pub row0: u64,
    /// `(now, lowest, highest)` accepted `ts_ms`, from
    /// [`crate::decode::TimeBounds`] and the wall clock.
    pub(crate) window: (i64, i64, i64),
}

impl<'a> RowCtx<'a> {
    /// The context of a batch of a table read whole (a reference table, a
    /// live request of reference rows): no event-time bounds.
    pub fn whole(table: Table, file: &'a Path, row0: u64) -> Self {
        RowCtx { table, file, row0, window: (0, 0, i64::MAX) }
    }

    /// Rejects row `i` of the batch: `column` (if one is to blame), a short `code` and the reason for people.
    pub fn reject(&self, i: usize, column: Option<&str>, code: &str, reason: String) -> Rejected {
        Rejected::new(self.table, self.file, self.row0 + i as u64, column, code, reason)
    }

    /// Rejects row `i`: column `c` is null where the contract requires a value.
    pub fn null(&self, i: usize, c: &str) -> Rejected {
        self.reject(i, Some(c), "null", format!("`{c}` is null; the contract requires a value"))
    }
}

/// The contract column `name` of `table` in a batch whose columns `map` locates.
pub fn col<'b>(batch: &'b RecordBatch, map: &ColumnMap, table: Table, name: &str) -> &'b dyn Array {
    let idx = table.columns().iter().position(|c: &Column| c.name == name).expect("contract column");
    batch.column(map.0[idx].expect("validated column")).as_ref()
}

/// The point at `lat`, `lon` (degrees): `None` when both are null and `nullable`.
pub(crate) fn point_of(
    ctx: &RowCtx,
    i: usize,
    lat_c: &str,
    lon_c: &str,
    lat: Option<f64>,
    lon: Option<f64>,
    nullable: bool,
) -> Result<Option<Point>, Rejected> {
    match (lat, lon) {
        (None, None) if nullable => Ok(None),
        (None, _) => Err(ctx.null(i, lat_c)),
        (_, None) => Err(ctx.null(i, lon_c)),
        (Some(a), Some(o)) => Point::from_degrees(a, o).map(Some).ok_or_else(|| {
            let c = if (-90.0..=90.0).contains(&a) { lon_c } else { lat_c };
            ctx.reject(
                i,
                Some(c),
                "out_of_range",
                format!(
                    "coordinates ({a}, {o}) out of range; expected WGS84 degrees, lat in [-90, 90], lon in [-180, 180]"
                ),
            )
        }),
    }
}

/// The pseudonym and class of a phone-number value; `None` when null, a
/// `not_a_phone_number` reject when it is not one.
pub fn number_of(
    ctx: &RowCtx,
    i: usize,
    c: &str,
    v: Option<&str>,
    ps: &mut Pseudonymiser,
) -> Result<Option<(Token, NumberClass)>, Rejected> {
    match v {
        None => Ok(None),
        Some(n) if is_phone_number(n) => Ok(Some(ps.pseudonymise(n))),
        Some(_) => Err(ctx.reject(
            i,
            Some(c),
            "not_a_phone_number",
            format!("`{c}` is not a phone number; expected 3-20 digits with an optional leading +"),
        )),
    }
}

/// The pseudonyms of a string column's phone numbers, one per row (`None`
/// for a null or a value that is not a phone number: [`number_pre`] rejects it
/// when its row gets there). One batched lookup per column instead of one per
/// value, so cache misses overlap and a burst of new numbers hashes in parallel.
pub(crate) fn column_tokens(
    column: &Strs,
    rows: usize,
    ps: &mut Pseudonymiser,
    scratch: &mut Vec<(Token, NumberClass)>,
) -> Vec<Option<(Token, NumberClass)>> {
    let mut numbers: Vec<&str> = Vec::with_capacity(rows);
    let mut at: Vec<u32> = Vec::with_capacity(rows);
    for i in 0..rows {
        match column.get(i) {
            Some(n) if is_phone_number(n) => {
                at.push(numbers.len() as u32);
                numbers.push(n);
            }
            _ => at.push(u32::MAX),
        }
    }
    ps.pseudonymise_batch(&numbers, scratch);
    at.into_iter().map(|k| scratch.get(k as usize).copied()).collect()
}

/// [`number_of`] with the pseudonym already looked up by [`column_tokens`]:
/// the same checks, the same rejects.
pub(crate) fn number_pre(
    ctx: &RowCtx,
    i: usize,
    c: &str,
    v: Option<&str>,
    pre: Option<(Token, NumberClass)>,
) -> Result<Option<(Token, NumberClass)>, Rejected> {
    match (v, pre) {
        (None, _) => Ok(None),
        (Some(_), Some(t)) => Ok(Some(t)),
        (Some(_), None) => Err(ctx.reject(
            i,
            Some(c),
            "not_a_phone_number",
            format!("`{c}` is not a phone number; expected 3-20 digits with an optional leading +"),
        )),
    }
}

/// A value of a closed vocabulary: a null or an unknown value is rejected.
pub(crate) fn vocab<T>(
    ctx: &RowCtx,
    i: usize,
    c: &str,
    v: Option<&str>,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
) -> Result<T, Rejected> {
    match v {
        None => Err(ctx.null(i, c)),
        Some(s) => parse(s).ok_or_else(|| {
            let shown: String = s.chars().take(32).collect();
            ctx.reject(i, Some(c), "unknown_value", format!("unknown {c} '{shown}'; expected one of: {}", expected()))
        }),
    }
}

/// Calls `f` on every record batch of a table, file by file, with the
/// context that names its rows (no time bounds: for tables read whole).
pub fn for_each_row(
    files: &TableFiles,
    mut f: impl FnMut(&RowCtx, &RecordBatch, &ColumnMap) -> Result<()>,
) -> Result<u64> {
    let mut rows = 0;
    for path in &files.files {
        let (reader, map) = open(path, files.table)?;
        let mut row0 = 0;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Corrupt {
                file: path.clone(),
                table: files.table.name(),
                detail: e.to_string(),
            })?;
            f(&RowCtx::whole(files.table, path, row0), &batch, &map)?;
            row0 += batch.num_rows() as u64;
        }
        rows += row0;
    }
    Ok(rows)
}
