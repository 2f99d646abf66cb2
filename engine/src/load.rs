//! Loading the reference tables of a dataset folder (officers, grids,
//! subscribers, and the unit names of a patrols table) into the
//! [`Reference`] every worker shares, with every version of their rows
//! (`valid_from_ms`, `status`: see "Reference data that changes" in
//! `docs/input-contract.md`). Bad rows are returned as rejects, as for the
//! stream tables; a table that makes routing ambiguous is an error. The row
//! readers of one batch ([`officer_rows`], [`subscriber_rows`]) also read
//! the rows the live service is sent.

#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type};
use arrow_array::{PrimitiveArray, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::columns::{RowCtx, Strs, col, column_tokens, for_each_row, number_pre, point_of, prim, vocab};
use crate::contract::{ALWAYS, DutyStatus, Role, STATUS, SubscriberStatus, Table, VALID_FROM};
use crate::decode::MAX_UNIT_ID_BYTES;
use crate::event::unit_token;
use crate::jurisdiction::{AreaNames, GridInfo, Jurisdiction, Officer, RosterRow};
use crate::parquet_io::{ColumnMap, TableFiles, check, locate, type_name};
use crate::pseudonym::{Pseudonymiser, Token};
use crate::reference::{Reference, Subscriber, Subscribers, UnitDirectory};
use crate::reject::Rejected;
use crate::{Error, Result};

/// Loads the reference tables of a dataset folder (officers, grids,
/// subscribers; each optional, the default grid without grids) for live mode.
/// Bad rows are returned as rejects, as in replay.
pub fn reference(dir: &Path, pseudonymiser: &Pseudonymiser) -> Result<(Reference, Vec<Rejected>)> {
    if !dir.is_dir() {
        return Err(Error::config(
            "reference folder",
            format!(
                "{} is not a folder; expected a dataset folder with grids/officers/subscribers tables",
                dir.display()
            ),
        ));
    }
    let mut rejects = Vec::new();
    let (jurisdiction, _) = jurisdiction(dir, &mut rejects)?;
    let subscribers = match locate(dir, Table::Subscribers)? {
        Some(f) => read_subscribers(&f, &mut pseudonymiser.clone(), &mut rejects)?,
        None => Subscribers::default(),
    };
    Ok((
        Reference {
            subscribers: Arc::new(subscribers),
            jurisdiction: Arc::new(jurisdiction),
            units: UnitDirectory::default(),
        },
        rejects,
    ))
}

/// Loads the officers and grids tables of a dataset folder into a
/// [`Jurisdiction`] (the default grid without a grids table), with the rows
/// read per table. Shared by replay and live mode.
pub fn jurisdiction(dir: &Path, rejects: &mut Vec<Rejected>) -> Result<(Jurisdiction, BTreeMap<Table, u64>)> {
    let mut rows = BTreeMap::new();
    let officers = match locate(dir, Table::Officers)? {
        Some(f) => {
            rows.insert(Table::Officers, check(&f)?);
            read_roster(&f, rejects)?
        }
        None => Vec::new(),
    };
    let jurisdiction = match locate(dir, Table::Grids)? {
        Some(f) => {
            rows.insert(Table::Grids, check(&f)?);
            read_jurisdiction(&f, officers, rejects)?
        }
        None => Jurisdiction::default_grid_roster(officers),
    };
    Ok((jurisdiction, rows))
}

/// Reads the officers table: the roster, each row with its time and status.
pub fn read_roster(files: &TableFiles, rejects: &mut Vec<Rejected>) -> Result<Vec<RosterRow>> {
    let mut out = Vec::new();
    for_each_row(files, |ctx, b, m| officer_rows(ctx, b, m, &mut out, rejects))?;
    Ok(out)
}

/// Reads the officers table's officers and posts, whatever their times: one
/// entry per officer and post (the first row's), in file order.
pub fn read_officers(files: &TableFiles, rejects: &mut Vec<Rejected>) -> Result<Vec<Officer>> {
    let mut seen = std::collections::HashSet::new();
    Ok(read_roster(files, rejects)?
        .into_iter()
        .map(|r| r.officer)
        .filter(|o| seen.insert((o.officer_id.clone(), o.role, o.scope.clone())))
        .collect())
}

/// The roster rows of one batch of the officers table (a file's or a live
/// request's), bad rows to `rejects`.
pub fn officer_rows(
    ctx: &RowCtx,
    b: &RecordBatch,
    m: &ColumnMap,
    out: &mut Vec<RosterRow>,
    rejects: &mut Vec<Rejected>,
) -> Result<()> {
    let t = Table::Officers;
    let [id, name, role, scope] = ["officer_id", "name", "role", "scope"].map(|c| Strs::new(col(b, m, t, c)));
    let dated = Dated::of(ctx.file, t, b)?;
    for i in 0..b.num_rows() {
        let row = (|| -> Result<RosterRow, Rejected> {
            let officer_id = id.get(i).ok_or_else(|| ctx.null(i, "officer_id"))?.to_owned();
            let name = name.get(i).ok_or_else(|| ctx.null(i, "name"))?.to_owned();
            let role = vocab(ctx, i, "role", role.get(i), Role::parse, Role::expected)?;
            let scope = scope.get(i).ok_or_else(|| ctx.null(i, "scope"))?.to_owned();
            let from_ms = dated.valid_from(ctx, i)?;
            let status = dated.status(ctx, i, DutyStatus::parse, DutyStatus::expected)?;
            let on_duty = status.is_none_or(|s| s == DutyStatus::OnDuty);
            Ok(RosterRow { from_ms, officer: Officer { officer_id, name, role, scope }, on_duty })
        })();
        match row {
            Ok(o) => out.push(o),
            Err(r) => rejects.push(r),
        }
    }
    Ok(())
}

/// The optional `valid_from_ms` and `status` columns of a reference table's
/// batch (see "Reference data that changes" in `docs/input-contract.md`).
struct Dated<'b> {
    from: Option<&'b PrimitiveArray<Int64Type>>,
    status: Option<Strs<'b>>,
}

impl<'b> Dated<'b> {
    /// The columns of `b`, where present; present with another type: an
    /// error naming the file, as for a contract column.
    fn of(file: &Path, table: Table, b: &'b RecordBatch) -> Result<Self> {
        let from = match b.column_by_name(VALID_FROM) {
            None => None,
            Some(a) if a.data_type() == &DataType::Int64 => Some(a.as_primitive::<Int64Type>()),
            Some(a) => {
                return Err(Error::WrongType {
                    file: file.to_owned(),
                    table: table.name(),
                    column: VALID_FROM,
                    expected: "int64 (ms since the epoch, from when the row is in force)".to_owned(),
                    found: type_name(a.data_type()),
                });
            }
        };
        let status = match table {
            Table::Subscribers | Table::Officers => {
                let [s] = optional_strings(file, table, b, &[STATUS])?;
                s
            }
            _ => None,
        };
        Ok(Dated { from, status })
    }

    /// Row `i`'s time: [`ALWAYS`] when the column is absent or null; a time
    /// before 1970 is rejected (`out_of_range`).
    fn valid_from(&self, ctx: &RowCtx, i: usize) -> Result<i64, Rejected> {
        match self.from.and_then(|a| prim(a, i)) {
            None => Ok(ALWAYS),
            Some(ms) if ms >= 0 => Ok(ms),
            Some(ms) => Err(ctx.reject(
                i,
                Some(VALID_FROM),
                "out_of_range",
                format!("`{VALID_FROM}` {ms} is before 1970; give ms since the Unix epoch, or null for a row in force for all time"),
            )),
        }
    }

    /// Row `i`'s status: `None` when the column is absent or null.
    fn status<T>(
        &self,
        ctx: &RowCtx,
        i: usize,
        parse: fn(&str) -> Option<T>,
        expected: fn() -> String,
    ) -> Result<Option<T>, Rejected> {
        match self.status.as_ref().and_then(|s| s.get(i)) {
            None => Ok(None),
            v => vocab(ctx, i, STATUS, v, parse, expected).map(Some),
        }
    }
}

/// Reads the grids table into a [`Jurisdiction`] with the given roster.
/// All cells must share one H3 resolution; a cell listed under two grids from
/// the same time, or a grid under two communities, is an error (routing would
/// be ambiguous). A cell listed again from a later `valid_from_ms` is
/// reassigned from then on.
pub fn read_jurisdiction(
    files: &TableFiles,
    officers: Vec<RosterRow>,
    rejects: &mut Vec<Rejected>,
) -> Result<Jurisdiction> {
    let t = Table::Grids;
    let mut cells: Vec<(h3o::CellIndex, i64, GridInfo)> = Vec::new();
    let mut seen: HashMap<(h3o::CellIndex, i64), String> = HashMap::new();
    let mut grid_parent: HashMap<String, (String, String, String)> = HashMap::new();
    let mut resolution = None;
    let mut names = AreaNames::default();
    let first = files.files[0].clone();
    for_each_row(files, |ctx, b, m| {
        let [cell, grid, comm, street, dist] =
            ["cell", "grid", "community", "street", "district"].map(|c| Strs::new(col(b, m, t, c)));
        let name_cols = optional_strings(ctx.file, t, b, &AREA_NAME_COLUMNS)?;
        let dated = Dated::of(ctx.file, t, b)?;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<(h3o::CellIndex, i64, GridInfo), Rejected> {
                let text = cell.get(i).ok_or_else(|| ctx.null(i, "cell"))?;
                let c: h3o::CellIndex = text.parse().map_err(|_| {
                    ctx.reject(
                        i,
                        Some("cell"),
                        "not_an_h3_cell",
                        format!("cell '{}' is not an H3 cell index in hex", text.chars().take(20).collect::<String>()),
                    )
                })?;
                let g = |s: &Strs, n: &str| s.get(i).map(str::to_owned).ok_or_else(|| ctx.null(i, n));
                Ok((
                    c,
                    dated.valid_from(ctx, i)?,
                    GridInfo {
                        grid: g(&grid, "grid")?,
                        community: g(&comm, "community")?,
                        street: g(&street, "street")?,
                        district: g(&dist, "district")?,
                    },
                ))
            })();
            match row {
                Err(r) => rejects.push(r),
                Ok((c, from, info)) => {
                    let res = *resolution.get_or_insert(c.resolution());
                    if c.resolution() != res {
                        return Err(Error::BadReference {
                            file: ctx.file.to_owned(),
                            detail: format!(
                                "row {}: cell {c} has H3 resolution {}, earlier cells have {}; one resolution per grids file",
                                ctx.row0 + i as u64,
                                u8::from(c.resolution()),
                                u8::from(res)
                            ),
                        });
                    }
                    if let Some(prev) = seen.insert((c, from), info.grid.clone())
                        && prev != info.grid
                    {
                        let when = if from == ALWAYS {
                            "without valid_from_ms".to_owned()
                        } else {
                            format!("from valid_from_ms {from}")
                        };
                        return Err(Error::BadReference {
                            file: ctx.file.to_owned(),
                            detail: format!(
                                "row {}: cell {c} is listed under grids {prev} and {} {when}; each cell belongs to one grid at a time (to move it, give the later row a later valid_from_ms)",
                                ctx.row0 + i as u64,
                                info.grid
                            ),
                        });
                    }
                    let parents = (info.community.clone(), info.street.clone(), info.district.clone());
                    if let Some(prev) = grid_parent.insert(info.grid.clone(), parents.clone())
                        && prev != parents
                    {
                        return Err(Error::BadReference {
                            file: ctx.file.to_owned(),
                            detail: format!(
                                "row {}: grid {} has two parents ({:?} and {:?}); each grid belongs to one community, street and district",
                                ctx.row0 + i as u64,
                                info.grid,
                                prev,
                                parents
                            ),
                        });
                    }
                    let maps = [&mut names.grid, &mut names.community, &mut names.street, &mut names.district];
                    let ids = [&info.grid, &info.community, &info.street, &info.district];
                    for ((col, map), id) in name_cols.iter().zip(maps).zip(ids) {
                        if let Some(n) = col.as_ref().and_then(|c| c.get(i)).filter(|n| !n.trim().is_empty()) {
                            map.entry(id.clone()).or_insert_with(|| n.trim().to_owned());
                        }
                    }
                    cells.push((c, from, info));
                }
            }
        }
        Ok(())
    })?;
    let resolution = resolution.ok_or_else(|| Error::BadReference {
        file: first,
        detail: "the grids table has no valid rows; remove it to use the default grid".into(),
    })?;
    Ok(Jurisdiction::versioned(resolution, cells, officers).with_names(names))
}

/// The grids table's optional name columns, in level order (grid, community, street, district).
pub const AREA_NAME_COLUMNS: [&str; 4] = ["grid_name", "community_name", "street_name", "district_name"];

/// Optional string columns of a batch: `None` where absent, an error naming
/// the file when present with another type.
fn optional_strings<'b, const N: usize>(
    file: &Path,
    table: Table,
    b: &'b RecordBatch,
    names: &[&'static str; N],
) -> Result<[Option<Strs<'b>>; N]> {
    let mut out: [Option<Strs<'b>>; N] = std::array::from_fn(|_| None);
    for (slot, name) in out.iter_mut().zip(names) {
        if let Some(a) = b.column_by_name(name) {
            if !matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(Error::WrongType {
                    file: file.to_owned(),
                    table: table.name(),
                    column: name,
                    expected: "utf8".to_owned(),
                    found: type_name(a.data_type()),
                });
            }
            *slot = Some(Strs::new(a.as_ref()));
        }
    }
    Ok(out)
}

/// Reads the subscribers table, keyed by pseudonym, with every version of
/// every number (registrations and cancellations by `valid_from_ms`).
pub fn read_subscribers(
    files: &TableFiles,
    ps: &mut Pseudonymiser,
    rejects: &mut Vec<Rejected>,
) -> Result<Subscribers> {
    // Sized up front from the files' metadata: no regrowth for a million rows.
    let mut out = Vec::with_capacity(check(files)? as usize);
    let mut scratch = Vec::new();
    for_each_row(files, |ctx, b, m| subscriber_rows(ctx, b, m, ps, &mut scratch, &mut out, rejects))?;
    Ok(Subscribers::from_versions(out))
}

/// A subscriber version: `(token, from_ms, data or None for a cancellation)`.
pub type SubscriberRow = (Token, i64, Option<Subscriber>);

/// The versions in one batch of the subscribers table (a file's or a live
/// request's), bad rows to `rejects`. `scratch` is reused between batches.
pub fn subscriber_rows(
    ctx: &RowCtx,
    b: &RecordBatch,
    m: &ColumnMap,
    ps: &mut Pseudonymiser,
    scratch: &mut Vec<(Token, crate::pseudonym::NumberClass)>,
    out: &mut Vec<SubscriberRow>,
    rejects: &mut Vec<Rejected>,
) -> Result<()> {
    let t = Table::Subscribers;
    let number = Strs::new(col(b, m, t, "number"));
    let age = col(b, m, t, "age").as_primitive::<UInt8Type>();
    let lat = col(b, m, t, "home_lat").as_primitive::<Float64Type>();
    let lon = col(b, m, t, "home_lon").as_primitive::<Float64Type>();
    let act = col(b, m, t, "activated_ms").as_primitive::<Int64Type>();
    let dated = Dated::of(ctx.file, t, b)?;
    let tokens = column_tokens(&number, b.num_rows(), ps, scratch);
    for (i, &pre) in tokens.iter().enumerate() {
        let row = (|| -> Result<SubscriberRow, Rejected> {
            let (tok, _) = number_pre(ctx, i, "number", number.get(i), pre)?.ok_or_else(|| ctx.null(i, "number"))?;
            let home = point_of(ctx, i, "home_lat", "home_lon", prim(lat, i), prim(lon, i), true)?;
            let from = dated.valid_from(ctx, i)?;
            let cancelled = dated.status(ctx, i, SubscriberStatus::parse, SubscriberStatus::expected)?
                == Some(SubscriberStatus::Cancelled);
            let sub = Subscriber { age: prim(age, i), home, activated_ms: prim(act, i) };
            Ok((tok, from, (!cancelled).then_some(sub)))
        })();
        match row {
            Ok(row) => out.push(row),
            Err(r) => rejects.push(r),
        }
    }
    Ok(())
}

/// Reads the unit names of a patrols table (its `unit_id` column only) into
/// `units`. A process of a cluster reads only its share of the patrols rows,
/// but the models name the units they alert about wherever the alert is made.
pub fn read_unit_names(files: &TableFiles, units: &UnitDirectory) -> Result<()> {
    for path in &files.files {
        let corrupt = |e: &dyn std::fmt::Display| Error::Corrupt {
            file: path.clone(),
            table: files.table.name(),
            detail: e.to_string(),
        };
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| corrupt(&e))?;
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["unit_id"]);
        for batch in builder.with_projection(mask).build().map_err(|e| corrupt(&e))? {
            let batch = batch.map_err(|e| corrupt(&e))?;
            name_units(batch.column(0).as_ref(), units);
        }
    }
    Ok(())
}

/// Every unit a patrol log names, as [`read_unit_names`] does for files:
/// in a cluster each process decodes only its own shares, and must still
/// name the units the others decode.
pub fn read_log_unit_names(patrols: &[crate::share::LogShare], units: &UnitDirectory) -> Result<()> {
    for share in patrols {
        let mut reader = share.partition.open()?;
        while let Some(run) = reader.next_run()? {
            // A run whose unit_id is not text is refused when decoded (bad_schema).
            let text = |c: &&arrow_array::ArrayRef| {
                matches!(c.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            };
            if let Some(ids) = run.batch.column_by_name("unit_id").filter(text) {
                name_units(ids.as_ref(), units);
            }
        }
    }
    Ok(())
}

/// Names the units of a `unit_id` column (ids that decode would refuse are left out).
fn name_units(ids: &dyn arrow_array::Array, units: &UnitDirectory) {
    let names = Strs::new(ids);
    for i in 0..ids.len() {
        if let Some(name) = names.get(i).filter(|s| !s.is_empty() && s.len() <= MAX_UNIT_ID_BYTES) {
            units.insert(unit_token(name), name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::parquet_io::write_parquet_batches;

    /// An officers table with a `valid_from_ms` column of `from` and a `status` column.
    fn officers(dir: &Path, from: ArrayRef, status: Vec<Option<&str>>) -> TableFiles {
        let n = status.len();
        let s = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
        let ids: Vec<String> = (0..n).map(|i| format!("o{i}")).collect();
        let mut fields: Vec<Field> = Table::Officers.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(VALID_FROM, from.data_type().clone(), true));
        fields.push(Field::new(STATUS, DataType::Utf8, true));
        let schema = Arc::new(Schema::new(fields));
        let columns = vec![
            Arc::new(StringArray::from(ids.clone())),
            Arc::new(StringArray::from(ids)),
            s("station"),
            s("s1"),
            from,
        ];
        let columns = [columns, vec![Arc::new(StringArray::from(status)) as ArrayRef]].concat();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        write_parquet_batches(&dir.join("officers.parquet"), schema, [batch]).unwrap();
        locate(dir, Table::Officers).unwrap().unwrap()
    }

    #[test]
    fn dated_rows_are_validated_and_bad_ones_rejected_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let from: ArrayRef = Arc::new(Int64Array::from(vec![Some(1_000), None, Some(-5), Some(2_000)]));
        let files = officers(dir.path(), from, vec![Some("off_duty"), None, None, Some("paused")]);
        let mut rejects = Vec::new();
        let roster = read_roster(&files, &mut rejects).unwrap();
        assert_eq!(
            roster.iter().map(|r| (r.from_ms, r.on_duty)).collect::<Vec<_>>(),
            vec![(1_000, false), (ALWAYS, true)]
        );
        let why: Vec<(u64, &str)> = rejects.iter().map(|r| (r.row, r.code.as_str())).collect();
        assert_eq!(why, vec![(2, "out_of_range"), (3, "unknown_value")]);
        assert!(rejects[0].reason.contains("before 1970"), "{}", rejects[0].reason);
        assert!(rejects[1].reason.contains("on_duty, off_duty"), "{}", rejects[1].reason);
        // A `valid_from_ms` of another type stops the run, naming the file and what to give.
        let dir = tempfile::tempdir().unwrap();
        let files = officers(dir.path(), Arc::new(StringArray::from(vec!["08:00"])), vec![None]);
        let err = read_roster(&files, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("officers.parquet") && err.contains("valid_from_ms") && err.contains("int64"), "{err}");
    }
}
