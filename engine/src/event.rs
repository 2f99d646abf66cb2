//! The records that flow through the dataflow, one per input row that passed
//! validation. They are compact and `Copy` (no strings, no heap): phone
//! numbers are [`Token`]s, positions micro-degree [`Point`]s, unit ids
//! [`UnitToken`]s, vocabularies enums.
//!
//! Every event carries:
//! - `seq`: its source position, the same whatever the worker count: in a
//!   replay `(table, file, row)` packed into 64 bits ([`crate::share::position`]),
//!   in the live engine the arrival order. Operators that buffer events sort by
//!   `(time, seq)`, which makes their output deterministic.
//! - `ts_ms`: the event time it travels at, which is also its timely
//!   timestamp: the row's own time, except for a late event, whose `ts_ms` is
//!   set to its share's watermark when it was admitted
//!   ([`crate::admission::Admission::admit`], [`crate::lateness`]) and which
//!   has `late` set. Its row's own time is not kept.

use crate::contract::{AlarmSource, CallPhase, Category, PatrolStatus};
use crate::geo::Point;
use crate::pseudonym::{NumberClass, Token};

/// A patrol unit's id as a stable 64-bit hash (FNV-1a of the `unit_id` string);
/// the name is kept in a [`crate::reference::UnitDirectory`].
pub type UnitToken = u64;

/// A unit id's token: [`stable_key`] of the `unit_id` string.
pub fn unit_token(unit_id: &str) -> UnitToken {
    stable_key(unit_id)
}

/// The one stable hash of string keys (unit ids, community ids, any id a
/// model exchanges or keys its state by): 64-bit FNV-1a of the UTF-8 bytes.
/// The same on every worker, process, machine and release, so it can decide
/// which worker owns a key and be stored; not secret (phone numbers are
/// keyed by their pseudonyms, [`crate::pseudonym`]), and not for hash maps
/// exposed to untrusted keys (use the default hasher there).
pub fn stable_key(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One call signalling event (`calls` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CallEvent {
    /// Event time, ms since the epoch.
    pub ts_ms: u64,
    /// Source position (see the module doc).
    pub seq: u64,
    /// Shared by the call's start and end rows.
    pub call_id: u64,
    /// `start` (answered) or `end` (released).
    pub phase: CallPhase,
    /// Caller's pseudonym.
    pub caller: Token,
    /// Callee's pseudonym.
    pub callee: Token,
    /// What the caller's number looks like (international, virtual, spoofed...).
    pub caller_class: NumberClass,
    /// What the callee's number looks like.
    pub callee_class: NumberClass,
    /// Caller's serving cell position; `None` when roaming abroad.
    pub caller_pos: Option<Point>,
    /// Callee's serving cell position.
    pub callee_pos: Option<Point>,
    /// Talk time in seconds (end rows).
    pub duration_s: Option<u32>,
    /// Arrived later than the allowed lateness.
    pub late: bool,
}

/// One alarm (`alarms` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AlarmEvent {
    /// Event time (received), ms since the epoch.
    pub ts_ms: u64,
    /// Source position (see the module doc).
    pub seq: u64,
    /// The alarm's id.
    pub alarm_id: u64,
    /// What happened.
    pub category: Category,
    /// 1 (most urgent) to 4.
    pub priority: u8,
    /// Incident location.
    pub pos: Point,
    /// Pseudonym of the number that reported it.
    pub reporter: Option<Token>,
    /// On `fraud_report`: pseudonym of the number that defrauded the reporter.
    pub suspect: Option<Token>,
    /// Class of the suspect number.
    pub suspect_class: NumberClass,
    /// Where the alarm came from.
    pub source: AlarmSource,
    /// Arrived later than the allowed lateness.
    pub late: bool,
}

/// One patrol GPS fix or status change (`patrols` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PatrolEvent {
    /// Event time, ms since the epoch.
    pub ts_ms: u64,
    /// Source position (see the module doc).
    pub seq: u64,
    /// The unit.
    pub unit: UnitToken,
    /// Where it is.
    pub pos: Point,
    /// Its status.
    pub status: PatrolStatus,
    /// The alarm a dispatched / en-route / on-scene unit serves.
    pub alarm_id: Option<u64>,
    /// Arrived later than the allowed lateness.
    pub late: bool,
}

/// Any stream event, as a replay's sources read them. Serialisable for the live
/// engine's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A call event.
    Call(CallEvent),
    /// An alarm.
    Alarm(AlarmEvent),
    /// A patrol event.
    Patrol(PatrolEvent),
}

impl Event {
    /// Event time.
    pub fn ts_ms(&self) -> u64 {
        match self {
            Event::Call(e) => e.ts_ms,
            Event::Alarm(e) => e.ts_ms,
            Event::Patrol(e) => e.ts_ms,
        }
    }

    /// Sets the event time it is processed at (the watermark, for a late event).
    pub fn set_ts(&mut self, ts_ms: u64) {
        match self {
            Event::Call(e) => e.ts_ms = ts_ms,
            Event::Alarm(e) => e.ts_ms = ts_ms,
            Event::Patrol(e) => e.ts_ms = ts_ms,
        }
    }

    /// Sets the source position and lateness flag.
    pub fn stamp(&mut self, seq: u64, late: bool) {
        match self {
            Event::Call(e) => (e.seq, e.late) = (seq, late),
            Event::Alarm(e) => (e.seq, e.late) = (seq, late),
            Event::Patrol(e) => (e.seq, e.late) = (seq, late),
        }
    }

    /// The source position.
    pub fn seq(&self) -> u64 {
        match self {
            Event::Call(e) => e.seq,
            Event::Alarm(e) => e.seq,
            Event::Patrol(e) => e.seq,
        }
    }

    /// Whether it arrived later than the allowed lateness.
    pub fn late(&self) -> bool {
        match self {
            Event::Call(e) => e.late,
            Event::Alarm(e) => e.late,
            Event::Patrol(e) => e.late,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_stay_small() {
        // Compact records are the point: keep an eye on their size.
        assert!(std::mem::size_of::<super::CallEvent>() <= 80);
        assert!(std::mem::size_of::<super::PatrolEvent>() <= 56);
    }
}

/// What every stream event offers an operator that processes in event-time order.
pub trait Timed {
    /// Event time (ms) the event is processed at.
    fn ts_ms(&self) -> u64;
    /// Position in the merged input: the deterministic tie-break.
    fn seq(&self) -> u64;
}

macro_rules! timed {
    ($($t:ty),*) => {$(
        impl Timed for $t {
            #[inline]
            fn ts_ms(&self) -> u64 { self.ts_ms }
            #[inline]
            fn seq(&self) -> u64 { self.seq }
        }
    )*};
}
timed!(CallEvent, AlarmEvent, PatrolEvent);
