//! Bearer tokens and who they belong to.
//!
//! A token looks like `cw_<id>_<secret>`: `id` is 8 hex digits naming one
//! entry of the credentials file (so a request costs at most one argon2
//! verification, not one per officer), `secret` 32 hex digits of OS
//! randomness. The file holds only the argon2id hash of each whole token:
//!
//! ```json
//! {"tokens": [{"id": "1a2b3c4d", "officer_id": "o-an", "hash": "$argon2id$v=19$..."}]}
//! ```
//!
//! argon2 is slow on purpose (tens of ms), so a verified token is cached in
//! memory keyed by the SHA-256 of the token (the plaintext is never kept);
//! the first successful verification of a token in a process is the "login"
//! the audit chain records. The officer's role and scope come from the
//! officers table (the jurisdiction), never from the file, so one source of
//! truth decides who sees what.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use citywatch_engine::contract::Role;
use citywatch_engine::jurisdiction::{Jurisdiction, Officer, scope_covers};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One line of the credentials file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Credential {
    /// The token's public id (8 hex digits, the part after `cw_`).
    pub id: String,
    /// Whose token it is: an `officer_id` of the officers table.
    pub officer_id: String,
    /// argon2 PHC string of the whole token.
    pub hash: String,
}

/// The credentials file.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CredentialsFile {
    /// Every issued token.
    pub tokens: Vec<Credential>,
}

impl CredentialsFile {
    /// Reads a credentials file.
    pub fn load(path: &Path) -> Result<CredentialsFile> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "credentials file",
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Credentials { path: path.to_owned(), reason: e.to_string() })
    }

    /// Writes it (pretty JSON) to a temporary file beside `path`, then renames
    /// it over `path`: a running server that reloads the file never reads it
    /// half written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let io = |source| Error::Io { what: "credentials file", path: path.to_owned(), source };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Removes the tokens whose public id is `id` (the 8 hex digits after
    /// `cw_`, or a whole token). Returns the officers whose tokens were removed.
    pub fn revoke(&mut self, id: &str) -> Vec<String> {
        let id = claimed_id(id).unwrap_or(id);
        let mut gone = Vec::new();
        self.tokens.retain(|c| {
            let keep = c.id != id;
            if !keep {
                gone.push(c.officer_id.clone());
            }
            keep
        });
        gone
    }

    /// Issues a new token for `officer_id`, stores its hash, and returns the plaintext
    /// (shown once: it cannot be recovered from the file).
    pub fn issue(&mut self, officer_id: &str) -> Result<String> {
        let id = hex(&random_bytes::<4>()?);
        let token = format!("cw_{id}_{}", hex(&random_bytes::<16>()?));
        let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| Error::Internal(e.to_string()))?;
        let hash =
            Argon2::default().hash_password(token.as_bytes(), &salt).map_err(|e| Error::Internal(e.to_string()))?;
        self.tokens.push(Credential { id, officer_id: officer_id.to_owned(), hash: hash.to_string() });
        Ok(token)
    }
}

/// Plaintext demo tokens, for `citywatch demo` to print.
#[derive(Debug, Clone)]
pub struct DemoTokens {
    /// The credentials file written.
    pub credentials_path: PathBuf,
    /// An analyst (scope `city`): `(officer_id, token)`.
    pub analyst: (String, String),
    /// One community officer: `(officer_id, token)`.
    pub community: (String, String),
}

/// Writes a credentials file with a fresh token for the first analyst and the
/// first community officer of `jurisdiction` (by id), and returns the
/// plaintext tokens. Only their argon2 hashes are stored.
pub fn demo_credentials(path: &Path, jurisdiction: &Jurisdiction) -> Result<DemoTokens> {
    let first = |role: Role| {
        jurisdiction.officers().iter().find(|o| o.role == role).map(|o| o.officer_id.clone()).ok_or_else(|| {
            Error::Credentials {
                path: path.to_owned(),
                reason: format!("the officers table has no {} officer to issue a demo token to", role.as_str()),
            }
        })
    };
    let (analyst, community) = (first(Role::Analyst)?, first(Role::Community)?);
    let mut file = CredentialsFile::default();
    let at = file.issue(&analyst)?;
    let ct = file.issue(&community)?;
    file.save(path)?;
    Ok(DemoTokens { credentials_path: path.to_owned(), analyst: (analyst, at), community: (community, ct) })
}

/// An authenticated caller.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Caller {
    /// The officer.
    pub officer: Officer,
}

impl Caller {
    /// Whether the caller may see an alert placed at these ids or assigned to them.
    pub fn sees(&self, place: [Option<&str>; 4], assignee: Option<&str>) -> bool {
        assignee == Some(self.officer.officer_id.as_str())
            || scope_covers(&self.officer.scope, place[0], place[1], place[2], place[3])
    }
}

/// Outcome of checking a token.
#[derive(Debug, Clone)]
pub enum Verified {
    /// Known token; `first` when this is its first verification in this process (a login).
    Ok {
        /// The caller.
        caller: Caller,
        /// First verification (audited as a login).
        first: bool,
    },
    /// Unknown, malformed or wrong token.
    Denied,
}

/// Token verification with its cache.
#[derive(Debug)]
pub struct Authenticator {
    /// The credentials file's tokens by public id; replaced by [`Authenticator::reload`].
    by_id: RwLock<HashMap<String, Credential>>,
    officers: HashMap<String, Officer>,
    /// SHA-256 of verified tokens -> (public id, officer_id).
    cache: Mutex<HashMap<[u8; 32], (String, String)>>,
    /// Bumped by every reload, so open streams re-check their token.
    generation: tokio::sync::watch::Sender<u64>,
    /// SHA-256 of tokens that named a real id but failed argon2: a client
    /// retrying a wrong token does not cost an argon2 run each time. Bounded.
    denied: Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Most remembered wrong tokens (then the set starts over).
const DENIED_CAP: usize = 10_000;

impl Authenticator {
    /// From a credentials file and the officers table.
    pub fn new(file: CredentialsFile, officers: &[Officer]) -> Self {
        Authenticator {
            by_id: RwLock::new(file.tokens.into_iter().map(|c| (c.id.clone(), c)).collect()),
            officers: officers.iter().map(|o| (o.officer_id.clone(), o.clone())).collect(),
            cache: Mutex::new(HashMap::new()),
            generation: tokio::sync::watch::Sender::new(0),
            denied: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The cached answer, without argon2 (cheap: call it on the async runtime).
    pub fn cached(&self, token: &str) -> Option<Caller> {
        let key = sha256(token.as_bytes());
        let (_, officer) = self.cache.lock().ok()?.get(&key).cloned()?;
        self.officers.get(&officer).map(|o| Caller { officer: o.clone() })
    }

    /// Replaces the tokens with those of `file` (a reloaded credentials
    /// file): new tokens work from now on, removed ones stop at once (their
    /// cached verifications are dropped; open streams are told through
    /// [`Authenticator::reloads`]). Returns `(tokens added, tokens removed)`.
    pub fn reload(&self, file: CredentialsFile) -> (usize, usize) {
        let new: HashMap<String, Credential> = file.tokens.into_iter().map(|c| (c.id.clone(), c)).collect();
        // Lock order: the cache, then the tokens (as `verify` does).
        let Ok(mut cache) = self.cache.lock() else { return (0, 0) };
        let Ok(mut by_id) = self.by_id.write() else { return (0, 0) };
        let same = |id: &str| match (by_id.get(id), new.get(id)) {
            (Some(a), Some(b)) => a.hash == b.hash && a.officer_id == b.officer_id,
            _ => false,
        };
        let added = new.keys().filter(|id| !by_id.contains_key(*id)).count();
        let removed = by_id.keys().filter(|id| !same(id)).count();
        cache.retain(|_, (id, _)| same(id));
        if let Ok(mut denied) = self.denied.lock() {
            denied.clear();
        }
        *by_id = new;
        drop((by_id, cache));
        self.generation.send_modify(|g| *g += 1);
        (added, removed)
    }

    /// Changes whenever the tokens are reloaded.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Full verification (slow on a cache miss: run it off the async runtime).
    pub fn verify(&self, token: &str) -> Verified {
        if let Some(caller) = self.cached(token) {
            return Verified::Ok { caller, first: false };
        }
        let Some(id) = claimed_id(token) else {
            return Verified::Denied;
        };
        let Some(cred) = self.by_id.read().ok().and_then(|m| m.get(id).cloned()) else { return Verified::Denied };
        let Some(officer) = self.officers.get(&cred.officer_id) else { return Verified::Denied };
        let key = sha256(token.as_bytes());
        if self.denied.lock().is_ok_and(|d| d.contains(&key)) {
            return Verified::Denied;
        }
        let Ok(hash) = PasswordHash::new(&cred.hash) else { return Verified::Denied };
        if Argon2::default().verify_password(token.as_bytes(), &hash).is_err() {
            if let Ok(mut d) = self.denied.lock() {
                if d.len() >= DENIED_CAP {
                    d.clear();
                }
                d.insert(key);
            }
            return Verified::Denied;
        }
        // A reload may have removed the token during the argon2 run: cache it
        // only if it is still there (the check and the insert under the cache
        // lock, which a reload also takes after replacing the tokens).
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(_) => return Verified::Denied,
        };
        let still = self.by_id.read().is_ok_and(|m| m.get(id).is_some_and(|c| c.hash == cred.hash));
        if !still {
            return Verified::Denied;
        }
        let first = cache.insert(key, (cred.id.clone(), officer.officer_id.clone())).is_none();
        drop(cache);
        Verified::Ok { caller: Caller { officer: officer.clone() }, first }
    }
}

/// Failed authentications per client address in fixed one-minute windows.
///
/// Tokens are 128-bit random, so guessing is hopeless anyway; the limit keeps
/// a client from spending the server's CPU on argon2 runs and the audit
/// chain on failure rows. Memory is bounded: at most [`THROTTLE_CAP`]
/// addresses are tracked (then the table starts over).
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window_ms: i64,
    by_addr: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

/// Most client addresses the throttle tracks at once.
const THROTTLE_CAP: usize = 100_000;

/// What [`Throttle::fail`] decided about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Under the limit: audit it.
    Counted(u32),
    /// This failure reached the limit: audit it, and the address is refused until the window ends.
    Reached(u32),
}

impl Throttle {
    /// At most `limit` failures per address per minute (0: no limit).
    pub fn per_minute(limit: u32) -> Self {
        Throttle { limit, window_ms: 60_000, by_addr: Mutex::new(HashMap::new()) }
    }

    /// Milliseconds until `addr` may try again, if it is over the limit at `now_ms`.
    pub fn retry_after_ms(&self, addr: IpAddr, now_ms: i64) -> Option<i64> {
        if self.limit == 0 {
            return None;
        }
        let map = self.by_addr.lock().ok()?;
        let &(start, n) = map.get(&addr)?;
        let end = start + self.window_ms;
        (n >= self.limit && now_ms < end).then_some(end - now_ms)
    }

    /// Records a failed authentication from `addr` at `now_ms`.
    pub fn fail(&self, addr: IpAddr, now_ms: i64) -> Failure {
        let Ok(mut map) = self.by_addr.lock() else { return Failure::Counted(0) };
        if map.len() >= THROTTLE_CAP && !map.contains_key(&addr) {
            map.clear();
        }
        let entry = map.entry(addr).or_insert((now_ms, 0));
        if now_ms >= entry.0 + self.window_ms {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        if self.limit > 0 && entry.1 == self.limit { Failure::Reached(entry.1) } else { Failure::Counted(entry.1) }
    }
}

/// The credential id a token names (`cw_<id>_...`), if it has that shape; for
/// audit rows of failures (the secret part is never recorded).
pub fn claimed_id(token: &str) -> Option<&str> {
    let id = token.strip_prefix("cw_")?.split('_').next()?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// SHA-256 of bytes.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random secret (256 bits, hex) from the OS, for `citywatch demo`'s
/// per-run pseudonym and vault keys.
pub fn random_key() -> Result<String> {
    Ok(hex(&random_bytes::<32>()?))
}

/// OS randomness (Linux `/dev/urandom`: the crate targets Linux servers and
/// this avoids a dependency for 16 bytes at a time).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    use std::io::Read;
    let path = Path::new("/dev/urandom");
    let mut out = [0u8; N];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut out)).map_err(|source| Error::Io {
        what: "randomness source",
        path: path.to_owned(),
        source,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_refuses_an_address_at_the_limit_until_the_window_ends() {
        let t = Throttle::per_minute(3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(t.fail(a, 1_000), Failure::Counted(1));
        assert_eq!(t.fail(a, 2_000), Failure::Counted(2));
        assert_eq!(t.retry_after_ms(a, 2_000), None);
        assert_eq!(t.fail(a, 3_000), Failure::Reached(3));
        assert_eq!(t.retry_after_ms(a, 3_000), Some(58_000));
        assert_eq!(t.retry_after_ms(b, 3_000), None, "another address is not affected");
        assert_eq!(t.retry_after_ms(a, 61_000), None, "the window is over");
        assert_eq!(t.fail(a, 61_000), Failure::Counted(1), "a new window starts from zero");
        let off = Throttle::per_minute(0);
        for i in 0..100 {
            off.fail(a, i);
        }
        assert_eq!(off.retry_after_ms(a, 100), None);
    }

    #[test]
    fn claimed_id_takes_only_the_public_part() {
        assert_eq!(claimed_id("cw_1a2b3c4d_00112233445566778899aabbccddeeff"), Some("1a2b3c4d"));
        assert_eq!(claimed_id("cw_nothex!!_x"), None);
        assert_eq!(claimed_id("Bearer xyz"), None);
    }

    #[test]
    fn issued_token_verifies_and_caches() {
        let officers =
            vec![Officer { officer_id: "o1".into(), name: "O".into(), role: Role::Analyst, scope: "city".into() }];
        let mut f = CredentialsFile::default();
        let t = f.issue("o1").unwrap();
        assert!(!f.tokens[0].hash.contains(&t));
        let a = Authenticator::new(f, &officers);
        assert!(a.cached(&t).is_none());
        assert!(matches!(a.verify(&t), Verified::Ok { first: true, .. }));
        assert!(matches!(a.verify(&t), Verified::Ok { first: false, .. }));
        assert!(a.cached(&t).is_some());
        assert!(matches!(a.verify(&format!("{t}x")), Verified::Denied));
        assert!(matches!(a.verify("nonsense"), Verified::Denied));
    }

    #[test]
    fn reload_adds_tokens_and_drops_revoked_ones_even_when_cached() {
        let officers = vec![
            Officer { officer_id: "a".into(), name: "A".into(), role: Role::Analyst, scope: "city".into() },
            Officer { officer_id: "b".into(), name: "B".into(), role: Role::Analyst, scope: "city".into() },
        ];
        let mut file = CredentialsFile::default();
        let ta = file.issue("a").unwrap();
        let auth = Authenticator::new(file.clone(), &officers);
        let reloads = auth.reloads();
        assert!(matches!(auth.verify(&ta), Verified::Ok { .. }));
        assert!(auth.cached(&ta).is_some());
        let tb = file.issue("b").unwrap();
        assert!(matches!(auth.verify(&tb), Verified::Denied));
        assert_eq!(auth.reload(file.clone()), (1, 0));
        assert!(matches!(auth.verify(&tb), Verified::Ok { .. }), "a token wrongly refused before the reload now works");
        assert!(auth.cached(&ta).is_some(), "unchanged tokens keep their cached verification");
        assert_eq!(file.revoke(&ta), vec!["a".to_owned()]);
        assert_eq!(auth.reload(file), (0, 1));
        assert!(auth.cached(&ta).is_none() && matches!(auth.verify(&ta), Verified::Denied));
        assert!(reloads.has_changed().unwrap(), "streams are told");
    }
}
