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
//! **Time.** Grids and officers change while the city runs: a cell is
//! reassigned to another grid, officers work shifts and hand over. Every row
//! may carry a `valid_from_ms` (see "Reference data that changes" in
//! `docs/input-contract.md`), and an alert is routed with the grids and the
//! roster in force at its event time ([`Jurisdiction::route_at`]): an alert
//! raised at 07:59 goes to the night shift, one at 08:01 to the day shift,
//! and a replay routes history as it was routed live. An escalation keeps
//! the place the alert was raised in and goes to whoever is on duty when it
//! escalates ([`Jurisdiction::route_with`]).
//!
//! A dataset with no grids file gets the default: H3 resolution-7 cells
//! (~5 km²) as grids, each its own community, with the resolution-6 parent as
//! street and the resolution-5 parent as district (see `docs/input-contract.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use h3o::{CellIndex, Resolution};

use crate::alert::RouteLevel;
use crate::contract::{ALWAYS, Role};
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// One row of the officers table with its time: from `from_ms` on (see
/// [`crate::contract::VALID_FROM`]), `officer` holds the post `(role, scope)`
/// (`on_duty`) or has left it (`!on_duty`). A row without a date is in force
/// for all time ([`ALWAYS`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RosterRow {
    /// From when the row is in force (ms since the epoch, event time).
    pub from_ms: i64,
    /// The officer and the post.
    pub officer: Officer,
    /// Whether the officer takes the post (`on_duty`) or leaves it.
    pub on_duty: bool,
}

impl RosterRow {
    /// A post held for all time (a row of an officers table without dates).
    pub fn always(officer: Officer) -> Self {
        RosterRow { from_ms: ALWAYS, officer, on_duty: true }
    }
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

/// Who holds each post when: the officers table's rows, versioned.
#[derive(Debug, Default)]
struct Roster {
    /// One entry per officer and post ever held (the latest row's name), sorted by id.
    officers: Vec<Officer>,
    /// Each post's rows by officer: (officer_id, role, scope) -> (from_ms, on_duty), by time.
    posts: BTreeMap<(String, Role, String), Vec<(i64, bool)>>,
    /// (role, scope) -> who answers from when: the smallest `officer_id` on
    /// duty at that post (for determinism), or nobody.
    duty: HashMap<(Role, String), Timeline>,
    /// (role, scope) -> the smallest `officer_id` ever on duty at that post.
    post_holder: HashMap<(Role, String), String>,
}

/// Who holds a post from when (`None`: nobody), by time.
type Timeline = Vec<(i64, Option<String>)>;

/// An officer and their rows at one post: `(officer_id, (from_ms, on_duty) by time)`.
type Holder<'a> = (&'a String, &'a Vec<(i64, bool)>);

impl Roster {
    fn new(rows: Vec<RosterRow>) -> Self {
        let mut r = Roster::default();
        r.post(rows);
        r
    }

    /// Adds rows (in file or arrival order: of two rows for one post and
    /// time the later wins) and recomputes the posts they touch.
    fn post(&mut self, rows: Vec<RosterRow>) {
        let mut touched = BTreeSet::new();
        for row in rows {
            let o = row.officer;
            match self
                .officers
                .binary_search_by(|x| (&x.officer_id, x.role, &x.scope).cmp(&(&o.officer_id, o.role, &o.scope)))
            {
                Ok(i) => self.officers[i].name = o.name.clone(),
                Err(i) => self.officers.insert(i, o.clone()),
            }
            let v = self.posts.entry((o.officer_id, o.role, o.scope.clone())).or_default();
            let at = v.partition_point(|&(f, _)| f <= row.from_ms);
            if at > 0 && v[at - 1].0 == row.from_ms {
                v[at - 1].1 = row.on_duty;
            } else {
                v.insert(at, (row.from_ms, row.on_duty));
            }
            touched.insert((o.role, o.scope));
        }
        // The touched posts' holders in one pass over every post (one pass per
        // post made loading a roster quadratic), each in officer_id order.
        let mut holders_of: HashMap<(Role, &str), Vec<Holder<'_>>> =
            touched.iter().map(|(r, s)| ((*r, s.as_str()), Vec::new())).collect();
        for ((id, r, s), v) in &self.posts {
            if let Some(h) = holders_of.get_mut(&(*r, s.as_str())) {
                h.push((id, v));
            }
        }
        // Each post's timeline depends on its own holders alone: any order.
        for ((role, scope), holders) in holders_of {
            let scope = scope.to_owned();
            let mut times: Vec<i64> = holders.iter().flat_map(|(_, v)| v.iter().map(|&(f, _)| f)).collect();
            times.sort_unstable();
            times.dedup();
            match holders.iter().find(|(_, v)| v.iter().any(|&(_, on)| on)) {
                Some((id, _)) => self.post_holder.insert((role, scope.clone()), (*id).clone()),
                None => self.post_holder.remove(&(role, scope.clone())),
            };
            let mut line: Vec<(i64, Option<String>)> = Vec::new();
            for t in times {
                // `holders` is in officer_id order: the first on duty is the smallest.
                let who = holders.iter().find(|(_, v)| as_of(v, t) == Some(true)).map(|(id, _)| (*id).clone());
                if line.last().is_none_or(|(_, w)| *w != who) {
                    line.push((t, who));
                }
            }
            self.duty.insert((role, scope), line);
        }
    }

    /// Who is on duty at `(role, scope)` at `at`; with `None`, who holds
    /// the post at any time (the smallest id).
    fn on_duty(&self, role: Role, scope: &str, at: Option<i64>) -> Option<String> {
        let key = (role, scope.to_owned());
        match at {
            Some(at) => as_of(self.duty.get(&key)?, at).flatten(),
            None => self.post_holder.get(&key).cloned(),
        }
    }
}

/// The version in force at `at` of versions sorted by time: `None` before the first.
fn as_of<T: Clone>(versions: &[(i64, T)], at: i64) -> Option<T> {
    let i = versions.partition_point(|(from, _)| *from <= at);
    i.checked_sub(1).map(|i| versions[i].1.clone())
}

/// Grids and officers, ready to route, with every version of their rows:
/// routing is "as of" an event time ([`Jurisdiction::route_at`]).
///
/// Clones share the roster: officers posted live ([`Jurisdiction::post`])
/// are seen by every clone (the workers' and the service's).
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    resolution: Resolution,
    /// Cell -> index into `grids`: each cell's first grid. Empty for the default grid.
    cells: HashMap<CellIndex, u32>,
    /// The grids of cells with dated rows (reassigned during the data), by time;
    /// empty when no row is dated.
    cell_versions: HashMap<CellIndex, Vec<(i64, u32)>>,
    grids: Vec<GridInfo>,
    /// [`crate::event::stable_key`] of each grid's community id, by grid index.
    community_keys: Vec<u64>,
    roster: Arc<RwLock<Roster>>,
    default_grid: bool,
    names: AreaNames,
    /// Who gets an alert that no officer's scope covers (the `fallback_officer` setting).
    fallback: Option<String>,
}

impl Jurisdiction {
    /// The default jurisdiction: coarse H3 cells as grids, and the given officers.
    pub fn default_grid(officers: Vec<Officer>) -> Self {
        Self::default_grid_roster(officers.into_iter().map(RosterRow::always).collect())
    }

    /// The default jurisdiction with a versioned roster.
    pub fn default_grid_roster(roster: Vec<RosterRow>) -> Self {
        Jurisdiction {
            resolution: DEFAULT_GRID_RESOLUTION,
            cells: HashMap::new(),
            cell_versions: HashMap::new(),
            grids: Vec::new(),
            community_keys: Vec::new(),
            roster: Arc::new(RwLock::new(Roster::new(roster))),
            default_grid: true,
            names: AreaNames::default(),
            fallback: None,
        }
    }

    /// A jurisdiction from grid rows `(cell, info)` (all at `resolution`) and officers.
    /// The caller (the reader) has checked that each cell appears once.
    pub fn new(resolution: Resolution, cells: Vec<(CellIndex, GridInfo)>, officers: Vec<Officer>) -> Self {
        Self::versioned(
            resolution,
            cells.into_iter().map(|(c, g)| (c, ALWAYS, g)).collect(),
            officers.into_iter().map(RosterRow::always).collect(),
        )
    }

    /// A jurisdiction from dated grid rows `(cell, from_ms, info)` (all at
    /// `resolution`; [`ALWAYS`] for an undated row) and roster rows. The
    /// caller (the reader) has checked that a cell has one grid at a time.
    pub fn versioned(resolution: Resolution, cells: Vec<(CellIndex, i64, GridInfo)>, roster: Vec<RosterRow>) -> Self {
        let mut grid_index: HashMap<String, u32> = HashMap::new();
        let mut grids = Vec::new();
        let mut by_cell: HashMap<CellIndex, Vec<(i64, u32)>> = HashMap::with_capacity(cells.len());
        for (cell, from, info) in cells {
            let idx = *grid_index.entry(info.grid.clone()).or_insert_with(|| {
                grids.push(info.clone());
                (grids.len() - 1) as u32
            });
            by_cell.entry(cell).or_default().push((from, idx));
        }
        let mut map = HashMap::with_capacity(by_cell.len());
        let mut cell_versions = HashMap::new();
        for (cell, mut v) in by_cell {
            // Stable: of two rows from one time, the later (in file order) wins.
            v.sort_by_key(|&(from, _)| from);
            v.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = later.1;
                }
                same
            });
            map.insert(cell, v[0].1);
            if v.len() > 1 || v[0].0 != ALWAYS {
                cell_versions.insert(cell, v);
            }
        }
        let community_keys = grids.iter().map(|g| crate::event::stable_key(&g.community)).collect();
        Jurisdiction {
            resolution,
            cells: map,
            cell_versions,
            grids,
            community_keys,
            roster: Arc::new(RwLock::new(Roster::new(roster))),
            default_grid: false,
            names: AreaNames::default(),
            fallback: None,
        }
    }

    /// Adds roster rows while the service runs (a hand-over, a new officer,
    /// one leaving a post): routing at or after each row's `from_ms` sees it.
    /// Every clone of this jurisdiction sees them. The caller (the live
    /// engine) makes sure nothing has been routed at or after `from_ms` yet.
    pub fn post(&self, rows: Vec<RosterRow>) {
        self.roster.write().expect("roster lock").post(rows);
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

    /// The officer with this id, if any (one of their posts, when they have several).
    pub fn officer(&self, officer_id: &str) -> Option<Officer> {
        let r = self.roster.read().expect("roster lock");
        let i = r.officers.partition_point(|o| o.officer_id.as_str() < officer_id);
        r.officers.get(i).filter(|o| o.officer_id == officer_id).cloned()
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

    /// All officers and their posts (one entry per officer and post ever
    /// held, whether on duty now or not), sorted by id.
    pub fn officers(&self) -> Vec<Officer> {
        self.roster.read().expect("roster lock").officers.clone()
    }

    /// Whether any grid row is dated (cells reassigned during the data).
    pub fn grids_change(&self) -> bool {
        !self.cell_versions.is_empty()
    }

    /// The cells of the city's grids, each with its first grid (empty for the default grid).
    pub fn cells(&self) -> impl Iterator<Item = (CellIndex, &GridInfo)> {
        self.cells.iter().map(|(c, i)| (*c, &self.grids[*i as usize]))
    }

    /// The grid hierarchy of a cell at the grids' resolution (its first grid;
    /// [`Jurisdiction::grid_of_cell_at`] for the grid in force at a time).
    pub fn grid_of_cell(&self, cell: CellIndex) -> Option<GridInfo> {
        self.grid_of_cell_at(cell, None)
    }

    /// The grid hierarchy of a cell in force at `at` (event time, ms), or its
    /// first grid when `at` is `None`.
    pub fn grid_of_cell_at(&self, cell: CellIndex, at: Option<i64>) -> Option<GridInfo> {
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
        self.grid_index(cell, at).map(|i| self.grids[i as usize].clone())
    }

    fn grid_index(&self, cell: CellIndex, at: Option<i64>) -> Option<u32> {
        match (at, self.cell_versions.get(&cell)) {
            (Some(at), Some(v)) => as_of(v, at),
            _ => self.cells.get(&cell).copied(),
        }
    }

    /// The community a point lies in, as the [`crate::event::stable_key`] of
    /// its id: for exchanging and keying state by community without
    /// allocating on a city with a grids table (`grid_of_cell` clones four
    /// strings; the default grid formats the cell). `None` outside the
    /// city's grids. [`Jurisdiction::community_id`] gives the id itself.
    /// Each cell's first grid (models key their state by place, not by time).
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
    /// Each cell's first grid, as [`Jurisdiction::community_of`].
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

    /// Routes a place, not an alert: each cell's first grid and, for each
    /// post, the smallest id of the officers who ever hold it (the post's
    /// usual id, whatever the shift). For grouping places by post (the map,
    /// risk_hotspot's officer groups); an alert is routed as of its time with
    /// [`Jurisdiction::route_at`]. Without dated rows, the same as `route_at`.
    pub fn route(&self, pos: Option<Point>, cell: Option<u64>, level: RouteLevel) -> Route {
        self.route_times(pos, cell, level, None, None)
    }

    /// Routes an alert raised at `at_ms` (event time) with the grids and the
    /// roster in force then: the officer on duty when it was raised.
    pub fn route_at(&self, pos: Option<Point>, cell: Option<u64>, level: RouteLevel, at_ms: i64) -> Route {
        self.route_times(pos, cell, level, Some(at_ms), Some(at_ms))
    }

    /// Routes with the grids in force at `grids_at` and the roster in force
    /// at `roster_at`: an escalation keeps the place its alert was raised in
    /// and goes to whoever is on duty when it escalates.
    pub fn route_with(
        &self,
        pos: Option<Point>,
        cell: Option<u64>,
        level: RouteLevel,
        grids_at: i64,
        roster_at: i64,
    ) -> Route {
        self.route_times(pos, cell, level, Some(grids_at), Some(roster_at))
    }

    fn route_times(
        &self,
        pos: Option<Point>,
        cell: Option<u64>,
        level: RouteLevel,
        grids_at: Option<i64>,
        roster_at: Option<i64>,
    ) -> Route {
        let about = cell.and_then(|c| CellIndex::try_from(c).ok());
        let grid_cell = match (about, pos) {
            (Some(c), _) if c.resolution() == self.resolution => Some(c),
            (Some(c), _) if c.resolution() > self.resolution => c.parent(self.resolution),
            (Some(c), _) => Some(Point::from(h3o::LatLng::from(c)).cell(self.resolution)),
            (None, Some(p)) => Some(self.cell_of(p)),
            (None, None) => None,
        };
        let info = grid_cell.and_then(|c| self.grid_of_cell_at(c, grids_at));
        let assignee = self.assignee(info.as_ref(), level, roster_at);
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

    fn assignee(&self, info: Option<&GridInfo>, level: RouteLevel, at: Option<i64>) -> Option<String> {
        let roster = self.roster.read().expect("roster lock");
        let find = |role: Role, scope: &str| roster.on_duty(role, scope, at);
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

    const H: i64 = 3_600_000;

    fn row(from_ms: i64, id: &str, role: Role, scope: &str, on_duty: bool) -> RosterRow {
        RosterRow { from_ms, officer: officer(id, role, scope), on_duty }
    }

    /// Night and day community officers of c1 handing over at 08:00, night
    /// and day station officers of s1 likewise, and a district officer all day.
    fn shifts() -> (Jurisdiction, Point) {
        let p = Point::from_degrees(36.0671, 120.3826).unwrap();
        let info = GridInfo { grid: "g1".into(), community: "c1".into(), street: "s1".into(), district: "d1".into() };
        let roster = vec![
            row(0, "n-comm", Role::Community, "c1", true),
            row(8 * H, "n-comm", Role::Community, "c1", false),
            row(8 * H, "d-comm", Role::Community, "c1", true),
            row(0, "n-stat", Role::Station, "s1", true),
            row(8 * H, "n-stat", Role::Station, "s1", false),
            row(8 * H, "d-stat", Role::Station, "s1", true),
            row(ALWAYS, "dist", Role::District, "d1", true),
        ];
        (Jurisdiction::versioned(Resolution::Nine, vec![(p.cell(Resolution::Nine), ALWAYS, info)], roster), p)
    }

    #[test]
    fn an_alert_goes_to_the_officer_on_duty_at_its_time() {
        let (j, p) = shifts();
        let at = |ms: i64, level| j.route_at(Some(p), None, level, ms).assignee;
        assert_eq!(at(8 * H - 60_000, RouteLevel::Community).as_deref(), Some("n-comm"), "07:59: night");
        assert_eq!(at(8 * H, RouteLevel::Community).as_deref(), Some("d-comm"), "08:00: day");
        assert_eq!(at(8 * H + 60_000, RouteLevel::Community).as_deref(), Some("d-comm"), "08:01: day");
        assert_eq!(at(-1, RouteLevel::Community).as_deref(), Some("dist"), "before any shift: up to the district");
        // Escalation: the place as raised (07:59), the station on duty at 08:05.
        let esc = j.route_with(Some(p), None, RouteLevel::Station, 8 * H - 60_000, 8 * H + 300_000);
        assert_eq!(esc.assignee.as_deref(), Some("d-stat"));
        assert_eq!(
            j.route_with(Some(p), None, RouteLevel::Station, 8 * H - 60_000, 8 * H - 30_000).assignee.as_deref(),
            Some("n-stat")
        );
        // A hand-over sent live reaches every clone, from its time on.
        let clone = j.clone();
        j.post(vec![
            row(16 * H, "d-comm", Role::Community, "c1", false),
            row(16 * H, "e-comm", Role::Community, "c1", true),
        ]);
        assert_eq!(clone.route_at(Some(p), None, RouteLevel::Community, 16 * H).assignee.as_deref(), Some("e-comm"));
        assert_eq!(
            clone.route_at(Some(p), None, RouteLevel::Community, 16 * H - 1).assignee.as_deref(),
            Some("d-comm")
        );
        assert_eq!(j.officers().len(), 6, "one entry per officer and post");
        // Places group by post, whatever the shift: the smallest id ever on it.
        assert_eq!(j.route(Some(p), None, RouteLevel::Community).assignee.as_deref(), Some("d-comm"));
        assert_eq!(j.officer("n-comm").map(|o| o.role), Some(Role::Community));
    }

    #[test]
    fn a_reassigned_cell_routes_by_the_grid_in_force() {
        let p = Point::from_degrees(36.0671, 120.3826).unwrap();
        let c = p.cell(Resolution::Nine);
        let g = |n: &str| GridInfo {
            grid: n.into(),
            community: format!("c-{n}"),
            street: "s".into(),
            district: "d".into(),
        };
        let j = Jurisdiction::versioned(
            Resolution::Nine,
            vec![(c, ALWAYS, g("g1")), (c, 10 * H, g("g2"))],
            vec![
                RosterRow::always(officer("o1", Role::Community, "c-g1")),
                RosterRow::always(officer("o2", Role::Community, "c-g2")),
            ],
        );
        assert!(j.grids_change());
        let r = |at| j.route_at(Some(p), None, RouteLevel::Community, at);
        assert_eq!((r(10 * H - 1).grid.as_deref(), r(10 * H - 1).assignee.as_deref()), (Some("g1"), Some("o1")));
        assert_eq!((r(10 * H).grid.as_deref(), r(10 * H).assignee.as_deref()), (Some("g2"), Some("o2")));
        assert_eq!(j.grid_of_cell(c).map(|g| g.grid).as_deref(), Some("g1"), "undated lookups: the first grid");
        assert_eq!(j.community_id(p).as_deref(), Some("c-g1"));
        // A cell first assigned during the data is outside the grids before.
        let j = Jurisdiction::versioned(Resolution::Nine, vec![(c, 5 * H, g("g1"))], vec![]);
        assert_eq!(j.route_at(Some(p), None, RouteLevel::Community, 5 * H - 1).grid, None);
        assert_eq!(j.route_at(Some(p), None, RouteLevel::Community, 5 * H).grid.as_deref(), Some("g1"));
    }

    #[test]
    fn scopes() {
        assert!(scope_covers("city", None, None, None, None));
        assert!(scope_covers("c1", Some("g1"), Some("c1"), Some("s1"), Some("d1")));
        assert!(!scope_covers("c2", Some("g1"), Some("c1"), Some("s1"), Some("d1")));
    }
}
