//! Request rate limits (sign-up, login, posting; per user and per address) and the login
//! failure lockout.
//!
//! Rates are GCRA token buckets from `governor` (a burst, then one request every `every`),
//! keyed by user, by address or by both. Addresses are keyed per host: an IPv6 client by its
//! /64, which one host usually owns whole. Loopback clients (this machine: its own users,
//! scripts and benchmarks, who could read the data directory anyway) get `loopback_factor`
//! times the per-address budgets; per-user budgets are the same for everyone. Behind a reverse
//! proxy on the same machine every client looks like loopback: the per-user limits still hold.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;

use crate::error::ApiError;

/// A budget: `burst` requests at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub every: Duration,
}

impl Rate {
    /// `n` (at least 1) a minute, all of them at once if need be.
    pub const fn per_minute(n: u32) -> Rate {
        let n = if n == 0 { 1 } else { n };
        Rate { burst: n, every: Duration::from_millis(60_000 / n as u64) }
    }

    /// `n` (at least 1) a second sustained, bursts of `burst`.
    pub const fn per_second(n: u32, burst: u32) -> Rate {
        let n = if n == 0 { 1 } else { n };
        Rate { burst, every: Duration::from_micros(1_000_000 / n as u64) }
    }

    /// The same budget `factor` times larger (bursts and sustained rate).
    pub fn times(self, factor: u32) -> Rate {
        let factor = factor.max(1);
        Rate { burst: self.burst.saturating_mul(factor), every: self.every / factor }
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let every = self.every.max(Duration::from_nanos(1));
        Quota::with_period(every).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
    }
}

/// The chat's request budgets (`ChatConfig::limits`). The defaults are far above what a person
/// does and far below what a script flooding the front end needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sign-ups from one address.
    pub signup_per_addr: Rate,
    /// Logins to one account from one address (successful or not).
    pub login_per_account_addr: Rate,
    /// Logins from one address, whatever the account.
    pub login_per_addr: Rate,
    /// Messages posted, edited or deleted by one user (REST and WebSocket together).
    pub post_per_user: Rate,
    /// Messages posted, edited or deleted from one address, whatever the user.
    pub post_per_addr: Rate,
    /// Loopback clients get this many times the per-address budgets.
    pub loopback_factor: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            signup_per_addr: Rate::per_minute(5),
            login_per_account_addr: Rate::per_minute(10),
            login_per_addr: Rate::per_minute(30),
            post_per_user: Rate::per_second(10, 20),
            post_per_addr: Rate::per_second(50, 100),
            loopback_factor: 10,
        }
    }
}

impl Limits {
    /// Budgets no test or benchmark reaches (every one a million times the default).
    pub fn generous() -> Limits {
        Limits { loopback_factor: 1, ..Limits::default().times(1_000_000) }
    }

    /// Every budget `factor` times larger (`--chat-rate-limit-factor`: a big site behind one
    /// address, a benchmark).
    pub fn times(self, factor: u32) -> Limits {
        Limits {
            signup_per_addr: self.signup_per_addr.times(factor),
            login_per_account_addr: self.login_per_account_addr.times(factor),
            login_per_addr: self.login_per_addr.times(factor),
            post_per_user: self.post_per_user.times(factor),
            post_per_addr: self.post_per_addr.times(factor),
            loopback_factor: self.loopback_factor,
        }
    }
}

/// Whole seconds to tell a client in `Retry-After` (at least 1).
fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

/// One budget per key.
pub struct Limiter<K: Hash + Eq + Clone, C: Clock = MonotonicClock> {
    limiter: RateLimiter<K, HashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    /// Checks since the last sweep of idle keys.
    checks: AtomicU32,
}

/// Sweep keys whose bucket is full again every this many checks, so memory follows the keys
/// active within one burst period, not every key ever seen.
const SWEEP_EVERY: u32 = 4096;

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Self {
        Limiter::with_clock(rate, MonotonicClock)
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Limiter<K, C> {
    pub fn with_clock(rate: Rate, clock: C) -> Self {
        Limiter {
            limiter: RateLimiter::hashmap_with_clock(rate.quota(), clock.clone()),
            clock,
            checks: AtomicU32::new(0),
        }
    }

    /// Take one request from `key`'s budget; Err(how long until one is back) if it is spent.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) >= SWEEP_EVERY {
            self.checks.store(0, Ordering::Relaxed);
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// A client address as a rate-limit key: the IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(addr: Option<SocketAddr>) -> AddrKey {
        let ip = match addr.map(|a| a.ip().to_canonical()) {
            Some(IpAddr::V6(v6)) if !v6.is_loopback() => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            Some(v4) => v4,
            None => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        AddrKey(ip)
    }

    pub fn is_loopback(&self) -> bool {
        self.0.is_loopback()
    }
}

impl std::fmt::Display for AddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A budget per address (and per `K` within it: an account, say), larger for loopback clients.
pub struct AddrLimiter<K: Hash + Eq + Clone = ()> {
    remote: Limiter<(AddrKey, K)>,
    local: Limiter<(AddrKey, K)>,
}

impl<K: Hash + Eq + Clone> AddrLimiter<K> {
    pub fn new(rate: Rate, loopback_factor: u32) -> Self {
        AddrLimiter { remote: Limiter::new(rate), local: Limiter::new(rate.times(loopback_factor)) }
    }

    pub fn check(&self, addr: AddrKey, key: K) -> Result<(), Duration> {
        let key = (addr, key);
        if addr.is_loopback() { self.local.check(&key) } else { self.remote.check(&key) }
    }
}

/// Every request budget of one front end.
pub struct Budgets {
    signup_by_addr: AddrLimiter,
    login_by_addr: AddrLimiter,
    login_by_account_addr: AddrLimiter<String>,
    post_by_user: Limiter<String>,
    post_by_addr: AddrLimiter,
}

fn limited(r: Result<(), Duration>) -> Result<(), ApiError> {
    r.map_err(|wait| ApiError::TooManyRequests(retry_after(wait)))
}

impl Budgets {
    pub fn new(limits: &Limits) -> Budgets {
        let f = limits.loopback_factor;
        Budgets {
            signup_by_addr: AddrLimiter::new(limits.signup_per_addr, f),
            login_by_addr: AddrLimiter::new(limits.login_per_addr, f),
            login_by_account_addr: AddrLimiter::new(limits.login_per_account_addr, f),
            post_by_user: Limiter::new(limits.post_per_user),
            post_by_addr: AddrLimiter::new(limits.post_per_addr, f),
        }
    }

    /// A sign-up from `addr` (429 when over budget).
    pub fn signup(&self, addr: AddrKey) -> Result<(), ApiError> {
        limited(self.signup_by_addr.check(addr, ()))
    }

    /// A login to `account` from `addr`, successful or not.
    pub fn login(&self, addr: AddrKey, account: &str) -> Result<(), ApiError> {
        limited(self.login_by_account_addr.check(addr, account.to_owned()))?;
        limited(self.login_by_addr.check(addr, ()))
    }

    /// A message posted, edited or deleted by `user` from `addr`.
    pub fn post(&self, user: &str, addr: AddrKey) -> Result<(), ApiError> {
        limited(self.post_by_user.check(&user.to_owned()))?;
        limited(self.post_by_addr.check(addr, ()))
    }
}

/// The login failure lockout: a fixed window of failed attempts per key (account or address);
/// a success clears the account's count.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter { max, window, hits: Mutex::new(HashMap::new()) }
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
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn failures_lock_after_max() {
        let r = FailureLimiter::new(2, Duration::from_secs(60));
        assert!(r.check("a").is_ok());
        r.hit("a");
        r.hit("a");
        assert!(r.check("a").is_err());
        assert!(r.check("b").is_ok());
        r.clear("a");
        assert!(r.check("a").is_ok());
    }

    #[test]
    fn burst_then_one_per_period() {
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(Rate::per_second(10, 3), clock.clone());
        for _ in 0..3 {
            assert!(l.check(&"u").is_ok());
        }
        let wait = l.check(&"u").unwrap_err();
        assert!(wait <= Duration::from_millis(100) && !wait.is_zero(), "{wait:?}");
        assert!(l.check(&"other").is_ok(), "keys have budgets of their own");
        clock.advance(Duration::from_millis(100));
        assert!(l.check(&"u").is_ok());
        assert!(l.check(&"u").is_err());
        clock.advance(Duration::from_secs(1));
        for _ in 0..3 {
            assert!(l.check(&"u").is_ok());
        }
        assert!(l.check(&"u").is_err());
    }

    #[test]
    fn per_minute_and_retry_after() {
        assert_eq!(Rate::per_minute(5), Rate { burst: 5, every: Duration::from_secs(12) });
        assert_eq!(Rate::per_second(10, 20).times(10), Rate { burst: 200, every: Duration::from_millis(10) });
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_secs(12)), 12);
        assert_eq!(retry_after(Duration::from_millis(11_200)), 12);
        assert_eq!(retry_after(Duration::ZERO), 1);
    }

    #[test]
    fn addresses_key_per_host_and_loopback_gets_more() {
        let v6 = |s: &str| AddrKey::of(Some(SocketAddr::new(s.parse().unwrap(), 1)));
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"), "one /64 is one host");
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:10.0.0.1"), v6("10.0.0.1"), "v4-mapped is v4");
        assert!(v6("::1").is_loopback() && v6("127.0.0.1").is_loopback() && !v6("10.0.0.1").is_loopback());

        let a: AddrLimiter = AddrLimiter::new(Rate::per_minute(2), 3);
        for _ in 0..2 {
            assert!(a.check(v6("10.0.0.1"), ()).is_ok());
        }
        assert!(a.check(v6("10.0.0.1"), ()).is_err());
        for _ in 0..6 {
            assert!(a.check(v6("127.0.0.1"), ()).is_ok());
        }
        assert!(a.check(v6("127.0.0.1"), ()).is_err());
    }

    #[test]
    fn budgets_answer_429_with_a_wait() {
        let b = Budgets::new(&Limits { post_per_user: Rate::per_minute(1), ..Limits::default() });
        let addr = AddrKey::of(Some("10.0.0.1:5".parse().unwrap()));
        assert!(b.post("ann", addr).is_ok());
        match b.post("ann", addr) {
            Err(ApiError::TooManyRequests(s)) => assert!((59..=60).contains(&s), "{s}"),
            other => panic!("{other:?}"),
        }
        assert!(b.post("bob", addr).is_ok());
        for _ in 0..5 {
            assert!(b.signup(addr).is_ok());
        }
        assert!(matches!(b.signup(addr), Err(ApiError::TooManyRequests(_))));
    }
}
