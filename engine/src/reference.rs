//! Reference data the models may consult while the streams run: subscribers
//! (age, home, activation), the jurisdiction, and the names of patrol units.
//! Loaded once before the dataflow starts and shared by every worker:
//! subscribers and the jurisdiction are read-only; the unit directory gains
//! names as readers (and live ingest) meet new units.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::event::UnitToken;
use crate::geo::Point;
use crate::jurisdiction::Jurisdiction;
use crate::pseudonym::Token;

/// One subscriber's registration data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subscriber {
    /// Age in years, when registered.
    pub age: Option<u8>,
    /// Home position, when registered.
    pub home: Option<Point>,
    /// When the number was activated (ms since the epoch).
    pub activated_ms: Option<i64>,
}

/// Subscribers by pseudonym: a read-only table built once from the
/// subscribers table, looked up by the models on their hot paths.
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
/// When a number is registered twice, the later row wins, as the rows are
/// read in file order.
#[derive(Clone, Default)]
pub struct Subscribers {
    /// Sorted by token, one entry per token.
    entries: Vec<(Token, Subscriber)>,
    /// `dir[k]..dir[k + 1]` are the entries whose token's leading `bits` bits are `k`.
    dir: Vec<u32>,
    bits: u32,
}

impl Subscribers {
    /// The table of `rows` (token, data) in file order; for a token given
    /// more than once the last row wins.
    pub fn from_rows(mut rows: Vec<(Token, Subscriber)>) -> Self {
        // Stable: equal tokens keep their file order, and `dedup_by` then
        // copies the later row over the kept one.
        rows.sort_by_key(|&(t, _)| t);
        rows.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        rows.shrink_to_fit();
        assert!(rows.len() <= u32::MAX as usize, "more than 2^32 subscribers");
        // Two to four entries per directory slot: 1 << bits is between n/4 and n/2.
        let bits = rows.len().max(1).ilog2().saturating_sub(1).min(32);
        let mut dir = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0;
        for k in 0..(1u64 << bits) {
            while i < rows.len() && lead(rows[i].0, bits) < k {
                i += 1;
            }
            dir.push(i as u32);
        }
        dir.push(rows.len() as u32);
        Subscribers { entries: rows, dir, bits }
    }

    /// A subscriber's registration data.
    #[inline]
    pub fn get(&self, token: &Token) -> Option<&Subscriber> {
        let k = lead(*token, self.bits) as usize;
        let (from, to) = (*self.dir.get(k)? as usize, self.dir[k + 1] as usize);
        let run = &self.entries[from..to];
        run.binary_search_by_key(token, |&(t, _)| t).ok().map(|i| &run[i].1)
    }

    /// Number of subscribers (distinct tokens).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The subscribers in token order.
    pub fn iter(&self) -> impl Iterator<Item = (&Token, &Subscriber)> {
        self.entries.iter().map(|(t, s)| (t, s))
    }

    /// Bytes held (entries and directory).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Token, Subscriber)>() + self.dir.capacity() * 4
    }
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
                assert_eq!(subs.get(t), Some(&sub(i as u8)), "n = {n}, token {t:x}");
            }
            for absent in [2u64, 0x8000_0000_0000_0000, u64::MAX - 2, 0x1234_5678_9abc_def0] {
                assert!(!toks.contains(&absent));
                assert_eq!(subs.get(&absent), None, "n = {n}, absent {absent:x}");
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
        assert_eq!(subs.get(&7), Some(&sub(5)));
        assert_eq!(subs.get(&3), Some(&sub(6)));
        assert_eq!(subs.get(&9), Some(&sub(4)));
    }

    #[test]
    fn clustered_tokens_are_still_found() {
        // Small tokens all fall in directory slot 0: lookups stay correct.
        let subs: Subscribers = (0..5000u64).map(|t| (t * 3, sub((t % 200) as u8))).collect();
        for t in 0..5000u64 {
            assert_eq!(subs.get(&(t * 3)), Some(&sub((t % 200) as u8)));
            assert_eq!(subs.get(&(t * 3 + 1)), None);
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
