//! `citywatch import incidents`: an analyst's incident export (CSV or Parquet)
//! to a dataset's alarms table.
//!
//! The columns are named by the caller ([`ImportOptions`]): the time (with one
//! or more formats tried in order and the time zone of local times), the
//! position (lat/lon in WGS84 degrees, or projected x/y with an EPSG code), the
//! category, and optionally an id and a priority. Source categories are mapped
//! to the contract's by a mapping file ([`CategoryMap`]).
//!
//! **Rows.** A row that cannot be used is *rejected*, never guessed at: it
//! goes to `rejected.ndjson` in the output folder (one JSON object per line,
//! as in replay: `table`, `file`, `row` (0-based data row), `column`, `code`,
//! `reason`; raw values are not copied) and is counted in the summary. Codes:
//! `null` (time, position or category empty: real exports often lack
//! coordinates), `bad_time`, `bad_number`, `out_of_range` (not a position on
//! Earth, or a priority outside 1–4), `unknown_value` (a category the mapping
//! does not name), `duplicate` (an id seen before). Rows whose category maps
//! to `skip` are left out and counted, not rejected.
//!
//! **Time.** Each format is a `chrono` pattern (`%Y-%m-%d %H:%M:%S`,
//! `%m/%d/%Y %I:%M:%S %p`, `%d.%m.%Y`...; a pattern without a time of day
//! gives midnight), or `rfc3339`, `epoch_s`, `epoch_ms`. A time with an
//! offset (RFC 3339, or a pattern with `%z`) is exact; any other is local time
//! in `time_zone` (an IANA name such as `America/Toronto`, or `UTC`). The hour
//! that does not exist when clocks spring forward is read as the same clock
//! time an hour later (02:30 -> 03:30 daylight time, the instant of 02:30
//! standard time), and the hour that happens twice in autumn as its first
//! occurrence; both are counted ([`ImportSummary`]).
//!
//! **Ids.** A numeric id is kept; any other text gets a stable 63-bit hash
//! (FNV-1a) of itself; without an id column the id is the 1-based data row.
//!
//! The output is `alarms.parquet` (source `110`, no reporter) and, unless the
//! folder has one, an `officers.parquet` with one city analyst
//! ([`ImportOptions::analyst`]), so that alerts of a city without grids or
//! officers go to the analyst rather than to nobody.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use citywatch_engine::contract::{Category, Role, Table};
use citywatch_engine::reject::{RejectLog, Rejected};

use crate::city::{OfficerRow, officers_batch};
use crate::sink::write_file;
use crate::toronto::{TorontoAlarm, alarms_batch};
use crate::{Error, Result};

/// How to read an export.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The export: `.csv` (comma-separated, quoted fields, a header row) or `.parquet`.
    pub input: PathBuf,
    /// The dataset folder to write.
    pub out: PathBuf,
    /// Column of the incident time.
    pub time: String,
    /// Formats of the time, tried in order (see the module docs).
    pub time_formats: Vec<String>,
    /// Time zone of local times (IANA name or `UTC`).
    pub time_zone: String,
    /// Latitude and longitude columns (WGS84 degrees).
    pub lat_lon: Option<(String, String)>,
    /// Projected x (easting) and y (northing) columns and their EPSG code.
    pub xy: Option<(String, String, u16)>,
    /// Column of the source category.
    pub category: String,
    /// The mapping file of source categories.
    pub categories: PathBuf,
    /// Column of the incident id.
    pub id: Option<String>,
    /// Column of the priority (1 most urgent to 4).
    pub priority: Option<String>,
    /// Officer id of the city analyst written to `officers.parquet` when the folder has none.
    pub analyst: String,
}

/// Source category -> contract category (or `skip`) and priority.
///
/// The file is CSV with a header `source,category[,priority]`; `source` is the
/// export's spelling (matched exactly, after trimming), `category` one of the
/// contract's categories or `skip`, `priority` 1–4 (default 3; a priority
/// column, when given, wins). A `source` of `*` maps every category not listed.
#[derive(Debug, Clone, Default)]
pub struct CategoryMap {
    map: BTreeMap<String, Option<(Category, u8)>>,
    default: Option<Option<(Category, u8)>>,
}

impl CategoryMap {
    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<CategoryMap> {
        let bad = |detail: String| Error::Source { file: path.to_owned(), detail };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .flexible(true)
            .from_path(path)
            .map_err(|e| bad(format!("cannot read the category mapping ({e})")))?;
        let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        if header.get(0) != Some("source") || header.get(1) != Some("category") {
            return Err(bad(format!(
                "the header must be `source,category[,priority]`, found `{}`",
                header.iter().collect::<Vec<_>>().join(",")
            )));
        }
        let mut m = CategoryMap::default();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| bad(e.to_string()))?;
            let line = i + 2;
            let source = rec.get(0).unwrap_or("").to_owned();
            let target = rec.get(1).unwrap_or("");
            let priority = match rec.get(2).filter(|p| !p.is_empty()) {
                None => 3,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| (1..=4).contains(p))
                    .ok_or_else(|| bad(format!("line {line}: priority `{p}` is not 1 to 4")))?,
            };
            let value = if target == "skip" {
                None
            } else {
                let c = Category::parse(target).ok_or_else(|| {
                    bad(format!(
                        "line {line}: `{target}` is not a category; expected `skip` or one of {}",
                        Category::expected()
                    ))
                })?;
                Some((c, priority))
            };
            if source == "*" {
                m.default = Some(value);
            } else if m.map.insert(source.clone(), value).is_some() {
                return Err(bad(format!("line {line}: `{source}` is mapped twice")));
            }
        }
        if m.map.is_empty() && m.default.is_none() {
            return Err(bad("the mapping names no category".to_owned()));
        }
        Ok(m)
    }

    /// The mapping of a source category: `Some(None)` to skip, `None` when not mapped.
    pub fn get(&self, source: &str) -> Option<Option<(Category, u8)>> {
        self.map.get(source.trim()).copied().or(self.default)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows_read: u64,
    /// Alarms written.
    pub alarms: u64,
    /// Rows left out because their category maps to `skip`.
    pub skipped: u64,
    /// Rows rejected (see `rejected.ndjson`).
    pub rejected: u64,
    /// Rejected rows per reason code.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Local times in the spring-forward gap.
    pub dst_gap_rows: u64,
    /// Local times in the repeated autumn hour.
    pub dst_ambiguous_rows: u64,
    /// Alarms per contract category.
    pub by_category: BTreeMap<String, u64>,
    /// First and last alarm time (RFC 3339).
    pub first: String,
    /// Last alarm time.
    pub last: String,
    /// Whether an officers table with the analyst was written.
    pub wrote_officers: bool,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "rows read {}, alarms {}, skipped (mapped to skip) {}, rejected {}",
            self.rows_read, self.alarms, self.skipped, self.rejected
        )?;
        for (code, n) in &self.rejected_by_code {
            writeln!(f, "  rejected {n:>8}  {code}")?;
        }
        for (c, n) in &self.by_category {
            writeln!(f, "  {n:>8}  {c}")?;
        }
        writeln!(
            f,
            "local times in the spring gap {}, in the repeated autumn hour {}",
            self.dst_gap_rows, self.dst_ambiguous_rows
        )?;
        write!(f, "time {} .. {}", self.first, self.last)
    }
}

enum TimeFormat {
    Rfc3339,
    EpochS,
    EpochMs,
    Pattern { text: String, offset: bool, time_of_day: bool },
}

impl TimeFormat {
    fn parse(text: &str) -> TimeFormat {
        match text {
            "rfc3339" => TimeFormat::Rfc3339,
            "epoch_s" => TimeFormat::EpochS,
            "epoch_ms" => TimeFormat::EpochMs,
            p => TimeFormat::Pattern {
                text: p.to_owned(),
                offset: p.contains("%z") || p.contains("%:z") || p.contains("%#z"),
                time_of_day: ["%H", "%I", "%T", "%R", "%k", "%l", "%X", "%c", "%s"].iter().any(|d| p.contains(d)),
            },
        }
    }
}

/// What became of a row.
enum Row {
    Alarm(TorontoAlarm, Local),
    Skip,
    /// Column index (into the wanted columns), reason code, reason.
    Reject(usize, &'static str, String),
}

/// Where a local time fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Exact,
    Gap,
    Ambiguous,
}

/// Parses a time with the first format that fits; UTC ms.
fn parse_time(text: &str, formats: &[TimeFormat], tz: chrono_tz::Tz) -> Option<(i64, Local)> {
    let text = text.trim();
    let local = |naive: NaiveDateTime| match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some((t.timestamp_millis(), Local::Exact)),
        LocalResult::Ambiguous(first, _) => Some((first.timestamp_millis(), Local::Ambiguous)),
        LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            tz.from_local_datetime(&later).earliest().map(|t| (t.timestamp_millis(), Local::Gap))
        }
    };
    formats.iter().find_map(|f| match f {
        TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(text).ok().map(|t| (t.timestamp_millis(), Local::Exact)),
        TimeFormat::EpochS => text.parse::<i64>().ok().and_then(|s| s.checked_mul(1000)).map(|t| (t, Local::Exact)),
        TimeFormat::EpochMs => text.parse::<i64>().ok().map(|t| (t, Local::Exact)),
        TimeFormat::Pattern { text: p, offset: true, .. } => {
            DateTime::parse_from_str(text, p).ok().map(|t| (t.timestamp_millis(), Local::Exact))
        }
        TimeFormat::Pattern { text: p, time_of_day: true, .. } => {
            NaiveDateTime::parse_from_str(text, p).ok().and_then(local)
        }
        TimeFormat::Pattern { text: p, .. } => {
            NaiveDate::parse_from_str(text, p).ok().and_then(|d| d.and_hms_opt(0, 0, 0)).and_then(local)
        }
    })
}

/// A stable id for a row: the number itself, or FNV-1a of the text (63 bits).
fn id_of(text: &str) -> u64 {
    if let Ok(n) = text.trim().parse::<u64>() {
        return n;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 1
}

/// The export's rows as text columns: header and, per row, its fields (None: empty or null).
struct Rows {
    header: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn read_csv(path: &Path) -> Result<Rows> {
    let bad = |detail: String| Error::Source { file: path.to_owned(), detail };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| bad(format!("cannot read the export ({e})")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| bad(format!("not readable as CSV: {e}")))?;
        rows.push(rec.iter().map(|v| Some(v.trim().to_owned()).filter(|v| !v.is_empty())).collect());
    }
    Ok(Rows { header, rows })
}

/// One Parquet column as text (strings, integers, floats; timestamps as RFC 3339 UTC,
/// or as naive local time when the column has no time zone).
fn column_text(array: &ArrayRef, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let n = array.len();
    let each = |f: &dyn Fn(usize) -> String| -> Vec<Option<String>> {
        (0..n).map(|i| if array.is_null(i) { None } else { Some(f(i)) }).collect()
    };
    let ts = |v: i64, unit: &TimeUnit, tz: bool| {
        let ms = match unit {
            TimeUnit::Second => v.saturating_mul(1000),
            TimeUnit::Millisecond => v,
            TimeUnit::Microsecond => v / 1000,
            TimeUnit::Nanosecond => v / 1_000_000,
        };
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        if tz { t.to_rfc3339() } else { t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string() }
    };
    Ok(match array.data_type() {
        DataType::Utf8 => each(&|i| array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => each(&|i| array.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => each(&|i| array.as_string_view().value(i).to_owned()),
        DataType::Int32 => each(&|i| array.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => each(&|i| array.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::UInt32 => each(&|i| array.as_primitive::<UInt32Type>().value(i).to_string()),
        DataType::UInt64 => each(&|i| array.as_primitive::<UInt64Type>().value(i).to_string()),
        DataType::Float32 => each(&|i| array.as_primitive::<Float32Type>().value(i).to_string()),
        DataType::Float64 => each(&|i| array.as_primitive::<Float64Type>().value(i).to_string()),
        DataType::Timestamp(unit, tz) => {
            let tz = tz.is_some();
            match unit {
                TimeUnit::Second => each(&|i| ts(array.as_primitive::<TimestampSecondType>().value(i), unit, tz)),
                TimeUnit::Millisecond => {
                    each(&|i| ts(array.as_primitive::<TimestampMillisecondType>().value(i), unit, tz))
                }
                TimeUnit::Microsecond => {
                    each(&|i| ts(array.as_primitive::<TimestampMicrosecondType>().value(i), unit, tz))
                }
                TimeUnit::Nanosecond => {
                    each(&|i| ts(array.as_primitive::<TimestampNanosecondType>().value(i), unit, tz))
                }
            }
        }
        other => {
            return Err(Error::Source {
                file: path.to_owned(),
                detail: format!(
                    "column `{name}` has type {other}; import reads text, integer, float and timestamp columns"
                ),
            });
        }
    })
}

fn read_parquet(path: &Path, wanted: &[&str]) -> Result<Rows> {
    let batches = citywatch_engine::parquet_io::read_whole_file(path, "incidents")?;
    let header: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
    let mut rows = Vec::new();
    for b in &batches {
        let schema = b.schema();
        let mut cols = Vec::with_capacity(wanted.len());
        for w in wanted {
            let i = schema.index_of(w).map_err(|_| Error::Source {
                file: path.to_owned(),
                detail: format!(
                    "no column `{w}`; found: {}",
                    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            cols.push(column_text(b.column(i), w, path)?);
        }
        for r in 0..b.num_rows() {
            rows.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(Rows { header, rows })
}

/// Turns a projected (x, y) in `epsg` into WGS84 degrees.
struct Projection {
    from: proj4rs::Proj,
    to: proj4rs::Proj,
}

impl Projection {
    fn new(epsg: u16) -> Result<Projection> {
        let from = proj4rs::Proj::from_epsg_code(epsg).map_err(|e| {
            Error::config(
                "--epsg",
                format!("EPSG:{epsg} is not a projection proj4rs knows ({e}); use the code of the export's x/y"),
            )
        })?;
        let to = proj4rs::Proj::from_epsg_code(4326).map_err(|e| Error::Bug(format!("EPSG:4326: {e}")))?;
        Ok(Projection { from, to })
    }

    fn lat_lon(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let mut p = (x, y, 0.0);
        if self.from.is_latlong() {
            p = (x.to_radians(), y.to_radians(), 0.0);
        }
        proj4rs::transform::transform(&self.from, &self.to, &mut p).ok()?;
        Some((p.1.to_degrees(), p.0.to_degrees()))
    }
}

/// Imports an export into `opts.out` (see the module docs).
pub fn import_incidents(opts: &ImportOptions) -> Result<ImportSummary> {
    let tz: chrono_tz::Tz = opts.time_zone.parse().map_err(|_| {
        Error::config(
            "--time-zone",
            format!("`{}` is not an IANA time zone (e.g. America/Toronto, Europe/Berlin, UTC)", opts.time_zone),
        )
    })?;
    if opts.time_formats.is_empty() {
        return Err(Error::config("--time-format", "give at least one format, e.g. '%Y-%m-%d %H:%M:%S' or rfc3339"));
    }
    let formats: Vec<TimeFormat> = opts.time_formats.iter().map(|f| TimeFormat::parse(f)).collect();
    let (pos_cols, projection) = match (&opts.lat_lon, &opts.xy) {
        (Some((lat, lon)), None) => ((lat.clone(), lon.clone()), None),
        (None, Some((x, y, epsg))) => ((y.clone(), x.clone()), Some(Projection::new(*epsg)?)),
        _ => return Err(Error::config("position", "give either --lat and --lon, or --x, --y and --epsg")),
    };
    let categories = CategoryMap::load(&opts.categories)?;
    let mut wanted: Vec<&str> = vec![&opts.time, &pos_cols.0, &pos_cols.1, &opts.category];
    wanted.extend(opts.id.as_deref());
    wanted.extend(opts.priority.as_deref());
    let ext = opts.input.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let rows = match ext.as_str() {
        "csv" => read_csv(&opts.input)?,
        "parquet" => read_parquet(&opts.input, &wanted)?,
        _ => {
            return Err(Error::config("--input", format!("{} is neither .csv nor .parquet", opts.input.display())));
        }
    };
    let col = |name: &str| {
        rows.header.iter().position(|h| h == name).ok_or_else(|| Error::Source {
            file: opts.input.clone(),
            detail: format!("no column `{name}`; found: {}", rows.header.join(", ")),
        })
    };
    let idx: Vec<usize> = wanted.iter().map(|w| col(w)).collect::<Result<_>>()?;
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let mut log = RejectLog::to_file(&opts.out.join("rejected.ndjson"))?;
    let mut s = ImportSummary::default();
    let mut out = Vec::new();
    let mut seen_ids = HashSet::new();
    let id_at = opts.id.as_ref().map(|_| 4);
    let priority_at = opts.priority.as_ref().map(|_| 4 + usize::from(opts.id.is_some()));
    for (row, fields) in rows.rows.iter().enumerate() {
        s.rows_read += 1;
        let get = |k: usize| fields.get(idx[k]).and_then(|v| v.as_deref());
        let reject = |k: usize, code: &'static str, reason: String| Row::Reject(k, code, reason);
        let outcome = (|| {
            let Some(cat) = get(3) else { return reject(3, "null", "no category".to_owned()) };
            let Some(mapped) = categories.get(cat) else {
                return reject(
                    3,
                    "unknown_value",
                    "a category the mapping file does not name (add it, or a `*` line)".to_owned(),
                );
            };
            let Some((category, mapped_priority)) = mapped else { return Row::Skip };
            let Some(t) = get(0) else { return reject(0, "null", "no time".to_owned()) };
            let Some((ts_ms, local)) = parse_time(t, &formats, tz) else {
                return reject(
                    0,
                    "bad_time",
                    format!("not a time in any of the formats {}", opts.time_formats.join(" | ")),
                );
            };
            let (Some(a), Some(b)) = (get(1), get(2)) else { return reject(1, "null", "no coordinates".to_owned()) };
            let num = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite());
            let (Some(a), Some(b)) = (num(a), num(b)) else {
                return reject(1, "bad_number", "a coordinate is not a number".to_owned());
            };
            let Some((lat, lon)) = (match &projection {
                None => Some((a, b)),
                Some(p) => p.lat_lon(b, a),
            }) else {
                return reject(1, "out_of_range", "x/y cannot be projected from the EPSG code's system".to_owned());
            };
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || (lat == 0.0 && lon == 0.0) {
                return reject(1, "out_of_range", "not a position on Earth (or 0,0, a common placeholder)".to_owned());
            }
            let priority = match priority_at.map(|k| (k, get(k))) {
                Some((k, Some(p))) => match p.parse::<u8>().ok().filter(|p| (1..=4).contains(p)) {
                    Some(p) => p,
                    None => return reject(k, "out_of_range", "priority is not 1 to 4".to_owned()),
                },
                _ => mapped_priority,
            };
            let alarm_id = match id_at {
                Some(k) => match get(k) {
                    Some(id) => id_of(id),
                    None => return reject(k, "null", "no id".to_owned()),
                },
                None => row as u64 + 1,
            };
            if !seen_ids.insert(alarm_id) {
                return reject(id_at.unwrap_or(0), "duplicate", "an id seen in an earlier row".to_owned());
            }
            Row::Alarm(TorontoAlarm { alarm_id, ts_ms, category, priority, lat, lon }, local)
        })();
        match outcome {
            Row::Skip => s.skipped += 1,
            Row::Alarm(a, local) => {
                match local {
                    Local::Gap => s.dst_gap_rows += 1,
                    Local::Ambiguous => s.dst_ambiguous_rows += 1,
                    Local::Exact => {}
                }
                *s.by_category.entry(a.category.as_str().to_owned()).or_default() += 1;
                out.push(a);
            }
            Row::Reject(k, code, reason) => {
                log.record(&Rejected::new(Table::Alarms, &opts.input, row as u64, Some(wanted[k]), code, reason))?;
                *s.rejected_by_code.entry(code.to_owned()).or_default() += 1;
            }
        }
    }
    log.finish()?;
    s.rejected = s.rejected_by_code.values().sum();
    out.sort_by_key(|a| (a.ts_ms, a.alarm_id));
    s.alarms = out.len() as u64;
    if let (Some(a), Some(b)) = (out.first(), out.last()) {
        s.first = citywatch_engine::lateness::utc_rfc3339(a.ts_ms);
        s.last = citywatch_engine::lateness::utc_rfc3339(b.ts_ms);
    }
    let batches: Vec<Result<_>> = out.chunks(crate::sink::BATCH_ROWS).map(alarms_batch).collect();
    write_file(&opts.out.join("alarms.parquet"), Table::Alarms.schema(), batches)?;
    let officers = opts.out.join("officers.parquet");
    if !officers.exists() {
        let analyst = OfficerRow {
            officer_id: opts.analyst.clone(),
            name: "City analyst".to_owned(),
            role: Role::Analyst,
            scope: "city".to_owned(),
        };
        write_file(&officers, Table::Officers.schema(), [officers_batch(&[analyst])])?;
        s.wrote_officers = true;
    }
    Ok(s)
}
