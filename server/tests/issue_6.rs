//! Issue 6: alert delivery. Each test runs a real server (fake pipeline) on a free port.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{P1, P2, SseClient, TestServer, alarm, config, request};
use serde_json::json;

const T0: i64 = 1_767_225_600_000; // 2026-01-01

#[test]
fn issue_6_no_token_is_401_everywhere_but_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/x",
        "/api/v1/alerts/x/cap",
        "/api/v1/stream",
        "/api/v1/risk",
        "/api/v1/units",
        "/api/v1/grid",
        "/api/v1/grid/cells?bbox=0,0,1,1",
        "/api/v1/me",
        "/api/v1/clock",
        "/metrics",
    ] {
        let r = s.get(path, None);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").is_some(), "{path}");
        let r = request(s.addr, "GET", path, Some("cw_00000000_bad"), &[], b"");
        assert_eq!(r.status, 401, "{path} with a bad token");
    }
    for path in ["/api/v1/ingest/alarms", "/api/v1/alerts/x/ack", "/api/v1/alerts/x/resolve", "/api/v1/reveal"] {
        assert_eq!(s.post(path, None, "{}").status, 401, "{path}");
    }
    assert_eq!(s.get("/healthz", None).status, 200);
    assert_eq!(s.get("/api/v1/me", Some("o-c1")).json()["officer"]["scope"], "c1");
    s.stop();
}

#[test]
fn issue_6_scope_isolation_for_list_by_id_stream_risk_and_units() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let cell = |p: (f64, f64)| {
        citywatch_engine::geo::Point::from_degrees(p.0, p.1).unwrap().cell(h3o::Resolution::Nine).to_string()
    };
    *s.fake().risk.lock().unwrap() = vec![(cell(P1), 0.9), (cell(P2), 0.5)];
    let mut c1_stream = SseClient::connect(s.addr, s.token("o-c1"), Some(0));
    assert_eq!(c1_stream.status, 200);
    s.alarms(&[alarm(1, T0, P1), alarm(2, T0 + 1, P2)]);
    let all = s.wait_alerts(2);
    let id_of = |community: &str| {
        all.iter().find(|a| a["community"] == community).unwrap()["alert_id"].as_str().unwrap().to_owned()
    };
    let (a1, a2) = (id_of("c1"), id_of("c2"));
    assert_eq!(all.iter().find(|a| a["alert_id"] == a1.as_str()).unwrap()["assignee"], "o-c1");

    // List.
    let mine = s.get("/api/v1/alerts", Some("o-c1")).json();
    let ids: Vec<&str> = mine["alerts"].as_array().unwrap().iter().map(|a| a["alert_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a1.as_str()]);
    // By id, actions and CAP: 404 outside the scope, never 403.
    assert_eq!(s.get(&format!("/api/v1/alerts/{a1}"), Some("o-c1")).status, 200);
    assert_eq!(s.get(&format!("/api/v1/alerts/{a2}"), Some("o-c1")).status, 404);
    assert_eq!(s.get(&format!("/api/v1/alerts/{a2}/cap"), Some("o-c1")).status, 404);
    assert_eq!(s.post(&format!("/api/v1/alerts/{a2}/ack"), Some("o-c1"), "").status, 404);
    assert_eq!(s.post(&format!("/api/v1/alerts/{a2}/resolve"), Some("o-c1"), r#"{"note":"x"}"#).status, 404);
    assert_eq!(s.get("/api/v1/alerts/no-such-id", Some("o-c1")).status, 404);
    let cap = s.get(&format!("/api/v1/alerts/{a1}/cap"), Some("o-c1"));
    assert_eq!(cap.status, 200);
    assert!(cap.body.contains("<alert") && cap.body.contains(&a1), "{}", cap.body);
    // Stream: only c1's alert.
    let ev = c1_stream.next(Duration::from_secs(3)).expect("c1 gets its alert");
    assert_eq!(ev.data["alert"]["alert_id"], a1.as_str());
    assert!(c1_stream.next(Duration::from_millis(300)).is_none(), "c1 must not see c2's alert");
    // Risk.
    let risk = s.get("/api/v1/risk", Some("o-c1")).json();
    let cells: Vec<&str> =
        risk["features"].as_array().unwrap().iter().map(|f| f["properties"]["cell"].as_str().unwrap()).collect();
    assert_eq!(cells, vec![cell(P1).as_str()]);
    assert_eq!(s.get("/api/v1/risk", Some("o-an")).json()["features"].as_array().unwrap().len(), 2);
    let grid = s.get("/api/v1/grid", Some("o-c1")).json();
    assert_eq!(grid["cells"], 1, "{grid}");
    let named: Vec<_> = grid["communities"].as_array().unwrap().iter().filter(|c| !c.is_null()).collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["id"], "c1");
    assert_eq!(s.get("/api/v1/grid", Some("o-an")).json()["cells"], 2);
    let all = "/api/v1/grid/cells?bbox=-2000000000,-2000000000,2000000000,2000000000";
    assert_eq!(
        s.get(all, Some("o-c1")).json()["cells"].as_array().unwrap().len(),
        4,
        "one cell: x, y, community, grid"
    );
    let bad = s.get("/api/v1/grid/cells?bbox=1,2", Some("o-an"));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("four integers"), "{}", bad.body);
    // Units.
    let patrols = format!(
        "{}\n{}\n",
        json!({"unit_id": "u1", "ts_ms": T0, "lat": P1.0, "lon": P1.1, "status": "available", "alarm_id": null}),
        json!({"unit_id": "u2", "ts_ms": T0, "lat": P2.0, "lon": P2.1, "status": "on_scene", "alarm_id": 2})
    );
    assert_eq!(s.post("/api/v1/ingest/patrols", Some("o-an"), &patrols).status, 200);
    let units = s.get("/api/v1/units", Some("o-c1")).json();
    assert_eq!(units["units"].as_array().unwrap().len(), 1);
    assert_eq!(units["units"][0]["unit_id"], "u1");
    assert_eq!(s.get("/api/v1/units", Some("o-an")).json()["units"].as_array().unwrap().len(), 2);
    // Ingest is for city-scope tokens only.
    assert_eq!(s.post("/api/v1/ingest/patrols", Some("o-c1"), &patrols).status, 403);
    s.stop();
}

#[test]
fn issue_6_bad_ingest_row_is_400_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let mut wrong_type = alarm(11, T0, P1);
    wrong_type["priority"] = json!("high");
    let mut bad_vocab = alarm(12, T0, P1);
    bad_vocab["category"] = json!("alien_landing");
    let mut bad_number = alarm(13, T0, P1);
    bad_number["reporter"] = json!("call me");
    let body: String = [alarm(10, T0, P1), wrong_type, bad_vocab, bad_number, alarm(14, T0, P2)]
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        + "not json\n";
    let r = s.post("/api/v1/ingest/alarms", Some("o-an"), &body);
    assert_eq!(r.status, 400, "{}", r.body);
    let rejected = r.json()["rejected"].as_array().unwrap().clone();
    let rows: Vec<u64> = rejected.iter().map(|x| x["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, vec![1, 2, 3, 5], "{rejected:?}");
    assert_eq!(rejected[0]["column"], "priority");
    assert_eq!(rejected[1]["code"], "unknown_value");
    assert_eq!(rejected[2]["column"], "reporter");
    assert_eq!(s.fake().events.load(Ordering::SeqCst), 0, "nothing reached the pipeline");
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.get("/api/v1/alerts", Some("o-an")).json()["alerts"].as_array().unwrap().is_empty());
    let metrics = s.get("/metrics", Some("o-an")).body;
    assert!(metrics.contains("citywatch_rejected_rows_total{table=\"alarms\"} 4"), "{metrics}");
    // A missing column is refused as a whole.
    let r = s.post("/api/v1/ingest/alarms", Some("o-an"), "{\"alarm_id\": 1}\n");
    assert_eq!(r.status, 400);
    assert_eq!(s.fake().events.load(Ordering::SeqCst), 0);
    s.stop();
}

#[test]
fn issue_6_arrow_ipc_ingest_goes_through_the_same_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let buf = common::alarms_arrow_ipc(T0, [P1, P1]);
    let ct = [("Content-Type", "application/vnd.apache.arrow.stream")];
    let r = request(s.addr, "POST", "/api/v1/ingest/alarms", Some(s.token("o-an")), &ct, &buf);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 2);
    assert_eq!(s.wait_alerts(1).len(), 1);
    let r = request(s.addr, "POST", "/api/v1/ingest/alarms", Some(s.token("o-an")), &ct, b"garbage");
    assert_eq!(r.status, 400);
    s.stop();
}

#[test]
fn issue_6_alert_and_its_lifecycle_survive_a_restart_and_duplicates_update_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    s.alarms(&[alarm(1, T0, P1)]);
    let id = s.wait_alerts(1)[0]["alert_id"].as_str().unwrap().to_owned();
    // Same model, kind and subject within the cooldown: updates the open alert.
    s.alarms(&[alarm(1, T0 + 60_000, P1)]);
    std::thread::sleep(Duration::from_millis(200));
    let all = s.wait_alerts(1);
    assert_eq!(all[0]["updates"], 1);
    // Outside the cooldown (10 min by default) it is a new alert.
    s.alarms(&[alarm(1, T0 + 60_000 + 600_001, P1)]);
    assert_eq!(s.wait_alerts(2).len(), 2);
    let r = s.post(&format!("/api/v1/alerts/{id}/ack"), Some("o-c1"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.post(&format!("/api/v1/alerts/{id}/ack"), Some("o-c1"), "").status, 409);
    assert_eq!(s.post(&format!("/api/v1/alerts/{id}/resolve"), Some("o-c1"), "{}").status, 400, "note required");
    s.stop();

    let s = TestServer::start(dir.path());
    let a = s.get(&format!("/api/v1/alerts/{id}"), Some("o-c1")).json();
    assert_eq!(a["status"], "acknowledged");
    assert_eq!(a["acked_by"], "o-c1");
    assert_eq!(a["event_ts_ms"], T0 + 60_000);
    let r = s.post(&format!("/api/v1/alerts/{id}/resolve"), Some("o-c1"), r#"{"note": "unit sent, false alarm"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["resolved_by"], "o-c1");
    assert_eq!(r.json()["note"], "unit sent, false alarm");
    let filtered = s.get("/api/v1/alerts?status=resolved&model=fake", Some("o-an")).json();
    assert_eq!(filtered["count"], 1);
    assert_eq!(s.get("/api/v1/alerts?status=new", Some("o-an")).json()["count"], 1);
    assert_eq!(s.get(&format!("/api/v1/alerts?since={}", T0 + 70_000), Some("o-an")).json()["count"], 1);
    let page = s.get("/api/v1/alerts?limit=1", Some("o-an")).json();
    assert_eq!((page["count"].as_u64(), page["next_offset"].as_u64()), (Some(1), Some(1)));
    s.stop();
}

#[test]
fn issue_6_last_event_id_reconnect_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let mut stream = SseClient::connect(s.addr, s.token("o-an"), None);
    s.alarms(&[alarm(1, T0, P1), alarm(2, T0, P2), alarm(3, T0, P1)]);
    let first = stream.next(Duration::from_secs(3)).unwrap();
    let second = stream.next(Duration::from_secs(3)).unwrap();
    drop(stream); // the third is in flight or unsent: the client never read it
    s.alarms(&[alarm(4, T0, P1), alarm(5, T0, P2)]);
    s.wait_alerts(5);
    let r =
        s.post(&format!("/api/v1/alerts/{}/ack", first.data["alert"]["alert_id"].as_str().unwrap()), Some("o-an"), "");
    assert_eq!(r.status, 200);
    let mut again = SseClient::connect(s.addr, s.token("o-an"), Some(second.id));
    let mut got = vec![first.id, second.id];
    let mut subjects = vec![];
    while let Some(ev) = again.next(Duration::from_millis(700)) {
        got.push(ev.id);
        subjects.push((
            ev.data["change"].as_str().unwrap().to_owned(),
            ev.data["alert"]["subject"].as_str().unwrap().to_owned(),
        ));
    }
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(got, sorted, "ids strictly increasing, no repeats: {got:?}");
    assert_eq!(got.len(), 6, "3 + 2 new alerts and one ack: {got:?} {subjects:?}");
    assert_eq!(subjects.last().unwrap().0, "acknowledged");
    // Also across a restart: resume after the last id seen.
    let last = *got.last().unwrap();
    s.stop();
    let s = TestServer::start(dir.path());
    s.alarms(&[alarm(6, T0, P1)]);
    let mut after = SseClient::connect(s.addr, s.token("o-an"), Some(last));
    let ev = after.next(Duration::from_secs(3)).unwrap();
    assert_eq!(ev.data["alert"]["subject"], "alarm:6");
    assert!(ev.id > last);
    assert!(after.next(Duration::from_millis(300)).is_none());
    s.stop();
}

#[test]
fn issue_6_unacknowledged_alert_escalates_one_level_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { escalation_timeout_ms: 300, ..common::config(dir.path()) };
    let s = TestServer::start_with(dir.path(), cfg);
    let mut station = SseClient::connect(s.addr, s.token("o-s1"), None);
    s.alarms(&[alarm(1, T0, P1), alarm(2, T0 + 1, P1)]);
    let alerts = s.wait_alerts(2);
    let (esc, acked) = (alerts[0]["alert_id"].as_str().unwrap(), alerts[1]["alert_id"].as_str().unwrap());
    assert_eq!(s.post(&format!("/api/v1/alerts/{acked}/ack"), Some("o-c1"), "").status, 200);
    // The station (scope s1) sees both new alerts, then the escalation pushed to it.
    let mut escalated = None;
    while let Some(ev) = station.next(Duration::from_secs(3)) {
        if ev.data["change"] == "escalated" {
            escalated = Some(ev);
            break;
        }
    }
    let ev = escalated.expect("an escalation pushed to the station");
    assert_eq!(ev.data["alert"]["alert_id"], esc);
    assert_eq!(ev.data["alert"]["level"], "station");
    assert_eq!(ev.data["alert"]["assignee"], "o-s1");
    assert_eq!(ev.data["alert"]["escalations"][0]["from"], "o-c1");
    // Then to the district; the acknowledged one never moves.
    std::thread::sleep(Duration::from_millis(600));
    let a = s.get(&format!("/api/v1/alerts/{esc}"), Some("o-an")).json();
    assert_eq!(a["level"], "district");
    assert_eq!(a["assignee"], "o-d1");
    let b = s.get(&format!("/api/v1/alerts/{acked}"), Some("o-an")).json();
    assert_eq!(b["level"], "community");
    assert!(s.get("/metrics", Some("o-an")).body.contains("citywatch_escalations_total 2"));
    s.stop();
}

#[test]
fn issue_6_reveal_is_role_checked_reasoned_scoped_and_audited_and_the_chain_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let mut a = alarm(1, T0, P1);
    a["reporter"] = json!("+8613800000001");
    s.alarms(&[a]);
    let alert = s.wait_alerts(1)[0].clone();
    let id = alert["alert_id"].as_str().unwrap();
    let token = alert["evidence"]["reporter"].as_str().unwrap();
    assert_eq!(token.len(), 16);
    let body = |reason: &str| json!({"token": token, "alert_id": id, "reason": reason}).to_string();
    assert_eq!(s.post("/api/v1/reveal", Some("o-c1"), &body("")).status, 400, "reason required");
    assert_eq!(s.post("/api/v1/reveal", Some("o-s1"), &body("x")).status, 403, "station may not reveal");
    assert_eq!(s.post("/api/v1/reveal", Some("o-c2"), &body("x")).status, 404, "out of scope");
    let r = s.post("/api/v1/reveal", Some("o-c1"), &body("call the reporter back"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["number"], "+8613800000001");
    assert_eq!(s.get(&format!("/api/v1/alerts/{id}"), Some("o-c1")).status, 200);
    assert_eq!(s.post(&format!("/api/v1/alerts/{id}/ack"), Some("o-c1"), "").status, 200);
    s.stop();
    // The number is sealed at rest.
    let mut raw = std::fs::read(s_path(dir.path())).unwrap();
    raw.extend(std::fs::read(dir.path().join("store.sqlite-wal")).unwrap_or_default());
    assert!(!raw.windows(14).any(|w| w == b"+8613800000001"), "the number is stored in clear");

    let report = citywatch_server::audit_verify(&s_path(dir.path()), &config(dir.path()).audit_key_bytes()).unwrap();
    assert!(report.is_intact(), "{report:?}");
    let conn = rusqlite::Connection::open(s_path(dir.path())).unwrap();
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for want in ["login", "reveal", "view", "acknowledge"] {
        assert!(actions.iter().any(|a| a == want), "{want} missing from {actions:?}");
    }
    assert_eq!(report.rows as usize, actions.len());
    let reveal_seq: i64 = conn.query_row("SELECT seq FROM audit WHERE action = 'reveal'", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE audit SET reason = 'nothing to see' WHERE seq = ?1", [reveal_seq]).unwrap();
    drop(conn);
    let report = citywatch_server::audit_verify(&s_path(dir.path()), &config(dir.path()).audit_key_bytes()).unwrap();
    assert_eq!(report.broken.as_ref().map(|b| b.0), Some(reveal_seq), "{report:?}");
    // Deleting a row is found too.
    let conn = rusqlite::Connection::open(s_path(dir.path())).unwrap();
    conn.execute("UPDATE audit SET reason = 'call the reporter back' WHERE seq = ?1", [reveal_seq]).unwrap();
    assert!(
        citywatch_server::audit_verify(&s_path(dir.path()), &config(dir.path()).audit_key_bytes()).unwrap().is_intact(),
        "restored"
    );
    conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    drop(conn);
    let report = citywatch_server::audit_verify(&s_path(dir.path()), &config(dir.path()).audit_key_bytes()).unwrap();
    assert_eq!(report.broken.as_ref().map(|b| b.0), Some(3), "{report:?}");
}

#[test]
fn issue_6_failed_logins_are_audited_and_an_address_over_the_limit_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { auth_failures_per_minute: 3, ..common::config(dir.path()) };
    let s = TestServer::start_with(dir.path(), cfg);
    // A console that signed in before the failures.
    assert_eq!(s.get("/api/v1/me", Some("o-c1")).status, 200);
    let real = s.token("o-c2").to_owned();
    let id = real.split('_').nth(1).unwrap().to_owned();
    let secret = real.rsplit('_').next().unwrap().to_owned();
    let wrong = format!("cw_{id}_{}", "0".repeat(32));
    for n in 1..=3 {
        assert_eq!(request(s.addr, "GET", "/api/v1/me", Some(&wrong), &[], b"").status, 401, "failure {n}");
    }
    let r = request(s.addr, "GET", "/api/v1/alerts", Some(&wrong), &[], b"");
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(r.body.contains("too many failed authentications"), "{}", r.body);
    // A token not verified yet waits too (no argon2 run for this address) ...
    assert_eq!(s.get("/api/v1/me", Some("o-c2")).status, 429);
    // ... a signed-in console keeps working, and pages without a token are not limited.
    assert_eq!(s.get("/api/v1/me", Some("o-c1")).status, 200);
    assert_eq!(s.get("/healthz", None).status, 200);
    assert_eq!(s.get("/", None).status, 200);
    let metrics = s.get("/metrics", Some("o-c1")).body;
    assert!(metrics.contains("citywatch_auth_throttled_total 2"), "{metrics}");
    s.stop();

    let conn = rusqlite::Connection::open(s_path(dir.path())).unwrap();
    let failed: Vec<(String, String, String)> = conn
        .prepare("SELECT actor, target, reason FROM audit WHERE action = 'login_failed' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for (n, (actor, target, reason)) in failed.iter().enumerate() {
        assert_eq!((actor.as_str(), target.as_str()), ("-", id.as_str()));
        assert!(reason.contains("127.0.0.1") && reason.contains(&format!("failure {}", n + 1)), "{reason}");
        assert!(!reason.contains(&secret) && !target.contains(&secret));
    }
    assert!(failed[2].2.contains("limit reached"), "{failed:?}");
    drop(conn);
    assert!(
        citywatch_server::audit_verify(&s_path(dir.path()), &config(dir.path()).audit_key_bytes()).unwrap().is_intact()
    );
}

fn s_path(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("store.sqlite")
}

#[test]
fn issue_6_demo_credentials_store_only_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.json");
    let t = citywatch_server::demo_credentials(&path, &common::city()).unwrap();
    assert_eq!(t.analyst.0, "o-an");
    assert_eq!(t.community.0, "o-c1");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&t.analyst.1) && !text.contains(&t.community.1));
    assert!(text.contains("$argon2id$"));
}
