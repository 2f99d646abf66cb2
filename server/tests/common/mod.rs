//! Test harness: a small city, a fake pipeline, a server on a free port,
//! requests through the `ureq` client, and an SSE reader over std's TcpStream.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citywatch_engine::alert::{Alert, RouteLevel, alert_id};
use citywatch_engine::contract::Role;
use citywatch_engine::event::Event;
use citywatch_engine::geo::Point;
use citywatch_engine::jurisdiction::{GridInfo, Jurisdiction, Officer};
use citywatch_engine::pseudonym::token_hex;
use citywatch_server::auth::CredentialsFile;
use citywatch_server::{Pipeline, PipelineRefusal, ServerConfig};
use h3o::Resolution;

/// Two grids far enough apart: g1 in c1/s1/d1, g2 in c2/s2/d2.
pub const P1: (f64, f64) = (36.0671, 120.3826);
pub const P2: (f64, f64) = (36.1000, 120.4500);

pub fn city() -> Arc<Jurisdiction> {
    let cell = |p: (f64, f64)| Point::from_degrees(p.0, p.1).unwrap().cell(Resolution::Nine);
    let info = |n: u32| GridInfo {
        grid: format!("g{n}"),
        community: format!("c{n}"),
        street: format!("s{n}"),
        district: format!("d{n}"),
    };
    let o = |id: &str, role, scope: &str| Officer { officer_id: id.into(), name: id.into(), role, scope: scope.into() };
    let officers = vec![
        o("o-an", Role::Analyst, "city"),
        o("o-c1", Role::Community, "c1"),
        o("o-c2", Role::Community, "c2"),
        o("o-s1", Role::Station, "s1"),
        o("o-d1", Role::District, "d1"),
    ];
    Arc::new(Jurisdiction::new(Resolution::Nine, vec![(cell(P1), info(1)), (cell(P2), info(2))], officers))
}

/// [`city`] inside a city of the demo's size: ~132,000 resolution-9 cells
/// around P1 (grids their resolution-8 parents, communities resolution 7,
/// streets 6, districts 5), P1's and P2's cells keeping g1/c1 and g2/c2.
pub fn big_city() -> Arc<Jurisdiction> {
    let small = city();
    let centre = Point::from_degrees(P1.0, P1.1).unwrap().cell(Resolution::Nine);
    let mut cells: Vec<(h3o::CellIndex, GridInfo)> = small.cells().map(|(c, g)| (c, g.clone())).collect();
    let kept: std::collections::HashSet<_> = cells.iter().map(|c| c.0).collect();
    let id = |c: h3o::CellIndex, r: Resolution| c.parent(r).unwrap().to_string();
    for c in centre.grid_disk::<Vec<_>>(210) {
        if kept.contains(&c) {
            continue;
        }
        let info = GridInfo {
            grid: id(c, Resolution::Eight),
            community: id(c, Resolution::Seven),
            street: id(c, Resolution::Six),
            district: id(c, Resolution::Five),
        };
        cells.push((c, info));
    }
    Arc::new(Jurisdiction::new(Resolution::Nine, cells, small.officers().to_vec()))
}

/// A deterministic stand-in for the dataflow: every priority-1 alarm fires an
/// `urgent_alarm` alert at once, routed like the engine routes.
pub struct FakePipeline {
    pub alerts: crossbeam_channel::Sender<Alert>,
    pub jurisdiction: Arc<Jurisdiction>,
    pub events: AtomicU64,
    pub clock: AtomicU64,
    pub risk: Mutex<Vec<(String, f64)>>,
}

impl Pipeline for FakePipeline {
    fn ingest(&self, events: Vec<Event>) -> Result<u64, PipelineRefusal> {
        self.events.fetch_add(events.len() as u64, Ordering::SeqCst);
        for e in events {
            if let Event::Alarm(a) = e
                && a.priority == 1
            {
                let r = self.jurisdiction.route(Some(a.pos), None, RouteLevel::Community);
                let subject = format!("alarm:{}", a.alarm_id);
                let evidence = serde_json::json!({
                    "alarm_id": a.alarm_id,
                    "reporter": a.reporter.map(token_hex),
                    "category": a.category.as_str(),
                });
                let alert = Alert {
                    alert_id: alert_id("fake", "urgent_alarm", &subject, a.ts_ms),
                    model: "fake".into(),
                    model_version: "1".into(),
                    kind: "urgent_alarm".into(),
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
                    summary: format!("Urgent {} alarm {}", a.category.as_str(), a.alarm_id),
                    evidence: evidence.to_string(),
                    action: "Dispatch a unit".into(),
                };
                self.alerts.send(alert).map_err(|e| PipelineRefusal::Unavailable(e.to_string()))?;
            }
        }
        Ok(0)
    }

    fn advance_clock(&self, now_ms: u64) {
        self.clock.store(now_ms, Ordering::SeqCst);
    }

    fn risk_surface(&self) -> Vec<(String, f64)> {
        self.risk.lock().unwrap().clone()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub tokens: HashMap<String, String>,
    pub fake: Option<Arc<FakePipeline>>,
    pub store_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<citywatch_server::Result<()>>>,
}

/// Writes credentials for every officer of [`city`] (once per folder) and returns the tokens.
pub fn credentials(dir: &Path) -> HashMap<String, String> {
    let tokens_path = dir.join("tokens.json");
    if let Ok(t) = std::fs::read_to_string(&tokens_path) {
        return serde_json::from_str(&t).unwrap();
    }
    let mut f = CredentialsFile::default();
    let mut tokens = HashMap::new();
    for o in city().officers() {
        tokens.insert(o.officer_id.clone(), f.issue(&o.officer_id).unwrap());
    }
    f.save(&dir.join("credentials.json")).unwrap();
    std::fs::write(&tokens_path, serde_json::to_string(&tokens).unwrap()).unwrap();
    tokens
}

pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        addr: "127.0.0.1:0".into(),
        store_path: dir.join("store.sqlite"),
        credentials_path: dir.join("credentials.json"),
        escalation_check_ms: 50,
        clock_tick_ms: 100,
        // Tests make many deliberate 401s from 127.0.0.1; the limit has its own test.
        auth_failures_per_minute: 0,
        // The scenarios are dated 2026-01-01 (fixed, so ids are stable): no age bound.
        max_event_age_ms: 0,
        ..ServerConfig::default()
    }
}

impl TestServer {
    pub fn start(dir: &Path) -> TestServer {
        Self::start_with(dir, config(dir))
    }

    pub fn start_with(dir: &Path, cfg: ServerConfig) -> TestServer {
        Self::start_in(dir, cfg, city())
    }

    /// [`TestServer::start_with`] over another jurisdiction (with [`city`]'s officers).
    pub fn start_in(dir: &Path, cfg: ServerConfig, jurisdiction: Arc<Jurisdiction>) -> TestServer {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let pipeline = Arc::new(FakePipeline {
            alerts: tx,
            jurisdiction: jurisdiction.clone(),
            events: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            risk: Mutex::new(Vec::new()),
        });
        let mut s = Self::start_pipeline(dir, cfg, pipeline.clone(), rx, jurisdiction);
        s.fake = Some(pipeline);
        s
    }

    /// A server over any pipeline (the real engine, say).
    pub fn start_pipeline(
        dir: &Path,
        cfg: ServerConfig,
        pipeline: Arc<dyn Pipeline>,
        rx: crossbeam_channel::Receiver<Alert>,
        jurisdiction: Arc<Jurisdiction>,
    ) -> TestServer {
        let tokens = credentials(dir);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let store_path = cfg.store_path.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                citywatch_server::serve_on(listener, cfg, pipeline, rx, jurisdiction, async {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("server did not start");
        TestServer { addr, tokens, fake: None, store_path, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// The fake pipeline (servers started with [`TestServer::start`]).
    pub fn fake(&self) -> &FakePipeline {
        self.fake.as_ref().expect("started with the fake pipeline")
    }

    pub fn token(&self, officer: &str) -> &str {
        &self.tokens[officer]
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread panicked").expect("serve returned an error");
        }
    }

    pub fn get(&self, path: &str, officer: Option<&str>) -> Response {
        request(self.addr, "GET", path, officer.map(|o| self.token(o)), &[], b"")
    }

    pub fn post(&self, path: &str, officer: Option<&str>, body: &str) -> Response {
        request(self.addr, "POST", path, officer.map(|o| self.token(o)), &[], body.as_bytes())
    }

    /// Ingests NDJSON alarms as the analyst; panics unless accepted.
    pub fn alarms(&self, rows: &[serde_json::Value]) {
        let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
        let r = self.post("/api/v1/ingest/alarms", Some("o-an"), &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Waits until the analyst sees `n` alerts; returns them.
    pub fn wait_alerts(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.get("/api/v1/alerts", Some("o-an"));
            let alerts = r.json()["alerts"].as_array().cloned().unwrap_or_default();
            if alerts.len() >= n || Instant::now() > deadline {
                assert_eq!(alerts.len(), n, "alerts: {alerts:?}");
                return alerts;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.stop.is_some() {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// An urgent alarm row at `p`.
pub fn alarm(id: u64, ts_ms: i64, p: (f64, f64)) -> serde_json::Value {
    serde_json::json!({"alarm_id": id, "ts_ms": ts_ms, "category": "burglary", "priority": 1,
                       "lat": p.0, "lon": p.1, "reporter": null, "suspect_number": null, "source": "110"})
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The tests' HTTP client: a fresh connection for each request (no pool, as
/// `curl` would), no proxy, no redirects followed, and an answer of any
/// status returned rather than an error.
pub fn client() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    })
}

/// One request through [`client`]; the whole answer. Header names in the
/// [`Response`] are lower case.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let agent = client();
    let mut req = ureq::http::Request::builder().method(method).uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    // GET and DELETE go without a body (and without a Content-Length).
    let answer = if body.is_empty() && !matches!(method, "POST" | "PUT" | "PATCH") {
        agent.run(req.body(()).unwrap())
    } else {
        agent.run(req.body(body).unwrap())
    };
    let answer = answer.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = answer
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Incremental `Transfer-Encoding: chunked` decoder.
#[derive(Default)]
struct Dechunker {
    raw: Vec<u8>,
}

impl Dechunker {
    /// Decodes every complete chunk in `raw`, leaving a partial one.
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..eol]).to_string();
            let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16) else { break };
            if self.raw.len() < eol + 2 + size + 2 {
                break;
            }
            out.extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
            self.raw.drain(..eol + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
        out
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: i64,
    pub data: serde_json::Value,
}

/// A live SSE connection, over a raw socket on purpose: [`SseClient::next`]
/// waits a different time on each call and then goes on reading, and dropping
/// the client closes the connection at once (tests count the stream slot freed
/// and the `stream_closed` audit row). ureq's body reader has one timeout for
/// the whole body and cannot be read again after it fires.
pub struct SseClient {
    stream: TcpStream,
    chunks: Dechunker,
    text: String,
    pub status: u16,
}

impl SseClient {
    pub fn connect(addr: SocketAddr, token: &str, last_event_id: Option<i64>) -> SseClient {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut req = format!(
            "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Read the head.
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let split = loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "stream closed before headers");
            raw.extend_from_slice(&buf[..n]);
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let chunks = Dechunker { raw: raw[split + 4..].to_vec() };
        SseClient { stream: s, chunks, text: String::new(), status }
    }

    /// The next `alert` event, or `None` after `wait` with none.
    pub fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = Instant::now() + wait;
        loop {
            let decoded = self.chunks.drain();
            self.text.push_str(&String::from_utf8_lossy(&decoded));
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let (Some(id), false) = (id, data.is_empty()) {
                    return Some(Sse { id, data: serde_json::from_str(&data).unwrap() });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.chunks.raw.extend_from_slice(&buf[..n]),
                Err(_) => return None,
            }
        }
    }
}

/// A valid Arrow IPC stream of two alarms (ids 21 and 22, a robbery reported
/// by a number and a theft from the app) at `t0`, at the two positions.
pub fn alarms_arrow_ipc(t0: i64, positions: [(f64, f64); 2]) -> Vec<u8> {
    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray, UInt8Array, UInt64Array};
    let schema = citywatch_engine::contract::Table::Alarms.schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from(vec![21, 22])),
            Arc::new(Int64Array::from(vec![t0, t0])),
            Arc::new(StringArray::from(vec!["robbery", "theft"])),
            Arc::new(UInt8Array::from(vec![1, 3])),
            Arc::new(Float64Array::from(vec![positions[0].0, positions[1].0])),
            Arc::new(Float64Array::from(vec![positions[0].1, positions[1].1])),
            Arc::new(StringArray::from(vec![Some("+8613800000001"), None])),
            Arc::new(StringArray::from(vec![None::<&str>, None])),
            Arc::new(StringArray::from(vec!["110", "app"])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut buf, &schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    drop(w);
    buf
}
