//! The datasets crate's error: what went wrong, where, and what to do.
//!
//! A user's mistake (a bad option, a missing or malformed source file) is kept
//! apart from an external failure (disk) and from a bug in the generator.

use std::path::PathBuf;

/// Result with the datasets [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a generator or converter run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is out of range (the user's mistake).
    #[error("invalid {what}: {detail}")]
    Config {
        /// The option.
        what: String,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// A source data file (the Toronto CSV) is missing or malformed.
    #[error("{file}: {detail}")]
    Source {
        /// The file.
        file: PathBuf,
        /// What is wrong, where (line) and what to do.
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
    /// The engine's writer or reader failed (it names the file).
    #[error(transparent)]
    Engine(#[from] citywatch_engine::Error),
    /// Arrow refused a batch the generator built: a bug.
    #[error("internal error (a bug in the generator, please report it): {0}")]
    Bug(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An invalid option.
    pub fn config(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Config { what: what.into(), detail: detail.into() }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Bug(format!("arrow: {e}"))
    }
}
