//! Seeded random datasets for tests: small, messy on purpose (out-of-order
//! rows within and beyond the lateness, urgent alarms answered in time, late
//! or never, units moving and changing status), and the same for a seed on
//! every machine. Used by the determinism, lateness and reference tests of
//! several crates; not a realistic city (that is `citywatch gen`).
//!
//! With [`RandomSpec::grids`] the dataset also has a grids table and officers
//! (so that routing is tested, not only detection), and with
//! [`RandomSpec::coarse_ms`] its event times are rounded down as real exports
//! round them (Toronto's incidents are stamped to the hour), so that two
//! alerts of one subject at one instant, which share an id, happen in tests.
//! [`assert_model_matches_reference`] checks a registered model against its
//! [`crate::model::Model::reference`], routed alerts and all.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::contract::CallPhase;
use crate::event::CallEvent;
use crate::rows::{AlarmRow, CallRow, GridRow, OfficerRow, PatrolRow, write_table};

/// Shape of a random dataset.
#[derive(Debug, Clone)]
pub struct RandomSpec {
    /// Seed.
    pub seed: u64,
    /// Alarms.
    pub alarms: usize,
    /// Patrol units.
    pub units: usize,
    /// Calls (each a start and an end row).
    pub calls: usize,
    /// Distinct numbers that report alarms (fewer: more repeat reporters).
    pub reporters: u32,
    /// Span of event time, ms.
    pub span_ms: i64,
    /// Share of rows moved earlier by up to `disorder_ms` in file order.
    pub disorder_share: f64,
    /// Largest displacement of a disordered row, ms.
    pub disorder_ms: i64,
    /// Also write a grids table (res-8 cells around the centre; community =
    /// res-7 parent, street = res-6 parent) and officers: a community officer
    /// for every other community, a station for every street (see [`write_grids`]).
    pub grids: bool,
    /// Round every event time down to a multiple of this (ms), as exports
    /// stamped to the minute or hour are.
    pub coarse_ms: Option<i64>,
    /// Numbers that each call 40 others within about an hour, mostly new ones
    /// and mostly briefly (as fraud campaigns do): so that call models have
    /// something to find.
    pub bursts: usize,
}

impl Default for RandomSpec {
    fn default() -> Self {
        RandomSpec {
            seed: 1,
            alarms: 200,
            units: 12,
            calls: 500,
            reporters: 10_000,
            span_ms: 4 * 3_600_000,
            disorder_share: 0.05,
            disorder_ms: 30_000,
            grids: false,
            coarse_ms: None,
            bursts: 0,
        }
    }
}

/// Start of every random dataset's event time: 2026-03-02 00:00 UTC.
pub const T0_MS: i64 = 1_772_409_600_000;

const CENTER: (f64, f64) = (36.07, 120.38);

/// Writes `calls.parquet`, `alarms.parquet` and `patrols.parquet` into `dir`.
pub fn write_random_dataset(dir: &Path, spec: &RandomSpec) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let coarse = |ts: i64| spec.coarse_ms.map_or(ts, |q| ts - ts.rem_euclid(q.max(1)));
    let jitter = |rng: &mut ChaCha8Rng, ts: i64| {
        coarse(if rng.random_bool(spec.disorder_share) { ts - rng.random_range(0..=spec.disorder_ms) } else { ts })
    };
    let pos =
        |rng: &mut ChaCha8Rng| (CENTER.0 + rng.random_range(-0.05..0.05), CENTER.1 + rng.random_range(-0.05..0.05));

    let mut alarms = Vec::new();
    let mut patrols = Vec::new();
    let categories = ["burglary", "theft", "robbery", "assault", "traffic", "medical", "disturbance"];
    let mut alarm_times = Vec::new();
    for i in 0..spec.alarms {
        let ts = T0_MS + rng.random_range(0..spec.span_ms);
        alarm_times.push((i as u64 + 1, ts));
    }
    alarm_times.sort_by_key(|a| a.1);
    for &(id, ts) in &alarm_times {
        let (lat, lon) = pos(&mut rng);
        let priority = rng.random_range(1..=4u8);
        alarms.push(AlarmRow {
            alarm_id: id,
            ts_ms: jitter(&mut rng, ts),
            category: categories[rng.random_range(0..categories.len())].to_owned(),
            priority,
            lat,
            lon,
            reporter: Some(format!("1390000{:04}", rng.random_range(0..spec.reporters.clamp(1, 10_000)))),
            suspect_number: None,
            source: "110".to_owned(),
        });
        // Most alarms get a unit: in time, just at the deadline, late, or never.
        let unit = format!("U{:02}", rng.random_range(0..spec.units));
        let choice = rng.random_range(0..10);
        let dispatch_after = match choice {
            0..=4 => Some(rng.random_range(10_000..170_000)),
            5 => Some(180_000), // exactly at the deadline: in time
            6..=7 => Some(rng.random_range(181_000..900_000)),
            _ => None,
        };
        if let Some(d) = dispatch_after {
            let (plat, plon) = pos(&mut rng);
            patrols.push(PatrolRow {
                unit_id: unit.clone(),
                ts_ms: jitter(&mut rng, ts + d),
                lat: plat,
                lon: plon,
                status: "dispatched".into(),
                alarm_id: Some(id),
            });
            let arrive = d + rng.random_range(60_000..900_000);
            patrols.push(PatrolRow {
                unit_id: unit,
                ts_ms: coarse(ts + arrive),
                lat,
                lon,
                status: "on_scene".into(),
                alarm_id: Some(id),
            });
        }
    }
    // Units report positions and become available now and then.
    for u in 0..spec.units {
        let mut ts = T0_MS + rng.random_range(0..120_000);
        while ts < T0_MS + spec.span_ms {
            let (lat, lon) = pos(&mut rng);
            let status = if rng.random_bool(0.8) { "available" } else { "off_duty" };
            patrols.push(PatrolRow {
                unit_id: format!("U{u:02}"),
                ts_ms: jitter(&mut rng, ts),
                lat,
                lon,
                status: status.into(),
                alarm_id: None,
            });
            ts += rng.random_range(60_000..600_000);
        }
    }
    patrols.sort_by_key(|p| p.ts_ms + if p.alarm_id.is_some() { 0 } else { 1 });

    let mut calls = Vec::new();
    for i in 0..spec.calls {
        let start = T0_MS + rng.random_range(0..spec.span_ms);
        let dur = rng.random_range(5..1_800i64);
        let caller = format!("13{:09}", rng.random_range(0..2_000));
        let callee = format!("13{:09}", rng.random_range(0..2_000));
        let (lat, lon) = pos(&mut rng);
        calls.extend(call_rows(
            i as u64 + 1,
            &caller,
            &callee,
            (coarse(start), coarse(start + dur * 1000)),
            dur,
            (lat, lon),
        ));
    }
    for b in 0..spec.bursts {
        let caller = format!("17{:09}", 100 + b);
        let mut start = T0_MS + rng.random_range(0..spec.span_ms.max(1));
        for k in 0..40u64 {
            // Most hang up at once; some listen long enough to be at risk.
            let dur = if rng.random_bool(0.7) { rng.random_range(8..40i64) } else { rng.random_range(150..900i64) };
            let callee = format!("13{:09}", rng.random_range(0..200_000));
            let (id, span) = (1_000_000 + b as u64 * 100 + k, (coarse(start), coarse(start + dur * 1000)));
            calls.extend(call_rows(id, &caller, &callee, span, dur, pos(&mut rng)));
            start += rng.random_range(30_000..120_000);
        }
    }
    calls.sort_by_key(|c| c.ts_ms);
    write_table(dir, &calls)?;
    write_table(dir, &alarms)?;
    write_table(dir, &patrols)?;
    if spec.grids {
        write_grids(dir)?;
    }
    Ok(())
}

/// A call's start and end rows (`span`: their times, ms; `dur`: seconds).
fn call_rows(id: u64, caller: &str, callee: &str, span: (i64, i64), dur: i64, (lat, lon): (f64, f64)) -> [CallRow; 2] {
    let start = CallRow {
        call_id: id,
        event: "start".into(),
        ts_ms: span.0,
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        caller_lat: Some(lat),
        caller_lon: Some(lon),
        callee_lat: Some(lat),
        callee_lon: Some(lon),
        duration_s: None,
    };
    let end = CallRow { event: "end".into(), ts_ms: span.1.max(span.0), duration_s: Some(dur as u32), ..start.clone() };
    [start, end]
}

/// Writes a grids table and officers around the random datasets' centre:
/// res-8 cells within 9 rings, community = res-7 parent, street = res-6
/// parent, one district; a community officer (`C###`) for every other
/// community (the rest escalate to their street's station, `S###`), a
/// station for every street. Alerts outside the rings go to the city.
pub fn write_grids(dir: &Path) -> Result<()> {
    use h3o::{LatLng, Resolution};
    let centre = LatLng::new(CENTER.0, CENTER.1).expect("valid centre").to_cell(Resolution::Eight);
    let mut grids = Vec::new();
    let mut communities = std::collections::BTreeSet::new();
    let mut streets = std::collections::BTreeSet::new();
    for c in centre.grid_disk::<Vec<_>>(9) {
        let community = c.parent(Resolution::Seven).expect("res 7 parent").to_string();
        let street = c.parent(Resolution::Six).expect("res 6 parent").to_string();
        grids.push(GridRow {
            cell: c.to_string(),
            grid: c.to_string(),
            community: community.clone(),
            street: street.clone(),
            district: "D1".into(),
        });
        communities.insert(community);
        streets.insert(street);
    }
    let mut officers = Vec::new();
    for (i, c) in communities.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        officers.push(OfficerRow {
            officer_id: format!("C{i:03}"),
            name: format!("Officer {i}"),
            role: "community".into(),
            scope: c.clone(),
        });
    }
    for (i, s) in streets.iter().enumerate() {
        officers.push(OfficerRow {
            officer_id: format!("S{i:03}"),
            name: format!("Station {i}"),
            role: "station".into(),
            scope: s.clone(),
        });
    }
    write_table(dir, &grids)?;
    write_table(dir, &officers)?;
    Ok(())
}

/// Asserts that `model`'s dataflow raises exactly the alerts of its
/// [`crate::model::Model::reference`] on the dataset `opts.input`, with 1, 2
/// and 4 workers: every column of every alert, routing included (the
/// reference's drafts are routed by [`crate::replay::complete`] with the
/// dataset's grids and officers, as the engine routes the dataflow's). Also
/// requires a non-trivial result (at least `min_alerts`) and no two alerts
/// sharing an id (a model must not raise one subject's alert twice at one
/// instant: the second would be folded away). Returns the reference's alert
/// count. Panics, naming the worker count and the first differences, if not.
pub fn assert_model_matches_reference(
    opts: &crate::replay::ReplayOptions,
    model: impl Fn() -> Box<dyn crate::model::Model>,
    min_alerts: usize,
) -> usize {
    let m = model();
    let name = m.name();
    let (events, reference) = crate::replay::merged_events(opts)
        .unwrap_or_else(|e| panic!("{name}: reading {} failed: {e}", opts.input.display()));
    let drafts = m.reference(&events, &reference).unwrap_or_else(|| panic!("{name} has no reference"));
    let tags = [(name.clone(), m.version())];
    let mut want: Vec<crate::alert::Alert> =
        drafts.into_iter().map(|d| crate::replay::complete(&tags, &reference, (0, d))).collect();
    crate::alert::sort_alerts(&mut want);
    let ids: std::collections::HashSet<&str> = want.iter().map(|a| a.alert_id.as_str()).collect();
    if let Some(twice) = want.iter().find(|a| want.iter().filter(|b| b.alert_id == a.alert_id).count() > 1) {
        panic!(
            "{name}: the reference raises {} alerts with {} distinct ids: `{}` on {} at {} is raised twice; \
             one subject gets one alert per kind and instant (docs/writing-a-model.md)",
            want.len(),
            ids.len(),
            twice.kind,
            twice.subject,
            twice.event_ts_ms
        );
    }
    assert!(
        want.len() >= min_alerts,
        "{name}: the reference raises {} alerts on this dataset, fewer than {min_alerts}: the test would prove little",
        want.len()
    );
    let lines = |alerts: &[crate::alert::Alert]| -> Vec<String> {
        alerts.iter().map(|a| crate::alert::to_json_value(a).to_string()).collect()
    };
    let want = lines(&want);
    for workers in [1, 2, 4] {
        let out = crate::replay::replay(&crate::replay::ReplayOptions { workers, ..opts.clone() }, vec![model()])
            .unwrap_or_else(|e| panic!("{name}, {workers} workers: replay failed: {e}"));
        assert_eq!(
            out.summary.duplicate_alerts_folded, 0,
            "{name}, {workers} workers: the dataflow raised alerts sharing an id (folded)"
        );
        let got = lines(&out.alerts);
        if got != want {
            let missing: Vec<_> = want.iter().filter(|k| !got.contains(k)).take(2).collect();
            let extra: Vec<_> = got.iter().filter(|k| !want.contains(k)).take(2).collect();
            panic!(
                "{name}, {workers} workers: {} alerts vs the reference's {}; missing {missing:#?}; extra {extra:#?}",
                got.len(),
                want.len()
            );
        }
    }
    want.len()
}

/// Replays `opts` with 1, 2 and 4 workers, a fresh model from `model` each
/// time, and asserts that the alerts, mapped by `key`, are exactly `want` (in
/// any order); a failure names the worker count and the first missing and
/// extra keys. For a model's test against its single-threaded reference.
pub fn assert_alerts_for_1_2_4_workers(
    opts: &crate::replay::ReplayOptions,
    model: impl Fn() -> Box<dyn crate::model::Model>,
    key: impl Fn(&crate::alert::Alert) -> String,
    want: &[String],
    label: &str,
) {
    assert!(!want.is_empty(), "{label}: the reference raises no alert here, so equality would prove nothing");
    let mut want = want.to_vec();
    want.sort();
    for workers in [1, 2, 4] {
        let out = crate::replay::replay(&crate::replay::ReplayOptions { workers, ..opts.clone() }, vec![model()])
            .unwrap_or_else(|e| panic!("{label}, {workers} workers: replay failed: {e}"));
        let mut got: Vec<String> = out.alerts.iter().map(&key).collect();
        got.sort();
        if got != want {
            let missing: Vec<_> = want.iter().filter(|k| got.binary_search(k).is_err()).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|k| want.binary_search(k).is_err()).take(3).collect();
            panic!(
                "{label}, {workers} workers: {} alerts vs reference {}; missing {missing:#?}; extra {extra:#?}",
                got.len(),
                want.len()
            );
        }
    }
}

/// A call row's event between the pseudonyms 1 and 2, for unit tests.
pub fn call_event(call_id: u64, phase: CallPhase, ts_ms: u64) -> CallEvent {
    CallEvent {
        ts_ms,
        seq: 0,
        call_id,
        phase,
        caller: 1,
        callee: 2,
        caller_class: Default::default(),
        callee_class: Default::default(),
        caller_pos: None,
        callee_pos: None,
        duration_s: None,
        late: false,
    }
}
