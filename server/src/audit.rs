//! The audit log: an append-only, hash-chained table of who did what to which
//! alert or number, when and why (logins, alert views, acknowledgements,
//! resolutions, reveals).
//!
//! Row `n` stores `hash_n = HMAC-SHA256(key, hash_{n-1} || JSON[seq, at_ms,
//! actor, action, target, reason])` (hex), with 64 zeros before the first
//! row. The key (`[server] audit_key`, by default derived from the vault key)
//! is never stored in the database: an insider who edits a row in the SQLite
//! file cannot recompute the chain without it, so editing, deleting or
//! reordering any row breaks the chain, which [`audit_verify`] finds.
//! Truncating the tail leaves a valid shorter chain: `citywatch audit head`
//! prints [`AuditReport::head`] to record elsewhere (a daily log line, a
//! ticket), and `audit verify --expect-head` fails when that head is no
//! longer in the chain ([`AuditReport::contains`]).
//!
//! **Alert state.** Every row of the store's `changes` log (an alert fired,
//! a duplicate folded in, an escalation, an acknowledgement, a resolution)
//! is chained in the same transaction as an `alert_<change>` row: the actor
//! (`engine`, `escalation` or the officer), the alert id, and as reason
//! `change <seq> sha256 <digest of the snapshot>`. [`audit_verify`] then
//! checks the tables against the chain ([`AuditReport::state`]): a `changes`
//! row edited, inserted or deleted, or an `alerts` row that is not its latest
//! snapshot (a status set to resolved by hand, a deleted alert), is found.
//! Changes logged before a store's first chained one (stores written by an
//! older binary) are outside this check.

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
    /// The alert state (`alerts`, `changes`) where it is not what the chain
    /// recorded: the first mismatch, in words. Checked only on an intact chain.
    pub state: Option<String>,
    /// Hashes of the intact rows, in order (to look up a recorded head).
    #[serde(skip)]
    pub hashes: Vec<String>,
}

impl AuditReport {
    /// Whether every row checks out, and the alert state with it.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none() && self.state.is_none()
    }

    /// Whether a head recorded earlier is the hash of an intact row: false
    /// when the rows up to it were deleted (tail truncation) or changed.
    pub fn contains(&self, head: &str) -> bool {
        let head = head.trim().to_ascii_lowercase();
        head == GENESIS || self.hashes.contains(&head)
    }
}

/// The action prefix of the rows that chain alert changes (`alert_new`, ...).
pub const ALERT_ACTION: &str = "alert_";

/// Hex SHA-256 of a change's snapshot.
pub(crate) fn digest(body: &str) -> String {
    crate::auth::hex(&crate::auth::sha256(body.as_bytes()))
}

/// The reason of an `alert_*` row: the change's seq and its snapshot's digest.
pub(crate) fn change_reason(seq: i64, body: &str) -> String {
    format!("change {seq} sha256 {}", digest(body))
}

/// The chain's key, 32 bytes.
pub type AuditKey = [u8; 32];

#[allow(clippy::too_many_arguments)]
fn row_hash(
    key: &AuditKey,
    prev: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> String {
    use hmac::{Hmac, Mac};
    let body = serde_json::json!([seq, at_ms, actor, action, target, reason]).to_string();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(prev.as_bytes());
    mac.update(body.as_bytes());
    crate::auth::hex(&mac.finalize().into_bytes())
}

/// Appends one record; the caller holds a write transaction.
pub(crate) fn append(
    conn: &Connection,
    key: &AuditKey,
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
    let hash = row_hash(key, &prev, seq, at_ms, actor, action, target, reason);
    conn.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, target, reason, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at_ms, actor, action, target, reason, prev, hash],
    )?;
    Ok(())
}

/// Checks the audit chain of the store at `store_path` with the chain's key
/// ([`crate::ServerConfig::audit_key_bytes`]); opened read-only, safe while
/// the server runs. For `citywatch audit verify` and `audit head`.
pub fn audit_verify(store_path: &Path, key: &AuditKey) -> Result<AuditReport> {
    if !store_path.exists() {
        return Err(Error::Io {
            what: "alert store",
            path: store_path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let conn = Connection::open_with_flags(store_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    verify_conn(&conn, key)
}

pub(crate) fn verify_conn(conn: &Connection, key: &AuditKey) -> Result<AuditReport> {
    let mut stmt =
        conn.prepare("SELECT seq, at_ms, actor, action, target, reason, prev_hash, hash FROM audit ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut report = AuditReport { rows: 0, head: GENESIS.to_owned(), broken: None, state: None, hashes: Vec::new() };
    // Change seq -> (alert id, change, digest), from the `alert_*` rows.
    let mut chained = std::collections::HashMap::new();
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
        } else if row_hash(key, &prev, seq, at_ms, &actor, &action, &target, &reason) != hash {
            Some(
                "hash does not match the row's contents and the key: the row was edited, or the key is not this \
                 store's audit key"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(p) = problem {
            report.broken = Some((seq, p));
            return Ok(report);
        }
        if let Some(change) = action.strip_prefix(ALERT_ACTION) {
            let mut words = reason.split(' ');
            match (words.next(), words.next().and_then(|s| s.parse::<i64>().ok()), words.next(), words.next()) {
                (Some("change"), Some(seq), Some("sha256"), Some(d)) => {
                    chained.insert(seq, (target, change.to_owned(), d.to_owned()));
                }
                _ => {
                    report.broken = Some((seq, format!("an {action} row without its change and digest")));
                    return Ok(report);
                }
            }
        }
        report.rows += 1;
        report.hashes.push(hash.clone());
        report.head = hash;
        expected_seq += 1;
    }
    drop(rows);
    report.state = crate::store::verify_state(conn, &chained)?;
    Ok(report)
}
