//! The live service through the binary: `token` issues a bearer token,
//! `serve` runs the engine and the API from one config file, an urgent alarm
//! posted as NDJSON raises a `no_dispatch` alert once the wall clock passes its
//! deadline (the config's `[models.response_gap]` sets a 2 s limit), and `audit verify` finds the chain intact after a clean shutdown.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use citywatch_engine::rows::{OfficerRow, write_table};

/// One request (GET when `body` is empty, else POST of NDJSON); panics if the
/// service does not answer.
fn request(addr: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    common::http(addr, path, token, &[("Content-Type", "application/x-ndjson")], body)
        .unwrap_or_else(|| panic!("{path}: no answer"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_token_ingest_alert_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = d.join("reference");
    let officer = |id: &str, role: &str, scope: &str| OfficerRow {
        officer_id: id.into(),
        name: id.into(),
        role: role.into(),
        scope: scope.into(),
    };
    write_table(&reference, &[officer("A1", "analyst", "city"), officer("C1", "community", "nowhere")]).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let config = d.join("citywatch.toml");
    std::fs::write(
        &config,
        format!(
            "reference = {reference:?}\nworkers = 1\nlateness = \"2s\"\npseudonym_key = \"test-pseudonym-key\"\n[models.response_gap]\ndispatch_within_ms = 2000\n[server]\naddr = \"{addr}\"\nstore_path = {:?}\ncredentials_path = {:?}\nclock_tick_ms = 200\nvault_key = \"test-vault-key\"\n",
            d.join("store.sqlite"),
            d.join("credentials.json")
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    let o = common::citywatch(&["serve", "--config", cfg]);
    assert!(!o.status.success() && common::stderr(&o).contains("citywatch token"), "{}", common::stderr(&o));
    let o = common::citywatch(&["token", "--config", cfg, "--officer", "A1"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let o = common::citywatch(&["token", "--config", cfg, "--officer", "C1"]);
    let other = String::from_utf8(o.stdout).unwrap().trim().to_owned();

    let server =
        Server(Command::new(env!("CARGO_BIN_EXE_citywatch")).args(["serve", "--config", cfg]).spawn().unwrap());
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(request(&addr, "/api/v1/alerts", "wrong", "").0, 401);

    // An urgent alarm received now; with a 2 s dispatch limit (from the config's
    // model section) the wall clock alone makes its deadline pass.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let alarm = format!(
        "{{\"alarm_id\": 1, \"ts_ms\": {}, \"category\": \"robbery\", \"priority\": 1, \"lat\": 36.07, \"lon\": 120.38, \"reporter\": null, \"suspect_number\": null, \"source\": \"110\"}}\n",
        now_ms - 500
    );
    let (status, body) = request(&addr, "/api/v1/ingest/alarms", &token, &alarm);
    assert_eq!(status, 200, "{body}");
    let bad = alarm.replace("robbery", "arson");
    let (status, body) = request(&addr, "/api/v1/ingest/alarms", &token, &bad);
    assert!(status == 400 && body.contains("arson"), "{status} {body}");

    let mut seen = String::new();
    while Instant::now() - start < Duration::from_secs(30) {
        seen = request(&addr, "/api/v1/alerts", &token, "").1;
        if seen.contains("no_dispatch") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen.contains("no_dispatch") && seen.contains("alarm:1"), "{seen}");
    let hidden = request(&addr, "/api/v1/alerts", &other, "").1;
    assert!(!hidden.contains("alarm:1"), "a community officer elsewhere must not see it: {hidden}");

    drop(server);
    let o = common::citywatch(&["audit", "verify", "--config", cfg]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("audit chain intact"));
    // The head to record elsewhere, and the check against it (issue 16).
    let o = common::citywatch(&["audit", "head", "--config", cfg]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let head = String::from_utf8(o.stdout).unwrap().split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(head.len(), 64);
    let o = common::citywatch(&["audit", "verify", "--config", cfg, "--expect-head", &head]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = common::citywatch(&["audit", "verify", "--config", cfg, "--expect-head", &"ab".repeat(32)]);
    assert!(!o.status.success() && common::stderr(&o).contains("TRUNCATED"), "{}", common::stderr(&o));
    // SIGTERM-less checks of the safe defaults: no pseudonym key, an unknown key, an unknown officer.
    let bare = d.join("bare.toml");
    std::fs::write(
        &bare,
        format!("reference = {reference:?}\n[server]\ncredentials_path = {:?}\n", d.join("credentials.json")),
    )
    .unwrap();
    let o = common::citywatch(&["serve", "--config", bare.to_str().unwrap()]);
    assert!(!o.status.success() && common::stderr(&o).contains("no pseudonym_key"), "{}", common::stderr(&o));
    std::fs::write(&bare, format!("reference = {reference:?}\npseudonymkey = \"typo\"\n")).unwrap();
    let o = common::citywatch(&["serve", "--config", bare.to_str().unwrap()]);
    assert!(!o.status.success() && common::stderr(&o).contains("pseudonymkey"), "{}", common::stderr(&o));
    let o = common::citywatch(&["token", "--config", cfg, "--officer", "nobody"]);
    assert!(!o.status.success() && common::stderr(&o).contains("no officer `nobody`"), "{}", common::stderr(&o));
}
