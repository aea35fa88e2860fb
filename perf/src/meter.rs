//! The measuring loop every scenario shares: counters bumped by the workers, a warm-up, a
//! progress line every second, and at the end the rates plus the CPU and RSS of both sides.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::usage::{self, Sample};

/// What the workers of one scenario count. A scenario uses the counters it needs.
#[derive(Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub consumed: AtomicU64,
    pub confirmed: AtomicU64,
    /// Scenario-specific operations (queue churn cycles, connections opened).
    pub ops: AtomicU64,
    pub stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Counters {
    /// Record the first failure and stop every worker.
    pub fn fail(&self, e: impl std::fmt::Display) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Which counters a scenario shows in its progress line, and their labels.
#[derive(Clone, Copy, Debug)]
pub struct Show {
    pub published: Option<&'static str>,
    pub consumed: Option<&'static str>,
    pub confirmed: Option<&'static str>,
    pub ops: Option<&'static str>,
}

impl Show {
    pub const PUB_CON_CONF: Show =
        Show { published: Some("published"), consumed: Some("consumed"), confirmed: Some("confirmed"), ops: None };
}

#[derive(Clone, Debug)]
struct Snapshot {
    at: Instant,
    counts: [u64; 4],
    client: Sample,
    broker: Option<Sample>,
}

impl Snapshot {
    fn take(c: &Counters, broker_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            counts: [
                c.published.load(Ordering::Relaxed),
                c.consumed.load(Ordering::Relaxed),
                c.confirmed.load(Ordering::Relaxed),
                c.ops.load(Ordering::Relaxed),
            ],
            client: usage::own(),
            broker: broker_pid.and_then(usage::sample),
        }
    }
}

/// Rates over the measured window and who used how much.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub seconds: f64,
    pub published_per_sec: f64,
    pub consumed_per_sec: f64,
    pub confirmed_per_sec: f64,
    pub ops_per_sec: f64,
    pub usage: Usage,
}

/// CPU (percent of one core) of this process and, given its pid, of the broker, plus its RSS.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub client_cpu_percent: f64,
    pub broker_cpu_percent: Option<f64>,
    pub broker_rss_bytes: Option<u64>,
}

impl Usage {
    pub fn between(
        start_client: Sample,
        end_client: Sample,
        start_broker: Option<Sample>,
        end_broker: Option<Sample>,
        elapsed: Duration,
    ) -> Self {
        Self {
            client_cpu_percent: usage::cpu_percent(start_client, end_client, elapsed),
            broker_cpu_percent: start_broker.zip(end_broker).map(|(a, b)| usage::cpu_percent(a, b, elapsed)),
            broker_rss_bytes: end_broker.map(|b| b.rss_bytes),
        }
    }

    pub fn json_fields(&self, v: &mut serde_json::Value) {
        v["client_cpu_percent"] = self.client_cpu_percent.into();
        v["broker_cpu_percent"] = self.broker_cpu_percent.into();
        v["broker_rss_bytes"] = self.broker_rss_bytes.into();
    }

    /// ", client CPU 3%, broker CPU 180%, broker RSS 12.3 MB"
    pub fn describe(&self) -> String {
        let mut s = format!(", client CPU {:.0}%", self.client_cpu_percent);
        if let Some(cpu) = self.broker_cpu_percent {
            s += &format!(", broker CPU {cpu:.0}%");
        }
        if let Some(rss) = self.broker_rss_bytes {
            s += &format!(", broker RSS {:.1} MB", rss as f64 / 1e6);
        }
        s
    }
}

/// Wait `warmup`, then measure for `duration` (or until a worker fails or stops), printing a
/// progress line to stderr every second when `progress` is set. Sets `stop` at the end.
pub async fn measure(
    counters: &Counters,
    warmup: Duration,
    duration: Duration,
    broker_pid: Option<u32>,
    show: Show,
    progress: bool,
) -> Measured {
    let warm_end = Instant::now() + warmup;
    while Instant::now() < warm_end && !counters.stopped() {
        tokio::time::sleep(Duration::from_millis(50).min(warm_end.saturating_duration_since(Instant::now()))).await;
    }
    let start = Snapshot::take(counters, broker_pid);
    let mut last = start.clone();
    let deadline = start.at + duration;
    while Instant::now() < deadline && !counters.stopped() {
        let next = (last.at + Duration::from_secs(1)).min(deadline);
        // Short naps so that a failing worker ends the run quickly.
        tokio::time::sleep(Duration::from_millis(100).min(next.saturating_duration_since(Instant::now()))).await;
        if Instant::now() < next {
            continue;
        }
        let now = Snapshot::take(counters, broker_pid);
        if progress {
            let dt = now.at.duration_since(last.at).as_secs_f64().max(1e-9);
            let mut line = format!("  {:>5.1}s", now.at.duration_since(start.at).as_secs_f64());
            let labels = [show.published, show.consumed, show.confirmed, show.ops];
            for (i, label) in labels.iter().enumerate() {
                if let Some(label) = label {
                    line += &format!("  {label} {:>10.0}/s", (now.counts[i] - last.counts[i]) as f64 / dt);
                }
            }
            line += &Usage::between(last.client, now.client, last.broker, now.broker, now.at - last.at).describe();
            eprintln!("{line}");
        }
        last = now;
    }
    let end = Snapshot::take(counters, broker_pid);
    counters.stop.store(true, Ordering::Relaxed);
    let elapsed = end.at - start.at;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = |i: usize| (end.counts[i] - start.counts[i]) as f64 / secs;
    Measured {
        seconds: secs,
        published_per_sec: rate(0),
        consumed_per_sec: rate(1),
        confirmed_per_sec: rate(2),
        ops_per_sec: rate(3),
        usage: Usage::between(start.client, end.client, start.broker, end.broker, elapsed),
    }
}
