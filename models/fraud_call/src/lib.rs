//! Model `fraud_call`: telecom fraud calls recognised while the call is in
//! progress, so the community officer can warn the callee before money moves.
//!
//! Three alert kinds (see `README.md`, the model card):
//! - `fraud_in_progress`: a call from a risky caller still open at a decision
//!   point (`early_checks_s`, then `open_s` seconds after it was answered);
//!   fires at that event time, only if no end row stamped at or before it was
//!   seen, at the first point where the probability reaches the threshold. Routed to the community officer of the callee's
//!   home (else the callee's serving cell). Subject: the callee.
//! - `fraud_exposure`: a `fraud_report` alarm names a number; every other callee
//!   of that number whose call ended in the previous 72 h and lasted at least
//!   `exposure_min_talk_s` gets one alert (once per number and callee within the
//!   window). Subject: the callee.
//! - `fraud_number`: a number named in a report, or whose risk passed
//!   `number_threshold`, once per number per UTC day, for the city analysts.
//!
//! **Dataflow** (two ordered operators, both [`Deadlines`]):
//! 1. *Exposure*: call end rows exchanged by caller, fraud reports exchanged by
//!    the suspect number (same key, same worker). Keeps each caller's ended
//!    calls of the last 72 h; on a report emits the exposure alerts and one
//!    *link* per callee of the reported number.
//! 2. *Risk*: all call rows exchanged by caller, plus one `Received` row per
//!    answered call exchanged by callee (so a caller's own received calls are
//!    known: the "only calls out" signal); reports and links broadcast
//!    (they are rare). Keeps compact per-caller state (the calls of the last
//!    24 h, capped; a small LRU of recent contacts), sets one timer per call at
//!    its first decision point (the next one set when a check does not alert),
//!    and at the timer, if the call is still open, computes the
//!    features and the score ([`features::score`]).
//!
//! Both operators handle events in `(ts_ms, seq)` order, so the alerts depend
//! only on the data. State is bounded: per-caller windows are capped and callers
//! idle for `idle_expiry_h` are dropped by a sweep every [`SWEEP_MS`] (which is
//! unobservable: a caller idle that long would be reset anyway). [`reference`]
//! is the plain single-threaded implementation the dataflow must match.
#![deny(missing_docs)]

pub mod eval;
pub mod features;
pub mod learned;
pub mod reference;
pub mod rule;
pub mod train;

use std::collections::HashMap;
use std::sync::Arc;

use citywatch_engine::alert::AlertDraft;
use citywatch_engine::contract::{CallPhase, Category};
use citywatch_engine::event::{AlarmEvent, CallEvent, Event, Timed};
use citywatch_engine::model::{Inputs, Model};
use citywatch_engine::pseudonym::{NumberClass, Token};
use citywatch_engine::reference::{Reference, Subscribers};
use citywatch_engine::{Error, EventTime, Result};
use citywatch_operators::deadline::{Deadlines, Step};
use smallvec::SmallVec;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Concat;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::vec::{Broadcast, Filter, Map};

use crate::features::{Features, NumberReason, PastCall, day_of, draft_exposure, draft_in_progress, draft_number};
pub use crate::learned::Learned;

/// The default `precision_target`: the in-progress threshold is the one the
/// weights file lists for this precision on its training decisions weighted
/// to today's fraud rate (see the card, "Threshold").
pub const DEFAULT_PRECISION_TARGET: f64 = 0.6;

/// Settings, with the defaults the card explains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A call still open this long after it was answered is judged, seconds:
    /// the last decision point.
    pub open_s: u64,
    /// Earlier decision points while the call is open, seconds after it was
    /// answered (ascending, each below `open_s`): a call still open is judged
    /// at each of them and at `open_s`, and raises `fraud_in_progress` at the
    /// first where the probability reaches the threshold (then it is judged no
    /// more). Unset: the points the weights file was trained with (its
    /// `early_checks_s`; none for a file that lists none).
    pub early_checks_s: Option<Vec<u64>>,
    /// Probability at or above which an open call raises `fraud_in_progress`.
    /// Unset: the weights file's threshold for `precision_target`.
    pub in_progress_threshold: Option<f64>,
    /// Precision on the training decisions, weighted to the deployment's fraud
    /// rate (the weights file's `prevalence`), that the in-progress threshold is
    /// chosen for (one of the weights file's `thresholds` rows: the smallest
    /// listed target at or above it), when `in_progress_threshold` is unset.
    /// Default [`DEFAULT_PRECISION_TARGET`]; in a city with more fraud per call
    /// the same threshold gives higher precision (the card gives both).
    pub precision_target: f64,
    /// Probability at or above which the number is raised as `fraud_number`
    /// (and the in-progress alert is `severe`). Unset: the weights file's.
    pub number_threshold: Option<f64>,
    /// A weights file written by `citywatch train fraud_call` (unset: the
    /// committed `weights/fraud_call.json`).
    pub weights_file: Option<String>,
    /// Score points added for a vulnerable callee (severity only, never the decision).
    pub vulnerable_bonus: f64,
    /// Callees this old or older are vulnerable.
    pub elderly_age: u8,
    /// Callees younger than this are vulnerable.
    pub minor_age: u8,
    /// Burst window, seconds.
    pub burst_window_s: u64,
    /// A call shorter than this is short, seconds.
    pub short_call_s: u32,
    /// A call shorter than this is a hang-up, seconds.
    pub very_short_call_s: u32,
    /// A callee is a known contact if called within this many hours (and among the last `contacts` ones).
    pub contact_memory_h: u64,
    /// Contacts remembered per caller (an LRU).
    pub contacts: usize,
    /// Calls of the last 24 h kept per caller (the most recent ones).
    pub recent_cap: usize,
    /// Reports are remembered this many hours.
    pub report_memory_h: u64,
    /// Exposure window (and link memory), hours.
    pub exposure_window_h: u64,
    /// A callee who talked at least this long is exposed, seconds.
    pub exposure_min_talk_s: u32,
    /// Ended calls kept per caller for exposure (the most recent ones).
    pub exposure_cap: usize,
    /// A caller with no call for this long is forgotten, hours (at least 24 and `contact_memory_h`).
    pub idle_expiry_h: u64,
    /// The learned model (from `weights_file`, else the committed weights).
    #[serde(skip)]
    pub model: Arc<Learned>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            open_s: 120,
            early_checks_s: None,
            in_progress_threshold: None,
            precision_target: DEFAULT_PRECISION_TARGET,
            number_threshold: None,
            weights_file: None,
            vulnerable_bonus: 0.25,
            elderly_age: 60,
            minor_age: 18,
            burst_window_s: 600,
            short_call_s: 60,
            very_short_call_s: 15,
            contact_memory_h: 7 * 24,
            contacts: 48,
            recent_cap: 256,
            report_memory_h: 30 * 24,
            exposure_window_h: 72,
            exposure_min_talk_s: 120,
            exposure_cap: 512,
            idle_expiry_h: 7 * 24,
            model: Learned::committed(),
        }
    }
}

/// The per-caller and per-call maps: keyed by pseudonyms and call ids, which are
/// already well mixed, so a fast fixed hasher (no SipHash) is enough; their
/// iteration order never reaches an output.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

const HOUR_MS: u64 = 3_600_000;

/// How often expired state is swept out, in event time. Sweeps only free
/// memory (every read filters by time itself), and each one visits every
/// number: with hourly sweeps `HashMap::retain` was 9.2% of the CPU samples
/// of a replay of the 1M city (1.7% with these). Six hours keeps expired
/// entries at most that much longer than the 72 h / 7 day windows they outlive.
pub const SWEEP_MS: u64 = 6 * HOUR_MS;

impl Config {
    /// Idle expiry, ms, never shorter than the longest per-caller window.
    pub fn idle_ms(&self) -> u64 {
        (self.idle_expiry_h.max(24).max(self.contact_memory_h)) * HOUR_MS
    }
    /// The earlier decision points in force, seconds (see `early_checks_s`).
    pub fn early_checks(&self) -> &[u64] {
        self.early_checks_s.as_deref().unwrap_or(&self.model.file.early_checks_s)
    }

    /// The first decision point of a call, seconds after it was answered.
    pub fn first_check_s(&self) -> u64 {
        self.early_checks().first().copied().unwrap_or(self.open_s)
    }

    /// The decision point after the one `open_s` seconds into a call, if any.
    pub fn next_check_s(&self, open_s: u64) -> Option<u64> {
        self.early_checks().iter().copied().chain([self.open_s]).find(|&p| p > open_s)
    }

    /// The in-progress threshold in force.
    pub fn threshold(&self) -> f64 {
        self.in_progress_threshold.unwrap_or_else(|| {
            self.model.file.threshold_for_precision(self.precision_target).unwrap_or(self.model.file.threshold)
        })
    }

    /// The number threshold in force.
    pub fn high_threshold(&self) -> f64 {
        self.number_threshold.unwrap_or(self.model.file.number_threshold)
    }

    /// The caller's probability of fraud at `at_ms` from its features.
    pub fn score(&self, f: &Features, at_ms: u64) -> f64 {
        self.model.prob(f, at_ms)
    }

    /// Checks the settings against each other and the weights file.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, t) in
            [("in_progress_threshold", self.in_progress_threshold), ("number_threshold", self.number_threshold)]
        {
            if let Some(t) = t
                && !(0.0..=1.0).contains(&t)
            {
                return Err(format!("{name} {t} is not a probability; give a value in 0..=1"));
            }
        }
        if self.in_progress_threshold.is_none()
            && self.model.file.threshold_for_precision(self.precision_target).is_none()
        {
            let listed: Vec<f64> = self.model.file.thresholds.iter().map(|r| r[0]).collect();
            return Err(format!(
                "precision_target {} is above every target the weights file lists ({listed:?}); give one of those, \
                 or set in_progress_threshold",
                self.precision_target
            ));
        }
        if self.open_s == 0 {
            return Err("open_s must be at least 1".into());
        }
        let early = self.early_checks();
        if early.first().is_some_and(|&p| p == 0)
            || early.windows(2).any(|w| w[0] >= w[1])
            || early.last().is_some_and(|&p| p >= self.open_s)
        {
            return Err(format!(
                "early_checks_s {early:?}: give ascending points of at least 1 s, each below open_s {}",
                self.open_s
            ));
        }
        if self.contacts == 0 || self.recent_cap == 0 || self.exposure_cap == 0 {
            return Err("contacts, recent_cap and exposure_cap must be at least 1".into());
        }
        Ok(())
    }

    /// `configure`'s check: loads `weights_file` if one is given, then
    /// checks the thresholds and capacities against it.
    fn load_and_check(&mut self) -> Result<()> {
        let what = "settings of model `fraud_call`";
        if let Some(path) = &self.weights_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| Error::config(what, format!("weights_file {path}: {e}")))?;
            self.model = Arc::new(Learned::parse(&text, path).map_err(|e| Error::config(what, e))?);
        }
        self.validate().map_err(|e| Error::config(what, e))
    }
}

/// The model.
#[derive(Debug, Clone, Default)]
pub struct FraudCall {
    /// Its settings.
    pub config: Config,
    /// Where to record every in-progress decision with its features (for
    /// `citywatch train`); `None` in service.
    pub tap: Option<Tap>,
}

/// One in-progress decision: the call, when, and the caller's features then.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// The call judged.
    pub call_id: u64,
    /// Its caller.
    pub caller: Token,
    /// The decision time.
    pub at_ms: u64,
    /// The caller's features at that time.
    pub features: Features,
}

/// The decisions of a replay, from every worker (training only).
pub type Tap = Arc<std::sync::Mutex<Vec<Decision>>>;

/// A report or a link, as the risk operator receives them (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Notice {
    /// A fraud report naming `suspect`.
    Report {
        /// Event time of the report.
        ts_ms: u64,
        /// Its merge position.
        seq: u64,
        /// The number named.
        suspect: Token,
    },
    /// `callee` had been called by the reported `number` (stamped with the report).
    Link {
        /// Event time of the report.
        ts_ms: u64,
        /// The report's merge position.
        seq: u64,
        /// The shared callee.
        callee: Token,
        /// The reported number.
        number: Token,
    },
}

impl Timed for Notice {
    fn ts_ms(&self) -> u64 {
        match self {
            Notice::Report { ts_ms, .. } | Notice::Link { ts_ms, .. } => *ts_ms,
        }
    }
    fn seq(&self) -> u64 {
        match self {
            Notice::Report { seq, .. } | Notice::Link { seq, .. } => *seq,
        }
    }
}

/// A call row as the risk operator receives it: by caller, and (for answered
/// calls) once more by callee, so a number's own received calls are known.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Row {
    /// A start or end row, keyed by the caller.
    Call(CallEvent),
    /// `number` answered a call (at the start row's time and seq), keyed by `number`.
    Received { ts_ms: u64, seq: u64, number: Token },
}

/// The calls stream, read once, as the two streams the model needs: the end
/// rows (for exposure) and every row with a `Received` row after each start
/// (for risk). With two operators reading `calls`, the first would get its
/// own copy of every message (a timely stream copies its data for each
/// reader but the last), ~100 bytes a call.
fn split_calls<'s>(
    calls: StreamVec<'s, EventTime, CallEvent>,
) -> (StreamVec<'s, EventTime, CallEvent>, StreamVec<'s, EventTime, Row>) {
    let mut builder = OperatorBuilder::new("FraudSplitCalls".to_owned(), calls.scope());
    let mut input = builder.new_input(calls, Pipeline);
    let (ends, ends_stream) = builder.new_output();
    let (rows, rows_stream) = builder.new_output();
    let (mut ends, mut rows) = (OutputBuilder::from(ends), OutputBuilder::from(rows));
    builder.build(move |_| {
        move |_frontiers| {
            let (mut ends, mut rows) = (ends.activate(), rows.activate());
            input.for_each_stamp(|cap, data| {
                let (mut ends, mut rows) = (ends.session(&cap), rows.session(&cap));
                for e in data.flat_map(|d| d.drain(..)) {
                    rows.give(Row::Call(e));
                    match e.phase {
                        CallPhase::Start => rows.give(Row::Received { ts_ms: e.ts_ms, seq: e.seq, number: e.callee }),
                        CallPhase::End => ends.give(e),
                    }
                }
            });
        }
    });
    (ends_stream, rows_stream)
}

impl Row {
    fn key(&self) -> Token {
        match self {
            Row::Call(e) => e.caller,
            Row::Received { number, .. } => *number,
        }
    }
}

impl Timed for Row {
    fn ts_ms(&self) -> u64 {
        match self {
            Row::Call(e) => e.ts_ms,
            Row::Received { ts_ms, .. } => *ts_ms,
        }
    }
    fn seq(&self) -> u64 {
        match self {
            Row::Call(e) => e.seq,
            Row::Received { seq, .. } => *seq,
        }
    }
}

/// Output of the exposure operator.
#[derive(Debug, Clone)]
enum ExposureOut {
    Alert(AlertDraft),
    Link(Notice),
}

/// Exposure operator state (per worker).
#[derive(Default)]
struct Exposure {
    /// Each caller's ended calls of the last `exposure_window_h`, in end order
    /// (capped), never empty.
    history: FastMap<Token, History>,
    /// Callees alerted per reported number, with when (once per window). Only
    /// reported numbers have any: a map of its own costs no field in every
    /// caller's entry.
    exposed: FastMap<Token, Vec<(Token, u64)>>,
    next_sweep_ms: u64,
}

/// One caller's ended calls for exposure: 48 bytes (`exposure_state_is_compact`),
/// one call inline, so a caller of one ended call allocates nothing.
type History = SmallVec<[PastCall; 1]>;

/// A recent call start of a caller.
#[derive(Debug, Clone, Copy)]
struct Recent {
    ts_ms: u64,
    callee: Token,
    call_id: u64,
    /// Talk time once ended; `OPEN` until then.
    dur_s: u32,
    /// No prior contact with the callee when the call started.
    new_callee: bool,
    /// [`features::nearness`] of the call (in the padding: `Recent` stays 32 bytes).
    near: u8,
}

const OPEN: u32 = u32::MAX;

/// `Caller::number_day` before the caller's first `fraud_number` alert.
const NO_DAY: u32 = u32::MAX;

/// Risk operator state of one caller: 80 bytes (`caller_state_is_compact`),
/// with no heap allocation for a caller of one call (60% of the callers on the
/// 1M city; 2.33 calls on average), as both windows keep one entry inline.
struct Caller {
    first_seen_ms: u64,
    /// The calls of the last 24 h, oldest first, at most `recent_cap`. Never
    /// empty once the caller's first start row is handled (the row just pushed
    /// is neither expired nor over a cap of at least 1), so its last entry is
    /// the last call start: see [`Caller::last_start_ms`].
    recent: SmallVec<[Recent; 1]>,
    /// The LRU of recent contacts, least recently called first: (callee, time
    /// of its last call). Rows reach the operator in `(ts_ms, seq)` order, so
    /// moving a touched callee to the back keeps this the order of the
    /// `(ts, seq)` stamps of the last calls: the front is the least recently
    /// called without storing the seq.
    contacts: SmallVec<[(Token, u64); 1]>,
    /// UTC day of the last `fraud_number` alert, [`NO_DAY`] if none (a u32
    /// counts days from the epoch for 11 million years).
    number_day: u32,
    class: NumberClass,
}

impl Caller {
    fn new(class: NumberClass, now: u64) -> Self {
        Caller { first_seen_ms: now, recent: SmallVec::new(), contacts: SmallVec::new(), number_day: NO_DAY, class }
    }

    /// Time of the caller's last call start (its first-seen time before its
    /// first row is pushed).
    fn last_start_ms(&self) -> u64 {
        self.recent.last().map_or(self.first_seen_ms, |r| r.ts_ms)
    }

    /// Records a `fraud_number` alert at `at_ms`; false if one was already
    /// raised for the caller that UTC day.
    fn mark_number_day(&mut self, at_ms: u64) -> bool {
        let day = day_of(at_ms) as u32;
        let fresh = self.number_day != day;
        self.number_day = day;
        fresh
    }
}

/// Drops the front of a window kept oldest first (times never decrease): the
/// expired prefix, and the oldest entries beyond `cap`. This is what popping
/// the front of a ring while it is expired or the window is over `cap` drops,
/// in one move of the rest.
fn trim_front<T>(window: &mut SmallVec<[T; 1]>, cap: usize, expired: impl Fn(&T) -> bool) {
    let k = window.iter().take_while(|x| expired(x)).count().max(window.len().saturating_sub(cap));
    if k > 0 {
        window.drain(..k);
    }
}

/// Per-worker state of the risk operator.
#[derive(Default)]
struct Risk {
    callers: FastMap<Token, Caller>,
    /// Calls waiting for their timer: call_id -> start row.
    open: FastMap<u64, CallEvent>,
    /// Ends processed before their start (a late end row stamped earlier): call_id -> (talk s, ts).
    early_ends: FastMap<u64, (u32, u64)>,
    /// Reports by number: their times.
    reports: FastMap<Token, Vec<u64>>,
    /// Links by callee: (reported number, report time).
    links: FastMap<Token, Vec<(Token, u64)>>,
    /// When each number last answered a call (kept within the contact memory).
    received: FastMap<Token, u64>,
    /// Scratch buffer for distinct counts (no per-event allocation).
    scratch: Vec<Token>,
    next_sweep_ms: u64,
}

/// Talk time of an end row (0 when the row has none).
pub fn talk_s(end: &CallEvent) -> u32 {
    end.duration_s.unwrap_or(0)
}

impl Exposure {
    /// The look-ahead of [`Deadlines::deadlines_touching`]: the lines an end
    /// row will write (the caller's entry and its last ended call), read now.
    fn touch(&self, end: &CallEvent) {
        std::hint::black_box(self.history.get(&end.caller).and_then(|h| h.last()).map(|p| p.end_ms));
    }

    /// Drops expired history and exposures, every [`SWEEP_MS`] of event time.
    fn sweep_if_due(&mut self, c: &Config, now: u64) {
        if now < self.next_sweep_ms {
            return;
        }
        let window = c.exposure_window_h * HOUR_MS;
        self.history.retain(|_, h| {
            trim_front(h, c.exposure_cap, |p| p.end_ms + window <= now);
            !h.is_empty()
        });
        self.exposed.retain(|_, v| {
            v.retain(|&(_, t)| t + window > now);
            !v.is_empty()
        });
        self.next_sweep_ms = now + SWEEP_MS;
    }

    /// An ended call joins its caller's history.
    fn on_end(&mut self, c: &Config, end: &CallEvent, now: u64) {
        let window = c.exposure_window_h * HOUR_MS;
        let h = self.history.entry(end.caller).or_default();
        h.push(PastCall {
            call_id: end.call_id,
            callee: end.callee,
            end_ms: end.ts_ms,
            duration_s: talk_s(end),
            callee_pos: end.callee_pos,
        });
        trim_front(h, c.exposure_cap, |p| p.end_ms + window <= now);
    }

    /// A report naming a number: a link for each of its callees in the
    /// window, and an exposure alert for each who talked long enough (once
    /// per number and callee within the window).
    fn on_report(
        &mut self,
        c: &Config,
        subs: &Subscribers,
        report: &AlarmEvent,
        now: u64,
        emit: &mut impl FnMut(ExposureOut),
    ) {
        let window = c.exposure_window_h * HOUR_MS;
        let Some(number) = report.suspect else { return };
        let Some(history) = self.history.get(&number) else { return };
        let mut exposed = self.exposed.remove(&number).unwrap_or_default();
        exposed.retain(|&(_, t)| t + window > now);
        for p in history.iter().filter(|p| p.end_ms + window > now) {
            emit(ExposureOut::Link(Notice::Link { ts_ms: report.ts_ms, seq: report.seq, callee: p.callee, number }));
            if p.duration_s >= c.exposure_min_talk_s
                && Some(p.callee) != report.reporter
                && !exposed.iter().any(|&(callee, _)| callee == p.callee)
            {
                exposed.push((p.callee, now));
                emit(ExposureOut::Alert(draft_exposure(c, subs, number, p, report.ts_ms, report.alarm_id)));
            }
        }
        if !exposed.is_empty() {
            self.exposed.insert(number, exposed);
        }
    }
}

impl Risk {
    /// The look-ahead of [`Deadlines::deadlines_touching`]: the lines a row
    /// will read or write (the caller's entry and its last call, or the
    /// answering number's entry), read now.
    fn touch(&self, row: &Row) {
        match row {
            Row::Call(e) => {
                std::hint::black_box(self.callers.get(&e.caller).and_then(|st| st.recent.last()).map(|r| r.ts_ms));
            }
            Row::Received { number, .. } => {
                std::hint::black_box(self.received.get(number).copied());
            }
        }
    }

    /// The caller's features at `at`; `call` is the open call being judged (none for a report).
    fn features(&mut self, c: &Config, subs: &Subscribers, who: Token, at: u64, call: Option<u64>) -> Features {
        let (hour, day, burst) = features::windows(c);
        let mut f = Features::default();
        let Some(st) = self.callers.get(&who) else { return f };
        f.class = st.class;
        f.age_days = features::age_days(subs.get_at(&who, at).as_ref(), at);
        f.seen_h = ((at - st.first_seen_ms) / HOUR_MS) as u32;
        let link_ms = c.exposure_window_h * HOUR_MS;
        self.scratch.clear();
        for r in st.recent.iter().filter(|r| r.ts_ms + day > at) {
            f.calls_24h += 1;
            f.new_callee_24h += u32::from(r.new_callee);
            if r.dur_s != OPEN {
                f.completed_24h += 1;
                f.short_24h += u32::from(r.dur_s < c.short_call_s);
                f.very_short_24h += u32::from(r.dur_s < c.very_short_call_s);
                f.long_24h += u32::from(r.dur_s >= features::LONG_CALL_S);
            }
            f.current_new |= Some(r.call_id) == call && r.new_callee;
            f.located_24h += u32::from(r.near != 0);
            f.near_24h += u32::from(r.near == 1);
            f.calls_1h += u32::from(r.ts_ms + hour > at);
            f.burst += u32::from(r.ts_ms + burst > at);
            self.scratch.push(r.callee);
        }
        self.scratch.sort_unstable();
        self.scratch.dedup();
        f.fanout_24h = self.scratch.len() as u32;
        f.linked_callees = self
            .scratch
            .iter()
            .filter(|callee| {
                self.links.get(callee).is_some_and(|l| l.iter().any(|&(n, t)| n != who && t + link_ms > at))
            })
            .count() as u32;
        self.scratch.clear();
        for r in st.recent.iter().filter(|r| r.ts_ms + hour > at) {
            self.scratch.push(r.callee);
        }
        self.scratch.sort_unstable();
        self.scratch.dedup();
        f.fanout_1h = self.scratch.len() as u32;
        let memory = c.contact_memory_h * HOUR_MS;
        let last_in = self.received.get(&who).copied();
        f.out_only_callees =
            st.contacts.iter().filter(|&&(_, t)| t + memory > at && last_in.is_none_or(|r| t > r)).count() as u32;
        f.contacts = st.contacts.iter().filter(|&&(_, t)| t + memory > at).count() as u32;
        f.answered = last_in.is_some_and(|r| r + memory > at);
        let since_in = last_in.map_or(u64::MAX, |r| at - r);
        f.quiet_h = (since_in.min(at - st.first_seen_ms).min(memory) / HOUR_MS) as u32;
        let report_ms = c.report_memory_h * HOUR_MS;
        f.reports = self.reports.get(&who).map_or(0, |v| v.iter().filter(|&&t| t + report_ms > at).count() as u32);
        f
    }

    fn sweep(&mut self, c: &Config, now: u64) {
        let idle = c.idle_ms();
        self.callers.retain(|_, s| s.last_start_ms() + idle > now);
        let report_ms = c.report_memory_h * HOUR_MS;
        self.reports.retain(|_, v| {
            v.retain(|&t| t + report_ms > now);
            !v.is_empty()
        });
        let link_ms = c.exposure_window_h * HOUR_MS;
        self.links.retain(|_, v| {
            v.retain(|&(_, t)| t + link_ms > now);
            !v.is_empty()
        });
        self.early_ends.retain(|_, &mut (_, t)| t + 24 * HOUR_MS > now);
        // A received call older than the contact memory no longer bounds any
        // remembered contact: forgetting it changes no feature.
        let memory = c.contact_memory_h * HOUR_MS;
        self.received.retain(|_, &mut t| t + memory > now);
    }
}

/// The risk operator's steps, one per kind of row (`build` dispatches).
impl Risk {
    fn sweep_if_due(&mut self, c: &Config, now: u64) {
        if now >= self.next_sweep_ms {
            self.sweep(c, now);
            self.next_sweep_ms = now + SWEEP_MS;
        }
    }

    /// `number` answered a call.
    fn on_received(&mut self, number: Token, now: u64) {
        self.received.insert(number, now);
    }

    /// A call starts: the caller's contacts and recent calls, and a check
    /// at its first decision point (through `set_timer`) when the call is still open.
    fn on_start(&mut self, c: &Config, e: &CallEvent, now: u64, set_timer: &mut impl FnMut(u64, u64)) {
        let idle = c.idle_ms();
        let st = self.callers.entry(e.caller).or_insert_with(|| Caller::new(e.caller_class, now));
        if st.last_start_ms() + idle <= now {
            *st = Caller::new(e.caller_class, now);
        }
        let memory = c.contact_memory_h * HOUR_MS;
        // Touch the callee: move it (or the evicted least
        // recently called one's slot) to the back, stamped now.
        let new_callee = match st.contacts.iter().position(|&(callee, _)| callee == e.callee) {
            Some(i) => {
                let known = st.contacts[i].1 + memory > now;
                st.contacts[i..].rotate_left(1);
                !known
            }
            None => {
                if st.contacts.len() < c.contacts {
                    st.contacts.push((e.callee, now));
                } else {
                    st.contacts.rotate_left(1);
                }
                true
            }
        };
        *st.contacts.last_mut().expect("just touched") = (e.callee, now);
        // Empty unless an end row came before its start: skip the lookup then.
        let early = if self.early_ends.is_empty() { None } else { self.early_ends.remove(&e.call_id) };
        let dur_s = early.map_or(OPEN, |(d, _)| d);
        let near = features::nearness(e);
        st.recent.push(Recent { ts_ms: now, callee: e.callee, call_id: e.call_id, dur_s, new_callee, near });
        trim_front(&mut st.recent, c.recent_cap, |r| r.ts_ms + 24 * HOUR_MS <= now);
        if dur_s == OPEN {
            self.open.insert(e.call_id, *e);
            set_timer(now + c.first_check_s() * 1000, e.call_id);
        }
    }

    /// A call ends: no check for it, and its talk time joins the caller's
    /// recent calls (or waits for its start row when that comes later).
    fn on_end(&mut self, e: &CallEvent, now: u64) {
        self.open.remove(&e.call_id);
        let found = self
            .callers
            .get_mut(&e.caller)
            .and_then(|st| st.recent.iter_mut().rev().find(|r| r.call_id == e.call_id && r.callee == e.callee));
        match found {
            Some(r) => r.dur_s = talk_s(e),
            None => {
                self.early_ends.insert(e.call_id, (talk_s(e), now));
            }
        }
    }

    /// A report naming `suspect`: remembered, and the number raised (once
    /// per UTC day) when it called recently.
    fn on_report(
        &mut self,
        c: &Config,
        subs: &Subscribers,
        suspect: Token,
        now: u64,
        emit: &mut impl FnMut(AlertDraft),
    ) {
        self.reports.entry(suspect).or_default().push(now);
        let fresh = self.callers.get(&suspect).is_some_and(|s| s.last_start_ms() + c.idle_ms() > now);
        if fresh {
            let f = self.features(c, subs, suspect, now, None);
            let risk = c.score(&f, now);
            let st = self.callers.get_mut(&suspect).expect("fresh caller");
            if st.mark_number_day(now) {
                emit(draft_number(c, suspect, now, &f, risk, NumberReason::Reported, None));
            }
        }
    }

    /// `callee` was also called by the reported `number`.
    fn on_link(&mut self, callee: Token, number: Token, now: u64) {
        self.links.entry(callee).or_default().push((number, now));
    }

    /// The check of call `key` at `at_ms`, when it is still open: the
    /// caller's features (recorded by the training tap), and the alerts when
    /// the probability reaches the thresholds (the walk of the trees stops
    /// below `floor`, the lower of the two). Returns when to judge the call
    /// again: the next decision point, unless it alerted now or this was the last.
    #[allow(clippy::too_many_arguments)]
    fn on_check(
        &mut self,
        c: &Config,
        subs: &Subscribers,
        tap: Option<&Tap>,
        floor: f64,
        at_ms: u64,
        key: u64,
        emit: &mut impl FnMut(AlertDraft),
    ) -> Option<u64> {
        let start = self.open.remove(&key)?;
        let open_s = (at_ms - start.ts_ms) / 1000;
        let mut f = self.features(c, subs, start.caller, at_ms, Some(start.call_id));
        f.open_s = open_s as u32;
        if let Some(tap) = tap {
            tap.lock().expect("tap").push(Decision {
                call_id: start.call_id,
                caller: start.caller,
                at_ms,
                features: f,
            });
        }
        // Judged again at the next point unless it alerts now (an end row
        // before then removes it from `open`, which cancels that check).
        let next = c.next_check_s(open_s).map(|p| start.ts_ms + p * 1000);
        let Some(risk) = c.model.prob_at_least(&f, at_ms, floor) else {
            if next.is_some() {
                self.open.insert(key, start);
            }
            return next;
        };
        let alerted = risk >= c.threshold();
        if alerted {
            emit(draft_in_progress(c, subs, &start, at_ms, &f, risk));
        }
        if risk >= c.high_threshold()
            && let Some(st) = self.callers.get_mut(&start.caller)
            && st.mark_number_day(at_ms)
        {
            emit(draft_number(c, start.caller, at_ms, &f, risk, NumberReason::HighRisk, Some(start.call_id)));
        }
        if alerted || next.is_none() {
            return None;
        }
        self.open.insert(key, start);
        next
    }
}

impl Model for FraudCall {
    fn name(&self) -> String {
        "fraud_call".to_owned()
    }

    fn card(&self) -> &'static str {
        include_str!("../README.md")
    }

    fn version(&self) -> String {
        format!("0.2.0+{}", self.config.model.file.version)
    }

    citywatch_engine::config_field!(config, Config::load_and_check);

    fn reference(&self, events: &[Event], reference: &Reference) -> Option<Vec<AlertDraft>> {
        Some(reference::run(&self.config, events, &reference.subscribers))
    }

    fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
        let subs: Arc<Subscribers> = inputs.reference.subscribers.clone();
        let reports =
            inputs.alarms.clone().filter(|a: &AlarmEvent| a.category == Category::FraudReport && a.suspect.is_some());

        // 1. Exposure: ended calls and reports, both by the number.
        let (ends, rows) = split_calls(inputs.calls.clone());
        let (config, subs_a) = (self.config.clone(), subs.clone());
        let exposure = ends.deadlines_touching(
            reports.clone(),
            Exchange::new(|e: &CallEvent| e.caller),
            Exchange::new(|a: &AlarmEvent| a.suspect.unwrap_or(0)),
            "FraudExposure",
            Exposure::default(),
            |state: &Exposure, end: &CallEvent| state.touch(end),
            move |state, step: Step<'_, CallEvent, AlarmEvent>, ctx| {
                let now = ctx.now_ms();
                state.sweep_if_due(&config, now);
                match step {
                    Step::Left(end) => state.on_end(&config, end, now),
                    Step::Right(report) => state.on_report(&config, &subs_a, report, now, &mut |o| ctx.emit(o)),
                    Step::Timer { .. } => {}
                }
            },
        );
        let exposure_alerts = exposure.clone().flat_map(|o| if let ExposureOut::Alert(a) = o { Some(a) } else { None });
        let links = exposure.flat_map(|o| if let ExposureOut::Link(l) = o { Some(l) } else { None });
        let notices = reports
            .flat_map(|a| a.suspect.map(|suspect| Notice::Report { ts_ms: a.ts_ms, seq: a.seq, suspect }))
            .concat(links)
            .broadcast();

        // 2. Risk: every call row by caller; notices everywhere.
        let config = self.config.clone();
        let tap = self.tap.clone();
        // Neither alert fires below this: a decision's walk of the trees stops once it cannot reach it.
        let floor = config.threshold().min(config.high_threshold());
        let risk = rows.deadlines_touching(
            notices,
            Exchange::new(|r: &Row| r.key()),
            Pipeline,
            "FraudRisk",
            Risk::default(),
            |state: &Risk, row: &Row| state.touch(row),
            move |state: &mut Risk, step: Step<'_, Row, Notice>, ctx| {
                let now = ctx.now_ms();
                state.sweep_if_due(&config, now);
                match step {
                    Step::Left(Row::Received { number, .. }) => state.on_received(*number, now),
                    Step::Left(Row::Call(e)) if e.phase == CallPhase::Start => {
                        state.on_start(&config, e, now, &mut |at, key| ctx.set_timer(at, key));
                    }
                    Step::Left(Row::Call(e)) => state.on_end(e, now),
                    Step::Right(Notice::Report { suspect, .. }) => {
                        state.on_report(&config, &subs, *suspect, now, &mut |d| ctx.emit(d));
                    }
                    Step::Right(Notice::Link { callee, number, .. }) => state.on_link(*callee, *number, now),
                    Step::Timer { at_ms, key } => {
                        let next =
                            state.on_check(&config, &subs, tap.as_ref(), floor, at_ms, key, &mut |d| ctx.emit(d));
                        if let Some(at) = next {
                            ctx.set_timer(at, key);
                        }
                    }
                }
            },
        );
        exposure_alerts.concat(risk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-caller state is what issue 7 sizes (at most 400 bytes per
    /// active subscriber): a field added or reordered into padding fails here.
    #[test]
    fn caller_state_is_compact() {
        let caller = size_of::<Caller>();
        println!("size_of Caller {caller} B, Recent {} B", size_of::<Recent>());
        assert!(caller <= 80, "Caller grew to {caller} bytes");
    }

    /// Same for the exposure operator's per-caller entry.
    #[test]
    fn exposure_state_is_compact() {
        let history = size_of::<History>();
        println!("size_of History {history} B, PastCall {} B", size_of::<PastCall>());
        assert!(history <= 48, "History grew to {history} bytes");
    }
}
