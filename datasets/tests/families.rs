//! The scenario families of `citywatch gen --families` (issue 15): each one
//! is there, with parameters in its documented ranges, and switching the
//! legitimate families on leaves the fraud itself as it was.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use citywatch_datasets::city::City;
use citywatch_datasets::fraud::{CampaignKind, Families, FraudRates, NumberKind, plan};
use citywatch_datasets::people::{Party, PeopleRates, Population};
use citywatch_datasets::{DEFAULT_START_MS, GenOptions, generate};
use citywatch_engine::contract::Table;
use common::{raw, strs};

const DAY_MS: i64 = 86_400_000;

fn population(n: u64, seed: u64) -> Population {
    Population::new(Arc::new(City::qingdao()), n, seed, PeopleRates::default(), DEFAULT_START_MS)
}

#[test]
fn parse_names_and_refuse_unknown_ones() {
    let f = Families::parse("sim-farms, late-reports").unwrap();
    assert!(f.sim_farms && f.late_reports && !f.aged_sims && f.any());
    assert!(!Families::parse("none").unwrap().any());
    let hard = Families::parse("hard").unwrap();
    assert!(hard.sim_farms && hard.aged_sims && hard.call_backs && hard.legit_virtual && hard.legit_fanout);
    let e = Families::parse("sim-farm").unwrap_err();
    assert!(e.contains("sim-farm") && e.contains("sim-farms"), "{e}");
}

#[test]
fn sim_farms_aged_sims_call_backs_and_late_reports_are_in_their_ranges() {
    let pop = population(50_000, 3);
    let days = 4;
    let mut rates = FraudRates { families: Families::parse("hard").unwrap(), ..FraudRates::default() };
    rates.families.legit_virtual = false;
    let p = plan(&pop, &rates, DEFAULT_START_MS, days);

    // SIM farms: every number local; calls per number per day at most 40; pools of 10-30 a day.
    let farm: HashSet<u32> =
        (0..p.numbers.len() as u32).filter(|&n| p.numbers[n as usize].campaign == CampaignKind::SimFarm).collect();
    assert!(!farm.is_empty(), "sim-farms plans campaigns");
    let mut per_day: HashMap<(u32, i64), u32> = HashMap::new();
    for c in p.calls.iter().filter(|c| farm.contains(&c.number)) {
        *per_day.entry((c.number, (c.ts_ms - DEFAULT_START_MS) / DAY_MS)).or_default() += 1;
    }
    let max = per_day.values().copied().max().unwrap();
    assert!((12..=40).contains(&max), "calls per farm number per day at most the cap (20-40): max {max}");
    let numbers_day0 = per_day.keys().filter(|(_, d)| *d == 0).count();
    assert!((10..=30 * 3).contains(&numbers_day0), "{numbers_day0} farm numbers on day 0");

    // Aged SIMs: every local fraud number activated at least a year before, and most numbers local.
    let local: Vec<_> = p.numbers.iter().filter(|n| n.kind == NumberKind::Local).collect();
    assert!(local.len() * 2 > p.numbers.len(), "{} of {} numbers local", local.len(), p.numbers.len());
    for n in &local {
        let act = n.registration.unwrap().activated_ms;
        assert!((DEFAULT_START_MS - 9 * 365 * DAY_MS..=DEFAULT_START_MS - 365 * DAY_MS).contains(&act), "{act}");
        assert!(n.aged);
    }

    // Call-backs: to fraud numbers only, from targets and from others.
    assert!(!p.call_backs.is_empty());
    let victims: HashSet<u64> = p.calls.iter().map(|c| c.victim).collect();
    let mut from_victims = 0;
    for c in &p.call_backs {
        assert!(matches!(c.callee, Party::Fraud(_)));
        if let Party::Sub(v) = c.caller {
            from_victims += usize::from(victims.contains(&v));
        }
    }
    assert!(from_victims > 0 && from_victims < p.call_backs.len(), "{from_victims} of {}", p.call_backs.len());

    // Late reports: after a loss, 2-72 h (plus the minute to file), at a rate near 30%.
    let losses: HashMap<(u32, u64), i64> =
        p.calls.iter().filter_map(|c| c.loss_ts_ms.map(|l| ((c.number, c.victim), l))).collect();
    let after: Vec<i64> = p
        .reports
        .iter()
        .filter(|r| r.after_loss)
        .map(|r| (r.ts_ms - losses[&(r.number, r.reporter)]) / 60_000)
        .collect();
    assert!(after.iter().all(|&m| (121..=72 * 60 + 1).contains(&m)), "{:?}", &after[..after.len().min(10)]);
    let rate = (after.len() as u64 + p.reports_after_end) as f64 / losses.len() as f64;
    assert!((0.15..0.45).contains(&rate), "report rate {rate:.3} over {} losses", losses.len());
}

#[test]
fn legit_families_are_written_and_leave_the_fraud_unchanged() {
    let gen_with = |families: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut opts =
            GenOptions { subscribers: 3_000, days: 1, seed: 9, out: dir.path().to_owned(), ..GenOptions::default() };
        opts.rates.fraud.families = Families::parse(families).unwrap();
        opts.rates.fraud.calls_per_million_per_day = 20_000.0;
        opts.rates.patrol.enabled = false;
        let s = generate(&opts).unwrap();
        (dir, s)
    };
    let (plain, ps) = gen_with("none");
    let (legit, ls) = gen_with("legit-virtual,legit-fanout");
    assert_eq!(ps.family_calls, 0);
    assert!(!plain.path().join("labels/families.json").exists(), "no families, no families.json");
    assert!(ls.family_calls > 100, "{} legitimate look-alike calls", ls.family_calls);
    assert_eq!((ps.fraud_calls, ps.losses, ps.fraud_numbers), (ls.fraud_calls, ls.losses, ls.fraud_numbers));
    // The labelled calls are the same calls (their ids move: more calls are interleaved).
    let labels = |d: &std::path::Path| {
        let mut v: Vec<(String, String)> = raw(d, Table::FraudLabels)
            .iter()
            .flat_map(|b| strs(b, "caller").into_iter().zip(strs(b, "victim")))
            .map(|(c, v)| (c.unwrap(), v.unwrap()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(labels(plain.path()), labels(legit.path()));
    let fams: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(legit.path().join("labels/families.json")).unwrap()).unwrap();
    let names: HashSet<&str> = fams["numbers"].as_object().unwrap().values().filter_map(|v| v.as_str()).collect();
    assert!(names.contains("legit_virtual") && names.contains("legit_fanout") && names.contains("standard"));
}
