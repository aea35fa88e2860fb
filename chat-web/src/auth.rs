//! Passwords (argon2id) and bearer tokens (random, expiring, held by the front end that issued them).

use std::collections::HashMap;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use rand::RngCore;

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

#[derive(Debug, Clone)]
struct Session {
    user: String,
    expires_at: u64,
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
        let mut sessions = self.sessions.lock();
        let now = now_ms();
        sessions.retain(|_, s| s.expires_at > now);
        sessions.insert(token.clone(), Session { user: user.to_owned(), expires_at });
        (token, expires_at)
    }

    /// The user a token belongs to, if it exists and has not expired.
    pub fn check(&self, token: &str) -> Result<String, ApiError> {
        let sessions = self.sessions.lock();
        match sessions.get(token) {
            Some(s) if s.expires_at > now_ms() => Ok(s.user.clone()),
            _ => Err(ApiError::Unauthorized),
        }
    }

    pub fn revoke(&self, token: &str) {
        self.sessions.lock().remove(token);
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

    #[test]
    fn usernames() {
        assert!(check_username("alice-2").is_ok());
        assert!(check_username("A").is_err());
        assert!(check_username("<script>").is_err());
    }
}
