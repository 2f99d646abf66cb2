//! Issue 16's probes of bounded input, over the HTTP API with the fake
//! pipeline: far-future and far-past timestamps, 10 MB of bad lines, a 1 MB
//! unit id, a phone number sent as a JSON number, the lower-case `bearer`
//! scheme, an unauthenticated 50 MB upload, slow and idle connections, and
//! streams per token.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{P1, TestServer, alarm, config, request};
use serde_json::json;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The test config with the production time bounds (the shared one turns the age bound off).
fn bounded(dir: &std::path::Path) -> citywatch_server::ServerConfig {
    citywatch_server::ServerConfig { max_event_age_ms: 7 * 86_400_000, ..config(dir) }
}

#[test]
fn issue_16_far_future_and_far_past_rows_are_out_of_range_and_never_reach_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), bounded(dir.path()));
    let now = now_ms();
    for ts in [i64::MAX, now + 10 * 365 * 86_400_000, now + 6 * 60_000, 1, now - 8 * 86_400_000] {
        let body = format!("{}\n", alarm(1, ts, P1));
        let r = s.post("/api/v1/ingest/alarms", Some("o-an"), &body);
        assert_eq!(r.status, 400, "ts {ts}: {}", r.body);
        let j = r.json();
        assert_eq!(j["rejected"][0]["code"], "out_of_range", "ts {ts}: {}", r.body);
        assert_eq!(j["rejected"][0]["column"], "ts_ms");
    }
    assert_eq!(s.fake().events.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the pipeline");
    // Within the skew and the age bound: accepted.
    for ts in [now + 4 * 60_000, now - 6 * 86_400_000] {
        s.alarms(&[alarm(2, ts, P1)]);
    }
}

#[test]
fn issue_16_ten_megabytes_of_bad_lines_get_a_short_answer_that_counts_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    // Each line is one row with several bad columns (errors > rows).
    let line = "{\"alarm_id\": \"x\", \"ts_ms\": \"y\", \"category\": 5, \"priority\": -1, \"lat\": \"a\", \"lon\": \"b\", \"source\": 7, \"pad\": \"................................................................................................................................................................................................................................................................................................................................................................................................................................................................................\"}\n";
    let rows = 10 * 1024 * 1024 / line.len();
    let rows = rows.min(citywatch_server::ingest::MAX_ROWS);
    let body = line.repeat(rows);
    assert!(body.len() > 9 << 20);
    let r = s.post("/api/v1/ingest/alarms", Some("o-an"), &body);
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 128 << 10, "answer of {} bytes", r.body.len());
    let j = r.json();
    assert_eq!(j["rejected_rows"], rows as u64, "rows, not errors");
    assert!(j["error"].as_str().unwrap().starts_with(&format!("{rows} bad row(s)")));
    let listed: std::collections::BTreeSet<u64> =
        j["rejected"].as_array().unwrap().iter().map(|e| e["row"].as_u64().unwrap()).collect();
    assert_eq!(listed, (0..100).collect(), "the first 100 rows are listed");
    assert_eq!(j["rejected_by_code"]["wrong_type"], rows as u64);
    // More rows than a request may carry: refused as a whole, cheaply.
    let many = "{}\n".repeat(citywatch_server::ingest::MAX_ROWS + 1);
    let r = s.post("/api/v1/ingest/alarms", Some("o-an"), &many);
    assert!(r.status == 400 && r.body.contains("split it"), "{}", r.body);
}

#[test]
fn issue_16_long_unit_ids_and_phone_numbers_as_json_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let unit = "u".repeat(1 << 20);
    let row = json!({"unit_id": unit, "ts_ms": common::alarm(1, 1_767_225_600_000, P1)["ts_ms"], "lat": P1.0,
                     "lon": P1.1, "status": "available", "alarm_id": null});
    let r = s.post("/api/v1/ingest/patrols", Some("o-an"), &format!("{row}\n"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["rejected"][0]["code"], "too_long");
    assert!(r.body.len() < 4096, "the unit id is not echoed: {} bytes", r.body.len());

    let mut a = alarm(1, 1_767_225_600_000, P1);
    a["reporter"] = json!(8613912345678u64);
    let r = s.post("/api/v1/ingest/alarms", Some("o-an"), &format!("{a}\n"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.body.contains("8613912345678") && !r.body.contains("13912345678"), "{}", r.body);
    assert!(r.body.contains("a JSON number"), "{}", r.body);
}

#[test]
fn issue_16_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let auth = format!("bearer {}", s.token("o-an"));
    let r = request(s.addr, "GET", "/api/v1/me", None, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let auth = format!("BEARER {}", s.token("o-an"));
    assert_eq!(request(s.addr, "GET", "/api/v1/me", None, &[("Authorization", &auth)], b"").status, 200);
    let auth = format!("Basic {}", s.token("o-an"));
    assert_eq!(request(s.addr, "GET", "/api/v1/me", None, &[("Authorization", &auth)], b"").status, 401);
}

/// Sends only the head of a request; returns the status line the server answers with.
/// A raw socket on purpose: an HTTP client would send the body it announces.
fn head_only(addr: std::net::SocketAddr, head: &str) -> (String, Duration) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    c.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap_or(0);
    (String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned(), start.elapsed())
}

#[test]
fn issue_16_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let head = format!(
        "POST /api/v1/ingest/alarms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer cw_00000000_{}\r\nContent-Length: {}\r\n\r\n",
        "0".repeat(32),
        50 << 20
    );
    // Not a byte of the 50 MB is sent: the answer must come anyway.
    let (status, took) = head_only(s.addr, &head);
    assert!(status.contains(" 401 "), "{status}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // No token at all: same.
    let head = format!("POST /api/v1/ingest/alarms HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 50 << 20);
    assert!(head_only(s.addr, &head).0.contains(" 401 "));
    // A valid token but a body over max_body_bytes: 413.
    drop(s);
    let dir2 = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(
        dir2.path(),
        citywatch_server::ServerConfig { max_body_bytes: 1000, ..config(dir2.path()) },
    );
    let body = format!("{}\n", alarm(1, 1_767_225_600_000, P1)).repeat(20);
    assert_eq!(s.post("/api/v1/ingest/alarms", Some("o-an"), &body).status, 413);
}

#[test]
fn issue_16_slow_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { header_timeout_ms: 300, body_timeout_ms: 300, ..config(dir.path()) };
    let s = TestServer::start_with(dir.path(), cfg);
    // Raw sockets on purpose: these clients stall mid-request, which no HTTP
    // client does.
    let closed = |mut c: TcpStream| {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    };
    // Idle: connected, nothing sent.
    let idle = TcpStream::connect(s.addr).unwrap();
    assert!(closed(idle) < Duration::from_secs(3));
    // Slow headers: half a request head, then nothing.
    let mut slow = TcpStream::connect(s.addr).unwrap();
    slow.write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(closed(slow) < Duration::from_secs(3));
    // Slow body: authenticated head, 10 of 1000 bytes.
    let mut body = TcpStream::connect(s.addr).unwrap();
    let head = format!(
        "POST /api/v1/ingest/alarms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n{{\"alarm\":",
        s.token("o-an")
    );
    body.write_all(head.as_bytes()).unwrap();
    body.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let n = body.read(&mut buf).unwrap_or(0);
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buf[..n]));
    // The server still serves.
    assert_eq!(s.get("/api/v1/me", Some("o-an")).status, 200);
}

#[test]
fn issue_16_streams_per_token_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { max_streams_per_token: 1, ..config(dir.path()) };
    let s = TestServer::start_with(dir.path(), cfg);
    let first = common::SseClient::connect(s.addr, s.token("o-an"), None);
    let second = request(s.addr, "GET", "/api/v1/stream", Some(s.token("o-an")), &[], b"");
    assert_eq!(second.status, 429, "{}", second.body);
    // Another officer's token is counted apart.
    let _other = common::SseClient::connect(s.addr, s.token("o-c1"), None);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The slot frees once the server notices the closed stream (next keep-alive or change).
        s.alarms(&[alarm(5, 1_767_225_600_000, P1)]);
        // Only the answer's head: a stream's body never ends. Dropping the
        // answer closes the connection, freeing the slot again.
        let opened = common::client()
            .get(format!("http://{}/api/v1/stream", s.addr))
            .header("Authorization", format!("Bearer {}", s.token("o-an")))
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .call()
            .is_ok_and(|answer| answer.status() == 200);
        if opened {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream's slot was never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(seq, actor, action, target, reason)` of every audit row.
fn audit_rows(store: &std::path::Path) -> Vec<(i64, String, String, String, String)> {
    let conn = rusqlite::Connection::open(store).unwrap();
    let mut q = conn.prepare("SELECT seq, actor, action, target, reason FROM audit ORDER BY seq").unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn issue_16_refused_reveals_and_out_of_scope_probes_are_audited_and_the_keyed_chain_resists_rewriting() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite");
    let key = config(dir.path()).audit_key_bytes();
    let s = TestServer::start(dir.path());
    let mut a = alarm(1, 1_767_225_600_000, P1);
    a["reporter"] = json!("+8613800000001");
    s.alarms(&[a]);
    let alert = s.wait_alerts(1)[0].clone();
    let id = alert["alert_id"].as_str().unwrap();
    let token = alert["evidence"]["reporter"].as_str().unwrap();
    let body = |reason: &str| json!({"token": token, "alert_id": id, "reason": reason}).to_string();
    assert_eq!(s.post("/api/v1/reveal", Some("o-s1"), &body("curious")).status, 403);
    assert_eq!(s.post("/api/v1/reveal", Some("o-c1"), &body(" ")).status, 400);
    assert_eq!(s.post("/api/v1/reveal", Some("o-c2"), &body("probe")).status, 404);
    assert_eq!(s.get(&format!("/api/v1/alerts/{id}"), Some("o-c2")).status, 404);
    assert_eq!(s.get("/api/v1/alerts/0000000000000000", Some("o-c1")).status, 404);
    s.stop();

    let rows = audit_rows(&store);
    let has = |actor: &str, action: &str, reason_part: &str| {
        rows.iter().any(|r| r.1 == actor && r.2 == action && r.4.contains(reason_part))
    };
    assert!(has("o-s1", "reveal_refused", "403"), "{rows:#?}");
    assert!(has("o-c1", "reveal_refused", "400"), "{rows:#?}");
    assert!(has("o-c2", "reveal_refused", "404"), "{rows:#?}");
    assert!(rows.iter().filter(|r| r.1 == "o-c2" && r.2 == "not_found").count() >= 2, "{rows:#?}");
    assert!(has("o-c1", "not_found", ""), "{rows:#?}");

    let report = citywatch_server::audit_verify(&store, &key).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.rows as usize, rows.len());
    // The wrong key does not verify the right chain.
    assert!(!citywatch_server::audit_verify(&store, &[7u8; 32]).unwrap().is_intact());

    // An insider edits a row and recomputes the chain the way they can
    // without the key (plain SHA-256, the old scheme): caught.
    let conn = rusqlite::Connection::open(&store).unwrap();
    let mut prev = citywatch_server::audit::GENESIS.to_owned();
    let full: Vec<(i64, i64, String, String, String, String)> = conn
        .prepare("SELECT seq, at_ms, actor, action, target, reason FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, at, actor, action, target, reason) in &full {
        let reason = if action == "reveal_refused" { "nothing".to_owned() } else { reason.clone() };
        let body = json!([seq, at, actor, action, target, reason]).to_string();
        use sha2::Digest;
        let hash: String = sha2::Sha256::digest([prev.as_bytes(), body.as_bytes()].concat())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        conn.execute(
            "UPDATE audit SET reason = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
            rusqlite::params![seq, reason, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    drop(conn);
    let report = citywatch_server::audit_verify(&store, &key).unwrap();
    assert_eq!(report.broken.as_ref().map(|b| b.0), Some(1), "rewritten from the first row: {report:?}");

    // Tail deletion: a valid shorter chain, caught only against the recorded head.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = dir2.path().join("store.sqlite");
    let key2 = config(dir2.path()).audit_key_bytes();
    let s = TestServer::start(dir2.path());
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/alerts/0000000000000000", Some("o-c1")).status, 404);
    }
    s.stop();
    let before = citywatch_server::audit_verify(&store2, &key2).unwrap();
    assert!(before.is_intact() && before.rows >= 4, "{before:?}");
    let conn = rusqlite::Connection::open(&store2).unwrap();
    conn.execute("DELETE FROM audit WHERE seq > ?1", [before.rows as i64 - 2]).unwrap();
    drop(conn);
    let after = citywatch_server::audit_verify(&store2, &key2).unwrap();
    assert!(after.is_intact(), "a truncated chain is still a chain: {after:?}");
    assert!(!after.contains(&before.head), "the recorded head is gone: truncation found");
    assert!(before.contains(&before.hashes[0]) && after.contains(&after.head));
}

/// A pipeline whose ingest waits until released: a stalled engine.
struct Stuck {
    released: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

impl citywatch_server::Pipeline for Stuck {
    fn ingest(&self, _: Vec<citywatch_engine::event::Event>) -> Result<u64, citywatch_server::PipelineRefusal> {
        let mut r = self.released.lock().unwrap();
        while !*r {
            r = self.wake.wait(r).unwrap();
        }
        Ok(0)
    }
    fn advance_clock(&self, _: u64) {}
}

#[test]
fn issue_16_healthz_turns_503_while_the_engine_does_not_take_events_and_ingest_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { stall_after_ms: 200, max_concurrent_ingests: 1, ..config(dir.path()) };
    let stuck = std::sync::Arc::new(Stuck { released: std::sync::Mutex::new(false), wake: std::sync::Condvar::new() });
    let (_tx, rx) = crossbeam_channel::bounded(16);
    let s = TestServer::start_pipeline(dir.path(), cfg, stuck.clone(), rx, common::city());
    assert_eq!(request(s.addr, "GET", "/healthz", None, &[], b"").status, 200);
    let (addr, token) = (s.addr, s.token("o-an").to_owned());
    let body = format!("{}\n", alarm(1, 1_767_225_600_000, P1));
    let blocked = {
        let body = body.clone();
        std::thread::spawn(move || request(addr, "POST", "/api/v1/ingest/alarms", Some(&token), &[], body.as_bytes()))
    };
    std::thread::sleep(Duration::from_millis(500));
    let h = request(s.addr, "GET", "/healthz", None, &[], b"");
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(h.body.contains("stalled"));
    // The one ingest slot is taken: the next request is told to come back.
    let busy = s.post("/api/v1/ingest/alarms", Some("o-an"), &body);
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert_eq!(busy.header("retry-after"), Some("1"));
    let m = s.get("/metrics", Some("o-an")).body;
    assert!(m.contains("citywatch_ingest_in_flight 1") && m.contains("citywatch_ingest_busy_total 1"), "{m}");
    *stuck.released.lock().unwrap() = true;
    stuck.wake.notify_all();
    assert_eq!(blocked.join().unwrap().status, 200);
    assert_eq!(request(s.addr, "GET", "/healthz", None, &[], b"").status, 200);
}

/// Tokens issued or revoked while the server runs take effect within the
/// poll interval, without a restart; a credentials file that does not parse
/// leaves the tokens in force as they were.
#[test]
fn issue_16_tokens_issued_and_revoked_while_running_take_effect_without_a_restart() {
    use citywatch_server::auth::CredentialsFile;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(
        dir.path(),
        citywatch_server::ServerConfig { credentials_poll_ms: 100, ..config(dir.path()) },
    );
    let path = dir.path().join("credentials.json");
    let me = |token: &str| request(s.addr, "GET", "/api/v1/me", Some(token), &[], b"").status;
    let within = |what: &str, want: u16, token: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while me(token) != want {
            assert!(Instant::now() < deadline, "{what}: still not {want} after 5 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // An analyst's token is in use (and cached) before the changes.
    let analyst = s.token("o-an").to_owned();
    assert_eq!(me(&analyst), 200);
    let mut file = CredentialsFile::load(&path).unwrap();
    let fresh = file.issue("o-c1").unwrap();
    assert_eq!(me(&fresh), 401, "not in the file the server loaded");
    file.save(&path).unwrap();
    within("a token issued while running", 200, &fresh);
    // Revoking the analyst's token ends it although it was verified and cached.
    assert_eq!(file.revoke(&analyst), vec!["o-an".to_owned()]);
    file.save(&path).unwrap();
    within("a revoked token", 401, &analyst);
    assert_eq!(me(&fresh), 200, "the other tokens stay");
    // A broken file is not applied.
    std::fs::write(&path, "{ not json").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(me(&fresh), 200, "a file that does not parse changes nothing");
    s.stop();
}

/// Reads that carry evidence leave audit rows: one per list request with how
/// many alerts it read, and one when a live stream opens and one when it
/// closes with how many alert changes it sent.
#[test]
fn issue_16_list_and_stream_reads_of_evidence_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    s.alarms(&[alarm(1, 1_767_225_600_000, P1), alarm(2, 1_767_225_601_000, P1)]);
    s.wait_alerts(2);
    let before = audit_rows(&s.store_path).iter().filter(|r| r.2 == "list").count();
    let r = s.get("/api/v1/alerts?model=fake&limit=50", Some("o-an"));
    assert_eq!(r.status, 200);
    let rows = audit_rows(&s.store_path);
    let lists: Vec<_> = rows.iter().filter(|r| r.2 == "list").collect();
    assert_eq!(lists.len(), before + 1, "one row per list request");
    let last = lists.last().unwrap();
    assert_eq!(last.1, "o-an");
    assert!(last.3.contains("model=fake") && last.3.contains("limit=50"), "{last:?}");
    assert!(last.4.starts_with("2 alert(s) read"), "{last:?}");
    // A stream: opened, two changes in its backlog, closed by the client.
    let mut sse = common::SseClient::connect(s.addr, s.token("o-an"), Some(0));
    assert_eq!(sse.status, 200);
    assert!(sse.next(Duration::from_secs(5)).is_some() && sse.next(Duration::from_secs(5)).is_some());
    drop(sse);
    let deadline = Instant::now() + Duration::from_secs(5);
    let closed = loop {
        let rows = audit_rows(&s.store_path);
        if let Some(r) = rows.iter().find(|r| r.2 == "stream_closed") {
            assert!(rows.iter().any(|r| r.2 == "stream" && r.1 == "o-an"), "the opening is audited too");
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no stream_closed row 5 s after the client left");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(closed.4.contains("2 alert change(s) sent"), "{closed:?}");
    s.stop();
}

/// Copies a stopped server's store, applies `sql` to the copy (an insider
/// with the SQLite file), and verifies the copy's chain.
fn verify_tampered(store: &std::path::Path, key: &[u8; 32], sql: &str) -> citywatch_server::AuditReport {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("store.sqlite");
    std::fs::copy(store, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    citywatch_server::audit_verify(&copy, key).unwrap()
}

#[test]
fn issue_16_alert_state_changes_are_chained_and_edits_of_alerts_or_changes_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = citywatch_server::ServerConfig { escalation_timeout_ms: 200, ..config(dir.path()) };
    let key = cfg.audit_key_bytes();
    let s = TestServer::start_with(dir.path(), cfg);
    s.alarms(&[alarm(1, 1_767_225_600_000, P1), alarm(2, 1_767_225_601_000, P1), alarm(3, 1_767_225_602_000, P1)]);
    let alerts = s.wait_alerts(3);
    let id = |n: usize| alerts[n]["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/api/v1/alerts/{}/ack", id(0)), Some("o-c1"), "").status, 200);
    let r = s.post(&format!("/api/v1/alerts/{}/resolve", id(1)), Some("o-an"), "{\"note\": \"false alarm\"}");
    assert_eq!(r.status, 200, "{}", r.body);
    // The third stays new and escalates (200 ms of wall time).
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.get(&format!("/api/v1/alerts/{}", id(2)), Some("o-an")).json()["level"] == "community" {
        assert!(Instant::now() < deadline, "no escalation");
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = s.store_path.clone();
    s.stop();

    let rows = audit_rows(&store);
    let chained = |action: &str, actor: &str| rows.iter().filter(|r| r.2 == action && r.1 == actor).count();
    assert_eq!(chained("alert_new", "engine"), 3, "{rows:#?}");
    assert_eq!(chained("alert_acknowledged", "o-c1"), 1, "{rows:#?}");
    assert_eq!(chained("alert_resolved", "o-an"), 1, "{rows:#?}");
    assert!(chained("alert_escalated", "escalation") >= 1, "{rows:#?}");
    let report = citywatch_server::audit_verify(&store, &key).unwrap();
    assert!(report.is_intact(), "{report:?}");

    // What an insider does to the SQLite file, each on a fresh copy: all caught.
    let cases = [
        ("resolve an alert by hand", format!("UPDATE alerts SET status = 'resolved' WHERE alert_id = '{}'", id(0))),
        ("undo an escalation", format!("UPDATE alerts SET level = 'community' WHERE alert_id = '{}'", id(2))),
        ("delete an alert", format!("DELETE FROM alerts WHERE alert_id = '{}'", id(2))),
        (
            "insert an alert",
            format!(
                "INSERT INTO alerts SELECT 'forged', model, model_version, kind, severity, score, event_ts_ms, subject, \
                 lat, lon, cell, grid, community, street, district, assignee, summary, evidence, action, status, level, \
                 created_ms, updated_ms, level_since_ms, updates, acked_by, acked_ms, resolved_by, resolved_ms, note, \
                 escalations FROM alerts WHERE alert_id = '{}'",
                id(0)
            ),
        ),
        ("edit a change", "UPDATE changes SET body = replace(body, 'false alarm', 'handled') WHERE change = 'resolved'".into()),
        ("delete the last change", "DELETE FROM changes WHERE seq = (SELECT MAX(seq) FROM changes)".into()),
        (
            "insert a change",
            "INSERT INTO changes (alert_id, change, at_ms, body) SELECT alert_id, 'acknowledged', at_ms, body FROM changes \
             WHERE seq = (SELECT MAX(seq) FROM changes)"
                .into(),
        ),
    ];
    for (what, sql) in &cases {
        let report = verify_tampered(&store, &key, sql);
        assert!(!report.is_intact() && report.broken.is_none(), "{what}: not caught: {report:?}");
        assert!(report.state.is_some(), "{what}: {report:?}");
    }
    // Editing both the alert and its change is caught at the change (its digest is chained).
    let both = format!(
        "UPDATE alerts SET status = 'new', acked_by = NULL, acked_ms = NULL WHERE alert_id = '{0}';
         DELETE FROM changes WHERE alert_id = '{0}' AND change = 'acknowledged';",
        id(0)
    );
    let report = verify_tampered(&store, &key, &both);
    assert!(report.state.as_deref().is_some_and(|s| s.contains("deleted")), "{report:?}");
}
