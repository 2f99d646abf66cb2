//! Seeded random datasets for tests: small, messy on purpose (out-of-order
//! rows within and beyond the lateness, urgent alarms answered in time, late
//! or never, units moving and changing status), and the same for a seed on
//! every machine. Used by the determinism, lateness and reference tests of
//! several crates; not a realistic city (that is `citywatch gen`).

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::contract::CallPhase;
use crate::event::CallEvent;
use crate::rows::{AlarmRow, CallRow, PatrolRow, write_table};

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
    /// Span of event time, ms.
    pub span_ms: i64,
    /// Share of rows moved earlier by up to `disorder_ms` in file order.
    pub disorder_share: f64,
    /// Largest displacement of a disordered row, ms.
    pub disorder_ms: i64,
}

impl Default for RandomSpec {
    fn default() -> Self {
        RandomSpec {
            seed: 1,
            alarms: 200,
            units: 12,
            calls: 500,
            span_ms: 4 * 3_600_000,
            disorder_share: 0.05,
            disorder_ms: 30_000,
        }
    }
}

/// Start of every random dataset's event time: 2026-03-02 00:00 UTC.
pub const T0_MS: i64 = 1_772_409_600_000;

const CENTER: (f64, f64) = (36.07, 120.38);

/// Writes `calls.parquet`, `alarms.parquet` and `patrols.parquet` into `dir`.
pub fn write_random_dataset(dir: &Path, spec: &RandomSpec) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let jitter = |rng: &mut ChaCha8Rng, ts: i64| {
        if rng.random_bool(spec.disorder_share) { ts - rng.random_range(0..=spec.disorder_ms) } else { ts }
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
            reporter: Some(format!("1390000{:04}", rng.random_range(0..10_000))),
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
                ts_ms: ts + arrive,
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
        let start_row = CallRow {
            call_id: i as u64 + 1,
            event: "start".into(),
            ts_ms: start,
            caller: caller.clone(),
            callee: callee.clone(),
            caller_lat: Some(lat),
            caller_lon: Some(lon),
            callee_lat: Some(lat),
            callee_lon: Some(lon),
            duration_s: None,
        };
        let end_row = CallRow {
            event: "end".into(),
            ts_ms: start + dur * 1000,
            duration_s: Some(dur as u32),
            ..start_row.clone()
        };
        calls.push(start_row);
        calls.push(end_row);
    }
    calls.sort_by_key(|c| c.ts_ms);
    write_table(dir, &calls)?;
    write_table(dir, &alarms)?;
    write_table(dir, &patrols)?;
    Ok(())
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
