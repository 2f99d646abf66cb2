//! Hotspot evaluation: how well the risk surface ranks where the next
//! incidents happen, against the strongest simple baselines computed in the
//! same run, and against a ceiling.
//!
//! **Forecasts.** At each forecast time `T` (every day at 00:00 UTC plus
//! `day_offset_ms`, and every 7th of those days for weekly forecasts), from
//! `score_from_ms` on, each method ranks the cells of the *area* by its score
//! from the alarms before `T`, and the incidents in `[T, T + horizon)` are
//! scored. Methods:
//! - `risk_hotspot`: the model's surface at `T` ([`Surface`], the same code the
//!   dataflow runs, fed every alarm before `T`).
//! - `naive_<d>d` (28, 90 and 365 days by default): the number of incidents in
//!   the cell in the previous `d` days. The long windows are the strong ones:
//!   crime concentrates in the same few places year after year.
//! - `kde`: plain kernel density: the incidents of the previous
//!   `kde_window_days` (0: all history), no decay, a fixed Gaussian bandwidth
//!   `kde_bandwidth_m` over H3 rings (ring k at `k * spacing` metres).
//! - `oracle_span`: a ceiling (see [`score_crime`]).
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
//! **Comparison.** Per crime, horizon and share, the model against the best
//! baseline of that cell ([`Comparison`]): the PAI and PEI* ratio (the same
//! number: both are hits over a denominator the methods share), the ceiling
//! beside it, and the ratio paired week by week ([`Paired`]: weeks better and
//! worse, and a 95% interval from a seeded bootstrap over weeks; next-day
//! forecasts are grouped in blocks of 7 days, so that a week's days are
//! resampled together).
//!
//! **Crimes.** `kinds` chooses the categories scored. By default they are
//! [`CRIMES`] (burglary, theft, robbery, assault and vehicle_theft: the
//! contract's crimes against people and property; Toronto's five MCI
//! categories), labelled `all` and ranked by the model's own settings; other
//! kinds are labelled by their names joined with `+` and ranked by the model
//! with only them weighted ([`weighted_only`]). When burglary is one of
//! several kinds, `burglary` is also scored alone, ranked by the model run with
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
use citywatch_engine::decode::{Decoder, TableReader};
use citywatch_engine::event::{AlarmEvent, Event};
use citywatch_engine::hash::FastMap;
use citywatch_engine::jurisdiction::Jurisdiction;
use citywatch_engine::parquet_io::locate;
use citywatch_engine::pseudonym::Pseudonymiser;
use citywatch_engine::reference::UnitDirectory;
use citywatch_engine::replay::open_dataset;
use citywatch_engine::{Error, Result};
use h3o::CellIndex;
use rand::{Rng, SeedableRng};

use crate::Config;
use crate::places::{NO_COMMUNITY, NearRepeatWatch, Places};
use crate::surface::{Params, Surface};

const DAY_MS: u64 = 86_400_000;

/// The categories scored as "all crime" by default.
pub const CRIMES: [Category; 5] =
    [Category::Burglary, Category::Theft, Category::Robbery, Category::Assault, Category::VehicleTheft];

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The model's settings (all crime).
    pub config: Config,
    /// Settings for the burglary ranking; `None`: `config` with only burglary weighted.
    pub burglary_config: Option<Config>,
    /// The categories scored (incidents, the area, the baselines' counts); by
    /// default [`CRIMES`]. Other than the default, the model ranks with only
    /// these categories weighted (see [`weighted_only`]).
    pub kinds: Vec<Category>,
    /// Score forecast times from this event time on (the train/test split); `None`: one year
    /// after the first alarm, or half-way through shorter data.
    pub score_from_ms: Option<u64>,
    /// Score only periods that end by this time; `None`: the end of the last alarm's day.
    pub score_until_ms: Option<u64>,
    /// Area shares to flag.
    pub area_shares: Vec<f64>,
    /// Windows of the naive-count baselines, days (one baseline `naive_<d>d` each).
    pub naive_days: Vec<u64>,
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
    /// Bootstrap resamples of the paired week-by-week ratios.
    pub bootstrap: usize,
    /// Seed of the bootstrap (same seed, same interval).
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            config: Config::default(),
            burglary_config: None,
            kinds: CRIMES.to_vec(),
            score_from_ms: None,
            score_until_ms: None,
            area_shares: vec![0.01, 0.05],
            naive_days: vec![28, 90, 365],
            kde_window_days: 365,
            kde_bandwidth_m: 150.0,
            kde_rings: 2,
            day_offset_ms: 0,
            alerts: None,
            bootstrap: 2000,
            seed: 1,
        }
    }
}

/// `c` with only `kinds` weighted: each keeps its configured weight, or 1 when it had none.
pub fn weighted_only(c: &Config, kinds: &[Category]) -> Config {
    let mut b = c.clone();
    b.category_weights.retain(|k, v| *v > 0.0 && kinds.iter().any(|c| c.as_str() == k));
    for k in kinds {
        b.category_weights.entry(k.as_str().to_owned()).or_insert(1.0);
    }
    b
}

/// The burglary-only variant of a configuration.
pub fn burglary_only(c: &Config) -> Config {
    weighted_only(c, &[Category::Burglary])
}

/// Parses a comma-separated list of contract categories (`--kinds`).
pub fn parse_kinds(text: &str) -> Result<Vec<Category>> {
    let mut kinds = Vec::new();
    for k in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let Some(c) = Category::parse(k) else {
            return Err(Error::config(
                "--kinds",
                format!(
                    "unknown category `{k}`; expected some of {} (map a source's own categories with `citywatch import incidents --categories`)",
                    Category::expected()
                ),
            ));
        };
        if !kinds.contains(&c) {
            kinds.push(c);
        }
    }
    if kinds.is_empty() {
        return Err(Error::config("--kinds", format!("no category given; expected some of {}", Category::expected())));
    }
    Ok(kinds)
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalRow {
    /// `all` (the scored kinds; their names joined by `+` when not the default) or `burglary`.
    pub crime: String,
    /// `day` or `week`.
    pub horizon: String,
    /// `risk_hotspot`, `naive_<d>d`, `kde` or `oracle_span`.
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

/// The model against a baseline, paired week by week.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paired {
    /// Weeks compared (for the next-day horizon: blocks of 7 consecutive days).
    pub weeks: usize,
    /// Weeks in which the model caught more incidents.
    pub better: usize,
    /// Weeks in which it caught fewer.
    pub worse: usize,
    /// Model hits / baseline hits over all the weeks (= the PAI ratio).
    pub ratio: f64,
    /// 2.5% quantile of the ratio over bootstrap resamples of the weeks.
    pub ci_low: f64,
    /// 97.5% quantile.
    pub ci_high: f64,
}

/// One cell of the comparison: the model, the best baseline and the ceiling.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// As in [`EvalRow`].
    pub crime: String,
    /// `day` or `week`.
    pub horizon: String,
    /// Share of the area flagged.
    pub area_share: f64,
    /// The model's PAI.
    pub model_pai: f64,
    /// The model's PEI*.
    pub model_pei_star: f64,
    /// The baseline with the highest PAI in this cell. PAI and PEI* rank the
    /// methods alike (both are hits over a denominator the methods share).
    pub best_baseline: String,
    /// Its PAI.
    pub best_pai: f64,
    /// Its PEI*.
    pub best_pei_star: f64,
    /// Model PAI / best baseline PAI (= the PEI* ratio).
    pub ratio: f64,
    /// The `oracle_span` ceiling's PAI.
    pub ceiling_pai: f64,
    /// Ceiling PAI / best baseline PAI: the most a fixed set of cells could gain.
    pub ceiling_ratio: f64,
    /// The model against the best baseline, week by week.
    pub paired: Paired,
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
    /// The categories scored.
    pub kinds: Vec<String>,
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
    /// The baselines, each with what it is.
    pub baselines: Vec<(String, String)>,
    /// The rows.
    pub rows: Vec<EvalRow>,
    /// The model against the best baseline, per crime, horizon and share.
    pub comparisons: Vec<Comparison>,
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

    /// PAI of the model over the best baseline's PAI.
    pub fn pai_ratio(&self, crime: &str, horizon: &str, share: f64) -> Option<f64> {
        self.ratio_to_baselines(crime, horizon, "risk_hotspot", share)
    }

    /// PAI of a method over the best baseline's PAI.
    pub fn ratio_to_baselines(&self, crime: &str, horizon: &str, method: &str, share: f64) -> Option<f64> {
        let m = self.row(crime, horizon, method, share)?.pai;
        let best = self
            .rows
            .iter()
            .filter(|r| r.crime == crime && r.horizon == horizon && (r.area_share - share).abs() < 1e-9)
            .filter(|r| is_baseline(&r.method))
            .map(|r| r.pai)
            .fold(f64::NAN, f64::max);
        (best > 0.0).then(|| m / best)
    }

    /// The comparison for a crime, horizon and share.
    pub fn comparison(&self, crime: &str, horizon: &str, share: f64) -> Option<&Comparison> {
        self.comparisons
            .iter()
            .find(|c| c.crime == crime && c.horizon == horizon && (c.area_share - share).abs() < 1e-9)
    }

    /// The mean over the comparison cells of model PAI / best baseline PAI.
    pub fn mean_ratio(&self) -> f64 {
        self.comparisons.iter().map(|c| c.ratio).sum::<f64>() / self.comparisons.len().max(1) as f64
    }
}

/// Whether a method is a baseline (a forecast the model is compared with).
pub fn is_baseline(method: &str) -> bool {
    method.starts_with("naive_") || method == "kde"
}

fn utc_day(ms: u64) -> String {
    citywatch_engine::lateness::utc_date(i64::try_from(ms).unwrap_or(i64::MAX))
}

impl fmt::Display for HotspotEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Hotspot evaluation of {}: H3 res {}, area = {} cells with any incident ({:.1} km²), forecasts {} .. {}, {} alarms",
            self.kinds.join(", "),
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
            let ratio = if is_baseline(&r.method) {
                String::new()
            } else {
                self.ratio_to_baselines(&r.crime, &r.horizon, &r.method, r.area_share)
                    .map_or("-".to_owned(), |x| format!("{x:.2}x"))
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
        writeln!(f, "Baselines (same cells, same forecast times, the scored categories only):")?;
        for (name, what) in &self.baselines {
            writeln!(f, "  {name}: {what}")?;
        }
        writeln!(
            f,
            "Model against the best baseline of each cell (paired by week: ratio of hits, 95% bootstrap interval over weeks; \
             ceiling = oracle_span, the best fixed set of cells):"
        )?;
        writeln!(
            f,
            "| crime | horizon | area | model PAI | PEI* | best baseline | PAI | PEI* | model / best [95% CI] | weeks better / worse | ceiling PAI (x best) | model's share of the headroom |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
        for c in &self.comparisons {
            let headroom = c.ceiling_pai - c.best_pai;
            let share = if headroom > 1e-9 {
                format!("{:.0}%", (c.model_pai - c.best_pai) / headroom * 100.0)
            } else {
                "-".to_owned()
            };
            writeln!(
                f,
                "| {} | {} | {:.0}% | {:.2} | {:.3} | {} | {:.2} | {:.3} | {:.3}x [{:.3}, {:.3}] | {} / {} of {} | {:.2} ({:.3}x) | {} |",
                c.crime,
                c.horizon,
                c.area_share * 100.0,
                c.model_pai,
                c.model_pei_star,
                c.best_baseline,
                c.best_pai,
                c.best_pei_star,
                c.ratio,
                c.paired.ci_low,
                c.paired.ci_high,
                c.paired.better,
                c.paired.worse,
                c.paired.weeks,
                c.ceiling_pai,
                c.ceiling_ratio,
                share
            )?;
        }
        writeln!(f, "Mean of the model / best baseline ratios: {:.3}x", self.mean_ratio())?;
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

#[derive(Default, Clone)]
struct Acc {
    periods: usize,
    incidents: u64,
    hits: f64,
    best: f64,
    /// Hits of each period, in order.
    per_period: Vec<f64>,
}

/// The methods scored: the model, the baselines and the ceiling, with what each is.
fn methods(opts: &EvalOptions) -> Vec<(String, String)> {
    let mut m = vec![("risk_hotspot".to_owned(), "the model's surface (the settings in use)".to_owned())];
    for d in &opts.naive_days {
        m.push((format!("naive_{d}d"), format!("the cell's count of incidents in the previous {d} days")));
    }
    let window = if opts.kde_window_days == 0 {
        "all history".to_owned()
    } else {
        format!("the previous {} days", opts.kde_window_days)
    };
    m.push((
        "kde".to_owned(),
        format!(
            "incidents of {window}, no decay, Gaussian kernel of {} m bandwidth over {} H3 rings",
            opts.kde_bandwidth_m, opts.kde_rings
        ),
    ));
    m.push((
        "oracle_span".to_owned(),
        "a ceiling, not a forecast: every period flags the cells with the most incidents over the whole scored span"
            .to_owned(),
    ));
    m
}

/// Week-by-week pairing of two methods' per-period hits (`block` periods a week).
fn paired(model: &[f64], base: &[f64], block: usize, resamples: usize, seed: u64) -> Paired {
    let weeks: Vec<(f64, f64)> = model
        .chunks(block)
        .zip(base.chunks(block))
        .map(|(m, b)| (m.iter().sum::<f64>(), b.iter().sum::<f64>()))
        .collect();
    let ratio_of = |sum_m: f64, sum_b: f64| if sum_b > 0.0 { sum_m / sum_b } else { f64::NAN };
    let (sm, sb) = weeks.iter().fold((0.0, 0.0), |(a, b), (m, bb)| (a + m, b + bb));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut draws: Vec<f64> = Vec::with_capacity(resamples);
    if !weeks.is_empty() {
        for _ in 0..resamples {
            let (mut a, mut b) = (0.0, 0.0);
            for _ in 0..weeks.len() {
                let (m, bb) = weeks[rng.random_range(0..weeks.len())];
                a += m;
                b += bb;
            }
            let r = ratio_of(a, b);
            if r.is_finite() {
                draws.push(r);
            }
        }
    }
    draws.sort_unstable_by(f64::total_cmp);
    let q = |p: f64| {
        if draws.is_empty() {
            f64::NAN
        } else {
            draws[((p * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)]
        }
    };
    Paired {
        weeks: weeks.len(),
        better: weeks.iter().filter(|(m, b)| m > b).count(),
        worse: weeks.iter().filter(|(m, b)| m < b).count(),
        ratio: ratio_of(sm, sb),
        ci_low: q(0.025),
        ci_high: q(0.975),
    }
}

/// Evaluates over alarms sorted by `(ts_ms, seq)`.
pub fn evaluate(alarms: &[AlarmEvent], jurisdiction: &Jurisdiction, opts: &EvalOptions) -> Result<HotspotEval> {
    opts.config.validate()?;
    if opts.kinds.is_empty() {
        return Err(Error::config("hotspot evaluation", "no categories to score; pass some with --kinds".to_owned()));
    }
    let params = Params::new(&opts.config);
    let res = params.resolution;
    let is_kind = |c: Category| opts.kinds.contains(&c);
    // The area: cells with any incident.
    let mut area: Vec<u64> =
        alarms.iter().filter(|a| is_kind(a.category)).map(|a| u64::from(a.pos.cell(res))).collect();
    area.sort_unstable();
    area.dedup();
    if area.is_empty() {
        let mut present: Vec<(Category, usize)> = Vec::new();
        for a in alarms {
            match present.iter_mut().find(|(c, _)| *c == a.category) {
                Some((_, n)) => *n += 1,
                None => present.push((a.category, 1)),
            }
        }
        present.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        let present: Vec<String> = present.iter().map(|(c, n)| format!("{} ({n})", c.as_str())).collect();
        let asked: Vec<&str> = opts.kinds.iter().map(|c| c.as_str()).collect();
        return Err(Error::config(
            "hotspot evaluation",
            format!(
                "the dataset has no alarms of the scored categories ({}); categories present: {}; choose them with --kinds, e.g. --kinds {}",
                asked.join(", "),
                if present.is_empty() { "none (no alarms)".to_owned() } else { present.join(", ") },
                present.first().map_or("burglary", |p| p.split(' ').next().unwrap_or("burglary")),
            ),
        ));
    }
    let index: FastMap<u64, usize> = area.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let first = alarms.first().map_or(0, |a| a.ts_ms);
    let last = alarms.last().map_or(0, |a| a.ts_ms);
    let day0 = |t: u64| (t.saturating_sub(opts.day_offset_ms)).div_ceil(DAY_MS) * DAY_MS + opts.day_offset_ms;
    let from = day0(opts.score_from_ms.unwrap_or(first + (365 * DAY_MS).min((last - first) / 2)));
    let until = opts.score_until_ms.unwrap_or(day0(last + 1));
    let default_kinds = opts.kinds.len() == CRIMES.len() && CRIMES.iter().all(|c| opts.kinds.contains(c));
    let mut crimes: Vec<(String, Vec<Category>, Config)> = Vec::new();
    if default_kinds {
        crimes.push(("all".to_owned(), opts.kinds.clone(), opts.config.clone()));
    } else {
        let label = opts.kinds.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("+");
        crimes.push((label, opts.kinds.clone(), weighted_only(&opts.config, &opts.kinds)));
    }
    if opts.kinds.len() > 1 && opts.kinds.contains(&Category::Burglary) {
        let config = opts.burglary_config.clone().unwrap_or_else(|| burglary_only(&opts.config));
        crimes.push(("burglary".to_owned(), vec![Category::Burglary], config));
    }
    let methods = methods(opts);
    let names: Vec<&str> = methods.iter().map(|(n, _)| n.as_str()).collect();
    let mut rows = Vec::new();
    let mut comparisons = Vec::new();
    for (crime, counted, config) in &crimes {
        config.validate()?;
        let incidents: Vec<(u64, usize)> = alarms
            .iter()
            .filter(|a| counted.contains(&a.category))
            .filter_map(|a| index.get(&u64::from(a.pos.cell(res))).map(|i| (a.ts_ms, *i)))
            .collect();
        let accs = score_crime(config, alarms, &incidents, &area, &index, from, until, opts);
        let n_of = |share: f64| ((share * area.len() as f64).ceil() as usize).clamp(1, area.len());
        for ((hi, mi, si), acc) in &accs {
            let (horizon, share) = (HORIZONS[*hi].0, opts.area_shares[*si]);
            let n = n_of(share);
            let hit_rate = if acc.incidents > 0 { acc.hits / acc.incidents as f64 } else { 0.0 };
            rows.push(EvalRow {
                crime: crime.clone(),
                horizon: horizon.to_owned(),
                method: names[*mi].to_owned(),
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
        for (hi, (horizon, _, periods_a_week)) in HORIZONS.iter().enumerate() {
            for (si, share) in opts.area_shares.iter().enumerate() {
                let cell = |m: usize| {
                    rows.iter().rev().find(|r: &&EvalRow| {
                        r.crime == *crime
                            && r.horizon == *horizon
                            && r.method == names[m]
                            && (r.area_share - share).abs() < 1e-12
                    })
                };
                let acc = |m: usize| accs.iter().find(|(k, _)| *k == (hi, m, si)).map(|(_, a)| a);
                let (Some(model), Some(ceiling)) = (cell(0), cell(names.len() - 1)) else { continue };
                let Some(best) = (1..names.len() - 1)
                    .filter_map(|m| cell(m).map(|r| (m, r)))
                    .max_by(|a, b| a.1.pai.total_cmp(&b.1.pai).then(b.0.cmp(&a.0)))
                else {
                    continue;
                };
                let (Some(acc_model), Some(acc_best)) = (acc(0), acc(best.0)) else { continue };
                comparisons.push(Comparison {
                    crime: crime.clone(),
                    horizon: (*horizon).to_owned(),
                    area_share: *share,
                    model_pai: model.pai,
                    model_pei_star: model.pei_star,
                    best_baseline: best.1.method.clone(),
                    best_pai: best.1.pai,
                    best_pei_star: best.1.pei_star,
                    ratio: if best.1.pai > 0.0 { model.pai / best.1.pai } else { f64::NAN },
                    ceiling_pai: ceiling.pai,
                    ceiling_ratio: if best.1.pai > 0.0 { ceiling.pai / best.1.pai } else { f64::NAN },
                    paired: paired(
                        &acc_model.per_period,
                        &acc_best.per_period,
                        *periods_a_week,
                        opts.bootstrap,
                        opts.seed,
                    ),
                });
            }
        }
    }
    let near_repeat = near_repeat_capture(alarms, jurisdiction, &area, opts)?;
    Ok(HotspotEval {
        resolution: opts.config.resolution,
        kinds: opts.kinds.iter().map(|c| c.as_str().to_owned()).collect(),
        area_cells: area.len(),
        area_km2: area.iter().filter_map(|c| CellIndex::try_from(*c).ok()).map(|c| c.area_km2()).sum(),
        scored_from_ms: from,
        scored_until_ms: until,
        alarms: alarms.len(),
        baselines: methods.into_iter().skip(1).collect(),
        rows,
        comparisons,
        near_repeat,
    })
}

/// The horizons: name, length, forecast periods per week.
const HORIZONS: [(&str, u64, usize); 2] = [("day", DAY_MS, 7), ("week", 7 * DAY_MS, 1)];

/// (horizon index, method index, share index).
type Key = (usize, usize, usize);

/// The scores of every method per horizon and share. The methods are those of
/// [`methods`]: the model, the baselines and `oracle_span`, a ceiling rather
/// than a forecast: every period flags the cells with the most incidents over
/// the whole scored span (it sees the future), the best any fixed set of cells
/// could have done. A method that ranks by long-run concentration cannot beat
/// it; only one that foresees week-to-week changes can.
#[allow(clippy::too_many_arguments)]
fn score_crime(
    config: &Config,
    alarms: &[AlarmEvent],
    incidents: &[(u64, usize)],
    area: &[u64],
    index: &FastMap<u64, usize>,
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
    let n_methods = opts.naive_days.len() + 3;
    // Naive windows: counts and the index of the oldest incident still counted.
    let mut naive: Vec<(u64, Vec<u32>, usize)> =
        opts.naive_days.iter().map(|d| (d * DAY_MS, vec![0u32; a_n], 0)).collect();
    let mut kde_counts = vec![0u32; a_n];
    // Scores per method (the ceiling's are `span_counts`).
    let mut scores: Vec<Vec<f64>> = vec![vec![0.0; a_n]; n_methods - 1];
    let mut y = vec![0u32; a_n];
    let mut scratch = Vec::with_capacity(a_n);
    let (mut ai, mut ni_add, mut ki_del) = (0, 0, 0);
    let kde_ms = if opts.kde_window_days == 0 { u64::MAX } else { opts.kde_window_days * DAY_MS };
    let mut accs: Vec<(Key, Acc)> = Vec::new();
    for hi in 0..HORIZONS.len() {
        for mi in 0..n_methods {
            for si in 0..opts.area_shares.len() {
                accs.push(((hi, mi, si), Acc::default()));
            }
        }
    }
    // The ceiling: each cell's incidents over all the periods scored at a horizon.
    let mut span_counts = [vec![0.0; a_n], vec![0.0; a_n]];
    for (hi, (_, len, per_week)) in HORIZONS.into_iter().enumerate() {
        let step = 7 * DAY_MS / per_week as u64;
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
            for (_, counts, _) in naive.iter_mut() {
                counts[incidents[ni_add].1] += 1;
            }
            kde_counts[incidents[ni_add].1] += 1;
            ni_add += 1;
        }
        for (window, counts, del) in naive.iter_mut() {
            while *del < ni_add && incidents[*del].0 < t.saturating_sub(*window) {
                counts[incidents[*del].1] -= 1;
                *del += 1;
            }
        }
        while ki_del < ni_add && incidents[ki_del].0 < t.saturating_sub(kde_ms) {
            kde_counts[incidents[ki_del].1] -= 1;
            ki_del += 1;
        }
        let f = surface.factors(t);
        for (i, c) in area.iter().enumerate() {
            scores[0][i] = Surface::risk_of(&surface.parts(*c), &f);
            for (k, (_, counts, _)) in naive.iter().enumerate() {
                scores[1 + k][i] = f64::from(counts[i]);
            }
            scores[n_methods - 2][i] = kde_kernel[i].iter().map(|(j, w)| w * f64::from(kde_counts[*j])).sum();
        }
        for (hi, (_, len, per_week)) in HORIZONS.into_iter().enumerate() {
            if (per_week == 1 && !day.is_multiple_of(7)) || t + len > until {
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
            for ((h, m, s), acc) in accs.iter_mut().filter(|(k, _)| k.0 == hi) {
                debug_assert_eq!(*h, hi);
                let method_scores = if *m == n_methods - 1 { &span_counts[hi] } else { &scores[*m] };
                let n = ((opts.area_shares[*s] * a_n as f64).ceil() as usize).clamp(1, a_n);
                acc.periods += 1;
                acc.incidents += total;
                let mut hits = 0.0;
                if total > 0 {
                    let (h, best) = hits_at(method_scores, &y, n, &mut scratch);
                    hits = h;
                    acc.hits += h;
                    acc.best += best;
                }
                acc.per_period.push(hits);
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
    let in_area: FastMap<u64, ()> = area.iter().map(|c| (*c, ())).collect();
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
    fn paired_weeks_and_a_seeded_interval() {
        // Model better in 3 of 4 weeks; the interval is the same for the same seed.
        let model = [3.0, 4.0, 5.0, 1.0];
        let base = [2.0, 2.0, 4.0, 2.0];
        let p = paired(&model, &base, 1, 500, 7);
        assert_eq!((p.weeks, p.better, p.worse), (4, 3, 1));
        assert!((p.ratio - 13.0 / 10.0).abs() < 1e-12);
        assert!(p.ci_low < p.ratio && p.ratio < p.ci_high, "{p:?}");
        assert_eq!(p, paired(&model, &base, 1, 500, 7));
        // Days in blocks of 7: 10 days are 2 weeks.
        assert_eq!(paired(&[1.0; 10], &[1.0; 10], 7, 10, 1).weeks, 2);
    }

    #[test]
    fn kinds_choose_what_counts_and_a_miss_names_what_is_there() {
        let t0 = 1_700_000_000_000 / DAY_MS * DAY_MS;
        let mut alarms = Vec::new();
        for d in 0..40u64 {
            let ts = t0 + d * DAY_MS + 3_600_000;
            alarms.push(alarm(alarms.len() as u64, ts, 43.65, -79.38, Category::Disturbance));
            alarms.push(alarm(alarms.len() as u64, ts + 1, 43.6 + (d % 9) as f64 * 0.01, -79.4, Category::Traffic));
        }
        let jur = Jurisdiction::default_grid(Vec::new());
        let opts = EvalOptions { score_from_ms: Some(t0 + 20 * DAY_MS), ..EvalOptions::default() };
        let err = evaluate(&alarms, &jur, &opts).unwrap_err().to_string();
        assert!(err.contains("disturbance (40)") && err.contains("traffic (40)") && err.contains("--kinds"), "{err}");
        let kinds = parse_kinds("disturbance, traffic").unwrap();
        let e = evaluate(&alarms, &jur, &EvalOptions { kinds, ..opts }).unwrap();
        let row = e.row("disturbance+traffic", "day", "risk_hotspot", 0.01).unwrap();
        assert_eq!(row.incidents, 2 * 20, "both kinds counted, days 20..39 scored");
        assert!(row.pai > 1.0, "the model weighs the chosen kinds: {e}");
        assert!(e.row("burglary", "day", "kde", 0.01).is_none(), "no burglary rows when burglary is not scored");
        assert!(parse_kinds("burglary,shoplifting").unwrap_err().to_string().contains("shoplifting"));
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
        // The comparison names the best baseline and pairs the weeks.
        let c = e.comparison("burglary", "day", 0.01).unwrap();
        assert!(is_baseline(&c.best_baseline), "{c:?}");
        for m in ["naive_28d", "naive_90d", "naive_365d", "kde"] {
            assert!(e.row("burglary", "day", m, 0.01).unwrap().pai <= c.best_pai + 1e-12, "{m}: {e}");
        }
        assert_eq!(c.paired.weeks, 5, "30 days in blocks of 7: {c:?}");
        assert!((c.paired.ratio - c.ratio).abs() < 1e-9, "{c:?}");
        assert!(c.paired.ci_low <= c.ratio && c.ratio <= c.paired.ci_high, "{c:?}");
        assert!(e.to_string().contains("Mean of the model / best baseline ratios"));
        let nr = e.near_repeat.as_ref().unwrap();
        assert_eq!(nr.burglaries, 60);
        assert!(nr.follow_ups >= 58 && nr.captured > 0, "{nr:?}");
        serde_json::to_string(&e).unwrap();
    }
}
