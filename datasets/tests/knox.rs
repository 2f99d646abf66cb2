//! Generated burglaries carry near repeats: the Knox test finds space-time excess,
//! and finds none when triggering is switched off.

use citywatch_datasets::city::City;
use citywatch_datasets::crime::{CrimeRates, simulate};
use citywatch_datasets::knox::knox;
use citywatch_engine::contract::Category;

fn burglaries(branching: f64) -> Vec<(i64, (f64, f64))> {
    let city = City::qingdao();
    let rates = CrimeRates { burglary_branching: branching, ..CrimeRates::default() };
    let start = citywatch_engine::lateness::parse_date_ms("2026-03-02").unwrap();
    simulate(&city, &rates, 9, start, 28)
        .into_iter()
        .filter(|i| i.category == Category::Burglary)
        .map(|i| (i.occurred_ms, i.pos))
        .collect()
}

#[test]
fn knox_finds_near_repeat_excess_in_generated_burglaries() {
    let events = burglaries(CrimeRates::default().burglary_branching);
    let k = knox(&events, 200.0, 7 * 86_400_000, 99, 1);
    eprintln!("near repeats on: {k:?}");
    assert!(events.len() > 500, "{}", events.len());
    assert!(k.ratio > 1.3, "{k:?}");
    assert!(k.p_value <= 0.01, "{k:?}");
}

#[test]
fn knox_finds_no_excess_without_triggering() {
    let events = burglaries(0.0);
    let k = knox(&events, 200.0, 7 * 86_400_000, 99, 1);
    eprintln!("near repeats off: {k:?}");
    assert!(k.ratio < 1.6, "{k:?}");
    assert!(k.p_value > 0.01, "{k:?}");
}
