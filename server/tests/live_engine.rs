//! Issue 6 with the real engine: the live dataflow (`LiveEngine`, model
//! `response_gap`) behind the server. An urgent alarm that nobody answers
//! becomes a `no_dispatch` alert once the server's clock passes its deadline,
//! routed to the station and pushed to its stream; the engine's own refusals
//! (call pairing) come back as a 400 with nothing applied.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use citywatch_engine::live::{LiveEngine, LiveOptions};
use citywatch_engine::reference::{Reference, UnitDirectory};
use citywatch_response_gap::{Config, ResponseGap};
use citywatch_server::LivePipeline;
use common::{P1, SseClient, TestServer, alarm, city};
use serde_json::json;

/// The server over the real engine with `response_gap` (urgent alarms need a
/// dispatch within 300 ms) in the small test city.
fn start(dir: &std::path::Path, workers: usize) -> TestServer {
    let jurisdiction = city();
    let units = UnitDirectory::default();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let model =
        ResponseGap { config: Config { max_priority: 2, dispatch_within_ms: 300, on_scene_within_ms: 3_600_000 } };
    let reference = Reference {
        subscribers: Arc::new(Default::default()),
        jurisdiction: jurisdiction.clone(),
        units: units.clone(),
    };
    let engine =
        LiveEngine::start(vec![Box::new(model)], reference, LiveOptions { workers, lateness_ms: 0, journal: None }, tx)
            .expect("start the live engine");
    let pipeline = Arc::new(LivePipeline::new(engine, units));
    TestServer::start_pipeline(dir, common::config(dir), pipeline, rx, jurisdiction)
}

#[test]
fn issue_6_real_engine_response_gap_alert_is_pushed_to_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1);

    let mut station = SseClient::connect(s.addr, s.token("o-s1"), Some(0));
    let mut community = SseClient::connect(s.addr, s.token("o-c2"), Some(0));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    // Alarm 1 is never answered; alarm 2 gets a unit dispatched in time.
    s.alarms(&[alarm(1, now, P1), alarm(2, now, P1)]);
    let dispatched =
        json!({"unit_id": "car-7", "ts_ms": now + 50, "lat": P1.0, "lon": P1.1, "status": "dispatched", "alarm_id": 2});
    assert_eq!(s.post("/api/v1/ingest/patrols", Some("o-an"), &format!("{dispatched}\n")).status, 200);

    let ev = station.next(Duration::from_secs(10)).expect("the response_gap alert reaches the station");
    let a = &ev.data["alert"];
    assert_eq!(a["model"], "response_gap");
    assert_eq!(a["kind"], "no_dispatch");
    assert_eq!(a["assignee"], "o-s1");
    assert_eq!(a["community"], "c1");
    assert!(a["subject"].as_str().unwrap().contains('1'), "{a}");
    assert!(station.next(Duration::from_millis(800)).is_none(), "alarm 2 was answered in time");
    assert!(community.next(Duration::from_millis(100)).is_none(), "c2 sees nothing of c1");

    // The engine refuses a call `end` with no open `start`: 400, nothing applied.
    let end = json!({"call_id": 9, "event": "end", "ts_ms": now, "caller": "+8613800000001",
                     "callee": "+8613900000002", "caller_lat": null, "caller_lon": null,
                     "callee_lat": null, "callee_lon": null, "duration_s": 30});
    let r = s.post("/api/v1/ingest/calls", Some("o-an"), &format!("{end}\n"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["rejected"][0]["row"], 0);
    let metrics = s.get("/metrics", Some("o-an")).body;
    assert!(metrics.contains("citywatch_alerts_total{model=\"response_gap\"} 1"), "{metrics}");
    assert!(metrics.contains("citywatch_events_in_total{table=\"calls\"} 0"), "{metrics}");
    s.stop();
}

/// Issue 19: a roster change sent live (a hand-over of station s1) is
/// validated and scoped like event ingest, and an alert raised after it goes
/// to the officer now on duty; one sent with a time the service's clock has
/// already passed applies from just after the latest event time.
#[test]
fn issue_19_a_live_hand_over_routes_the_next_alert_to_the_officer_on_duty() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 2);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let post = |id: &str, from: i64, status: &str| json!({"officer_id": id, "name": id, "role": "station", "scope": "s1", "valid_from_ms": from, "status": status});
    let body = |rows: &[serde_json::Value]| rows.iter().map(|r| format!("{r}\n")).collect::<String>();
    let hand_over = body(&[post("o-s1", now - 60_000, "off_duty"), post("o-s1b", now - 60_000, "on_duty")]);
    // Only a city-scope token (a feed or an analyst) changes the roster.
    assert_eq!(s.post("/api/v1/ingest/officers", Some("o-c1"), &hand_over).status, 403);
    // A bad row refuses the request whole, with the row's reason.
    let bad = s.post("/api/v1/ingest/officers", Some("o-an"), &body(&[post("o-s1b", now, "paused")]));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["rejected"][0]["code"], "unknown_value");
    // The hand-over, dated a minute ago: the service's clock has passed that,
    // so it holds from just after the latest event time it has seen.
    let r = s.post("/api/v1/ingest/officers", Some("o-an"), &hand_over);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["accepted"], 2);
    assert!(answer["from_ms"].as_i64().unwrap() >= now - 60_000, "{answer}");
    // An alarm after it: nobody answers, the no_dispatch alert goes to s1's officer on duty.
    s.alarms(&[alarm(1, now + 1_000, P1)]);
    let alerts = s.wait_alerts(1);
    assert_eq!(alerts[0]["kind"], "no_dispatch");
    assert_eq!(alerts[0]["assignee"], "o-s1b", "{}", alerts[0]);
    s.stop();
}
