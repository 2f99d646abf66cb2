//! The accept loop: HTTP/1.1 connections with bounded count and time.
//!
//! `axum::serve` has no connection limit and no header timeout, so a few
//! hundred idle or slow connections stay open for ever. This loop serves the
//! same router through hyper directly, with:
//!
//! - at most `max_connections` open connections (past that, new ones wait in
//!   the kernel's accept queue: the loop stops accepting until one closes);
//! - `header_timeout_ms` to receive a request's headers, which is also how
//!   long a kept-alive connection may sit idle before its next request
//!   (hyper starts the timer when it waits for a request head);
//! - on shutdown, every connection finishes its request in flight and closes
//!   (`graceful_shutdown`), and the loop returns when all are closed.
//!
//! Body timeouts are per route (see `http.rs`): ingest reads its own body
//! under `body_timeout_ms`; event streams are long-lived by design.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use crate::config::ServerConfig;

/// Serves `router` on `listener` until `stop` turns true and every connection has closed.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    cfg: &ServerConfig,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = cfg.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(cfg.header_timeout_ms.max(1)));
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (tcp, remote) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                // Out of file descriptors and the like: wait rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            router.clone().call(req)
        });
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    // Every connection holds a permit: all of them back means all closed.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}
