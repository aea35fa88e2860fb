//! Resource alarms, as RabbitMQ's `disk_free_limit` and `vm_memory_high_watermark`: while the
//! filesystem holding the data directory has less free space than the limit, or the process
//! uses more memory than the watermark, connections that publish are blocked (the
//! broker stops reading from them, and clients that announced the `connection.blocked`
//! capability are told so) until space is back. Nothing is dropped: unread publishes wait in
//! the client and in the socket. Consumers keep running, so queues can drain.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// Why publishers are blocked (`connection.blocked`'s reason), or None.
pub type AlarmState = Option<&'static str>;

pub const LOW_ON_DISK: &str = "low on disk";
pub const LOW_ON_MEMORY: &str = "low on memory";

/// How often memory and free space are checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Free bytes available to unprivileged users on the filesystem holding `dir`.
pub fn free_disk_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The alarm a free-space reading sets (a pure function, for tests).
pub fn disk_alarm(free: u64, limit: u64) -> AlarmState {
    (free < limit).then_some(LOW_ON_DISK)
}

/// What the resource monitor watches.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The data directory (its filesystem's free space), with the least free space allowed.
    pub disk: Option<(PathBuf, u64)>,
    /// The most resident memory allowed (RabbitMQ's vm_memory_high_watermark), in bytes.
    pub memory: Option<u64>,
}

/// Resident memory of this process, in bytes (Linux: VmRSS in /proc/self/status).
pub fn resident_bytes() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc/self/status"))
}

/// The alarm readings set: memory first (it is the one that can take the process down).
pub fn alarm_for(
    resident: Option<u64>,
    memory_limit: Option<u64>,
    free_disk: Option<u64>,
    disk_limit: u64,
) -> AlarmState {
    if let (Some(r), Some(limit)) = (resident, memory_limit)
        && r > limit
    {
        return Some(LOW_ON_MEMORY);
    }
    free_disk.and_then(|free| disk_alarm(free, disk_limit))
}

fn check(limits: &Limits) -> AlarmState {
    let resident = limits
        .memory
        .and_then(|_| resident_bytes().map_err(|e| tracing::warn!(error = %e, "cannot read resident memory")).ok());
    let (free, disk_limit) = match &limits.disk {
        Some((dir, limit)) => match free_disk_bytes(dir) {
            Ok(free) => (Some(free), *limit),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read free disk space");
                (None, *limit)
            }
        },
        None => (None, 0),
    };
    alarm_for(resident, limits.memory, free, disk_limit)
}

fn log_change(state: AlarmState, limits: &Limits) {
    match state {
        Some(reason) => tracing::warn!(reason, ?limits, "resource alarm set: publishers are blocked"),
        None => tracing::info!(?limits, "resource alarm cleared: publishers unblocked"),
    }
}

/// Check now (so the first reading is in place before clients connect), then every
/// `CHECK_INTERVAL` in the background, and at once when the limits change (through the
/// returned sender: `warren ctl set_vm_memory_high_watermark ...`). A failed reading counts as
/// no alarm and is logged.
pub fn watch_resources(limits: Limits) -> (watch::Receiver<AlarmState>, watch::Sender<Limits>) {
    let initial = check(&limits);
    if initial.is_some() {
        log_change(initial, &limits);
    }
    let (tx, rx) = watch::channel(initial);
    let (limits_tx, mut limits_rx) = watch::channel(limits);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = limits_rx.changed() => if changed.is_err() { return },
            }
            let limits = limits_rx.borrow_and_update().clone();
            let state = check(&limits);
            if state != *tx.borrow() {
                log_change(state, &limits);
                if tx.send(state).is_err() {
                    return; // the broker is gone
                }
            }
        }
    });
    (rx, limits_tx)
}

/// `--memory-high-watermark`: a fraction of the machine's memory (`0.4`, RabbitMQ's default)
/// or an absolute size (`2GB`).
pub fn parse_watermark(text: &str) -> Result<u64, String> {
    if let Ok(fraction) = text.trim().parse::<f64>()
        && fraction <= 1.0
    {
        if fraction <= 0.0 {
            return Err(format!("{text:?}: a fraction of memory must be above 0"));
        }
        let total = total_memory_bytes().map_err(|e| format!("cannot read the machine's memory size: {e}"))?;
        return Ok((total as f64 * fraction) as u64);
    }
    parse_size(text)
}

/// The machine's memory (MemTotal in /proc/meminfo), in bytes.
pub fn total_memory_bytes() -> std::io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("no MemTotal in /proc/meminfo"))
}

/// `50MB`, `1GB`, `512KiB`, `1000000`: a size in bytes (RabbitMQ's units since 3.13: k/kB,
/// M/MB, G/GB, T/TB, P/PB are powers of 1000; Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB, Pi/PiB of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size (e.g. 50MB, 2GiB, 1000000)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "tb" | "t" => 1_000_000_000_000,
        "pb" | "p" => 1_000_000_000_000_000,
        "kib" | "ki" => 1 << 10,
        "mib" | "mi" => 1 << 20,
        "gib" | "gi" => 1 << 30,
        "tib" | "ti" => 1 << 40,
        "pib" | "pi" => 1 << 50,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use kB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_rabbitmq() {
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("1000TB"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_size("512Mi"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999999999999TB").is_err());
    }

    #[test]
    fn the_alarm_follows_free_space() {
        assert_eq!(disk_alarm(10, 50), Some(LOW_ON_DISK));
        assert_eq!(disk_alarm(50, 50), None);
        assert!(free_disk_bytes(std::path::Path::new(".")).is_ok_and(|f| f > 0));
        assert_eq!(alarm_for(Some(100), Some(50), Some(10), 50), Some(LOW_ON_MEMORY));
        assert_eq!(alarm_for(Some(10), Some(50), Some(10), 50), Some(LOW_ON_DISK));
        assert_eq!(alarm_for(Some(10), Some(50), Some(100), 50), None);
        assert_eq!(alarm_for(None, None, None, 50), None);
    }

    #[test]
    fn watermarks_are_fractions_or_sizes() {
        let total = total_memory_bytes().expect("MemTotal");
        assert_eq!(parse_watermark("0.5"), Ok((total as f64 * 0.5) as u64));
        assert_eq!(parse_watermark("200MB"), Ok(200_000_000));
        assert!(parse_watermark("0").is_err());
        assert!(parse_watermark("-0.5").is_err());
        assert!(resident_bytes().is_ok_and(|r| r > 0));
    }
}
