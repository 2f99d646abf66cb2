//! Reusable dataflow operators for citywatch models, one per file, each an
//! extension trait on timely streams whose module doc states its inputs,
//! output, state, time semantics and cost per update.
#![deny(missing_docs)]

pub mod deadline;
