//! A live service killed and restarted: a city with a store, a journal and
//! an analyst's token, the server started on it, and the store's alerts read
//! back (tests/issue_16.rs over HTTP, tests/kafka.rs over a message log).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use citywatch_engine::rows::{OfficerRow, write_table};

/// One request: table and NDJSON body.
pub type Batch = (&'static str, String);

/// A time-ordered stream: `alarms` urgent alarms 5 s apart; a third get a
/// unit dispatched after 30 s (so they miss only the on-scene deadline), a
/// sixth also get it on scene after 5 min (no alert). Consecutive rows of one
/// table go in one request, at most 5; the last request moves event time past
/// every deadline.
pub fn stream(base_ms: i64, alarms: u64) -> Vec<Batch> {
    let mut rows: Vec<(i64, &'static str, String)> = Vec::new();
    for i in 0..alarms {
        let ts = base_ms + i as i64 * 5_000;
        let (lat, lon) = (36.06 + (i % 7) as f64 * 0.01, 120.38 + (i % 5) as f64 * 0.01);
        rows.push((ts, "alarms", format!(
            "{{\"alarm_id\": {i}, \"ts_ms\": {ts}, \"category\": \"robbery\", \"priority\": 1, \"lat\": {lat}, \"lon\": {lon}, \"reporter\": null, \"suspect_number\": null, \"source\": \"110\"}}"
        )));
        let unit = |ts: i64, status: &str| {
            format!(
                "{{\"unit_id\": \"car-{}\", \"ts_ms\": {ts}, \"lat\": {lat}, \"lon\": {lon}, \"status\": \"{status}\", \"alarm_id\": {i}}}",
                i % 9
            )
        };
        if i % 3 == 0 {
            rows.push((ts + 30_000, "patrols", unit(ts + 30_000, "dispatched")));
        }
        if i % 6 == 0 {
            rows.push((ts + 300_000, "patrols", unit(ts + 300_000, "on_scene")));
        }
    }
    rows.sort_by_key(|r| r.0);
    let mut out: Vec<Batch> = Vec::new();
    let mut n_in_last = 0;
    for (_, table, row) in rows {
        match out.last_mut() {
            Some((t, body)) if *t == table && n_in_last < 5 => {
                body.push_str(&row);
                body.push('\n');
                n_in_last += 1;
            }
            _ => {
                out.push((table, format!("{row}\n")));
                n_in_last = 1;
            }
        }
    }
    let end = base_ms + alarms as i64 * 5_000 + 20 * 60_000;
    out.push((
        "patrols",
        format!("{{\"unit_id\": \"car-0\", \"ts_ms\": {end}, \"lat\": 36.06, \"lon\": 120.38, \"status\": \"available\", \"alarm_id\": null}}\n"),
    ));
    out
}

pub struct City {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub addr: String,
    pub token: String,
}

pub fn city(dir: &Path) -> City {
    city_with(dir, "")
}

/// [`city`] with more lines for the config's `[server]` section.
pub fn city_with(dir: &Path, server_lines: &str) -> City {
    let reference = dir.join("reference");
    let officer = |id: &str, role: &str, scope: &str| OfficerRow {
        officer_id: id.into(),
        name: id.into(),
        role: role.into(),
        scope: scope.into(),
    };
    write_table(&reference, &[officer("A1", "analyst", "city")]).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("citywatch.toml");
    std::fs::write(
        &config,
        format!(
            "reference = {reference:?}\nworkers = 2\nlateness = \"1s\"\npseudonym_key = \"crash-test-key\"\n\
             [models.response_gap]\ndispatch_within_ms = 60000\non_scene_within_ms = 240000\n\
             [server]\naddr = \"{addr}\"\nstore_path = {:?}\ncredentials_path = {:?}\nclock_tick_ms = 0\n\
             vault_key = \"crash-test-vault\"\nmax_event_age_ms = 0\n{server_lines}",
            dir.join("store.sqlite"),
            dir.join("credentials.json")
        ),
    )
    .unwrap();
    let o = super::citywatch(&["token", "--config", config.to_str().unwrap(), "--officer", "A1"]);
    assert!(o.status.success(), "{}", super::stderr(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    City { dir: dir.to_owned(), config, addr, token }
}

pub fn start_server(c: &City) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(c.dir.join("serve.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_citywatch"))
        .args(["serve", "--config", c.config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// One HTTP request (GET when `body` is empty); `None` when the connection
/// failed or was cut (the server died).
pub fn post(addr: &str, path: &str, token: &str, key: Option<&str>, body: &str) -> Option<(u16, String)> {
    let key: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    super::http(addr, path, token, &key, body)
}

/// Waits until the store's change log stops growing (the engine has fired
/// and the store has written every alert of the stream).
pub fn settle(c: &City, server: &Mutex<Child>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (String::new(), Instant::now());
    loop {
        let seen = post(&c.addr, "/api/v1/alerts?limit=1", &c.token, None, "")
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).unwrap()["last_seq"].to_string())
            .unwrap_or_default();
        // A kill that landed just after the last request may take a moment
        // to end the process (its listener still accepts meanwhile): a dead
        // server is restarted here too.
        wait_up(c, server);
        if seen != last {
            (last, since) = (seen, Instant::now());
        } else if since.elapsed() > Duration::from_millis(1500) && last != "null" && !last.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the alerts never settled (last_seq {last:?}); log: {}",
            std::fs::read_to_string(c.dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `alert_id -> (kind, subject, updates, times logged new, other changes)`, from the store file.
pub fn alerts(store: &Path) -> BTreeMap<String, (String, String, i64, i64, i64)> {
    let db = rusqlite::Connection::open(store).unwrap();
    let mut out = BTreeMap::new();
    let mut q = db.prepare("SELECT alert_id, kind, subject, updates FROM alerts").unwrap();
    for r in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap() {
        let (id, kind, subject, updates) = r.unwrap();
        out.insert(id, (kind, subject, updates, 0, 0));
    }
    let mut q = db.prepare("SELECT alert_id, change = 'new', COUNT(*) FROM changes GROUP BY 1, 2").unwrap();
    for r in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, i64>(2)?))).unwrap() {
        let (id, new, n) = r.unwrap();
        let e = out.entry(id).or_insert_with(|| ("?".into(), "?".into(), 0, 0, 0));
        if new { e.3 += n } else { e.4 += n }
    }
    out
}

/// Waits until a server answers on the address, restarting it whenever it
/// is found dead (a kill may land on a server that is still starting).
pub fn wait_up(c: &City, server: &Mutex<Child>) {
    let start = Instant::now();
    loop {
        {
            let mut s = server.lock().unwrap();
            if s.try_wait().unwrap().is_some() {
                *s = start_server(c); // died: restart on the same store and journal
            }
        }
        if TcpStream::connect(&c.addr).is_ok() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not come up; log: {}",
            std::fs::read_to_string(c.dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The alerts of the store in `dir` equal `want`: none lost, none extra, none
/// logged `new` twice or changed (updates, other changes); else a panic that
/// counts each and shows the first few, with the service's log.
pub fn assert_same_alerts(want: &BTreeMap<String, (String, String, i64, i64, i64)>, dir: &Path, what: &str) {
    let got = alerts(&dir.join("store.sqlite"));
    let lost: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let repeated: Vec<_> = got.iter().filter(|(k, v)| v.3 > 1 || want.get(*k).is_some_and(|w| w != *v)).collect();
    assert!(
        lost.is_empty() && extra.is_empty() && repeated.is_empty(),
        "{what}: {} lost {:?}, {} extra {:?}, {} repeated or changed {:?}; log: {}",
        lost.len(),
        &lost[..lost.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)],
        repeated.len(),
        &repeated[..repeated.len().min(5)],
        std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
    );
}
