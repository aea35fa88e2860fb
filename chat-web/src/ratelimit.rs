//! Login attempt limiter: a fixed window of failed attempts per key (account or address).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter { max, window, hits: Mutex::new(HashMap::new()) }
    }

    /// Err(seconds to wait) if `key` has used up its attempts in the current window.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let hits = self.hits.lock();
        match hits.get(key) {
            Some((start, n)) if *n >= self.max && start.elapsed() < self.window => {
                Err((self.window - start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Count one attempt against `key`.
    pub fn hit(&self, key: &str) {
        let mut hits = self.hits.lock();
        if hits.len() > 100_000 {
            let window = self.window;
            hits.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = hits.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    pub fn clear(&self, key: &str) {
        self.hits.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_max() {
        let r = RateLimiter::new(2, Duration::from_secs(60));
        assert!(r.check("a").is_ok());
        r.hit("a");
        r.hit("a");
        assert!(r.check("a").is_err());
        assert!(r.check("b").is_ok());
        r.clear("a");
        assert!(r.check("a").is_ok());
    }
}
