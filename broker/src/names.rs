//! Names: short-string limits, server-generated queue names and consumer tags, and the
//! "queue 'q' in vhost '/'" phrases RabbitMQ uses in reply texts.

use amq_protocol::types::ShortString;
use rand::Rng;

/// Cut a string to at most 255 bytes on a char boundary (a short string's limit).
pub fn truncate_short(mut s: String) -> String {
    if s.len() > 255 {
        let mut end = 255;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A `ShortString` that never panics: longer input is cut to 255 bytes.
pub fn short(s: impl Into<String>) -> ShortString {
    ShortString::from(truncate_short(s.into()))
}

/// The prefix of direct reply-to's private queues (`amq.rabbitmq.reply-to.<random>`): the
/// server's own, left out of listings as RabbitMQ does.
pub const DIRECT_REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// `prefix` followed by 22 URL-safe base64 characters (128 random bits), as RabbitMQ does.
pub fn generated(prefix: &str) -> ShortString {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 22);
    s.push_str(prefix);
    for _ in 0..22 {
        s.push(ALPHABET[rng.random_range(0..64)] as char);
    }
    short(s)
}

pub fn queue_res(name: &str, vhost: &str) -> String {
    format!("queue '{name}' in vhost '{vhost}'")
}

pub fn exchange_res(name: &str, vhost: &str) -> String {
    format!("exchange '{name}' in vhost '{vhost}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        let s = "é".repeat(200);
        let t = truncate_short(s);
        assert!(t.len() <= 255);
        assert!(t.chars().all(|c| c == 'é'));
    }

    #[test]
    fn generated_names() {
        let a = generated("amq.gen-");
        let b = generated("amq.gen-");
        assert_eq!(a.as_str().len(), 8 + 22);
        assert_ne!(a, b);
    }
}
