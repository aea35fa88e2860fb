//! CPU time and resident memory from /proc, for this process and for the broker.

use std::time::Duration;

/// Clock ticks per second for /proc/<pid>/stat times (USER_HZ is 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub cpu: Duration,
    pub rss_bytes: u64,
}

/// CPU time (user + system) and RSS of `pid`, or None if it is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Sample { cpu: Duration::from_secs_f64((utime + stime) / TICKS_PER_SEC), rss_bytes: rss_kb * 1024 })
}

pub fn own() -> Sample {
    sample(std::process::id()).unwrap_or_default()
}

/// CPU use between two samples over `elapsed`, in percent of one core.
pub fn cpu_percent(before: Sample, after: Sample, elapsed: Duration) -> f64 {
    let used = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    100.0 * used / elapsed.as_secs_f64().max(1e-9)
}
