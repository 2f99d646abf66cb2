//! Readers for the input contract.
//!
//! A table is `<dataset>/<table>.parquet` or a folder `<dataset>/<table>/` of
//! `*.parquet` parts, read in file-name order. Opening a file checks, before a
//! single row is read: that it is not empty, that it is Parquet, and that each
//! contract column is present with an accepted type. Each failure is an
//! [`Error`] naming the file, the column, what was expected and what was found.
//!
//! Rows are then decoded batch by batch, straight from the Arrow columns, into
//! compact [`Event`]s; a row that breaks the contract becomes a [`Rejected`]
//! entry instead (null where not allowed, unknown vocabulary, out-of-range
//! coordinates, a value that is not a phone number...). Phone numbers are
//! pseudonymised here and never leave this module in the clear.

// Row decoders return `Result<Event, Rejected>`: the rejected row is the cold
// path, and the events themselves are ~80 bytes, so boxing would only add an
// allocation per bad row without shrinking the good path.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::contract::{AlarmSource, CallPhase, Category, Column, PatrolStatus, Role, Table};
use crate::event::{AlarmEvent, CallEvent, Event, PatrolEvent, unit_token};
use crate::geo::Point;
use crate::jurisdiction::{AreaNames, GridInfo, Jurisdiction, Officer};
use crate::pseudonym::{NumberClass, Pseudonymiser, Token, is_phone_number};
use crate::reference::{Subscriber, Subscribers, UnitDirectory};
use crate::reject::Rejected;
use crate::{Error, Result};

/// Rows per decoded batch.
pub const BATCH_ROWS: usize = 8192;

/// Rows per row group of the Parquet files citywatch writes. A row group is
/// the unit a replay deals to its workers (a share, see [`crate::share`]):
/// time-sorted files cut into small row groups let every worker read at
/// about the same event time (64 Ki call rows are ~15 minutes of a city of
/// 1M subscribers), where parquet's default of 1 Mi rows made whole hours of
/// input one worker's alone.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The files holding one table of a dataset.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// Which table.
    pub table: Table,
    /// Its files, in read order.
    pub files: Vec<PathBuf>,
}

/// Finds a table in a dataset folder: `None` when it is absent.
pub fn locate(dir: &Path, table: Table) -> Result<Option<TableFiles>> {
    let file = dir.join(format!("{}.parquet", table.path_stem()));
    let folder = dir.join(table.path_stem());
    if file.is_file() {
        return Ok(Some(TableFiles { table, files: vec![file] }));
    }
    if folder.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| Error::io(&folder, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::MissingTable {
                table: table.name(),
                dir: dir.to_owned(),
                hint: "the folder exists but holds no *.parquet parts",
            });
        }
        return Ok(Some(TableFiles { table, files }));
    }
    Ok(None)
}

/// Like [`locate`], but the table is required.
pub fn require(dir: &Path, table: Table, hint: &'static str) -> Result<TableFiles> {
    locate(dir, table)?.ok_or(Error::MissingTable { table: table.name(), dir: dir.to_owned(), hint })
}

/// Where each contract column sits in a file (by index), after validation.
#[derive(Debug, Clone)]
pub struct ColumnMap(Vec<Option<usize>>);

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "utf8".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::Int64 => "int64".into(),
        DataType::Int32 => "int32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Float32 => "float32".into(),
        other => format!("{other}").to_lowercase(),
    }
}

/// Checks a file's Arrow schema against the contract of `table`. Extra columns are allowed
/// (and ignored); every contract column must be present with an accepted type.
pub fn validate_schema(file: &Path, table: Table, schema: &SchemaRef) -> Result<ColumnMap> {
    let mut map = Vec::with_capacity(table.columns().len());
    for c in table.columns() {
        match schema.index_of(c.name) {
            Ok(i) => {
                let found = schema.field(i).data_type();
                if !c.data_type.accepts(found) {
                    return Err(Error::WrongType {
                        file: file.to_owned(),
                        table: table.name(),
                        column: c.name,
                        expected: c.data_type.contract_name().to_owned(),
                        found: type_name(found),
                    });
                }
                map.push(Some(i));
            }
            Err(_) => {
                let found: Vec<String> =
                    schema.fields().iter().map(|f| format!("{} ({})", f.name(), type_name(f.data_type()))).collect();
                return Err(Error::MissingColumn {
                    file: file.to_owned(),
                    table: table.name(),
                    column: c.name,
                    expected: format!("{}{}", c.data_type.contract_name(), if c.nullable { ", nullable" } else { "" }),
                    found: if found.is_empty() { "none".into() } else { found.join(", ") },
                });
            }
        }
    }
    Ok(ColumnMap(map))
}

/// Opens one file of `table`: checks it is non-empty Parquet with the contract's columns.
pub fn open(file: &Path, table: Table) -> Result<(ParquetRecordBatchReader, ColumnMap)> {
    let meta = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
    if meta.len() == 0 {
        return Err(Error::EmptyFile { file: file.to_owned(), table: table.name() });
    }
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    })?;
    let map = validate_schema(file, table, builder.schema())?;
    let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(|e| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    })?;
    Ok((reader, map))
}

/// Opens one row group of one file of `table` (a share of a replay's input).
pub fn open_row_group(file: &Path, table: Table, row_group: usize) -> Result<(ParquetRecordBatchReader, ColumnMap)> {
    let corrupt = |e: &dyn std::fmt::Display| Error::Corrupt {
        file: file.to_owned(),
        table: table.name(),
        detail: e.to_string(),
    };
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| corrupt(&e))?;
    let map = validate_schema(file, table, builder.schema())?;
    let reader =
        builder.with_batch_size(BATCH_ROWS).with_row_groups(vec![row_group]).build().map_err(|e| corrupt(&e))?;
    Ok((reader, map))
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
            let names = Strs::new(batch.column(0).as_ref());
            for i in 0..batch.num_rows() {
                if let Some(name) = names.get(i).filter(|s| !s.is_empty() && s.len() <= MAX_UNIT_ID_BYTES) {
                    units.insert(unit_token(name), name);
                }
            }
        }
    }
    Ok(())
}

/// Validates every file of a table without reading rows: run before a replay
/// starts, so a bad file stops it before any output is written.
pub fn check(files: &TableFiles) -> Result<u64> {
    let mut rows = 0;
    for f in &files.files {
        let file = File::open(f).map_err(|e| Error::io(f, e))?;
        if file.metadata().map_err(|e| Error::io(f, e))?.len() == 0 {
            return Err(Error::EmptyFile { file: f.clone(), table: files.table.name() });
        }
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::Corrupt {
            file: f.clone(),
            table: files.table.name(),
            detail: e.to_string(),
        })?;
        validate_schema(f, files.table, builder.schema())?;
        rows += builder.metadata().file_metadata().num_rows() as u64;
    }
    Ok(rows)
}

/// Reads a whole file into record batches with no contract check (for outputs
/// citywatch wrote itself, such as `alerts.parquet`).
pub fn read_whole_file(path: &Path, what: &'static str) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| Error::Corrupt { file: path.to_owned(), table: what, detail: e.to_string() })?;
    reader
        .map(|b| b.map_err(|e| Error::Corrupt { file: path.to_owned(), table: what, detail: e.to_string() }))
        .collect()
}

/// Writes record batches to a Parquet file (zstd level 1: small and fast).
/// Output is byte-identical for identical batches.
pub fn write_parquet_batches(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<()> {
    let werr = |e: parquet::errors::ParquetError| Error::Write { path: path.to_owned(), detail: e.to_string() };
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let props = writer_properties();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(werr)?;
    for b in batches {
        w.write(&b).map_err(werr)?;
    }
    w.close().map_err(werr)?;
    Ok(())
}

/// The writer properties citywatch uses for every Parquet file it writes.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid zstd level")))
        .set_created_by("citywatch".to_owned())
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

// ---------------------------------------------------------------------------
// Column access

/// A string column in any of Arrow's three layouts.
enum Strs<'a> {
    Small(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
}

impl<'a> Strs<'a> {
    fn new(a: &'a dyn Array) -> Strs<'a> {
        match a.data_type() {
            DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
            DataType::Utf8View => Strs::View(a.as_string_view()),
            _ => Strs::Small(a.as_string::<i32>()),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Small(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

#[inline]
fn prim<T: arrow_array::ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// Decoding context of one batch: the file and the row offset, to name
/// rejects, and the event times accepted for this batch.
struct RowCtx<'a> {
    table: Table,
    file: &'a Path,
    row0: u64,
    /// `(now, lowest, highest)` accepted `ts_ms`, from [`TimeBounds`] and the wall clock.
    window: (i64, i64, i64),
}

/// The event times a [`Decoder`] accepts, relative to the wall clock when a
/// batch is decoded. A row outside is rejected as `out_of_range`, so it never
/// reaches the watermark: one row dated in 2262 would otherwise make every
/// later row late and fire every deadline at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeBounds {
    /// Most a row may be ahead of the wall clock, ms (clock skew between the
    /// sender and this machine). `None`: no upper bound.
    pub max_ahead_ms: Option<u64>,
    /// Most a row may be behind the wall clock, ms. `None`: back to 1970.
    /// The live service bounds this (old data is history, for `replay`); a
    /// replay does not.
    pub max_behind_ms: Option<u64>,
}

impl TimeBounds {
    /// The default bound of both replay and the live service: 5 minutes ahead.
    pub const DEFAULT_MAX_AHEAD_MS: u64 = 300_000;

    fn window(&self) -> (i64, i64, i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let off = |ms: Option<u64>| ms.map(|m| i64::try_from(m).unwrap_or(i64::MAX));
        let hi = off(self.max_ahead_ms).map_or(i64::MAX, |m| now.saturating_add(m));
        let lo = off(self.max_behind_ms).map_or(0, |m| now.saturating_sub(m).max(0));
        (now, lo, hi)
    }
}

impl RowCtx<'_> {
    fn reject(&self, i: usize, column: Option<&str>, code: &str, reason: String) -> Rejected {
        Rejected::new(self.table, self.file, self.row0 + i as u64, column, code, reason)
    }

    fn null(&self, i: usize, c: &str) -> Rejected {
        self.reject(i, Some(c), "null", format!("`{c}` is null; the contract requires a value"))
    }
}

fn col<'b>(batch: &'b RecordBatch, map: &ColumnMap, table: Table, name: &str) -> &'b dyn Array {
    let idx = table.columns().iter().position(|c: &Column| c.name == name).expect("contract column");
    batch.column(map.0[idx].expect("validated column")).as_ref()
}

fn ts_of(ctx: &RowCtx, i: usize, v: Option<i64>) -> Result<u64, Rejected> {
    let (now, lo, hi) = ctx.window;
    let out = |reason: String| Err(ctx.reject(i, Some("ts_ms"), "out_of_range", reason));
    match v {
        None => Err(ctx.null(i, "ts_ms")),
        Some(t) if t < 0 => out(format!("ts_ms {t} is before 1970; expected ms since the Unix epoch")),
        Some(t) if t > hi => out(format!(
            "ts_ms {t} is {} s ahead of this machine's clock ({now}); at most {} s is allowed \
             (the clock-skew setting): check the sender's clock and that ts_ms is in milliseconds",
            t.saturating_sub(now) / 1000,
            hi.saturating_sub(now) / 1000
        )),
        Some(t) if t < lo => out(format!(
            "ts_ms {t} is {} h behind this machine's clock ({now}); the live service takes events up to {} h \
             old (max_event_age_ms): load history with `citywatch replay`",
            now.saturating_sub(t) / 3_600_000,
            now.saturating_sub(lo) / 3_600_000
        )),
        Some(t) => Ok(t as u64),
    }
}

fn point_of(
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

fn number_of(
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
fn column_tokens(
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
fn number_pre(
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

fn vocab<T>(
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

// ---------------------------------------------------------------------------
// Event decoders

/// Longest `unit_id` accepted, bytes: unit names are kept for every unit
/// seen (the unit directory, the live units view), so one 1 MB name must not
/// become 1 MB of every view.
pub const MAX_UNIT_ID_BYTES: usize = 64;

/// Decodes batches of one stream table into events and rejected rows.
#[derive(Debug)]
pub struct Decoder {
    table: Table,
    pseudonymiser: Pseudonymiser,
    units: UnitDirectory,
    /// Reused buffer of batched pseudonym lookups (no allocation per batch).
    scratch: Vec<(Token, NumberClass)>,
    /// Accepted event times (none but `>= 0` unless set).
    bounds: TimeBounds,
}

impl Decoder {
    /// A decoder for a stream table (`calls`, `alarms` or `patrols`).
    pub fn new(table: Table, pseudonymiser: Pseudonymiser, units: UnitDirectory) -> Self {
        Decoder { table, pseudonymiser, units, scratch: Vec::new(), bounds: TimeBounds::default() }
    }

    /// The same decoder, rejecting rows outside `bounds` as `out_of_range`.
    pub fn with_time_bounds(mut self, bounds: TimeBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// Decodes one batch (`row0`: row number of its first row within `file`).
    pub fn decode(
        &mut self,
        file: &Path,
        row0: u64,
        batch: &RecordBatch,
        map: &ColumnMap,
        events: &mut Vec<Event>,
        rejects: &mut Vec<Rejected>,
    ) {
        let ctx = RowCtx { table: self.table, file, row0, window: self.bounds.window() };
        match self.table {
            Table::Calls => self.calls(&ctx, batch, map, events, rejects),
            Table::Alarms => self.alarms(&ctx, batch, map, events, rejects),
            Table::Patrols => self.patrols(&ctx, batch, map, events, rejects),
            other => unreachable!("{} is not a stream table", other.name()),
        }
    }

    fn calls(
        &mut self,
        ctx: &RowCtx,
        b: &RecordBatch,
        m: &ColumnMap,
        events: &mut Vec<Event>,
        rejects: &mut Vec<Rejected>,
    ) {
        let t = Table::Calls;
        let call_id = col(b, m, t, "call_id").as_primitive::<UInt64Type>();
        let phase = Strs::new(col(b, m, t, "event"));
        let ts = col(b, m, t, "ts_ms").as_primitive::<Int64Type>();
        let caller = Strs::new(col(b, m, t, "caller"));
        let callee = Strs::new(col(b, m, t, "callee"));
        let [clat, clon, elat, elon] = ["caller_lat", "caller_lon", "callee_lat", "callee_lon"]
            .map(|c| col(b, m, t, c).as_primitive::<Float64Type>());
        let dur = col(b, m, t, "duration_s").as_primitive::<UInt32Type>();
        let ps = &mut self.pseudonymiser;
        let caller_tokens = column_tokens(&caller, b.num_rows(), ps, &mut self.scratch);
        let callee_tokens = column_tokens(&callee, b.num_rows(), ps, &mut self.scratch);
        events.reserve(b.num_rows());
        for i in 0..b.num_rows() {
            let row = (|| -> Result<CallEvent, Rejected> {
                let call_id = prim(call_id, i).ok_or_else(|| ctx.null(i, "call_id"))?;
                let phase = vocab(ctx, i, "event", phase.get(i), CallPhase::parse, CallPhase::expected)?;
                let ts_ms = ts_of(ctx, i, prim(ts, i))?;
                let (caller, caller_class) = number_pre(ctx, i, "caller", caller.get(i), caller_tokens[i])?
                    .ok_or_else(|| ctx.null(i, "caller"))?;
                let (callee, callee_class) = number_pre(ctx, i, "callee", callee.get(i), callee_tokens[i])?
                    .ok_or_else(|| ctx.null(i, "callee"))?;
                let caller_pos = point_of(ctx, i, "caller_lat", "caller_lon", prim(clat, i), prim(clon, i), true)?;
                let callee_pos = point_of(ctx, i, "callee_lat", "callee_lon", prim(elat, i), prim(elon, i), true)?;
                Ok(CallEvent {
                    ts_ms,
                    seq: 0,
                    call_id,
                    phase,
                    caller,
                    callee,
                    caller_class,
                    callee_class,
                    caller_pos,
                    callee_pos,
                    duration_s: prim(dur, i),
                    late: false,
                })
            })();
            match row {
                Ok(e) => events.push(Event::Call(e)),
                Err(r) => rejects.push(r),
            }
        }
    }

    fn alarms(
        &mut self,
        ctx: &RowCtx,
        b: &RecordBatch,
        m: &ColumnMap,
        events: &mut Vec<Event>,
        rejects: &mut Vec<Rejected>,
    ) {
        let t = Table::Alarms;
        let alarm_id = col(b, m, t, "alarm_id").as_primitive::<UInt64Type>();
        let ts = col(b, m, t, "ts_ms").as_primitive::<Int64Type>();
        let category = Strs::new(col(b, m, t, "category"));
        let priority = col(b, m, t, "priority").as_primitive::<UInt8Type>();
        let lat = col(b, m, t, "lat").as_primitive::<Float64Type>();
        let lon = col(b, m, t, "lon").as_primitive::<Float64Type>();
        let reporter = Strs::new(col(b, m, t, "reporter"));
        let suspect = Strs::new(col(b, m, t, "suspect_number"));
        let source = Strs::new(col(b, m, t, "source"));
        let ps = &mut self.pseudonymiser;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<AlarmEvent, Rejected> {
                let alarm_id = prim(alarm_id, i).ok_or_else(|| ctx.null(i, "alarm_id"))?;
                let ts_ms = ts_of(ctx, i, prim(ts, i))?;
                let category = vocab(ctx, i, "category", category.get(i), Category::parse, Category::expected)?;
                let priority = prim(priority, i).ok_or_else(|| ctx.null(i, "priority"))?;
                if !(1..=4).contains(&priority) {
                    return Err(ctx.reject(
                        i,
                        Some("priority"),
                        "out_of_range",
                        format!("priority {priority}; expected 1 (most urgent) to 4"),
                    ));
                }
                let pos = point_of(ctx, i, "lat", "lon", prim(lat, i), prim(lon, i), false)?.expect("not nullable");
                let reporter = number_of(ctx, i, "reporter", reporter.get(i), ps)?.map(|(t, _)| t);
                let suspect = number_of(ctx, i, "suspect_number", suspect.get(i), ps)?;
                let source = vocab(ctx, i, "source", source.get(i), AlarmSource::parse, AlarmSource::expected)?;
                Ok(AlarmEvent {
                    ts_ms,
                    seq: 0,
                    alarm_id,
                    category,
                    priority,
                    pos,
                    reporter,
                    suspect: suspect.map(|(t, _)| t),
                    suspect_class: suspect.map(|(_, c)| c).unwrap_or_default(),
                    source,
                    late: false,
                })
            })();
            match row {
                Ok(e) => events.push(Event::Alarm(e)),
                Err(r) => rejects.push(r),
            }
        }
    }

    fn patrols(
        &mut self,
        ctx: &RowCtx,
        b: &RecordBatch,
        m: &ColumnMap,
        events: &mut Vec<Event>,
        rejects: &mut Vec<Rejected>,
    ) {
        let t = Table::Patrols;
        let unit = Strs::new(col(b, m, t, "unit_id"));
        let ts = col(b, m, t, "ts_ms").as_primitive::<Int64Type>();
        let lat = col(b, m, t, "lat").as_primitive::<Float64Type>();
        let lon = col(b, m, t, "lon").as_primitive::<Float64Type>();
        let status = Strs::new(col(b, m, t, "status"));
        let alarm_id = col(b, m, t, "alarm_id").as_primitive::<UInt64Type>();
        let units = &self.units;
        let mut last_unit: Option<(&str, u64)> = None;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<PatrolEvent, Rejected> {
                let name = unit.get(i).filter(|s| !s.is_empty()).ok_or_else(|| ctx.null(i, "unit_id"))?;
                if name.len() > MAX_UNIT_ID_BYTES {
                    return Err(ctx.reject(
                        i,
                        Some("unit_id"),
                        "too_long",
                        format!("`unit_id` is {} bytes; at most {MAX_UNIT_ID_BYTES} are allowed", name.len()),
                    ));
                }
                let token = match last_unit {
                    Some((n, t)) if n == name => t,
                    _ => {
                        let t = unit_token(name);
                        units.insert(t, name);
                        last_unit = Some((name, t));
                        t
                    }
                };
                let ts_ms = ts_of(ctx, i, prim(ts, i))?;
                let pos = point_of(ctx, i, "lat", "lon", prim(lat, i), prim(lon, i), false)?.expect("not nullable");
                let status = vocab(ctx, i, "status", status.get(i), PatrolStatus::parse, PatrolStatus::expected)?;
                Ok(PatrolEvent { ts_ms, seq: 0, unit: token, pos, status, alarm_id: prim(alarm_id, i), late: false })
            })();
            match row {
                Ok(e) => events.push(Event::Patrol(e)),
                Err(r) => rejects.push(r),
            }
        }
    }
}

/// One Parquet record batch of a stream table, not yet decoded, with where it
/// comes from: the unit a replay's decode threads share out.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// The file.
    pub file: Arc<Path>,
    /// Row number (within the file) of the batch's first row.
    pub row0: u64,
    /// The rows.
    pub batch: RecordBatch,
    /// Where the contract columns are in this file.
    pub map: Arc<ColumnMap>,
}

impl RawBatch {
    /// Decodes the batch into events and rejected rows (appended).
    pub fn decode(&self, decoder: &mut Decoder, events: &mut Vec<Event>, rejects: &mut Vec<Rejected>) {
        decoder.decode(&self.file, self.row0, &self.batch, &self.map, events, rejects);
    }
}

/// The record batches of one table, file by file, in order (each file is
/// opened and checked when reached).
pub struct RawBatches {
    table: Table,
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(Arc<Path>, ParquetRecordBatchReader, Arc<ColumnMap>, u64)>,
}

impl std::fmt::Debug for RawBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBatches").field("table", &self.table.name()).finish_non_exhaustive()
    }
}

impl RawBatches {
    /// The batches of a table's files.
    pub fn new(files: TableFiles) -> Self {
        RawBatches { table: files.table, files: files.files.into_iter(), current: None }
    }

    /// The next batch; `Ok(None)` at the end of the table.
    pub fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.next() else { return Ok(None) };
                let (reader, map) = open(&path, self.table)?;
                self.current = Some((Arc::from(path.as_path()), reader, Arc::new(map), 0));
            }
            let (file, reader, map, row0) = self.current.as_mut().expect("set above");
            match reader.next() {
                Some(Ok(batch)) => {
                    let raw = RawBatch { file: Arc::clone(file), row0: *row0, batch, map: Arc::clone(map) };
                    *row0 += raw.batch.num_rows() as u64;
                    return Ok(Some(raw));
                }
                Some(Err(e)) => {
                    return Err(Error::Corrupt {
                        file: file.to_path_buf(),
                        table: self.table.name(),
                        detail: e.to_string(),
                    });
                }
                None => self.current = None,
            }
        }
    }
}

/// Streams the decoded events of one table, file by file, batch by batch.
pub struct TableReader {
    batches: RawBatches,
    decoder: Decoder,
    /// Rows read so far (good and bad).
    pub rows: u64,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader").field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl TableReader {
    /// A reader over the files of a stream table.
    pub fn new(files: TableFiles, decoder: Decoder) -> Self {
        TableReader { batches: RawBatches::new(files), decoder, rows: 0 }
    }

    /// The next decoded batch; `Ok(None)` at the end of the table.
    pub fn next_batch(&mut self, events: &mut Vec<Event>, rejects: &mut Vec<Rejected>) -> Result<Option<()>> {
        let Some(raw) = self.batches.next_batch()? else { return Ok(None) };
        raw.decode(&mut self.decoder, events, rejects);
        self.rows += raw.batch.num_rows() as u64;
        Ok(Some(()))
    }
}

// ---------------------------------------------------------------------------
// Reference tables (read whole)

fn for_each_row(files: &TableFiles, mut f: impl FnMut(&RowCtx, &RecordBatch, &ColumnMap) -> Result<()>) -> Result<u64> {
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
            f(&RowCtx { table: files.table, file: path, row0, window: (0, 0, i64::MAX) }, &batch, &map)?;
            row0 += batch.num_rows() as u64;
        }
        rows += row0;
    }
    Ok(rows)
}

/// Reads the officers table.
pub fn read_officers(files: &TableFiles, rejects: &mut Vec<Rejected>) -> Result<Vec<Officer>> {
    let mut out = Vec::new();
    let t = Table::Officers;
    for_each_row(files, |ctx, b, m| {
        let [id, name, role, scope] = ["officer_id", "name", "role", "scope"].map(|c| Strs::new(col(b, m, t, c)));
        for i in 0..b.num_rows() {
            let row = (|| -> Result<Officer, Rejected> {
                let officer_id = id.get(i).ok_or_else(|| ctx.null(i, "officer_id"))?.to_owned();
                let name = name.get(i).ok_or_else(|| ctx.null(i, "name"))?.to_owned();
                let role = vocab(ctx, i, "role", role.get(i), Role::parse, Role::expected)?;
                let scope = scope.get(i).ok_or_else(|| ctx.null(i, "scope"))?.to_owned();
                Ok(Officer { officer_id, name, role, scope })
            })();
            match row {
                Ok(o) => out.push(o),
                Err(r) => rejects.push(r),
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Reads the grids table into a [`Jurisdiction`] with the given officers.
/// All cells must share one H3 resolution; a cell listed under two grids, or a
/// grid under two communities, is an error (routing would be ambiguous).
pub fn read_jurisdiction(
    files: &TableFiles,
    officers: Vec<Officer>,
    rejects: &mut Vec<Rejected>,
) -> Result<Jurisdiction> {
    let t = Table::Grids;
    let mut cells: Vec<(h3o::CellIndex, GridInfo)> = Vec::new();
    let mut seen: HashMap<h3o::CellIndex, String> = HashMap::new();
    let mut grid_parent: HashMap<String, (String, String, String)> = HashMap::new();
    let mut resolution = None;
    let mut names = AreaNames::default();
    let first = files.files[0].clone();
    for_each_row(files, |ctx, b, m| {
        let [cell, grid, comm, street, dist] =
            ["cell", "grid", "community", "street", "district"].map(|c| Strs::new(col(b, m, t, c)));
        let name_cols = optional_strings(ctx.file, t, b, &AREA_NAME_COLUMNS)?;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<(h3o::CellIndex, GridInfo), Rejected> {
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
                Ok((c, info)) => {
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
                    if let Some(prev) = seen.insert(c, info.grid.clone())
                        && prev != info.grid
                    {
                        return Err(Error::BadReference {
                            file: ctx.file.to_owned(),
                            detail: format!(
                                "row {}: cell {c} is listed under grids {prev} and {}; each cell belongs to one grid",
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
                    cells.push((c, info));
                }
            }
        }
        Ok(())
    })?;
    let resolution = resolution.ok_or_else(|| Error::BadReference {
        file: first,
        detail: "the grids table has no valid rows; remove it to use the default grid".into(),
    })?;
    Ok(Jurisdiction::new(resolution, cells, officers).with_names(names))
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

/// Reads the subscribers table, keyed by pseudonym.
pub fn read_subscribers(
    files: &TableFiles,
    ps: &mut Pseudonymiser,
    rejects: &mut Vec<Rejected>,
) -> Result<Subscribers> {
    let t = Table::Subscribers;
    // Sized up front from the files' metadata: no regrowth for a million rows.
    let mut out = Vec::with_capacity(check(files)? as usize);
    let mut scratch = Vec::new();
    for_each_row(files, |ctx, b, m| {
        let number = Strs::new(col(b, m, t, "number"));
        let age = col(b, m, t, "age").as_primitive::<UInt8Type>();
        let lat = col(b, m, t, "home_lat").as_primitive::<Float64Type>();
        let lon = col(b, m, t, "home_lon").as_primitive::<Float64Type>();
        let act = col(b, m, t, "activated_ms").as_primitive::<Int64Type>();
        let tokens = column_tokens(&number, b.num_rows(), ps, &mut scratch);
        for (i, &pre) in tokens.iter().enumerate() {
            let row = (|| -> Result<(Token, Subscriber), Rejected> {
                let (tok, _) =
                    number_pre(ctx, i, "number", number.get(i), pre)?.ok_or_else(|| ctx.null(i, "number"))?;
                let home = point_of(ctx, i, "home_lat", "home_lon", prim(lat, i), prim(lon, i), true)?;
                Ok((tok, Subscriber { age: prim(age, i), home, activated_ms: prim(act, i) }))
            })();
            match row {
                Ok(row) => out.push(row),
                Err(r) => rejects.push(r),
            }
        }
        Ok(())
    })?;
    Ok(Subscribers::from_rows(out))
}

/// One row of `labels/fraud_calls`, numbers pseudonymised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FraudLabel {
    /// The fraud call.
    pub call_id: u64,
    /// Fraudster's pseudonym.
    pub caller: Token,
    /// Victim's pseudonym.
    pub victim: Token,
    /// When money left the victim, if it did.
    pub loss_ts_ms: Option<i64>,
}

/// Reads the fraud labels (evaluation only).
pub fn read_fraud_labels(
    files: &TableFiles,
    ps: &mut Pseudonymiser,
    rejects: &mut Vec<Rejected>,
) -> Result<Vec<FraudLabel>> {
    let t = Table::FraudLabels;
    let mut out = Vec::new();
    for_each_row(files, |ctx, b, m| {
        let call_id = col(b, m, t, "call_id").as_primitive::<UInt64Type>();
        let caller = Strs::new(col(b, m, t, "caller"));
        let victim = Strs::new(col(b, m, t, "victim"));
        let loss = col(b, m, t, "loss_ts_ms").as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let row = (|| -> Result<FraudLabel, Rejected> {
                let call_id = prim(call_id, i).ok_or_else(|| ctx.null(i, "call_id"))?;
                let (caller, _) =
                    number_of(ctx, i, "caller", caller.get(i), ps)?.ok_or_else(|| ctx.null(i, "caller"))?;
                let (victim, _) =
                    number_of(ctx, i, "victim", victim.get(i), ps)?.ok_or_else(|| ctx.null(i, "victim"))?;
                Ok(FraudLabel { call_id, caller, victim, loss_ts_ms: prim(loss, i) })
            })();
            match row {
                Ok(l) => out.push(l),
                Err(r) => rejects.push(r),
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Shared handle type for a schema, re-exported for writers.
pub type Schema = Arc<arrow_schema::Schema>;
