//! Latency: one publisher at a fixed rate puts its send time (nanoseconds since the run's start,
//! this process's monotonic clock) in the first 8 bytes of each body; one autoack consumer on
//! another connection subtracts it from its receive time. Percentiles over the measured window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, queue};
use amq_protocol::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::PerfError;
use crate::meter::{self, Counters, Measured, Show};
use crate::wire::{self, Uri, Wire};

/// At most this many samples are kept (10 minutes at 10k msg/s).
const MAX_SAMPLES: usize = 6_000_000;

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    /// Messages per second.
    pub rate: u64,
    /// Body size in bytes (at least 8: the timestamp).
    pub size: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub queue: String,
    pub broker_pid: Option<u32>,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub measured: Measured,
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let mut v = serde_json::json!({
            "scenario": "latency",
            "seconds": m.seconds,
            "published_per_sec": m.published_per_sec,
            "consumed_per_sec": m.consumed_per_sec,
            "samples": self.samples,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "max_us": self.max_us,
            "mean_us": self.mean_us,
        });
        m.usage.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        format!(
            "{} samples at {:.0} msg/s: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs, mean {:.0} µs{}",
            self.samples,
            self.measured.consumed_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.mean_us,
            self.measured.usage.describe()
        )
    }
}

struct Shared {
    counters: Counters,
    base: Instant,
    recording: AtomicBool,
    samples: Mutex<Vec<u64>>,
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let size = opts.size.max(8);
    let mut setup = Wire::connect(&opts.uri).await?;
    let declare = queue::Declare { queue: opts.queue.as_str().into(), ..Default::default() };
    setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await?;
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        base: Instant::now(),
        recording: AtomicBool::new(false),
        samples: Mutex::new(Vec::new()),
    });
    let consumer = tokio::spawn(consume(Wire::connect(&opts.uri).await?, opts.queue.clone(), shared.clone()));
    let publisher = tokio::spawn(publish(
        Wire::connect(&opts.uri).await?,
        opts.queue.clone(),
        opts.rate.max(1),
        size,
        shared.clone(),
    ));

    tokio::time::sleep(opts.warmup).await;
    shared.recording.store(true, Ordering::Relaxed);
    let show = Show { published: Some("published"), consumed: Some("consumed"), confirmed: None, ops: None };
    let measured =
        meter::measure(&shared.counters, Duration::ZERO, opts.duration, opts.broker_pid, show, opts.progress).await;
    shared.recording.store(false, Ordering::Relaxed);
    publisher.abort();
    consumer.abort();
    if let Some(f) = shared.counters.failure() {
        return Err(PerfError::Protocol(f));
    }
    let mut samples = std::mem::take(&mut *shared.samples.lock().map_err(|_| PerfError::Protocol("poisoned".into()))?);
    samples.sort_unstable();
    let pct = |p: f64| -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1000.0
    };
    let report = Report {
        samples: samples.len(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: pct(1.0),
        mean_us: if samples.is_empty() {
            f64::NAN
        } else {
            samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1000.0
        },
        measured,
    };
    let delete = queue::Delete { queue: opts.queue.as_str().into(), ..Default::default() };
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))),
    )
    .await;
    Ok(report)
}

async fn consume(mut wire: Wire, queue: String, shared: Arc<Shared>) {
    if let Err(e) = consume_inner(&mut wire, &queue, &shared).await
        && !shared.counters.stopped()
    {
        shared.counters.fail(format!("consumer: {e}"));
    }
}

async fn consume_inner(wire: &mut Wire, queue: &str, shared: &Shared) -> Result<(), PerfError> {
    let consume = basic::Consume {
        queue: queue.into(),
        consumer_tag: "".into(),
        no_local: false,
        no_ack: true,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    wire.rpc(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume))).await?;
    let mut buf = wire.take_buffered();
    let mut filled = buf.len();
    buf.resize(filled.max(1 << 16), 0);
    let mut batch = Vec::new();
    while !shared.counters.stopped() {
        let n = wire.stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(PerfError::Protocol("broker closed the connection".into()));
        }
        filled += n;
        let now = shared.base.elapsed().as_nanos() as u64;
        batch.clear();
        let (walked, used) = wire::walk_bodies(&buf[..filled], |body| {
            if let Some(ts) = body.get(..8) {
                let sent = u64::from_be_bytes(ts.try_into().unwrap_or([0; 8]));
                batch.push(now.saturating_sub(sent));
            }
        });
        if walked.closed {
            return Err(PerfError::Protocol("broker closed the channel or connection".into()));
        }
        shared.counters.consumed.fetch_add(walked.deliveries, Ordering::Relaxed);
        if shared.recording.load(Ordering::Relaxed)
            && let Ok(mut s) = shared.samples.lock()
            && s.len() < MAX_SAMPLES
        {
            s.extend_from_slice(&batch);
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    Ok(())
}

async fn publish(mut wire: Wire, queue: String, rate: u64, size: usize, shared: Arc<Shared>) {
    if let Err(e) = publish_inner(&mut wire, &queue, rate, size, &shared).await
        && !shared.counters.stopped()
    {
        shared.counters.fail(format!("publisher: {e}"));
    }
}

async fn publish_inner(wire: &mut Wire, queue: &str, rate: u64, size: usize, shared: &Shared) -> Result<(), PerfError> {
    let body = vec![0u8; size];
    let one = wire::encode_publish(1, "", queue, &BasicProperties::default(), &body, wire.frame_max);
    // The body frame is the last one: its payload ends one byte (frame-end) before the end.
    let ts_at = one.len() - 1 - size;
    let mut out = Vec::with_capacity(one.len() * 64);
    let started = Instant::now();
    let mut sent = 0u64;
    while !shared.counters.stopped() {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        // After a stall, catch up by at most 64 messages per write.
        let n = due.saturating_sub(sent).min(64);
        if n > 0 {
            out.clear();
            let ts = shared.base.elapsed().as_nanos() as u64;
            for _ in 0..n {
                let at = out.len();
                out.extend_from_slice(&one);
                out[at + ts_at..at + ts_at + 8].copy_from_slice(&ts.to_be_bytes());
            }
            wire.stream.write_all(&out).await?;
            sent += n;
            shared.counters.published.fetch_add(n, Ordering::Relaxed);
        }
        let next = started + Duration::from_secs_f64((sent + 1) as f64 / rate as f64);
        tokio::time::sleep_until(next.into()).await;
    }
    Ok(())
}
