//! The one hasher for in-memory tables keyed by 64-bit ids and tokens, and
//! the one spreading function for routing records to workers.
//!
//! Tables: `foldhash`'s fast hasher with a fixed seed ([`FastMap`],
//! [`FastSet`]). Why not `std`'s default SipHash: it is built to resist hash
//! flooding from untrusted keys and costs ~20 ns per `u64`; the keys here are
//! pseudonymised tokens, call ids, cell ids and window starts, never chosen
//! by whoever sends the data, and a skewed key set only slows a table down.
//! `foldhash` is hashbrown's own default hasher (one folded multiply per
//! word); the fixed seed keeps a run's behaviour, iteration order included,
//! the same from run to run. Nothing may depend on that order for its output
//! all the same: alerts are sorted by `(ts_ms, seq)` or by their contents.
//!
//! Routing: timely's exchange takes the low bits of the route, and keys such
//! as phone numbers or cell ids often differ only in a few bits, so a key is
//! [`spread`] first.
//!
//! String keys that must hash the same in every process and release (an
//! exchange route, an id) use [`crate::event::stable_key`] instead.

use std::collections::{HashMap, HashSet};

/// `BuildHasher` of [`FastMap`] and [`FastSet`]: `foldhash::fast` with a fixed seed.
pub type FastState = foldhash::fast::FixedState;
/// A `HashMap` with the fast hasher (see the module doc).
pub type FastMap<K, V> = HashMap<K, V, FastState>;
/// A `HashSet` with the fast hasher (see the module doc).
pub type FastSet<K> = HashSet<K, FastState>;

/// Spreads a key over all 64 bits (the murmur3 finaliser), for routing records to
/// workers: timely's exchange takes the low bits of the route, and keys such as
/// phone numbers or cell ids often differ only in a few bits.
#[inline]
pub fn spread(key: u64) -> u64 {
    let mut x = key ^ (key >> 33);
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn tuples_and_words_hash_differently() {
        let b = FastState::default();
        assert_ne!(b.hash_one((1u64, 2u64)), b.hash_one((2u64, 1u64)));
        assert_ne!(b.hash_one(1u64), b.hash_one(2u64));
    }

    #[test]
    fn spread_balances_consecutive_keys() {
        let odd = (0..10_000u64).filter(|k| spread(*k) & 1 == 1).count();
        assert!((4_500..5_500).contains(&odd), "{odd}");
    }
}
