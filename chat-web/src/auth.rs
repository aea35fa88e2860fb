//! Passwords (argon2id, hashed on a bounded blocking pool) and bearer tokens (HMAC-signed
//! with a key shared through the broker, so every front end of the chat accepts them;
//! expiring; revoked everywhere by a directory event; a session using one ends with it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;
use crate::model::now_ms;

/// argon2's working memory for the parameters new hashes use (19 MiB with the crate's defaults),
/// allocated once per hashing permit and reused for every hash.
///
/// Measured (bench/chat.sh, 2000 sessions, 20 rooms, 41 sign-ups): with a fresh 19 MiB block per
/// hash, the front end's RSS went from 24 MiB to 200 MiB during the sign-ups and stayed there.
/// glibc raises its mmap threshold to the size of the first big block it frees, so every later
/// block came from the arena of whichever blocking thread ran the hash, and each arena kept
/// its 19 MiB (up to 8 arenas a core). Reused, the memory is one block per permit.
pub struct Scratch(Vec<Block>);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(vec![Block::default(); Params::default().block_count()])
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// A PHC string (`$argon2id$v=19$m=...`) for `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    hash_password_with(&mut Scratch::new(), password)
}

/// [`hash_password`] in `scratch`'s memory.
pub fn hash_password_with(scratch: &mut Scratch, password: &str) -> Result<String, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(e.to_string());
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let argon = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut scratch.0).map_err(|e| bad(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| bad(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| bad(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| bad(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_password_with(&mut Scratch::new(), password, hash)
}

/// [`verify_password`] in `scratch`'s memory (a hash made with more memory than `scratch` has,
/// by other parameters, gets its own).
pub fn verify_password_with(scratch: &mut Scratch, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let too_big = params.block_count() > scratch.0.len();
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    if too_big {
        return argon.verify_password(password.as_bytes(), &parsed).is_ok();
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut scratch.0).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time
    Output::new(&out).is_ok_and(|out| out == expected)
}

/// Where passwords are hashed and checked: tokio's blocking threads, at most `threads` at a
/// time, each in one of `threads` reused [`Scratch`] memories. argon2 takes tens of
/// milliseconds of CPU (more in a debug build); on the runtime threads, which the embedded
/// broker shares, a burst of sign-ups or logins would stall every AMQP client of the process.
/// Requests beyond `threads` wait for a permit without holding a thread.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Memories not in use (at most `threads` are ever made: one per permit).
    scratch: Arc<Mutex<Vec<Scratch>>>,
}

impl Passwords {
    pub fn new(threads: usize) -> Self {
        Passwords { permits: Arc::new(Semaphore::new(threads.max(1))), scratch: Arc::default() }
    }

    /// Run `work` on a blocking thread once a permit is free, with a memory of its own.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("password pool closed".into()))?;
        let pool = self.scratch.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut scratch = pool.lock().pop().unwrap_or_default();
            let done = work(&mut scratch);
            pool.lock().push(scratch);
            done
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move |scratch| hash_password_with(scratch, &password)).await?
    }

    /// Whether `password` matches `hash` (false when there is no hash).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        match hash {
            Some(hash) => self.run(move |scratch| verify_password_with(scratch, &password, &hash)).await,
            None => Ok(false),
        }
    }

    /// How many memories were made so far (at most one per permit).
    #[cfg(test)]
    fn memories(&self) -> usize {
        self.scratch.lock().len()
    }
}

/// A user name: 2 to 32 of `a-z 0-9 -`, starting with a letter.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable("user names are 2-32 of a-z, 0-9 and '-', starting with a letter".into()))
    }
}

pub fn check_password(password: &str) -> Result<(), ApiError> {
    if (8..=256).contains(&password.len()) {
        Ok(())
    } else {
        Err(ApiError::Unprocessable("passwords are 8 to 256 bytes".into()))
    }
}

/// Resolves when a token ends: revoked (logout, on any front end) or expired.
pub struct TokenEnd {
    alive: watch::Receiver<()>,
    deadline: Instant,
    revoked: bool,
}

/// Why a token ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
}

impl TokenEnd {
    pub async fn ended(&mut self) -> Ended {
        if self.revoked {
            return Ended::Revoked;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(self.deadline.into()) => Ended::Expired,
            _ = async { while self.alive.changed().await.is_ok() {} } => {
                self.revoked = true;
                Ended::Revoked
            }
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A token's parts: `USER.EXPIRES_MS.ID.SIGNATURE`, the signature an HMAC-SHA256 of the rest
/// under the chat's token key.
struct Parsed<'a> {
    user: &'a str,
    expires_at: u64,
    id: &'a str,
}

/// Bearer tokens any front end of the same chat accepts: signed with a key every front end
/// folds from `chat.directory` (generated once by the first front end; only the chat's service
/// user can read that stream), valid until `expires_at` (unix ms, wall clock: front ends on
/// other machines check it too). A logout is a `token_revoked` directory event, so it holds on
/// every front end, and ends the sessions using the token there.
pub struct Tokens {
    ttl: Duration,
    key: RwLock<Option<Vec<u8>>>,
    /// Revoked token ids, with their expiry (dropped once expired: then they fail anyway).
    revoked: Mutex<HashMap<String, u64>>,
    /// Per token id in use by a live session: dropped on revocation, which ends them.
    live: Mutex<HashMap<String, watch::Sender<()>>>,
    /// Disabled accounts: their tokens are refused (folded from the directory).
    disabled: Mutex<std::collections::HashSet<String>>,
    /// Who each live token (by id) belongs to: a disabled account's sessions end at once.
    owners: Mutex<HashMap<String, String>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A fresh random token key, hex (as it travels in the directory event).
pub fn new_token_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    hex(&key)
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens {
            ttl,
            key: RwLock::new(None),
            revoked: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            disabled: Mutex::new(Default::default()),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Use `key_hex` (from the directory) to sign and check tokens; false if it is not hex.
    pub fn set_key(&self, key_hex: &str) -> bool {
        match unhex(key_hex).filter(|k| !k.is_empty()) {
            Some(key) => {
                *self.key.write() = Some(key);
                true
            }
            None => false,
        }
    }

    fn mac(&self, payload: &str) -> Result<HmacSha256, ApiError> {
        let key = self.key.read();
        let key = key.as_deref().ok_or_else(|| ApiError::Broker("the chat's token key is not loaded yet".into()))?;
        let mut mac = HmacSha256::new_from_slice(key).map_err(|e| ApiError::Internal(e.to_string()))?;
        mac.update(payload.as_bytes());
        Ok(mac)
    }

    /// Issue a token; returns it with its expiry (unix ms).
    pub fn issue(&self, user: &str) -> Result<(String, u64), ApiError> {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let expires_at = now_ms() + self.ttl.as_millis() as u64;
        let payload = format!("{user}.{expires_at}.{}", hex(&id));
        let signature = hex(&self.mac(&payload)?.finalize().into_bytes());
        Ok((format!("{payload}.{signature}"), expires_at))
    }

    /// A well-formed token whose signature is right (expired or revoked or not).
    fn parse<'a>(&self, token: &'a str) -> Result<Parsed<'a>, ApiError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(ApiError::Unauthorized)?;
        let mut parts = payload.splitn(3, '.');
        let (Some(user), Some(expires_at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::Unauthorized);
        };
        let expires_at = expires_at.parse().map_err(|_| ApiError::Unauthorized)?;
        let signature = unhex(signature).ok_or(ApiError::Unauthorized)?;
        self.mac(payload)?.verify_slice(&signature).map_err(|_| ApiError::Unauthorized)?;
        Ok(Parsed { user, expires_at, id })
    }

    fn valid<'a>(&self, token: &'a str) -> Result<Parsed<'a>, ApiError> {
        let t = self.parse(token)?;
        if t.expires_at <= now_ms() || self.revoked.lock().contains_key(t.id) || self.disabled.lock().contains(t.user) {
            return Err(ApiError::Unauthorized);
        }
        Ok(t)
    }

    /// The user a token belongs to, if it is ours, unexpired and not revoked.
    pub fn check(&self, token: &str) -> Result<String, ApiError> {
        self.valid(token).map(|t| t.user.to_owned())
    }

    /// Like `check`, with a `TokenEnd` that resolves when the token is revoked or expires.
    pub fn watch(&self, token: &str) -> Result<(String, TokenEnd), ApiError> {
        let t = self.valid(token)?;
        let left = Duration::from_millis(t.expires_at.saturating_sub(now_ms()));
        let alive = {
            let mut live = self.live.lock();
            live.retain(|_, tx| tx.receiver_count() > 0);
            let alive = live.entry(t.id.to_owned()).or_insert_with(|| watch::channel(()).0).subscribe();
            let mut owners = self.owners.lock();
            owners.retain(|id, _| live.contains_key(id));
            owners.insert(t.id.to_owned(), t.user.to_owned());
            alive
        };
        // revoked between the check and the subscription: ended already
        let revoked = self.revoked.lock().contains_key(t.id);
        Ok((t.user.to_owned(), TokenEnd { alive, deadline: Instant::now() + left, revoked }))
    }

    /// The id and expiry of a token to revoke (what the `token_revoked` event carries).
    pub fn revocation(&self, token: &str) -> Result<(String, u64), ApiError> {
        let t = self.parse(token)?;
        Ok((t.id.to_owned(), t.expires_at))
    }

    /// Token `id` is revoked (by this or another front end): refuse it, end its sessions.
    pub fn revoke_id(&self, id: &str, expires_at: u64) {
        {
            let now = now_ms();
            let mut revoked = self.revoked.lock();
            revoked.retain(|_, exp| *exp > now);
            if expires_at > now {
                revoked.insert(id.to_owned(), expires_at);
            }
        }
        self.live.lock().remove(id);
    }

    /// End every token of `user` (a disabled account): its sessions close at once.
    pub fn revoke_user(&self, user: &str) {
        self.disabled.lock().insert(user.to_owned());
        let ids: Vec<String> = {
            let mut owners = self.owners.lock();
            let ids = owners.iter().filter(|(_, u)| u.as_str() == user).map(|(id, _)| id.clone()).collect();
            owners.retain(|_, u| u != user);
            ids
        };
        let mut live = self.live.lock();
        for id in ids {
            live.remove(&id);
        }
    }

    /// An account enabled again: its new tokens are good.
    pub fn enable_user(&self, user: &str) {
        self.disabled.lock().remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
        // what the crate's own hasher makes (hashes stored before the scratch memory) verifies,
        // and ours verifies with the crate's verifier
        let theirs = argon2::PasswordHasher::hash_password(
            &Argon2::default(),
            b"correct horse",
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string();
        let mut scratch = Scratch::new();
        assert!(verify_password_with(&mut scratch, "correct horse", &theirs));
        assert!(!verify_password_with(&mut scratch, "correct horsf", &theirs));
        let ours = hash_password_with(&mut scratch, "battery staple").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"battery staple", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"battery stapler", &parsed).is_err());
        // a hash with more memory than the scratch holds still verifies (in memory of its own)
        let big = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(32 * 1024, 1, 1, None).unwrap());
        let big = argon2::PasswordHasher::hash_password(&big, b"pw", &SaltString::encode_b64(b"saltsaltsalt").unwrap())
            .unwrap()
            .to_string();
        assert!(verify_password_with(&mut scratch, "pw", &big));
        assert!(!verify_password_with(&mut scratch, "pq", &big));
    }

    fn tokens(ttl: Duration, key: &str) -> Tokens {
        let t = Tokens::new(ttl);
        assert!(t.set_key(key));
        t
    }

    fn revoke(t: &Tokens, token: &str) {
        let (id, exp) = t.revocation(token).unwrap();
        t.revoke_id(&id, exp);
    }

    #[test]
    fn tokens_expire_and_revoke() {
        let t = tokens(Duration::from_secs(60), "00112233");
        let (tok, _) = t.issue("alice").unwrap();
        assert_eq!(t.check(&tok).unwrap(), "alice");
        assert!(t.check("forged").is_err());
        revoke(&t, &tok);
        assert!(t.check(&tok).is_err());
        let t = tokens(Duration::from_millis(0), "00112233");
        let (tok, _) = t.issue("bob").unwrap();
        assert!(t.check(&tok).is_err());
        assert!(Tokens::new(Duration::from_secs(1)).issue("x").is_err(), "no key, no token");
        assert!(!t.set_key("not hex"));
    }

    #[test]
    fn tokens_hold_on_every_front_end_with_the_key_and_nowhere_else() {
        let key = new_token_key();
        let (a, b) = (tokens(Duration::from_secs(60), &key), tokens(Duration::from_secs(60), &key));
        let (tok, _) = a.issue("alice").unwrap();
        assert_eq!(b.check(&tok).unwrap(), "alice");
        let other = tokens(Duration::from_secs(60), &new_token_key());
        assert!(other.check(&tok).is_err());
        // a changed user or expiry breaks the signature
        let forged = tok.replacen("alice", "mallory", 1);
        assert!(b.check(&forged).is_err());
        let (user, rest) = tok.split_once('.').unwrap();
        let (exp, rest) = rest.split_once('.').unwrap();
        let later = format!("{user}.{}.{rest}", exp.parse::<u64>().unwrap() + 1000);
        assert!(b.check(&later).is_err());
        assert!(b.check(&format!("{tok}0")).is_err());
        // a revocation folded by b (from the directory) holds there
        let (id, exp) = a.revocation(&tok).unwrap();
        b.revoke_id(&id, exp);
        assert!(b.check(&tok).is_err());
        assert_eq!(a.check(&tok).unwrap(), "alice", "a has not folded it yet");
    }

    #[tokio::test]
    async fn hashing_runs_off_the_runtime_one_at_a_time() {
        let pool = Passwords::new(1);
        let runtime_thread = std::thread::current().id();
        let h = pool.hash("correct horse".into()).await.unwrap();
        assert!(pool.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!pool.verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!pool.verify("x".into(), None).await.unwrap());
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (pool, seen, most) = (pool.clone(), seen.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move |_| {
                    assert_ne!(std::thread::current().id(), runtime_thread);
                    let now = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    seen.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1, "one permit: one hash at a time");
        assert_eq!(pool.memories(), 1, "one permit: one argon2 memory, reused");
    }

    #[tokio::test]
    async fn token_ends_on_revoke_and_on_expiry() {
        let t = tokens(Duration::from_secs(3600), "abcd");
        let (tok, _) = t.issue("alice").unwrap();
        let (user, mut end) = t.watch(&tok).unwrap();
        assert_eq!(user, "alice");
        let (_, mut other_end) = t.watch(&t.issue("alice").unwrap().0).unwrap();
        revoke(&t, &tok);
        assert_eq!(end.ended().await, Ended::Revoked);
        assert!(t.watch(&tok).is_err());
        // the other token of the same user lives on (up to its expiry)
        let still = tokio::time::timeout(Duration::from_millis(200), other_end.ended()).await;
        assert!(still.is_err(), "another token of the same user is not ended by this logout");

        let t = tokens(Duration::from_millis(300), "abcd");
        let (tok, _) = t.issue("bob").unwrap();
        let (_, mut end) = t.watch(&tok).unwrap();
        let started = Instant::now();
        assert_eq!(end.ended().await, Ended::Expired);
        assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    }

    #[test]
    fn usernames() {
        assert!(check_username("alice-2").is_ok());
        assert!(check_username("A").is_err());
        assert!(check_username("<script>").is_err());
    }
}
