//! Reference rows sent to the live service while it runs: subscriber
//! registrations and cancellations, roster changes (a hand-over, an officer
//! joining or leaving a post). They take effect in event time exactly as the
//! same rows with the same `valid_from_ms` in a dataset's tables do in a
//! replay (see "Reference data that changes" in `docs/input-contract.md`).
//!
//! **Never before what was already seen.** Lookups are made as of event
//! times, and the live engine has made them up to the latest event time it
//! admitted (events, clock ticks). A row dated at or before that time could
//! no longer change what those lookups answered, so it is **moved** to just
//! after it ([`ReferenceChange::clamp`]) and the answer says so: the change
//! holds from the first event time the engine has not yet seen, and a replay
//! of the events with the rows at their moved times gives the same alerts.
//!
//! **Durable.** With a journal, each accepted change is appended to
//! `reference.ndjson` in the journal's folder (one JSON line a change, synced
//! before the answer) and applied again on restore before the journaled
//! epochs are fed. The file is never compacted: a registration stays in
//! force long after the journal's retention.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::jurisdiction::RosterRow;
use crate::load::SubscriberRow;
use crate::reference::Reference;
use crate::{Error, Result};

/// Reference rows of one live request, each dated (`from_ms`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ReferenceChange {
    /// Subscriber versions: `(token, from_ms, data or None for a cancellation)`.
    Subscribers(Vec<SubscriberRow>),
    /// Roster rows.
    Roster(Vec<RosterRow>),
}

impl ReferenceChange {
    /// Rows in the change.
    pub fn len(&self) -> usize {
        match self {
            ReferenceChange::Subscribers(r) => r.len(),
            ReferenceChange::Roster(r) => r.len(),
        }
    }

    /// Whether the change has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every row dated before `floor` to `floor`; the rows moved.
    pub fn clamp(&mut self, floor: i64) -> u64 {
        let mut moved = 0;
        let mut at = |from: &mut i64| {
            if *from < floor {
                *from = floor;
                moved += 1;
            }
        };
        match self {
            ReferenceChange::Subscribers(rows) => rows.iter_mut().for_each(|r| at(&mut r.1)),
            ReferenceChange::Roster(rows) => rows.iter_mut().for_each(|r| at(&mut r.from_ms)),
        }
        moved
    }

    /// The earliest `from_ms` of the rows.
    pub fn earliest(&self) -> Option<i64> {
        match self {
            ReferenceChange::Subscribers(rows) => rows.iter().map(|r| r.1).min(),
            ReferenceChange::Roster(rows) => rows.iter().map(|r| r.from_ms).min(),
        }
    }

    /// Applies the rows to the reference data every worker shares.
    pub fn apply(&self, reference: &Reference) {
        match self {
            ReferenceChange::Subscribers(rows) => reference.subscribers.register(rows),
            ReferenceChange::Roster(rows) => reference.jurisdiction.post(rows.clone()),
        }
    }
}

/// The file of accepted live changes (`reference.ndjson` in the journal's folder).
#[derive(Debug)]
pub struct ReferenceLog {
    path: PathBuf,
    file: File,
    fsync: bool,
}

impl ReferenceLog {
    /// Opens (creating) the log in `dir` and reads the changes it holds, in
    /// order. A last line cut short (the process died inside a write) is
    /// dropped; a bad line before the last is an error.
    pub fn open(dir: &Path, fsync: bool) -> Result<(ReferenceLog, Vec<ReferenceChange>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("reference.ndjson");
        let mut changes = Vec::new();
        if path.exists() {
            let lines: Vec<String> = BufReader::new(File::open(&path).map_err(|e| Error::io(&path, e))?)
                .lines()
                .collect::<std::io::Result<_>>()
                .map_err(|e| Error::io(&path, e))?;
            let last = lines.len().saturating_sub(1);
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str::<ReferenceChange>(line) {
                    Ok(c) => changes.push(c),
                    Err(_) if i == last => {
                        tracing::warn!(file = %path.display(), "a torn last reference change was dropped")
                    }
                    Err(e) => {
                        return Err(Error::Runtime(format!(
                            "{}: line {} is not a reference change ({e}); the file was damaged: restore it or move it away knowingly",
                            path.display(),
                            i + 1
                        )));
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?;
        Ok((ReferenceLog { path, file, fsync }, changes))
    }

    /// Appends a change (synced when the journal syncs) before it is applied.
    pub fn append(&mut self, change: &ReferenceChange) -> Result<()> {
        let mut line = serde_json::to_vec(change).map_err(|e| Error::Bug(e.to_string()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, e))?;
        if self.fsync {
            self.file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}
