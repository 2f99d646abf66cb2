//! Reference data the models may consult while the streams run: subscribers
//! (age, home, activation), the jurisdiction, and the names of patrol units.
//! Loaded once before the dataflow starts and shared by every worker:
//! subscribers and the jurisdiction hold every version of their rows (see
//! "Reference data that changes" in `docs/input-contract.md`) and are looked
//! up as of an event time, so the answer does not depend on which worker
//! asks or when; in live mode they also take the rows sent while the service
//! runs. The unit directory gains names as readers (and live ingest) meet new
//! units.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::contract::ALWAYS;
use crate::event::UnitToken;
use crate::geo::Point;
use crate::hash::FastMap;
use crate::jurisdiction::Jurisdiction;
use crate::pseudonym::Token;

/// One subscriber's registration data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    /// Age in years, when registered.
    pub age: Option<u8>,
    /// Home position, when registered.
    pub home: Option<Point>,
    /// When the number was activated (ms since the epoch).
    pub activated_ms: Option<i64>,
}

/// One version of a number's registration: from `from_ms` on, the number
/// is registered with this data (`Some`) or cancelled (`None`).
pub type SubscriberVersion = (i64, Option<Subscriber>);

/// Versions by token (each token's sorted by `from_ms`).
type Versions = FastMap<Token, Vec<SubscriberVersion>>;

/// Subscribers by pseudonym, versioned in event time: built once from the
/// subscribers table, looked up by the models on their hot paths "as of" an
/// event time ([`Subscribers::get_at`]), plus, in live mode, the
/// registrations and cancellations sent while the service runs
/// ([`Subscribers::live`]).
///
/// The entries are sorted by token, with a directory of where each range of
/// leading token bits starts: 40 bytes per subscriber and 1 to 2 bytes of
/// directory, against 80 bytes and more for a hash map at its load factor
/// (one bucket of 41 bytes per subscriber, rounded up to a power of two, is
/// 2x at 1M subscribers). A lookup reads the directory and then one short run
/// of entries (two to four): ~100 ns in a 1M table against ~75 ns for the
/// hash map (`cargo bench -p citywatch-bench --bench reader -- subscribers`),
/// a few lookups per call, for half the memory. Tokens are keyed HMAC
/// outputs, so their leading bits are evenly spread; tokens that are not
/// (tests) only make the runs longer.
///
/// **Versions.** A number whose rows are all in force for all time (no
/// `valid_from_ms`) has its one entry; a number with dated rows (registered,
/// re-registered or cancelled during the data) also has its versions in a
/// side map, consulted only when there are any, so a table without dates
/// costs what it did. When a number has two rows from the same time, the
/// later row in file order wins.
#[derive(Clone, Default)]
pub struct Subscribers {
    /// Sorted by token, one entry per token (for a versioned token: its first registration).
    entries: Vec<(Token, Subscriber)>,
    /// `dir[k]..dir[k + 1]` are the entries whose token's leading `bits` bits are `k`.
    dir: Vec<u32>,
    bits: u32,
    /// The versions of tokens with dated rows.
    versions: Arc<Versions>,
    /// Versions sent live (see [`Subscribers::live`]); `None` in a replay.
    live: Option<Arc<RwLock<Versions>>>,
}

impl Subscribers {
    /// The table of `rows` (token, data) in file order, all in force for
    /// all time; for a token given more than once the last row wins.
    pub fn from_rows(rows: Vec<(Token, Subscriber)>) -> Self {
        Subscribers::from_versions(rows.into_iter().map(|(t, s)| (t, ALWAYS, Some(s))).collect())
    }

    /// The table of versioned rows `(token, from_ms, data or None for a
    /// cancellation)` in file order ([`ALWAYS`] for a row without a date).
    /// Of two rows for one token and time, the later wins.
    pub fn from_versions(mut rows: Vec<(Token, i64, Option<Subscriber>)>) -> Self {
        // Stable: equal keys keep their file order, and `dedup_by` then
        // copies the later row over the kept one.
        rows.sort_by_key(|&(t, from, _)| (t, from));
        rows.dedup_by(|later, kept| {
            let same = (later.0, later.1) == (kept.0, kept.1);
            if same {
                kept.2 = later.2;
            }
            same
        });
        let mut versions = Versions::default();
        let mut entries: Vec<(Token, Subscriber)> = Vec::with_capacity(rows.len());
        let mut i = 0;
        while i < rows.len() {
            let t = rows[i].0;
            let mut j = i + 1;
            while j < rows.len() && rows[j].0 == t {
                j += 1;
            }
            let run = &rows[i..j];
            match run {
                [(_, ALWAYS, Some(s))] => entries.push((t, *s)),
                _ => {
                    let first = run.iter().find_map(|v| v.2).unwrap_or_default();
                    entries.push((t, first));
                    versions.insert(t, run.iter().map(|&(_, from, s)| (from, s)).collect());
                }
            }
            i = j;
        }
        drop(rows);
        entries.shrink_to_fit();
        assert!(entries.len() <= u32::MAX as usize, "more than 2^32 subscribers");
        // Two to four entries per directory slot: 1 << bits is between n/4 and n/2.
        let bits = entries.len().max(1).ilog2().saturating_sub(1).min(32);
        let mut dir = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0;
        for k in 0..(1u64 << bits) {
            while i < entries.len() && lead(entries[i].0, bits) < k {
                i += 1;
            }
            dir.push(i as u32);
        }
        dir.push(entries.len() as u32);
        Subscribers { entries, dir, bits, versions: Arc::new(versions), live: None }
    }

    /// Opens the table to live registrations and cancellations
    /// ([`Subscribers::register`]); clones made after this share them.
    pub fn make_live(&mut self) {
        self.live.get_or_insert_with(Default::default);
    }

    /// Records live versions `(token, from_ms, data or None)`: from
    /// `from_ms` on, lookups see them (a version from the same time as an
    /// earlier one replaces it). The caller (the live engine) makes sure no
    /// lookup at or after `from_ms` has been made yet, so that the answers
    /// are those of a replay of the same rows. Does nothing on a table that
    /// is not [`Subscribers::live`].
    pub fn register(&self, rows: &[(Token, i64, Option<Subscriber>)]) {
        let Some(live) = &self.live else { return };
        let mut map = live.write().expect("subscribers lock");
        for &(t, from, s) in rows {
            let v = map.entry(t).or_default();
            let at = v.partition_point(|&(f, _)| f <= from);
            if at > 0 && v[at - 1].0 == from {
                v[at - 1].1 = s;
            } else {
                v.insert(at, (from, s));
            }
        }
    }

    /// A subscriber's registration data in force at `at_ms` (event time):
    /// `None` for a number never registered, not yet registered at `at_ms`,
    /// or cancelled by then.
    #[inline]
    pub fn get_at(&self, token: &Token, at_ms: u64) -> Option<Subscriber> {
        let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
        if let Some(live) = &self.live {
            return self.get_live(live, token, at);
        }
        let entry = self.entry(token)?;
        if self.versions.is_empty() {
            return Some(*entry);
        }
        match self.versions.get(token) {
            None => Some(*entry),
            Some(v) => as_of(v, at).flatten(),
        }
    }

    /// [`Subscribers::get_at`] with the live versions: the latest version
    /// from at or before `at` of the file's and the live ones (live wins a tie).
    fn get_live(&self, live: &RwLock<Versions>, token: &Token, at: i64) -> Option<Subscriber> {
        let file = self.entry(token).and_then(|e| match self.versions.get(token) {
            None => Some((ALWAYS, Some(*e))),
            Some(v) => v.iter().rev().find(|(from, _)| *from <= at).copied(),
        });
        let map = live.read().expect("subscribers lock");
        let sent = map.get(token).and_then(|v| v.iter().rev().find(|(from, _)| *from <= at).copied());
        match (file, sent) {
            (Some(f), Some(s)) if f.0 > s.0 => f.1,
            (_, Some(s)) => s.1,
            (Some(f), None) => f.1,
            (None, None) => None,
        }
    }

    #[inline]
    fn entry(&self, token: &Token) -> Option<&Subscriber> {
        let k = lead(*token, self.bits) as usize;
        let (from, to) = (*self.dir.get(k)? as usize, self.dir[k + 1] as usize);
        let run = &self.entries[from..to];
        run.binary_search_by_key(token, |&(t, _)| t).ok().map(|i| &run[i].1)
    }

    /// Number of subscribers (distinct tokens in the file).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Numbers with dated rows (registered, changed or cancelled during the data).
    pub fn versioned(&self) -> usize {
        self.versions.len()
    }

    /// The subscribers in token order (a versioned number: its first registration).
    pub fn iter(&self) -> impl Iterator<Item = (&Token, &Subscriber)> {
        self.entries.iter().map(|(t, s)| (t, s))
    }

    /// Bytes held (entries and directory; not the versions).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Token, Subscriber)>() + self.dir.capacity() * 4
    }
}

/// The version in force at `at` of versions sorted by time: `None` before the first.
#[inline]
fn as_of<T: Copy>(versions: &[(i64, T)], at: i64) -> Option<T> {
    let i = versions.partition_point(|&(from, _)| from <= at);
    i.checked_sub(1).map(|i| versions[i].1)
}

/// The count, not a million entries (a `Reference` is printed in logs and test failures).
impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl FromIterator<(Token, Subscriber)> for Subscribers {
    fn from_iter<I: IntoIterator<Item = (Token, Subscriber)>>(rows: I) -> Self {
        Subscribers::from_rows(rows.into_iter().collect())
    }
}

/// The leading `bits` bits of a token (0 when `bits` is 0).
#[inline]
fn lead(token: Token, bits: u32) -> u64 {
    token.checked_shr(64 - bits).unwrap_or(0)
}

/// Patrol unit names by token. The reader fills it before it sends the events
/// that mention a unit, so a model that reads it always finds the name.
#[derive(Debug, Clone, Default)]
pub struct UnitDirectory(Arc<RwLock<HashMap<UnitToken, String>>>);

impl UnitDirectory {
    /// Records a unit's name (idempotent).
    pub fn insert(&self, token: UnitToken, name: &str) {
        if self.0.read().expect("unit directory lock").contains_key(&token) {
            return;
        }
        self.0.write().expect("unit directory lock").entry(token).or_insert_with(|| name.to_owned());
    }

    /// The unit's name, or its token in hex when unknown.
    pub fn name(&self, token: UnitToken) -> String {
        self.0.read().expect("unit directory lock").get(&token).cloned().unwrap_or_else(|| format!("unit#{token:016x}"))
    }

    /// Number of units seen.
    pub fn len(&self) -> usize {
        self.0.read().expect("unit directory lock").len()
    }

    /// Whether no unit has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a model may consult besides the streams (read-only but for the unit
/// directory, which only grows).
#[derive(Debug, Clone)]
pub struct Reference {
    /// Subscribers by pseudonym (empty when the dataset has no subscribers table).
    pub subscribers: Arc<Subscribers>,
    /// Grids and officers.
    pub jurisdiction: Arc<Jurisdiction>,
    /// Patrol unit names.
    pub units: UnitDirectory,
}

impl Reference {
    /// Reference data with no subscribers and the default grid: for tests and demos.
    pub fn empty() -> Self {
        Reference {
            subscribers: Arc::new(Subscribers::default()),
            jurisdiction: Arc::new(Jurisdiction::default_grid(Vec::new())),
            units: UnitDirectory::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(age: u8) -> Subscriber {
        Subscriber { age: Some(age), home: None, activated_ms: Some(i64::from(age) * 1000) }
    }

    /// A spread of tokens like HMAC outputs (a fixed odd multiplier), plus the
    /// edges of the token space, which fall in the first and last directory slots.
    fn tokens(n: u64) -> Vec<Token> {
        let mut t: Vec<Token> = (1..=n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        t.extend([0, u64::MAX, 1, u64::MAX - 1]);
        t
    }

    #[test]
    fn every_subscriber_is_found_and_no_other_token() {
        for n in [0u64, 1, 2, 3, 5, 64, 1000, 4097] {
            let toks = tokens(n);
            let subs: Subscribers = toks.iter().enumerate().map(|(i, &t)| (t, sub(i as u8))).collect();
            assert_eq!(subs.len(), toks.len(), "n = {n}");
            for (i, t) in toks.iter().enumerate() {
                assert_eq!(subs.get_at(t, 0), Some(sub(i as u8)), "n = {n}, token {t:x}");
            }
            for absent in [2u64, 0x8000_0000_0000_0000, u64::MAX - 2, 0x1234_5678_9abc_def0] {
                assert!(!toks.contains(&absent));
                assert_eq!(subs.get_at(&absent, 0), None, "n = {n}, absent {absent:x}");
            }
            let listed: Vec<Token> = subs.iter().map(|(t, _)| *t).collect();
            let mut sorted = toks.clone();
            sorted.sort_unstable();
            assert_eq!(listed, sorted, "iter gives every token once, in order");
        }
    }

    #[test]
    fn a_number_registered_twice_keeps_its_last_row() {
        let rows = vec![(7, sub(1)), (3, sub(2)), (7, sub(3)), (9, sub(4)), (7, sub(5)), (3, sub(6))];
        let subs = Subscribers::from_rows(rows);
        assert_eq!(subs.len(), 3);
        assert_eq!(subs.get_at(&7, 0), Some(sub(5)));
        assert_eq!(subs.get_at(&3, 0), Some(sub(6)));
        assert_eq!(subs.get_at(&9, u64::MAX), Some(sub(4)));
    }

    #[test]
    fn a_dated_row_is_in_force_from_its_time_and_a_cancellation_ends_it() {
        // 7: registered at 100, cancelled at 200, registered again (another owner) at 300.
        // 9: in force for all time, re-registered at 150. 3: never dated.
        let rows = vec![
            (7, 300, Some(sub(3))),
            (9, ALWAYS, Some(sub(4))),
            (7, 100, Some(sub(1))),
            (3, ALWAYS, Some(sub(6))),
            (7, 200, None),
            (9, 150, Some(sub(5))),
        ];
        let subs = Subscribers::from_versions(rows);
        assert_eq!((subs.len(), subs.versioned()), (3, 2));
        let seen = |t: Token, at: u64| subs.get_at(&t, at).and_then(|s| s.age);
        assert_eq!(
            [99, 100, 199, 200, 299, 300, 10_000].map(|at| seen(7, at)),
            [None, Some(1), Some(1), None, None, Some(3), Some(3)]
        );
        assert_eq!([0, 149, 150].map(|at| seen(9, at)), [Some(4), Some(4), Some(5)]);
        assert_eq!(seen(3, 0), Some(6));
        // Two rows for one number and time: the later in file order wins.
        let subs = Subscribers::from_versions(vec![(7, 100, Some(sub(1))), (7, 100, None)]);
        assert_eq!(subs.get_at(&7, 100), None);
    }

    #[test]
    fn live_versions_join_the_files_and_answer_as_a_replay_would() {
        let file = vec![(7, ALWAYS, Some(sub(1))), (9, 100, Some(sub(2)))];
        let replayed = Subscribers::from_versions(
            file.iter().copied().chain([(5, 500, Some(sub(3))), (7, 400, None), (9, 100, Some(sub(4)))]).collect(),
        );
        let mut live = Subscribers::from_versions(file);
        live.make_live();
        let shared = live.clone();
        shared.register(&[(5, 500, Some(sub(3))), (7, 400, None), (9, 100, Some(sub(4)))]);
        for t in [5, 7, 9, 11] {
            for at in [0, 99, 100, 399, 400, 499, 500, 1000] {
                assert_eq!(live.get_at(&t, at), replayed.get_at(&t, at), "token {t} at {at}");
            }
        }
        assert_eq!(Subscribers::from_rows(vec![(7, sub(1))]).get_at(&7, 0), Some(sub(1)), "not live: unchanged");
    }

    #[test]
    fn clustered_tokens_are_still_found() {
        // Small tokens all fall in directory slot 0: lookups stay correct.
        let subs: Subscribers = (0..5000u64).map(|t| (t * 3, sub((t % 200) as u8))).collect();
        for t in 0..5000u64 {
            assert_eq!(subs.get_at(&(t * 3), 0), Some(sub((t % 200) as u8)));
            assert_eq!(subs.get_at(&(t * 3 + 1), 0), None);
        }
    }

    #[test]
    fn the_table_costs_about_forty_bytes_a_subscriber() {
        let subs: Subscribers = tokens(100_000).into_iter().map(|t| (t, sub(30))).collect();
        let per = subs.heap_bytes() as f64 / subs.len() as f64;
        assert!(per <= 44.0, "{per:.1} bytes per subscriber");
        assert_eq!(std::mem::size_of::<(Token, Subscriber)>(), 40);
    }
}
