//! warren-perf: measure any AMQP 0-9-1 broker over the wire, the same way.
//!
//! # Layout
//! - [`wire`]: the raw client: handshake (amq-protocol), pre-encoded publishes written many
//!   per syscall, and a frame walker that counts deliveries in place without allocating.
//! - [`usage`]: CPU time and RSS of this process and of the broker (from /proc).
//! - [`meter`]: the shared measuring loop: warm-up, progress every second, rates, CPU and RSS.
//! - [`throughput`]: publishers and consumers on one queue for a fixed time.
//! - [`latency`]: a fixed rate, a timestamp in each body, percentiles.
//! - [`fanout`]: N queues bound to one fanout exchange, deliveries per second in all.
//! - [`connections`]: N idle connections held open, broker RSS per connection.
//! - [`churn`]: queue declare/bind/delete cycles per second.
//! - [`startup`]: spawn a broker and time it until it accepts AMQP.
//! - [`sink`]: a do-nothing AMQP server, to show the generator's own ceiling.

pub mod churn;
pub mod connections;
pub mod fanout;
pub mod latency;
pub mod meter;
pub mod sink;
pub mod startup;
pub mod throughput;
pub mod usage;
pub mod wire;

use std::time::Duration;

/// Parse "10s", "500ms", "2m" or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s} (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `prefix` and 8 random hex digits: a queue name no other run uses.
pub fn fresh_name(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("bad uri: {0}")]
    Uri(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
    }
}
