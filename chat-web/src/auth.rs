//! Passwords (argon2id, hashed on a bounded blocking pool) and bearer tokens (random,
//! expiring, held by the front end that issued them; a session using one ends with it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;
use crate::model::now_ms;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Where passwords are hashed and checked: tokio's blocking threads, at most `threads` at a
/// time. argon2 takes tens of milliseconds of CPU (more in a debug build); on the runtime
/// threads, which the embedded broker shares, a burst of sign-ups or logins would stall every
/// AMQP client of the process. Requests beyond `threads` wait for a permit without holding a
/// thread.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(threads: usize) -> Self {
        Passwords { permits: Arc::new(Semaphore::new(threads.max(1))) }
    }

    /// Run `work` on a blocking thread once a permit is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("password pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_password(&password)).await?
    }

    /// Whether `password` matches `hash` (false when there is no hash).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        match hash {
            Some(hash) => self.run(move || verify_password(&password, &hash)).await,
            None => Ok(false),
        }
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

struct Session {
    user: String,
    /// When the token expires (monotonic: the wall clock may jump).
    deadline: Instant,
    /// Dropped when the token is revoked (or swept after expiry): its `TokenEnd`s resolve.
    alive: watch::Sender<()>,
}

/// Resolves when a token ends: revoked (logout) or expired.
pub struct TokenEnd {
    alive: watch::Receiver<()>,
    deadline: Instant,
}

/// Why a token ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
}

impl TokenEnd {
    pub async fn ended(&mut self) -> Ended {
        tokio::select! {
            _ = tokio::time::sleep_until(self.deadline.into()) => Ended::Expired,
            _ = async { while self.alive.changed().await.is_ok() {} } => {
                // swept after expiry by `issue`, or revoked
                if Instant::now() >= self.deadline { Ended::Expired } else { Ended::Revoked }
            }
        }
    }
}

/// Bearer tokens: 256 random bits, hex, valid until `expires_at`.
pub struct Tokens {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens { ttl, sessions: Mutex::new(HashMap::new()) }
    }

    /// Issue a token; returns it with its expiry (unix ms).
    pub fn issue(&self, user: &str) -> (String, u64) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires_at = now_ms() + self.ttl.as_millis() as u64;
        let deadline = Instant::now() + self.ttl;
        let mut sessions = self.sessions.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.deadline > now);
        let alive = watch::channel(()).0;
        sessions.insert(token.clone(), Session { user: user.to_owned(), deadline, alive });
        (token, expires_at)
    }

    /// The user a token belongs to, if it exists and has not expired.
    pub fn check(&self, token: &str) -> Result<String, ApiError> {
        let sessions = self.sessions.lock();
        match sessions.get(token) {
            Some(s) if s.deadline > Instant::now() => Ok(s.user.clone()),
            _ => Err(ApiError::Unauthorized),
        }
    }

    /// Like `check`, with a `TokenEnd` that resolves when the token is revoked or expires.
    pub fn watch(&self, token: &str) -> Result<(String, TokenEnd), ApiError> {
        let sessions = self.sessions.lock();
        match sessions.get(token) {
            Some(s) if s.deadline > Instant::now() => {
                Ok((s.user.clone(), TokenEnd { alive: s.alive.subscribe(), deadline: s.deadline }))
            }
            _ => Err(ApiError::Unauthorized),
        }
    }

    pub fn revoke(&self, token: &str) {
        self.sessions.lock().remove(token);
    }

    /// End every token of `user` (a disabled account): its sessions close at once.
    pub fn revoke_user(&self, user: &str) {
        self.sessions.lock().retain(|_, s| s.user != user);
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
    }

    #[test]
    fn tokens_expire_and_revoke() {
        let t = Tokens::new(Duration::from_secs(60));
        let (tok, _) = t.issue("alice");
        assert_eq!(t.check(&tok).unwrap(), "alice");
        assert!(t.check("forged").is_err());
        t.revoke(&tok);
        assert!(t.check(&tok).is_err());
        let t = Tokens::new(Duration::from_millis(0));
        let (tok, _) = t.issue("bob");
        assert!(t.check(&tok).is_err());
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
                pool.run(move || {
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
    }

    #[tokio::test]
    async fn token_ends_on_revoke_and_on_expiry() {
        let t = Tokens::new(Duration::from_secs(3600));
        let (tok, _) = t.issue("alice");
        let (user, mut end) = t.watch(&tok).unwrap();
        assert_eq!(user, "alice");
        let (_, mut other_end) = t.watch(&t.issue("alice").0).unwrap();
        t.revoke(&tok);
        assert_eq!(end.ended().await, Ended::Revoked);
        assert!(t.watch(&tok).is_err());
        // the other token of the same user lives on (up to its expiry)
        let still = tokio::time::timeout(Duration::from_millis(200), other_end.ended()).await;
        assert!(still.is_err(), "another token of the same user is not ended by this logout");

        let t = Tokens::new(Duration::from_millis(300));
        let (tok, _) = t.issue("bob");
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
