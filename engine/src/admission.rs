//! Admission: what every event goes through before a model sees it, the same
//! in a replay and in live mode.
//!
//! - [`Admission`] (one per share of the input: a Parquet row group in a
//!   replay, the whole ingest in live mode) numbers rows with their source
//!   position `seq` and applies the share's watermark: a row below it is late
//!   and travels at the watermark (see [`crate::lateness`]).
//! - [`Pairing`] checks call rows: an `end` needs an open `start` of its call
//!   before it, and a call has one open start at a time. A replay checks in
//!   the dataflow, one row at a time in `(ts_ms, seq)` order once calls are
//!   exchanged by `call_id` ([`Pairing::check`]); live mode checks a request
//!   whole against the open calls before anything of it is applied
//!   ([`Pairing::check_request`], then [`Pairing::apply`]), without copying
//!   the open calls.
//!
//! A replay's shares and the live ingest differ only in where rows come from
//! and how `seq` starts: a replay's row is numbered by its place in the input
//! ([`crate::share::position`]), the live ingest's by arrival.

use std::path::Path;

use crate::EventTime;
use crate::contract::{CallPhase, Table};
use crate::event::{CallEvent, Event};
use crate::hash::{FastMap, FastSet};
use crate::lateness::Watermark;
use crate::reject::Rejected;

/// Admission of one share of the input: source positions and the watermark.
///
/// Cheap to clone (three words): live mode stamps a request on a copy and
/// keeps it only once the request is journaled.
#[derive(Debug, Clone)]
pub struct Admission {
    watermark: Watermark,
    /// The source position the next row gets.
    next_seq: u64,
}

impl Admission {
    /// A share whose first row is at source position `first_seq`.
    pub fn new(lateness_ms: u64, first_seq: u64) -> Self {
        Admission { watermark: Watermark::new(lateness_ms), next_seq: first_seq }
    }

    /// Admits the next row, an event: stamps its source position and its late
    /// flag, and sets the time it travels at (its own, or the watermark when
    /// late, and never before `not_before`). Returns whether it is late.
    #[inline]
    pub fn admit(&mut self, event: &mut Event, not_before: EventTime) -> bool {
        let (time, late) = self.watermark.admit(event.ts_ms());
        event.stamp(self.next_seq, late);
        event.set_ts(time.max(not_before));
        self.next_seq += 1;
        late
    }

    /// Passes over the next row without an event (a rejected row keeps its
    /// position, so that the positions of the rows after it stay the same).
    #[inline]
    pub fn skip(&mut self) {
        self.next_seq += 1;
    }

    /// The next row is at source position `seq` (a log's run of records that
    /// starts after a gap in its offsets; never backwards).
    pub fn seek(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    /// Records that event time has reached `now_ms` without an event (a clock tick).
    pub fn observe(&mut self, now_ms: EventTime) {
        self.watermark.observe(now_ms);
    }

    /// Restores a journaled event: its position and time are kept, and the
    /// next row is numbered after it.
    pub fn restored(&mut self, event: &Event) {
        self.next_seq = self.next_seq.max(event.seq() + 1);
    }

    /// The share's watermark: no later row travels before it.
    pub fn watermark(&self) -> EventTime {
        self.watermark.current()
    }

    /// The largest event time seen (what a restored watermark starts from).
    pub fn max_seen(&self) -> Option<EventTime> {
        self.watermark.max_seen()
    }
}

/// Why a call row was refused by [`Pairing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpaired {
    /// A `start` while the call already has an open start.
    DuplicateStart,
    /// An `end` with no open start before it.
    EndWithoutStart,
}

impl Unpaired {
    /// The dead-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Unpaired::DuplicateStart => "duplicate_start",
            Unpaired::EndWithoutStart => "end_without_start",
        }
    }

    /// The reason, for people, naming the call.
    pub fn reason(self, call_id: u64) -> String {
        match self {
            Unpaired::DuplicateStart => format!("call_id {call_id} already has an open start row"),
            Unpaired::EndWithoutStart => format!("end row of call_id {call_id} has no open start row before it"),
        }
    }

    /// The dead-letter row for `call`, at `row` of `file`.
    pub fn rejected(self, call: &CallEvent, file: &Path, row: u64) -> Rejected {
        Rejected::new(Table::Calls, file, row, Some("call_id"), self.code(), self.reason(call.call_id))
    }
}

/// The open calls, for the pairing check (see the module doc).
#[derive(Default)]
pub struct Pairing {
    open: FastSet<u64>,
}

impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing").field("open", &self.open.len()).finish()
    }
}

/// What a request accepted by [`Pairing::check_request`] changes: call id ->
/// open after the request.
#[derive(Debug, Default)]
pub struct PairingChanges(FastMap<u64, bool>);

impl Pairing {
    /// Checks the next call row and applies it; `Err` when it is refused
    /// (and changes nothing).
    #[inline]
    pub fn check(&mut self, call: &CallEvent) -> Result<(), Unpaired> {
        match call.phase {
            CallPhase::Start if !self.open.insert(call.call_id) => Err(Unpaired::DuplicateStart),
            CallPhase::End if !self.open.remove(&call.call_id) => Err(Unpaired::EndWithoutStart),
            _ => Ok(()),
        }
    }

    /// Checks a request's call rows, in order, against the open calls and the
    /// request's own earlier rows, changing nothing: either what applying them
    /// changes, or every refused row as `(index, why)`.
    pub fn check_request<'a>(
        &self,
        calls: impl IntoIterator<Item = (usize, &'a CallEvent)>,
    ) -> Result<PairingChanges, Vec<(usize, Unpaired)>> {
        let mut changes = PairingChanges::default();
        let mut refused = Vec::new();
        for (i, c) in calls {
            let open = changes.0.get(&c.call_id).copied().unwrap_or_else(|| self.open.contains(&c.call_id));
            match c.phase {
                CallPhase::Start if open => refused.push((i, Unpaired::DuplicateStart)),
                CallPhase::End if !open => refused.push((i, Unpaired::EndWithoutStart)),
                phase => {
                    changes.0.insert(c.call_id, phase == CallPhase::Start);
                }
            }
        }
        if refused.is_empty() { Ok(changes) } else { Err(refused) }
    }

    /// Applies what [`Pairing::check_request`] accepted.
    pub fn apply(&mut self, changes: PairingChanges) {
        for (call_id, open) in changes.0 {
            if open {
                self.open.insert(call_id);
            } else {
                self.open.remove(&call_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::call_event;

    #[test]
    fn pairing_refuses_ends_without_start_and_second_starts() {
        let mut p = Pairing::default();
        assert_eq!(p.check(&call_event(1, CallPhase::End, 0)), Err(Unpaired::EndWithoutStart));
        assert_eq!(p.check(&call_event(1, CallPhase::Start, 0)), Ok(()));
        assert_eq!(p.check(&call_event(1, CallPhase::Start, 0)), Err(Unpaired::DuplicateStart));
        assert_eq!(p.check(&call_event(1, CallPhase::End, 0)), Ok(()));
        assert_eq!(p.check(&call_event(1, CallPhase::End, 0)), Err(Unpaired::EndWithoutStart));
    }

    #[test]
    fn a_request_is_checked_whole_and_applied_only_when_asked() {
        let mut p = Pairing::default();
        p.check(&call_event(7, CallPhase::Start, 0)).unwrap();
        let (start, end) = (call_event(8, CallPhase::Start, 0), call_event(8, CallPhase::End, 0));
        let again = call_event(7, CallPhase::Start, 0);
        // Call 8 starts and ends within the request; call 7 is open already.
        let refused = p.check_request([(0, &start), (1, &end), (2, &again)]).unwrap_err();
        assert_eq!(refused, vec![(2, Unpaired::DuplicateStart)]);
        let open_8 = p.check_request([(0, &start)]).unwrap();
        assert_eq!(p.check(&end), Err(Unpaired::EndWithoutStart), "nothing applied before `apply`");
        p.apply(open_8);
        assert_eq!(p.check(&end), Ok(()));
    }

    #[test]
    fn admission_numbers_rows_skips_rejected_ones_and_marks_late_rows() {
        let mut a = Admission::new(1_000, 100);
        let mut e = Event::Call(call_event(1, CallPhase::Start, 10_000));
        assert!(!a.admit(&mut e, 0));
        assert_eq!((e.seq(), e.ts_ms()), (100, 10_000));
        a.skip();
        let mut late = Event::Call(call_event(2, CallPhase::Start, 8_000));
        assert!(a.admit(&mut late, 0));
        assert_eq!((late.seq(), late.ts_ms(), late.late()), (102, 9_000, true), "at the watermark");
        let mut held = Event::Call(call_event(3, CallPhase::Start, 9_500));
        assert!(!a.admit(&mut held, 9_800));
        assert_eq!(held.ts_ms(), 9_800, "never before the share's bound");
    }
}
