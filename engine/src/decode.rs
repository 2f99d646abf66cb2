//! Decoding the stream tables (calls, alarms, patrols) batch by batch,
//! straight from the Arrow columns, into compact [`Event`]s; a row that
//! breaks the contract becomes a [`Rejected`] entry instead (see
//! [`crate::columns`]). Used by a replay's sources ([`crate::share`]), the
//! live ingest and the tools that read a table whole ([`TableReader`]).

// Row decoders return `Result<Event, Rejected>`: the rejected row is the cold
// path, and the events themselves are ~80 bytes, so boxing would only add an
// allocation per bad row without shrinking the good path.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt8Type, UInt32Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use crate::columns::{RowCtx, Strs, col, column_tokens, number_of, number_pre, point_of, prim, vocab};
use crate::contract::{AlarmSource, CallPhase, Category, PatrolStatus, Table};
use crate::event::{AlarmEvent, CallEvent, Event, PatrolEvent, unit_token};
use crate::parquet_io::{ColumnMap, TableFiles, open};
use crate::pseudonym::{NumberClass, Pseudonymiser, Token};
use crate::reference::UnitDirectory;
use crate::reject::Rejected;
use crate::{Error, Result};

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

    pub(crate) fn window(&self) -> (i64, i64, i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let off = |ms: Option<u64>| ms.map(|m| i64::try_from(m).unwrap_or(i64::MAX));
        let hi = off(self.max_ahead_ms).map_or(i64::MAX, |m| now.saturating_add(m));
        let lo = off(self.max_behind_ms).map_or(0, |m| now.saturating_sub(m).max(0));
        (now, lo, hi)
    }
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
