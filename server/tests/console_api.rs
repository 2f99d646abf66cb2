//! The console's own APIs: the event clock, the map geometry at the demo
//! city's size, and the pipeline health page's figures.

mod common;

use common::{P1, TestServer, alarm, big_city, config};

#[test]
fn clock_follows_the_latest_event_time_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let c = s.get("/api/v1/clock", Some("o-c1")).json();
    assert!(c["event_ms"].is_null(), "no event yet: {c}");
    assert_eq!(c["simulated"], false, "the test server's wall clock drives event time");
    assert_eq!(c["time_zone"], "Asia/Shanghai");
    s.alarms(&[alarm(1, 1_767_225_600_000, P1), alarm(2, 1_767_225_500_000, P1)]);
    assert_eq!(s.get("/api/v1/clock", Some("o-c1")).json()["event_ms"], 1_767_225_600_000i64);
    s.stop();
}

#[test]
fn demo_size_city_map_is_small_and_scoped() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), config(dir.path()), big_city());
    let started = std::time::Instant::now();
    let r = s.get("/api/v1/grid", Some("o-an"));
    assert_eq!(r.status, 200);
    let g = r.json();
    let cells = g["cells"].as_u64().unwrap();
    assert!(cells > 130_000, "{cells}");
    // The GeoJSON of this many cells was ~470 B a cell; the overview must stay far below.
    assert!(r.body.len() < 2_000_000, "overview of {cells} cells is {} bytes", r.body.len());
    eprintln!("overview: {cells} cells, {} bytes, {:?}", r.body.len(), started.elapsed());
    assert!(g["borders"].as_array().unwrap().len() > 10);
    // The whole city is too many cells for one view; a small box is fine.
    let [x0, y0, x1, y1] = [0, 1, 2, 3].map(|i| g["bbox"][i].as_i64().unwrap());
    let all = s.get(&format!("/api/v1/grid/cells?bbox={x0},{y0},{x1},{y1}"), Some("o-an")).json();
    assert!(all["too_many"].as_u64().unwrap() > 40_000, "{all}");
    let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
    let view = s
        .get(&format!("/api/v1/grid/cells?bbox={},{},{},{}", cx - 2000, cy - 2000, cx + 2000, cy + 2000), Some("o-an"));
    let v = view.json();
    let n = v["cells"].as_array().unwrap().len() / 4;
    assert!(n > 100 && n < 40_000, "{n} cells in a 4 km box");
    // A community officer's overview holds their community only.
    let mine = s.get("/api/v1/grid", Some("o-c1")).json();
    assert_eq!(mine["cells"], 1);
    s.stop();
}

#[test]
fn health_counts_streams_rejections_and_alerts_per_model_for_analysts_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    assert_eq!(s.get("/api/v1/health", Some("o-c1")).status, 403, "not for a community officer");
    s.alarms(&[alarm(1, 1_767_225_600_000, P1), alarm(2, 1_767_225_601_000, P1)]);
    s.wait_alerts(2);
    // Two bad rows: an unknown category and a missing priority.
    let bad = "{\"alarm_id\": 3, \"ts_ms\": 1, \"category\": \"x\", \"priority\": 1, \"lat\": 36.0, \"lon\": 120.0, \"source\": \"110\"}\n\
               {\"alarm_id\": 4, \"ts_ms\": 1, \"category\": \"theft\", \"priority\": null, \"lat\": 36.0, \"lon\": 120.0, \"source\": \"110\"}\n";
    assert_eq!(s.post("/api/v1/ingest/alarms", Some("o-an"), bad).status, 400);
    let h = s.get("/api/v1/health", Some("o-an")).json();
    assert_eq!(h["events_in"]["alarms"], 2, "{h}");
    assert_eq!(h["rejected_rows"]["alarms"], 2, "{h}");
    let reasons = h["top_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{h}");
    assert!(reasons.iter().all(|r| r["table"] == "alarms" && r["rows"] == 1), "{h}");
    assert!(reasons.iter().any(|r| r["column"] == "category"), "{h}");
    let per_minute = &h["alerts_per_minute"]["models"]["fake"];
    assert_eq!(per_minute.as_array().unwrap().len(), 60);
    assert_eq!(per_minute.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 2, "{h}");
    assert_eq!(h["alerts_total"]["fake"], 2);
    assert_eq!(h["event_ms"], 1_767_225_601_000i64);
    assert!(h["store_bytes"].as_u64().unwrap() > 0);
    assert!(h["watermark_ms"].is_null(), "the fake pipeline has no watermark");
    s.stop();
}

#[test]
fn alerts_say_where_they_are_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    s.alarms(&[alarm(1, 1_767_225_600_000, P1)]);
    let a = &s.wait_alerts(1)[0];
    // The test city has no names: the ids stand in.
    assert_eq!(a["place"], "around community 'c1', street 's1', district 'd1'", "{a}");
    assert_eq!(a["names"]["assignee"], "o-c1", "officer names come from the officers table");
    let cap = s.get(&format!("/api/v1/alerts/{}/cap", a["alert_id"].as_str().unwrap()), Some("o-an"));
    assert!(
        cap.body.contains("<areaDesc>around community &apos;c1&apos;")
            || cap.body.contains("<areaDesc>around community 'c1'"),
        "{}",
        cap.body
    );
    assert!(cap.body.contains("<description>Alarm id: 1; Category: burglary</description>"), "{}", cap.body);
    s.stop();
}
