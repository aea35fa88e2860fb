//! Resource alarms, as RabbitMQ's `disk_free_limit`: while the filesystem holding the data
//! directory has less free space than the limit, connections that publish are blocked (the
//! broker stops reading from them, and clients that announced the `connection.blocked`
//! capability are told so) until space is back. Nothing is dropped: unread publishes wait in
//! the client and in the socket. Consumers keep running, so queues can drain.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// Why publishers are blocked (`connection.blocked`'s reason), or None.
pub type AlarmState = Option<&'static str>;

pub const LOW_ON_DISK: &str = "low on disk";

/// How often free space is checked (RabbitMQ checks every few seconds at most).
const DISK_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Free bytes available to unprivileged users on the filesystem holding `dir`.
pub fn free_disk_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The alarm a free-space reading sets (a pure function, for tests).
pub fn disk_alarm(free: u64, limit: u64) -> AlarmState {
    (free < limit).then_some(LOW_ON_DISK)
}

/// Check `dir` now (so the first reading is in place before clients connect), then every
/// half second in the background. A failed reading keeps the previous state and is logged.
pub fn watch_disk(dir: PathBuf, limit: u64) -> watch::Receiver<AlarmState> {
    let initial = match free_disk_bytes(&dir) {
        Ok(free) => disk_alarm(free, limit),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read free disk space");
            None
        }
    };
    if initial.is_some() {
        tracing::warn!(dir = %dir.display(), limit, "free disk space below the limit: publishers are blocked");
    }
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DISK_CHECK_INTERVAL);
        loop {
            tick.tick().await;
            let free = match free_disk_bytes(&dir) {
                Ok(free) => free,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot read free disk space");
                    continue;
                }
            };
            let state = disk_alarm(free, limit);
            if state != *tx.borrow() {
                match state {
                    Some(_) => tracing::warn!(free, limit, "free disk space below the limit: publishers are blocked"),
                    None => tracing::info!(free, limit, "free disk space above the limit again: publishers unblocked"),
                }
                if tx.send(state).is_err() {
                    return; // the broker is gone
                }
            }
        }
    });
    rx
}

/// `50MB`, `1GB`, `512KiB`, `1000000`: a size in bytes (RabbitMQ's units: kB/MB/GB are powers
/// of 1000, KiB/MiB/GiB of 1024).
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
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
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
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999999999999TB").is_err());
    }

    #[test]
    fn the_alarm_follows_free_space() {
        assert_eq!(disk_alarm(10, 50), Some(LOW_ON_DISK));
        assert_eq!(disk_alarm(50, 50), None);
        assert!(free_disk_bytes(std::path::Path::new(".")).is_ok_and(|f| f > 0));
    }
}
