//! The console map's geometry, served compactly.
//!
//! A city's grids table has one row per H3 cell (the demo city: ~132,000
//! resolution-9 cells); as GeoJSON polygons that was 62 MB a request. The map
//! needs far less:
//!
//! - the **overview** (`GET /api/v1/grid`): the boundaries between districts,
//!   streets and communities as polylines, and one label point per area, in
//!   integer units of [`UNIT`] degrees from an origin (delta-coded), computed
//!   once per scope and cached;
//! - the **cells of a view** (`GET /api/v1/grid/cells?bbox=...`): the centres
//!   of the cells inside a bounding box (with their community and grid), the
//!   boundaries between grids there, and one hexagon outline every cell is
//!   drawn with; at most [`MAX_VIEW_CELLS`], else the answer says how many
//!   there are and the map asks the user to zoom in.
//!
//! A boundary is the edge between two neighbouring cells (an H3 directed
//! edge) whose areas differ, drawn at the highest level that differs; edges
//! are chained into polylines so shared vertices are sent once.

use std::collections::HashMap;

use citywatch_engine::jurisdiction::Jurisdiction;
use h3o::{CellIndex, LatLng};
use serde_json::{Value, json};

/// Degrees per coordinate unit (~1.1 m of latitude).
pub const UNIT: f64 = 1e-5;
/// Most cells one view request returns.
pub const MAX_VIEW_CELLS: usize = 40_000;

/// Levels of the hierarchy, in the order borders are ranked (0 is the strongest).
pub const LEVELS: [&str; 4] = ["district", "street", "community", "grid"];

type Pt = (i32, i32);

/// One area (district, street, community or grid).
#[derive(Debug)]
struct Area {
    id: String,
    /// Index of the parent area one level up (districts: 0).
    parent: u32,
    sum: (i64, i64),
    cells: u32,
    /// Label point: the member cell centre nearest the areas's mean.
    at: Pt,
    best: i64,
}

#[derive(Debug, Clone, Copy)]
struct CellRow {
    cell: CellIndex,
    at: Pt,
    /// Area index per level (district, street, community, grid).
    area: [u32; 4],
}

/// The jurisdiction's cells indexed for the map.
#[derive(Debug)]
pub struct GeoIndex {
    origin: (f64, f64),
    cells: Vec<CellRow>,
    row_of: HashMap<CellIndex, u32>,
    areas: [Vec<Area>; 4],
    hex: Vec<Pt>,
}

fn quantise(origin: (f64, f64), ll: LatLng) -> Pt {
    (((ll.lng() - origin.0) / UNIT).round() as i32, ((ll.lat() - origin.1) / UNIT).round() as i32)
}

impl GeoIndex {
    /// Indexes the cells of `j` (none for the default grid).
    pub fn new(j: &Jurisdiction) -> GeoIndex {
        let mut rows: Vec<(CellIndex, LatLng, [&str; 4])> = j
            .cells()
            .map(|(c, g)| {
                (c, LatLng::from(c), [g.district.as_str(), g.street.as_str(), g.community.as_str(), g.grid.as_str()])
            })
            .collect();
        rows.sort_by_key(|r| u64::from(r.0));
        let lon0 = rows.iter().map(|r| r.1.lng()).fold(f64::INFINITY, f64::min);
        let lat0 = rows.iter().map(|r| r.1.lat()).fold(f64::INFINITY, f64::min);
        let origin =
            if rows.is_empty() { (0.0, 0.0) } else { ((lon0 / 0.01).floor() * 0.01, (lat0 / 0.01).floor() * 0.01) };
        let mut areas: [Vec<Area>; 4] = Default::default();
        let mut index: [HashMap<String, u32>; 4] = Default::default();
        let mut cells = Vec::with_capacity(rows.len());
        for (cell, ll, ids) in &rows {
            let at = quantise(origin, *ll);
            let mut area = [0u32; 4];
            for level in 0..4 {
                let parent = if level == 0 { 0 } else { area[level - 1] };
                let n = areas[level].len() as u32;
                let i = *index[level].entry(ids[level].to_owned()).or_insert(n);
                if i == n {
                    areas[level].push(Area {
                        id: ids[level].to_owned(),
                        parent,
                        sum: (0, 0),
                        cells: 0,
                        at,
                        best: i64::MAX,
                    });
                }
                let a = &mut areas[level][i as usize];
                a.sum.0 += i64::from(at.0);
                a.sum.1 += i64::from(at.1);
                a.cells += 1;
                area[level] = i;
            }
            cells.push(CellRow { cell: *cell, at, area });
        }
        // Label points: the member cell nearest each area's mean centre (inside the area).
        for c in &cells {
            for (level, list) in areas.iter_mut().enumerate() {
                let a = &mut list[c.area[level] as usize];
                let mean = (a.sum.0 / i64::from(a.cells), a.sum.1 / i64::from(a.cells));
                let d = (i64::from(c.at.0) - mean.0).pow(2) + (i64::from(c.at.1) - mean.1).pow(2);
                if d < a.best {
                    a.best = d;
                    a.at = c.at;
                }
            }
        }
        let hex = match cells.get(cells.len() / 2) {
            Some(mid) => mid
                .cell
                .boundary()
                .iter()
                .map(|ll| quantise(origin, *ll))
                .map(|p| (p.0 - mid.at.0, p.1 - mid.at.1))
                .collect(),
            None => Vec::new(),
        };
        let row_of = cells.iter().enumerate().map(|(i, c)| (c.cell, i as u32)).collect();
        GeoIndex { origin, cells, row_of, areas, hex }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no cells (the default grid).
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn ids(&self, row: &CellRow) -> [Option<&str>; 4] {
        // The scope check's order: grid, community, street, district.
        [3, 2, 1, 0].map(|l| Some(self.areas[l][row.area[l] as usize].id.as_str()))
    }

    /// Boundaries between the visible cells `rows` and their neighbours, at
    /// levels `0..=max_level`: polylines, each `[level, x0, y0, dx1, dy1, ...]`.
    fn borders(&self, rows: &[u32], visible: &dyn Fn(u32) -> bool, max_level: usize) -> Vec<Value> {
        let mut segments: Vec<Vec<(Pt, Pt)>> = vec![Vec::new(); max_level + 1];
        for &r in rows {
            let c = &self.cells[r as usize];
            for edge in c.cell.edges() {
                let other = self.row_of.get(&edge.destination()).copied();
                let level = match other {
                    None => 0,
                    Some(o) => match (0..4).find(|&l| self.cells[o as usize].area[l] != c.area[l]) {
                        Some(l) => l,
                        None => continue,
                    },
                };
                // Each shared edge once: from the smaller cell, unless the other is not drawn.
                let from_here =
                    other.is_none_or(|o| !visible(o) || u64::from(c.cell) < u64::from(self.cells[o as usize].cell));
                if level > max_level || !from_here {
                    continue;
                }
                let b = edge.boundary();
                let pts: Vec<Pt> = b.iter().map(|ll| quantise(self.origin, *ll)).collect();
                for w in pts.windows(2) {
                    segments[level].push((w[0], w[1]));
                }
            }
        }
        let mut out = Vec::new();
        for (level, segs) in segments.iter().enumerate() {
            for line in chain(segs) {
                let mut v = Vec::with_capacity(line.len() * 2 + 1);
                v.push(json!(level));
                let mut prev = (0, 0);
                for p in line {
                    v.push(json!(p.0 - prev.0));
                    v.push(json!(p.1 - prev.1));
                    prev = p;
                }
                out.push(Value::Array(v));
            }
        }
        out
    }

    /// The overview of the cells `sees` accepts (given grid, community,
    /// street, district ids): district, street and community boundaries, and
    /// the areas with label points.
    pub fn overview(
        &self,
        sees: &dyn Fn([Option<&str>; 4]) -> bool,
        name: &dyn Fn(usize, &str) -> Option<String>,
    ) -> Value {
        let shown: Vec<bool> = self.cells.iter().map(|c| sees(self.ids(c))).collect();
        let rows: Vec<u32> = (0..self.cells.len() as u32).filter(|&r| shown[r as usize]).collect();
        let mut used: [Vec<bool>; 4] = std::array::from_fn(|l| vec![false; self.areas[l].len()]);
        let mut bbox = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
        for &r in &rows {
            let c = &self.cells[r as usize];
            for l in 0..4 {
                used[l][c.area[l] as usize] = true;
            }
            bbox = (bbox.0.min(c.at.0), bbox.1.min(c.at.1), bbox.2.max(c.at.0), bbox.3.max(c.at.1));
        }
        let borders = self.borders(&rows, &|o| shown[o as usize], 2);
        let areas = |l: usize| -> Vec<Value> {
            self.areas[l]
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    if !used[l][i] {
                        return Value::Null;
                    }
                    let mut v = json!({"id": a.id, "at": [a.at.0, a.at.1], "cells": a.cells});
                    if l > 0 {
                        v["parent"] = json!(a.parent);
                    }
                    if let Some(n) = name(l, &a.id) {
                        v["name"] = json!(n);
                    }
                    v
                })
                .collect()
        };
        let bbox = if rows.is_empty() { Value::Null } else { json!([bbox.0, bbox.1, bbox.2, bbox.3]) };
        json!({
            "unit": UNIT, "origin": [self.origin.0, self.origin.1], "cells": rows.len(), "bbox": bbox,
            "levels": LEVELS, "districts": areas(0), "streets": areas(1), "communities": areas(2),
            "borders": borders, "max_view_cells": MAX_VIEW_CELLS,
        })
    }

    /// The visible cells whose centres lie in `bbox` (units from the origin:
    /// x0, y0, x1, y1), with grid boundaries there; or, over
    /// [`MAX_VIEW_CELLS`], only their count (`too_many`).
    pub fn view(
        &self,
        bbox: [i32; 4],
        sees: &dyn Fn([Option<&str>; 4]) -> bool,
        name: &dyn Fn(usize, &str) -> Option<String>,
    ) -> Value {
        let inside = |c: &CellRow| c.at.0 >= bbox[0] && c.at.0 <= bbox[2] && c.at.1 >= bbox[1] && c.at.1 <= bbox[3];
        let rows: Vec<u32> = (0..self.cells.len() as u32)
            .filter(|&r| inside(&self.cells[r as usize]) && sees(self.ids(&self.cells[r as usize])))
            .collect();
        if rows.len() > MAX_VIEW_CELLS {
            return json!({"too_many": rows.len(), "max_view_cells": MAX_VIEW_CELLS});
        }
        let mut flat = Vec::with_capacity(rows.len() * 4);
        let mut grids: HashMap<u32, Value> = HashMap::new();
        for &r in &rows {
            let c = &self.cells[r as usize];
            flat.extend([json!(c.at.0), json!(c.at.1), json!(c.area[2]), json!(c.area[3])]);
            grids.entry(c.area[3]).or_insert_with(|| {
                let g = &self.areas[3][c.area[3] as usize];
                let mut v = json!({"id": g.id, "at": [g.at.0, g.at.1]});
                if let Some(n) = name(3, &g.id) {
                    v["name"] = json!(n);
                }
                v
            });
        }
        let visible: Vec<bool> = {
            let mut v = vec![false; self.cells.len()];
            for &r in &rows {
                v[r as usize] = true;
            }
            v
        };
        let borders: Vec<Value> =
            self.borders(&rows, &|o| visible[o as usize], 3).into_iter().filter(|b| b[0] == json!(3)).collect();
        json!({
            "hex": self.hex.iter().flat_map(|p| [p.0, p.1]).collect::<Vec<_>>(),
            "cells": flat, "grids": grids.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>(),
            "borders": borders,
        })
    }
}

/// Joins segments that share end points into polylines.
fn chain(segs: &[(Pt, Pt)]) -> Vec<Vec<Pt>> {
    let mut at: HashMap<Pt, Vec<u32>> = HashMap::with_capacity(segs.len() * 2);
    for (i, (a, b)) in segs.iter().enumerate() {
        at.entry(*a).or_default().push(i as u32);
        at.entry(*b).or_default().push(i as u32);
    }
    let mut used = vec![false; segs.len()];
    let mut next = |p: Pt, used: &mut Vec<bool>| -> Option<Pt> {
        let list = at.get_mut(&p)?;
        while let Some(i) = list.pop() {
            if !used[i as usize] {
                used[i as usize] = true;
                let (a, b) = segs[i as usize];
                return Some(if a == p { b } else { a });
            }
        }
        None
    };
    let mut out = Vec::new();
    for i in 0..segs.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let (a, b) = segs[i];
        let mut forward = vec![a, b];
        while let Some(p) = next(*forward.last().unwrap_or(&b), &mut used) {
            forward.push(p);
        }
        let mut backward = Vec::new();
        let mut end = a;
        while let Some(p) = next(end, &mut used) {
            backward.push(p);
            end = p;
        }
        backward.reverse();
        backward.extend(forward);
        out.push(backward);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use citywatch_engine::jurisdiction::GridInfo;
    use h3o::Resolution;

    /// Two communities of one street each, side by side, in one district.
    fn city() -> Jurisdiction {
        let centre = LatLng::new(36.07, 120.38).unwrap().to_cell(Resolution::Seven);
        let mut cells = Vec::new();
        for (k, parent) in centre.grid_disk::<Vec<_>>(1).into_iter().take(2).enumerate() {
            for c in parent.children(Resolution::Nine) {
                let n = u64::from(c) % 7;
                cells.push((
                    c,
                    GridInfo {
                        grid: format!("g{k}-{n}"),
                        community: format!("c{k}"),
                        street: format!("s{k}"),
                        district: "d".into(),
                    },
                ));
            }
        }
        Jurisdiction::new(Resolution::Nine, cells, vec![])
    }

    #[test]
    fn overview_has_every_area_and_closed_outer_border() {
        let j = city();
        let g = GeoIndex::new(&j);
        assert_eq!(g.len(), 98);
        let v = g.overview(&|_| true, &|_, _| None);
        assert_eq!(v["communities"].as_array().unwrap().len(), 2);
        assert_eq!(v["cells"], 98);
        let borders = v["borders"].as_array().unwrap();
        let district: Vec<_> = borders.iter().filter(|b| b[0] == 0).collect();
        assert!(!district.is_empty());
        // The outer border of a connected set of cells is one closed ring.
        let ring = district[0].as_array().unwrap();
        let sum = |off: usize| ring[1..].iter().skip(off).step_by(2).map(|d| d.as_i64().unwrap()).sum::<i64>();
        let start = (ring[1].as_i64().unwrap(), ring[2].as_i64().unwrap());
        assert_eq!((sum(0), sum(1)), start, "a closed ring ends where it starts");
        assert!(borders.iter().any(|b| b[0] == 1), "the street boundary between the two communities");
    }

    #[test]
    fn scoped_overview_and_view_show_only_the_scope() {
        let j = city();
        let g = GeoIndex::new(&j);
        let only_c0 = |ids: [Option<&str>; 4]| ids[1] == Some("c0");
        let v = g.overview(&only_c0, &|_, _| None);
        assert_eq!(v["cells"], 49);
        assert_eq!(v["communities"].as_array().unwrap().iter().filter(|c| !c.is_null()).count(), 1);
        let all = [i32::MIN, i32::MIN, i32::MAX, i32::MAX];
        let view = g.view(all, &only_c0, &|_, _| None);
        assert_eq!(view["cells"].as_array().unwrap().len(), 49 * 4);
        assert_eq!(view["hex"].as_array().unwrap().len(), 12);
        assert!(!view["borders"].as_array().unwrap().is_empty(), "grid boundaries inside the community");
        let none = g.view([0, 0, -1, -1], &|_| true, &|_, _| None);
        assert_eq!(none["cells"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn chains_segments_into_one_line() {
        let segs = [((0, 0), (1, 0)), ((2, 0), (1, 0)), ((2, 0), (3, 0)), ((9, 9), (8, 8))];
        let mut lines = chain(&segs);
        lines.sort_by_key(|l| l.len());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].len(), 4);
    }
}
