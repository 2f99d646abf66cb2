//! Feeds a dataset folder into a running citywatch server through its public
//! HTTP ingest API (Arrow IPC), paced in event time: what `citywatch demo`
//! uses, so the demo exercises the same path as a real operator feed
//! (decoding, validation, kept numbers for reveal, unit positions, metrics).
//!
//! Tables are read whole (a demo city is small), each sorted by `ts_ms` as the
//! generator writes them; every step sends, per table, the rows whose event
//! time falls in the next slice, then sleeps to keep `speed` x real time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use citywatch_engine::contract::Table;

/// One table, concatenated, with its event times.
struct Loaded {
    table: Table,
    batch: RecordBatch,
    ts: Vec<i64>,
    next: usize,
}

fn load(dir: &Path, table: Table) -> Result<Option<Loaded>> {
    let Some(files) = citywatch_engine::parquet_io::locate(dir, table)? else { return Ok(None) };
    let mut batches = Vec::new();
    for f in &files.files {
        batches.extend(citywatch_engine::parquet_io::read_whole_file(f, table.name())?);
    }
    let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| table.schema());
    let batch = arrow_select::concat::concat_batches(&schema, &batches)?;
    let ts_col = batch.column_by_name("ts_ms").context("ts_ms column")?;
    let ts: Vec<i64> = ts_col.as_primitive::<Int64Type>().values().iter().copied().collect();
    if ts.windows(2).any(|w| w[1] < w[0]) {
        bail!("{}: the demo feeder needs rows sorted by ts_ms", table.name());
    }
    Ok(Some(Loaded { table, batch, ts, next: 0 }))
}

fn ipc_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// A minimal HTTP/1.1 POST on loopback (the demo talks to its own server).
fn post(addr: &str, path: &str, token: &str, body: &[u8]) -> Result<(u16, String)> {
    request(addr, "POST", path, token, body)
}

/// One request to the service (plain HTTP on the given address, no proxy);
/// an answer of any status is returned, not an error.
fn request(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Result<(u16, String)> {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    let agent = AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    });
    let url = format!("http://{addr}{path}");
    let auth = format!("Bearer {token}");
    // No token (the health check): no Authorization header to fail.
    let answer = match (method, token.is_empty()) {
        ("GET", true) => agent.get(&url).call(),
        ("GET", false) => agent.get(&url).header("Authorization", &auth).call(),
        _ => agent
            .post(&url)
            .header("Authorization", &auth)
            .content_type("application/vnd.apache.arrow.stream")
            .send(body),
    };
    let answer = answer.with_context(|| format!("{method} {url}"))?;
    let status = answer.status().as_u16();
    let text = answer.into_body().read_to_string().with_context(|| format!("reading the answer to {method} {url}"))?;
    Ok((status, text))
}

/// New alerts so far by model, from the server's `/metrics`
/// (`citywatch_alerts_total{model="..."} n`).
pub fn alerts_by_model(addr: &str, token: &str) -> Result<Vec<(String, u64)>> {
    let (status, text) = request(addr, "GET", "/metrics", token, b"")?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("citywatch_alerts_total{model=\""))
        .filter_map(|l| {
            let (model, n) = l.split_once("\"} ")?;
            Some((model.to_owned(), n.trim().parse().ok()?))
        })
        .collect())
}

/// Waits until the server answers `/healthz`.
pub fn wait_for(addr: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if request(addr, "GET", "/healthz", "", b"").is_ok_and(|(status, _)| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server at {addr} did not come up within {timeout:?}")
}

/// What the feeder did.
#[derive(Debug, Default)]
pub struct Fed {
    /// Rows accepted by the server.
    pub rows: u64,
    /// Requests refused (400), with the first reason.
    pub refused: u64,
    /// First refusal text.
    pub first_refusal: Option<String>,
}

/// Feeds `dir`'s calls, alarms and patrols to the server at `addr` at `speed` x real time.
pub fn feed(dir: &Path, addr: &str, token: &str, speed: f64, mut on_progress: impl FnMut(i64, &Fed)) -> Result<Fed> {
    let mut tables: Vec<Loaded> = [Table::Patrols, Table::Alarms, Table::Calls]
        .into_iter()
        .filter_map(|t| load(dir, t).transpose())
        .collect::<Result<_>>()?;
    let Some(t0) = tables.iter().filter_map(|t| t.ts.first().copied()).min() else { return Ok(Fed::default()) };
    let end = tables.iter().filter_map(|t| t.ts.last().copied()).max().unwrap_or(t0);
    // One slice of event time per 250 ms of wall time, but never more than half
    // the default lateness: tables are posted one after the other within a
    // slice, so a longer slice would make the later tables' rows late.
    let slice_ms = ((250.0 * speed) as i64).clamp(1, 30_000);
    let started = Instant::now();
    let mut fed = Fed::default();
    let mut t = t0;
    while t <= end {
        let upto = t + slice_ms;
        for tb in tables.iter_mut() {
            let from = tb.next;
            let to = from + tb.ts[from..].partition_point(|&x| x < upto);
            if to > from {
                let body = ipc_bytes(&tb.batch.slice(from, to - from))?;
                let (status, text) = post(addr, &format!("/api/v1/ingest/{}", tb.table.name()), token, &body)?;
                match status {
                    200 => fed.rows += (to - from) as u64,
                    400 => {
                        fed.refused += 1;
                        fed.first_refusal.get_or_insert(text);
                    }
                    other => bail!("ingest of {} answered {other}: {text}", tb.table.name()),
                }
                tb.next = to;
            }
        }
        t = upto;
        on_progress(t, &fed);
        let target = Duration::from_secs_f64((t - t0) as f64 / 1000.0 / speed);
        if let Some(wait) = target.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(fed)
}
