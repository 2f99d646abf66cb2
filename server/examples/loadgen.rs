//! Load generator: ingest-to-push latency of the live service on loopback.
//!
//! Starts the server in-process on a free port with a stand-in pipeline (every
//! priority-1 alarm fires an alert at once, so what is measured is the
//! service's own path: HTTP, decode, store, stream), then posts NDJSON at a
//! fixed rate (a mix of calls, patrols and alarms) while an SSE client
//! timestamps each alert it receives. Prints throughput, client-side
//! latency percentiles (request sent -> alert received over SSE) and the
//! server's own histogram.
//!
//! ```text
//! cargo run --release -p citywatch-server --example loadgen -- [events_per_s=20000] [seconds=10]
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citywatch_engine::alert::{Alert, RouteLevel, alert_id};
use citywatch_engine::contract::Role;
use citywatch_engine::event::Event;
use citywatch_engine::jurisdiction::{Jurisdiction, Officer};
use citywatch_server::auth::CredentialsFile;
use citywatch_server::{Pipeline, PipelineRefusal, ServerConfig};

struct Instant1 {
    alerts: crossbeam_channel::Sender<Alert>,
    jurisdiction: Arc<Jurisdiction>,
}

impl Pipeline for Instant1 {
    fn ingest(&self, events: Vec<Event>) -> Result<u64, PipelineRefusal> {
        for e in events {
            if let Event::Alarm(a) = e
                && a.priority == 1
            {
                let r = self.jurisdiction.route(Some(a.pos), None, RouteLevel::Community);
                let subject = format!("alarm:{}", a.alarm_id);
                self.alerts
                    .send(Alert {
                        alert_id: alert_id("load", "urgent", &subject, a.ts_ms),
                        model: "load".into(),
                        model_version: "1".into(),
                        kind: "urgent".into(),
                        severity: "severe".into(),
                        score: 1.0,
                        event_ts_ms: a.ts_ms as i64,
                        subject,
                        lat: Some(a.pos.lat()),
                        lon: Some(a.pos.lon()),
                        cell: r.cell,
                        grid: r.grid,
                        community: r.community,
                        street: r.street,
                        district: r.district,
                        assignee: r.assignee,
                        summary: "load".into(),
                        evidence: "{}".into(),
                        action: "none".into(),
                    })
                    .map_err(|e| PipelineRefusal::Unavailable(e.to_string()))?;
            }
        }
        Ok(0)
    }
    fn advance_clock(&self, _now_ms: u64) {}
}

fn post(addr: SocketAddr, token: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let officers =
        vec![Officer { officer_id: "an".into(), name: "Analyst".into(), role: Role::Analyst, scope: "city".into() }];
    let jurisdiction = Arc::new(Jurisdiction::default_grid(officers));
    let mut creds = CredentialsFile::default();
    let token = creds.issue("an").unwrap();
    creds.save(&dir.path().join("credentials.json")).unwrap();
    let cfg = ServerConfig {
        store_path: dir.path().join("store.sqlite"),
        credentials_path: dir.path().join("credentials.json"),
        // LOADGEN_KEEP_NUMBERS=0 measures without the number vault's writes.
        keep_numbers: std::env::var("LOADGEN_KEEP_NUMBERS").map_or(true, |v| v != "0"),
        // Event times are fixed (2026-01-01 on), not the wall clock's: no age bound.
        max_event_age_ms: 0,
        ..ServerConfig::default()
    };
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let pipeline = Arc::new(Instant1 { alerts: tx, jurisdiction: jurisdiction.clone() });
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
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
    });
    let addr = addr_rx.recv().unwrap();

    // Sent instants of each alerting alarm, and the SSE reader.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sent, latencies, done, token) = (sent.clone(), latencies.clone(), done.clone(), token.clone());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let req = format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut text = String::new();
            let mut buf = vec![0u8; 1 << 16];
            while !done.load(Ordering::SeqCst) {
                let n = match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                let now = Instant::now();
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                // Chunk framing lines never contain `"subject":"alarm:`, so scan the text.
                while let Some(p) = text.find("\"subject\":\"alarm:") {
                    let rest = &text[p + 17..];
                    let Some(end) = rest.find('"') else { break };
                    if let Ok(id) = rest[..end].parse::<u64>()
                        && let Some(t) = sent.lock().unwrap().remove(&id)
                    {
                        latencies.lock().unwrap().push(now.duration_since(t).as_secs_f64() * 1e3);
                    }
                    text.drain(..p + 17 + end);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // 100 requests per second, each a mix of calls (50%), patrols (40%), alarms (10%, a tenth urgent).
    let per_tick = (rate / 100).max(10);
    let t0 = Instant::now();
    let base_ts: i64 = 1_767_225_600_000;
    let mut n_events = 0u64;
    let mut alarm_id = 0u64;
    let mut tick = 0u64;
    let mut refused = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        let due = t0 + Duration::from_millis(tick * 10);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        tick += 1;
        let ts = base_ts + (tick as i64) * 10;
        let (mut calls, mut patrols, mut alarms) = (String::new(), String::new(), String::new());
        let mut urgent = Vec::new();
        for i in 0..per_tick {
            let lat = 36.05 + (i % 50) as f64 * 0.002;
            let lon = 120.35 + (i % 37) as f64 * 0.002;
            match i % 10 {
                0..=4 => calls.push_str(&format!(
                    "{{\"call_id\":{},\"event\":\"start\",\"ts_ms\":{ts},\"caller\":\"+86138{:08}\",\"callee\":\"+86139{:08}\",\
                     \"caller_lat\":{lat},\"caller_lon\":{lon},\"callee_lat\":null,\"callee_lon\":null,\"duration_s\":null}}\n",
                    n_events + i, (n_events + i) % 5000, (n_events + i * 7) % 90000
                )),
                5..=8 => patrols.push_str(&format!(
                    "{{\"unit_id\":\"u{}\",\"ts_ms\":{ts},\"lat\":{lat},\"lon\":{lon},\"status\":\"available\",\"alarm_id\":null}}\n",
                    i % 200
                )),
                _ => {
                    alarm_id += 1;
                    // One alarm in ten is urgent; each urgent one has its own event time.
                    let priority = if alarm_id.is_multiple_of(10) { 1 } else { 3 };
                    let ts_a = if priority == 1 { base_ts + 1_000_000_000 + alarm_id as i64 } else { ts };
                    if priority == 1 {
                        urgent.push(alarm_id);
                    }
                    alarms.push_str(&format!(
                        "{{\"alarm_id\":{alarm_id},\"ts_ms\":{ts_a},\"category\":\"burglary\",\"priority\":{priority},\
                         \"lat\":{lat},\"lon\":{lon},\"reporter\":null,\"suspect_number\":null,\"source\":\"110\"}}\n"
                    ))
                }
            }
        }
        n_events += per_tick;
        refused += (post(addr, &token, "/api/v1/ingest/calls", &calls) != 200) as u32;
        refused += (post(addr, &token, "/api/v1/ingest/patrols", &patrols) != 200) as u32;
        let now = Instant::now();
        sent.lock().unwrap().extend(urgent.iter().map(|id| (*id, now)));
        refused += (post(addr, &token, "/api/v1/ingest/alarms", &alarms) != 200) as u32;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();

    let metrics = {
        let mut s = TcpStream::connect(addr).unwrap();
        let req = format!(
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let _ = stop_tx.send(());
    server.join().unwrap();

    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) as f64 * p).round() as usize] };
    let missing = sent.lock().unwrap().len();
    println!(
        "events sent: {n_events} in {elapsed:.1} s = {:.0} events/s ({refused} requests refused)",
        n_events as f64 / elapsed
    );
    println!("alerts pushed and received: {} (missing: {missing})", l.len());
    println!(
        "ingest-to-push latency (client: request sent -> SSE received), ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    println!("server histogram:");
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("citywatch_ingest_to_push_seconds") || l.starts_with("citywatch_events_in_total"))
    {
        println!("  {line}");
    }
}
