//! Live ingest: NDJSON or Arrow IPC stream bodies become the contract's Arrow
//! record batches, and go through the engine's own [`Decoder`], so live rows
//! are validated and pseudonymised exactly as replayed ones.
//!
//! A request is all or nothing: every row is decoded first; if any row is bad
//! (wrong JSON type, null in a required column, unknown vocabulary, bad phone
//! number, out-of-range value...) the request is refused with every bad row's
//! reason and nothing of it reaches the pipeline, the number vault or the unit
//! positions.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use citywatch_engine::changes::ReferenceChange;
use citywatch_engine::columns::RowCtx;
use citywatch_engine::contract::Table;
use citywatch_engine::decode::Decoder;
use citywatch_engine::event::{Event, UnitToken};
use citywatch_engine::ipc::{self, IpcError};
use citywatch_engine::parquet_io::validate_schema;
use citywatch_engine::pseudonym::{Pseudonymiser, token_hex};
use citywatch_engine::reference::UnitDirectory;
use citywatch_engine::reject::Rejected;
use citywatch_engine::{load, ndjson};

/// The pseudo file name rejected rows of live ingest carry.
const SOURCE: &str = "ingest";

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// 0-based record index in the request (NDJSON: blank lines not counted).
    pub row: u64,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// Machine-readable code (`wrong_type`, `null`, `unknown_value`, ...).
    pub code: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

impl From<&Rejected> for RowError {
    fn from(r: &Rejected) -> Self {
        RowError { row: r.row, column: r.column.clone(), code: r.code.clone(), reason: r.reason.clone() }
    }
}

/// The bad rows of a refused request: the first few in full, the rest
/// counted, so 10 MB of bad lines gives a short answer, not a 500 MB one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowErrors {
    /// Bad rows (not errors: a row with three bad columns counts once).
    pub rows: u64,
    /// Errors of the first `max_listed_errors` bad rows, by row.
    pub listed: Vec<RowError>,
    /// Bad rows by error code, over all of them (a row with two codes counts under both).
    pub by_code: std::collections::BTreeMap<String, u64>,
}

impl RowErrors {
    /// Summarises errors (any order) keeping those of the first `list` bad rows.
    pub fn new(mut errors: Vec<RowError>, list: usize) -> RowErrors {
        errors.sort_by_key(|e| e.row);
        let mut by_code = std::collections::BTreeMap::new();
        let mut codes_of_row: Vec<&str> = Vec::new();
        let (mut rows, mut last) = (0u64, None);
        let mut cut = errors.len();
        for (i, e) in errors.iter().enumerate() {
            if last != Some(e.row) {
                rows += 1;
                last = Some(e.row);
                codes_of_row.clear();
                if rows as usize == list + 1 {
                    cut = i;
                }
            }
            if !codes_of_row.contains(&e.code.as_str()) {
                codes_of_row.push(&e.code);
                *by_code.entry(e.code.clone()).or_insert(0) += 1;
            }
        }
        errors.truncate(cut);
        RowErrors { rows, listed: errors, by_code }
    }

    /// What the health page counts: `(column, code, 1)` for each listed
    /// error, and the bad rows beyond the list by code alone (`(None, code,
    /// rows)`: their columns were not kept).
    pub fn reasons(&self) -> Vec<(Option<&str>, &str, u64)> {
        let mut out: Vec<_> = self.listed.iter().map(|e| (e.column.as_deref(), e.code.as_str(), 1)).collect();
        for (code, rows) in &self.by_code {
            let listed = self
                .listed
                .iter()
                .filter(|e| &e.code == code)
                .map(|e| e.row)
                .collect::<std::collections::BTreeSet<_>>();
            if *rows > listed.len() as u64 {
                out.push((None, code.as_str(), rows - listed.len() as u64));
            }
        }
        out
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body as a whole is unreadable (bad Arrow stream, missing column,
    /// too many rows...).
    Body(String),
    /// Some rows are bad.
    Rows(RowErrors),
}

/// A request that decoded cleanly, ready to apply.
#[derive(Debug)]
pub struct Decoded {
    /// The events, in request order.
    pub events: Vec<Event>,
    /// `(token hex, real number)` of numbers not kept yet.
    pub numbers: Vec<(String, String)>,
}

/// Records of a message log, decoded record by record ([`Ingest::decode_records`]).
#[derive(Debug)]
pub struct LogDecoded {
    /// The good records' events, in record order.
    pub events: Vec<Event>,
    /// The index of the record each event came from.
    pub rows: Vec<usize>,
    /// The bad records' errors (`row`: the record's index), by record.
    pub errors: Vec<RowError>,
    /// Rows rejected (a JSON record is one row; an Arrow record holds many,
    /// and a record that is not an Arrow stream counts as one).
    pub rejected: u64,
    /// `(token hex, real number)` of numbers not kept yet.
    pub numbers: Vec<(String, String)>,
}

/// A patrol unit's latest known place and status.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitPosition {
    /// The unit's id.
    pub unit_id: String,
    /// Event time of the fix.
    pub ts_ms: u64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Status (`available`, `dispatched`, ...).
    pub status: String,
    /// The alarm it serves, if any.
    pub alarm_id: Option<u64>,
}

/// Decoders (one per stream table: they own pseudonym caches), the set of
/// numbers already kept, and the latest unit positions.
#[derive(Debug)]
pub struct Ingest {
    decoders: [Mutex<Decoder>; 3],
    /// Most rows one request may carry (bounds the work and the error list).
    max_rows: usize,
    /// Bad rows listed in full in a refusal.
    max_listed: usize,
    tokens: Pseudonymiser,
    keep_numbers: bool,
    kept: Mutex<HashSet<u64>>,
    units: UnitDirectory,
    positions: Mutex<HashMap<UnitToken, UnitPosition>>,
}

fn slot(table: Table) -> Option<usize> {
    match table {
        Table::Calls => Some(0),
        Table::Alarms => Some(1),
        Table::Patrols => Some(2),
        _ => None,
    }
}

impl Ingest {
    /// Ingest state for a server configuration (pseudonym key, home
    /// country code, time bounds, limits); unit names go to `units`.
    pub fn new(cfg: &crate::ServerConfig, units: UnitDirectory) -> Arc<Ingest> {
        let (key, cc) = (&cfg.pseudonym_key, &cfg.home_country_code);
        let dec = |t| {
            Mutex::new(Decoder::new(t, Pseudonymiser::new(key, cc), units.clone()).with_time_bounds(cfg.time_bounds()))
        };
        Arc::new(Ingest {
            decoders: [dec(Table::Calls), dec(Table::Alarms), dec(Table::Patrols)],
            max_rows: MAX_ROWS,
            max_listed: cfg.max_listed_errors,
            tokens: Pseudonymiser::new(key, cc),
            keep_numbers: cfg.keep_numbers,
            kept: Mutex::new(HashSet::new()),
            units,
            positions: Mutex::new(HashMap::new()),
        })
    }

    /// Decodes a request body (`arrow`: Arrow IPC stream, else NDJSON).
    pub fn decode(&self, table: Table, body: &[u8], arrow: bool) -> Result<Decoded, Refusal> {
        let Some(i) = slot(table) else { return Err(Refusal::Body(format!("{} is not a stream", table.name()))) };
        let (batches, mut row_errors) = if arrow {
            // A malformed stream is a 400, never a failed thread (ipc::read_stream).
            arrow_batches(table, body, self.max_rows)?
        } else {
            ndjson_batch(table, body, self.max_rows)?
        };
        let bad_rows: HashSet<u64> = row_errors.iter().map(|e| e.row).collect();
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        {
            let mut dec = self.decoders[i].lock().map_err(|_| Refusal::Body("decoder lock poisoned".into()))?;
            let mut row0 = 0u64;
            for b in &batches {
                let map =
                    validate_schema(Path::new(SOURCE), table, &b.schema()).map_err(|e| Refusal::Body(e.to_string()))?;
                dec.decode(Path::new(SOURCE), row0, b, &map, &mut events, &mut rejects);
                row0 += b.num_rows() as u64;
            }
        }
        // A row with a JSON type error is also null to the decoder: report it once.
        row_errors.extend(rejects.iter().filter(|r| !bad_rows.contains(&r.row)).map(RowError::from));
        if !row_errors.is_empty() {
            return Err(Refusal::Rows(RowErrors::new(row_errors, self.max_listed)));
        }
        let numbers = if self.keep_numbers { self.new_numbers(table, &batches) } else { Vec::new() };
        Ok(Decoded { events, numbers })
    }

    /// Decodes a request of reference rows (`subscribers`: registrations and
    /// cancellations; `officers`: roster changes) with the same validation
    /// as a dataset's tables (`valid_from_ms` and `status` included), all or
    /// nothing. Numbers are pseudonymised here, as for events.
    pub fn decode_reference(&self, table: Table, body: &[u8], arrow: bool) -> Result<ReferenceChange, Refusal> {
        if !matches!(table, Table::Subscribers | Table::Officers) {
            return Err(Refusal::Body(format!("{} is not a table of reference changes", table.name())));
        }
        let (batches, mut row_errors) =
            if arrow { arrow_batches(table, body, self.max_rows)? } else { ndjson_batch(table, body, self.max_rows)? };
        let bad_rows: HashSet<u64> = row_errors.iter().map(|e| e.row).collect();
        let (mut subscribers, mut roster, mut rejects) = (Vec::new(), Vec::new(), Vec::new());
        let mut ps = self.tokens.with_cache_for(0);
        let mut scratch = Vec::new();
        let mut row0 = 0u64;
        for b in &batches {
            let map =
                validate_schema(Path::new(SOURCE), table, &b.schema()).map_err(|e| Refusal::Body(e.to_string()))?;
            let ctx = RowCtx::whole(table, Path::new(SOURCE), row0);
            let read = match table {
                Table::Subscribers => {
                    load::subscriber_rows(&ctx, b, &map, &mut ps, &mut scratch, &mut subscribers, &mut rejects)
                }
                _ => load::officer_rows(&ctx, b, &map, &mut roster, &mut rejects),
            };
            read.map_err(|e| Refusal::Body(e.to_string()))?;
            row0 += b.num_rows() as u64;
        }
        row_errors.extend(rejects.iter().filter(|r| !bad_rows.contains(&r.row)).map(RowError::from));
        if !row_errors.is_empty() {
            return Err(Refusal::Rows(RowErrors::new(row_errors, self.max_listed)));
        }
        Ok(match table {
            Table::Subscribers => ReferenceChange::Subscribers(subscribers),
            _ => ReferenceChange::Roster(roster),
        })
    }

    /// Decodes records of a message log, one row each, record by record: a
    /// bad record is one [`RowError`] (its `row` the record's index) and the
    /// others decode (a log cannot be answered 400). Returns the events with
    /// the index of the record each came from, the errors, and the numbers
    /// to keep.
    pub fn decode_records(&self, table: Table, values: &[&[u8]]) -> Result<LogDecoded, Refusal> {
        let Some(i) = slot(table) else { return Err(Refusal::Body(format!("{} is not a stream", table.name()))) };
        let (batch, faults) = ndjson::records_to_batch(table, values.iter().copied());
        let map =
            validate_schema(Path::new(SOURCE), table, &batch.schema()).map_err(|e| Refusal::Body(e.to_string()))?;
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        {
            let mut dec = self.decoders[i].lock().map_err(|_| Refusal::Body("decoder lock poisoned".into()))?;
            dec.decode(Path::new(SOURCE), 0, &batch, &map, &mut events, &mut rejects);
        }
        let faulty: HashSet<u64> = faults.iter().map(|f| f.row).collect();
        let mut errors: Vec<RowError> = faults
            .into_iter()
            .map(|f| RowError {
                row: f.row,
                column: f.column.map(str::to_owned),
                code: f.code.into(),
                reason: f.reason,
            })
            .collect();
        errors.extend(rejects.iter().filter(|r| !faulty.contains(&r.row)).map(RowError::from));
        errors.sort_by_key(|e| e.row);
        let bad: HashSet<u64> = errors.iter().map(|e| e.row).collect();
        let rows: Vec<usize> = (0..values.len()).filter(|r| !bad.contains(&(*r as u64))).collect();
        debug_assert_eq!(rows.len(), events.len(), "one event per good record");
        let numbers =
            if self.keep_numbers { self.new_numbers(table, std::slice::from_ref(&batch)) } else { Vec::new() };
        let rejected = bad.len() as u64;
        Ok(LogDecoded { events, rows, errors, rejected, numbers })
    }

    /// Decodes records of a message log whose values are Arrow IPC streams
    /// of the table's rows (as `citywatch publish --log-format arrow` writes
    /// them), record by record: a value that is not such a stream, or whose
    /// schema is wrong, is one error for its record (`bad_arrow`,
    /// `bad_schema`), a bad row inside a good one is an error for that row
    /// alone (its reason says which row of the record), and everything else
    /// decodes. `rows` and the errors' `row` are record indices, as in
    /// [`Ingest::decode_records`].
    pub fn decode_arrow_records(&self, table: Table, values: &[&[u8]]) -> Result<LogDecoded, Refusal> {
        let Some(i) = slot(table) else { return Err(Refusal::Body(format!("{} is not a stream", table.name()))) };
        let (mut events, mut rows, mut errors, mut rejected) = (Vec::new(), Vec::new(), Vec::new(), 0);
        let mut kept_batches = Vec::new();
        let mut dec = self.decoders[i].lock().map_err(|_| Refusal::Body("decoder lock poisoned".into()))?;
        for (record, value) in values.iter().enumerate() {
            let whole =
                |code: &str, reason: String| RowError { row: record as u64, column: None, code: code.into(), reason };
            // The schema is checked once, before any batch is read; its
            // column map serves every batch of the stream.
            let mut checked = None;
            let check = |schema: &_| {
                let map = validate_schema(Path::new(SOURCE), table, schema);
                let answer = map.as_ref().map(drop).map_err(|e| e.to_string());
                checked = Some(map);
                answer
            };
            let batches = match ipc::read_stream(value, self.max_rows, check) {
                Ok(batches) => batches,
                Err(IpcError::Bad(reason)) => {
                    let code = if matches!(checked, Some(Err(_))) { "bad_schema" } else { "bad_arrow" };
                    errors.push(whole(code, reason));
                    rejected += 1;
                    continue;
                }
                Err(IpcError::TooManyRows) => {
                    errors.push(whole("too_large", format!("more than {} rows in one record", self.max_rows)));
                    rejected += 1;
                    continue;
                }
            };
            let Some(Ok(map)) = checked else { unreachable!("a stream that was read had its schema checked") };
            let (mut row0, mut rejects, good_before) = (0u64, Vec::new(), rows.len());
            for b in &batches {
                let before = events.len();
                dec.decode(Path::new(SOURCE), row0, b, &map, &mut events, &mut rejects);
                rows.extend(std::iter::repeat_n(record, events.len() - before));
                row0 += b.num_rows() as u64;
            }
            let bad_rows: HashSet<u64> = rejects.iter().map(|r| r.row).collect();
            debug_assert_eq!(rows.len() - good_before + bad_rows.len(), row0 as usize, "one event per good row");
            rejected += bad_rows.len() as u64;
            errors.extend(rejects.iter().map(|r| {
                let mut e = RowError::from(r);
                e.reason = format!("row {} of the record: {}", e.row, e.reason);
                e.row = record as u64;
                e
            }));
            kept_batches.extend(batches);
        }
        drop(dec);
        let numbers = if self.keep_numbers { self.new_numbers(table, &kept_batches) } else { Vec::new() };
        Ok(LogDecoded { events, rows, errors, rejected, numbers })
    }

    fn new_numbers(&self, table: Table, batches: &[RecordBatch]) -> Vec<(String, String)> {
        let cols: &[&str] = match table {
            Table::Calls => &["caller", "callee"],
            Table::Alarms => &["reporter", "suspect_number"],
            _ => &[],
        };
        let mut out = Vec::new();
        let Ok(kept) = self.kept.lock() else { return out };
        let mut seen = HashSet::new();
        for b in batches {
            for c in cols {
                let Ok(idx) = b.schema().index_of(c) else { continue };
                let col = b.column(idx);
                for r in 0..col.len() {
                    if let Some(n) = str_at(col, r) {
                        let t = self.tokens.token_uncached(n);
                        if !kept.contains(&t) && seen.insert(t) {
                            out.push((token_hex(t), n.to_owned()));
                        }
                    }
                }
            }
        }
        out
    }

    /// Records that numbers were kept (after the store committed them).
    pub fn numbers_kept(&self, numbers: &[(String, String)]) {
        if let Ok(mut k) = self.kept.lock() {
            k.extend(numbers.iter().filter_map(|(t, _)| u64::from_str_radix(t, 16).ok()));
        }
    }

    /// Updates unit positions from applied patrol events.
    pub fn track_units(&self, events: &[Event]) {
        let Ok(mut pos) = self.positions.lock() else { return };
        for e in events {
            if let Event::Patrol(p) = e {
                let newer = pos.get(&p.unit).is_none_or(|u| u.ts_ms <= p.ts_ms);
                if newer {
                    pos.insert(
                        p.unit,
                        UnitPosition {
                            unit_id: self.units.name(p.unit),
                            ts_ms: p.ts_ms,
                            lat: p.pos.lat(),
                            lon: p.pos.lon(),
                            status: p.status.as_str().to_owned(),
                            alarm_id: p.alarm_id,
                        },
                    );
                }
            }
        }
    }

    /// Latest unit positions, sorted by unit id.
    pub fn units(&self) -> Vec<UnitPosition> {
        let mut v: Vec<UnitPosition> = self.positions.lock().map(|p| p.values().cloned().collect()).unwrap_or_default();
        v.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
        v
    }
}

fn str_at(col: &ArrayRef, r: usize) -> Option<&str> {
    if col.is_null(r) {
        return None;
    }
    if let Some(a) = col.as_string_opt::<i32>() {
        return Some(a.value(r));
    }
    if let Some(a) = col.as_string_opt::<i64>() {
        return Some(a.value(r));
    }
    col.as_string_view_opt().map(|a| a.value(r))
}

/// NDJSON -> one batch with the contract's schema ([`ndjson::records_to_batch`]),
/// refused whole when it is not UTF-8 or has more than `max_rows` records.
fn ndjson_batch(table: Table, body: &[u8], max_rows: usize) -> Result<(Vec<RecordBatch>, Vec<RowError>), Refusal> {
    std::str::from_utf8(body).map_err(|e| Refusal::Body(format!("body is not UTF-8: {e}")))?;
    let lines = || body.split(|&b| b == b'\n');
    if ndjson::count_records(lines()) > max_rows {
        return Err(too_many_rows(max_rows));
    }
    let (batch, faults) = ndjson::records_to_batch(table, lines());
    let errors = faults
        .into_iter()
        .map(|f| RowError { row: f.row, column: f.column.map(str::to_owned), code: f.code.into(), reason: f.reason })
        .collect();
    Ok((vec![batch], errors))
}

/// Most rows one ingest request may carry: bounds the decoding work and the
/// memory of a refusal (a reason per bad row) whatever the body holds.
pub const MAX_ROWS: usize = 100_000;

fn too_many_rows(max_rows: usize) -> Refusal {
    Refusal::Body(format!("more than {max_rows} rows in one request; split it into smaller requests"))
}

fn arrow_batches(table: Table, body: &[u8], max_rows: usize) -> Result<(Vec<RecordBatch>, Vec<RowError>), Refusal> {
    let check = |schema: &_| validate_schema(Path::new(SOURCE), table, schema).map(drop).map_err(|e| e.to_string());
    match ipc::read_stream(body, max_rows, check) {
        Ok(batches) => Ok((batches, Vec::new())),
        Err(IpcError::Bad(reason)) => Err(Refusal::Body(reason)),
        Err(IpcError::TooManyRows) => Err(too_many_rows(max_rows)),
    }
}
