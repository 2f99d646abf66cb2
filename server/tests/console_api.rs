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
