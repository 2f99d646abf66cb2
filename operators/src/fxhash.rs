//! A fast, non-cryptographic hasher for the 64-bit keys operator state is keyed by.
//!
//! Why not `std`'s default SipHash: it is built to resist hash flooding from
//! untrusted keys and costs ~20 ns per `u64`; operator keys are already
//! pseudonymised tokens, cell ids or window starts, so a multiply-rotate hash is
//! enough and costs ~1 ns. Why not a dependency (`rustc-hash`, `ahash`): the
//! whole hasher is the twenty lines below, the same algorithm as `rustc-hash` 2
//! (a multiply by a large odd constant per word, and a final rotation so the
//! low bits that `hashbrown` uses to pick a bucket depend on all input bits).
//! The tables are `std`'s `HashMap`/`HashSet` (SwissTable, `hashbrown` inside).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier of `rustc-hash` 2 (an odd constant with well-spread bits).
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Multiply-rotate hasher for small fixed-size keys (see the module doc).
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    /// Running state: one multiply per word written.
    hash: u64,
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.hash = self.hash.wrapping_add(i).wrapping_mul(K);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The product's high bits are the well-mixed ones; rotate them down to the
        // low bits that pick the bucket.
        self.hash.rotate_left(26)
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;
/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<K> = HashSet<K, FxBuildHasher>;

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
        let b = FxBuildHasher::default();
        assert_ne!(b.hash_one((1u64, 2u64)), b.hash_one((2u64, 1u64)));
        assert_ne!(b.hash_one(1u64), b.hash_one(2u64));
    }

    #[test]
    fn spread_balances_consecutive_keys() {
        let odd = (0..10_000u64).filter(|k| spread(*k) & 1 == 1).count();
        assert!((4_500..5_500).contains(&odd), "{odd}");
    }
}
