//! Password hashes as RabbitMQ stores them (`rabbit_password` with
//! `rabbit_password_hashing_sha256`, its default since 3.6): base64 of a random 4-byte salt
//! followed by SHA-256(salt ++ UTF-8 password). A definitions file exported from RabbitMQ
//! carries such hashes, so its users log in to warren with the same passwords, and back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// RabbitMQ's default hashing module, the one new hashes use.
pub const SHA256: &str = "rabbit_password_hashing_sha256";
/// Accepted in imported definitions (RabbitMQ can be configured to use it).
pub const SHA512: &str = "rabbit_password_hashing_sha512";

const SALT_LEN: usize = 4;

/// A new `password_hash` for `password`, with a fresh random salt.
pub fn hash(password: &str) -> String {
    hash_with_salt(rand::random::<[u8; SALT_LEN]>(), password)
}

fn hash_with_salt(salt: [u8; SALT_LEN], password: &str) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&digest(SHA256, &salt, password).unwrap_or_default());
    STANDARD.encode(bytes)
}

fn digest(algorithm: &str, salt: &[u8], password: &str) -> Option<Vec<u8>> {
    match algorithm {
        SHA256 => Some(Sha256::new().chain_update(salt).chain_update(password.as_bytes()).finalize().to_vec()),
        SHA512 => Some(Sha512::new().chain_update(salt).chain_update(password.as_bytes()).finalize().to_vec()),
        _ => None,
    }
}

/// Whether `algorithm` is one warren can check.
pub fn supported(algorithm: &str) -> bool {
    matches!(algorithm, SHA256 | SHA512)
}

/// Whether `password` matches `password_hash` (compared in constant time). An empty hash
/// (a user without a password, as `rabbitmqctl clear_password` leaves it) matches nothing.
pub fn verify(algorithm: &str, password_hash: &str, password: &str) -> bool {
    let Ok(stored) = STANDARD.decode(password_hash) else { return false };
    if stored.len() <= SALT_LEN {
        return false;
    }
    let (salt, expected) = stored.split_at(SALT_LEN);
    let Some(actual) = digest(algorithm, salt, password) else { return false };
    actual.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes taken from `rabbitmqctl export_definitions` of RabbitMQ 3.10.8.
    const GUEST: &str = "XTVuyvtc1QVMM36xPMnMBku0c4yrwyX3ByMKmc5NM1+T/6rr";
    const BOB_S3CRET: &str = "fZm6nfEqEdG328C7MgsA6aTQx0SFMirOgTk2Q6LXIpaNd7xo";

    #[test]
    fn rabbitmq_hashes_verify() {
        assert!(verify(SHA256, GUEST, "guest"));
        assert!(!verify(SHA256, GUEST, "Guest"));
        assert!(verify(SHA256, BOB_S3CRET, "s3cret"));
        assert!(!verify(SHA256, BOB_S3CRET, ""));
        assert!(!verify("rabbit_password_hashing_md5", GUEST, "guest"));
        assert!(!verify(SHA256, "", "guest"));
        assert!(!verify(SHA256, "not base64!", "guest"));
    }

    #[test]
    fn same_salt_same_hash_as_rabbitmq() {
        let salt: [u8; 4] = STANDARD.decode(GUEST).unwrap()[..4].try_into().unwrap();
        assert_eq!(hash_with_salt(salt, "guest"), GUEST);
    }

    #[test]
    fn new_hashes_are_salted_and_verify() {
        let (a, b) = (hash("pw"), hash("pw"));
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(SHA256, &a, "pw") && verify(SHA256, &b, "pw"));
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 4 + 32);
    }
}
