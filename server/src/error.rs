//! The crate's one error type. It separates the operator's mistakes (a bad
//! config or credentials file), external failures (disk, SQLite, the socket)
//! and bugs (a poisoned lock, a dead worker thread), so `citywatch serve` can
//! say what to fix.

use std::path::PathBuf;

/// Everything that can go wrong starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be read or parsed (the user's mistake).
    #[error("config file {path}: {reason}; see server/README.md for the format")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The credentials file cannot be read or parsed (the user's mistake).
    #[error("credentials file {path}: {reason}; create one with `citywatch demo` or `demo_credentials`")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written (external).
    #[error("{what} {path}: {source}")]
    Io {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listening socket could not be bound or served (external).
    #[error("cannot serve on {addr}: {source}; is another process using the port?")]
    Bind {
        /// The configured address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// SQLite failed (external: disk full, locked, corrupt file).
    #[error("alert store: {0}")]
    Store(#[from] rusqlite::Error),
    /// Encrypting or decrypting a kept phone number failed (a wrong key, or a bug).
    #[error("number vault: {0}")]
    Vault(String),
    /// An internal invariant broke (a bug: please report it).
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
