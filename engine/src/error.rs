//! One error type for the engine. It separates the user's mistake (a bad file,
//! a bad option), an external failure (disk, network) and a bug in citywatch,
//! because the person at the console needs to know which one to fix.
//!
//! Bad *rows* are not errors: they go to the dead-letter output
//! ([`crate::reject`]) and the run continues.

use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a citywatch run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table the run needs is not in the dataset folder.
    #[error("{table}: no `{table}.parquet` file or `{table}/` folder in {dir}; {hint}")]
    MissingTable {
        /// Table name from the input contract.
        table: &'static str,
        /// The dataset folder searched.
        dir: PathBuf,
        /// What the user can do about it.
        hint: &'static str,
    },
    /// A file exists but holds no bytes.
    #[error(
        "{file}: the file is empty (0 bytes); expected a Parquet file of table `{table}` — rewrite it, or remove it if the table has no rows (a Parquet file with zero rows is valid)"
    )]
    EmptyFile {
        /// The offending file.
        file: PathBuf,
        /// Table it was read as.
        table: &'static str,
    },
    /// A file is not a readable Parquet file.
    #[error("{file}: not a readable Parquet file for table `{table}`: {detail}")]
    Corrupt {
        /// The offending file.
        file: PathBuf,
        /// Table it was read as.
        table: &'static str,
        /// What the Parquet reader said.
        detail: String,
    },
    /// A required column is absent.
    #[error(
        "{file}: column `{column}` is missing; expected {expected} (table `{table}`, see docs/input-contract.md); found columns: {found}"
    )]
    MissingColumn {
        /// The offending file.
        file: PathBuf,
        /// Table it was read as.
        table: &'static str,
        /// The missing column.
        column: &'static str,
        /// The type the contract requires.
        expected: String,
        /// The columns that are there.
        found: String,
    },
    /// A column has the wrong type.
    #[error(
        "{file}: column `{column}` has type {found}; expected {expected} (table `{table}`, see docs/input-contract.md)"
    )]
    WrongType {
        /// The offending file.
        file: PathBuf,
        /// Table it was read as.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The type the contract requires.
        expected: String,
        /// The type in the file.
        found: String,
    },
    /// A reference table (grids, officers) is inconsistent in a way that makes routing impossible.
    #[error("{file}: {detail}")]
    BadReference {
        /// The offending file.
        file: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
    /// A command-line option or config value is invalid.
    #[error("invalid {what}: {detail}")]
    Config {
        /// The option or setting.
        what: String,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// Reading or writing a file failed (disk full, permissions...).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Parquet or Arrow failed while writing output.
    #[error("{path}: writing failed: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the writer said.
        detail: String,
    },
    /// A message log could not be read.
    #[error("{source_name}: reading the log failed: {detail}")]
    Log {
        /// The partition (`kafka:TOPIC/PARTITION`).
        source_name: String,
        /// What failed.
        detail: String,
    },
    /// The timely runtime failed (e.g. a cluster peer could not be reached).
    #[error("dataflow runtime: {0}")]
    Runtime(String),
    /// An invariant of citywatch itself broke: please report it.
    #[error("internal error (a bug in citywatch, please report it): {0}")]
    Bug(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A configuration error.
    pub fn config(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Config { what: what.into(), detail: detail.into() }
    }
}
