//! Who answers for a surface cell: its community and the officer an alert
//! about it routes to, and the near-repeat watch (which burglaries raise an
//! alert) that both the dataflow and the evaluation run.
//!
//! Cells are registered the first time an alarm's kernel touches them; each
//! gets its community (the jurisdiction's grid of the cell) and its
//! **officer group**: the officer a `RouteLevel::Community` alert about the
//! cell goes to (or the community itself when nobody would take it). Alert
//! caps are per officer group and shift; in the dataflow an officer group is
//! owned by one worker (`hash(officer) % peers`), which ranks its
//! communities' cells and emits their alerts.

use std::collections::HashMap;
use std::sync::Arc;

use citywatch_engine::alert::RouteLevel;
use citywatch_engine::geo::Point;
use citywatch_engine::hash::{FastMap, spread};
use citywatch_engine::jurisdiction::Jurisdiction;
use h3o::CellIndex;

/// "No community": the cell lies outside the city's grids.
pub const NO_COMMUNITY: u32 = u32::MAX;

/// A community and the surface cells in it.
#[derive(Debug, Clone)]
pub struct Community {
    /// Community id.
    pub name: String,
    /// Index of its officer group.
    pub officer: u32,
    /// Registered cells, in registration order.
    pub cells: Vec<u64>,
    /// Shift index and hotspot alerts in it.
    pub hotspot_shift: (u64, u32),
}

/// An officer (or, without one, a community) that receives alerts.
#[derive(Debug, Clone)]
pub struct OfficerGroup {
    /// Officer id, or `community:<id>` when no officer takes the community's alerts.
    pub key: String,
    /// Communities whose alerts it receives.
    pub communities: Vec<u32>,
    /// The worker that owns it: `spread(fnv(key)) % peers`.
    pub owner: usize,
    /// Shift index and hotspot alerts in it.
    pub hotspot_shift: (u64, u32),
}

/// Cells -> communities -> officer groups.
#[derive(Debug, Clone)]
pub struct Places {
    jurisdiction: Arc<Jurisdiction>,
    peers: usize,
    cell_community: FastMap<u64, u32>,
    /// Communities, in registration order.
    pub communities: Vec<Community>,
    community_index: HashMap<String, u32>,
    /// Officer groups, in registration order.
    pub officers: Vec<OfficerGroup>,
    officer_index: HashMap<String, u32>,
}

/// The community and officer key of a cell, straight from the jurisdiction.
pub fn lookup(jurisdiction: &Jurisdiction, cell: u64) -> Option<(String, String)> {
    let c = CellIndex::try_from(cell).ok()?;
    let jres = jurisdiction.resolution();
    let grid_cell = if c.resolution() >= jres { c.parent(jres)? } else { Point::from(h3o::LatLng::from(c)).cell(jres) };
    let info = jurisdiction.grid_of_cell(grid_cell)?;
    let officer = jurisdiction
        .route(None, Some(cell), RouteLevel::Community)
        .assignee
        .unwrap_or_else(|| format!("community:{}", info.community));
    Some((info.community, officer))
}

impl Places {
    /// Empty, for a dataflow of `peers` workers.
    pub fn new(jurisdiction: Arc<Jurisdiction>, peers: usize) -> Places {
        Places {
            jurisdiction,
            peers: peers.max(1),
            cell_community: FastMap::default(),
            communities: Vec::new(),
            community_index: HashMap::new(),
            officers: Vec::new(),
            officer_index: HashMap::new(),
        }
    }

    /// The community of a cell, registering it on first sight.
    pub fn register(&mut self, cell: u64) -> u32 {
        if let Some(c) = self.cell_community.get(&cell) {
            return *c;
        }
        let community = match lookup(&self.jurisdiction, cell) {
            None => NO_COMMUNITY,
            Some((name, officer_key)) => {
                let oi = match self.officer_index.get(&officer_key) {
                    Some(i) => *i,
                    None => {
                        let i = self.officers.len() as u32;
                        let owner =
                            (spread(citywatch_engine::event::unit_token(&officer_key)) % self.peers as u64) as usize;
                        self.officers.push(OfficerGroup {
                            key: officer_key.clone(),
                            communities: Vec::new(),
                            owner,
                            hotspot_shift: (u64::MAX, 0),
                        });
                        self.officer_index.insert(officer_key, i);
                        i
                    }
                };
                let ci = match self.community_index.get(&name) {
                    Some(i) => *i,
                    None => {
                        let i = self.communities.len() as u32;
                        self.communities.push(Community {
                            name: name.clone(),
                            officer: oi,
                            cells: Vec::new(),
                            hotspot_shift: (u64::MAX, 0),
                        });
                        self.officers[oi as usize].communities.push(i);
                        self.community_index.insert(name, i);
                        i
                    }
                };
                self.communities[ci as usize].cells.push(cell);
                ci
            }
        };
        self.cell_community.insert(cell, community);
        community
    }

    /// The officer group of a registered cell's community.
    pub fn officer_of(&self, community: u32) -> Option<u32> {
        self.communities.get(community as usize).map(|c| c.officer)
    }
}

/// Which burglaries raise a `near_repeat` alert: once per area (no alert when
/// one raised within the window already covers the burglary's cell), at most
/// `cap` per officer group and shift. Fed burglaries in `(ts_ms, seq)` order.
#[derive(Debug, Clone)]
pub struct NearRepeatWatch {
    window_ms: u64,
    rings: u32,
    cap: u32,
    shift_ms: u64,
    shift_offset_ms: u64,
    /// Cell -> event time of the last near-repeat alert centred on it.
    last: FastMap<u64, u64>,
    /// Officer group -> (shift index, near-repeat alerts in it).
    counts: FastMap<u32, (u64, u32)>,
}

impl NearRepeatWatch {
    /// From the model's configuration.
    pub fn new(c: &crate::Config) -> NearRepeatWatch {
        NearRepeatWatch {
            window_ms: c.near_repeat_alert_window_ms,
            rings: c.near_repeat_rings,
            cap: c.max_near_repeat_alerts_per_shift,
            shift_ms: c.shift_ms,
            shift_offset_ms: c.shift_offset_ms,
            last: FastMap::default(),
            counts: FastMap::default(),
        }
    }

    /// A burglary at `ts_ms` in `cell` (disk: the surface's disk around it),
    /// for officer group `officer`: whether it raises an alert (and records it).
    pub fn on_burglary(&mut self, ts_ms: u64, cell: u64, disk: &[(u64, u32)], officer: u32) -> bool {
        let active = disk
            .iter()
            .filter(|(_, r)| *r <= self.rings)
            .any(|(n, _)| self.last.get(n).is_some_and(|t| ts_ms.saturating_sub(*t) < self.window_ms));
        if active {
            return false;
        }
        let shift = shift_index(ts_ms, self.shift_ms, self.shift_offset_ms);
        let e = self.counts.entry(officer).or_insert((shift, 0));
        if e.0 != shift {
            *e = (shift, 0);
        }
        if e.1 >= self.cap {
            return false;
        }
        e.1 += 1;
        self.last.insert(cell, ts_ms);
        true
    }
}

/// The shift an event time falls in.
pub fn shift_index(ts_ms: u64, shift_ms: u64, offset_ms: u64) -> u64 {
    (ts_ms + shift_ms - offset_ms % shift_ms) / shift_ms
}
