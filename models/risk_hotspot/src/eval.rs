//! Hotspot evaluation: how well the risk surface ranks where the next
//! incidents happen, against two baselines computed in the same run.
//!
//! **Forecasts.** At each forecast time `T` (every day at 00:00 UTC plus
//! `day_offset_ms`, and every 7th of those days for weekly forecasts), from
//! `score_from_ms` on, each method ranks the cells of the *area* by its score
//! from the alarms before `T`, and the incidents in `[T, T + horizon)` are
//! scored. Methods:
//! - `risk_hotspot`: the model's surface at `T` ([`Surface`], the same code the
//!   dataflow runs, fed every alarm before `T`).
//! - `naive_28d`: the number of incidents in the cell in the previous 28 days.
//! - `kde`: plain kernel density: the incidents of the previous
//!   `kde_window_days` (0: all history), no decay, a fixed Gaussian bandwidth
//!   `kde_bandwidth_m` over H3 rings (ring k at `k * spacing` metres).
//!
//! **Area.** The cells (at the model's resolution) that have had at least one
//! incident of any scored category anywhere in the dataset; `A` cells. At an
//! area share `s` the top `n = ceil(s * A)` cells are flagged.
//!
//! **Scores.** Summed over all forecast periods: hit rate = incidents in
//! flagged cells / incidents; PAI = hit rate / (n / A); PEI* = incidents in
//! flagged cells / the most any `n` cells could have caught (the top `n` cells
//! by actual count in each period). Ties at the cut-off are scored at their
//! expected value under random order (tied cells share the remaining slots),
//! so a method with many equal scores (the naive count) is not favoured or
//! hurt by the cell ids.
//!
//! **Crimes.** `all`: burglary, theft, robbery, assault and vehicle_theft (the
//! contract's crimes against people and property; Toronto's five MCI
//! categories). `burglary`: burglary alone, ranked by the model run with
//! `burglary_config` (by default the model's settings with only burglary
//! weighted) and baselines counting burglaries only.
//!
//! **Near-repeat capture** (when the dataset has burglaries): a *follow-up*
//! burglary is one within `near_repeat_rings` rings and the alert window after
//! an earlier one; it is *captured* when a `near_repeat` alert raised before it
//! covers its cell. The alerts are the model's own rule replayed over the
//! burglaries ([`NearRepeatWatch`], caps included) or, with `alerts`, those in
//! an alerts folder.

use std::fmt;
use std::path::{Path, PathBuf};

use citywatch_engine::contract::{Category, Table};
use citywatch_engine::event::{AlarmEvent, Event};
use citywatch_engine::jurisdiction::Jurisdiction;
use citywatch_engine::pseudonym::Pseudonymiser;
use citywatch_engine::read::{Decoder, TableReader, locate};
use citywatch_engine::reference::UnitDirectory;
use citywatch_engine::replay::open_dataset;
use citywatch_engine::{Error, Result};
use citywatch_operators::fxhash::FxHashMap;
use h3o::CellIndex;

use crate::Config;
use crate::places::{NO_COMMUNITY, NearRepeatWatch, Places};
use crate::surface::{Params, Surface};

const DAY_MS: u64 = 86_400_000;

/// The categories scored as "all crime".
pub const CRIMES: [Category; 5] =
    [Category::Burglary, Category::Theft, Category::Robbery, Category::Assault, Category::VehicleTheft];

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The model's settings (all crime).
    pub config: Config,
    /// Settings for the burglary ranking; `None`: `config` with only burglary weighted.
    pub burglary_config: Option<Config>,
    /// Score forecast times from this event time on (the train/test split); `None`: one year
    /// after the first alarm, or half-way through shorter data.
    pub score_from_ms: Option<u64>,
    /// Score only periods that end by this time; `None`: the end of the last alarm's day.
    pub score_until_ms: Option<u64>,
    /// Area shares to flag.
    pub area_shares: Vec<f64>,
    /// Window of the naive baseline, days.
    pub naive_days: u64,
    /// Window of the KDE baseline, days (0: all history).
    pub kde_window_days: u64,
    /// Bandwidth of the KDE baseline, m.
    pub kde_bandwidth_m: f64,
    /// Rings the KDE kernel reaches.
    pub kde_rings: u32,
    /// Forecast times are at 00:00 UTC plus this, ms (e.g. 5 h for local midnight in Toronto).
    pub day_offset_ms: u64,
    /// Alerts folder (with `alerts.parquet`) whose `near_repeat` alerts to score instead of replaying the rule.
    pub alerts: Option<PathBuf>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            config: Config::default(),
            burglary_config: None,
            score_from_ms: None,
            score_until_ms: None,
            area_shares: vec![0.01, 0.05],
            naive_days: 28,
            kde_window_days: 365,
            kde_bandwidth_m: 150.0,
            kde_rings: 2,
            day_offset_ms: 0,
            alerts: None,
        }
    }
}

/// The burglary-only variant of a configuration.
pub fn burglary_only(c: &Config) -> Config {
    let mut b = c.clone();
    b.category_weights.retain(|k, _| k == "burglary");
    b.category_weights.entry("burglary".to_owned()).or_insert(1.0);
    b
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalRow {
    /// `all` or `burglary`.
    pub crime: String,
    /// `day` or `week`.
    pub horizon: String,
    /// `risk_hotspot`, `naive_28d` or `kde`.
    pub method: String,
    /// Requested share of the area.
    pub area_share: f64,
    /// Cells flagged per forecast.
    pub cells: usize,
    /// Forecast periods scored.
    pub periods: usize,
    /// Incidents in those periods.
    pub incidents: u64,
    /// Incidents in flagged cells (expected value over tie orders).
    pub hits: f64,
    /// hits / incidents.
    pub hit_rate: f64,
    /// Predictive accuracy index.
    pub pai: f64,
    /// Predictive efficiency index (hits / best possible hits with the same cells).
    pub pei_star: f64,
}

/// Near-repeat alerts against follow-up burglaries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NearRepeatCapture {
    /// Where the alerts came from: `replayed rule` or an alerts file.
    pub source: String,
    /// Burglaries in the data.
    pub burglaries: usize,
    /// Burglaries within the rings and window after an earlier one.
    pub follow_ups: usize,
    /// Follow-ups whose cell was under a `near_repeat` alert raised before them.
    pub captured: usize,
    /// captured / follow_ups.
    pub share: f64,
    /// Near-repeat alerts.
    pub alerts: usize,
    /// Area x time under alert as a share of area x span: what random alerts would capture.
    pub area_time_share: f64,
}

/// The evaluation result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HotspotEval {
    /// H3 resolution of the cells.
    pub resolution: u8,
    /// Cells with any incident (the area).
    pub area_cells: usize,
    /// Their area, km².
    pub area_km2: f64,
    /// First forecast time scored.
    pub scored_from_ms: u64,
    /// Last period end scored.
    pub scored_until_ms: u64,
    /// Alarms read.
    pub alarms: usize,
    /// The rows.
    pub rows: Vec<EvalRow>,
    /// Near-repeat capture, when there are burglaries.
    pub near_repeat: Option<NearRepeatCapture>,
}

impl HotspotEval {
    /// The row for a crime, horizon, method and share.
    pub fn row(&self, crime: &str, horizon: &str, method: &str, share: f64) -> Option<&EvalRow> {
        self.rows.iter().find(|r| {
            r.crime == crime && r.horizon == horizon && r.method == method && (r.area_share - share).abs() < 1e-9
        })
    }

    /// PAI of the model over the better baseline's PAI.
    pub fn pai_ratio(&self, crime: &str, horizon: &str, share: f64) -> Option<f64> {
        self.ratio_to_baselines(crime, horizon, "risk_hotspot", share)
    }

    /// PAI of a method over the better baseline's PAI.
    pub fn ratio_to_baselines(&self, crime: &str, horizon: &str, method: &str, share: f64) -> Option<f64> {
        let m = self.row(crime, horizon, method, share)?.pai;
        let b = ["naive_28d", "kde"].iter().filter_map(|b| self.row(crime, horizon, b, share)).map(|r| r.pai);
        let best = b.fold(f64::NAN, f64::max);
        (best > 0.0).then(|| m / best)
    }
}

fn utc_day(ms: u64) -> String {
    let days = (ms / DAY_MS) as i64;
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl fmt::Display for HotspotEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Hotspot evaluation: H3 res {}, area = {} cells with any incident ({:.1} km²), forecasts {} .. {}, {} alarms",
            self.resolution,
            self.area_cells,
            self.area_km2,
            utc_day(self.scored_from_ms),
            utc_day(self.scored_until_ms),
            self.alarms
        )?;
        writeln!(
            f,
            "| crime | horizon | area | cells | method | periods | incidents | hit rate | PAI | PEI* | PAI vs best baseline |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let ratio = if r.method == "risk_hotspot" || r.method == "oracle_span" {
                self.ratio_to_baselines(&r.crime, &r.horizon, &r.method, r.area_share)
                    .map_or("-".to_owned(), |x| format!("{x:.2}x"))
            } else {
                String::new()
            };
            writeln!(
                f,
                "| {} | {} | {:.0}% | {} | {} | {} | {} | {:.1}% | {:.2} | {:.3} | {} |",
                r.crime,
                r.horizon,
                r.area_share * 100.0,
                r.cells,
                r.method,
                r.periods,
                r.incidents,
                r.hit_rate * 100.0,
                r.pai,
                r.pei_star,
                ratio
            )?;
        }
        if let Some(n) = &self.near_repeat {
            writeln!(
                f,
                "Near-repeat ({}): {} burglaries, {} follow-ups, {} captured by {} alerts = {:.1}% (alerts cover {:.2}% of area x time)",
                n.source,
                n.burglaries,
                n.follow_ups,
                n.captured,
                n.alerts,
                n.share * 100.0,
                n.area_time_share * 100.0
            )?;
        }
        Ok(())
    }
}

/// Reads a dataset's alarms (sorted by time, then file order) and jurisdiction.
pub fn read_alarms(dir: &Path) -> Result<(Vec<AlarmEvent>, Jurisdiction)> {
    let pseudonymiser = Pseudonymiser::new("citywatch-eval", "86");
    let dataset = open_dataset(dir, &pseudonymiser)?;
    let jurisdiction = (*dataset.reference.jurisdiction).clone();
    let Some(files) = locate(dir, Table::Alarms)? else {
        return Err(Error::config(
            "hotspot evaluation",
            format!("{} has no alarms table; hotspot evaluation scores alarms", dir.display()),
        ));
    };
    let mut reader = TableReader::new(files, Decoder::new(Table::Alarms, pseudonymiser, UnitDirectory::default()));
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    while reader.next_batch(&mut events, &mut rejects)?.is_some() {}
    let mut alarms: Vec<AlarmEvent> = events
        .into_iter()
        .filter_map(|e| if let Event::Alarm(a) = e { Some(a) } else { None })
        .enumerate()
        .map(|(i, mut a)| {
            a.seq = i as u64;
            a
        })
        .collect();
    alarms.sort_by_key(|a| (a.ts_ms, a.seq));
    Ok((alarms, jurisdiction))
}

/// Evaluates a dataset folder (its alarms and, for near-repeat, its grids).
pub fn evaluate_dataset(dir: &Path, opts: &EvalOptions) -> Result<HotspotEval> {
    let (alarms, jurisdiction) = read_alarms(dir)?;
    evaluate(&alarms, &jurisdiction, opts)
}

/// Expected hits of the top `n` cells by `score` (ties at the cut shared at random)
/// and the best possible hits with `n` cells.
fn hits_at(score: &[f64], y: &[u32], n: usize, scratch: &mut Vec<f64>) -> (f64, f64) {
    let nth = |vals: &mut Vec<f64>| {
        vals.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
        vals[n - 1]
    };
    scratch.clear();
    scratch.extend_from_slice(score);
    let s_n = nth(scratch);
    let (mut g, mut m, mut sum_g, mut sum_m) = (0usize, 0usize, 0u64, 0u64);
    for (s, y) in score.iter().zip(y) {
        if *s > s_n {
            g += 1;
            sum_g += u64::from(*y);
        } else if *s == s_n {
            m += 1;
            sum_m += u64::from(*y);
        }
    }
    let hits = sum_g as f64 + (n - g) as f64 / m as f64 * sum_m as f64;
    scratch.clear();
    scratch.extend(y.iter().map(|v| f64::from(*v)));
    let y_n = nth(scratch);
    let (mut g2, mut sum2) = (0usize, 0f64);
    for v in y {
        if f64::from(*v) > y_n {
            g2 += 1;
            sum2 += f64::from(*v);
        }
    }
    (hits, sum2 + (n - g2) as f64 * y_n)
}

#[derive(Default, Clone, Copy)]
struct Acc {
    periods: usize,
    incidents: u64,
    hits: f64,
    best: f64,
}

/// Evaluates over alarms sorted by `(ts_ms, seq)`.
pub fn evaluate(alarms: &[AlarmEvent], jurisdiction: &Jurisdiction, opts: &EvalOptions) -> Result<HotspotEval> {
    opts.config.validate()?;
    let params = Params::new(&opts.config);
    let res = params.resolution;
    let is_crime = |c: Category| CRIMES.contains(&c);
    // The area: cells with any incident.
    let mut area: Vec<u64> =
        alarms.iter().filter(|a| is_crime(a.category)).map(|a| u64::from(a.pos.cell(res))).collect();
    area.sort_unstable();
    area.dedup();
    if area.is_empty() {
        return Err(Error::config("hotspot evaluation", "the dataset has no crime alarms to score".to_owned()));
    }
    let index: FxHashMap<u64, usize> = area.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let first = alarms.first().map_or(0, |a| a.ts_ms);
    let last = alarms.last().map_or(0, |a| a.ts_ms);
    let day0 = |t: u64| (t.saturating_sub(opts.day_offset_ms)).div_ceil(DAY_MS) * DAY_MS + opts.day_offset_ms;
    let from = day0(opts.score_from_ms.unwrap_or(first + (365 * DAY_MS).min((last - first) / 2)));
    let until = opts.score_until_ms.unwrap_or(day0(last + 1));
    let mut rows = Vec::new();
    for crime in ["all", "burglary"] {
        let config = if crime == "all" {
            opts.config.clone()
        } else {
            opts.burglary_config.clone().unwrap_or_else(|| burglary_only(&opts.config))
        };
        config.validate()?;
        let counted = |c: Category| if crime == "all" { is_crime(c) } else { c == Category::Burglary };
        let incidents: Vec<(u64, usize)> = alarms
            .iter()
            .filter(|a| counted(a.category))
            .filter_map(|a| index.get(&u64::from(a.pos.cell(res))).map(|i| (a.ts_ms, *i)))
            .collect();
        let accs = score_crime(&config, alarms, &incidents, &area, &index, from, until, opts);
        for ((horizon, method, share), acc) in accs {
            let n = ((share * area.len() as f64).ceil() as usize).clamp(1, area.len());
            let hit_rate = if acc.incidents > 0 { acc.hits / acc.incidents as f64 } else { 0.0 };
            rows.push(EvalRow {
                crime: crime.to_owned(),
                horizon: horizon.to_owned(),
                method: method.to_owned(),
                area_share: share,
                cells: n,
                periods: acc.periods,
                incidents: acc.incidents,
                hits: acc.hits,
                hit_rate,
                pai: hit_rate / (n as f64 / area.len() as f64),
                pei_star: if acc.best > 0.0 { acc.hits / acc.best } else { 0.0 },
            });
        }
    }
    let near_repeat = near_repeat_capture(alarms, jurisdiction, &area, opts)?;
    Ok(HotspotEval {
        resolution: opts.config.resolution,
        area_cells: area.len(),
        area_km2: area.iter().filter_map(|c| CellIndex::try_from(*c).ok()).map(|c| c.area_km2()).sum(),
        scored_from_ms: from,
        scored_until_ms: until,
        alarms: alarms.len(),
        rows,
        near_repeat,
    })
}

type Key = (&'static str, &'static str, f64);

/// The rows per crime, horizon and share: the model, the two baselines, and
/// `oracle_span`, a ceiling rather than a forecast: every period flags the cells
/// with the most incidents over the whole scored span (it sees the future), the
/// best any fixed set of cells could have done. A method that ranks by
/// long-run concentration cannot beat it; only one that foresees week-to-week
/// changes can.
pub const METHODS: [&str; 4] = ["risk_hotspot", "naive_28d", "kde", "oracle_span"];

#[allow(clippy::too_many_arguments)]
fn score_crime(
    config: &Config,
    alarms: &[AlarmEvent],
    incidents: &[(u64, usize)],
    area: &[u64],
    index: &FxHashMap<u64, usize>,
    from: u64,
    until: u64,
    opts: &EvalOptions,
) -> Vec<(Key, Acc)> {
    let a_n = area.len();
    let mut surface = Surface::new(Params::new(config));
    let res = surface.params().resolution;
    // KDE kernel over area neighbours: (cell index, weight) lists.
    let spacing = res.edge_length_m() * 3f64.sqrt();
    let kde_kernel: Vec<Vec<(usize, f64)>> = area
        .iter()
        .map(|c| {
            let cell = CellIndex::try_from(*c).expect("area cell");
            cell.grid_disk_distances::<Vec<_>>(opts.kde_rings)
                .into_iter()
                .filter_map(|(n, k)| {
                    let d = f64::from(k) * spacing;
                    index
                        .get(&u64::from(n))
                        .map(|i| (*i, (-d * d / (2.0 * opts.kde_bandwidth_m * opts.kde_bandwidth_m)).exp()))
                })
                .collect()
        })
        .collect();
    let mut naive = vec![0u32; a_n];
    let mut kde_counts = vec![0u32; a_n];
    let (mut s_model, mut s_naive, mut s_kde) = (vec![0.0; a_n], vec![0.0; a_n], vec![0.0; a_n]);
    let mut y = vec![0u32; a_n];
    let mut scratch = Vec::with_capacity(a_n);
    let (mut ai, mut ni_add, mut ni_del, mut ki_del) = (0, 0, 0, 0);
    let naive_ms = opts.naive_days * DAY_MS;
    let kde_ms = if opts.kde_window_days == 0 { u64::MAX } else { opts.kde_window_days * DAY_MS };
    let mut accs: Vec<(Key, Acc)> = Vec::new();
    for h in ["day", "week"] {
        for m in METHODS {
            for s in &opts.area_shares {
                accs.push(((h, m, *s), Acc::default()));
            }
        }
    }
    // The ceiling: each cell's incidents over all the periods scored at a horizon.
    let mut span_counts = [vec![0.0; a_n], vec![0.0; a_n]];
    for (hi, len) in [DAY_MS, 7 * DAY_MS].into_iter().enumerate() {
        let step = if hi == 0 { DAY_MS } else { 7 * DAY_MS };
        let mut t = from;
        while t + len <= until {
            let start = incidents.partition_point(|(ts, _)| *ts < t);
            for (_, i) in incidents[start..].iter().take_while(|(ts, _)| *ts < t + len) {
                span_counts[hi][*i] += 1.0;
            }
            t += step;
        }
    }
    let mut t = from;
    let mut day = 0u64;
    while t + DAY_MS <= until {
        while ai < alarms.len() && alarms[ai].ts_ms < t {
            surface.add(alarms[ai].ts_ms, alarms[ai].pos, alarms[ai].category);
            ai += 1;
        }
        while ni_add < incidents.len() && incidents[ni_add].0 < t {
            naive[incidents[ni_add].1] += 1;
            kde_counts[incidents[ni_add].1] += 1;
            ni_add += 1;
        }
        while ni_del < ni_add && incidents[ni_del].0 < t.saturating_sub(naive_ms) {
            naive[incidents[ni_del].1] -= 1;
            ni_del += 1;
        }
        while ki_del < ni_add && incidents[ki_del].0 < t.saturating_sub(kde_ms) {
            kde_counts[incidents[ki_del].1] -= 1;
            ki_del += 1;
        }
        let f = surface.factors(t);
        for (i, c) in area.iter().enumerate() {
            s_model[i] = Surface::risk_of(&surface.parts(*c), &f);
            s_naive[i] = f64::from(naive[i]);
            s_kde[i] = kde_kernel[i].iter().map(|(j, w)| w * f64::from(kde_counts[*j])).sum();
        }
        for (h, len) in [("day", DAY_MS), ("week", 7 * DAY_MS)] {
            if (h == "week" && !day.is_multiple_of(7)) || t + len > until {
                continue;
            }
            let start = incidents.partition_point(|(ts, _)| *ts < t);
            let mut total = 0u64;
            for (ts, i) in &incidents[start..] {
                if *ts >= t + len {
                    break;
                }
                y[*i] += 1;
                total += 1;
            }
            for (key, acc) in accs.iter_mut().filter(|(k, _)| k.0 == h) {
                let scores = match key.1 {
                    "risk_hotspot" => &s_model,
                    "naive_28d" => &s_naive,
                    "kde" => &s_kde,
                    _ => &span_counts[usize::from(h == "week")],
                };
                let n = ((key.2 * a_n as f64).ceil() as usize).clamp(1, a_n);
                acc.periods += 1;
                acc.incidents += total;
                if total > 0 {
                    let (hits, best) = hits_at(scores, &y, n, &mut scratch);
                    acc.hits += hits;
                    acc.best += best;
                }
            }
            for (ts, i) in &incidents[start..] {
                if *ts >= t + len {
                    break;
                }
                y[*i] = 0;
            }
        }
        t += DAY_MS;
        day += 1;
    }
    accs
}

fn near_repeat_capture(
    alarms: &[AlarmEvent],
    jurisdiction: &Jurisdiction,
    area: &[u64],
    opts: &EvalOptions,
) -> Result<Option<NearRepeatCapture>> {
    let c = &opts.config;
    let mut surface = Surface::new(Params::new(c));
    let burglaries: Vec<&AlarmEvent> = alarms.iter().filter(|a| a.category == Category::Burglary).collect();
    if burglaries.is_empty() {
        return Ok(None);
    }
    let (window, rings) = (c.near_repeat_alert_window_ms, c.near_repeat_rings);
    let dist = |a: u64, b: u64| match (CellIndex::try_from(a), CellIndex::try_from(b)) {
        (Ok(a), Ok(b)) => a.grid_distance(b).map_or(u32::MAX, |d| d as u32),
        _ => u32::MAX,
    };
    let cells: Vec<u64> = burglaries.iter().map(|a| surface.cell_of(a.pos)).collect();
    // Alerts: (ts, cell).
    let (alerts, source): (Vec<(u64, u64)>, String) = match &opts.alerts {
        Some(dir) => {
            let all = citywatch_engine::alert::read_parquet(&dir.join("alerts.parquet"))?;
            let mut v: Vec<(u64, u64)> = all
                .iter()
                .filter(|a| a.model == "risk_hotspot" && a.kind == "near_repeat")
                .filter_map(|a| {
                    let cell = a.cell.as_deref()?.parse::<CellIndex>().ok()?;
                    Some((a.event_ts_ms as u64, u64::from(cell)))
                })
                .collect();
            v.sort_unstable();
            (v, format!("alerts in {}", dir.display()))
        }
        None => {
            let mut places = Places::new(std::sync::Arc::new(jurisdiction.clone()), 1);
            let mut watch = NearRepeatWatch::new(c);
            let mut v = Vec::new();
            for (i, a) in burglaries.iter().enumerate() {
                let cell = cells[i];
                let community = places.register(cell);
                let Some(officer) = places.officer_of(community).filter(|_| community != NO_COMMUNITY) else {
                    continue;
                };
                let disk = surface.disk(cell);
                if watch.on_burglary(a.ts_ms, cell, disk, officer) {
                    v.push((a.ts_ms, cell));
                }
            }
            (v, "model rule replayed over the burglaries".to_owned())
        }
    };
    let (mut follow_ups, mut captured) = (0, 0);
    let (mut lo_b, mut lo_a) = (0, 0);
    for (i, b) in burglaries.iter().enumerate() {
        while burglaries[lo_b].ts_ms + window < b.ts_ms {
            lo_b += 1;
        }
        let is_follow_up = (lo_b..i).any(|j| burglaries[j].ts_ms < b.ts_ms && dist(cells[j], cells[i]) <= rings);
        if !is_follow_up {
            continue;
        }
        follow_ups += 1;
        while lo_a < alerts.len() && alerts[lo_a].0 + window <= b.ts_ms {
            lo_a += 1;
        }
        // Raised strictly before the burglary (never by the burglary itself).
        let hit =
            alerts[lo_a..].iter().take_while(|(t, _)| *t < b.ts_ms).any(|(_, cell)| dist(*cell, cells[i]) <= rings);
        captured += usize::from(hit);
    }
    // Area x time under alert (overlaps counted twice, cells outside the area not at all).
    let end = alarms.last().map_or(0, |a| a.ts_ms);
    let span = end - alarms.first().map_or(0, |a| a.ts_ms);
    let in_area: FxHashMap<u64, ()> = area.iter().map(|c| (*c, ())).collect();
    let mut covered = 0f64;
    for (t, cell) in &alerts {
        let Ok(c) = CellIndex::try_from(*cell) else { continue };
        let n = c.grid_disk::<Vec<_>>(rings).into_iter().filter(|n| in_area.contains_key(&u64::from(*n))).count();
        covered += n as f64 * window.min(end.saturating_sub(*t)) as f64;
    }
    Ok(Some(NearRepeatCapture {
        source,
        burglaries: burglaries.len(),
        follow_ups,
        captured,
        share: if follow_ups > 0 { captured as f64 / follow_ups as f64 } else { 0.0 },
        alerts: alerts.len(),
        area_time_share: if span > 0 { covered / (area.len() as f64 * span as f64) } else { 0.0 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use citywatch_engine::geo::Point;

    #[test]
    fn ties_at_the_cut_count_at_their_expected_value() {
        let mut scratch = Vec::new();
        // Top 2 of [5, 3, 3, 3]: cell 0 surely, one of the three 3s.
        let (hits, best) = hits_at(&[5.0, 3.0, 3.0, 3.0], &[1, 3, 0, 0], 2, &mut scratch);
        assert!((hits - (1.0 + 3.0 / 3.0)).abs() < 1e-12, "{hits}");
        assert_eq!(best, 4.0);
    }

    fn alarm(i: u64, ts_ms: u64, lat: f64, lon: f64, category: Category) -> AlarmEvent {
        AlarmEvent {
            ts_ms,
            seq: i,
            alarm_id: i,
            category,
            priority: 2,
            pos: Point::from_degrees(lat, lon).unwrap(),
            reporter: None,
            suspect: None,
            suspect_class: Default::default(),
            source: citywatch_engine::contract::AlarmSource::Hotline,
            late: false,
        }
    }

    #[test]
    fn a_persistent_hotspot_scores_high_pai() {
        // One busy corner (every day) and background incidents spread over 200 cells.
        let t0 = 1_700_000_000_000 / DAY_MS * DAY_MS;
        let mut alarms = Vec::new();
        for d in 0..60u64 {
            let ts = t0 + d * DAY_MS + 3_600_000;
            alarms.push(alarm(alarms.len() as u64, ts, 43.65, -79.38, Category::Burglary));
            let k = (d * 37) % 200;
            let (lat, lon) = (43.6 + (k / 20) as f64 * 0.01, -79.5 + (k % 20) as f64 * 0.01);
            alarms.push(alarm(alarms.len() as u64, ts + 1, lat, lon, Category::Theft));
        }
        let opts = EvalOptions { score_from_ms: Some(t0 + 30 * DAY_MS), ..EvalOptions::default() };
        let jur = Jurisdiction::default_grid(Vec::new());
        let e = evaluate(&alarms, &jur, &opts).unwrap();
        let row = e.row("burglary", "day", "risk_hotspot", 0.01).unwrap();
        assert_eq!(row.hit_rate, 1.0, "{e}");
        assert!(row.pai > 50.0, "{e}");
        assert!(e.to_string().contains("| all | week | 1% |"));
        // At 5% (4 of 61 cells) the ceiling flags the hotspot and three of the span's
        // one-off theft cells; no forecast from the past can know which.
        let ceiling = e.row("all", "day", "oracle_span", 0.05).unwrap();
        assert!((ceiling.hits - 33.0).abs() < 1e-9, "{e}");
        for m in ["risk_hotspot", "naive_28d", "kde"] {
            let hits = e.row("all", "day", m, 0.05).unwrap().hits;
            assert!((30.0..33.0).contains(&hits), "{m}: {e}");
        }
        let nr = e.near_repeat.as_ref().unwrap();
        assert_eq!(nr.burglaries, 60);
        assert!(nr.follow_ups >= 58 && nr.captured > 0, "{nr:?}");
        serde_json::to_string(&e).unwrap();
    }
}
