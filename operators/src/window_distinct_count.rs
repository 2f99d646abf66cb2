//! Keyed windowed distinct count: distinct values per key and epoch-aligned
//! tumbling event-time window (a fraud model's distinct callees per caller).
//!
//! - **Input**: records `D`; `key_ts(&d)` gives the 64-bit key and the event time
//!   in ms, `value(&d)` the 64-bit value counted once per key and window (a
//!   callee token). Timely time is the watermark, as for [`WindowFold`].
//! - **Output**: `(WindowKey, distinct values)` for every key with at least one
//!   event in the window, sent at the window end once the input frontier reaches it.
//! - **State**: per open window, a slot per key with its count and first distinct
//!   values, and one `(key, value)` hash set shared by all keys for the rest;
//!   see [`WindowFold::window_fold_distinct`] for the layout, time semantics,
//!   lateness and exchange. To count more per key in the same pass
//!   (calls, short calls), use `window_fold_distinct` directly.
//! - **Cost per update**: one hash-map probe and a comparison with the key's
//!   inline values; a hash-set insert only for keys with many distinct values
//!   (plus the open-window lookup).

use citywatch_engine::EventTime;
use timely::ExchangeData;
use timely::dataflow::StreamVec;

use crate::window_fold::{Tumbling, WindowFold, WindowKey};

/// Extension trait: keyed windowed distinct count (see the module doc).
pub trait WindowDistinctCount<'s, D: ExchangeData> {
    /// Counts distinct `value`s per key and window of `windows`.
    fn window_distinct_count<KF, VF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        value: VF,
    ) -> StreamVec<'s, EventTime, (WindowKey, u64)>
    where
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        VF: Fn(&D) -> u64 + 'static;
}

impl<'s, D: ExchangeData> WindowDistinctCount<'s, D> for StreamVec<'s, EventTime, D> {
    fn window_distinct_count<KF, VF>(
        self,
        name: &str,
        windows: &Tumbling,
        key_ts: KF,
        value: VF,
    ) -> StreamVec<'s, EventTime, (WindowKey, u64)>
    where
        KF: Fn(&D) -> (u64, EventTime) + 'static,
        VF: Fn(&D) -> u64 + 'static,
    {
        self.window_fold_distinct(
            name,
            windows,
            key_ts,
            value,
            |distinct: &mut u64, _d: &D, first: bool| *distinct += u64::from(first),
            |wk, distinct| Some((wk, *distinct)),
        )
    }
}
