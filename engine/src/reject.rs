//! The dead-letter output: rows that do not follow the contract.
//!
//! A bad row never stops a run and never disappears: it is written to
//! `rejected.ndjson` with its table, file, row number (0-based, within the file),
//! the column and the reason, and it is counted in the summary, which lists the
//! most frequent reasons. Raw values are not copied into the file, because a
//! bad phone-number column would put real numbers into a log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::contract::Table;
use crate::{Error, Result};

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// Table name (`calls`, `alarms`...).
    pub table: String,
    /// The file the row is in.
    pub file: String,
    /// 0-based row number within the file.
    pub row: u64,
    /// The column at fault (none when the row as a whole is at fault).
    pub column: Option<String>,
    /// Machine-readable reason code (`null`, `unknown_value`, `out_of_range`,
    /// `not_a_phone_number`, `end_without_start`, `duplicate_start`, ...).
    pub code: String,
    /// What is wrong, for a person.
    pub reason: String,
}

impl Rejected {
    /// A rejected row of `table`.
    pub fn new(table: Table, file: &Path, row: u64, column: Option<&str>, code: &str, reason: String) -> Self {
        Rejected {
            table: table.name().to_owned(),
            file: file.display().to_string(),
            row,
            column: column.map(str::to_owned),
            code: code.to_owned(),
            reason,
        }
    }
}

/// Counts rejected rows by table and reason, and (optionally) writes them out.
#[derive(Debug, Default)]
pub struct RejectLog {
    path: Option<PathBuf>,
    out: Option<std::io::BufWriter<std::fs::File>>,
    by_table: BTreeMap<String, u64>,
    by_reason: BTreeMap<(String, String, String), u64>,
}

impl RejectLog {
    /// A log that only counts.
    pub fn counting() -> Self {
        RejectLog::default()
    }

    /// A log that writes to `path` (created, truncated) and counts.
    pub fn to_file(path: &Path) -> Result<Self> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(RejectLog { path: Some(path.to_owned()), out: Some(std::io::BufWriter::new(f)), ..Default::default() })
    }

    /// Records a rejected row.
    pub fn record(&mut self, r: &Rejected) -> Result<()> {
        *self.by_table.entry(r.table.clone()).or_default() += 1;
        let key = (r.table.clone(), r.column.clone().unwrap_or_default(), r.code.clone());
        *self.by_reason.entry(key).or_default() += 1;
        if let (Some(out), Some(path)) = (self.out.as_mut(), self.path.as_ref()) {
            serde_json::to_writer(&mut *out, r).map_err(|e| Error::Bug(format!("reject json: {e}")))?;
            out.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }

    /// Rejected rows per table.
    pub fn by_table(&self) -> &BTreeMap<String, u64> {
        &self.by_table
    }

    /// The most frequent reasons, `(table, column, code, count)`, largest first.
    pub fn top_reasons(&self, n: usize) -> Vec<(String, String, String, u64)> {
        let mut v: Vec<_> = self.by_reason.iter().map(|((t, c, k), n)| (t.clone(), c.clone(), k.clone(), *n)).collect();
        v.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2))));
        v.truncate(n);
        v
    }

    /// Total rejected rows.
    pub fn total(&self) -> u64 {
        self.by_table.values().sum()
    }

    /// Flushes the file.
    pub fn finish(&mut self) -> Result<()> {
        if let (Some(out), Some(path)) = (self.out.as_mut(), self.path.as_ref()) {
            out.flush().map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }
}
