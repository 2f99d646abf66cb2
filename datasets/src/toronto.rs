//! Real incidents: Toronto Police "Major Crime Indicators" 2014–2021 as alarms.
//!
//! Source: `datasets/toronto/toronto_mci_2014_2021.csv.gz` (see [`SOURCE_CSV`];
//! provenance and licence in `datasets/README.md`: Open Government Licence –
//! Toronto). [`convert`] maps it to the alarms contract and the result is
//! committed as `datasets/toronto/alarms.parquet` ([`COMMITTED_ALARMS`]);
//! [`write_dataset`] lays it out as a dataset folder with a grids and an
//! officers table, usable by replay and eval.
//!
//! **Mapping**: Break and Enter -> `burglary`, Auto Theft -> `vehicle_theft`,
//! Robbery -> `robbery`, Assault -> `assault`, Theft Over -> `theft`;
//! `alarm_id` = the source's `event_id`; source `110` (the emergency line;
//! Toronto's is 911); no reporter or suspect number. Priority by category:
//! robbery and assault 1, burglary 2, vehicle theft and theft 3.
//!
//! **Time**: `ts_ms` = the occurrence hour (local Toronto time) converted to
//! UTC: EST (UTC−5) in winter, EDT (UTC−4) from the second Sunday of March,
//! 02:00, to the first Sunday of November, 02:00 (the rule since 2007). The
//! hour that does not exist when clocks spring forward (02:00) is read as
//! EST, i.e. 07:00 UTC, the same instant as 03:00 EDT; the hour that happens
//! twice in autumn (01:00) is read as its first occurrence (EDT, 05:00 UTC).
//!
//! **Rows**: rows with an occurrence before 2014-01-01 (old incidents
//! reported later) are dropped; every other valid row is kept. Exact
//! duplicates (same time, category, premises, place; different `event_id`:
//! one event with several offences) are **kept**, each as its own alarm, as
//! the published counts do; [`ConvertSummary::exact_duplicates`] counts them.
//! A malformed row (bad date, unknown category, coordinates outside Toronto)
//! would be dropped and counted; the published file has none.

use std::collections::{BTreeMap, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, UInt8Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, RecordBatch};
use citywatch_engine::contract::{AlarmSource, Category, Role, Table};
use citywatch_engine::jurisdiction::DEFAULT_GRID_RESOLUTION;
use h3o::{CellIndex, LatLng, Resolution};

use crate::city::{OfficerRow, officers_batch};
use crate::sink::write_file;
use crate::{Error, Result};

/// The source CSV, committed in the repository with its provenance
/// (`datasets/README.md`).
pub const SOURCE_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/toronto/toronto_mci_2014_2021.csv.gz");
/// The committed, converted alarms.
pub const COMMITTED_ALARMS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/toronto/alarms.parquet");

/// The category and priority of a source category.
pub fn map_category(source: &str) -> Option<(Category, u8)> {
    Some(match source {
        "Break and Enter" => (Category::Burglary, 2),
        "Auto Theft" => (Category::VehicleTheft, 3),
        "Robbery" => (Category::Robbery, 1),
        "Assault" => (Category::Assault, 1),
        "Theft Over" => (Category::Theft, 3),
        _ => return None,
    })
}

/// How a local hour was placed on the UTC time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalHour {
    /// An ordinary hour.
    Normal,
    /// The non-existent hour at the spring change (read as standard time).
    Gap,
    /// The repeated hour at the autumn change (read as its first occurrence).
    Ambiguous,
}

/// Days since 1970-01-01 of a date (a real one: the reader drops the rest).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let date = i32::try_from(y).ok().and_then(|y| chrono::NaiveDate::from_ymd_opt(y, m, d));
    let date = date.unwrap_or_else(|| panic!("{y}-{m:02}-{d:02} is not a date"));
    (date - chrono::NaiveDate::default()).num_days()
}

/// Day of month of the `n`-th Sunday of a month.
fn nth_sunday(y: i64, m: u32, n: u32) -> u32 {
    let y = i32::try_from(y).expect("a year of the data");
    chrono::NaiveDate::from_weekday_of_month_opt(y, m, chrono::Weekday::Sun, n as u8)
        .map_or_else(|| panic!("{y}-{m:02} has no Sunday number {n}"), |d| chrono::Datelike::day(&d))
}

/// Toronto local time (hour resolution) to UTC milliseconds.
pub fn toronto_to_utc_ms(y: i64, m: u32, d: u32, hour: u32) -> (i64, LocalHour) {
    let spring = nth_sunday(y, 3, 2);
    let autumn = nth_sunday(y, 11, 1);
    let key = (m, d, hour);
    // DST from spring 03:00 local (the first EDT hour) to autumn 02:00 local (the first EST hour after).
    let dst = key >= (3, spring, 3) && key < (11, autumn, 2);
    let kind = if key == (3, spring, 2) {
        LocalHour::Gap
    } else if key == (11, autumn, 1) {
        LocalHour::Ambiguous
    } else {
        LocalHour::Normal
    };
    let offset_h = if dst { 4 } else { 5 };
    ((days_from_civil(y, m, d) * 24 + i64::from(hour) + offset_h) * 3_600_000, kind)
}

/// One converted row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TorontoAlarm {
    /// The source's `event_id`.
    pub alarm_id: u64,
    /// Occurrence time, UTC ms.
    pub ts_ms: i64,
    /// Mapped category.
    pub category: Category,
    /// Priority.
    pub priority: u8,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// What [`convert`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ConvertSummary {
    /// Data rows in the CSV.
    pub rows_read: u64,
    /// Rows written.
    pub rows_kept: u64,
    /// Rows dropped because the occurrence is before 2014.
    pub dropped_before_2014: u64,
    /// Rows dropped as malformed.
    pub dropped_malformed: u64,
    /// Kept rows that exactly repeat an earlier row (except `event_id`).
    pub exact_duplicates: u64,
    /// Rows in the non-existent spring-forward hour.
    pub dst_gap_rows: u64,
    /// Rows in the repeated autumn hour.
    pub dst_ambiguous_rows: u64,
    /// Rows kept per category (source spelling).
    pub by_source_category: BTreeMap<String, u64>,
    /// Rows kept per contract category.
    pub by_category: BTreeMap<String, u64>,
    /// First and last alarm time (RFC 3339).
    pub first: String,
    /// Last alarm time.
    pub last: String,
}

/// Reads and maps the source CSV (gzip), sorted by (time, event id).
pub fn read_source(csv_gz: &Path) -> Result<(Vec<TorontoAlarm>, ConvertSummary)> {
    let file = std::fs::File::open(csv_gz).map_err(|e| Error::Source {
        file: csv_gz.to_owned(),
        detail: format!(
            "cannot open ({e}); the Toronto CSV is committed as datasets/toronto/toronto_mci_2014_2021.csv.gz"
        ),
    })?;
    // The csv crate: quoted fields, `""` inside them, blank lines skipped;
    // `flexible` so a short row is dropped as malformed below, not an error.
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).from_reader(BufReader::new(flate2::read::GzDecoder::new(file)));
    let bad = |e: csv::Error| Error::Source { file: csv_gz.to_owned(), detail: format!("not readable as CSV: {e}") };
    let cols: Vec<String> = reader.headers().map_err(bad)?.iter().map(str::to_owned).collect();
    if cols.is_empty() {
        return Err(Error::Source { file: csv_gz.to_owned(), detail: "empty file".into() });
    }
    let want = ["event_id", "occurrence_local", "category", "premises", "neighbourhood", "lat", "lon"];
    let idx: Vec<usize> = want
        .iter()
        .map(|w| {
            cols.iter().position(|c| c == w).ok_or_else(|| Error::Source {
                file: csv_gz.to_owned(),
                detail: format!("header has no `{w}` column; found: {}", cols.join(", ")),
            })
        })
        .collect::<Result<_>>()?;
    let mut s = ConvertSummary::default();
    let mut out = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for record in reader.records() {
        let f = record.map_err(bad)?;
        s.rows_read += 1;
        let get = |i: usize| f.get(idx[i]).unwrap_or("");
        let parsed = (|| {
            let id: u64 = get(0).parse().ok()?;
            let t = get(1);
            let y: i64 = t.get(0..4)?.parse().ok()?;
            let m: u32 = t.get(5..7)?.parse().ok()?;
            let d: u32 = t.get(8..10)?.parse().ok()?;
            let h: u32 = t.get(11..13)?.parse().ok()?;
            if h > 23 {
                return None;
            }
            // A date that does not exist (2021-02-31) is malformed.
            chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
            let (cat, pri) = map_category(get(2))?;
            let lat: f64 = get(5).parse().ok()?;
            let lon: f64 = get(6).parse().ok()?;
            if !(43.0..44.5).contains(&lat) || !(-80.5..-78.5).contains(&lon) {
                return None;
            }
            Some((id, y, m, d, h, cat, pri, lat, lon))
        })();
        let Some((id, y, m, d, h, cat, pri, lat, lon)) = parsed else {
            s.dropped_malformed += 1;
            continue;
        };
        if y < 2014 {
            s.dropped_before_2014 += 1;
            continue;
        }
        let (ts_ms, kind) = toronto_to_utc_ms(y, m, d, h);
        match kind {
            LocalHour::Gap => s.dst_gap_rows += 1,
            LocalHour::Ambiguous => s.dst_ambiguous_rows += 1,
            LocalHour::Normal => {}
        }
        if !seen.insert((1..7).map(|i| get(i).to_owned()).collect()) {
            s.exact_duplicates += 1;
        }
        *s.by_source_category.entry(get(2).to_owned()).or_default() += 1;
        *s.by_category.entry(cat.as_str().to_owned()).or_default() += 1;
        out.push(TorontoAlarm { alarm_id: id, ts_ms, category: cat, priority: pri, lat, lon });
    }
    out.sort_by_key(|a| (a.ts_ms, a.alarm_id));
    s.rows_kept = out.len() as u64;
    if let (Some(a), Some(b)) = (out.first(), out.last()) {
        s.first = citywatch_engine::lateness::utc_rfc3339(a.ts_ms);
        s.last = citywatch_engine::lateness::utc_rfc3339(b.ts_ms);
    }
    Ok((out, s))
}

/// The alarms contract batch of converted rows.
pub fn alarms_batch(rows: &[TorontoAlarm]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut ts = Int64Builder::with_capacity(n);
    let mut cat = StringBuilder::new();
    let mut pri = UInt8Builder::with_capacity(n);
    let mut lat = Float64Builder::with_capacity(n);
    let mut lon = Float64Builder::with_capacity(n);
    let mut rep = StringBuilder::new();
    let mut sus = StringBuilder::new();
    let mut src = StringBuilder::new();
    for a in rows {
        id.append_value(a.alarm_id);
        ts.append_value(a.ts_ms);
        cat.append_value(a.category.as_str());
        pri.append_value(a.priority);
        lat.append_value(a.lat);
        lon.append_value(a.lon);
        rep.append_null();
        sus.append_null();
        src.append_value(AlarmSource::Hotline.as_str());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(ts.finish()),
        Arc::new(cat.finish()),
        Arc::new(pri.finish()),
        Arc::new(lat.finish()),
        Arc::new(lon.finish()),
        Arc::new(rep.finish()),
        Arc::new(sus.finish()),
        Arc::new(src.finish()),
    ];
    Ok(RecordBatch::try_new(Table::Alarms.schema(), cols)?)
}

/// Converts the source CSV into an alarms Parquet file.
pub fn convert(csv_gz: &Path, out_parquet: &Path) -> Result<ConvertSummary> {
    let (rows, summary) = read_source(csv_gz)?;
    let batches: Vec<Result<RecordBatch>> = rows.chunks(crate::sink::BATCH_ROWS).map(alarms_batch).collect();
    write_file(out_parquet, Table::Alarms.schema(), batches)?;
    Ok(summary)
}

/// What [`write_dataset`] laid out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// The dataset folder.
    pub out: PathBuf,
    /// Alarm rows.
    pub alarms: u64,
    /// Grid rows (cells).
    pub grid_cells: u64,
    /// Officer rows.
    pub officers: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "toronto: {} alarms, {} grid cells (H3 resolution {}), {} officers -> {}",
            self.alarms,
            self.grid_cells,
            u8::from(DEFAULT_GRID_RESOLUTION),
            self.officers,
            self.out.display()
        )
    }
}

/// Lays out the committed Toronto alarms as a dataset folder: `alarms.parquet`
/// (copied), `grids.parquet` (the engine's default grid made explicit: H3
/// resolution-7 cells around every alarm, each its own grid and community,
/// street = resolution-6 parent, district = resolution-5 parent) and
/// `officers.parquet` (an officer per community, station, district, and one analyst).
pub fn write_dataset(out: &Path) -> Result<Summary> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let src = Path::new(COMMITTED_ALARMS);
    let dst = out.join("alarms.parquet");
    std::fs::copy(src, &dst).map_err(|e| Error::io(src, e))?;
    let batches = citywatch_engine::parquet_io::read_whole_file(&dst, "alarms")?;
    let mut cells: std::collections::BTreeSet<CellIndex> = std::collections::BTreeSet::new();
    let mut alarms = 0;
    for b in &batches {
        let schema = b.schema();
        let lat = b.column(schema.index_of("lat")?).as_primitive::<Float64Type>();
        let lon = b.column(schema.index_of("lon")?).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            if let Ok(ll) = LatLng::new(lat.value(i), lon.value(i)) {
                cells.insert(ll.to_cell(DEFAULT_GRID_RESOLUTION));
            }
        }
        alarms += b.num_rows() as u64;
    }
    let with_ring: std::collections::BTreeSet<CellIndex> =
        cells.iter().flat_map(|c| c.grid_disk::<Vec<_>>(1)).collect();
    let parent = |c: CellIndex, r: Resolution| c.parent(r).expect("coarser resolution").to_string();
    let mut g: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
    let mut officers = Vec::new();
    let mut streets = std::collections::BTreeSet::new();
    let mut districts = std::collections::BTreeSet::new();
    for c in &with_ring {
        let id = c.to_string();
        let street = parent(*c, Resolution::Six);
        let district = parent(*c, Resolution::Five);
        for (b, v) in g.iter_mut().zip([&id, &id, &id, &street, &district]) {
            b.append_value(v);
        }
        officers.push(OfficerRow {
            officer_id: format!("C{id}"),
            name: format!("Community officer {id}"),
            role: Role::Community,
            scope: id.clone(),
        });
        streets.insert(street);
        districts.insert(district);
    }
    for s in streets {
        officers.push(OfficerRow {
            officer_id: format!("S{s}"),
            name: format!("Station {s}"),
            role: Role::Station,
            scope: s,
        });
    }
    for d in districts {
        officers.push(OfficerRow {
            officer_id: format!("D{d}"),
            name: format!("Division {d}"),
            role: Role::District,
            scope: d,
        });
    }
    officers.push(OfficerRow {
        officer_id: "A01".into(),
        name: "Toronto analyst".into(),
        role: Role::Analyst,
        scope: "city".into(),
    });
    let cols: Vec<ArrayRef> = g.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    let grids = RecordBatch::try_new(Table::Grids.schema(), cols)?;
    let grid_cells = write_file(&out.join("grids.parquet"), Table::Grids.schema(), [Ok(grids)])?;
    let n_off = write_file(&out.join("officers.parquet"), Table::Officers.schema(), [officers_batch(&officers)])?;
    Ok(Summary { out: out.to_owned(), alarms, grid_cells, officers: n_off })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_rules() {
        // 2021: DST from 14 March to 7 November.
        assert_eq!(nth_sunday(2021, 3, 2), 14);
        assert_eq!(nth_sunday(2021, 11, 1), 7);
        let h = |y, m, d, hh| toronto_to_utc_ms(y, m, d, hh);
        let day = days_from_civil(2021, 3, 14) * 86_400_000;
        assert_eq!(h(2021, 3, 14, 1), (day + 6 * 3_600_000, LocalHour::Normal)); // 01:00 EST
        assert_eq!(h(2021, 3, 14, 2), (day + 7 * 3_600_000, LocalHour::Gap)); // read as EST
        assert_eq!(h(2021, 3, 14, 3), (day + 7 * 3_600_000, LocalHour::Normal)); // 03:00 EDT
        let day = days_from_civil(2021, 11, 7) * 86_400_000;
        assert_eq!(h(2021, 11, 7, 1), (day + 5 * 3_600_000, LocalHour::Ambiguous)); // first 01:00 (EDT)
        assert_eq!(h(2021, 11, 7, 2), (day + 7 * 3_600_000, LocalHour::Normal)); // 02:00 EST
        let day = days_from_civil(2021, 7, 1) * 86_400_000;
        assert_eq!(h(2021, 7, 1, 12).0, day + 16 * 3_600_000);
    }

    #[test]
    fn quoted_fields_are_read_and_dates_that_do_not_exist_dropped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mci.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        // A premises with a comma and a quote, a neighbourhood over two lines,
        // a blank line, and 31 February.
        write!(
            gz,
            "event_id,occurrence_local,category,premises,neighbourhood,lat,lon\n\
             1,2021-07-01 12:00,Robbery,\"Shop, \"\"corner\"\"\",\"Bay\nStreet\",43.65,-79.38\n\
             \n\
             2,2021-02-31 12:00,Robbery,House,Annex,43.66,-79.40\n"
        )
        .unwrap();
        gz.finish().unwrap();
        let (rows, s) = read_source(&path).unwrap();
        assert_eq!((s.rows_read, s.dropped_malformed, rows.len()), (2, 1, 1));
        assert_eq!(rows[0].alarm_id, 1);
        assert_eq!(rows[0].ts_ms, toronto_to_utc_ms(2021, 7, 1, 12).0);
    }
}
