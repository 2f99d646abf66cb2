//! Errors of the bench crate: the user's mistake (a file that is not the
//! workload's) apart from an external failure (disk, Parquet) and from a bug.

use std::path::PathBuf;

/// What went wrong running a scenario.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The input does not have the workload's shape: wrong header, bad number,
    /// missing or null column. Fix the file (regenerate it with `citywatch-bench gen-<workload>`).
    #[error("{path}: {place}: {problem}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Where in it: `line 12`, `column caller`, `row 7 of column ts_ms`.
        place: String,
        /// What was expected and what was found.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Parquet or Arrow library failed on a file.
    #[error("{path}: {problem}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The library's message.
        problem: String,
    },
    /// A timely worker failed: a bug in the dataflow.
    #[error("dataflow worker failed (a bug): {0}")]
    Worker(String),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BenchError::Io { path: path.to_path_buf(), source }
    }

    /// A Parquet/Arrow error on `path`.
    pub fn parquet(path: &std::path::Path, problem: impl std::fmt::Display) -> Self {
        BenchError::Parquet { path: path.to_path_buf(), problem: problem.to_string() }
    }

    /// A malformed input at `place` in `path`.
    pub fn input(path: &std::path::Path, place: impl Into<String>, problem: impl Into<String>) -> Self {
        BenchError::Input { path: path.to_path_buf(), place: place.into(), problem: problem.into() }
    }
}
