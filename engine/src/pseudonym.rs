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
//! Cost: without SHA instructions one HMAC is ~0.7 µs, so [`Pseudonymiser`]
//! keeps a bounded direct-mapped cache (numbers repeat: people call their
//! contacts), which turns most lookups into one hash and one compare.

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

/// Entries in the direct-mapped cache (a power of two). 2^18 entries x 40 bytes
/// = 10 MiB per pseudonymiser: bounded whatever the number of subscribers.
const CACHE_SLOTS: usize = 1 << 18;
/// Numbers longer than this are hashed every time (E.164 is at most 16 bytes with `+`).
const CACHE_MAX_LEN: usize = 20;

#[derive(Clone, Copy)]
struct Slot {
    len: u8,
    bytes: [u8; CACHE_MAX_LEN],
    token: Token,
    class: NumberClass,
}

/// Keyed pseudonymiser with its cache. Not shared between threads: each reader
/// thread owns one (cloning copies the key state, not the cache contents).
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
    home_cc: String,
    cache: Vec<Slot>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymiser").field("home_cc", &self.home_cc).finish_non_exhaustive()
    }
}

impl Clone for Pseudonymiser {
    fn clone(&self) -> Self {
        Pseudonymiser { mac: self.mac.clone(), home_cc: self.home_cc.clone(), cache: empty_cache() }
    }
}

fn empty_cache() -> Vec<Slot> {
    vec![Slot { len: u8::MAX, bytes: [0; CACHE_MAX_LEN], token: 0, class: NumberClass(0) }; CACHE_SLOTS]
}

impl Pseudonymiser {
    /// A pseudonymiser for `key`; `home_cc` is the home country calling code
    /// (digits, no `+`), used to tell international numbers.
    pub fn new(key: &str, home_cc: &str) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
        Pseudonymiser { mac, home_cc: home_cc.to_owned(), cache: empty_cache() }
    }

    /// The token of a number, without the cache (the definition).
    pub fn token_uncached(&self, number: &str) -> Token {
        let mut mac = self.mac.clone();
        mac.update(number.as_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("SHA-256 output is 32 bytes"))
    }

    /// Token and class of a number already checked by [`is_phone_number`].
    pub fn pseudonymise(&mut self, number: &str) -> (Token, NumberClass) {
        let bytes = number.as_bytes();
        if bytes.len() > CACHE_MAX_LEN {
            return (self.token_uncached(number), NumberClass::classify(number, &self.home_cc));
        }
        let slot_index = (fx_hash(bytes) as usize) & (CACHE_SLOTS - 1);
        let slot = &self.cache[slot_index];
        if slot.len as usize == bytes.len() && &slot.bytes[..bytes.len()] == bytes {
            return (slot.token, slot.class);
        }
        let token = self.token_uncached(number);
        let class = NumberClass::classify(number, &self.home_cc);
        let mut fresh = Slot { len: bytes.len() as u8, bytes: [0; CACHE_MAX_LEN], token, class };
        fresh.bytes[..bytes.len()].copy_from_slice(bytes);
        self.cache[slot_index] = fresh;
        (token, class)
    }
}

/// A fast non-cryptographic hash for cache placement only (FxHash over 8-byte words).
fn fx_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = 0;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^ (h >> 29)
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
