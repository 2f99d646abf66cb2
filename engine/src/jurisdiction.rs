//! Who answers for a place: the grids table (H3 cell -> grid -> community ->
//! street -> district) and the officers table (role + scope), and routing an
//! alert to the responsible officer.
//!
//! Routing: the alert's position gives an H3 cell at the grids' resolution,
//! the cell its grid, the grid its community, street and district. The
//! alert's [`RouteLevel`] picks the officer: a community officer whose scope is
//! the grid or the community; a station whose scope is the street; a district
//! command whose scope is the district; an analyst for the city. When a level
//! has no officer the alert goes one level up, so it is never unassigned while
//! anyone above could take it. Ties (two officers with the same scope) go to
//! the smallest `officer_id`, so routing is deterministic. An alert that no
//! level covers (no analyst either) goes to the configured fallback officer
//! ([`Jurisdiction::set_fallback`], the config's `fallback_officer`), if any.
//!
//! A dataset with no grids file gets the default: H3 resolution-7 cells
//! (~5 km²) as grids, each its own community, with the resolution-6 parent as
//! street and the resolution-5 parent as district (see `docs/input-contract.md`).

use std::collections::HashMap;

use h3o::{CellIndex, Resolution};

use crate::alert::RouteLevel;
use crate::contract::Role;
use crate::geo::Point;

/// Resolution of the default grid's cells.
pub const DEFAULT_GRID_RESOLUTION: Resolution = Resolution::Seven;

/// A grid and its place in the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridInfo {
    /// Grid id.
    pub grid: String,
    /// Community id.
    pub community: String,
    /// Street id.
    pub street: String,
    /// District id.
    pub district: String,
}

/// Optional human-readable names of the areas (the grids table's
/// `grid_name`, `community_name`, `street_name`, `district_name` columns),
/// per level, by id. Ids stay the keys everywhere; names are for people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaNames {
    /// Grid id -> name.
    pub grid: HashMap<String, String>,
    /// Community id -> name.
    pub community: HashMap<String, String>,
    /// Street id -> name.
    pub street: HashMap<String, String>,
    /// District id -> name.
    pub district: HashMap<String, String>,
}

impl AreaNames {
    /// Whether no area has a name.
    pub fn is_empty(&self) -> bool {
        self.grid.is_empty() && self.community.is_empty() && self.street.is_empty() && self.district.is_empty()
    }
}

/// One row of the officers table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Officer {
    /// Unique id.
    pub officer_id: String,
    /// Display name.
    pub name: String,
    /// Role in the hierarchy.
    pub role: Role,
    /// A grid, community, street or district id, or `city`.
    pub scope: String,
}

/// Where an alert lands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// H3 cell, hex.
    pub cell: Option<String>,
    /// The grid and its hierarchy, when the place is inside the city's grids.
    pub grid: Option<String>,
    /// Community id.
    pub community: Option<String>,
    /// Street id.
    pub street: Option<String>,
    /// District id.
    pub district: Option<String>,
    /// The responsible officer.
    pub assignee: Option<String>,
}

/// Grids and officers, ready to route.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    resolution: Resolution,
    /// Cell -> index into `grids`. Empty for the default grid.
    cells: HashMap<CellIndex, u32>,
    grids: Vec<GridInfo>,
    /// [`crate::event::stable_key`] of each grid's community id, by grid index.
    community_keys: Vec<u64>,
    officers: Vec<Officer>,
    /// (role, scope) -> officer_id (the smallest, for determinism).
    by_scope: HashMap<(Role, String), String>,
    default_grid: bool,
    names: AreaNames,
    /// Who gets an alert that no officer's scope covers (the `fallback_officer` setting).
    fallback: Option<String>,
}

impl Jurisdiction {
    /// The default jurisdiction: coarse H3 cells as grids, and the given officers.
    pub fn default_grid(officers: Vec<Officer>) -> Self {
        let mut j = Jurisdiction {
            resolution: DEFAULT_GRID_RESOLUTION,
            cells: HashMap::new(),
            grids: Vec::new(),
            community_keys: Vec::new(),
            officers: Vec::new(),
            by_scope: HashMap::new(),
            default_grid: true,
            names: AreaNames::default(),
            fallback: None,
        };
        j.set_officers(officers);
        j
    }

    /// A jurisdiction from grid rows `(cell, info)` (all at `resolution`) and officers.
    /// The caller (the reader) has checked that each cell appears once.
    pub fn new(resolution: Resolution, cells: Vec<(CellIndex, GridInfo)>, officers: Vec<Officer>) -> Self {
        let mut grid_index: HashMap<String, u32> = HashMap::new();
        let mut grids = Vec::new();
        let mut map = HashMap::with_capacity(cells.len());
        for (cell, info) in cells {
            let idx = *grid_index.entry(info.grid.clone()).or_insert_with(|| {
                grids.push(info.clone());
                (grids.len() - 1) as u32
            });
            map.insert(cell, idx);
        }
        let community_keys = grids.iter().map(|g| crate::event::stable_key(&g.community)).collect();
        let mut j = Jurisdiction {
            resolution,
            cells: map,
            grids,
            community_keys,
            officers: Vec::new(),
            by_scope: HashMap::new(),
            default_grid: false,
            names: AreaNames::default(),
            fallback: None,
        };
        j.set_officers(officers);
        j
    }

    fn set_officers(&mut self, mut officers: Vec<Officer>) {
        officers.sort_by(|a, b| a.officer_id.cmp(&b.officer_id));
        for o in &officers {
            self.by_scope.entry((o.role, o.scope.clone())).or_insert_with(|| o.officer_id.clone());
        }
        self.officers = officers;
    }

    /// The same jurisdiction with these area names.
    pub fn with_names(mut self, names: AreaNames) -> Self {
        self.names = names;
        self
    }

    /// The area names (empty when the grids table has none).
    pub fn names(&self) -> &AreaNames {
        &self.names
    }

    /// The officer with this id, if any.
    pub fn officer(&self, officer_id: &str) -> Option<&Officer> {
        self.officers.binary_search_by(|o| o.officer_id.as_str().cmp(officer_id)).ok().map(|i| &self.officers[i])
    }

    /// Sends alerts that no officer's scope covers (not even a city analyst's) to
    /// `officer` instead of leaving them unassigned.
    pub fn set_fallback(&mut self, officer: Option<String>) {
        self.fallback = officer;
    }

    /// The resolution of the grid cells.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Whether this is the default (no grids file) jurisdiction.
    pub fn is_default_grid(&self) -> bool {
        self.default_grid
    }

    /// All officers, sorted by id.
    pub fn officers(&self) -> &[Officer] {
        &self.officers
    }

    /// The cells of the city's grids (empty for the default grid).
    pub fn cells(&self) -> impl Iterator<Item = (CellIndex, &GridInfo)> {
        self.cells.iter().map(|(c, i)| (*c, &self.grids[*i as usize]))
    }

    /// The grid hierarchy of a cell at the grids' resolution.
    pub fn grid_of_cell(&self, cell: CellIndex) -> Option<GridInfo> {
        if self.default_grid {
            let parent = |r: Resolution| cell.parent(r).map(|c| c.to_string());
            let grid = cell.to_string();
            return Some(GridInfo {
                grid: grid.clone(),
                community: grid,
                street: parent(Resolution::Six)?,
                district: parent(Resolution::Five)?,
            });
        }
        self.cells.get(&cell).map(|i| self.grids[*i as usize].clone())
    }

    /// The community a point lies in, as the [`crate::event::stable_key`] of
    /// its id: for exchanging and keying state by community without
    /// allocating on a city with a grids table (`grid_of_cell` clones four
    /// strings; the default grid formats the cell). `None` outside the
    /// city's grids. [`Jurisdiction::community_id`] gives the id itself.
    pub fn community_of(&self, pos: Point) -> Option<u64> {
        let cell = self.cell_of(pos);
        if self.default_grid {
            // The default grid's community is the cell itself.
            return Some(crate::event::stable_key(&cell.to_string()));
        }
        self.cells.get(&cell).map(|i| self.community_keys[*i as usize])
    }

    /// The id of the community a point lies in (borrowed from the grids
    /// table; the cell's hex for the default grid). `None` outside the grids.
    pub fn community_id(&self, pos: Point) -> Option<std::borrow::Cow<'_, str>> {
        let cell = self.cell_of(pos);
        if self.default_grid {
            return Some(std::borrow::Cow::Owned(cell.to_string()));
        }
        self.cells.get(&cell).map(|i| std::borrow::Cow::Borrowed(self.grids[*i as usize].community.as_str()))
    }

    /// The grid cell (at the grids' resolution) of a point.
    pub fn cell_of(&self, pos: Point) -> CellIndex {
        pos.cell(self.resolution)
    }

    /// Routes an alert at `pos` (or about `cell`) to the officer at `level`.
    pub fn route(&self, pos: Option<Point>, cell: Option<u64>, level: RouteLevel) -> Route {
        let about = cell.and_then(|c| CellIndex::try_from(c).ok());
        let grid_cell = match (about, pos) {
            (Some(c), _) if c.resolution() == self.resolution => Some(c),
            (Some(c), _) if c.resolution() > self.resolution => c.parent(self.resolution),
            (Some(c), _) => Some(Point::from(h3o::LatLng::from(c)).cell(self.resolution)),
            (None, Some(p)) => Some(self.cell_of(p)),
            (None, None) => None,
        };
        let info = grid_cell.and_then(|c| self.grid_of_cell(c));
        let assignee = self.assignee(info.as_ref(), level);
        let shown_cell = about.or(grid_cell).map(|c| c.to_string());
        match info {
            Some(g) => Route {
                cell: shown_cell,
                grid: Some(g.grid),
                community: Some(g.community),
                street: Some(g.street),
                district: Some(g.district),
                assignee,
            },
            None => Route { cell: shown_cell, assignee, ..Route::default() },
        }
    }

    fn assignee(&self, info: Option<&GridInfo>, level: RouteLevel) -> Option<String> {
        let find = |role: Role, scope: &str| self.by_scope.get(&(role, scope.to_owned())).cloned();
        let levels = [RouteLevel::Community, RouteLevel::Station, RouteLevel::District, RouteLevel::City];
        let start = levels.iter().position(|l| *l == level).unwrap_or(0);
        for l in &levels[start..] {
            let found = match (l, info) {
                (RouteLevel::Community, Some(g)) => {
                    find(Role::Community, &g.grid).or_else(|| find(Role::Community, &g.community))
                }
                (RouteLevel::Station, Some(g)) => find(Role::Station, &g.street),
                (RouteLevel::District, Some(g)) => find(Role::District, &g.district),
                (RouteLevel::City, _) => find(Role::Analyst, "city"),
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        self.fallback.clone()
    }
}

/// Whether an officer with `scope` may see an alert placed at these ids:
/// `city` sees everything; otherwise the scope must be the alert's grid,
/// community, street or district.
pub fn scope_covers(
    scope: &str,
    grid: Option<&str>,
    community: Option<&str>,
    street: Option<&str>,
    district: Option<&str>,
) -> bool {
    scope == "city" || [grid, community, street, district].into_iter().flatten().any(|id| id == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer(id: &str, role: Role, scope: &str) -> Officer {
        Officer { officer_id: id.into(), name: id.into(), role, scope: scope.into() }
    }

    fn city() -> (Jurisdiction, Point) {
        let p = Point::from_degrees(36.0671, 120.3826).unwrap();
        let cell = p.cell(Resolution::Nine);
        let info = GridInfo { grid: "g1".into(), community: "c1".into(), street: "s1".into(), district: "d1".into() };
        let officers = vec![
            officer("o-comm-b", Role::Community, "c1"),
            officer("o-comm-a", Role::Community, "c1"),
            officer("o-dist", Role::District, "d1"),
            officer("o-an", Role::Analyst, "city"),
        ];
        (Jurisdiction::new(Resolution::Nine, vec![(cell, info)], officers), p)
    }

    #[test]
    fn routes_to_level_and_falls_back_up() {
        let (j, p) = city();
        let r = j.route(Some(p), None, RouteLevel::Community);
        assert_eq!(r.grid.as_deref(), Some("g1"));
        assert_eq!(r.assignee.as_deref(), Some("o-comm-a"), "smallest id wins ties");
        let r = j.route(Some(p), None, RouteLevel::Station);
        assert_eq!(r.assignee.as_deref(), Some("o-dist"), "no station: goes up to the district");
        let r = j.route(None, None, RouteLevel::Community);
        assert_eq!(r.assignee.as_deref(), Some("o-an"), "no place: the city analysts");
        let far = Point::from_degrees(0.0, 0.0).unwrap();
        assert_eq!(j.route(Some(far), None, RouteLevel::Community).grid, None);
    }

    #[test]
    fn community_key_and_id_agree_with_the_route() {
        let (j, p) = city();
        assert_eq!(j.community_id(p).as_deref(), Some("c1"));
        assert_eq!(j.community_of(p), Some(crate::event::stable_key("c1")));
        let far = Point::from_degrees(0.0, 0.0).unwrap();
        assert_eq!((j.community_of(far), j.community_id(far)), (None, None));
        let d = Jurisdiction::default_grid(vec![]);
        let route = d.route(Some(p), None, RouteLevel::Community);
        assert_eq!(d.community_id(p).as_deref(), route.community.as_deref());
        assert_eq!(d.community_of(p), route.community.as_deref().map(crate::event::stable_key));
    }

    #[test]
    fn default_grid_has_hierarchy() {
        let j = Jurisdiction::default_grid(vec![]);
        let p = Point::from_degrees(43.65, -79.38).unwrap();
        let r = j.route(Some(p), None, RouteLevel::Community);
        assert_eq!(r.grid, r.community);
        assert!(r.street.is_some() && r.district.is_some());
        assert_eq!(r.assignee, None, "no officers at all: nobody");
        let mut j = j;
        j.set_fallback(Some("o-duty".to_owned()));
        assert_eq!(j.route(Some(p), None, RouteLevel::Community).assignee.as_deref(), Some("o-duty"));
    }

    #[test]
    fn scopes() {
        assert!(scope_covers("city", None, None, None, None));
        assert!(scope_covers("c1", Some("g1"), Some("c1"), Some("s1"), Some("d1")));
        assert!(!scope_covers("c2", Some("g1"), Some("c1"), Some("s1"), Some("d1")));
    }
}
