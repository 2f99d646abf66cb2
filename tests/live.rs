//! Live mode: ingested events go through the same dataflow as replay; the
//! clock alone makes deadlines pass; a request with a bad call row changes nothing.

use std::time::Duration;

use citywatch_engine::contract::{AlarmSource, CallPhase, Category};
use citywatch_engine::event::{AlarmEvent, Event};
use citywatch_engine::geo::Point;
use citywatch_engine::live::{LiveEngine, LiveOptions, Refused};
use citywatch_engine::reference::Reference;
use citywatch_engine::testkit::T0_MS;
use citywatch_response_gap::ResponseGap;

const T0: u64 = T0_MS as u64;

fn alarm(id: u64, ts: u64) -> Event {
    Event::Alarm(AlarmEvent {
        ts_ms: ts,
        seq: 0,
        alarm_id: id,
        category: Category::Robbery,
        priority: 1,
        pos: Point::from_degrees(36.07, 120.38).unwrap(),
        reporter: None,
        suspect: None,
        suspect_class: Default::default(),
        source: AlarmSource::Hotline,
        late: false,
    })
}

fn call(id: u64, phase: CallPhase, ts: u64) -> Event {
    Event::Call(citywatch_engine::testkit::call_event(id, phase, ts))
}

#[test]
fn the_clock_makes_deadlines_pass_and_bad_requests_change_nothing() {
    let (tx, rx) = crossbeam_channel::bounded(16);
    let engine = LiveEngine::start(
        vec![Box::new(ResponseGap::default())],
        Reference::empty(),
        LiveOptions { workers: 2, lateness_ms: 5_000, journal: None },
        tx,
    )
    .unwrap();
    let ok = engine.ingest(vec![alarm(7, T0), call(1, CallPhase::Start, T0)]).unwrap();
    assert_eq!((ok.events, ok.late), (2, 0));
    // An end without a start refuses the whole request, even its good rows.
    let Refused::Rows(refused) =
        engine.ingest(vec![alarm(8, T0 + 1_000), call(99, CallPhase::End, T0 + 1_000)]).unwrap_err()
    else {
        panic!("bad rows are a row refusal")
    };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 1);
    assert_eq!(engine.totals(), (2, 0), "nothing of the refused request was applied");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "no deadline has passed yet");

    // No events, only the clock: 3 min + lateness later the dispatch deadline has passed.
    engine.advance_clock(T0 + 180_000 + 5_001);
    let alert = rx.recv_timeout(Duration::from_secs(10)).expect("the no_dispatch alert");
    assert_eq!((alert.kind.as_str(), alert.subject.as_str()), ("no_dispatch", "alarm:7"));
    assert_eq!(alert.event_ts_ms, (T0 + 180_000) as i64, "fires at the deadline's event time");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "alarm 8 was refused with its request");

    // A late event is still processed, at the watermark.
    let late = engine.ingest(vec![alarm(9, T0)]).unwrap();
    assert_eq!(late.late, 1);
    engine.shutdown().unwrap();
    // After shutdown the engine is unavailable (503 for the server), not the rows wrong (400).
    assert!(
        matches!(engine.ingest(vec![alarm(10, T0 + 2_000)]), Err(Refused::Unavailable(_))),
        "ingest after shutdown"
    );
}
