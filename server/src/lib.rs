//! citywatch live service: ingest, alert store, push, access control, audit and
//! the analysts' console (docs/alert-contract.md, docs/architecture.md "Delivery").
//!
//! [`serve`] runs one HTTP server (axum) beside the running dataflow:
//!
//! ```text
//!  HTTP ingest ──decode (engine Decoder)──> Pipeline::ingest ──> dataflow
//!                                                                  │ routed alerts
//!  SSE streams <── broadcast <── store thread (SQLite: dedup, lifecycle, log) <──┘
//!        ▲                           ▲
//!        └── backlog from `changes` ─┘   escalation sweep, acks, resolves, audit
//! ```
//!
//! - The dataflow is behind the [`Pipeline`] trait; its routed alerts arrive on
//!   a bounded `crossbeam_channel::Receiver<Alert>` that a dedicated store
//!   thread drains, so SQLite never blocks the async runtime (HTTP handlers
//!   reach the store through `spawn_blocking`).
//! - Every new or changed alert is a row of the store's change log, whose id
//!   is the SSE event id: streams resume from `Last-Event-ID` with nothing lost
//!   or repeated (see [`store`]).
//! - Access control: bearer tokens ([`auth`]), officer scopes from the
//!   officers table; out-of-scope alerts are 404, never 403.
//! - Audit: a hash chain in the same store ([`audit`]).
//! - Shutdown: when the `shutdown` future resolves, the listener stops, open
//!   streams end, the store thread drains what the engine already sent, and
//!   [`serve`] returns.
#![deny(missing_docs)]

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod geo;
mod http;
pub mod ingest;
mod listen;
pub mod metrics;
pub mod pipeline;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use citywatch_engine::alert::Alert;
use citywatch_engine::jurisdiction::Jurisdiction;

pub use audit::{AuditReport, audit_verify};
pub use auth::{DemoTokens, demo_credentials};
pub use config::ServerConfig;
pub use error::{Error, Result};
pub use pipeline::{Applied, LivePipeline, Pipeline, PipelineRefusal};

/// Runs the live service until `shutdown` resolves.
///
/// - `config`: see [`ServerConfig`] (the credentials file must exist: create one
///   with [`demo_credentials`] or [`auth::CredentialsFile::issue`]);
/// - `pipeline`: the running dataflow;
/// - `alerts`: the dataflow's routed alerts (a bounded channel: when the store
///   falls behind, the engine waits rather than memory growing);
/// - `jurisdiction`: grids and officers (the same the engine routes with).
pub async fn serve(
    config: ServerConfig,
    pipeline: Arc<dyn Pipeline>,
    alerts: crossbeam_channel::Receiver<Alert>,
    jurisdiction: Arc<Jurisdiction>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .map_err(|source| Error::Bind { addr: config.addr.clone(), source })?;
    serve_on(listener, config, pipeline, alerts, jurisdiction, shutdown).await
}

/// [`serve`] on an already bound listener (tests bind port 0 and read the address).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    pipeline: Arc<dyn Pipeline>,
    alerts: crossbeam_channel::Receiver<Alert>,
    jurisdiction: Arc<Jurisdiction>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    http::run(listener, config, pipeline, alerts, jurisdiction, shutdown).await
}
