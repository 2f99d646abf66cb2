//! citywatch engine: the runtime every model and tool builds on.
//!
//! What lives here, in the order data flows through it:
//! - [`contract`]: the public input contract (`docs/input-contract.md`): tables, columns,
//!   Arrow schemas and the closed vocabularies (`event`, `category`, `status`...).
//! - [`pseudonym`]: phone numbers become keyed-hash tokens at ingest; nothing
//!   downstream of the reader sees a raw number.
//! - [`parquet_io`]: finding, checking (file, column, expected, found),
//!   opening and writing the contract tables' Parquet files.
//! - [`columns`]: reading contract columns row by row and naming bad rows
//!   for the dead-letter output ([`reject`]).
//! - [`decode`]: the stream tables' rows into compact [`event`]s.
//! - [`load`]: the reference tables into [`reference::Reference`], every row
//!   with its time; [`changes`]: the rows the live service is sent.
//! - [`admission`]: source positions, the watermark and call pairing, the
//!   same for a replay's shares and the live ingest.
//! - [`lateness`]: event time, the watermark and what "late" means.
//! - [`replay`]: the deterministic replay driver over timely workers.
//! - [`model`]: the `Model` trait (the one seam a model author touches).
//! - [`jurisdiction`]: grids and officers; routing an alert to the responsible officer.
//! - [`alert`]: the output contract (`docs/alert-contract.md`) and its writers.
#![deny(missing_docs)]

pub mod admission;
pub mod alert;
pub mod changes;
pub mod columns;
pub mod contract;
pub mod dataflow;
pub mod decode;
pub mod error;
pub mod event;
pub mod geo;
pub mod hash;
pub mod ipc;
pub mod journal;
pub mod jurisdiction;
pub mod lateness;
pub mod live;
pub mod load;
pub mod model;
pub mod ndjson;
pub mod parquet_io;
pub mod pseudonym;
pub mod reference;
pub mod reject;
pub mod replay;
pub mod rows;
pub mod settings;
pub mod share;
pub mod summary;
pub mod testkit;

pub use error::{Error, Result};

/// Timely timestamps in every citywatch dataflow: event time in milliseconds
/// since the Unix epoch (UTC). Rows with negative `ts_ms` are rejected at ingest.
pub type EventTime = u64;
