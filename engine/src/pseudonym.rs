//! Phone numbers become pseudonyms at ingest.
//!
//! A number is replaced by a 64-bit token: the first 8 bytes (big-endian) of
//! HMAC-SHA256(key, number). The key comes from the config or
//! `--pseudonym-key`; [`DEMO_KEY`] is a fixed, documented default for demos and
//! tests only. Without the key a token cannot be turned back into a number by
//! enumerating the (small) space of phone numbers, which a plain hash would allow.
//!
//! Nothing downstream of the reader sees a raw number: the dataflow keys on the
//! token (8 bytes, `Copy`, cheap to hash and exchange). What the models need to
//! know about the *shape* of a number (international, virtual operator, a
//! spoofed service number) is computed here, from the raw number, into a
//! [`NumberClass`], because the token hides it.
//!
//! The number is hashed exactly as written (after checking it is digits with an
//! optional leading `+`): `+8613800000000` and `13800000000` are different
//! tokens, as they are different strings on the wire.
//!
//! Cost: without SHA instructions one HMAC is ~0.7–1.1 µs, so [`Pseudonymiser`]
//! keeps a bounded cache of 24-byte slots (numbers repeat: people call their
//! contacts), which turns most lookups into one multiply and one compare. A
//! replay sizes it for the city (twice the subscribers) and warms it while
//! loading the subscribers table, then shares it read-only between its decode
//! threads ([`Pseudonymiser::share_warm`]), so each subscriber's number is
//! hashed once per replay. Batches of misses are hashed many at a time, one
//! number per SIMD lane (`tape_sha256`: 16 lanes with AVX-512, 8 with AVX2),
//! ~240 ns a number instead of ~710 ns one by one, and on several threads
//! when there are many ([`Pseudonymiser::pseudonymise_batch`]).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The default key: public, for demos and tests. A real deployment sets its own.
pub const DEMO_KEY: &str = "citywatch-demo-key-not-secret";

/// A phone number's pseudonym.
pub type Token = u64;

/// Formats a token the way alerts show it (`subject`): 16 hex digits.
pub fn token_hex(token: Token) -> String {
    format!("{token:016x}")
}

/// What can be read from the shape of a number, kept because the token hides it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct NumberClass(u8);

impl NumberClass {
    /// Dialled from abroad: `+` or `00` followed by a country code other than home.
    pub const INTERNATIONAL: u8 = 1;
    /// A mobile range sold to virtual operators (resold SIMs, favoured by fraud).
    pub const VIRTUAL_OPERATOR: u8 = 2;
    /// A service-number shape (bank/telecom hotlines: 95xxx, 96xxx, 100xx, 12xxx,
    /// 400/800 numbers).
    pub const SERVICE: u8 = 4;
    /// A service-number shape arriving with an international prefix: domestic
    /// hotlines never call from abroad, so the caller id is spoofed.
    pub const SPOOFED_SERVICE: u8 = 8;

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether a flag is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// Whether any of the risky flags (international, virtual, spoofed) is set.
    pub fn is_risky_prefix(self) -> bool {
        self.has(Self::INTERNATIONAL | Self::VIRTUAL_OPERATOR | Self::SPOOFED_SERVICE)
    }

    /// Classifies a number already checked by [`is_phone_number`].
    /// `home_cc` is the home country calling code without `+` (e.g. `86`).
    pub fn classify(number: &str, home_cc: &str) -> NumberClass {
        let (abroad_prefixed, rest) = if let Some(r) = number.strip_prefix('+') {
            (true, r)
        } else if let Some(r) = number.strip_prefix("00") {
            (true, r)
        } else {
            (false, number)
        };
        let mut bits = 0;
        let national = match (abroad_prefixed, rest.strip_prefix(home_cc)) {
            (true, Some(n)) => n,
            (true, None) => {
                bits |= Self::INTERNATIONAL;
                rest
            }
            (false, _) => rest,
        };
        let service = is_service_shape(national) || (abroad_prefixed && is_service_shape(rest));
        if service {
            bits |= Self::SERVICE;
            if abroad_prefixed {
                bits |= Self::SPOOFED_SERVICE;
            }
        }
        if national.len() == 11 && ["170", "171", "162", "165", "167"].iter().any(|p| national.starts_with(p)) {
            bits |= Self::VIRTUAL_OPERATOR;
        }
        NumberClass(bits)
    }
}

fn is_service_shape(n: &str) -> bool {
    let short = (5..=6).contains(&n.len()) && ["95", "96", "100", "12"].iter().any(|p| n.starts_with(p));
    let hotline = n.len() == 10 && (n.starts_with("400") || n.starts_with("800"));
    short || hotline
}

/// Whether `s` is a phone number per the contract: 3 to 20 digits, with an
/// optional leading `+`.
pub fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Default cache size (slots) of [`Pseudonymiser::new`]: 2^18 x 24 bytes = 6 MiB.
const DEFAULT_SLOTS: usize = 1 << 18;
/// Bounds of [`Pseudonymiser::with_capacity`]: 64 KiB to 3 GiB of cache.
const MIN_SLOTS: usize = 1 << 12;
const MAX_SLOTS: usize = 1 << 27;
/// Slots probed from a number's home slot (an overlapping 8-way set).
const WAYS: usize = 8;
/// Misses per batch from which [`Pseudonymiser::pseudonymise_batch`] hashes in parallel.
const PARALLEL_MISSES: usize = 512;
/// Misses per task when hashing in parallel.
const MISSES_PER_TASK: usize = 1024;
/// Numbers from which [`KeyBlocks::tokens`] hashes a lane per number: one
/// SIMD pass costs about as much as five HMACs one by one, whatever the
/// number of lanes it fills.
const LANE_HASHING_MIN: usize = 8;

/// HMAC-SHA256 as two plain SHA-256 passes over the key's padded blocks
/// (RFC 2104): `H(key ^ opad || H(key ^ ipad || number))`. Written out so
/// that many numbers can be hashed at once, one per SIMD lane; the `hmac`
/// crate's one-at-a-time HMAC stays the definition
/// ([`Pseudonymiser::token_uncached`]) and the tests hold the two equal.
#[derive(Clone)]
struct KeyBlocks {
    inner: [u8; 64],
    outer: [u8; 64],
}

impl KeyBlocks {
    fn new(key: &[u8]) -> Self {
        use sha2::Digest;
        // A key longer than a block is replaced by its hash, then zero-padded.
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        KeyBlocks { inner: k.map(|b| b ^ 0x36), outer: k.map(|b| b ^ 0x5c) }
    }

    /// The tokens of `numbers` (raw bytes) into `out`, lane-parallel.
    fn tokens(&self, numbers: &[&[u8]], out: &mut [Token]) {
        let mut digests = vec![[0u8; 32]; numbers.len()];
        tape_sha256::hash_many_prefixed(&self.inner, numbers, &mut digests);
        let inner: Vec<&[u8]> = digests.iter().map(|d| &d[..]).collect();
        let mut outer = vec![[0u8; 32]; numbers.len()];
        tape_sha256::hash_many_prefixed(&self.outer, &inner, &mut outer);
        for (t, d) in out.iter_mut().zip(&outer) {
            *t = u64::from_be_bytes(d[..8].try_into().expect("SHA-256 output is 32 bytes"));
        }
    }
}

/// One cache slot, 24 bytes: the number packed into 84 bits ([`pack`]), its token and class.
#[derive(Clone, Copy, Default)]
struct Slot {
    key_lo: u64,
    token: Token,
    key_hi: u32,
    class: NumberClass,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.key_lo == 0 && self.key_hi == 0
    }
}

/// Packs a phone number (checked by [`is_phone_number`]: at most 21 characters
/// of `+` and digits) into 84 bits, 4 per character: `0`-`9` as 1-10, `+` as 11.
/// No character packs to 0, so the packing is injective (length included) and
/// never all-zero (the empty-slot mark). `None` for anything else.
#[inline]
fn pack(bytes: &[u8]) -> Option<(u64, u32)> {
    if bytes.len() > 21 {
        return None;
    }
    let (mut lo, mut hi) = (0u64, 0u32);
    for (i, &b) in bytes.iter().enumerate() {
        let nibble = match b {
            b'0'..=b'9' => u64::from(b - b'0') + 1,
            b'+' => 11,
            _ => return None,
        };
        if i < 16 {
            lo |= nibble << (4 * i);
        } else {
            hi |= (nibble as u32) << (4 * (i - 16));
        }
    }
    Some((lo, hi))
}

/// Placement hash of a packed number; a table's home slot scales it to the
/// table's length ([`home`]). Every input bit must reach every output bit:
/// numbers of a city differ in their last digits, the high nibbles of `lo`,
/// so a plain multiply (which carries only upwards) would send 10 consecutive
/// numbers to one home. A murmur3-style finaliser mixes both ways.
#[inline]
fn mix(lo: u64, hi: u32) -> usize {
    let mut h = lo ^ u64::from(hi).rotate_left(23);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as usize
}

/// Home slot of a placement hash in a table of `len` slots: the high half of
/// `m * len` (multiply-shift), so a table of any length, not only a power of
/// two, is filled evenly.
#[inline]
fn home(m: usize, len: usize) -> usize {
    ((m as u128 * len as u128) >> 64) as usize
}

/// Slot `w` of the set starting at `h` (wrapping at the table's end).
#[inline]
fn way(h: usize, w: usize, len: usize) -> usize {
    let i = h + w;
    if i >= len { i - len } else { i }
}

/// The slot holding a packed number among the [`WAYS`] from its home, if any.
#[inline]
fn probe(table: &[Slot], lo: u64, hi: u32, h: usize) -> Option<(Token, NumberClass)> {
    for w in 0..WAYS {
        let s = &table[way(h, w, table.len())];
        if s.key_lo == lo && s.key_hi == hi {
            return Some((s.token, s.class));
        }
        if s.is_empty() {
            return None;
        }
    }
    None
}

/// Keyed pseudonymiser with its cache. Not shared between threads: each reader
/// thread owns one (cloning copies the key state and an empty cache of the same
/// size, not the cache contents). Several threads can share one read-only
/// *warm layer* ([`Pseudonymiser::share_warm`]): the numbers hashed while
/// loading the subscribers, looked up before each thread's own cache.
///
/// The cache is an open-addressed table of packed numbers probed over `WAYS` (8)
/// slots; when all are taken, the newcomer replaces one of them. It is sized
/// for the numbers expected ([`Pseudonymiser::with_capacity`]: twice the count,
/// so a city's subscribers fit with room to spare) and bounded: a city larger
/// than the cache only costs re-hashing, never memory. The cache only saves
/// work: a token is the same whether it came from the cache or the HMAC.
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
    blocks: KeyBlocks,
    home_cc: String,
    cache: Vec<Slot>,
    /// Read-only slots shared by the threads of one replay (the subscribers).
    warm: Option<Arc<[Slot]>>,
    /// Numbers hashed (cache misses), for profiling and tests.
    hashed: u64,
    /// Buffers of [`Pseudonymiser::pseudonymise_batch`], kept between batches
    /// rather than allocated (~256 KiB of keys) for each one.
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    /// Per number: packed key and home slot in the first table.
    keys: Vec<(u64, u32, u32)>,
    /// Per miss: index in the batch and packed key.
    misses: Vec<(usize, u64, u32)>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("home_cc", &self.home_cc)
            .field("cache_slots", &self.cache.len())
            .field("warm_slots", &self.warm.as_ref().map_or(0, |w| w.len()))
            .finish_non_exhaustive()
    }
}

impl Clone for Pseudonymiser {
    fn clone(&self) -> Self {
        self.with_slots_like(self.cache.len())
    }
}

impl Pseudonymiser {
    /// A pseudonymiser for `key`; `home_cc` is the home country calling code
    /// (digits, no `+`), used to tell international numbers. Its cache holds
    /// 2^18 slots (6 MiB); see [`Pseudonymiser::with_capacity`] for a city.
    pub fn new(key: &str, home_cc: &str) -> Self {
        Self::with_slots(key, home_cc, DEFAULT_SLOTS)
    }

    /// Like [`Pseudonymiser::new`], with a cache sized for about `numbers`
    /// distinct numbers (2 slots of 24 bytes each, between 4096 slots and
    /// 2^27). The length is not rounded up to a power of two (placement is
    /// multiply-shift), so 10M subscribers take 480 MB, not 805.
    pub fn with_capacity(key: &str, home_cc: &str, numbers: usize) -> Self {
        Self::new(key, home_cc).with_cache_for(numbers)
    }

    fn with_slots(key: &str, home_cc: &str, slots: usize) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
        Pseudonymiser {
            mac,
            blocks: KeyBlocks::new(key.as_bytes()),
            home_cc: home_cc.to_owned(),
            cache: vec![Slot::default(); slots],
            warm: None,
            hashed: 0,
            scratch: Scratch::default(),
        }
    }

    /// The same key, home code and shared warm layer (if any) with an empty
    /// cache of its own sized for about `numbers` distinct numbers (as
    /// [`Pseudonymiser::with_capacity`]).
    pub fn with_cache_for(&self, numbers: usize) -> Self {
        self.with_slots_like(numbers.saturating_mul(2).clamp(MIN_SLOTS, MAX_SLOTS))
    }

    /// The same key, home code and warm layer, with an empty cache of `slots`.
    fn with_slots_like(&self, slots: usize) -> Self {
        Pseudonymiser {
            mac: self.mac.clone(),
            blocks: self.blocks.clone(),
            home_cc: self.home_cc.clone(),
            cache: vec![Slot::default(); slots],
            warm: self.warm.clone(),
            hashed: 0,
            scratch: Scratch::default(),
        }
    }

    /// Turns this cache into a read-only warm layer that every pseudonymiser
    /// made from the result (by [`Clone`] or [`Pseudonymiser::with_cache_for`])
    /// shares, in front of an empty cache of its own for about `numbers` other
    /// numbers. This is how a replay's decode threads share the subscribers'
    /// pseudonyms without hashing them once per thread or copying the table.
    pub fn share_warm(self, numbers: usize) -> Self {
        let mut shared = self.with_cache_for(numbers);
        shared.warm = Some(self.cache.into());
        shared
    }

    /// Bytes held by the cache (its own, not the shared warm layer).
    pub fn cache_bytes(&self) -> usize {
        self.cache.len() * std::mem::size_of::<Slot>()
    }

    /// Numbers hashed so far (lookups the cache could not answer).
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// The token of a number, without the cache (the definition).
    pub fn token_uncached(&self, number: &str) -> Token {
        let mut mac = self.mac.clone();
        mac.update(number.as_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("SHA-256 output is 32 bytes"))
    }

    /// The cached token of a packed number: the warm layer first (most
    /// numbers are subscribers), then the own cache.
    #[inline]
    fn lookup(&self, lo: u64, hi: u32) -> Option<(Token, NumberClass)> {
        let m = mix(lo, hi);
        if let Some(w) = &self.warm
            && let Some(hit) = probe(w, lo, hi, home(m, w.len()))
        {
            return Some(hit);
        }
        probe(&self.cache, lo, hi, home(m, self.cache.len()))
    }

    fn insert(&mut self, lo: u64, hi: u32, token: Token, class: NumberClass) {
        let len = self.cache.len();
        let h = home(mix(lo, hi), len);
        let fresh = Slot { key_lo: lo, token, key_hi: hi, class };
        for w in 0..WAYS {
            let i = way(h, w, len);
            if self.cache[i].is_empty() || (self.cache[i].key_lo == lo && self.cache[i].key_hi == hi) {
                self.cache[i] = fresh;
                return;
            }
        }
        // Full set: evict a way chosen by the token's low bits (deterministic, spread).
        self.cache[way(h, token as usize % WAYS, len)] = fresh;
    }

    /// Token and class of a number already checked by [`is_phone_number`].
    pub fn pseudonymise(&mut self, number: &str) -> (Token, NumberClass) {
        let Some((lo, hi)) = pack(number.as_bytes()) else {
            self.hashed += 1;
            return (self.token_uncached(number), NumberClass::classify(number, &self.home_cc));
        };
        if let Some(hit) = self.lookup(lo, hi) {
            return hit;
        }
        self.hashed += 1;
        let token = self.token_uncached(number);
        let class = NumberClass::classify(number, &self.home_cc);
        self.insert(lo, hi, token, class);
        (token, class)
    }

    /// Tokens and classes of many numbers (each already checked by
    /// [`is_phone_number`]), in order, into `out` (cleared first). The same
    /// results as [`Pseudonymiser::pseudonymise`] one by one; cache lookups
    /// run in one tight loop (their memory accesses overlap) and, when many
    /// numbers miss, the HMACs run in parallel on rayon's pool.
    pub fn pseudonymise_batch(&mut self, numbers: &[&str], out: &mut Vec<(Token, NumberClass)>) {
        out.clear();
        out.reserve(numbers.len());
        // The first table looked in: the warm layer when there is one.
        let first: &[Slot] = self.warm.as_deref().unwrap_or(&self.cache);
        let len = first.len();
        // Pass 1: pack and place every number (no cache traffic). Pass 2: load
        // each home slot in a loop short enough that dozens of these loads (a
        // city's cache does not fit in the CPU caches) are in flight at once.
        let Scratch { mut keys, mut misses } = std::mem::take(&mut self.scratch);
        keys.clear();
        keys.extend(numbers.iter().map(|n| match pack(n.as_bytes()) {
            Some((lo, hi)) => (lo, hi, home(mix(lo, hi), len) as u32),
            None => (0, 0, 0),
        }));
        misses.clear();
        for (i, &(lo, hi, h)) in keys.iter().enumerate() {
            let s = &first[h as usize];
            // `lo` is never 0 for a packed number: 0 marks "could not pack".
            if s.key_lo == lo && s.key_hi == hi && lo != 0 {
                out.push((s.token, s.class));
                continue;
            }
            match (lo != 0).then(|| self.lookup(lo, hi)).flatten() {
                Some(hit) => out.push(hit),
                None => {
                    misses.push((i, lo, hi));
                    out.push((0, NumberClass(0)));
                }
            }
        }
        if !misses.is_empty() {
            self.hash_misses(numbers, &misses, out);
        }
        self.scratch = Scratch { keys, misses };
    }

    /// Hashes a batch's misses (a lane per number, and on rayon's pool when
    /// there are many) into `out` and the own cache.
    fn hash_misses(&mut self, numbers: &[&str], misses: &[(usize, u64, u32)], out: &mut [(Token, NumberClass)]) {
        self.hashed += misses.len() as u64;
        let mut computed = vec![(0, NumberClass(0)); misses.len()];
        let compute = |misses: &[(usize, u64, u32)], into: &mut [(Token, NumberClass)]| {
            let mut tokens = vec![0; misses.len()];
            if misses.len() >= LANE_HASHING_MIN {
                let raw: Vec<&[u8]> = misses.iter().map(|&(i, _, _)| numbers[i].as_bytes()).collect();
                self.blocks.tokens(&raw, &mut tokens);
            } else {
                for (t, &(i, _, _)) in tokens.iter_mut().zip(misses) {
                    *t = self.token_uncached(numbers[i]);
                }
            }
            for ((slot, &(i, _, _)), t) in into.iter_mut().zip(misses).zip(tokens) {
                *slot = (t, NumberClass::classify(numbers[i], &self.home_cc));
            }
        };
        if misses.len() >= PARALLEL_MISSES {
            use rayon::prelude::*;
            computed
                .par_chunks_mut(MISSES_PER_TASK)
                .zip(misses.par_chunks(MISSES_PER_TASK))
                .for_each(|(into, misses)| compute(misses, into));
        } else {
            compute(misses, &mut computed);
        }
        for (&(i, lo, hi), &(token, class)) in misses.iter().zip(&computed) {
            out[i] = (token, class);
            if lo != 0 || hi != 0 {
                self.insert(lo, hi, token, class);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_keyed_and_cache_agrees() {
        let mut a = Pseudonymiser::new(DEMO_KEY, "86");
        let b = Pseudonymiser::new("another key", "86");
        let n = "13800000001";
        let (t, _) = a.pseudonymise(n);
        assert_eq!(t, a.token_uncached(n));
        assert_eq!(a.pseudonymise(n).0, t, "cached lookup gives the same token");
        assert_ne!(t, b.token_uncached(n), "a different key gives a different token");
        assert_ne!(t, a.token_uncached("13800000002"));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("citywatch-demo-key-not-secret", "13800000001"), first 8 bytes.
        // Pinned so a change of definition is a deliberate, visible decision.
        let p = Pseudonymiser::new(DEMO_KEY, "86");
        let t = p.token_uncached("13800000001");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(DEMO_KEY.as_bytes()).unwrap();
        mac.update(b"13800000001");
        let full = mac.finalize().into_bytes();
        assert_eq!(token_hex(t), full[..8].iter().map(|b| format!("{b:02x}")).collect::<String>());
    }

    #[test]
    fn lane_hashing_is_hmac_for_any_key_and_number_length() {
        // Keys around the block size (a longer key is hashed first) and
        // numbers of every allowed length, in batches that do and do not
        // fill the lanes.
        let numbers: Vec<String> =
            (3..=21).flat_map(|len| (0..40u64).map(move |i| format!("{:0len$}", i * 7_919 + len as u64))).collect();
        let raw: Vec<&[u8]> = numbers.iter().map(String::as_bytes).collect();
        for key_len in [0, 1, 29, 63, 64, 65, 200] {
            let key: String = (0..key_len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let p = Pseudonymiser::new(&key, "86");
            for batch in [LANE_HASHING_MIN, 17, raw.len()] {
                for chunk in raw.chunks(batch) {
                    let mut got = vec![0; chunk.len()];
                    p.blocks.tokens(chunk, &mut got);
                    for (n, t) in chunk.iter().zip(got) {
                        let n = std::str::from_utf8(n).unwrap();
                        assert_eq!(t, p.token_uncached(n), "key of {key_len} bytes, number {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn batch_agrees_with_one_by_one_and_small_caches_evict_correctly() {
        let numbers: Vec<String> = (0..20_000u64)
            .map(|i| match i % 5 {
                0 => format!("+86{}", 13_800_000_000 + i % 7_000),
                1 => format!("{}", 13_900_000_000 + i % 3_000),
                2 => format!("00{}", 95_500 + i % 90),
                3 => format!("+4915{:011}", i),
                _ => format!("1{:020}", i),
            })
            .collect();
        let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
        let mut big = Pseudonymiser::with_capacity(DEMO_KEY, "86", 100_000);
        let mut tiny = Pseudonymiser::with_capacity(DEMO_KEY, "86", 10);
        let mut out = Vec::new();
        big.pseudonymise_batch(&refs, &mut out);
        for (n, got) in refs.iter().zip(&out) {
            let want = (big.token_uncached(n), NumberClass::classify(n, "86"));
            assert_eq!(*got, want, "{n}");
            assert_eq!(tiny.pseudonymise(n), want, "{n}");
            assert_eq!(big.pseudonymise(n), want, "{n} (cached)");
        }
        tiny.pseudonymise_batch(&refs, &mut out);
        for (n, got) in refs.iter().zip(&out) {
            assert_eq!(got.0, big.token_uncached(n), "{n}");
        }
    }

    #[test]
    fn a_city_of_consecutive_numbers_fits_its_cache() {
        // 100k numbers differing in their last digits: with twice the slots,
        // each is hashed once however often it is looked up again.
        let mut p = Pseudonymiser::with_capacity(DEMO_KEY, "86", 100_000);
        let numbers: Vec<String> = (0..100_000u64).map(|i| format!("{}", 13_800_000_000 + i)).collect();
        for _ in 0..2 {
            for n in &numbers {
                p.pseudonymise(n);
            }
        }
        assert!(p.hashed() < 101_000, "hashed {} of 100000 distinct numbers", p.hashed());
    }

    #[test]
    fn threads_share_the_warm_layer_and_keep_their_own_misses() {
        let subscribers: Vec<String> = (0..50_000u64).map(|i| format!("{}", 13_800_000_000 + i)).collect();
        let outsiders: Vec<String> = (0..5_000u64).map(|i| format!("+4915{:09}", i)).collect();
        let mut warm = Pseudonymiser::with_capacity(DEMO_KEY, "86", subscribers.len());
        for n in &subscribers {
            warm.pseudonymise(n);
        }
        let shared = warm.share_warm(outsiders.len());
        let (mut a, mut b) = (shared.clone(), shared.with_cache_for(10));
        let mut out = Vec::new();
        for p in [&mut a, &mut b] {
            let refs: Vec<&str> = subscribers.iter().chain(&outsiders).map(String::as_str).collect();
            p.pseudonymise_batch(&refs, &mut out);
            for (n, got) in refs.iter().zip(&out) {
                assert_eq!(*got, (p.token_uncached(n), NumberClass::classify(n, "86")), "{n}");
            }
            // A few subscribers lost their slot to a full set while warming
            // (the cache is bounded); every other one comes from the warm layer.
            let from_warm = (refs.len() as u64) - p.hashed();
            assert!(from_warm >= 49_500 && p.hashed() >= 5_000, "hashed {} of {}", p.hashed(), refs.len());
        }
        // `a`'s own cache, sized for the outsiders, kept them: a second pass
        // hashes almost none again (a full set of 8 ways evicts one now and then).
        let before = a.hashed();
        let refs: Vec<&str> = outsiders.iter().map(String::as_str).collect();
        a.pseudonymise_batch(&refs, &mut out);
        assert!(a.hashed() - before <= 100, "hashed {} of 5000 again", a.hashed() - before);
    }

    #[test]
    fn packing_is_injective_on_lengths_and_plus() {
        assert_ne!(pack(b"0123"), pack(b"123"));
        assert_ne!(pack(b"+123"), pack(b"0123"));
        assert_ne!(pack(b"00123"), pack(b"0123"));
        assert!(pack(b"+12345678901234567890").is_some());
        assert!(pack(b"+123456789012345678901").is_none());
        assert_ne!(pack(b"123"), Some((0, 0)));
    }

    #[test]
    fn classes() {
        let c = |n| NumberClass::classify(n, "86");
        assert!(c("+4915112345678").has(NumberClass::INTERNATIONAL));
        assert!(!c("+8613800000000").has(NumberClass::INTERNATIONAL));
        assert!(c("17012345678").has(NumberClass::VIRTUAL_OPERATOR));
        assert!(c("95588").has(NumberClass::SERVICE));
        assert!(!c("95588").is_risky_prefix(), "a real bank hotline is not risky");
        assert!(c("+95588").has(NumberClass::SPOOFED_SERVICE));
        assert!(c("0095588").is_risky_prefix());
        assert!(!c("13912345678").is_risky_prefix());
    }

    #[test]
    fn phone_number_shape() {
        assert!(is_phone_number("+8613800000000"));
        assert!(is_phone_number("110"));
        assert!(!is_phone_number("12a45"));
        assert!(!is_phone_number("+"));
        assert!(!is_phone_number(""));
    }
}
