//! Are the hotspot *alerts* worth a patrol? The surface's ranking is scored
//! by [`crate::eval`]; the budget then picks which ranked cells become
//! alerts (at most one per community per shift, a few per hour city-wide).
//! This scores what an officer actually receives.
//!
//! For each `hotspot` alert raised at `t` for cell `x` of community `c`
//! (scored alerts: `t` in the evaluation's scored period), a **hit** is a
//! scored incident in `x` within `[t, t + window)` (the shift the alert is
//! for, 8 h by default). Beside the model, two simple choices the same
//! officer could have made at the same moment, in the same community:
//! - `naive_365d`: the community's cell with the most scored incidents in
//!   the 365 days before `t` (ties share the expected value: the share of the
//!   tied cells that hit);
//! - `random`: a cell of the community drawn at random (expected value: the
//!   share of its cells that hit).
//!
//! A community's cells are the cells (at the alerts' resolution) that had a
//! scored incident anywhere in the data and lie in the community (as
//! [`Jurisdiction::community_id`] places them), the same notion of "area" as
//! the ranking's evaluation. Alerts without a community or cell are counted
//! and skipped.

use std::collections::BTreeMap;
use std::fmt;

use citywatch_engine::alert::Alert;
use citywatch_engine::contract::Category;
use citywatch_engine::event::AlarmEvent;
use citywatch_engine::jurisdiction::Jurisdiction;
use citywatch_engine::lateness::utc_short;
use h3o::{CellIndex, Resolution};

const DAY_MS: u64 = 86_400_000;

/// Hotspot alerts scored against the simple choices (see the module docs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertScore {
    /// `hotspot` alerts read.
    pub alerts: usize,
    /// Of them, raised in the scored period with a cell and a community.
    pub scored: usize,
    /// Scored period.
    pub from_ms: u64,
    /// End of the scored period.
    pub until_ms: u64,
    /// A hit is an incident within this long after the alert, ms.
    pub window_ms: u64,
    /// Alerts whose cell had an incident in the window.
    pub model_hits: f64,
    /// Expected hits of the community's naive-365d top cell at the same moments.
    pub naive_hits: f64,
    /// Expected hits of a random cell of the community.
    pub random_hits: f64,
    /// Alerts where the model's cell hit and the naive choice (expected) did not.
    pub model_only: f64,
    /// Alerts where the naive choice (expected) hit and the model's cell did not.
    pub naive_only: f64,
    /// Alerts whose cell is the naive choice (or one of the tied top cells).
    pub same_cell: usize,
}

/// Scores the `hotspot` alerts in `alerts` against the incidents of `kinds`
/// in `alarms` (sorted by time), at the alerts' cells' resolution.
pub fn score(
    alerts: &[Alert],
    alarms: &[AlarmEvent],
    jurisdiction: &Jurisdiction,
    kinds: &[Category],
    period: (u64, u64),
    window_ms: u64,
) -> AlertScore {
    let all: Vec<&Alert> = alerts.iter().filter(|a| a.model == "risk_hotspot" && a.kind == "hotspot").collect();
    let hotspots: Vec<(&Alert, CellIndex)> = all
        .iter()
        .filter_map(|a| a.cell.as_deref().and_then(|c| c.parse::<CellIndex>().ok()).map(|c| (*a, c)))
        .collect();
    let resolution = hotspots.first().map_or(Resolution::Eight, |(_, c)| c.resolution());
    // Incident times per cell (sorted: alarms are), and each cell's community.
    let mut times: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut community_cells: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for a in alarms.iter().filter(|a| kinds.contains(&a.category)) {
        let cell = u64::from(a.pos.cell(resolution));
        let seen = times.entry(cell).or_default();
        if seen.is_empty()
            && let Some(c) = jurisdiction.community_id(a.pos)
        {
            community_cells.entry(c.into_owned()).or_default().push(cell);
        }
        seen.push(a.ts_ms);
    }
    let count = |cell: u64, from: u64, until: u64| {
        times.get(&cell).map_or(0, |t| t.partition_point(|&x| x < until) - t.partition_point(|&x| x < from))
    };
    let mut s = AlertScore {
        alerts: all.len(),
        scored: 0,
        from_ms: period.0,
        until_ms: period.1,
        window_ms,
        model_hits: 0.0,
        naive_hits: 0.0,
        random_hits: 0.0,
        model_only: 0.0,
        naive_only: 0.0,
        same_cell: 0,
    };
    for (alert, cell) in hotspots {
        let t = alert.event_ts_ms as u64;
        if t < period.0 || t + window_ms > period.1 {
            continue;
        }
        let Some(cells) = alert.community.as_ref().and_then(|c| community_cells.get(c)) else { continue };
        s.scored += 1;
        let hit = |c: u64| count(c, t, t + window_ms) > 0;
        let model = f64::from(u8::from(hit(u64::from(cell))));
        let history: Vec<usize> = cells.iter().map(|&c| count(c, t.saturating_sub(365 * DAY_MS), t)).collect();
        let best = history.iter().copied().max().unwrap_or(0);
        let tied: Vec<u64> = cells.iter().zip(&history).filter(|(_, n)| **n == best).map(|(c, _)| *c).collect();
        let naive = tied.iter().filter(|&&c| hit(c)).count() as f64 / tied.len().max(1) as f64;
        s.same_cell += usize::from(tied.contains(&u64::from(cell)));
        s.model_hits += model;
        s.naive_hits += naive;
        s.random_hits += cells.iter().filter(|&&c| hit(c)).count() as f64 / cells.len() as f64;
        s.model_only += model * (1.0 - naive);
        s.naive_only += (1.0 - model) * naive;
    }
    s
}

/// Reads the dataset at `dir` and scores `alerts` over the evaluation's
/// scored period: from `from_ms` (default: as [`crate::eval`], a year after
/// the first alarm or half-way through shorter data) to `until_ms` (default:
/// the last alarm), with a window of one 8-hour shift.
pub fn score_dataset(
    dir: &std::path::Path,
    alerts: &[Alert],
    kinds: &[Category],
    from_ms: Option<u64>,
    until_ms: Option<u64>,
) -> citywatch_engine::Result<AlertScore> {
    let (alarms, jurisdiction) = crate::eval::read_alarms(dir)?;
    let first = alarms.first().map_or(0, |a| a.ts_ms);
    let last = alarms.last().map_or(0, |a| a.ts_ms);
    let from = from_ms.unwrap_or(first + (365 * DAY_MS).min((last - first) / 2));
    let until = until_ms.unwrap_or(last + 1);
    Ok(score(alerts, &alarms, &jurisdiction, kinds, (from, until), 8 * 3_600_000))
}

impl fmt::Display for AlertScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.scored.max(1) as f64;
        writeln!(
            f,
            "hotspot alerts: {} of {} scored ({} .. {}); a hit is a scored incident in the alerted cell within {} h",
            self.scored,
            self.alerts,
            utc_short(self.from_ms as i64),
            utc_short(self.until_ms as i64),
            self.window_ms / 3_600_000
        )?;
        writeln!(f, "  {:<58} {:>10} {:>9}", "the cell an officer is sent to", "hits", "hit rate")?;
        for (name, hits) in [
            ("risk_hotspot alert", self.model_hits),
            ("naive_365d: the community's busiest cell of the last year", self.naive_hits),
            ("random: any cell of the community", self.random_hits),
        ] {
            writeln!(f, "  {name:<58} {hits:>10.1} {:>8.1}%", 100.0 * hits / n)?;
        }
        write!(
            f,
            "  paired: the alert's cell hit and naive_365d's did not in {:.1} alerts, the reverse in {:.1}; \
             the same cell in {} ({:.0}%)",
            self.model_only,
            self.naive_only,
            self.same_cell,
            100.0 * self.same_cell as f64 / n
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citywatch_engine::alert::Alert;
    use citywatch_engine::geo::Point;

    fn alarm(ts_ms: u64, pos: Point) -> AlarmEvent {
        AlarmEvent {
            ts_ms,
            seq: 0,
            alarm_id: ts_ms,
            category: Category::Burglary,
            priority: 3,
            pos,
            reporter: None,
            suspect: None,
            suspect_class: Default::default(),
            source: citywatch_engine::contract::AlarmSource::Hotline,
            late: false,
        }
    }

    fn hotspot(ts_ms: u64, cell: CellIndex, community: &str) -> Alert {
        Alert {
            alert_id: format!("{ts_ms}"),
            model: "risk_hotspot".into(),
            model_version: "t".into(),
            kind: "hotspot".into(),
            severity: "minor".into(),
            score: 1.0,
            event_ts_ms: ts_ms as i64,
            subject: cell.to_string(),
            lat: None,
            lon: None,
            cell: Some(cell.to_string()),
            grid: None,
            community: Some(community.into()),
            street: None,
            district: None,
            assignee: None,
            summary: String::new(),
            evidence: "{}".into(),
            action: String::new(),
        }
    }

    #[test]
    fn hits_against_the_busiest_and_a_random_cell_of_the_community() {
        // Default grid: the community is the res-7 cell; two of its res-8 cells.
        let j = Jurisdiction::default_grid(Vec::new());
        let busy = Point::from_degrees(43.6532, -79.3832).unwrap();
        let community = j.community_id(busy).unwrap().into_owned();
        let busy_cell = busy.cell(Resolution::Eight);
        let other_cell = busy_cell
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .find(|c| *c != busy_cell && c.parent(Resolution::Seven) == busy_cell.parent(Resolution::Seven))
            .expect("a sibling cell in the same community");
        let ll = h3o::LatLng::from(other_cell);
        let other = Point::from_degrees(ll.lat(), ll.lng()).unwrap();
        assert_eq!(j.community_id(other).unwrap(), community);
        let day = |d: u64| d * DAY_MS;
        let h = 3_600_000;
        // A busy year in one cell, one old incident in the other.
        let mut alarms: Vec<AlarmEvent> = (0..300).map(|d| alarm(day(d), busy)).collect();
        alarms.push(alarm(day(10), other));
        // Alert 1 (day 380, the other cell): it hits, the busy cell does not.
        alarms.push(alarm(day(380) + h, other));
        // Alert 2 (day 390, the other cell): the busy cell hits, it does not.
        alarms.push(alarm(day(390) + 2 * h, busy));
        // Alert 3 (day 395, the busy cell itself): both the same, a miss.
        alarms.sort_by_key(|a| a.ts_ms);
        let alerts = vec![
            hotspot(day(380), other_cell, &community),
            hotspot(day(390), other_cell, &community),
            hotspot(day(395), busy_cell, &community),
            hotspot(day(100), busy_cell, &community), // before the scored period
            hotspot(day(396), busy_cell, "elsewhere"), // no such community: skipped
        ];
        let s = score(&alerts, &alarms, &j, &[Category::Burglary], (day(365), day(400)), 8 * h);
        assert_eq!((s.alerts, s.scored), (5, 3));
        assert_eq!((s.model_hits, s.naive_hits), (1.0, 1.0));
        assert_eq!((s.model_only, s.naive_only), (1.0, 1.0));
        assert_eq!(s.random_hits, 1.0, "one of the two cells hit after alerts 1 and 2, none after 3");
        assert_eq!(s.same_cell, 1);
        let text = s.to_string();
        assert!(text.contains("3 of 5 scored") && text.contains("33.3%"), "{text}");
    }
}
