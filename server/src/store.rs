//! The alert store: one SQLite file (WAL) holding
//! - `alerts`: each alert with its lifecycle (`new` -> `acknowledged` ->
//!   `resolved`, who and when, the resolution note), its current routing level
//!   and the escalations it went through;
//! - `changes`: an append-only log of every new or changed alert, a snapshot
//!   per row. Its `seq` (SQLite rowid, strictly increasing) is the SSE event
//!   id, so a stream that reconnects with `Last-Event-ID: n` is served rows
//!   `seq > n` from here: nothing missed, nothing twice, across restarts too;
//! - `audit`: the hash chain (see [`crate::audit`]);
//! - `numbers`: real phone numbers kept at ingest for reveal, sealed with
//!   ChaCha20-Poly1305 under the vault key, keyed by their pseudonym token.
//!
//! The store is synchronous: callers hold it behind a mutex on a dedicated
//! thread or in `spawn_blocking`, never on the async runtime. Writers are
//! serialised by that mutex, which is also what keeps `changes.seq` in the
//! order changes are broadcast.
//!
//! Deduplication works in event time: an incoming alert with the same model,
//! kind and subject as an open (not resolved) alert whose `event_ts_ms` is
//! within the cooldown updates that alert (severity, score, summary,
//! evidence, latest event time, an update count) instead of adding a row.
//! Escalation works in wall time: an alert still `new` `escalation_timeout_ms`
//! after it was stored (or last escalated) moves one level up
//! (community -> station -> district), is re-routed through the jurisdiction
//! to the officer at that level, and the change is pushed to them.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use citywatch_engine::alert::{Alert, RouteLevel, to_json_value};
use citywatch_engine::contract::Role;
use citywatch_engine::geo::Point;
use citywatch_engine::jurisdiction::Jurisdiction;
use rusqlite::{Connection, OptionalExtension, params};

use crate::audit;
use crate::error::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, model TEXT NOT NULL, model_version TEXT NOT NULL, kind TEXT NOT NULL,
    severity TEXT NOT NULL, score REAL NOT NULL, event_ts_ms INTEGER NOT NULL, subject TEXT NOT NULL,
    lat REAL, lon REAL, cell TEXT, grid TEXT, community TEXT, street TEXT, district TEXT, assignee TEXT,
    summary TEXT NOT NULL, evidence TEXT NOT NULL, action TEXT NOT NULL,
    status TEXT NOT NULL, level TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    level_since_ms INTEGER NOT NULL, updates INTEGER NOT NULL DEFAULT 0,
    acked_by TEXT, acked_ms INTEGER, resolved_by TEXT, resolved_ms INTEGER, note TEXT,
    escalations TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts(model, kind, subject, status);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts(status, level_since_ms);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, change TEXT NOT NULL, at_ms INTEGER NOT NULL,
    grid TEXT, community TEXT, street TEXT, district TEXT, assignee TEXT, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, reason TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS numbers (token TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS applied (alert_id TEXT PRIMARY KEY) WITHOUT ROWID;
";

const COLS: &str = "alert_id, model, model_version, kind, severity, score, event_ts_ms, subject, lat, lon, cell, \
    grid, community, street, district, assignee, summary, evidence, action, status, level, created_ms, updated_ms, \
    level_since_ms, updates, acked_by, acked_ms, resolved_by, resolved_ms, note, escalations";

/// The audit actor of alerts the engine fired (new, and duplicates folded in).
pub const ENGINE: &str = "engine";
/// The audit actor of escalations (the store's sweep).
pub const ESCALATION: &str = "escalation";

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Pushed, nobody has taken it yet (escalates after the timeout).
    New,
    /// An officer has taken it.
    Acknowledged,
    /// Done, with a note.
    Resolved,
}

impl Status {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Status> {
        [Status::New, Status::Acknowledged, Status::Resolved].into_iter().find(|x| x.as_str() == s)
    }
}

fn level_str(l: RouteLevel) -> &'static str {
    match l {
        RouteLevel::Community => "community",
        RouteLevel::Station => "station",
        RouteLevel::District => "district",
        RouteLevel::City => "city",
    }
}

fn level_parse(s: &str) -> RouteLevel {
    match s {
        "station" => RouteLevel::Station,
        "district" => RouteLevel::District,
        "city" => RouteLevel::City,
        _ => RouteLevel::Community,
    }
}

/// An alert as stored: the engine's row plus its lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// The alert row (assignee and place as currently routed).
    pub alert: Alert,
    /// Lifecycle status.
    pub status: Status,
    /// Current routing level (`community`, `station`, `district`, `city`).
    pub level: String,
    /// When the store first saw it (wall ms).
    pub created_ms: i64,
    /// Last change (wall ms).
    pub updated_ms: i64,
    /// When it reached its current level (wall ms): the escalation clock.
    pub level_since_ms: i64,
    /// How many duplicates updated it.
    pub updates: i64,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When.
    pub acked_ms: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_ms: Option<i64>,
    /// Resolution note.
    pub note: Option<String>,
    /// JSON array of `{level, assignee, at_ms}`: escalations so far.
    pub escalations: String,
}

impl StoredAlert {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAlert> {
        let status: String = r.get(19)?;
        Ok(StoredAlert {
            alert: Alert {
                alert_id: r.get(0)?,
                model: r.get(1)?,
                model_version: r.get(2)?,
                kind: r.get(3)?,
                severity: r.get(4)?,
                score: r.get(5)?,
                event_ts_ms: r.get(6)?,
                subject: r.get(7)?,
                lat: r.get(8)?,
                lon: r.get(9)?,
                cell: r.get(10)?,
                grid: r.get(11)?,
                community: r.get(12)?,
                street: r.get(13)?,
                district: r.get(14)?,
                assignee: r.get(15)?,
                summary: r.get(16)?,
                evidence: r.get(17)?,
                action: r.get(18)?,
            },
            status: Status::parse(&status).unwrap_or(Status::New),
            level: r.get(20)?,
            created_ms: r.get(21)?,
            updated_ms: r.get(22)?,
            level_since_ms: r.get(23)?,
            updates: r.get(24)?,
            acked_by: r.get(25)?,
            acked_ms: r.get(26)?,
            resolved_by: r.get(27)?,
            resolved_ms: r.get(28)?,
            note: r.get(29)?,
            escalations: r.get(30)?,
        })
    }

    /// The alert as served: the alert's JSON (evidence parsed) plus its lifecycle.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = to_json_value(&self.alert);
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), self.status.as_str().into());
            o.insert("level".into(), self.level.clone().into());
            o.insert("created_ms".into(), self.created_ms.into());
            o.insert("updated_ms".into(), self.updated_ms.into());
            o.insert("updates".into(), self.updates.into());
            o.insert("acked_by".into(), self.acked_by.clone().into());
            o.insert("acked_ms".into(), self.acked_ms.into());
            o.insert("resolved_by".into(), self.resolved_by.clone().into());
            o.insert("resolved_ms".into(), self.resolved_ms.into());
            o.insert("note".into(), self.note.clone().into());
            o.insert(
                "escalations".into(),
                serde_json::from_str(&self.escalations).unwrap_or(serde_json::Value::Array(vec![])),
            );
        }
        v
    }

    /// `[grid, community, street, district]`, for scope checks.
    pub fn place(&self) -> [Option<&str>; 4] {
        let a = &self.alert;
        [a.grid.as_deref(), a.community.as_deref(), a.street.as_deref(), a.district.as_deref()]
    }
}

/// One row of the change log: what the stream pushes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Stream event id (strictly increasing).
    pub seq: i64,
    /// `new`, `updated`, `acknowledged`, `resolved` or `escalated`.
    pub change: String,
    /// The alert after the change.
    pub alert: StoredAlert,
}

impl Change {
    /// The SSE `data:` payload.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"seq": self.seq, "change": self.change, "alert": self.alert.to_json()})
    }
}

/// Whose alerts a query may return: everything (`city`), or alerts placed in
/// `scope` or assigned to `officer_id`.
#[derive(Debug, Clone)]
pub struct Visibility {
    /// The officer's scope (`city` sees all).
    pub scope: String,
    /// The officer's id (an assignee always sees their alerts).
    pub officer_id: String,
}

impl Visibility {
    fn sql(&self, first_param: usize) -> (String, Vec<String>) {
        if self.scope == "city" {
            return ("1".into(), vec![]);
        }
        let p = first_param;
        (
            format!("(grid = ?{p} OR community = ?{p} OR street = ?{p} OR district = ?{p} OR assignee = ?{})", p + 1),
            vec![self.scope.clone(), self.officer_id.clone()],
        )
    }
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AlertFilter {
    /// `new`, `acknowledged` or `resolved`.
    pub status: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Alert kind.
    pub kind: Option<String>,
    /// Only alerts with `event_ts_ms >= since`.
    pub since: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Rows to skip (paging).
    pub offset: Option<u32>,
}

/// What an ack or resolve did.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Applied: the change to push.
    Done(Box<Change>),
    /// No such alert.
    Missing,
    /// Not allowed from the current status (e.g. resolving twice).
    Conflict(Status),
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    /// Seals kept numbers; never printed.
    vault: ChaCha20Poly1305,
    /// Keys the audit chain; never stored in the database.
    audit_key: audit::AuditKey,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("conn", &self.conn).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, WAL mode.
    pub fn open(path: &Path, vault_key: [u8; 32], audit_key: audit::AuditKey) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // No checkpoints on commit: a checkpoint copies pages and fsyncs, tens of
        // ms that would land on whichever alert commit crosses the threshold.
        // The server checkpoints from a side thread instead ([`checkpoint`]).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL that grew in a burst is cut back to this when it restarts
        // (else it keeps its largest size on disk for good).
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let vault = ChaCha20Poly1305::new(&vault_key.into());
        Ok(Store { conn, vault, audit_key })
    }

    /// Checks the audit chain (see [`crate::audit::audit_verify`]).
    pub fn verify_audit(&self) -> Result<audit::AuditReport> {
        audit::verify_conn(&self.conn, &self.audit_key)
    }

    /// One alert by id.
    pub fn get(&self, alert_id: &str) -> Result<Option<StoredAlert>> {
        let sql = format!("SELECT {COLS} FROM alerts WHERE alert_id = ?1");
        Ok(self.conn.query_row(&sql, [alert_id], StoredAlert::from_row).optional()?)
    }

    /// Alerts visible to `vis` matching `f`, most recently updated first.
    pub fn list(&self, vis: &Visibility, f: &AlertFilter) -> Result<Vec<StoredAlert>> {
        use rusqlite::types::Value as V;
        let (scope_sql, scope_args) = vis.sql(1);
        let mut args: Vec<V> = scope_args.into_iter().map(V::from).collect();
        let mut sql = format!("SELECT {COLS} FROM alerts WHERE {scope_sql}");
        let mut push = |clause: &str, v: V, args: &mut Vec<V>| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(s) = &f.status {
            push("status =", V::from(s.clone()), &mut args);
        }
        if let Some(m) = &f.model {
            push("model =", V::from(m.clone()), &mut args);
        }
        if let Some(k) = &f.kind {
            push("kind =", V::from(k.clone()), &mut args);
        }
        if let Some(s) = f.since {
            push("event_ts_ms >=", V::from(s), &mut args);
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY updated_ms DESC, alert_id LIMIT {limit} OFFSET {}", f.offset.unwrap_or(0)));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), StoredAlert::from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Changes after `after_seq` visible to `vis`, oldest first, at most `limit`.
    pub fn changes_since(&self, vis: &Visibility, after_seq: i64, limit: u32) -> Result<Vec<Change>> {
        let (scope_sql, args) = vis.sql(2);
        let sql =
            format!("SELECT seq, change, body FROM changes WHERE seq > ?1 AND {scope_sql} ORDER BY seq LIMIT {limit}");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut all: Vec<rusqlite::types::Value> = vec![after_seq.into()];
        all.extend(args.into_iter().map(rusqlite::types::Value::from));
        let rows = stmt.query_map(rusqlite::params_from_iter(all.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, change, body) = row?;
            let alert = snapshot_from_json(&body).ok_or_else(|| Error::Internal(format!("change {seq} unreadable")))?;
            out.push(Change { seq, change, alert });
        }
        Ok(out)
    }

    /// The latest change id (0 when none).
    pub fn last_seq(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| r.get(0))?)
    }

    /// Logs a change of an alert (inside the caller's transaction) and
    /// chains it: an audit row `alert_<change>` by `actor` whose reason names
    /// the change's seq and the SHA-256 of its snapshot, so an edited,
    /// inserted or deleted `changes` row, or an `alerts` row that no longer
    /// equals its latest snapshot, fails [`crate::audit::audit_verify`].
    fn log_change(&self, change: &str, actor: &str, a: &StoredAlert, now_ms: i64) -> Result<Change> {
        let body = snapshot_to_json(a);
        let x = &a.alert;
        self.conn.execute(
            "INSERT INTO changes (alert_id, change, at_ms, grid, community, street, district, assignee, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![x.alert_id, change, now_ms, x.grid, x.community, x.street, x.district, x.assignee, body],
        )?;
        let seq = self.conn.last_insert_rowid();
        audit::append(
            &self.conn,
            &self.audit_key,
            now_ms,
            actor,
            &format!("{}{change}", audit::ALERT_ACTION),
            &x.alert_id,
            &audit::change_reason(seq, &body),
        )?;
        Ok(Change { seq, change: change.into(), alert: a.clone() })
    }

    fn must_get(&self, alert_id: &str) -> Result<StoredAlert> {
        self.get(alert_id)?.ok_or_else(|| Error::Internal(format!("alert {alert_id} vanished inside a transaction")))
    }

    /// Stores alerts from the engine in one transaction (dedup applied) and
    /// returns the changes to push, in order.
    pub fn apply_alerts(
        &mut self,
        alerts: &[Alert],
        now_ms: i64,
        cooldown_ms: u64,
        jurisdiction: &Jurisdiction,
    ) -> Result<Vec<Change>> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = (|| {
            let mut out = Vec::with_capacity(alerts.len());
            for a in alerts {
                if let Some(c) = self.apply_one(a, now_ms, cooldown_ms, jurisdiction)? {
                    out.push(c);
                }
            }
            Ok(out)
        })();
        self.finish(r)
    }

    fn finish<T>(&self, r: Result<T>) -> Result<T> {
        match r {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn apply_one(&self, a: &Alert, now_ms: i64, cooldown_ms: u64, j: &Jurisdiction) -> Result<Option<Change>> {
        // Each alert id is applied once. Ids are deterministic (model, kind,
        // subject, event time), and a restarted engine fires again the alerts
        // of the journal it restores: those already applied change nothing,
        // whether they were stored or folded into another alert. (A replay
        // keeps the first of equal ids too.) `alerts` is checked as well for
        // stores written before the `applied` table existed.
        let fresh = self.conn.execute("INSERT OR IGNORE INTO applied (alert_id) VALUES (?1)", [&a.alert_id])? == 1;
        if !fresh || self.get(&a.alert_id)?.is_some() {
            return Ok(None);
        }
        // A duplicate inside the cooldown: update the open alert.
        let open: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT alert_id, event_ts_ms FROM alerts WHERE model = ?1 AND kind = ?2 AND subject = ?3 \
                 AND status != 'resolved' ORDER BY event_ts_ms DESC LIMIT 1",
                params![a.model, a.kind, a.subject],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .filter(|(_, ts)| a.event_ts_ms.abs_diff(*ts) <= cooldown_ms);
        if let Some((id, _)) = open {
            self.conn.execute(
                "UPDATE alerts SET severity = ?2, score = ?3, event_ts_ms = MAX(event_ts_ms, ?4), summary = ?5, \
                 evidence = ?6, action = ?7, updated_ms = ?8, updates = updates + 1 WHERE alert_id = ?1",
                params![id, a.severity, a.score, a.event_ts_ms, a.summary, a.evidence, a.action, now_ms],
            )?;
            let s = self.must_get(&id)?;
            return self.log_change("updated", ENGINE, &s, now_ms).map(Some);
        }
        let level = match a.assignee.as_deref().and_then(|id| j.officer(id)) {
            Some(o) => match o.role {
                Role::Community => RouteLevel::Community,
                Role::Station => RouteLevel::Station,
                Role::District => RouteLevel::District,
                Role::Analyst => RouteLevel::City,
            },
            None => RouteLevel::Community,
        };
        self.conn.execute(
            &format!(
                "INSERT INTO alerts ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 ?16, ?17, ?18, ?19, 'new', ?20, ?21, ?21, ?21, 0, NULL, NULL, NULL, NULL, NULL, '[]')"
            ),
            params![
                a.alert_id,
                a.model,
                a.model_version,
                a.kind,
                a.severity,
                a.score,
                a.event_ts_ms,
                a.subject,
                a.lat,
                a.lon,
                a.cell,
                a.grid,
                a.community,
                a.street,
                a.district,
                a.assignee,
                a.summary,
                a.evidence,
                a.action,
                level_str(level),
                now_ms
            ],
        )?;
        let s = self.must_get(&a.alert_id)?;
        self.log_change("new", ENGINE, &s, now_ms).map(Some)
    }

    /// `new` -> `acknowledged` by `who`.
    pub fn acknowledge(&mut self, alert_id: &str, who: &str, now_ms: i64) -> Result<Transition> {
        self.transition(alert_id, now_ms, |s| match s.status {
            Status::New => Some((
                "acknowledged",
                "UPDATE alerts SET status = 'acknowledged', acked_by = ?2, acked_ms = ?3, updated_ms = ?3 \
                 WHERE alert_id = ?1",
                who.to_owned(),
            )),
            _ => None,
        })
    }

    /// `new` or `acknowledged` -> `resolved` by `who` with `note`.
    pub fn resolve(&mut self, alert_id: &str, who: &str, note: &str, now_ms: i64) -> Result<Transition> {
        let sql = "UPDATE alerts SET status = 'resolved', resolved_by = ?2, resolved_ms = ?3, updated_ms = ?3, \
                   note = ?4 WHERE alert_id = ?1";
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = (|| {
            let Some(s) = self.get(alert_id)? else { return Ok(Transition::Missing) };
            if s.status == Status::Resolved {
                return Ok(Transition::Conflict(s.status));
            }
            self.conn.execute(sql, params![alert_id, who, now_ms, note])?;
            let s = self.must_get(alert_id)?;
            Ok(Transition::Done(Box::new(self.log_change("resolved", who, &s, now_ms)?)))
        })();
        self.finish(r)
    }

    fn transition(
        &mut self,
        alert_id: &str,
        now_ms: i64,
        rule: impl FnOnce(&StoredAlert) -> Option<(&'static str, &'static str, String)>,
    ) -> Result<Transition> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = (|| {
            let Some(s) = self.get(alert_id)? else { return Ok(Transition::Missing) };
            let Some((change, sql, who)) = rule(&s) else { return Ok(Transition::Conflict(s.status)) };
            self.conn.execute(sql, params![alert_id, who, now_ms])?;
            let s = self.must_get(alert_id)?;
            Ok(Transition::Done(Box::new(self.log_change(change, &who, &s, now_ms)?)))
        })();
        self.finish(r)
    }

    /// Escalates alerts still `new` whose level started `timeout_ms` or more
    /// before `now_ms`, one level up, at most `limit` (the longest waiting
    /// first) in one transaction; returns the changes to push. Fewer than
    /// `limit` changes: none is left due.
    ///
    /// **Shifts.** The next level's officer is the one on duty at `now_ms`
    /// (the roster in force at the escalation), in the place the alert was
    /// raised (the grids in force at its event time): an alert raised at
    /// 07:59 to the night shift's community officer and still `new` at 08:05
    /// escalates to the day shift's station officer after an 08:00 hand-over.
    pub fn escalate_due(
        &mut self,
        now_ms: i64,
        timeout_ms: u64,
        j: &Jurisdiction,
        limit: usize,
    ) -> Result<Vec<Change>> {
        let cutoff = now_ms - timeout_ms as i64;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = (|| {
            let sql = format!(
                "SELECT {COLS} FROM alerts WHERE status = 'new' AND level IN ('community', 'station') \
                 AND level_since_ms <= ?1 ORDER BY level_since_ms, alert_id LIMIT ?2"
            );
            let due: Vec<StoredAlert> = {
                let mut stmt = self.conn.prepare(&sql)?;
                stmt.query_map(params![cutoff, limit as i64], StoredAlert::from_row)?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::with_capacity(due.len());
            for s in due {
                let next = match level_parse(&s.level) {
                    RouteLevel::Community => RouteLevel::Station,
                    _ => RouteLevel::District,
                };
                let pos = match (s.alert.lat, s.alert.lon) {
                    (Some(lat), Some(lon)) => Point::from_degrees(lat, lon),
                    _ => None,
                };
                let cell = s.alert.cell.as_deref().and_then(|c| c.parse::<h3o::CellIndex>().ok()).map(u64::from);
                // The place as the alert was raised (grids at its event
                // time), the officer on duty now (roster at the escalation).
                let route = j.route_with(pos, cell, next, s.alert.event_ts_ms, now_ms);
                let mut esc: Vec<serde_json::Value> = serde_json::from_str(&s.escalations).unwrap_or_default();
                esc.push(serde_json::json!({
                    "level": level_str(next), "assignee": route.assignee, "from": s.alert.assignee, "at_ms": now_ms
                }));
                self.conn.execute(
                    "UPDATE alerts SET level = ?2, assignee = COALESCE(?3, assignee), level_since_ms = ?4, \
                     updated_ms = ?4, escalations = ?5 WHERE alert_id = ?1",
                    params![
                        s.alert.alert_id,
                        level_str(next),
                        route.assignee,
                        now_ms,
                        serde_json::Value::Array(esc).to_string()
                    ],
                )?;
                let s = self.must_get(&s.alert.alert_id)?;
                out.push(self.log_change("escalated", ESCALATION, &s, now_ms)?);
            }
            Ok(out)
        })();
        self.finish(r)
    }

    /// Keeps real numbers for reveal, sealed, keyed by token hex (first one wins).
    pub fn keep_numbers(&mut self, numbers: &[(String, String)]) -> Result<()> {
        if numbers.is_empty() {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = (|| {
            let mut stmt = self.conn.prepare_cached("INSERT OR IGNORE INTO numbers (token, sealed) VALUES (?1, ?2)")?;
            for (token, number) in numbers {
                let sealed = self
                    .vault
                    .encrypt(&vault_nonce(token), Payload { msg: number.as_bytes(), aad: token.as_bytes() })
                    .map_err(|e| Error::Vault(e.to_string()))?;
                stmt.execute(params![token, sealed])?;
            }
            Ok(())
        })();
        self.finish(r)
    }

    /// The real number behind a token, when ingest kept it.
    pub fn reveal(&self, token: &str) -> Result<Option<String>> {
        let sealed: Option<Vec<u8>> =
            self.conn.query_row("SELECT sealed FROM numbers WHERE token = ?1", [token], |r| r.get(0)).optional()?;
        let Some(sealed) = sealed else { return Ok(None) };
        let plain = self
            .vault
            .decrypt(&vault_nonce(token), Payload { msg: &sealed, aad: token.as_bytes() })
            .map_err(|_| Error::Vault(format!("number for {token} does not decrypt: wrong vault_key?")))?;
        String::from_utf8(plain).map(Some).map_err(|e| Error::Vault(e.to_string()))
    }

    /// Appends an audit record (see [`crate::audit`]).
    pub fn audit(&mut self, now_ms: i64, actor: &str, action: &str, target: &str, reason: &str) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = audit::append(&self.conn, &self.audit_key, now_ms, actor, action, target, reason);
        self.finish(r)
    }
}

/// Checks the alert state against the audit chain: every `changes` row from
/// the first chained one on must be chained with its snapshot's digest
/// (`chained`: change seq -> (alert id, change, digest), from the chain's
/// `alert_*` rows), every chained change must still be there, and every
/// alert whose changes are chained must equal its latest snapshot. The
/// first mismatch, in words; `None` when the state is what the chain says.
pub(crate) fn verify_state(
    conn: &Connection,
    chained: &std::collections::HashMap<i64, (String, String, String)>,
) -> Result<Option<String>> {
    let Some(first) = chained.keys().min().copied() else {
        return Ok(None); // nothing chained yet (an empty store, or one written before alert changes were chained)
    };
    let mut latest: std::collections::HashMap<String, (i64, String)> = std::collections::HashMap::new();
    let mut seen = 0usize;
    let mut stmt = conn.prepare("SELECT seq, alert_id, change, body FROM changes WHERE seq >= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([first])?;
    while let Some(r) = rows.next()? {
        let (seq, alert_id, change, body): (i64, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let Some((c_alert, c_change, c_digest)) = chained.get(&seq) else {
            return Ok(Some(format!(
                "changes row {seq} (alert {alert_id}) is not in the audit chain: it was inserted"
            )));
        };
        if *c_alert != alert_id || *c_change != change || *c_digest != audit::digest(&body) {
            return Ok(Some(format!(
                "changes row {seq} (alert {alert_id}) differs from what the chain recorded: it was edited"
            )));
        }
        seen += 1;
        latest.insert(alert_id, (seq, body));
    }
    drop(rows);
    if seen != chained.len() {
        let gone = |s: &i64| {
            conn.query_row("SELECT 1 FROM changes WHERE seq = ?1", [s], |_| Ok(())).optional().ok().flatten().is_none()
        };
        let missing = chained.keys().copied().filter(gone);
        let first_missing = missing.min().unwrap_or(first);
        return Ok(Some(format!("changes row {first_missing}, recorded in the audit chain, was deleted")));
    }
    let sql = format!("SELECT {COLS} FROM alerts");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let a = StoredAlert::from_row(r)?;
        if let Some((seq, body)) = latest.remove(&a.alert.alert_id) {
            if snapshot_to_json(&a) != body {
                return Ok(Some(format!(
                    "alert {} differs from its latest chained change (row {seq}): the alerts table was edited",
                    a.alert.alert_id
                )));
            }
        } else if conn
            .query_row("SELECT 1 FROM changes WHERE alert_id = ?1", [&a.alert.alert_id], |_| Ok(()))
            .optional()?
            .is_none()
        {
            return Ok(Some(format!("alert {} has no change in the log: it was inserted", a.alert.alert_id)));
        }
    }
    if let Some((id, (seq, _))) = latest.into_iter().min_by_key(|(_, (seq, _))| *seq) {
        return Ok(Some(format!(
            "alert {id} (last changed in row {seq}) is missing from the alerts table: it was deleted"
        )));
    }
    Ok(None)
}

/// Bytes the WAL is cut back to when it restarts (`journal_size_limit`).
pub const WAL_SIZE_LIMIT: i64 = 16 << 20;

/// A WAL over this many bytes gets a `TRUNCATE` checkpoint: one that waits
/// for readers and writers to finish, copies every frame and empties the file.
pub const WAL_TRUNCATE_AT: u64 = 64 << 20;

/// Copies the WAL into the database file without blocking writers
/// (`PASSIVE`), on its own connection; when the WAL at `wal_path` is still
/// over [`WAL_TRUNCATE_AT`] (a writer or reader never left a gap for it to
/// restart), a `TRUNCATE` checkpoint empties it. The server calls it
/// periodically from a side thread, since [`Store::open`] turns automatic
/// checkpoints off.
pub fn checkpoint(conn: &Connection, wal_path: &Path) -> Result<()> {
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    if std::fs::metadata(wal_path).is_ok_and(|m| m.len() > WAL_TRUNCATE_AT) {
        let (busy, frames, done): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        tracing::info!(busy, frames, done, "WAL over {} MiB: truncating checkpoint", WAL_TRUNCATE_AT >> 20);
    }
    Ok(())
}

/// A deterministic per-token nonce: each token is sealed once with its own
/// number, so a (key, nonce) pair never encrypts two different messages.
fn vault_nonce(token: &str) -> Nonce {
    let h = crate::auth::sha256(format!("citywatch vault nonce\0{token}").as_bytes());
    *Nonce::from_slice(&h[..12])
}

fn snapshot_to_json(s: &StoredAlert) -> String {
    let mut v = serde_json::to_value(&s.alert).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), s.status.as_str().into());
        o.insert("level".into(), s.level.clone().into());
        o.insert("created_ms".into(), s.created_ms.into());
        o.insert("updated_ms".into(), s.updated_ms.into());
        o.insert("level_since_ms".into(), s.level_since_ms.into());
        o.insert("updates".into(), s.updates.into());
        o.insert("acked_by".into(), s.acked_by.clone().into());
        o.insert("acked_ms".into(), s.acked_ms.into());
        o.insert("resolved_by".into(), s.resolved_by.clone().into());
        o.insert("resolved_ms".into(), s.resolved_ms.into());
        o.insert("note".into(), s.note.clone().into());
        o.insert("escalations".into(), s.escalations.clone().into());
    }
    v.to_string()
}

fn snapshot_from_json(body: &str) -> Option<StoredAlert> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let alert: Alert = serde_json::from_value(v.clone()).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let i = |k: &str| v.get(k).and_then(|x| x.as_i64());
    Some(StoredAlert {
        alert,
        status: Status::parse(&s("status")?)?,
        level: s("level")?,
        created_ms: i("created_ms")?,
        updated_ms: i("updated_ms")?,
        level_since_ms: i("level_since_ms")?,
        updates: i("updates")?,
        acked_by: s("acked_by"),
        acked_ms: i("acked_ms"),
        resolved_by: s("resolved_by"),
        resolved_ms: i("resolved_ms"),
        note: s("note"),
        escalations: s("escalations").unwrap_or_else(|| "[]".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wave_of_due_escalations_is_swept_in_bounded_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.sqlite"), [1; 32], [2; 32]).unwrap();
        let j = Jurisdiction::default_grid(Vec::new());
        let alerts: Vec<Alert> = (0..5u64)
            .map(|i| {
                let subject = format!("alarm:{i}");
                let id = citywatch_engine::alert::alert_id("m", "k", &subject, i);
                serde_json::from_value(serde_json::json!({"alert_id": id, "model": "m", "model_version": "1",
                    "kind": "k", "severity": "severe", "score": 1.0, "event_ts_ms": i, "subject": subject,
                    "summary": "s", "evidence": "{}", "action": "a"}))
                .unwrap()
            })
            .collect();
        assert_eq!(store.apply_alerts(&alerts, 1_000, 0, &j).unwrap().len(), 5);
        let sweeps: Vec<usize> = (0..4).map(|_| store.escalate_due(2_000, 500, &j, 2).unwrap().len()).collect();
        assert_eq!(sweeps, vec![2, 2, 1, 0], "at most the limit per transaction, until none is due");
        assert!(store.verify_audit().unwrap().is_intact());
    }

    /// The hand-over rule: an alert goes to the officer on duty when it is
    /// raised; an escalation goes to the next level's officer on duty when it
    /// escalates, in the place the alert was raised (a grid redrawn since
    /// moves neither the stored route nor the escalation).
    #[test]
    fn alerts_and_escalations_follow_the_shift_and_keep_their_place() {
        use citywatch_engine::contract::ALWAYS;
        use citywatch_engine::jurisdiction::{GridInfo, Officer, RosterRow};
        const H: i64 = 3_600_000;
        const M: i64 = 60_000;
        let p = Point::from_degrees(36.0671, 120.3826).unwrap();
        let cell = p.cell(h3o::Resolution::Nine);
        let grid = |g: &str, street: &str| GridInfo {
            grid: g.into(),
            community: format!("c-{g}"),
            street: street.into(),
            district: "d1".into(),
        };
        let post = |from_ms: i64, id: &str, role: Role, scope: &str, on_duty: bool| RosterRow {
            from_ms,
            officer: Officer { officer_id: id.into(), name: id.into(), role, scope: scope.into() },
            on_duty,
        };
        let j = Jurisdiction::versioned(
            h3o::Resolution::Nine,
            // At 08:02 the cell moves to another grid, community and street.
            vec![(cell, ALWAYS, grid("g1", "s1")), (cell, 8 * H + 2 * M, grid("g2", "s2"))],
            vec![
                post(0, "night-comm", Role::Community, "c-g1", true),
                post(8 * H, "night-comm", Role::Community, "c-g1", false),
                post(8 * H, "day-comm", Role::Community, "c-g1", true),
                post(0, "night-stat", Role::Station, "s1", true),
                post(8 * H, "night-stat", Role::Station, "s1", false),
                post(8 * H, "day-stat", Role::Station, "s1", true),
                post(0, "other-comm", Role::Community, "c-g2", true),
                post(0, "other-stat", Role::Station, "s2", true),
            ],
        );
        let alert = |at: i64| {
            let subject = format!("alarm:{at}");
            let r = j.route_at(Some(p), None, RouteLevel::Community, at);
            Alert {
                alert_id: citywatch_engine::alert::alert_id("m", "k", &subject, at as u64),
                model: "m".into(),
                model_version: "1".into(),
                kind: "k".into(),
                severity: "severe".into(),
                score: 1.0,
                event_ts_ms: at,
                subject,
                lat: Some(p.lat()),
                lon: Some(p.lon()),
                cell: r.cell,
                grid: r.grid,
                community: r.community,
                street: r.street,
                district: r.district,
                assignee: r.assignee,
                summary: "s".into(),
                evidence: "{}".into(),
                action: "a".into(),
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.sqlite"), [1; 32], [2; 32]).unwrap();
        let (early, late) = (alert(8 * H - M), alert(8 * H + M));
        assert_eq!(early.assignee.as_deref(), Some("night-comm"), "07:59: the night shift");
        assert_eq!(late.assignee.as_deref(), Some("day-comm"), "08:01: the day shift");
        store.apply_alerts(std::slice::from_ref(&early), 8 * H - M, 0, &j).unwrap();
        store.apply_alerts(std::slice::from_ref(&late), 8 * H + M, 0, &j).unwrap();
        // 08:05, five minutes' timeout: the 07:59 alert is due, the 08:01 one is not.
        let changes = store.escalate_due(8 * H + 5 * M, 5 * M as u64, &j, 10).unwrap();
        assert_eq!(changes.len(), 1);
        let s = store.get(&early.alert_id).unwrap().unwrap();
        assert_eq!((s.level.as_str(), s.alert.assignee.as_deref()), ("station", Some("day-stat")));
        let esc: serde_json::Value = serde_json::from_str(&s.escalations).unwrap();
        assert_eq!(esc[0]["from"], "night-comm");
        assert_eq!(esc[0]["assignee"], "day-stat");
        assert_eq!((s.alert.grid.as_deref(), s.alert.street.as_deref()), (Some("g1"), Some("s1")), "route as raised");
        assert_eq!(store.get(&late.alert_id).unwrap().unwrap().alert.assignee.as_deref(), Some("day-comm"));
        // An alert raised after the redraw is routed in the new grid.
        assert_eq!(alert(8 * H + 3 * M).grid.as_deref(), Some("g2"));
        assert_eq!(alert(8 * H + 3 * M).assignee.as_deref(), Some("other-comm"));
        assert!(store.verify_audit().unwrap().is_intact());
    }

    #[test]
    fn a_wal_grown_in_a_burst_is_cut_back_after_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let wal = dir.path().join("store.sqlite-wal");
        let store = Store::open(&path, [1; 32], [2; 32]).unwrap();
        // A burst: 40 MB in one transaction, no checkpoint meanwhile.
        store.conn.execute_batch("CREATE TABLE burst (b BLOB); BEGIN").unwrap();
        for _ in 0..40 {
            store.conn.execute("INSERT INTO burst VALUES (zeroblob(1000000))", []).unwrap();
        }
        store.conn.execute_batch("COMMIT").unwrap();
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > 40_000_000, "the burst is in the WAL: {grown} bytes");
        // The side thread's checkpoint, then the next write restarts the WAL.
        let side = Connection::open(&path).unwrap();
        checkpoint(&side, &wal).unwrap();
        store.conn.execute("DELETE FROM burst", []).unwrap();
        let after = std::fs::metadata(&wal).unwrap().len();
        assert!(after <= WAL_SIZE_LIMIT as u64, "WAL {after} bytes after the checkpoint (was {grown})");
    }
}
