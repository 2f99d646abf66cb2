//! Reusable dataflow operators for citywatch models, one per file, each an
//! extension trait on timely streams whose module doc states its inputs,
//! output, state, time semantics and cost per update.
#![deny(missing_docs)]

pub mod deadline;
pub mod fxhash;
pub mod window_count;
pub mod window_distinct_count;
pub mod window_fold;

pub use window_count::WindowCount;
pub use window_distinct_count::WindowDistinctCount;
pub use window_fold::{Tumbling, WindowFold, WindowKey};
