//! The generator's output: accepted by the engine, deterministic, rates as configured.

mod common;

use std::collections::{HashMap, HashSet};

use arrow_array::types::{Int64Type, UInt8Type, UInt32Type, UInt64Type};
use citywatch_datasets::{GenOptions, generate};
use citywatch_engine::contract::Table;
use citywatch_engine::event::Event;
use citywatch_engine::load::{read_jurisdiction, read_roster, read_subscribers};
use citywatch_engine::parquet_io::{check, locate};
use citywatch_engine::pseudonym::{DEMO_KEY, Pseudonymiser};
use common::{decode, prims, raw, strs, tree};

fn small(out: &std::path::Path, seed: u64, threads: Option<usize>) -> GenOptions {
    GenOptions { subscribers: 4_000, days: 1, seed, out: out.to_owned(), threads, ..GenOptions::default() }
}

#[test]
fn engine_readers_accept_every_table_with_no_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small(dir.path(), 3, None);
    opts.rates.fraud.calls_per_million_per_day = 50_000.0;
    let s = generate(&opts).unwrap();
    for t in Table::ALL {
        assert!(locate(dir.path(), t).unwrap().is_some(), "{} written", t.name());
    }
    // Stream tables: zero rejects, every row an event, sorted by time across parts.
    for t in Table::STREAMS {
        let (events, rejects) = decode(dir.path(), t);
        assert!(rejects.is_empty(), "{}: {:?}", t.name(), &rejects[..rejects.len().min(3)]);
        assert_eq!(events.len() as u64, s.rows[t.name()], "{}", t.name());
        assert!(!events.is_empty(), "{} has rows", t.name());
        let ts: Vec<u64> = events
            .iter()
            .map(|e| match e {
                Event::Call(c) => c.ts_ms,
                Event::Alarm(a) => a.ts_ms,
                Event::Patrol(p) => p.ts_ms,
            })
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{} sorted by ts_ms", t.name());
    }
    // Every alarm falls in a grid of the grids table (checked below, once it is read).
    let (alarms, _) = decode(dir.path(), Table::Alarms);
    // Reference tables and labels.
    let mut rejects = Vec::new();
    let mut ps = Pseudonymiser::new(DEMO_KEY, "86");
    let officers = read_roster(&locate(dir.path(), Table::Officers).unwrap().unwrap(), &mut rejects).unwrap();
    let j =
        read_jurisdiction(&locate(dir.path(), Table::Grids).unwrap().unwrap(), officers.clone(), &mut rejects).unwrap();
    let subs =
        read_subscribers(&locate(dir.path(), Table::Subscribers).unwrap().unwrap(), &mut ps, &mut rejects).unwrap();
    // The labels are fraud_call's evaluation input, decoded by its eval
    // (models/fraud_call); here: one row per fraud call.
    let labels = check(&locate(dir.path(), Table::FraudLabels).unwrap().unwrap()).unwrap();
    assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
    assert_eq!(subs.len() as u64, s.rows["subscribers"], "numbers are unique");
    assert_eq!(labels, s.fraud_calls);
    assert_eq!(u8::from(j.resolution()), 9);
    // The optional name columns are read: every area has a name.
    let (_, g) = j.cells().next().unwrap();
    let district = citywatch_datasets::city::DISTRICTS.iter().find(|d| d.code == g.district).unwrap();
    assert_eq!(j.names().district.get(&g.district).map(String::as_str), Some(district.name));
    let street = &j.names().street[&g.street];
    assert!(j.names().community[&g.community].starts_with(street.as_str()), "community named after its street");
    assert_eq!(j.names().grid.len(), j.cells().map(|(_, g)| &g.grid).collect::<std::collections::HashSet<_>>().len());
    for e in &alarms {
        let Event::Alarm(a) = e else { unreachable!() };
        assert!(j.grid_of_cell(j.cell_of(a.pos)).is_some(), "alarm {} outside the grids", a.alarm_id);
    }
    // Roster: one community officer per community, a station per street, district commands, analysts.
    let communities: HashSet<String> = j.cells().map(|(_, g)| g.community.clone()).collect();
    let streets: HashSet<String> = j.cells().map(|(_, g)| g.street.clone()).collect();
    let role = |r: &str| officers.iter().map(|r| &r.officer).filter(|o| o.role.as_str() == r).collect::<Vec<_>>();
    assert_eq!(role("community").len(), communities.len());
    assert!(role("community").iter().all(|o| communities.contains(&o.scope)));
    assert_eq!(role("station").len(), streets.len());
    assert!(role("station").iter().all(|o| streets.contains(&o.scope)));
    assert_eq!(role("district").len(), 10);
    assert!(role("analyst").iter().all(|o| o.scope == "city") && !role("analyst").is_empty());

    // Calls: each call has a start and a later end with the duration.
    let mut starts: HashMap<u64, (i64, String)> = HashMap::new();
    let mut ends = 0;
    for b in raw(dir.path(), Table::Calls) {
        let (id, ev, ts, caller) = (
            prims::<UInt64Type>(&b, "call_id"),
            strs(&b, "event"),
            prims::<Int64Type>(&b, "ts_ms"),
            strs(&b, "caller"),
        );
        let dur = prims::<UInt32Type>(&b, "duration_s");
        for i in 0..b.num_rows() {
            let (id, ts) = (id[i].unwrap(), ts[i].unwrap());
            if ev[i].as_deref() == Some("start") {
                assert!(dur[i].is_none());
                assert!(starts.insert(id, (ts, caller[i].clone().unwrap())).is_none(), "one start per call");
            } else {
                let (t0, _) = starts.get(&id).expect("end after its start");
                assert_eq!(ts - t0, i64::from(dur[i].expect("duration on end")) * 1000);
                ends += 1;
            }
        }
    }
    assert_eq!(ends, starts.len(), "every call ends");
    // Labels: every call from a fraud number is listed, and only those.
    let mut label_ids = HashSet::new();
    let mut fraud_numbers = HashSet::new();
    for b in raw(dir.path(), Table::FraudLabels) {
        let ids = prims::<UInt64Type>(&b, "call_id");
        let callers = strs(&b, "caller");
        for i in 0..b.num_rows() {
            label_ids.insert(ids[i].unwrap());
            fraud_numbers.insert(callers[i].clone().unwrap());
            assert!(starts.contains_key(&ids[i].unwrap()), "labelled call exists");
        }
    }
    let from_fraud: HashSet<u64> =
        starts.iter().filter(|(_, (_, c))| fraud_numbers.contains(c)).map(|(id, _)| *id).collect();
    assert_eq!(from_fraud, label_ids);
    // Fraud reports name a fraud number.
    let mut reports = 0;
    for b in raw(dir.path(), Table::Alarms) {
        let (cat, sus) = (strs(&b, "category"), strs(&b, "suspect_number"));
        for i in 0..b.num_rows() {
            if cat[i].as_deref() == Some("fraud_report") {
                assert!(fraud_numbers.contains(sus[i].as_ref().unwrap()));
                reports += 1;
            } else {
                assert!(sus[i].is_none());
            }
        }
    }
    assert_eq!(reports, s.loss_reports + s.suspicious_reports);
    // Patrols: dispatched / en_route / on_scene rows carry an alarm id; fixes every 30 s.
    let mut statuses = HashMap::new();
    for b in raw(dir.path(), Table::Patrols) {
        let (st, al) = (strs(&b, "status"), prims::<UInt64Type>(&b, "alarm_id"));
        for i in 0..b.num_rows() {
            let st = st[i].clone().unwrap();
            let needs = matches!(st.as_str(), "dispatched" | "en_route" | "on_scene");
            assert_eq!(al[i].is_some(), needs, "{st}");
            *statuses.entry(st).or_insert(0u64) += 1;
        }
    }
    for st in ["available", "dispatched", "en_route", "on_scene", "off_duty"] {
        assert!(statuses.get(st).copied().unwrap_or(0) > 0, "{st}: {statuses:?}");
    }
    assert!(s.dispatch.late_priority1 > 0, "some urgent responses are late");
}

#[test]
fn same_seed_same_bytes_for_one_and_two_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(&small(a.path(), 11, Some(1))).unwrap();
    generate(&small(b.path(), 11, Some(2))).unwrap();
    generate(&small(c.path(), 12, Some(2))).unwrap();
    let strip = |t: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        t.into_iter().filter(|(p, _)| p != "generated.json").collect()
    };
    let (ta, tb, tc) = (strip(tree(a.path())), strip(tree(b.path())), strip(tree(c.path())));
    assert!(ta.len() >= 7);
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb));
    for ((p, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "{p} differs between 1 and 2 threads");
    }
    let calls = |t: &[(String, Vec<u8>)]| t.iter().find(|(p, _)| p.starts_with("calls")).unwrap().1.clone();
    assert_ne!(calls(&ta), calls(&tc), "another seed, other calls");
}

#[test]
fn configured_rates_come_out_within_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts =
        GenOptions { subscribers: 30_000, days: 2, seed: 5, out: dir.path().to_owned(), ..GenOptions::default() };
    opts.rates.fraud.calls_per_million_per_day = 100_000.0; // 3,000 fraud calls a day
    opts.rates.patrol.enabled = false;
    opts.rates.crime.scale = 0.2;
    let s = generate(&opts).unwrap();
    let fraud = &opts.rates.fraud;

    // Fraud calls per day: exact for one-call campaigns; grooming follow-ups that would fall
    // after the period are not generated, so a short run is a few percent under.
    let per_day = s.fraud_calls as f64 / 2.0;
    let want = fraud.calls_per_million_per_day * 0.03;
    assert!(per_day > 0.88 * want && per_day < 1.04 * want, "fraud calls/day {per_day} vs {want}");
    // Targets per day: no end effect.
    let targets_want: f64 = 2.0
        * fraud.calls_per_million_per_day
        * 0.03
        * fraud.campaigns.iter().map(|c| c.share / c.calls_per_target()).sum::<f64>();
    let t = s.fraud_targets as f64;
    assert!((t - targets_want).abs() < 4.0 * targets_want.sqrt(), "targets {t} vs {targets_want:.0}");

    // Hook rate: targets (caller, victim pairs) with a loss.
    let mut pairs: HashMap<(String, String), bool> = HashMap::new();
    for b in raw(dir.path(), Table::FraudLabels) {
        let (c, v, l) = (strs(&b, "caller"), strs(&b, "victim"), prims::<Int64Type>(&b, "loss_ts_ms"));
        for i in 0..b.num_rows() {
            *pairs.entry((c[i].clone().unwrap(), v[i].clone().unwrap())).or_default() |= l[i].is_some();
        }
    }
    let targets = pairs.len() as f64;
    let hooked = pairs.values().filter(|h| **h).count() as f64;
    let p = fraud.expected_hook_rate();
    let sd = (p * (1.0 - p) / targets).sqrt();
    let hook = hooked / targets;
    assert!((hook - p).abs() < 4.0 * sd, "hook rate {hook:.4} vs configured {p:.4} (sd {sd:.4})");

    // Report rate: reports naming the number that took the reporter's money.
    let lost: HashSet<(String, String)> = pairs.iter().filter(|(_, h)| **h).map(|(k, _)| k.clone()).collect();
    let mut reported = 0.0;
    for b in raw(dir.path(), Table::Alarms) {
        let (r, sus) = (strs(&b, "reporter"), strs(&b, "suspect_number"));
        for i in 0..b.num_rows() {
            if let (Some(r), Some(sus)) = (&r[i], &sus[i])
                && lost.contains(&(sus.clone(), r.clone()))
            {
                reported += 1.0;
            }
        }
    }
    let rate = (reported + s.loss_reports_after_end as f64) / hooked;
    let sd = (fraud.report_rate * (1.0 - fraud.report_rate) / hooked).sqrt();
    assert!((rate - fraud.report_rate).abs() < 4.0 * sd, "report rate {rate:.3} vs {} (sd {sd:.3})", fraud.report_rate);

    // Elderly share among subscribers with an age.
    let (mut old, mut aged) = (0.0, 0.0);
    for b in raw(dir.path(), Table::Subscribers) {
        for a in prims::<UInt8Type>(&b, "age").into_iter().flatten() {
            aged += 1.0;
            old += f64::from(u8::from(a >= 60));
        }
    }
    let share = old / aged;
    let want = opts.rates.people.elderly_share;
    eprintln!(
        "fraud calls/day {per_day:.0} (configured {:.0}); hook rate {hook:.4} (configured {p:.4}, {targets} targets); \
         report rate {rate:.3} (configured {}); elderly share {share:.4} (configured {want})",
        fraud.calls_per_million_per_day * 0.03,
        fraud.report_rate
    );
    assert!((share - want).abs() < 0.015, "elderly share {share:.3} vs {want}");
    // Impersonation favours the elderly: victims' elderly share is well above the population's.
    assert!(s.fraud_targets > 1_000);
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let e = generate(&GenOptions { days: 0, out: dir.path().to_owned(), ..GenOptions::default() }).unwrap_err();
    assert!(e.to_string().contains("days"), "{e}");
    let e = generate(&GenOptions { start_ms: 5, out: dir.path().to_owned(), ..GenOptions::default() }).unwrap_err();
    assert!(e.to_string().contains("midnight"), "{e}");
}

/// Issue 19's switches: fresh fraud SIMs registered minutes before their first
/// call (dated subscribers rows), and 3 x 8 h shifts with hand-overs that
/// route a 07:59 alert to the night officer and an 08:01 one to the day officer.
#[test]
fn intraday_registrations_and_shifts_are_dated_reference_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small(dir.path(), 5, None);
    opts.rates.fraud.calls_per_million_per_day = 50_000.0;
    (opts.intraday_registrations, opts.shifts) = (true, true);
    generate(&opts).unwrap();
    let mut rejects = Vec::new();
    let mut ps = Pseudonymiser::new(DEMO_KEY, "86");
    let subs =
        read_subscribers(&locate(dir.path(), Table::Subscribers).unwrap().unwrap(), &mut ps, &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
    assert!(subs.versioned() > 0, "some fraud SIMs are registered during the day");
    // Each dated number: unknown before its activation, registered (0 days old) from it,
    // and its first call comes 2 to 30 minutes later.
    let (calls, _) = decode(dir.path(), Table::Calls);
    let mut first: HashMap<u64, u64> = HashMap::new();
    for e in &calls {
        if let Event::Call(c) = e {
            let f = first.entry(c.caller).or_insert(c.ts_ms);
            *f = (*f).min(c.ts_ms);
        }
    }
    let mut dated = 0;
    for (token, s) in subs.iter() {
        let Some(act) = s.activated_ms else { continue };
        let at = act as u64;
        if subs.get_at(token, at.saturating_sub(1)).is_some() {
            continue; // registered for all time
        }
        dated += 1;
        assert_eq!(subs.get_at(token, at).and_then(|s| s.activated_ms), Some(act));
        let lead_min = (first[token] - at) as f64 / 60_000.0;
        assert!((2.0..=30.0).contains(&lead_min), "first call {lead_min:.1} min after activation");
    }
    assert_eq!(dated, subs.versioned());
    // Shifts: every community post has three officers, hand-overs at 00, 08, 16 h.
    let roster = read_roster(&locate(dir.path(), Table::Officers).unwrap().unwrap(), &mut rejects).unwrap();
    let j = read_jurisdiction(&locate(dir.path(), Table::Grids).unwrap().unwrap(), roster, &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
    let (_, g) = j.cells().next().unwrap();
    let community = g.community.clone();
    let (cell, _) = j.cells().find(|(_, g)| g.community == community).unwrap();
    let at = |h: i64, m: i64| {
        let ms = opts.start_ms + h * 3_600_000 + m * 60_000;
        j.route_at(None, Some(u64::from(cell)), citywatch_engine::alert::RouteLevel::Community, ms).assignee
    };
    let day = format!("C{community}");
    assert_eq!(at(7, 59), Some(format!("{day}-N")), "07:59: night");
    assert_eq!(at(8, 1), Some(day.clone()), "08:01: day");
    assert_eq!(at(16, 1), Some(format!("{day}-E")), "16:01: evening");
    // The default output has no dated column at all (unchanged).
    let plain = tempfile::tempdir().unwrap();
    generate(&small(plain.path(), 5, None)).unwrap();
    let schema = |t: Table| {
        let f = locate(plain.path(), t).unwrap().unwrap();
        let file = std::fs::File::open(&f.files[0]).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().schema().clone()
    };
    assert!(schema(Table::Subscribers).index_of("valid_from_ms").is_err());
    assert!(schema(Table::Officers).index_of("valid_from_ms").is_err());
}
