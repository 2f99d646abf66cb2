//! The HTTP surface: routes, handlers, streams, and the background tasks
//! (store thread, escalation sweep, pipeline clock) that `serve` runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use citywatch_engine::alert::{Alert, to_cap_xml_in};
use citywatch_engine::contract::Table;
use citywatch_engine::jurisdiction::Jurisdiction;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::{Authenticator, Caller, CredentialsFile, Failure, Throttle, Verified, claimed_id};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::geo::GeoIndex;
use crate::ingest::{Ingest, Refusal, RowError, RowErrors};
use crate::metrics::Metrics;
use crate::pipeline::{Applied, Pipeline, PipelineRefusal};
use crate::store::{AlertFilter, Change, Store, StoredAlert, Transition, Visibility};

const CONSOLE_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/app.js");
const CONSOLE_CSS: &str = include_str!("../console/style.css");

/// Most alerts the store thread writes in one transaction.
const STORE_BATCH: usize = 512;
/// Rows read per backlog query of a resuming stream.
const BACKLOG_PAGE: u32 = 500;
/// How often the WAL is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Events buffered per stream connection.
const STREAM_BUFFER: usize = 256;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Shared state of the handlers.
struct App {
    cfg: ServerConfig,
    pipeline: Arc<dyn Pipeline>,
    jurisdiction: Arc<Jurisdiction>,
    auth: Authenticator,
    throttle: Throttle,
    /// One connection, serialising writes; the change broadcast happens under
    /// this lock so stream ids are pushed in order.
    store: Arc<Mutex<Store>>,
    ingest: Arc<Ingest>,
    /// Ingest requests that may be decoded or applied at once (503 past that).
    ingest_slots: Arc<tokio::sync::Semaphore>,
    /// Open event streams per credential id (`max_streams_per_token`).
    streams: Mutex<std::collections::HashMap<String, usize>>,
    /// Ingests waiting for the pipeline (`/healthz`'s stall check).
    applying: Arc<Applying>,
    /// Alerts in the engine's channel, not yet stored (a gauge).
    alerts_waiting: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
    changes: broadcast::Sender<Arc<Change>>,
    shutdown: watch::Receiver<bool>,
    /// The map's cell index, built on the first map request.
    geo: std::sync::OnceLock<Arc<GeoIndex>>,
    /// Overview JSON per scope (scopes are few: one per officer at most).
    overviews: Mutex<HashMap<String, Bytes>>,
}

type Shared = Arc<App>;

mod logfeed;

pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    cfg: ServerConfig,
    pipeline: Arc<dyn Pipeline>,
    alerts: crossbeam_channel::Receiver<Alert>,
    jurisdiction: Arc<Jurisdiction>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let creds = CredentialsFile::load(&cfg.credentials_path)?;
    let auth = Authenticator::new(creds, &jurisdiction.officers());
    let store = Arc::new(Mutex::new(Store::open(&cfg.store_path, cfg.vault_key_bytes(), cfg.audit_key_bytes())?));
    let (changes, _) = broadcast::channel(cfg.stream_buffer.max(16));
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    let throttle = Throttle::per_minute(cfg.auth_failures_per_minute);
    let app = Arc::new(App {
        throttle,
        ingest: Ingest::new(&cfg, pipeline.unit_directory()),
        ingest_slots: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_ingests.max(1))),
        streams: Mutex::new(std::collections::HashMap::new()),
        applying: Arc::new(Applying::default()),
        alerts_waiting: std::sync::atomic::AtomicU64::new(0),
        cfg,
        pipeline,
        jurisdiction,
        auth,
        store,
        metrics,
        changes,
        shutdown: stop_rx,
        geo: std::sync::OnceLock::new(),
        overviews: Mutex::new(HashMap::new()),
    });

    // The store thread: engine alerts -> SQLite -> broadcast.
    // Dropping `stop_threads` tells the store and checkpoint threads to stop:
    // they wait on it (and on the alerts) instead of polling a flag, so an
    // idle service does not wake them.
    let (stop_threads, stop) = crossbeam_channel::bounded::<()>(0);
    let store_thread = {
        let app = app.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("citywatch-store".into())
            .spawn(move || store_loop(&app, &alerts, &stop))
            .map_err(|e| Error::Internal(format!("cannot start the store thread: {e}")))?
    };
    let checkpointer = {
        let conn = rusqlite::Connection::open(&app.cfg.store_path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let wal = {
            let mut p = app.cfg.store_path.clone().into_os_string();
            p.push("-wal");
            std::path::PathBuf::from(p)
        };
        std::thread::Builder::new()
            .name("citywatch-checkpoint".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = crate::store::checkpoint(&conn, &wal) {
                        tracing::error!(error = %e, "WAL checkpoint failed");
                    }
                }
                let _ = crate::store::checkpoint(&conn, &wal);
            })
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?
    };
    // The journal's epochs go back into the dataflow now that the store thread
    // drains its alerts; ingest waits for this, connections wait in the backlog.
    let p = app.pipeline.clone();
    let restored = tokio::task::spawn_blocking(move || p.restore())
        .await
        .map_err(|e| Error::Internal(format!("restore panicked: {e}")))?;
    match restored {
        Ok(line) => {
            let c = &app.cfg;
            tracing::info!(
                restored = %line,
                max_clock_skew_s = c.max_clock_skew_ms / 1000,
                max_event_age_s = c.max_event_age_ms / 1000,
                max_body_bytes = c.max_body_bytes,
                max_concurrent_ingests = c.max_concurrent_ingests,
                max_connections = c.max_connections,
                header_timeout_ms = c.header_timeout_ms,
                body_timeout_ms = c.body_timeout_ms,
                max_streams_per_token = c.max_streams_per_token,
                "journal restored; limits in force"
            );
        }
        Err(e) => {
            drop(stop_threads);
            return Err(Error::Internal(format!("cannot restore the journal: {e}")));
        }
    }
    // The log feed thread (when configured) polls this between batches.
    let stopping = Arc::new(AtomicBool::new(false));
    let log_thread = match logfeed::spawn(&app, &stopping) {
        Ok(t) => t,
        Err(e) => {
            drop(stop_threads);
            return Err(e);
        }
    };
    let sink_thread = match logfeed::spawn_alert_sink(&app, &stopping) {
        Ok(t) => t,
        Err(e) => {
            drop(stop_threads);
            return Err(e);
        }
    };
    let sweeper = tokio::spawn(escalation_loop(app.clone()));
    let clock = tokio::spawn(clock_loop(app.clone()));
    let credentials = tokio::spawn(credentials_loop(app.clone()));
    let refusals = tokio::spawn(refusals_loop(app.clone()));

    let router = router(app.clone());
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut stop_wait = app.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = crate::listen::serve_connections(listener, router, &app.cfg, app.shutdown.clone()).await;
    let _ = stop_wait.wait_for(|s| *s).await;
    sweeper.abort();
    clock.abort();
    credentials.abort();
    refusals.abort();
    stopping.store(true, Ordering::SeqCst);
    drop(stop_threads);
    let joined = tokio::task::spawn_blocking(move || {
        if let Some(t) = log_thread {
            let _ = t.join();
        }
        if let Some(t) = sink_thread {
            let _ = t.join();
        }
        (store_thread.join(), checkpointer.join())
    })
    .await;
    served.map_err(|source| Error::Bind { addr, source })?;
    match joined {
        Ok((Ok(()), Ok(()))) => Ok(()),
        _ => Err(Error::Internal("the store or checkpoint thread panicked".into())),
    }
}

/// Stores the engine's alerts as they come. Once told to stop it keeps
/// storing until no alert has come for 50 ms (the engine's last ones).
fn store_loop(app: &App, alerts: &crossbeam_channel::Receiver<Alert>, stop: &crossbeam_channel::Receiver<()>) {
    let mut stopping = false;
    loop {
        let next = if stopping {
            alerts.recv_timeout(Duration::from_millis(50)).ok()
        } else {
            crossbeam_channel::select! {
                recv(alerts) -> a => a.ok(),
                recv(stop) -> _ => {
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(first) = next else { return };
        let mut batch = vec![first];
        batch.extend(alerts.try_iter().take(STORE_BATCH - 1));
        app.alerts_waiting.store(alerts.len() as u64, Ordering::Relaxed);
        let Ok(mut store) = app.store.lock() else { return };
        match store.apply_alerts(&batch, now_ms(), app.cfg.cooldown_ms, &app.jurisdiction) {
            Ok(changes) => publish(app, changes),
            Err(e) => tracing::error!(alerts = batch.len(), error = %e, "alerts not stored"),
        }
    }
}

/// Pushes changes to streams; call with the store lock held (keeps ids in order).
fn publish(app: &App, changes: Vec<Change>) {
    for c in changes {
        app.metrics.pushed(&c.change, &c.alert.alert.model, c.alert.alert.event_ts_ms);
        let _ = app.changes.send(Arc::new(c));
    }
}

/// Escalations per store transaction: a wave of due alerts is swept in
/// short transactions, so the alerts the engine fires meanwhile are stored
/// (and pushed) between them instead of waiting for the whole wave.
const ESCALATION_BATCH: usize = 32;

async fn escalation_loop(app: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(app.cfg.escalation_check_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let a = app.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            loop {
                let done = {
                    let Ok(mut store) = a.store.lock() else { return };
                    match store.escalate_due(now, a.cfg.escalation_timeout_ms, &a.jurisdiction, ESCALATION_BATCH) {
                        Ok(changes) => {
                            let n = changes.len();
                            a.metrics.escalated(n as u64);
                            publish(&a, changes);
                            n < ESCALATION_BATCH
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "escalation sweep failed");
                            true
                        }
                    }
                };
                if done {
                    return;
                }
                // Let the store thread in with the alerts fired meanwhile.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .await;
    }
}

async fn clock_loop(app: Shared) {
    if app.cfg.clock_tick_ms == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(app.cfg.clock_tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = app.pipeline.clone();
        let _ = tokio::task::spawn_blocking(move || p.advance_clock(now_ms() as u64)).await;
    }
}

/// Reloads the credentials file when it changes (checked every
/// `credentials_poll_ms`) or on `SIGHUP`: tokens issued or revoked while the
/// server runs take effect without a restart. A file that cannot be read or
/// parsed is reported and the tokens in force stay as they were.
async fn credentials_loop(app: Shared) {
    let path = app.cfg.credentials_path.clone();
    let stamp = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
    let mut last = stamp(&path);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let poll =
        Duration::from_millis(if app.cfg.credentials_poll_ms == 0 { 3_600_000 } else { app.cfg.credentials_poll_ms });
    loop {
        let signalled = tokio::select! {
            _ = tokio::time::sleep(poll) => false,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        let now = stamp(&path);
        if !signalled && (now == last || app.cfg.credentials_poll_ms == 0) {
            continue;
        }
        last = now;
        let p = path.clone();
        match tokio::task::spawn_blocking(move || CredentialsFile::load(&p)).await {
            Ok(Ok(file)) => {
                let tokens = file.tokens.len();
                let (added, removed) = app.auth.reload(file);
                tracing::info!(
                    path = %path.display(),
                    cause = if signalled { "SIGHUP" } else { "file changed" },
                    tokens,
                    added,
                    removed,
                    "credentials reloaded"
                );
            }
            Ok(Err(e)) => tracing::error!(error = %e, "credentials NOT reloaded; the tokens in force stay"),
            Err(e) => tracing::error!(error = %e, "credentials NOT reloaded; the tokens in force stay"),
        }
    }
}

/// Logs the requests refused in the last minute, summarised by reason (a
/// flood of bad tokens or rows is one line a minute, not a line a request).
async fn refusals_loop(app: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = app.metrics.refusals();
    loop {
        tick.tick().await;
        let now = app.metrics.refusals();
        if let Some(d) = now.since(&last) {
            tracing::warn!(
                unauthorized = d.unauthorized,
                throttled = d.throttled,
                busy = d.busy,
                bad_requests = d.bad_requests,
                rejected_rows = d.rejected_rows,
                "requests refused in the last minute"
            );
        }
        last = now;
    }
}

/// Largest body of the requests other than ingest (resolve notes, reveals).
const SMALL_BODY: usize = 64 << 10;

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], CONSOLE_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CONSOLE_JS) }))
        .route("/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CONSOLE_CSS) }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/me", get(me))
        .route("/api/v1/clock", get(clock))
        .route("/api/v1/health", get(health))
        .route("/api/v1/ingest/{table}", post(ingest))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/ack", post(ack))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/alerts/{id}/cap", get(cap))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/risk", get(risk))
        .route("/api/v1/grid", get(grid))
        .route("/api/v1/grid/cells", get(grid_cells))
        .route("/api/v1/units", get(units))
        .route("/api/v1/reveal", post(reveal))
        // Ingest reads its own body (after the token check, with its own
        // limit and timeout); the other bodies are small JSON.
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard_auth))
        .layer(axum::middleware::from_fn_with_state(app.clone(), request_deadline))
        .with_state(app)
}

/// Bounds the time of every request but event streams (long-lived by design)
/// and ingest (which bounds its own body read and then must finish applying):
/// a client trickling a body byte by byte is answered 408 and dropped.
async fn request_deadline(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/api/v1/stream" || path.starts_with("/api/v1/ingest/") {
        return next.run(req).await;
    }
    let limit = Duration::from_millis(app.cfg.body_timeout_ms.max(1));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request did not complete within {} ms (body_timeout_ms)", app.cfg.body_timeout_ms),
        )
        .into_response(),
    }
}

/// The failed-authentication limit around every route that checks a token.
///
/// A client address over `auth_failures_per_minute` gets 429 with
/// `Retry-After` until its minute is over, unless it presents a token this
/// process has already verified (a signed-in console keeps working). Every
/// refused token is an audit row (`login_failed`: the credential id it named,
/// never the secret; the address and the count this minute); requests without
/// a token count toward the limit but are not audited.
async fn guard_auth(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !(path.starts_with("/api/") || path == "/metrics") {
        return next.run(req).await;
    }
    let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let token = bearer(req.headers());
    // Only a throttled address pays for the signed-in check (authenticate repeats it otherwise).
    if let Some(ip) = addr
        && let Some(wait_ms) = app.throttle.retry_after_ms(ip, now_ms())
        && token.as_deref().is_none_or(|t| app.auth.cached(t).is_none())
    {
        app.metrics.throttled();
        let secs = ((wait_ms + 999) / 1000).max(1);
        let msg = format!("too many failed authentications from {ip}; try again in {secs} s with a valid token");
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs.to_string())], Json(json!({"error": msg})))
            .into_response();
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(ip) = addr
    {
        let failure = app.throttle.fail(ip, now_ms());
        if let Some(token) = token {
            let claimed = claimed_id(&token).unwrap_or("-").to_owned();
            let reason = match failure {
                Failure::Counted(n) => format!("from {ip}; failure {n} this minute"),
                Failure::Reached(n) => {
                    format!("from {ip}; failure {n} this minute: limit reached, refused until the minute is over")
                }
            };
            let audited = with_store(&app, move |s, _| s.audit(now_ms(), "-", "login_failed", &claimed, &reason)).await;
            if let Err(e) = audited {
                tracing::error!(error = %e.1, "failed login not audited");
            }
        }
    }
    response
}

/// The token of an `Authorization: Bearer` header, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// An error response: status and a JSON body `{"error": ...}` (plus details).
#[derive(Debug)]
struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError(status, json!({"error": msg.into()}))
    }
    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "no such alert")
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        tracing::error!(error = %e, "internal error answered 500");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"citywatch\""));
        }
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Runs store work off the async runtime.
async fn with_store<T: Send + 'static>(
    app: &Shared,
    f: impl FnOnce(&mut Store, &App) -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = app.store.lock().map_err(|_| Error::Internal("store lock poisoned".into()))?;
        f(&mut store, &app)
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?
    .map_err(ApiError::from)
}

async fn audit(app: &Shared, caller: &Caller, action: &'static str, target: String, reason: String) -> ApiResult<()> {
    let actor = caller.officer.officer_id.clone();
    with_store(app, move |s, _| s.audit(now_ms(), &actor, action, &target, &reason)).await
}

/// The caller behind the `Authorization: Bearer` header, or 401.
async fn authenticate(app: &Shared, headers: &HeaderMap) -> ApiResult<Caller> {
    let Some(token) = bearer(headers) else {
        app.metrics.unauthorized();
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"));
    };
    if let Some(c) = app.auth.cached(&token) {
        return Ok(c);
    }
    let a = app.clone();
    let verified = tokio::task::spawn_blocking(move || a.auth.verify(&token))
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    match verified {
        Verified::Ok { caller, first } => {
            if first {
                audit(app, &caller, "login", caller.officer.officer_id.clone(), String::new()).await?;
            }
            Ok(caller)
        }
        Verified::Denied => {
            app.metrics.unauthorized();
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token"))
        }
    }
}

fn visibility(c: &Caller) -> Visibility {
    Visibility { scope: c.officer.scope.clone(), officer_id: c.officer.officer_id.clone() }
}

async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    authenticate(&app, &headers).await?;
    let a = app.clone();
    let (queue, lag) = tokio::task::spawn_blocking(move || (a.pipeline.queue_depth(), a.pipeline.journal_lag_bytes()))
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    let in_flight = app.cfg.max_concurrent_ingests.max(1)
        - app.ingest_slots.available_permits().min(app.cfg.max_concurrent_ingests.max(1));
    let gauges = [
        ("citywatch_engine_queue_depth", "Epochs queued for the busiest dataflow worker (64 fit).", queue as u64),
        ("citywatch_journal_lag_bytes", "Journal bytes written and not yet synced.", lag),
        ("citywatch_ingest_in_flight", "Ingest requests being decoded or applied.", in_flight as u64),
        (
            "citywatch_alerts_waiting",
            "Alerts fired by the engine and not yet stored.",
            app.alerts_waiting.load(Ordering::Relaxed),
        ),
        (
            "citywatch_oldest_apply_ms",
            "How long the oldest ingest has waited for the engine, ms.",
            app.applying.oldest_ms(),
        ),
    ];
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render(&gauges)).into_response())
}

/// `/healthz`: 503 while an ingest has waited longer than `stall_after_ms`
/// for the engine to take its events (the dataflow is not advancing while
/// events arrive); a load balancer stops sending, an operator gets paged.
async fn healthz(State(app): State<Shared>) -> Response {
    let waited = app.applying.oldest_ms();
    if waited > app.cfg.stall_after_ms {
        tracing::warn!(waited_ms = waited, "STALLED: an ingest is waiting for the engine (see /metrics)");
        let msg = format!("an ingest has waited {waited} ms for the engine to take its events");
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "stalled", "reason": msg}))).into_response();
    }
    Json(json!({"status": "ok"})).into_response()
}

/// Ingests being applied to the pipeline, by start instant (for stall detection).
#[derive(Default)]
struct Applying {
    next: std::sync::atomic::AtomicU64,
    started: Mutex<std::collections::HashMap<u64, std::time::Instant>>,
}

impl Applying {
    /// Registers an apply; dropping the guard unregisters it.
    fn start(self: &Arc<Self>) -> ApplyGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.started.lock() {
            m.insert(id, std::time::Instant::now());
        }
        ApplyGuard(Arc::clone(self), id)
    }

    fn oldest_ms(&self) -> u64 {
        self.started.lock().ok().and_then(|m| m.values().min().map(|t| t.elapsed().as_millis() as u64)).unwrap_or(0)
    }
}

struct ApplyGuard(Arc<Applying>, u64);

impl Drop for ApplyGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.started.lock() {
            m.remove(&self.1);
        }
    }
}

async fn me(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    let can_reveal = app.cfg.reveal_roles.iter().any(|r| r == c.officer.role.as_str());
    Ok(Json(json!({"officer": c.officer, "can_reveal": can_reveal, "cap_sender": app.cfg.cap_sender,
                   "time_zone": app.cfg.time_zone})))
}

/// The pipeline health page's figures (city scope only): the metrics'
/// counters by table, late rows, the top rejection reasons, new alerts per
/// minute and model over the last hour, the watermark and its lag behind the
/// latest event time, and the alert store's size on disk (database + WAL).
async fn health(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    if c.officer.scope != "city" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the pipeline health page is for city-scope officers (analysts)",
        ));
    }
    let now = now_ms();
    let mut v = app.metrics.health(now);
    let p = app.pipeline.clone();
    let watermark = tokio::task::spawn_blocking(move || p.watermark())
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    let event = app.metrics.event_clock_ms();
    let file = |suffix: &str| {
        let mut path = app.cfg.store_path.clone().into_os_string();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len())
    };
    v["watermark_ms"] = json!(watermark);
    v["watermark_lag_ms"] = json!(watermark.zip(event).map(|(w, e)| e - w as i64));
    v["store_bytes"] = json!(file("") + file("-wal"));
    v["wall_ms"] = json!(now);
    Ok(Json(v))
}

/// The clock the console measures ages with: the latest event time ingested
/// (`event_ms`, null before the first event) and the wall clock. `simulated`
/// when the wall clock does not drive event time (`clock_tick_ms = 0`: a
/// replayed feed such as the demo's, whose event time runs at its own pace).
async fn clock(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authenticate(&app, &headers).await?;
    Ok(Json(json!({"event_ms": app.metrics.event_clock_ms(), "wall_ms": now_ms(),
                   "simulated": app.cfg.clock_tick_ms == 0, "time_zone": app.cfg.time_zone})))
}

/// A 400 answer for bad rows: the first rows' reasons, the rest counted.
fn rows_refused(rows: &RowErrors) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("{} bad row(s); nothing of this request was applied", rows.rows),
               "rejected": rows.listed, "rejected_rows": rows.rows, "rejected_by_code": rows.by_code,
               "listed_rows": rows.listed.iter().map(|e| e.row).collect::<std::collections::BTreeSet<_>>().len()}),
    )
}

/// 503 with `Retry-After`: the engine is behind, try again shortly.
fn busy(msg: String) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, json!({"error": msg, "retry_after_s": 1}))
}

async fn ingest(
    State(app): State<Shared>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<Value>> {
    // The token is checked before a byte of the body is read: an
    // unauthenticated 50 MB upload costs a header parse, not 50 MB.
    let c = authenticate(&app, &headers).await?;
    if c.officer.scope != "city" {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "ingest needs a city-scope token (a feed or an analyst)"));
    }
    let table = match table.as_str() {
        "calls" => Table::Calls,
        "alarms" => Table::Alarms,
        "patrols" => Table::Patrols,
        "subscribers" => Table::Subscribers,
        "officers" => Table::Officers,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ingest tables are calls, alarms and patrols (events), subscribers and officers (reference changes)",
            ));
        }
    };
    // Bounded work in flight: a request that finds every slot taken is told to
    // come back (503 + Retry-After) instead of queueing behind a slow engine.
    let Ok(permit) = app.ingest_slots.clone().try_acquire_owned() else {
        app.metrics.busy();
        return Err(busy(format!(
            "{} ingest requests are already being applied (the engine is behind); retry in 1 s",
            app.cfg.max_concurrent_ingests
        )));
    };
    let limit = app.cfg.max_body_bytes;
    let body =
        match tokio::time::timeout(Duration::from_millis(app.cfg.body_timeout_ms), axum::body::to_bytes(body, limit))
            .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over {limit} bytes (max_body_bytes) or was cut off; split the request"),
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {} ms (body_timeout_ms)", app.cfg.body_timeout_ms),
                ));
            }
        };
    let arrow = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/vnd.apache.arrow"));
    let key = idempotency_key(&headers)?;
    if matches!(table, Table::Subscribers | Table::Officers) {
        return reference_change(app, c, table, body, arrow, permit).await;
    }
    let a = app.clone();
    let outcome = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let _permit = permit;
        let decoded = match a.ingest.decode(table, &body, arrow) {
            Ok(d) => d,
            Err(Refusal::Body(msg)) => {
                a.metrics.rejected(table, 0);
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{msg}; nothing of this request was applied"),
                ));
            }
            Err(Refusal::Rows(rows)) => {
                a.metrics.rejected(table, rows.rows);
                a.metrics.rejected_reasons(table, rows.reasons());
                return Err(rows_refused(&rows));
            }
        };
        let accepted = decoded.events.len();
        // Note ingest instants before the pipeline can fire an alert on them.
        a.metrics.note_ingest_times(decoded.events.iter().map(|e| e.ts_ms() as i64));
        let patrols: Vec<_> =
            decoded.events.iter().filter(|e| matches!(e, citywatch_engine::event::Event::Patrol(_))).copied().collect();
        let applying = a.applying.start();
        let applied = a.pipeline.ingest_keyed(key.as_deref(), decoded.events);
        drop(applying);
        let applied = applied.map_err(|r| match r {
            PipelineRefusal::Rows(rows) => {
                a.metrics.rejected(table, rows.len() as u64);
                a.metrics.rejected_reasons(table, std::iter::once((None, "refused", rows.len() as u64)));
                let errors = rows
                    .into_iter()
                    .map(|(row, reason)| RowError { row: row as u64, column: None, code: "refused".into(), reason })
                    .collect();
                rows_refused(&RowErrors::new(errors, a.cfg.max_listed_errors))
            }
            PipelineRefusal::Unavailable(e) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the pipeline cannot take events now: {e}"))
            }
        })?;
        let late = match applied {
            Applied::New { late } => late,
            Applied::Duplicate => return Ok(json!({"accepted": accepted, "late": 0, "duplicate": true})),
        };
        // Applied: now the side effects outside the dataflow.
        a.metrics.ingested(table, accepted as u64, late);
        a.ingest.track_units(&patrols);
        if !decoded.numbers.is_empty() {
            let mut store = a.store.lock().map_err(|_| Error::Internal("store lock poisoned".into()))?;
            store.keep_numbers(&decoded.numbers)?;
            drop(store);
            a.ingest.numbers_kept(&decoded.numbers);
        }
        Ok(json!({"accepted": accepted, "late": late}))
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    Ok(Json(outcome))
}

/// Longest `Idempotency-Key` accepted, bytes.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The request's `Idempotency-Key` (a retry after a lost answer carries the
/// same key, and is answered without being applied twice).
/// A request of reference rows (`subscribers`: registrations and
/// cancellations; `officers`: roster changes) from a city-scope token (a
/// feed or an analyst): validated as a dataset's table, all or nothing,
/// applied from each row's `valid_from_ms` (never before the latest event
/// time seen: such rows are moved to just after it, and counted in the
/// answer), and audited (`reference_change`, the table and row counts).
async fn reference_change(
    app: Shared,
    c: Caller,
    table: Table,
    body: Bytes,
    arrow: bool,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> ApiResult<Json<Value>> {
    let a = app.clone();
    let applied = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let _permit = permit;
        let change = match a.ingest.decode_reference(table, &body, arrow) {
            Ok(change) => change,
            Err(Refusal::Body(msg)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{msg}; nothing of this request was applied"),
                ));
            }
            Err(Refusal::Rows(rows)) => return Err(rows_refused(&rows)),
        };
        a.pipeline.update_reference(change).map_err(|r| match r {
            PipelineRefusal::Rows(_) => ApiError::new(StatusCode::BAD_REQUEST, "refused"),
            PipelineRefusal::Unavailable(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the pipeline cannot take reference changes now: {e}"),
            ),
        })
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    let reason = format!("{} row(s), {} moved past the latest event time", applied.rows, applied.moved);
    audit(&app, &c, "reference_change", table.name().to_owned(), reason).await?;
    Ok(Json(json!({"accepted": applied.rows, "moved": applied.moved, "from_ms": applied.from_ms})))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    match v.to_str().map(str::trim) {
        Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(k.to_owned())),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )),
    }
}

async fn list_alerts(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(filter): Query<AlertFilter>,
) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    let vis = visibility(&c);
    let (filter_limit, filter_offset) = (filter.limit.unwrap_or(100).clamp(1, 1000), filter.offset.unwrap_or(0));
    let query = format!(
        "status={} model={} kind={} since={} limit={filter_limit} offset={filter_offset}",
        filter.status.as_deref().unwrap_or("*"),
        filter.model.as_deref().unwrap_or("*"),
        filter.kind.as_deref().unwrap_or("*"),
        filter.since.map_or("*".to_owned(), |t| t.to_string()),
    );
    let (last_seq, rows) = with_store(&app, move |s, _| Ok((s.last_seq()?, s.list(&vis, &filter)?))).await?;
    // A list carries every alert's evidence: one audit row per request, with
    // how many alerts it read (not a row per alert).
    audit(&app, &c, "list", query, format!("{} alert(s) read with their evidence", rows.len())).await?;
    let alerts: Vec<Value> = rows.iter().map(|a| present(&app.jurisdiction, a)).collect();
    let limit = filter_limit as usize;
    let next_offset = (alerts.len() == limit).then(|| filter_offset as usize + limit);
    Ok(Json(json!({"alerts": alerts, "count": alerts.len(), "next_offset": next_offset, "last_seq": last_seq})))
}

/// Where an alert is, in words: "around community 'Taidong 3', street
/// 'Taidong', district 'Shinan'" (names from the grids table, ids where it has
/// none); `None` for an alert outside the city's grids.
fn place_words(j: &Jurisdiction, a: &Alert) -> Option<String> {
    let n = j.names();
    let parts: Vec<String> = [
        ("community", &a.community, &n.community),
        ("street", &a.street, &n.street),
        ("district", &a.district, &n.district),
    ]
    .into_iter()
    .filter_map(|(level, id, names)| {
        let id = id.as_deref()?;
        Some(format!("{level} '{}'", names.get(id).map_or(id, String::as_str)))
    })
    .collect();
    (!parts.is_empty()).then(|| format!("around {}", parts.join(", ")))
}

/// An alert as served: its JSON plus `place` (in words, see [`place_words`])
/// and `names` (the grid, community, street and district names, and the
/// assignee's name, where known). Ids stay as they are.
fn present(j: &Jurisdiction, stored: &StoredAlert) -> Value {
    let mut v = stored.to_json();
    let alert = &stored.alert;
    let n = j.names();
    let name = |id: &Option<String>, map: &HashMap<String, String>| id.as_deref().and_then(|i| map.get(i)).cloned();
    v["place"] = json!(place_words(j, alert));
    v["names"] = json!({
        "grid": name(&alert.grid, &n.grid),
        "community": name(&alert.community, &n.community),
        "street": name(&alert.street, &n.street),
        "district": name(&alert.district, &n.district),
        "assignee": alert.assignee.as_deref().and_then(|o| j.officer(o)).map(|o| o.name.clone()),
    });
    v
}

/// The alert if the caller may see it; 404 otherwise (ids do not leak).
async fn visible_alert(app: &Shared, c: &Caller, id: String) -> ApiResult<crate::store::StoredAlert> {
    let key = id.clone();
    let found = with_store(app, move |s, _| s.get(&key)).await?;
    match found {
        Some(a) if c.sees(a.place(), a.alert.assignee.as_deref()) => Ok(a),
        // Audited: an officer probing ids outside their scope leaves a trace
        // (the same answer and the same row whether the alert exists or not).
        _ => {
            audit(app, c, "not_found", id, "no such alert in the caller's scope".into()).await?;
            Err(ApiError::not_found())
        }
    }
}

async fn get_alert(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    let a = visible_alert(&app, &c, id.clone()).await?;
    audit(&app, &c, "view", id, String::new()).await?;
    Ok(Json(present(&app.jurisdiction, &a)))
}

async fn cap(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Response> {
    let c = authenticate(&app, &headers).await?;
    let a = visible_alert(&app, &c, id.clone()).await?;
    audit(&app, &c, "view_cap", id, String::new()).await?;
    let xml = to_cap_xml_in(&a.alert, &app.cfg.cap_sender, place_words(&app.jurisdiction, &a.alert).as_deref());
    Ok(([(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")], xml).into_response())
}

fn transition_response(j: &Jurisdiction, t: Transition) -> ApiResult<Json<Value>> {
    match t {
        Transition::Done(change) => Ok(Json(present(j, &change.alert))),
        Transition::Missing => Err(ApiError::not_found()),
        Transition::Conflict(s) => Err(ApiError::new(StatusCode::CONFLICT, format!("the alert is {}", s.as_str()))),
    }
}

async fn ack(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    visible_alert(&app, &c, id.clone()).await?;
    let who = c.officer.officer_id.clone();
    let (i, w) = (id.clone(), who.clone());
    let t = with_store(&app, move |s, a| {
        let t = s.acknowledge(&i, &w, now_ms())?;
        if let Transition::Done(ch) = &t {
            s.audit(now_ms(), &w, "acknowledge", &i, "")?;
            publish(a, vec![ch.as_ref().clone()]);
        }
        Ok(t)
    })
    .await?;
    transition_response(&app.jurisdiction, t)
}

#[derive(Debug, serde::Deserialize)]
struct ResolveBody {
    note: String,
}

async fn resolve(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    visible_alert(&app, &c, id.clone()).await?;
    let note = serde_json::from_slice::<ResolveBody>(&body)
        .map(|b| b.note.trim().to_owned())
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "resolve needs a JSON body {\"note\": \"what was done\"}")
        })?;
    let who = c.officer.officer_id.clone();
    let t = with_store(&app, move |s, a| {
        let t = s.resolve(&id, &who, &note, now_ms())?;
        if let Transition::Done(ch) = &t {
            s.audit(now_ms(), &who, "resolve", &id, &note)?;
            publish(a, vec![ch.as_ref().clone()]);
        }
        Ok(t)
    })
    .await?;
    transition_response(&app.jurisdiction, t)
}

#[derive(Debug, serde::Deserialize)]
struct RevealBody {
    /// The pseudonym (16 hex digits) to reveal.
    token: String,
    /// The alert that mentions it (must be in the caller's scope).
    alert_id: String,
    /// Why (required; audited).
    reason: String,
}

/// Audits a refused reveal (`reveal_refused`: what was asked, why it was
/// refused) and returns the refusal.
async fn refuse_reveal(app: &Shared, c: &Caller, target: String, err: ApiError) -> ApiError {
    let why = err.1["error"].as_str().unwrap_or("refused").to_owned();
    match audit(app, c, "reveal_refused", target, format!("{}: {why}", err.0.as_u16())).await {
        Ok(()) => err,
        Err(e) => e,
    }
}

async fn reveal(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    // Every refused attempt is audited with what it asked for (at most 200
    // characters of it: the body is the caller's).
    let asked: String = String::from_utf8_lossy(&body).chars().take(200).collect();
    if !app.cfg.reveal_roles.iter().any(|r| r == c.officer.role.as_str()) {
        let e = ApiError::new(StatusCode::FORBIDDEN, "your role may not reveal numbers");
        return Err(refuse_reveal(&app, &c, asked, e).await);
    }
    let b: RevealBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            let e = ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("reveal needs {{\"token\", \"alert_id\", \"reason\"}}: {e}"),
            );
            return Err(refuse_reveal(&app, &c, asked, e).await);
        }
    };
    let reason = b.reason.trim().to_owned();
    let token = b.token.trim().to_lowercase();
    let target = format!("{token} (alert {})", b.alert_id);
    if reason.is_empty() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "a reason is required to reveal a number");
        return Err(refuse_reveal(&app, &c, target, e).await);
    }
    let alert = match visible_alert(&app, &c, b.alert_id.clone()).await {
        Ok(a) => a,
        Err(e) => return Err(refuse_reveal(&app, &c, target, e).await),
    };
    if token.len() != 16 || !(alert.alert.subject.contains(&token) || alert.alert.evidence.contains(&token)) {
        let e = ApiError::new(StatusCode::NOT_FOUND, "the alert does not mention this pseudonym");
        return Err(refuse_reveal(&app, &c, target, e).await);
    }
    let who = c.officer.officer_id.clone();
    let number = with_store(&app, move |s, _| {
        let n = s.reveal(&token)?;
        let action = if n.is_some() { "reveal" } else { "reveal_unknown" };
        s.audit(now_ms(), &who, action, &target, &reason)?;
        Ok(n)
    })
    .await?;
    match number {
        Some(n) => Ok(Json(json!({"token": b.token, "number": n}))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no number was kept for this pseudonym")),
    }
}

/// One open event stream of a credential, counted in `App::streams` while it lives.
struct StreamSlot {
    app: Shared,
    credential: String,
}

impl StreamSlot {
    /// A slot for `credential`, or `None` when it already holds `max_streams_per_token`.
    fn take(app: &Shared, credential: String) -> Option<StreamSlot> {
        let mut open = app.streams.lock().ok()?;
        let n = open.entry(credential.clone()).or_insert(0);
        if *n >= app.cfg.max_streams_per_token.max(1) {
            return None;
        }
        *n += 1;
        Some(StreamSlot { app: app.clone(), credential })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.app.streams.lock()
            && let Some(n) = open.get_mut(&self.credential)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.credential);
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct StreamQuery {
    /// Alternative to the `Last-Event-ID` header (for clients that cannot set it).
    last_event_id: Option<i64>,
}

async fn stream(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl tokio_stream::Stream<Item = std::result::Result<SseEvent, Infallible>>>> {
    let c = authenticate(&app, &headers).await?;
    let credential = bearer(&headers).and_then(|t| claimed_id(&t).map(str::to_owned)).unwrap_or_default();
    let Some(slot) = StreamSlot::take(&app, credential) else {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": format!("this token already holds {} open streams (max_streams_per_token); close one",
                                    app.cfg.max_streams_per_token)}),
        ));
    };
    let header_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    // Subscribe before reading the backlog: nothing committed in between is missed.
    let mut live = app.changes.subscribe();
    let mut cursor = match header_id.or(q.last_event_id) {
        Some(id) => id,
        None => with_store(&app, |s, _| s.last_seq()).await?,
    };
    audit(&app, &c, "stream", format!("from seq {cursor}"), "live stream opened".into()).await?;
    let (tx, rx) = mpsc::channel::<std::result::Result<SseEvent, Infallible>>(STREAM_BUFFER);
    let vis = visibility(&c);
    let mut shutdown = app.shutdown.clone();
    let mut reloads = app.auth.reloads();
    let token = bearer(&headers).unwrap_or_default();
    let app2 = app.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let sent = std::sync::atomic::AtomicU64::new(0);
        let send = |ch: &Change| {
            let body = json!({"seq": ch.seq, "change": ch.change, "alert": present(&app2.jurisdiction, &ch.alert)});
            let ev = SseEvent::default().id(ch.seq.to_string()).event("alert").data(body.to_string());
            sent.fetch_add(1, Ordering::Relaxed);
            tx.send(Ok(ev))
        };
        // The stream's evidence reads are audited once, when it ends, with
        // how many alert changes it carried (not a row per change).
        async {
            'backlog: loop {
                // Catch up from the store (first connection or after lagging the broadcast).
                loop {
                    let v = vis.clone();
                    let page = match with_store(&app2, move |s, _| s.changes_since(&v, cursor, BACKLOG_PAGE)).await {
                        Ok(p) => p,
                        Err(_) => return,
                    };
                    for ch in &page {
                        if send(ch).await.is_err() {
                            return;
                        }
                        cursor = ch.seq;
                    }
                    if page.len() < BACKLOG_PAGE as usize {
                        break;
                    }
                }
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tx.closed() => return,
                        // A revoked token's stream ends at the next reload.
                        _ = reloads.changed() => if app2.auth.cached(&token).is_none() {
                            return;
                        },
                        r = live.recv() => match r {
                            Ok(ch) => {
                                if ch.seq <= cursor {
                                    continue;
                                }
                                if c.sees(ch.alert.place(), ch.alert.alert.assignee.as_deref()) && send(&ch).await.is_err() {
                                    return;
                                }
                                cursor = ch.seq;
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => continue 'backlog,
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            }
        }
        .await;
        let reason = format!("live stream closed after {} alert change(s) sent", sent.load(Ordering::Relaxed));
        let _ = audit(&app2, &c, "stream_closed", format!("up to seq {cursor}"), reason).await;
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// GeoJSON polygon ring of an H3 cell (`[lon, lat]`, closed).
fn cell_polygon(cell: h3o::CellIndex) -> Value {
    let mut ring: Vec<Value> = cell.boundary().iter().map(|ll| json!([ll.lng(), ll.lat()])).collect();
    if let Some(first) = ring.first().cloned() {
        ring.push(first);
    }
    json!({"type": "Polygon", "coordinates": [ring]})
}

/// Whether the caller's scope covers a cell (routed through the jurisdiction).
fn covers_cell(app: &App, c: &Caller, cell: h3o::CellIndex) -> bool {
    if c.officer.scope == "city" {
        return true;
    }
    let r = app.jurisdiction.route(None, Some(u64::from(cell)), citywatch_engine::alert::RouteLevel::Community);
    c.sees([r.grid.as_deref(), r.community.as_deref(), r.street.as_deref(), r.district.as_deref()], None)
}

async fn risk(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    let a = app.clone();
    let surface = tokio::task::spawn_blocking(move || a.pipeline.risk_surface())
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    let features: Vec<Value> = surface
        .iter()
        .filter_map(|(cell, score)| {
            let idx: h3o::CellIndex = cell.parse().ok()?;
            covers_cell(&app, &c, idx).then(|| {
                json!({"type": "Feature", "geometry": cell_polygon(idx), "properties": {"cell": cell, "score": score}})
            })
        })
        .collect();
    Ok(Json(json!({"type": "FeatureCollection", "features": features})))
}

/// The map's cell index (built once, off the async runtime).
async fn geo_index(app: &Shared) -> ApiResult<Arc<GeoIndex>> {
    if let Some(g) = app.geo.get() {
        return Ok(g.clone());
    }
    let a = app.clone();
    tokio::task::spawn_blocking(move || a.geo.get_or_init(|| Arc::new(GeoIndex::new(&a.jurisdiction))).clone())
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))
}

/// The name of an area at a map level (0 district .. 3 grid), if the grids table has one.
fn area_name(j: &Jurisdiction, level: usize, id: &str) -> Option<String> {
    let n = j.names();
    [&n.district, &n.street, &n.community, &n.grid].get(level).and_then(|m| m.get(id)).cloned()
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The map overview in the caller's scope: district, street and community
/// boundaries and label points (see [`crate::geo`]); cached per scope.
async fn grid(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let c = authenticate(&app, &headers).await?;
    let scope = c.officer.scope.clone();
    if let Some(b) = app.overviews.lock().ok().and_then(|m| m.get(&scope).cloned()) {
        return Ok(json_bytes(b));
    }
    let index = geo_index(&app).await?;
    let a = app.clone();
    let body = tokio::task::spawn_blocking(move || {
        let v = index.overview(&|ids| c.sees(ids, None), &|level, id| area_name(&a.jurisdiction, level, id));
        let body = Bytes::from(v.to_string());
        if let Ok(mut m) = a.overviews.lock() {
            m.insert(scope, body.clone());
        }
        body
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    Ok(json_bytes(body))
}

#[derive(Debug, serde::Deserialize)]
struct CellsQuery {
    /// `x0,y0,x1,y1` in the overview's units from its origin.
    bbox: String,
}

/// The cells of a view in the caller's scope (see [`crate::geo`]).
async fn grid_cells(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<CellsQuery>) -> ApiResult<Response> {
    let c = authenticate(&app, &headers).await?;
    let nums: Vec<i32> = q.bbox.split(',').filter_map(|v| v.trim().parse().ok()).collect();
    let [x0, y0, x1, y1] = nums[..] else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bbox must be four integers x0,y0,x1,y1 (units of the overview from its origin); got '{}'", q.bbox),
        ));
    };
    let index = geo_index(&app).await?;
    let a = app.clone();
    let body = tokio::task::spawn_blocking(move || {
        let v =
            index.view([x0, y0, x1, y1], &|ids| c.sees(ids, None), &|level, id| area_name(&a.jurisdiction, level, id));
        Bytes::from(v.to_string())
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    Ok(json_bytes(body))
}

async fn units(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let c = authenticate(&app, &headers).await?;
    let units: Vec<Value> = app
        .ingest
        .units()
        .into_iter()
        .filter(|u| {
            c.officer.scope == "city" || {
                let p = citywatch_engine::geo::Point::from_degrees(u.lat, u.lon);
                let r = app.jurisdiction.route(p, None, citywatch_engine::alert::RouteLevel::Community);
                c.sees([r.grid.as_deref(), r.community.as_deref(), r.street.as_deref(), r.district.as_deref()], None)
            }
        })
        .map(|u| serde_json::to_value(u).unwrap_or_default())
        .collect();
    Ok(Json(json!({"units": units})))
}
