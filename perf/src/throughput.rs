//! Throughput: P publishers and C consumers on one queue for a fixed time. Publishers write a
//! pre-encoded batch of publishes per syscall; consumers count deliveries in place and, with
//! manual acks, send one `basic.ack multiple=true` every `ack_every` deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, queue};
use amq_protocol::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::PerfError;
use crate::usage::{self, Sample};
use crate::wire::{self, Uri, Wire};

/// Aim for this many bytes per write.
const BATCH_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    pub producers: usize,
    pub consumers: usize,
    pub size: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub autoack: bool,
    pub prefetch: u16,
    pub ack_every: u64,
    /// Publisher confirms with at most this many unconfirmed messages per publisher.
    pub confirm_window: Option<u64>,
    pub persistent: bool,
    /// Messages per second over all publishers (None: as fast as possible).
    pub rate: Option<u64>,
    pub queue: String,
    pub broker_pid: Option<u32>,
    /// Print a progress line every second.
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub published_per_sec: f64,
    pub consumed_per_sec: f64,
    pub confirmed_per_sec: f64,
    pub client_cpu_percent: f64,
    pub broker_cpu_percent: Option<f64>,
    pub broker_rss_bytes: Option<u64>,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "published_per_sec": self.published_per_sec,
            "consumed_per_sec": self.consumed_per_sec,
            "confirmed_per_sec": self.confirmed_per_sec,
            "client_cpu_percent": self.client_cpu_percent,
            "broker_cpu_percent": self.broker_cpu_percent,
            "broker_rss_bytes": self.broker_rss_bytes,
        })
    }
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    consumed: AtomicU64,
    confirmed: AtomicU64,
    stop: AtomicBool,
    failure: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn fail(&self, e: impl std::fmt::Display) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let mut setup = Wire::connect(&opts.uri).await?;
    let declare = queue::Declare { queue: opts.queue.as_str().into(), durable: opts.persistent, ..Default::default() };
    setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await?;
    setup
        .rpc(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
                queue: opts.queue.as_str().into(),
                nowait: false,
            })),
        )
        .await?;

    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for _ in 0..opts.consumers {
        let wire = Wire::connect(&opts.uri).await?;
        tasks.push(tokio::spawn(consume(wire, opts.clone(), counters.clone())));
    }
    for _ in 0..opts.producers {
        let wire = Wire::connect(&opts.uri).await?;
        tasks.push(tokio::spawn(publish(wire, opts.clone(), counters.clone())));
    }

    tokio::time::sleep(opts.warmup).await;
    let start = Snapshot::take(&counters, opts.broker_pid);
    let mut last = start.clone();
    let deadline = Instant::now() + opts.duration;
    while Instant::now() < deadline && !counters.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()))).await;
        let now = Snapshot::take(&counters, opts.broker_pid);
        if opts.progress {
            let dt = now.at.duration_since(last.at).as_secs_f64().max(1e-9);
            eprintln!(
                "  {:>5.1}s  published {:>10.0}/s  consumed {:>10.0}/s  confirmed {:>10.0}/s",
                now.at.duration_since(start.at).as_secs_f64(),
                (now.published - last.published) as f64 / dt,
                (now.consumed - last.consumed) as f64 / dt,
                (now.confirmed - last.confirmed) as f64 / dt,
            );
        }
        last = now;
    }
    let end = Snapshot::take(&counters, opts.broker_pid);
    counters.stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    if let Some(f) = counters.failure.lock().ok().and_then(|f| f.clone()) {
        return Err(PerfError::Protocol(f));
    }
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
    let report = Report {
        published_per_sec: (end.published - start.published) as f64 / secs,
        consumed_per_sec: (end.consumed - start.consumed) as f64 / secs,
        confirmed_per_sec: (end.confirmed - start.confirmed) as f64 / secs,
        client_cpu_percent: usage::cpu_percent(start.client, end.client, end.at - start.at),
        broker_cpu_percent: start.broker.zip(end.broker).map(|(a, b)| usage::cpu_percent(a, b, end.at - start.at)),
        broker_rss_bytes: end.broker.map(|b| b.rss_bytes),
    };
    let delete = queue::Delete { queue: opts.queue.as_str().into(), ..Default::default() };
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))),
    )
    .await;
    Ok(report)
}

#[derive(Clone)]
struct Snapshot {
    at: Instant,
    published: u64,
    consumed: u64,
    confirmed: u64,
    client: Sample,
    broker: Option<Sample>,
}

impl Snapshot {
    fn take(c: &Counters, broker_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            published: c.published.load(Ordering::Relaxed),
            consumed: c.consumed.load(Ordering::Relaxed),
            confirmed: c.confirmed.load(Ordering::Relaxed),
            client: usage::own(),
            broker: broker_pid.and_then(usage::sample),
        }
    }
}

async fn consume(mut wire: Wire, opts: Options, counters: Arc<Counters>) {
    if let Err(e) = consume_inner(&mut wire, &opts, &counters).await
        && !counters.stop.load(Ordering::Relaxed)
    {
        counters.fail(format!("consumer: {e}"));
    }
}

async fn consume_inner(wire: &mut Wire, opts: &Options, counters: &Counters) -> Result<(), PerfError> {
    if !opts.autoack {
        let qos = basic::Qos { prefetch_count: opts.prefetch, global: false };
        wire.rpc(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos))).await?;
    }
    let consume = basic::Consume {
        queue: opts.queue.as_str().into(),
        consumer_tag: "".into(),
        no_local: false,
        no_ack: opts.autoack,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    wire.rpc(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume))).await?;
    let mut buf = wire.take_buffered();
    buf.reserve(1 << 20);
    let mut filled = buf.len();
    buf.resize(1 << 20, 0);
    let mut unacked = 0u64;
    let mut ack = Vec::with_capacity(64);
    loop {
        let n = wire.stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(PerfError::Protocol("broker closed the connection".into()));
        }
        filled += n;
        let (walked, used) = wire::walk(&buf[..filled]);
        if walked.closed {
            return Err(PerfError::Protocol("broker closed the channel or connection".into()));
        }
        counters.consumed.fetch_add(walked.deliveries, Ordering::Relaxed);
        if !opts.autoack && walked.deliveries > 0 {
            unacked += walked.deliveries;
            if unacked >= opts.ack_every.max(1) {
                ack.clear();
                let a = basic::Ack { delivery_tag: walked.last_delivery_tag, multiple: true };
                wire::encode(&AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a))), &mut ack);
                wire.stream.write_all(&ack).await?;
                unacked = 0;
            }
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled == buf.len() {
            // A frame larger than the buffer (a big body): grow to hold it.
            buf.resize(buf.len() * 2, 0);
        }
    }
}

async fn publish(mut wire: Wire, opts: Options, counters: Arc<Counters>) {
    if let Err(e) = publish_inner(&mut wire, &opts, &counters).await
        && !counters.stop.load(Ordering::Relaxed)
    {
        counters.fail(format!("publisher: {e}"));
    }
}

async fn publish_inner(wire: &mut Wire, opts: &Options, counters: &Counters) -> Result<(), PerfError> {
    if opts.confirm_window.is_some() {
        wire.rpc(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))).await?;
    }
    let mut props = BasicProperties::default();
    if opts.persistent {
        props = props.with_delivery_mode(2);
    }
    let body = vec![b'x'; opts.size];
    let one = wire::encode_publish(1, "", &opts.queue, &props, &body, wire.frame_max);
    let per_batch = (BATCH_BYTES / one.len()).max(1);
    let per_batch = match opts.rate {
        // With a rate, send in 1 ms slices.
        Some(rate) => ((rate / opts.producers.max(1) as u64) / 1000).clamp(1, per_batch as u64) as usize,
        None => per_batch,
    };
    let per_batch = match opts.confirm_window {
        Some(w) => per_batch.min(w.max(1) as usize),
        None => per_batch,
    };
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * per_batch).collect();
    let (mut reader, mut writer) = wire.stream.split();
    let confirmed = AtomicU64::new(0);
    let confirms_arrived = tokio::sync::Notify::new();
    let read_side = async {
        let mut buf = vec![0u8; 1 << 16];
        let mut filled = 0;
        loop {
            let n = reader.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err::<(), PerfError>(PerfError::Protocol("broker closed the connection".into()));
            }
            filled += n;
            let (walked, used) = wire::walk(&buf[..filled]);
            if walked.closed {
                return Err(PerfError::Protocol("broker closed the publishing channel".into()));
            }
            if let Some((tag, _multiple)) = walked.confirms_upto {
                let before = confirmed.swap(tag, Ordering::Relaxed);
                counters.confirmed.fetch_add(tag.saturating_sub(before), Ordering::Relaxed);
                confirms_arrived.notify_one();
            }
            buf.copy_within(used..filled, 0);
            filled -= used;
        }
    };
    let write_side = async {
        let started = Instant::now();
        let mut sent: u64 = 0;
        while !counters.stop.load(Ordering::Relaxed) {
            if let Some(window) = opts.confirm_window {
                loop {
                    let wake = confirms_arrived.notified();
                    if sent.saturating_sub(confirmed.load(Ordering::Relaxed)) + per_batch as u64 <= window {
                        break;
                    }
                    if counters.stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    // Bounded wait: a lost confirm must not hang the run.
                    let _ = tokio::time::timeout(Duration::from_millis(100), wake).await;
                }
            }
            if let Some(rate) = opts.rate {
                let per_producer = (rate / opts.producers.max(1) as u64).max(1);
                let due = Duration::from_secs_f64(sent as f64 / per_producer as f64);
                let elapsed = started.elapsed();
                if due > elapsed {
                    tokio::time::sleep(due - elapsed).await;
                }
            }
            writer.write_all(&batch).await?;
            sent += per_batch as u64;
            counters.published.fetch_add(per_batch as u64, Ordering::Relaxed);
        }
        Ok::<(), PerfError>(())
    };
    tokio::select! {
        r = read_side => r,
        r = write_side => r,
    }
}
