//! Reusable dataflow operators for citywatch models, one per file, each an
//! extension trait on timely streams whose module doc states its inputs,
//! output, state, time semantics and cost per update.
//!
//! Which to use (docs/writing-a-model.md has more):
//! - "N events of a key within W, and which ones": [`SlidingCount`].
//! - "for each event of a key, in event-time order, update state, maybe set a
//!   timer": [`Ordered`]; with two streams interleaved exactly in event time
//!   ("an alarm expects a patrol within 3 minutes"): [`deadline::Deadlines`].
//! - counts or folds per key and fixed window: [`WindowCount`],
//!   [`WindowDistinctCount`], [`WindowFold`].
//!
//! Windowed aggregation over event time: [`WindowCount`], [`WindowDistinctCount`],
//! and [`WindowFold`] for several counters and a distinct set in one pass.
//! Timely time is the watermark: records travel at a timely time no later than
//! their event time, and a window is emitted when the input frontier reaches its
//! end.
//!
//! ```
//! use citywatch_operators::{Tumbling, WindowCount, WindowFold};
//! use timely::dataflow::operators::{Capture, ToStream, capture::Extract};
//!
//! // (event time ms, caller, callee, duration s)
//! let calls = vec![(1_000u64, 7u64, 1u64, 12u32), (2_000, 7, 2, 300), (61_000, 7, 1, 5), (3_000, 8, 1, 40)];
//! let (counts, fanout) = timely::example(move |scope| {
//!     let minute = Tumbling::new(60_000);
//!     let calls = calls.to_stream(scope);
//!     let counts = calls.clone().window_count("CallsPerCaller", &minute, |c: &(u64, u64, u64, u32)| (c.1, c.0));
//!     // calls, short calls and distinct callees per caller and minute, in one pass
//!     let fanout = calls.window_fold_distinct(
//!         "CallerFanout",
//!         &minute,
//!         |c: &(u64, u64, u64, u32)| (c.1, c.0),
//!         |c: &(u64, u64, u64, u32)| c.2,
//!         |acc: &mut (u32, u32, u32), c: &(u64, u64, u64, u32), first_callee: bool| {
//!             acc.0 += 1;
//!             acc.1 += u32::from(c.3 < 30);
//!             acc.2 += u32::from(first_callee);
//!         },
//!         |window, acc| (acc.2 >= 2).then_some((window.key, window.window_start_ms, *acc)),
//!     );
//!     (counts.capture(), fanout.capture())
//! });
//! let counts: Vec<_> = counts.extract().into_iter().flat_map(|(_, d)| d).map(|(w, n)| (w.key, w.window_start_ms, n)).collect();
//! assert_eq!(counts, vec![(7, 0, 2), (8, 0, 1), (7, 60_000, 1)]);
//! let fanout: Vec<_> = fanout.extract().into_iter().flat_map(|(_, d)| d).collect();
//! assert_eq!(fanout, vec![(7, 0, (2, 1, 2))]);
//! ```
#![deny(missing_docs)]

pub mod deadline;
pub mod ordered;
pub mod sliding_count;
pub mod window_count;
pub mod window_distinct_count;
pub mod window_fold;

pub use ordered::{Ordered, OrderedStep};
pub use sliding_count::{Burst, SlidingCount};
pub use window_count::WindowCount;
pub use window_distinct_count::WindowDistinctCount;
pub use window_fold::{Tumbling, WindowFold, WindowKey};
