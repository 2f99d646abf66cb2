//! The live service fed from a message log (`log_brokers` in the config):
//! one thread reads every partition of the stream topics
//! ([`citywatch_kafka::LogFeed`]) and applies each batch as an ingest request
//! would be, with the feed's position as the idempotency key, so the
//! journal commits the offsets with the state they produced and a restart
//! resumes where the journal ends: nothing lost, nothing applied twice.
//!
//! A log cannot be answered `400`: a bad record is counted and logged
//! (`citywatch_rejected_rows_total`, a warning with its partition, offset
//! and reason) and the rest of its batch is applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use citywatch_engine::alert::{CapMessage, to_cap_message};
use citywatch_kafka::{AlertFormat, ChangeSink, FeedBatch, LogConfig, LogFeed, StartAt, ValueFormat};

use super::Shared;
use crate::error::{Error, Result};
use crate::ingest::RowError;
use crate::pipeline::{Applied, PipelineRefusal};

/// Starts the feed thread when the config names brokers (after the journal
/// was restored: the feed resumes at its newest position).
pub(super) fn spawn(app: &Shared, stopping: &Arc<AtomicBool>) -> Result<Option<std::thread::JoinHandle<()>>> {
    let Some((mut cfg, start)) = log_config(app)? else { return Ok(None) };
    // An idle feed waits this long on a fetch: bounds how late a record that
    // arrives on another partition meanwhile is read.
    cfg.max_wait_ms = 10;
    let position = app.pipeline.log_position();
    let (app, stopping) = (app.clone(), stopping.clone());
    // The feed runs its own runtime: it is opened on its thread, not here
    // (inside the server's), and the outcome is waited for here.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("citywatch-log".into())
        .spawn(move || match LogFeed::open(&cfg, position.as_deref(), start, app.cfg.log_batch) {
            Ok(feed) => {
                tracing::info!(
                    brokers = cfg.brokers.join(","),
                    partitions = feed.partitions(),
                    resumed = position.is_some(),
                    "reading the message log"
                );
                let _ = opened_tx.send(Ok(()));
                run(&app, feed, cfg.format, &stopping);
            }
            Err(e) => {
                let _ = opened_tx.send(Err(e.to_string()));
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the log thread: {e}")))?;
    match opened_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::Internal(format!("cannot read the log: {e}"))),
        Err(_) => return Err(Error::Internal("the log thread ended while opening the log".into())),
    }
    Ok(Some(handle))
}

/// The config's log settings (checked when the file was loaded).
fn log_config(app: &Shared) -> Result<Option<(LogConfig, StartAt)>> {
    app.cfg.log_config().map_err(|e| Error::Internal(format!("the config's log settings: {e}")))
}

fn run(app: &Shared, mut feed: LogFeed, format: ValueFormat, stopping: &AtomicBool) {
    while !stopping.load(Ordering::SeqCst) {
        match feed.next_batch() {
            Ok(Some(batch)) => apply(app, batch, format, stopping),
            // Nothing to read: the fetch already waited; the clock tick
            // moves event time meanwhile.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the log failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Applies one batch until the engine takes it (or the service stops: the
/// batch is then not committed, and a restart reads it again).
fn apply(app: &Shared, batch: FeedBatch, format: ValueFormat, stopping: &AtomicBool) {
    let table = batch.table;
    let values: Vec<&[u8]> = batch.values.iter().map(Vec::as_slice).collect();
    let decoded = match format {
        ValueFormat::Json => app.ingest.decode_records(table, &values),
        ValueFormat::Arrow => app.ingest.decode_arrow_records(table, &values),
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(source = batch.source, error = ?e, "a batch of the log could not be decoded at all");
            return;
        }
    };
    report(app, &batch, table, decoded.rejected, &decoded.errors);
    let (mut events, mut rows) = (decoded.events, decoded.rows);
    app.metrics.note_ingest_times(events.iter().map(|e| e.ts_ms() as i64));
    loop {
        let applying = app.applying.start();
        let applied = app.pipeline.ingest_log(&batch.key, events.clone());
        drop(applying);
        match applied {
            Ok(Applied::New { late }) => {
                app.metrics.ingested(table, events.len() as u64, late);
                app.ingest.track_units(&events);
                break;
            }
            Ok(Applied::Duplicate) => return,
            Err(PipelineRefusal::Rows(refused)) => {
                // Rows the dataflow refuses (an end with no open start): out,
                // reported, and the rest applied with the same position.
                let gone: std::collections::HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
                let errors: Vec<RowError> = refused
                    .into_iter()
                    .map(|(i, reason)| RowError { row: rows[i] as u64, column: None, code: "refused".into(), reason })
                    .collect();
                report(app, &batch, table, gone.len() as u64, &errors);
                let keep = |i: &usize| !gone.contains(i);
                events = events.iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, e)| *e).collect();
                rows = rows.iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, r)| *r).collect();
            }
            Err(PipelineRefusal::Unavailable(e)) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                tracing::warn!(error = %e, "the pipeline cannot take the log's events now; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    if !decoded.numbers.is_empty() {
        let kept = app
            .store
            .lock()
            .map_err(|_| "store lock poisoned".to_owned())
            .and_then(|mut s| s.keep_numbers(&decoded.numbers).map_err(|e| e.to_string()));
        match kept {
            Ok(()) => app.ingest.numbers_kept(&decoded.numbers),
            Err(e) => tracing::error!(error = e, "numbers of the log could not be kept for reveal"),
        }
    }
}

/// Counts and logs bad records (the first three of a batch in words).
fn report(app: &Shared, batch: &FeedBatch, table: citywatch_engine::contract::Table, rows: u64, errors: &[RowError]) {
    if errors.is_empty() {
        return;
    }
    app.metrics.rejected(table, rows);
    app.metrics.rejected_reasons(table, errors.iter().map(|e| (e.column.as_deref(), e.code.as_str(), 1)));
    for e in errors.iter().take(3) {
        let offset = batch.offsets.get(e.row as usize).copied().unwrap_or_default();
        tracing::warn!(
            source = batch.source,
            offset,
            code = e.code,
            reason = e.reason,
            "a record of the log was rejected"
        );
    }
}

/// Starts the thread that copies the store's change log into the log's
/// `alerts` topic (`log_alerts`), resuming after the newest change the topic
/// holds ([`ChangeSink`]): the store is the outbox, so a broker that is down
/// delays the topic, never the officers' alerts, and nothing is sent twice.
pub(super) fn spawn_alert_sink(
    app: &Shared,
    stopping: &Arc<AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    let (Some((cfg, _)), true) = (log_config(app)?, app.cfg.log_alerts) else { return Ok(None) };
    let (app, stopping) = (app.clone(), stopping.clone());
    let handle = std::thread::Builder::new()
        .name("citywatch-alert-sink".into())
        .spawn(move || copy_changes(&app, &cfg, &stopping))
        .map_err(|e| Error::Internal(format!("cannot start the alert sink thread: {e}")))?;
    Ok(Some(handle))
}

/// Changes read from the store per send.
const SINK_BATCH: u32 = 500;

fn copy_changes(app: &Shared, cfg: &LogConfig, stopping: &AtomicBool) {
    let everything = crate::store::Visibility { scope: "city".into(), officer_id: String::new() };
    let mut sink: Option<ChangeSink> = None;
    loop {
        let stop = stopping.load(Ordering::SeqCst);
        let Some(s) = sink.as_mut() else {
            match ChangeSink::open(cfg) {
                Ok(s) => {
                    tracing::info!(
                        topic = cfg.topic("alerts"),
                        after_seq = s.last_seq,
                        "writing alert changes to the log"
                    );
                    sink = Some(s);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the alert topic cannot be opened; retrying in 1 s");
                    if stop {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            continue;
        };
        let changes = match app.store.lock() {
            Ok(store) => store.changes_since(&everything, s.last_seq, SINK_BATCH),
            Err(_) => return,
        };
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "the change log cannot be read for the alert topic");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if changes.is_empty() {
            // Drained: done when stopping, else wait for more.
            if stop {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let records = changes.iter().map(|c| (c.alert.alert.alert_id.clone(), c.seq, render(app, cfg, c))).collect();
        if let Err(e) = s.send(records) {
            tracing::warn!(error = %e, "alert changes could not be written to the log; retrying in 1 s");
            sink = None;
            if stop {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// A change as the alerts topic holds it: the change log's JSON, or a CAP
/// message (the alert for `new`; an Update that references it otherwise).
fn render(app: &Shared, cfg: &LogConfig, c: &crate::store::Change) -> Vec<u8> {
    match cfg.alert_format {
        AlertFormat::Json => c.to_json().to_string().into_bytes(),
        AlertFormat::Cap => {
            let stored = &c.alert;
            let msg = match c.change.as_str() {
                "new" => CapMessage::Alert,
                change => {
                    CapMessage::Update { seq: c.seq, note: change_note(stored, change), sent_ms: stored.updated_ms }
                }
            };
            let area = super::place_words(&app.jurisdiction, &stored.alert);
            to_cap_message(&stored.alert, &cfg.cap_sender, area.as_deref(), &msg).into_bytes()
        }
    }
}

/// What a change did, in words, for a CAP Update's `note`.
fn change_note(stored: &crate::store::StoredAlert, change: &str) -> String {
    let who = |w: &Option<String>| w.as_deref().map(|w| format!(" by {w}")).unwrap_or_default();
    match change {
        "acknowledged" => format!("acknowledged{}", who(&stored.acked_by)),
        "resolved" => {
            let note = stored.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            format!("resolved{}{note}", who(&stored.resolved_by))
        }
        "escalated" => {
            format!("escalated to {} ({})", stored.level, stored.alert.assignee.as_deref().unwrap_or("unassigned"))
        }
        "updated" => format!("updated by a repeat of the alert ({} so far)", stored.updates),
        other => other.to_owned(),
    }
}
