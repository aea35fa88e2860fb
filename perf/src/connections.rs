//! Connections: open N connections (handshake plus one open channel each, like a real client),
//! hold them idle, and report the broker's RSS per connection and its CPU while they sit idle.
//! The client's open-files soft limit is raised to the hard limit first.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::PerfError;
use crate::meter::{Counters, Usage};
use crate::usage;
use crate::wire::{self, Uri, Wire};

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    pub connections: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Give up opening after this long.
    pub open_timeout: Duration,
    /// Hold the connections idle this long (CPU is measured over this window).
    pub hold: Duration,
    pub broker_pid: Option<u32>,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub requested: usize,
    pub opened: usize,
    pub open_seconds: f64,
    pub fd_limit: u64,
    pub broker_rss_before: Option<u64>,
    pub broker_rss_holding: Option<u64>,
    pub broker_rss_per_connection: Option<f64>,
    /// Client and broker CPU over the hold window, and the broker's RSS at its end.
    pub holding: Usage,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "scenario": "connections",
            "requested": self.requested,
            "opened": self.opened,
            "open_seconds": self.open_seconds,
            "opened_per_sec": self.opened as f64 / self.open_seconds.max(1e-9),
            "client_fd_limit": self.fd_limit,
            "broker_rss_before": self.broker_rss_before,
            "broker_rss_holding": self.broker_rss_holding,
            "broker_rss_per_connection": self.broker_rss_per_connection,
        });
        self.holding.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} of {} connections open in {:.1}s ({:.0}/s)",
            self.opened,
            self.requested,
            self.open_seconds,
            self.opened as f64 / self.open_seconds.max(1e-9)
        );
        if let (Some(b), Some(h), Some(per)) =
            (self.broker_rss_before, self.broker_rss_holding, self.broker_rss_per_connection)
        {
            s += &format!(
                "; broker RSS {:.1} MB -> {:.1} MB, {:.1} KB per connection",
                b as f64 / 1e6,
                h as f64 / 1e6,
                per / 1e3
            );
        }
        s + " (while holding" + &self.holding.describe()[1..] + ")"
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let fd_limit = wire::raise_fd_limit()?;
    if (fd_limit as usize) < opts.connections + 64 {
        eprintln!("warning: open-files limit {fd_limit} is below {} connections", opts.connections);
    }
    let before = opts.broker_pid.and_then(usage::sample);
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let deadline = started + opts.open_timeout;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Wire>(1024);
    let mut held: Vec<Wire> = Vec::with_capacity(opts.connections);
    let per_worker = opts.connections.div_ceil(opts.concurrency.max(1));
    let mut workers = Vec::new();
    for w in 0..opts.concurrency.max(1) {
        let n = per_worker.min(opts.connections.saturating_sub(w * per_worker));
        let (uri, tx, counters) = (opts.uri.clone(), tx.clone(), counters.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..n {
                if counters.stopped() || Instant::now() > deadline {
                    return;
                }
                match tokio::time::timeout(Duration::from_secs(10), Wire::connect(&uri)).await {
                    Ok(Ok(wire)) => {
                        counters.ops.fetch_add(1, Ordering::Relaxed);
                        if tx.send(wire).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(e)) => {
                        return counters.fail(format!("connection {}: {e}", counters.ops.load(Ordering::Relaxed)));
                    }
                    Err(_) => return counters.fail("a handshake took more than 10 s"),
                }
            }
        }));
    }
    drop(tx);
    let mut last_print = Instant::now();
    let mut last_count = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(w)) => held.push(w),
            Ok(None) => break,
            Err(_) => {}
        }
        if Instant::now() > deadline + Duration::from_secs(11) {
            counters.stop.store(true, Ordering::Relaxed);
            break;
        }
        if opts.progress && last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "  {:>5.1}s  open {:>7}  ({:.0}/s)",
                started.elapsed().as_secs_f64(),
                held.len(),
                (held.len() - last_count) as f64 / last_print.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
            last_count = held.len();
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    for w in workers {
        w.abort();
    }
    if let Some(f) = counters.failure() {
        eprintln!("warning: stopped opening: {f}");
    }
    // Let the broker settle, then measure CPU over the hold window.
    let hold_start = (usage::own(), opts.broker_pid.and_then(usage::sample), Instant::now());
    let hold_end = Instant::now() + opts.hold;
    while Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_secs(1).min(hold_end.saturating_duration_since(Instant::now()))).await;
        if opts.progress {
            let rss = opts.broker_pid.and_then(usage::sample).map(|s| s.rss_bytes as f64 / 1e6);
            eprintln!("  holding {} connections, broker RSS {:.1} MB", held.len(), rss.unwrap_or(f64::NAN));
        }
    }
    let hold_stop = (usage::own(), opts.broker_pid.and_then(usage::sample), Instant::now());
    let holding = Usage::between(hold_start.0, hold_stop.0, hold_start.1, hold_stop.1, hold_stop.2 - hold_start.2);
    let rss_before = before.map(|s| s.rss_bytes);
    let rss_holding = hold_stop.1.map(|s| s.rss_bytes);
    let opened = held.len();
    drop(held);
    Ok(Report {
        requested: opts.connections,
        opened,
        open_seconds,
        fd_limit,
        broker_rss_before: rss_before,
        broker_rss_holding: rss_holding,
        broker_rss_per_connection: rss_before
            .zip(rss_holding)
            .filter(|_| opened > 0)
            .map(|(b, h)| (h as f64 - b as f64) / opened as f64),
        holding,
    })
}
