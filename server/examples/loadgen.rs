//! Load generator: the live service's real path on loopback, measured.
//!
//! Starts the server in-process on a free port with the real live engine
//! (`LiveEngine`, the three models `citywatch serve` runs, 2 workers,
//! lateness 0) and its journal, then posts NDJSON at a fixed rate (calls that
//! start and end, patrol fixes, alarms; event time = the wall clock) while an
//! SSE client receives every alert change. Urgent alarms are never answered,
//! so `response_gap` fires `no_dispatch` and `not_on_scene` when their
//! deadlines pass, and the store escalates them in wall time.
//!
//! Measured: **deadline-to-SSE** latency (the wall-clock instant an urgent
//! alarm's deadline passed -> its alert received on the stream), the ingest
//! answer time (request sent -> 200, which waits for the journal's sync), and
//! every `LOADGEN_SAMPLE_S` seconds the process's RSS, the journal's size and
//! the store's database and WAL sizes. At the end the engine is started again
//! on the same journal and its restore is timed.
//!
//! ```text
//! cargo run --release -p citywatch-server --example loadgen -- [events_per_s=20000] [seconds=10]
//! ```
//!
//! Environment: `LOADGEN_JOURNAL` = `on` (default: fdatasync before each
//! answer, group commit) | `nosync` (written, not synced) | `off` (no
//! journal); `LOADGEN_MODELS` = `all` (default) | `gap` (response_gap only);
//! `LOADGEN_SAMPLE_S` (default 10); `LOADGEN_ESCALATE_MS` (escalation
//! timeout, default 20000); `LOADGEN_KEEP_NUMBERS=0` (no number vault);
//! `LOADGEN_JOURNAL_MAX_MB` (the journal's byte bound, default 1024, as `serve`);
//! `LOADGEN_CALLERS` (distinct calling numbers, default 2000);
//! `LOADGEN_DIR` (keep the store and journal there instead of a temporary folder);
//! `LOADGEN_BROKERS` (`host:port` of a Kafka-protocol broker: the events are
//! produced to topics `lg<pid>.calls`, `lg<pid>.patrols`, `lg<pid>.alarms` instead of
//! posted, and the server reads them with its log feed; the "ingest answer"
//! figures are then the produce times).

/// The allocator `citywatch serve` runs with, so RSS is measured as in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use citywatch_engine::contract::Role;
use citywatch_engine::journal::JournalOptions;
use citywatch_engine::jurisdiction::{Jurisdiction, Officer};
use citywatch_engine::live::{LiveEngine, LiveOptions};
use citywatch_engine::model::Model;
use citywatch_engine::reference::{Reference, UnitDirectory};
use citywatch_server::auth::CredentialsFile;
use citywatch_server::{LivePipeline, ServerConfig};

/// Deadlines of the urgent alarms, short so a 10 s run sees many.
const DISPATCH_MS: u64 = 2_000;
const ON_SCENE_MS: u64 = 5_000;

/// An alert received: (the deadline, wall ms; deadline-to-SSE, ms).
type Latency = (f64, f64);

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1e3
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn models(which: &str) -> Vec<Box<dyn Model>> {
    let gap = citywatch_response_gap::ResponseGap {
        config: citywatch_response_gap::Config {
            max_priority: 1,
            dispatch_within_ms: DISPATCH_MS,
            on_scene_within_ms: ON_SCENE_MS,
        },
    };
    let mut m: Vec<Box<dyn Model>> = vec![Box::new(gap)];
    if which == "all" {
        m.push(Box::new(citywatch_fraud_call::FraudCall::default()));
        m.push(Box::new(citywatch_risk_hotspot::RiskHotspot::default()));
    }
    m
}

/// Where the generated events happen (a grid of 50 x 37 points ~200 m apart).
fn pos(i: u64) -> (f64, f64) {
    (36.05 + (i % 50) as f64 * 0.002, 120.35 + (i % 37) as f64 * 0.002)
}

/// The city of the generated events: its resolution-9 cells as grids, their
/// resolution-7, -6 and -5 parents as communities, streets and districts,
/// an officer for each (so alerts go to community officers and escalate to
/// stations and districts), and the analyst `an` who reads the stream.
fn city() -> Jurisdiction {
    use h3o::Resolution;
    let mut cells = std::collections::BTreeMap::new();
    for i in 0..50 * 37 {
        let (lat, lon) = pos(i);
        let cell = citywatch_engine::geo::Point::from_degrees(lat, lon).unwrap().cell(Resolution::Nine);
        let id = |r: Resolution| cell.parent(r).unwrap().to_string();
        let info = citywatch_engine::jurisdiction::GridInfo {
            grid: cell.to_string(),
            community: id(Resolution::Seven),
            street: id(Resolution::Six),
            district: id(Resolution::Five),
        };
        cells.insert(cell, info);
    }
    let o = |id: String, role, scope: &str| Officer { officer_id: id.clone(), name: id, role, scope: scope.into() };
    let mut officers = vec![o("an".into(), Role::Analyst, "city")];
    let mut areas = std::collections::BTreeSet::new();
    for g in cells.values() {
        for (role, scope) in
            [(Role::Community, &g.community), (Role::Station, &g.street), (Role::District, &g.district)]
        {
            if areas.insert(scope.clone()) {
                officers.push(o(format!("{}-{scope}", role.as_str()), role, scope));
            }
        }
    }
    Jurisdiction::new(Resolution::Nine, cells.into_iter().collect(), officers)
}

fn engine_options(journal: &str, dir: &Path) -> LiveOptions {
    let journal = match journal {
        "off" => None,
        mode => Some(JournalOptions {
            fsync: mode != "nosync",
            max_bytes: env("LOADGEN_JOURNAL_MAX_MB", "1024").parse::<u64>().unwrap_or(1024) << 20,
            ..JournalOptions::in_dir(dir.join("journal"))
        }),
    };
    LiveOptions { workers: 2, lateness_ms: 0, journal }
}

/// The HTTP client: a new connection for each request (as many independent
/// feeders would), no proxy, an answer of any status returned.
fn client() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder().proxy(None).http_status_as_error(false).max_idle_connections(0).build().into()
    })
}

/// Sends one request on a new connection; (status, 0 if it failed; ms to the answer).
fn post(addr: SocketAddr, token: &str, path: &str, body: &str) -> (u16, f64) {
    let t = Instant::now();
    let status = client()
        .post(format!("http://{addr}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .content_type("application/x-ndjson")
        .send(body)
        .and_then(|mut answer| answer.body_mut().read_to_vec().map(|_| answer.status().as_u16()))
        .unwrap_or(0);
    (status, t.elapsed().as_secs_f64() * 1e3)
}

/// The body of a GET (empty if it failed).
fn get(addr: SocketAddr, token: &str, path: &str) -> String {
    client()
        .get(format!("http://{addr}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .and_then(|answer| answer.into_body().read_to_string())
        .unwrap_or_default()
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p).map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentiles(mut l: Vec<f64>) -> String {
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) as f64 * p).round() as usize] };
    format!("n {}  p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}", l.len(), pct(0.5), pct(0.9), pct(0.99), pct(1.0))
}

/// Reads the SSE stream; for each `new` response_gap alert, the deadline-to-receipt latency.
/// A raw socket on purpose: it reads with a short timeout to notice `done`
/// between events, and ureq's body reader cannot be read again after a timeout.
fn read_stream(
    addr: SocketAddr,
    token: &str,
    alarms: &Mutex<HashMap<u64, f64>>,
    out: &Mutex<Vec<Latency>>,
    done: &AtomicBool,
) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut r = BufReader::with_capacity(1 << 16, s);
    let mut line = String::new();
    while !done.load(Ordering::SeqCst) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => continue,
        }
        let now = wall_ms();
        let Some(data) = line.strip_prefix("data:") else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else { continue };
        let a = &v["alert"];
        if v["change"] != "new" || a["model"] != "response_gap" {
            continue;
        }
        let within = if a["kind"] == "no_dispatch" { DISPATCH_MS } else { ON_SCENE_MS } as f64;
        let id = a["subject"].as_str().and_then(|s| s.strip_prefix("alarm:")).and_then(|s| s.parse::<u64>().ok());
        let sent = id.and_then(|id| alarms.lock().unwrap().get(&id).copied());
        if let Some(ts) = sent {
            out.lock().unwrap().push((ts + within, now - (ts + within)));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let journal = env("LOADGEN_JOURNAL", "on");
    let which = env("LOADGEN_MODELS", "all");
    let sample_s: u64 = env("LOADGEN_SAMPLE_S", "10").parse().unwrap_or(10);
    let escalate_ms: u64 = env("LOADGEN_ESCALATE_MS", "20000").parse().unwrap_or(20_000);
    // Numbers recur, as in a city: the callers (default 2,000, the issue's
    // city) and as many callees. The fraud model keeps each caller's last
    // 24 h of calls, at most 256: its memory grows until that is full.
    let callers: u64 = env("LOADGEN_CALLERS", "2000").parse().unwrap_or(2_000).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var("LOADGEN_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "loadgen: {rate} events/s for {seconds} s, journal {journal}, models {which}, {callers} callers, escalation after {escalate_ms} ms, in {}",
        dir.display()
    );

    let jurisdiction = Arc::new(city());
    let mut creds = CredentialsFile::default();
    let token = creds.issue("an").unwrap();
    creds.save(&dir.join("credentials.json")).unwrap();
    let brokers = std::env::var("LOADGEN_BROKERS").ok();
    // Topics of this run only (a broker keeps earlier runs' records).
    let prefix = format!("lg{}.", std::process::id());
    let mut producer = brokers.as_ref().map(|b| {
        let mut p = citywatch_kafka::LogProducer::open(&citywatch_kafka::LogConfig::new(b, &prefix)).unwrap();
        for t in ["calls", "patrols", "alarms"] {
            p.send(&format!("{prefix}{t}"), 1, 0, Vec::new()).unwrap(); // the topics exist before the feed opens
        }
        p
    });
    let cfg = ServerConfig {
        log_brokers: brokers.clone(),
        log_topic_prefix: prefix.clone(),
        store_path: dir.join("store.sqlite"),
        credentials_path: dir.join("credentials.json"),
        keep_numbers: env("LOADGEN_KEEP_NUMBERS", "1") != "0",
        escalation_timeout_ms: escalate_ms,
        escalation_check_ms: 1_000,
        // The client's own requests from 127.0.0.1 are many; nothing here fails auth.
        auth_failures_per_minute: 0,
        ..ServerConfig::default()
    };
    let units = UnitDirectory::default();
    let reference = Reference {
        subscribers: Arc::new(Default::default()),
        jurisdiction: jurisdiction.clone(),
        units: units.clone(),
    };
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let engine = LiveEngine::start(models(&which), reference.clone(), engine_options(&journal, &dir), tx).unwrap();
    let pipeline = Arc::new(LivePipeline::new(engine, units.clone()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let jurisdiction = jurisdiction.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                citywatch_server::serve_on(l, cfg, pipeline, rx, jurisdiction, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            })
        })
    };
    let addr = addr_rx.recv().unwrap();

    // Urgent alarms' event times (= their wall-clock send time), and the SSE reader.
    let alarms: Arc<Mutex<HashMap<u64, f64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Latency>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (alarms, latencies, done, token) = (alarms.clone(), latencies.clone(), done.clone(), token.clone());
        std::thread::spawn(move || read_stream(addr, &token, &alarms, &latencies, &done))
    };
    // Resources over time.
    let sampler = {
        let (done, dir) = (done.clone(), dir.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut next = 0;
            println!("   t_s  rss_mb  journal_mb  store_mb  wal_mb");
            while !done.load(Ordering::SeqCst) {
                if t0.elapsed().as_secs() >= next {
                    println!(
                        "{:6} {:7.0} {:11.1} {:9.1} {:7.1}",
                        next,
                        rss_mb(),
                        dir_bytes(&dir.join("journal")) as f64 / 1e6,
                        file_bytes(&dir.join("store.sqlite")) as f64 / 1e6,
                        file_bytes(&dir.join("store.sqlite-wal")) as f64 / 1e6
                    );
                    next += sample_s;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // 100 ticks a second, each a request per table: calls (a quarter of the
    // events start calls, a quarter end the calls started 1 s before),
    // patrol fixes 40%, alarms 10% (one in twenty urgent: one urgent alarm
    // per 200 events, two deadline alerts each).
    let per_tick = (rate / 100).max(20);
    let (starts, fixes, alarms_n) = (per_tick / 4, per_tick * 4 / 10, per_tick / 10);
    let t0 = Instant::now();
    let mut n_events = 0u64;
    let (mut alarm_id, mut call_id, mut tick) = (0u64, 0u64, 0u64);
    let mut open_calls: VecDeque<(u64, Vec<(u64, u64)>)> = VecDeque::new();
    let mut refused = 0u32;
    let mut answers = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        let due = t0 + Duration::from_millis(tick * 10);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        tick += 1;
        let ts = wall_ms() as i64;
        let call = |id: u64, caller: u64, event: &str, dur: &str, (lat, lon): (f64, f64)| {
            format!(
                "{{\"call_id\":{id},\"event\":\"{event}\",\"ts_ms\":{ts},\"caller\":\"+86138{caller:08}\",\
                 \"callee\":\"+86139{:08}\",\"caller_lat\":{lat},\"caller_lon\":{lon},\"callee_lat\":null,\
                 \"callee_lon\":null,\"duration_s\":{dur}}}\n",
                (caller * 7) % 90_000 + 100_000
            )
        };
        let (mut calls, mut patrols, mut alarm_rows) = (String::new(), String::new(), String::new());
        let mut sent = 0u64;
        if open_calls.front().is_some_and(|(t, _)| *t + 100 <= tick) {
            for (id, caller) in open_calls.pop_front().map(|(_, c)| c).unwrap_or_default() {
                calls.push_str(&call(id, caller, "end", "1", pos(id)));
                sent += 1;
            }
        }
        let mut started = Vec::with_capacity(starts as usize);
        for _ in 0..starts {
            call_id += 1;
            let caller = call_id.wrapping_mul(2_654_435_761) % callers;
            calls.push_str(&call(call_id, caller, "start", "null", pos(call_id)));
            started.push((call_id, caller));
        }
        open_calls.push_back((tick, started));
        for i in 0..fixes {
            let (lat, lon) = pos(i);
            patrols.push_str(&format!(
                "{{\"unit_id\":\"u{}\",\"ts_ms\":{ts},\"lat\":{lat},\"lon\":{lon},\"status\":\"available\",\"alarm_id\":null}}\n",
                i % 200
            ));
        }
        let mut urgent = Vec::new();
        for i in 0..alarms_n {
            alarm_id += 1;
            let priority = if alarm_id.is_multiple_of(20) { 1 } else { 3 };
            if priority == 1 {
                urgent.push(alarm_id);
            }
            let (lat, lon) = pos(i * 13 + tick);
            alarm_rows.push_str(&format!(
                "{{\"alarm_id\":{alarm_id},\"ts_ms\":{ts},\"category\":\"burglary\",\"priority\":{priority},\
                 \"lat\":{lat},\"lon\":{lon},\"reporter\":null,\"suspect_number\":null,\"source\":\"110\"}}\n"
            ));
        }
        sent += starts + fixes + alarms_n;
        n_events += sent;
        alarms.lock().unwrap().extend(urgent.iter().map(|id| (*id, ts as f64)));
        for (path, body) in [
            ("/api/v1/ingest/calls", &calls),
            ("/api/v1/ingest/patrols", &patrols),
            ("/api/v1/ingest/alarms", &alarm_rows),
        ] {
            if let Some(p) = producer.as_mut() {
                let sent = Instant::now();
                let values = body.lines().map(|l| (ts, l.as_bytes().to_vec())).collect();
                p.send(&path.replace("/api/v1/ingest/", &prefix), 1, 0, values).unwrap();
                answers.push(sent.elapsed().as_secs_f64() * 1e3);
                continue;
            }
            let (status, ms) = post(addr, &token, path, body);
            refused += u32::from(status != 200);
            answers.push(ms);
        }
        // Alarms whose alerts are long due are forgotten (bounded client memory).
        if tick.is_multiple_of(1000) {
            let horizon = wall_ms() - 120_000.0;
            alarms.lock().unwrap().retain(|_, ts| *ts > horizon);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let load_end_ms = wall_ms();
    std::thread::sleep(Duration::from_millis(ON_SCENE_MS + 1_500));
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    sampler.join().unwrap();
    let metrics = get(addr, &token, "/metrics");
    let _ = stop_tx.send(());
    server.join().unwrap();

    let urgent = alarm_id / 20;
    println!(
        "events sent: {n_events} in {elapsed:.1} s = {:.0} events/s ({refused} requests refused); urgent alarms {urgent}",
        n_events as f64 / elapsed
    );
    // Deadlines that passed after the load stopped fire on the server's clock
    // tick (`clock_tick_ms`, 1 s), as in a quiet night: reported apart.
    let (under_load, quiet): (Vec<Latency>, Vec<Latency>) =
        latencies.lock().unwrap().iter().partition(|(d, _)| *d < load_end_ms - 100.0);
    println!(
        "deadline-to-SSE under load, ms (deadline passed in wall time -> alert received): {}",
        percentiles(under_load.iter().map(|l| l.1).collect())
    );
    println!(
        "deadline-to-SSE after the load stopped (clock ticks only), ms: {}",
        percentiles(quiet.iter().map(|l| l.1).collect())
    );
    println!("ingest answer, ms (request sent -> 200, journal synced): {}", percentiles(answers));
    for line in metrics.lines().filter(|l| {
        l.starts_with("citywatch_alerts_total")
            || l.starts_with("citywatch_escalations")
            || l.starts_with("citywatch_events_in_total")
    }) {
        println!("  {line}");
    }
    println!(
        "at the end: rss {:.0} MB, journal {:.1} MB, store {:.1} MB, WAL {:.1} MB",
        rss_mb(),
        dir_bytes(&dir.join("journal")) as f64 / 1e6,
        file_bytes(&dir.join("store.sqlite")) as f64 / 1e6,
        file_bytes(&dir.join("store.sqlite-wal")) as f64 / 1e6
    );

    // Restart on the same journal: how long the restore takes.
    if journal != "off" {
        let (tx, rx) = crossbeam_channel::bounded(4096);
        let drain = std::thread::spawn(move || rx.iter().count());
        let t = Instant::now();
        let engine = LiveEngine::start(models(&which), reference, engine_options(&journal, &dir), tx).unwrap();
        let r = engine.restore().unwrap();
        let fed = t.elapsed().as_secs_f64();
        engine.shutdown().unwrap();
        drop(engine);
        let fired = drain.join().unwrap();
        println!(
            "restore: {} epochs ({} events) fed in {fed:.2} s, dataflow done in {:.2} s ({fired} alerts fired again)",
            r.epochs,
            r.events,
            t.elapsed().as_secs_f64()
        );
    }
}
