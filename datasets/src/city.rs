//! The Qingdao-like city: districts, streets, communities, grids and officers.
//!
//! **Districts** are Qingdao's ten county-level divisions at their real
//! positions, with their 2020-census populations (rounded) and land areas.
//! Each is modelled as a disc of its real area around its geographic centre;
//! where discs overlap a place goes to the district it is relatively closest to
//! (distance divided by radius). The sea and Jiaozhou Bay are not modelled.
//!
//! **Population** inside a district follows a kernel around the district seat
//! (the urban core), plus small towns in the large rural districts and a thin
//! rural floor. **Commerce** (where theft and robbery concentrate, and where
//! people work) peaks in the urban cores.
//!
//! **Cells and grids**: routing cells are H3 resolution [`CELL_RESOLUTION`] (9:
//! ~0.105 km², edge ~174 m). A **grid** (网格) is one H3 resolution-8 cell
//! (~0.74 km²) and holds its seven resolution-9 children; this is coarser than
//! a real urban grid (~300 households) but keeps the grids table small.
//! **Streets** (街道/镇, ~70,000 people each) and **communities** (社区/村,
//! ~8,000 people each) are Voronoi regions around seeds drawn in proportion to
//! population, so they are small where people are dense, as in reality.
//!
//! Ids follow the administrative code style: district `370202` (the real code),
//! street `370202003`, community `370202003012`, grid `370202003012-004`.
//!
//! The layout depends only on [`LAYOUT_SEED`], not on the generator's seed, so
//! grids and officers are the same for every generated dataset.

use std::collections::HashMap;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use citywatch_engine::contract::{Role, Table};
use h3o::{CellIndex, LatLng, Resolution};

use crate::rng::{Rng, cumulative};
use crate::{Error, Result};

/// H3 resolution of the cells in the generated grids table.
pub const CELL_RESOLUTION: Resolution = Resolution::Nine;
/// H3 resolution of a grid: each grid is one cell at this resolution.
pub const GRID_RESOLUTION: Resolution = Resolution::Eight;
/// The seed of the city layout (fixed: the city is the same for every dataset).
pub const LAYOUT_SEED: u64 = 0x5149_4e47_4441_4f31; // "QINGDAO1"
/// People per street (real Qingdao: ~145 streets and towns for ~10 M people).
const PEOPLE_PER_STREET: f64 = 70_000.0;
/// People per community.
const PEOPLE_PER_COMMUNITY: f64 = 8_000.0;

/// A district as published: code, name, geography and people.
#[derive(Debug, Clone, Copy)]
pub struct DistrictSpec {
    /// Administrative code (GB/T 2260), used as the district id.
    pub code: &'static str,
    /// Name.
    pub name: &'static str,
    /// Geographic centre (lat, lon).
    pub centre: (f64, f64),
    /// The seat, where the urban core is (lat, lon).
    pub seat: (f64, f64),
    /// Resident population, 2020 census (rounded).
    pub population: f64,
    /// Land area, km².
    pub area_km2: f64,
    /// Scale of the urban core, km (how fast density falls off from the seat).
    pub core_km: f64,
}

/// Qingdao's districts (2020 census populations, rounded to thousands).
pub const DISTRICTS: &[DistrictSpec] = &[
    DistrictSpec {
        code: "370202",
        name: "Shinan",
        centre: (36.066, 120.395),
        seat: (36.066, 120.395),
        population: 589_000.0,
        area_km2: 30.0,
        core_km: 4.0,
    },
    DistrictSpec {
        code: "370203",
        name: "Shibei",
        centre: (36.088, 120.370),
        seat: (36.088, 120.370),
        population: 1_042_000.0,
        area_km2: 65.0,
        core_km: 4.0,
    },
    DistrictSpec {
        code: "370211",
        name: "Huangdao",
        centre: (35.905, 120.080),
        seat: (35.960, 120.190),
        population: 1_903_000.0,
        area_km2: 2_128.0,
        core_km: 6.0,
    },
    DistrictSpec {
        code: "370212",
        name: "Laoshan",
        centre: (36.135, 120.540),
        seat: (36.105, 120.465),
        population: 546_000.0,
        area_km2: 389.0,
        core_km: 3.5,
    },
    DistrictSpec {
        code: "370213",
        name: "Licang",
        centre: (36.150, 120.432),
        seat: (36.150, 120.432),
        population: 674_000.0,
        area_km2: 96.0,
        core_km: 4.0,
    },
    DistrictSpec {
        code: "370214",
        name: "Chengyang",
        centre: (36.300, 120.380),
        seat: (36.307, 120.396),
        population: 1_111_000.0,
        area_km2: 584.0,
        core_km: 5.0,
    },
    DistrictSpec {
        code: "370215",
        name: "Jimo",
        centre: (36.450, 120.560),
        seat: (36.389, 120.447),
        population: 1_340_000.0,
        area_km2: 1_780.0,
        core_km: 4.5,
    },
    DistrictSpec {
        code: "370281",
        name: "Jiaozhou",
        centre: (36.300, 119.950),
        seat: (36.285, 120.033),
        population: 985_000.0,
        area_km2: 1_324.0,
        core_km: 4.5,
    },
    DistrictSpec {
        code: "370283",
        name: "Pingdu",
        centre: (36.750, 119.900),
        seat: (36.776, 119.988),
        population: 1_212_000.0,
        area_km2: 3_166.0,
        core_km: 4.0,
    },
    DistrictSpec {
        code: "370285",
        name: "Laixi",
        centre: (36.900, 120.500),
        seat: (36.888, 120.518),
        population: 730_000.0,
        area_km2: 1_522.0,
        core_km: 3.5,
    },
];

/// Distance in km between two (lat, lon) points (equirectangular; fine at city scale).
#[inline]
pub fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (a.0 - b.0) * 110.574;
    let dx = (a.1 - b.1) * 111.320 * (0.5 * (a.0 + b.0)).to_radians().cos();
    (dx * dx + dy * dy).sqrt()
}

/// Moves a point by (north, east) km.
#[inline]
pub fn offset_km(p: (f64, f64), north_km: f64, east_km: f64) -> (f64, f64) {
    (p.0 + north_km / 110.574, p.1 + east_km / (111.320 * p.0.to_radians().cos()))
}

/// A district of the generated city.
#[derive(Debug, Clone)]
pub struct District {
    /// The published facts.
    pub spec: DistrictSpec,
    /// Its streets (indices into [`City::streets`]).
    pub streets: std::ops::Range<usize>,
}

/// A street (街道/镇): the area of one police station.
#[derive(Debug, Clone)]
pub struct Street {
    /// Id, e.g. `370202003`.
    pub id: String,
    /// Its district.
    pub district: usize,
    /// Its communities (indices into [`City::communities`]).
    pub communities: std::ops::Range<usize>,
    /// People living there (model population, not subscribers).
    pub population: f64,
}

/// A community (社区/村): the area of one community officer.
#[derive(Debug, Clone)]
pub struct Community {
    /// Id, e.g. `370202003012`.
    pub id: String,
    /// Its street.
    pub street: usize,
    /// Its grids (indices into [`City::grids`]).
    pub grids: std::ops::Range<usize>,
    /// Cumulative population weights of its grids (to place homes).
    pub grid_cum: Vec<f64>,
    /// People living there.
    pub population: f64,
}

/// A grid: one H3 resolution-8 cell.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Id, e.g. `370202003012-004`.
    pub id: String,
    /// The resolution-8 cell.
    pub cell: CellIndex,
    /// Its centre (lat, lon).
    pub centre: (f64, f64),
    /// Its community.
    pub community: usize,
    /// People living there.
    pub population: f64,
    /// Commercial intensity (relative; where work, theft and robbery concentrate).
    pub commerce: f64,
}

/// The whole city.
#[derive(Debug, Clone)]
pub struct City {
    /// Districts in [`DISTRICTS`] order.
    pub districts: Vec<District>,
    /// Streets, grouped by district.
    pub streets: Vec<Street>,
    /// Communities, grouped by street.
    pub communities: Vec<Community>,
    /// Grids, grouped by community.
    pub grids: Vec<Grid>,
    /// Grid index of each resolution-8 cell.
    pub grid_of_cell: HashMap<CellIndex, usize>,
    /// Cumulative population weights over all grids.
    pub pop_cum: Vec<f64>,
    /// Cumulative commerce weights over all grids.
    pub commerce_cum: Vec<f64>,
    /// Total population.
    pub population: f64,
}

struct RawGrid {
    cell: CellIndex,
    centre: (f64, f64),
    district: usize,
    pop: f64,
    commerce: f64,
}

impl City {
    /// Builds the city (deterministic: depends on [`LAYOUT_SEED`] only). ~0.1 s.
    pub fn qingdao() -> City {
        let mut rng = Rng::new(&[LAYOUT_SEED]);
        // 1. Cells of each district's disc, assigned to the relatively closest district.
        let radius: Vec<f64> = DISTRICTS.iter().map(|d| (d.area_km2 / std::f64::consts::PI).sqrt()).collect();
        let spacing_km = 0.8; // centre-to-centre distance of resolution-8 cells
        let mut owner: HashMap<CellIndex, usize> = HashMap::new();
        for (di, d) in DISTRICTS.iter().enumerate() {
            let c = LatLng::new(d.centre.0, d.centre.1).expect("valid centre").to_cell(GRID_RESOLUTION);
            let k = (radius[di] / spacing_km).ceil() as u32 + 2;
            for cell in c.grid_disk::<Vec<_>>(k) {
                let p = centre_of(cell);
                let best = (0..DISTRICTS.len())
                    .map(|j| (km(p, DISTRICTS[j].centre) / radius[j], j))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .expect("districts");
                if best.0 <= 1.0 && best.1 == di {
                    owner.insert(cell, di);
                }
            }
        }
        let mut raw: Vec<RawGrid> = owner
            .into_iter()
            .map(|(cell, district)| RawGrid { cell, centre: centre_of(cell), district, pop: 0.0, commerce: 0.0 })
            .collect();
        raw.sort_by_key(|g| (g.district, u64::from(g.cell)));

        // 2. Population and commerce weights.
        let mut population = 0.0;
        for (di, d) in DISTRICTS.iter().enumerate() {
            let idx: Vec<usize> = (0..raw.len()).filter(|&i| raw[i].district == di).collect();
            let n_towns = (d.area_km2 / 180.0).floor() as usize;
            let towns: Vec<(f64, f64)> =
                (0..n_towns).map(|_| raw[idx[rng.below(idx.len() as u64) as usize]].centre).collect();
            for &i in &idx {
                let p = raw[i].centre;
                let core = (-km(p, d.seat) / d.core_km).exp();
                let town: f64 = towns.iter().map(|&t| (-km(p, t) / 1.2).exp()).sum();
                let w = core + 0.35 * town + 0.01;
                raw[i].pop = w * rng.range(0.6, 1.4);
                raw[i].commerce =
                    (-km(p, d.seat) / (0.5 * d.core_km)).exp() * (d.population / 1e6) + 0.15 * town + 0.002;
            }
            let total: f64 = idx.iter().map(|&i| raw[i].pop).sum();
            for &i in &idx {
                raw[i].pop *= d.population / total;
            }
            population += d.population;
        }

        // 3. Streets and communities: Voronoi around seeds drawn by population.
        let mut streets = Vec::new();
        let mut communities = Vec::new();
        let mut grids = Vec::new();
        let mut districts = Vec::new();
        for (di, d) in DISTRICTS.iter().enumerate() {
            let idx: Vec<usize> = (0..raw.len()).filter(|&i| raw[i].district == di).collect();
            let n_streets = ((d.population / PEOPLE_PER_STREET).round() as usize).clamp(3, idx.len());
            let street_of = voronoi(&raw, &idx, n_streets, 0.5, &mut rng);
            let s0 = streets.len();
            for s in 0..n_streets {
                let sidx: Vec<usize> = idx.iter().zip(&street_of).filter(|(_, o)| **o == s).map(|(i, _)| *i).collect();
                let spop: f64 = sidx.iter().map(|&i| raw[i].pop).sum();
                let street_id = format!("{}{:03}", d.code, s + 1);
                let n_comm = ((spop / PEOPLE_PER_COMMUNITY).round() as usize).clamp(1, sidx.len());
                let comm_of = voronoi(&raw, &sidx, n_comm, 0.8, &mut rng);
                let c0 = communities.len();
                for c in 0..n_comm {
                    let cidx: Vec<usize> =
                        sidx.iter().zip(&comm_of).filter(|(_, o)| **o == c).map(|(i, _)| *i).collect();
                    let comm_id = format!("{street_id}{:03}", c + 1);
                    let g0 = grids.len();
                    for (k, &i) in cidx.iter().enumerate() {
                        grids.push(Grid {
                            id: format!("{comm_id}-{:03}", k + 1),
                            cell: raw[i].cell,
                            centre: raw[i].centre,
                            community: communities.len(),
                            population: raw[i].pop,
                            commerce: raw[i].commerce,
                        });
                    }
                    let g1 = grids.len();
                    communities.push(Community {
                        id: comm_id,
                        street: streets.len(),
                        grid_cum: cumulative(grids[g0..g1].iter().map(|g| g.population)),
                        population: grids[g0..g1].iter().map(|g| g.population).sum(),
                        grids: g0..g1,
                    });
                }
                streets.push(Street {
                    id: street_id,
                    district: di,
                    communities: c0..communities.len(),
                    population: spop,
                });
            }
            districts.push(District { spec: *d, streets: s0..streets.len() });
        }
        let grid_of_cell = grids.iter().enumerate().map(|(i, g)| (g.cell, i)).collect();
        let pop_cum = cumulative(grids.iter().map(|g| g.population));
        let commerce_cum = cumulative(grids.iter().map(|g| g.commerce));
        City { districts, streets, communities, grids, grid_of_cell, pop_cum, commerce_cum, population }
    }

    /// The grid containing a point, if it is inside the city: the grid of its
    /// resolution-9 cell, exactly as the grids table routes it.
    pub fn grid_at(&self, p: (f64, f64)) -> Option<usize> {
        let ll = LatLng::new(p.0, p.1).ok()?;
        let cell = ll.to_cell(CELL_RESOLUTION).parent(GRID_RESOLUTION)?;
        self.grid_of_cell.get(&cell).copied()
    }

    /// `p` if it is inside the city, else the centre of grid `g` (for points
    /// jittered past the city's edge).
    pub fn inside_or(&self, p: (f64, f64), g: usize) -> (f64, f64) {
        if self.grid_at(p).is_some() { p } else { self.grids[g].centre }
    }

    /// The street of a grid.
    pub fn street_of_grid(&self, g: usize) -> usize {
        self.communities[self.grids[g].community].street
    }

    /// A point drawn uniformly-ish inside a grid (within ~400 m of its centre, so inside the cell
    /// or a neighbour).
    pub fn point_in_grid(&self, g: usize, rng: &mut Rng) -> (f64, f64) {
        let c = self.grids[g].centre;
        offset_km(c, rng.range(-0.38, 0.38), rng.range(-0.38, 0.38))
    }

    /// The grids table (contract `grids`, with the optional name columns):
    /// one row per resolution-9 cell. Names: the district's, a street name
    /// per street ([`street_name`]), "<street> <n>" per community and
    /// "<community>-<nn>" per grid.
    pub fn grids_batch(&self) -> Result<RecordBatch> {
        let n = self.grids.len() * 7;
        let mut cols: Vec<StringBuilder> = (0..9).map(|_| StringBuilder::with_capacity(n, n * 16)).collect();
        for (gi, g) in self.grids.iter().enumerate() {
            let comm = &self.communities[g.community];
            let street = &self.streets[comm.street];
            let district = &DISTRICTS[street.district];
            let street_name = street_name(comm.street);
            let comm_name = format!("{street_name} {}", g.community - street.communities.start + 1);
            let grid_name = format!("{comm_name}-{:02}", gi - comm.grids.start + 1);
            let mut children: Vec<CellIndex> = g.cell.children(CELL_RESOLUTION).collect();
            children.sort();
            for c in children {
                cols[0].append_value(c.to_string());
                cols[1].append_value(&g.id);
                cols[2].append_value(&comm.id);
                cols[3].append_value(&street.id);
                cols[4].append_value(district.code);
                cols[5].append_value(&grid_name);
                cols[6].append_value(&comm_name);
                cols[7].append_value(&street_name);
                cols[8].append_value(district.name);
            }
        }
        let arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| std::sync::Arc::new(b.finish()) as ArrayRef).collect();
        Ok(RecordBatch::try_new(grids_schema(), arrays)?)
    }

    /// The officers table: a community officer per community, a station per
    /// street, a command per district, and [`ANALYSTS`] city analysts.
    pub fn officers(&self) -> Vec<OfficerRow> {
        let mut out = Vec::new();
        for (i, c) in self.communities.iter().enumerate() {
            out.push(OfficerRow {
                officer_id: format!("C{}", c.id),
                name: format!("Community officer {:04}", i + 1),
                role: Role::Community,
                scope: c.id.clone(),
            });
        }
        for s in &self.streets {
            let d = DISTRICTS[s.district].name;
            out.push(OfficerRow {
                officer_id: format!("S{}", s.id),
                name: format!("{d} station {}", &s.id[6..]),
                role: Role::Station,
                scope: s.id.clone(),
            });
        }
        for d in DISTRICTS {
            out.push(OfficerRow {
                officer_id: format!("D{}", d.code),
                name: format!("{} district command", d.name),
                role: Role::District,
                scope: d.code.to_owned(),
            });
        }
        for i in 1..=ANALYSTS {
            out.push(OfficerRow {
                officer_id: format!("A{i:02}"),
                name: format!("City analyst {i}"),
                role: Role::Analyst,
                scope: "city".to_owned(),
            });
        }
        out
    }
}

/// The grids table's schema as the generator writes it: the contract's
/// columns and the optional name columns (`grid_name`, `community_name`,
/// `street_name`, `district_name`).
pub fn grids_schema() -> arrow_schema::SchemaRef {
    let mut fields: Vec<arrow_schema::Field> =
        Table::Grids.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    for name in citywatch_engine::load::AREA_NAME_COLUMNS {
        fields.push(arrow_schema::Field::new(name, arrow_schema::DataType::Utf8, true));
    }
    std::sync::Arc::new(arrow_schema::Schema::new(fields))
}

/// Road names for the generated streets (Qingdao's, romanised); past the
/// list, a name repeats with a number.
const STREET_NAMES: &[&str] = &[
    "Zhongshan",
    "Taidong",
    "Xianggang",
    "Yan'an",
    "Ningxia",
    "Nanjing",
    "Hefei",
    "Liaoyang",
    "Fuzhou",
    "Minjiang",
    "Jiangxi",
    "Guizhou",
    "Yunnan",
    "Shandong",
    "Zhanshan",
    "Badaguan",
    "Tuandao",
    "Xiaogang",
    "Dagang",
    "Sifang",
    "Cangkou",
    "Loushan",
    "Licun",
    "Fushan",
    "Jinling",
    "Haiyang",
    "Taiping",
    "Xiaoyu",
    "Zhongyuan",
    "Lushan",
    "Hongdao",
    "Chengyang",
    "Jimo",
    "Jiaozhou",
    "Laoshan",
    "Shazikou",
    "Wangjiamai",
    "Beizhai",
    "Dengzhou",
    "Weihai",
    "Yantai",
    "Hangzhou",
    "Wenzhou",
    "Changsha",
    "Kunming",
    "Lanzhou",
    "Chongqing",
    "Harbin",
];

/// The name of the `i`-th street.
pub fn street_name(i: usize) -> String {
    let base = STREET_NAMES[i % STREET_NAMES.len()];
    match i / STREET_NAMES.len() {
        0 => base.to_owned(),
        k => format!("{base} {}", k + 1),
    }
}

/// City analysts in the roster.
pub const ANALYSTS: usize = 3;

/// One row of the officers table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerRow {
    /// Officer id (`C<community>`, `S<street>`, `D<district>`, `A01`...).
    pub officer_id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Scope: a community, street or district id, or `city`.
    pub scope: String,
}

/// The officers table as a record batch.
pub fn officers_batch(rows: &[OfficerRow]) -> Result<RecordBatch> {
    let mut cols: Vec<StringBuilder> = (0..4).map(|_| StringBuilder::new()).collect();
    for o in rows {
        cols[0].append_value(&o.officer_id);
        cols[1].append_value(&o.name);
        cols[2].append_value(o.role.as_str());
        cols[3].append_value(&o.scope);
    }
    let arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| std::sync::Arc::new(b.finish()) as ArrayRef).collect();
    RecordBatch::try_new(Table::Officers.schema(), arrays).map_err(Error::from)
}

/// Centre of an H3 cell as (lat, lon).
pub fn centre_of(cell: CellIndex) -> (f64, f64) {
    let ll = LatLng::from(cell);
    (ll.lat(), ll.lng())
}

/// Splits the grids `idx` into `n` Voronoi regions around seeds drawn without
/// replacement in proportion to `pop^power`; returns the region of each grid.
fn voronoi(raw: &[RawGrid], idx: &[usize], n: usize, power: f64, rng: &mut Rng) -> Vec<usize> {
    let mut weights: Vec<f64> = idx.iter().map(|&i| raw[i].pop.powf(power)).collect();
    let mut seeds = Vec::with_capacity(n);
    for _ in 0..n {
        let cum = cumulative(weights.iter().copied());
        let k = rng.weighted(&cum);
        seeds.push(raw[idx[k]].centre);
        weights[k] = 0.0;
    }
    // Order seeds west to east, then south to north, for readable numbering.
    seeds.sort_by(|a, b| (a.1 + 0.3 * a.0).total_cmp(&(b.1 + 0.3 * b.0)));
    idx.iter()
        .map(|&i| {
            let p = raw[i].centre;
            (0..n).min_by(|&a, &b| km(p, seeds[a]).total_cmp(&km(p, seeds[b]))).expect("seeds")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn city_shape() {
        let city = City::qingdao();
        assert_eq!(city.districts.len(), 10);
        eprintln!(
            "{} streets, {} communities, {} grids, population {}",
            city.streets.len(),
            city.communities.len(),
            city.grids.len(),
            city.population
        );
        for d in &city.districts {
            let grids: usize = d
                .streets
                .clone()
                .flat_map(|s| city.streets[s].communities.clone())
                .map(|c| city.communities[c].grids.len())
                .sum();
            let comms: usize = d.streets.clone().map(|s| city.streets[s].communities.len()).sum();
            eprintln!(
                "{} {}: {} streets, {} communities, {} grids",
                d.spec.code,
                d.spec.name,
                d.streets.len(),
                comms,
                grids
            );
        }
        assert!((100..250).contains(&city.streets.len()), "{}", city.streets.len());
        assert!((900..1600).contains(&city.communities.len()), "{}", city.communities.len());
        assert!(city.communities.iter().all(|c| !c.grids.is_empty()));
        // Shinan is the densest district; Pingdu among the sparsest.
        let density = |code: &str| {
            let (di, d) = DISTRICTS.iter().enumerate().find(|(_, d)| d.code == code).unwrap();
            let n =
                city.grids.iter().filter(|g| city.streets[city.communities[g.community].street].district == di).count();
            d.population / n as f64
        };
        assert!(density("370202") > 10.0 * density("370283"));
    }
}
