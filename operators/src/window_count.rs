//! Keyed windowed count: events per key and epoch-aligned tumbling event-time
//! window (a hotspot model's alarms per cell, a fraud model's calls per caller).
//!
//! - **Input**: records `D`; `key_ts(&d)` gives the 64-bit key and the event time
//!   in ms. Timely time is the watermark (a record's timely time is at most its
//!   event time), as for [`WindowFold`].
//! - **Output**: `(WindowKey, count)` for every key with at least one event in the
//!   window, sent at the window end once the input frontier reaches it.
//! - **State, time semantics, lateness, exchange**: those of
//!   [`WindowFold::window_fold`], with a `u64` per key and open window.
//! - **Cost per update**: one hash-map increment (plus the open-window lookup).

use citywatch_engine::EventTime;
use timely::ExchangeData;
use timely::dataflow::StreamVec;

use crate::window_fold::{Tumbling, WindowFold, WindowKey};

/// Extension trait: keyed windowed count (see the module doc).
pub trait WindowCount<'s, D: ExchangeData> {
    /// Counts records per key and window of `windows`.
    fn window_count<KF>(self, name: &str, windows: &Tumbling, key_ts: KF) -> StreamVec<'s, EventTime, (WindowKey, u64)>
    where
        KF: Fn(&D) -> (u64, EventTime) + 'static;
}

impl<'s, D: ExchangeData> WindowCount<'s, D> for StreamVec<'s, EventTime, D> {
    fn window_count<KF>(self, name: &str, windows: &Tumbling, key_ts: KF) -> StreamVec<'s, EventTime, (WindowKey, u64)>
    where
        KF: Fn(&D) -> (u64, EventTime) + 'static,
    {
        self.window_fold(name, windows, key_ts, |count: &mut u64, _d: &D| *count += 1, |wk, count| Some((wk, *count)))
    }
}
