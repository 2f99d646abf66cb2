//! The audit log: an append-only, hash-chained table of who did what to which
//! alert or number, when and why (logins, alert views, acknowledgements,
//! resolutions, reveals).
//!
//! Row `n` stores `hash_n = SHA-256(hash_{n-1} || JSON[seq, at_ms, actor,
//! action, target, reason])` (hex), with 64 zeros before the first row.
//! Editing, deleting or reordering any row breaks every later hash, which
//! [`audit_verify`] finds. Truncating the tail is not detectable from the table
//! alone: [`AuditReport::head`] is the value to record elsewhere (a daily log
//! line) to pin it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What [`audit_verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Rows checked.
    pub rows: u64,
    /// Hash of the last row (the chain head), or the genesis hash when empty.
    pub head: String,
    /// The first broken row, if any: `(seq, what is wrong)`.
    pub broken: Option<(i64, String)>,
}

impl AuditReport {
    /// Whether every row checks out.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

fn row_hash(prev: &str, seq: i64, at_ms: i64, actor: &str, action: &str, target: &str, reason: &str) -> String {
    let body = serde_json::json!([seq, at_ms, actor, action, target, reason]).to_string();
    let mut bytes = Vec::with_capacity(prev.len() + body.len());
    bytes.extend_from_slice(prev.as_bytes());
    bytes.extend_from_slice(body.as_bytes());
    crate::auth::hex(&crate::auth::sha256(&bytes))
}

/// Appends one record; the caller holds a write transaction.
pub(crate) fn append(
    conn: &Connection,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<()> {
    let last: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_owned()),
    };
    let hash = row_hash(&prev, seq, at_ms, actor, action, target, reason);
    conn.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, target, reason, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at_ms, actor, action, target, reason, prev, hash],
    )?;
    Ok(())
}

/// Checks the audit chain of the store at `store_path` (opened read-only; safe
/// while the server runs). For `citywatch audit verify`.
pub fn audit_verify(store_path: &Path) -> Result<AuditReport> {
    if !store_path.exists() {
        return Err(Error::Io {
            what: "alert store",
            path: store_path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let conn = Connection::open_with_flags(store_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    verify_conn(&conn)
}

pub(crate) fn verify_conn(conn: &Connection) -> Result<AuditReport> {
    let mut stmt =
        conn.prepare("SELECT seq, at_ms, actor, action, target, reason, prev_hash, hash FROM audit ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut report = AuditReport { rows: 0, head: GENESIS.to_owned(), broken: None };
    let mut expected_seq = 1i64;
    while let Some(r) = rows.next()? {
        let (seq, at_ms): (i64, i64) = (r.get(0)?, r.get(1)?);
        let (actor, action, target, reason): (String, String, String, String) =
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let (prev, hash): (String, String) = (r.get(6)?, r.get(7)?);
        let problem = if seq != expected_seq {
            Some(format!("expected row {expected_seq}, found {seq}: a row was deleted or inserted"))
        } else if prev != report.head {
            Some("prev_hash does not match the previous row's hash: rows were changed or reordered".to_owned())
        } else if row_hash(&prev, seq, at_ms, &actor, &action, &target, &reason) != hash {
            Some("hash does not match the row's contents: the row was edited".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            report.broken = Some((seq, p));
            return Ok(report);
        }
        report.rows += 1;
        report.head = hash;
        expected_seq += 1;
    }
    Ok(report)
}
