//! Reference data that changes while the city runs (issue 19), as fraud_call
//! and the router see it: a SIM registered at `t` changes the model's view of
//! its calls from `t` on and not before; alerts go to the officer on duty when
//! they are raised (a hand-over at 08:00); and the same events and changes
//! give the same alerts replayed (1, 2 and 4 workers) and fed live.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt8Array};
use arrow_schema::{DataType, Field, Schema};
use citywatch_engine::alert::{Alert, sort_alerts, to_json_value};
use citywatch_engine::changes::ReferenceChange;
use citywatch_engine::contract::{ALWAYS, Role, Table};
use citywatch_engine::event::Event;
use citywatch_engine::geo::Point;
use citywatch_engine::jurisdiction::{DEFAULT_GRID_RESOLUTION, Officer, RosterRow};
use citywatch_engine::live::{LiveEngine, LiveOptions};
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use citywatch_engine::reference::Subscriber;
use citywatch_engine::replay::{ReplayOptions, merged_events, replay};
use citywatch_engine::rows::{CallRow, write_table};
use citywatch_engine::testkit::T0_MS;
use citywatch_fraud_call::{Config, FraudCall};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HOUR: i64 = 3_600_000;
/// A local-shaped number: only its registration can make it look young.
const FRAUD: &str = "13899999999";
/// The fraud SIM is registered at 06:00.
const T_REG: i64 = T0_MS + 6 * HOUR;
/// The community officers hand over at 08:00.
const T_HAND: i64 = T0_MS + 8 * HOUR;
const RESIDENTS: u64 = 200;
const LATENESS_MS: u64 = 60_000;
/// Every residents' home (where alerts about them go).
const HOME: (f64, f64) = (36.07, 120.38);

fn resident(i: u64) -> String {
    format!("138{i:08}")
}

/// Calls over 12 hours in time order (live admits rows in arrival order, so
/// the input has no disorder): residents calling their contacts, and the
/// fraud number fanning out to residents all day.
fn write_calls(dir: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let span = 12 * HOUR;
    let mut plan: Vec<(i64, u32, String, String)> = Vec::new();
    for i in 0..RESIDENTS {
        for _ in 0..rng.random_range(0..6) {
            let callee = resident((i * 7 + rng.random_range(0..5u64) * 13) % RESIDENTS);
            plan.push((T0_MS + rng.random_range(0..span), rng.random_range(3..600), resident(i), callee));
        }
    }
    for _ in 0..80 {
        let dur = if rng.random_bool(0.3) { rng.random_range(200..1_500) } else { rng.random_range(3..90) };
        plan.push((T0_MS + rng.random_range(0..span), dur, FRAUD.to_owned(), resident(rng.random_range(0..RESIDENTS))));
    }
    let mut rows = Vec::new();
    for (id, (start, dur, caller, callee)) in plan.into_iter().enumerate() {
        let row = |event: &str, ts: i64, d: Option<u32>| CallRow {
            call_id: id as u64 + 1,
            event: event.into(),
            ts_ms: ts,
            caller: caller.clone(),
            callee: callee.clone(),
            caller_lat: Some(HOME.0),
            caller_lon: Some(HOME.1),
            callee_lat: Some(HOME.0),
            callee_lon: Some(HOME.1),
            duration_s: d,
        };
        rows.push(row("start", start, None));
        rows.push(row("end", start + i64::from(dur) * 1000, Some(dur)));
    }
    rows.sort_by_key(|r| (r.ts_ms, r.event == "start", r.call_id));
    write_table(dir, &rows).unwrap();
}

/// The contract's columns of `table` plus the optional versioning columns.
fn dated_schema(table: Table, status: bool) -> Arc<Schema> {
    let mut fields: Vec<Field> = table.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("valid_from_ms", DataType::Int64, true));
    if status {
        fields.push(Field::new("status", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

fn write(dir: &Path, file: &str, schema: Arc<Schema>, columns: Vec<ArrayRef>) {
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    citywatch_datasets::sink::write_file(&dir.join(file), schema, [Ok(batch)]).unwrap();
}

/// Residents registered for all time (years ago); with `registered`, the
/// fraud SIM too, from 06:00 (activated then).
fn write_subscribers(dir: &Path, registered: bool) {
    let mut numbers: Vec<String> = (0..RESIDENTS).map(resident).collect();
    let mut from: Vec<Option<i64>> = vec![None; numbers.len()];
    let mut activated: Vec<i64> = vec![0; numbers.len()];
    if registered {
        numbers.push(FRAUD.to_owned());
        from.push(Some(T_REG));
        activated.push(T_REG);
    }
    let n = numbers.len();
    write(
        dir,
        "subscribers.parquet",
        dated_schema(Table::Subscribers, false),
        vec![
            Arc::new(StringArray::from(numbers)),
            Arc::new(UInt8Array::from(vec![Some(40u8); n])),
            Arc::new(Float64Array::from(vec![Some(HOME.0); n])),
            Arc::new(Float64Array::from(vec![Some(HOME.1); n])),
            Arc::new(Int64Array::from(activated)),
            Arc::new(Int64Array::from(from)),
        ],
    );
}

/// The residents' community (the default grid's cell of their home).
fn community() -> String {
    Point::from_degrees(HOME.0, HOME.1).unwrap().cell(DEFAULT_GRID_RESOLUTION).to_string()
}

/// The hand-over at 08:00: the night officer leaves the post, the day officer takes it.
fn hand_over() -> Vec<RosterRow> {
    let post = |id: &str, on_duty| RosterRow {
        from_ms: T_HAND,
        officer: Officer { officer_id: id.into(), name: id.into(), role: Role::Community, scope: community() },
        on_duty,
    };
    vec![post("c-night", false), post("c-day", true)]
}

/// A city analyst and the night community officer for all time; with
/// `handover`, the 08:00 hand-over rows too.
fn write_officers(dir: &Path, handover: bool) {
    let post = |id: &str, role, scope: String| Officer { officer_id: id.into(), name: id.into(), role, scope };
    let mut rows = vec![
        RosterRow::always(post("an", Role::Analyst, "city".into())),
        RosterRow::always(post("c-night", Role::Community, community())),
    ];
    if handover {
        rows.extend(hand_over());
    }
    let dated = |r: &RosterRow| (r.from_ms != ALWAYS).then_some(r.from_ms);
    let status = |r: &RosterRow| dated(r).map(|_| if r.on_duty { "on_duty" } else { "off_duty" });
    let strings = |f: &dyn Fn(&Officer) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(|r| f(&r.officer)).collect::<Vec<_>>()))
    };
    write(
        dir,
        "officers.parquet",
        dated_schema(Table::Officers, true),
        vec![
            strings(&|o| &o.officer_id),
            strings(&|o| &o.name),
            strings(&|o| o.role.as_str()),
            strings(&|o| &o.scope),
            Arc::new(Int64Array::from(rows.iter().map(dated).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(status).collect::<Vec<_>>())),
        ],
    );
}

/// Every open call alerts at its check: each check's view is in the alerts.
fn config() -> Config {
    Config { in_progress_threshold: Some(0.0), ..Config::default() }
}

fn model() -> Box<dyn citywatch_engine::model::Model> {
    Box::new(FraudCall { config: config(), tap: None })
}

fn opts(dir: &Path, workers: usize) -> ReplayOptions {
    ReplayOptions { input: dir.to_owned(), lateness_ms: LATENESS_MS, workers, ..ReplayOptions::default() }
}

fn lines(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|a| to_json_value(a).to_string()).collect()
}

fn evidence(a: &Alert) -> serde_json::Value {
    serde_json::from_str(&a.evidence).unwrap()
}

fn fraud_token() -> String {
    citywatch_engine::pseudonym::token_hex(Pseudonymiser::new(DEMO_KEY, "86").token_uncached(FRAUD))
}

#[test]
fn a_sim_registered_at_t_changes_the_view_of_its_calls_from_t_on_and_not_before() {
    let (unknown, registered) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, reg) in [(&unknown, false), (&registered, true)] {
        write_calls(dir.path());
        write_subscribers(dir.path(), reg);
    }
    let a = replay(&opts(unknown.path(), 1), vec![model()]).unwrap().alerts;
    let b = replay(&opts(registered.path(), 1), vec![model()]).unwrap().alerts;
    let before = |v: &[Alert]| lines(&v.iter().filter(|x| x.event_ts_ms < T_REG).cloned().collect::<Vec<_>>());
    assert!(!before(&a).is_empty());
    assert_eq!(before(&a), before(&b), "alerts before the registration are unchanged, byte for byte");
    // From 06:00 the fraud SIM's checks see a 0-day-old registration; unknown before.
    let fraud = fraud_token();
    let from_sim = |v: &[Alert]| -> Vec<(i64, serde_json::Value)> {
        v.iter()
            .filter(|x| x.kind == "fraud_in_progress" && evidence(x)["caller"] == fraud.as_str())
            .map(|x| (x.event_ts_ms, evidence(x)["age_days"].clone()))
            .collect()
    };
    let (sa, sb) = (from_sim(&a), from_sim(&b));
    assert!(sb.iter().any(|(t, _)| *t < T_REG) && sb.iter().any(|(t, _)| *t >= T_REG), "checks on both sides of 06:00");
    for (t, age) in &sb {
        let want = if *t >= T_REG { serde_json::json!(0) } else { serde_json::Value::Null };
        assert_eq!(age, &want, "check at {t}: registered at {T_REG}");
    }
    assert!(sa.iter().all(|(_, age)| age.is_null()), "never registered: unknown all day");
}

#[test]
fn replay_equals_live_with_a_registration_and_a_hand_over_for_1_2_4_workers() {
    // The replay's dataset holds every version; the live service starts from
    // the undated rows and is sent the registration and the hand-over.
    let (full, base) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, dated) in [(&full, true), (&base, false)] {
        write_calls(dir.path());
        write_subscribers(dir.path(), dated);
        write_officers(dir.path(), dated);
    }
    let replayed = lines(&replay(&opts(full.path(), 1), vec![model()]).unwrap().alerts);
    for workers in [2, 4] {
        let got = lines(&replay(&opts(full.path(), workers), vec![model()]).unwrap().alerts);
        assert!(got == replayed, "{workers} workers: {} alerts against 1 worker's {}", got.len(), replayed.len());
    }
    // Community alerts go to the officer on duty when they are raised.
    let alerts = replay(&opts(full.path(), 1), vec![model()]).unwrap().alerts;
    let on_duty = |a: &Alert| a.assignee.as_deref().map(str::to_owned);
    let night = alerts.iter().filter(|a| a.event_ts_ms < T_HAND).map(on_duty).collect::<Vec<_>>();
    let day = alerts.iter().filter(|a| a.event_ts_ms >= T_HAND).map(on_duty).collect::<Vec<_>>();
    assert!(!night.is_empty() && night.iter().all(|o| o.as_deref() == Some("c-night")), "{night:?}");
    assert!(!day.is_empty() && day.iter().all(|o| o.as_deref() == Some("c-day")), "{day:?}");

    for workers in [1, 2, 4] {
        let live = live_run(full.path(), base.path(), workers);
        if live != replayed {
            let missing: Vec<_> = replayed.iter().filter(|k| !live.contains(k)).take(2).collect();
            let extra: Vec<_> = live.iter().filter(|k| !replayed.contains(k)).take(2).collect();
            panic!(
                "live, {workers} workers: {} alerts against the replay's {}; missing {missing:#?}; extra {extra:#?}",
                live.len(),
                replayed.len()
            );
        }
    }
}

/// Feeds the events of `full` to a live engine that starts from `base`'s
/// reference tables, a minute of event time a request, and sends the
/// registration and the hand-over when event time reaches them.
fn live_run(full: &Path, base: &Path, workers: usize) -> Vec<String> {
    let (events, _) = merged_events(&opts(full, 1)).unwrap();
    let (reference, rejects) = citywatch_engine::load::reference(base, &Pseudonymiser::new(DEMO_KEY, "86")).unwrap();
    assert!(rejects.is_empty(), "{rejects:?}");
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = LiveEngine::start(
        vec![model()],
        reference,
        LiveOptions { workers, lateness_ms: LATENESS_MS, journal: None },
        tx,
    )
    .unwrap();
    engine.restore().unwrap();
    let token = Pseudonymiser::new(DEMO_KEY, "86").token_uncached(FRAUD);
    let home = Point::from_degrees(HOME.0, HOME.1);
    let registration = Subscriber { age: Some(40), home, activated_ms: Some(T_REG) };
    let mut pending = vec![
        (T_REG, ReferenceChange::Subscribers(vec![(token, T_REG, Some(registration))])),
        (T_HAND, ReferenceChange::Roster(hand_over())),
    ];
    let ts = |e: &Event| e.ts_ms() as i64;
    let last = events.iter().map(ts).max().unwrap();
    let mut i = 0;
    while i < events.len() {
        let minute = ts(&events[i]) / 60_000;
        let mut j = i;
        while j < events.len() && ts(&events[j]) / 60_000 == minute {
            j += 1;
        }
        let chunk: Vec<Event> = events[i..j].to_vec();
        // A change is sent before the first request that reaches its time.
        while let Some(pos) = pending.iter().position(|(at, _)| chunk.iter().any(|e| ts(e) >= *at)) {
            let (_, change) = pending.remove(pos);
            let applied = engine.update_reference(change).unwrap();
            assert_eq!(applied.moved, 0, "sent before event time reached it");
        }
        engine.ingest(chunk).unwrap();
        i = j;
    }
    assert!(pending.is_empty());
    // The end of the input: event time just past the last event, as a replay ends.
    engine.advance_clock(last as u64 + LATENESS_MS + 1);
    engine.shutdown().unwrap();
    let mut alerts: Vec<Alert> = rx.try_iter().collect();
    sort_alerts(&mut alerts);
    lines(&alerts)
}
