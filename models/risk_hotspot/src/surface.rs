//! The risk surface: exponentially decayed, spatially smoothed incident
//! intensity per H3 cell, maintained incrementally in event time.
//!
//! Each alarm of a weighted category adds `w(category) * ring_weight^k` to the
//! cells `k <= smooth_rings` rings away from its cell, in two components that
//! decay at different rates: **recent** (half-life of weeks: where crime is
//! now) and **background** (half-life of a year: where it usually is). A
//! burglary also adds `near_repeat_weight * near_repeat_ring_weight^k` to a third
//! component, **near-repeat**, over `near_repeat_rings` rings with a short
//! half-life (ProMap / self-exciting models: the risk of another burglary
//! within a few hundred metres stays raised for a few weeks).
//!
//! Decay is kept exact and cheap with a shared reference time `R`: a cell
//! stores `sum(w * exp((t_e - R) / tau))` per component, so its risk at `t` is
//! `sum_i stored_i * exp(-(t - R) / tau_i)`: one factor per component for the
//! whole surface, two multiplications per cell. When an alarm's time is more
//! than 200 of the shortest decay constants past `R`, every cell is rebased
//! to a new `R` (the alarm's time), so the stored values stay finite.
//! Everything depends only on the alarms in `(ts_ms, seq)` order, so every
//! worker, the reference and the evaluation compute the same bits.
//!
//! Cost per alarm: one H3 conversion, a cached disk lookup, `|disk|` hash
//! updates; no allocation once a cell has been seen (its disk is cached).

use citywatch_engine::contract::Category;
use citywatch_engine::geo::Point;
use citywatch_engine::hash::FastMap;
use h3o::{CellIndex, Resolution};

use crate::Config;

/// Number of alarm categories (the contract's vocabulary).
pub const CATEGORIES: usize = Category::ALL.len();

const DAY_MS: f64 = 86_400_000.0;

/// Parameters derived from the [`Config`], ready for arithmetic.
#[derive(Debug, Clone)]
pub struct Params {
    /// Cell resolution.
    pub resolution: Resolution,
    /// Weight per category (index: the category's position in `Category::ALL`).
    pub weights: [f64; CATEGORIES],
    /// Rings of the smoothing kernel.
    pub smooth_rings: u32,
    /// Rings of the near-repeat kernel.
    pub near_repeat_rings: u32,
    /// `ring_weight^k` for k = 0..=max rings.
    pub ring_w: Vec<f64>,
    /// `near_repeat_ring_weight^k` for k = 0..=max rings.
    pub near_ring_w: Vec<f64>,
    /// Decay constants (e-folding times, ms) of recent, background, near-repeat.
    pub tau_ms: [f64; 3],
    /// Weights of the three components in the risk.
    pub mix: [f64; 3],
}

impl Params {
    /// From the model's configuration (validated by [`Config::validate`]).
    pub fn new(c: &Config) -> Params {
        let mut weights = [0.0; CATEGORIES];
        for (i, cat) in Category::ALL.iter().enumerate() {
            weights[i] = c.category_weights.get(cat.as_str()).copied().unwrap_or(0.0);
        }
        let max_rings = c.smooth_rings.max(c.near_repeat_rings);
        let ring_w = (0..=max_rings).map(|k| c.ring_weight.powi(k as i32)).collect();
        let near_ring_w = (0..=max_rings).map(|k| c.near_repeat_ring_weight.powi(k as i32)).collect();
        let tau = |half_life_days: f64| half_life_days * DAY_MS / std::f64::consts::LN_2;
        Params {
            resolution: Resolution::try_from(c.resolution).expect("validated resolution"),
            weights,
            smooth_rings: c.smooth_rings,
            near_repeat_rings: c.near_repeat_rings,
            ring_w,
            near_ring_w,
            tau_ms: [tau(c.recent_half_life_days), tau(c.background_half_life_days), tau(c.near_repeat_half_life_days)],
            mix: [1.0, c.background_weight, c.near_repeat_weight],
        }
    }

    /// The weight of a category.
    pub fn weight(&self, category: Category) -> f64 {
        self.weights[category as usize]
    }
}

/// The three stored components of a cell (at the reference time).
pub type Parts = [f64; 3];

/// The risk surface over the cells that any alarm has touched.
#[derive(Debug, Clone)]
pub struct Surface {
    p: Params,
    cells: FastMap<u64, Parts>,
    /// Disk of `max(smooth_rings, near_repeat_rings)` around a cell, with ring distances.
    disks: FastMap<u64, Box<[(u64, u32)]>>,
    ref_ms: Option<u64>,
}

impl Surface {
    /// An empty surface.
    pub fn new(p: Params) -> Surface {
        Surface { p, cells: FastMap::default(), disks: FastMap::default(), ref_ms: None }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.p
    }

    /// The cell of a position at the surface's resolution.
    pub fn cell_of(&self, pos: Point) -> u64 {
        u64::from(pos.cell(self.p.resolution))
    }

    /// The cached disk around `cell` (cells and ring distances), computed on first use.
    pub fn disk(&mut self, cell: u64) -> &[(u64, u32)] {
        let k = self.p.smooth_rings.max(self.p.near_repeat_rings);
        self.disks.entry(cell).or_insert_with(|| {
            let c = CellIndex::try_from(cell).expect("a cell of this surface");
            let mut d: Vec<(u64, u32)> =
                c.grid_disk_distances::<Vec<_>>(k).into_iter().map(|(n, r)| (u64::from(n), r)).collect();
            d.sort_unstable();
            d.into_boxed_slice()
        })
    }

    /// Whether an alarm of this category changes the surface.
    pub fn counts(&self, category: Category) -> bool {
        self.p.weight(category) > 0.0 || (category == Category::Burglary && self.p.mix[2] > 0.0)
    }

    /// Adds an alarm at event time `ts_ms`; returns its cell, or `None` when its
    /// category carries no weight (the surface is unchanged).
    pub fn add(&mut self, ts_ms: u64, pos: Point, category: Category) -> Option<u64> {
        if !self.counts(category) {
            return None;
        }
        let cell = self.cell_of(pos);
        let r = *self.ref_ms.get_or_insert(ts_ms);
        let tau_min = self.p.tau_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let r = if (ts_ms as f64 - r as f64) / tau_min > 200.0 {
            self.rebase(ts_ms);
            ts_ms
        } else {
            r
        };
        let dt = ts_ms as f64 - r as f64;
        let g = [(dt / self.p.tau_ms[0]).exp(), (dt / self.p.tau_ms[1]).exp(), (dt / self.p.tau_ms[2]).exp()];
        let w = self.p.weight(category);
        let nr = if category == Category::Burglary { self.p.mix[2] } else { 0.0 };
        let (smooth, near) = (self.p.smooth_rings, self.p.near_repeat_rings);
        self.disk(cell);
        let disk = &self.disks[&cell];
        for &(n, ring) in disk.iter() {
            let e = self.cells.entry(n).or_insert([0.0; 3]);
            if ring <= smooth && w > 0.0 {
                let k = self.p.ring_w[ring as usize];
                e[0] += w * k * g[0];
                e[1] += w * k * g[1];
            }
            if ring <= near && nr > 0.0 {
                e[2] += self.p.near_ring_w[ring as usize] * g[2];
            }
        }
        Some(cell)
    }

    fn rebase(&mut self, new_ref_ms: u64) {
        let old = self.ref_ms.unwrap_or(new_ref_ms);
        let dt = new_ref_ms as f64 - old as f64;
        let f = [(-dt / self.p.tau_ms[0]).exp(), (-dt / self.p.tau_ms[1]).exp(), (-dt / self.p.tau_ms[2]).exp()];
        for v in self.cells.values_mut() {
            for i in 0..3 {
                v[i] *= f[i];
            }
        }
        self.ref_ms = Some(new_ref_ms);
    }

    /// The per-component factors that turn stored parts into values at `at_ms`,
    /// mixing weights included.
    pub fn factors(&self, at_ms: u64) -> [f64; 3] {
        let r = self.ref_ms.unwrap_or(at_ms);
        let dt = at_ms as f64 - r as f64;
        [
            self.p.mix[0] * (-dt / self.p.tau_ms[0]).exp(),
            self.p.mix[1] * (-dt / self.p.tau_ms[1]).exp(),
            self.p.mix[2] * (-dt / self.p.tau_ms[2]).exp(),
        ]
    }

    /// The risk of stored parts under `factors`: the one formula every user shares.
    #[inline]
    pub fn risk_of(parts: &Parts, f: &[f64; 3]) -> f64 {
        parts[0] * f[0] + parts[1] * f[1] + parts[2] * f[2]
    }

    /// The stored parts of a cell (zeros when untouched).
    pub fn parts(&self, cell: u64) -> Parts {
        self.cells.get(&cell).copied().unwrap_or([0.0; 3])
    }

    /// The risk of a cell at `at_ms`.
    pub fn risk(&self, cell: u64, at_ms: u64) -> f64 {
        Surface::risk_of(&self.parts(cell), &self.factors(at_ms))
    }

    /// Every touched cell with its stored parts (arbitrary order).
    pub fn cells(&self) -> impl Iterator<Item = (u64, &Parts)> + '_ {
        self.cells.iter().map(|(c, p)| (*c, p))
    }

    /// Number of touched cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether no cell has been touched.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// Rounds for display and evidence (4 decimals).
pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
