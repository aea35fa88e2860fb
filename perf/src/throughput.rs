//! Throughput: P publishers and C consumers on one queue (or spread over Q queues, publisher i
//! and consumer i on queue i mod Q) for a fixed time. Publishers write a
//! pre-encoded batch of publishes per syscall; consumers count deliveries in place and, with
//! manual acks, send one `basic.ack multiple=true` every `ack_every` deliveries.
//!
//! The two workers ([`publish`], [`consume`]) are shared with the fanout scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, queue};
use amq_protocol::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::PerfError;
use crate::meter::{self, Counters, Measured, Show};
use crate::wire::{self, Uri, Wire};

/// Aim for this many bytes per write.
const BATCH_BYTES: usize = 256 * 1024;
/// Consumers read into a buffer this large.
const READ_BUF: usize = 1 << 20;

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
    /// Queues the publishers and consumers are spread over (1: all on `queue`; more: `queue-0`,
    /// `queue-1`, ..., publisher and consumer i on queue i mod `queues`).
    pub queues: usize,
    pub broker_pid: Option<u32>,
    /// Print a progress line every second.
    pub progress: bool,
    /// Fill mode: stop once this many messages are confirmed (or published, without confirms)
    /// and leave the queue and its messages in place (no consumers should be asked for).
    pub fill: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub measured: Measured,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let mut v = serde_json::json!({
            "scenario": "throughput",
            "seconds": m.seconds,
            "published_per_sec": m.published_per_sec,
            "consumed_per_sec": m.consumed_per_sec,
            "confirmed_per_sec": m.confirmed_per_sec,
        });
        m.usage.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        let m = &self.measured;
        format!(
            "published {:.0} msg/s, consumed {:.0} msg/s, confirmed {:.0} msg/s{}",
            m.published_per_sec,
            m.consumed_per_sec,
            m.confirmed_per_sec,
            m.usage.describe()
        )
    }
}

/// How a publisher publishes.
#[derive(Clone, Debug)]
pub(crate) struct PublishSpec {
    pub exchange: String,
    pub routing_key: String,
    pub size: usize,
    pub persistent: bool,
    pub confirm_window: Option<u64>,
    /// Messages per second for this publisher.
    pub rate: Option<u64>,
}

/// How a consumer consumes.
#[derive(Clone, Debug)]
pub(crate) struct ConsumeSpec {
    pub queue: String,
    pub autoack: bool,
    pub prefetch: u16,
    pub ack_every: u64,
}

/// The queues a run uses: `queue` itself, or `queue-0` .. `queue-{n-1}`.
fn queue_names(opts: &Options) -> Vec<String> {
    if opts.queues <= 1 {
        vec![opts.queue.clone()]
    } else {
        (0..opts.queues).map(|i| format!("{}-{i}", opts.queue)).collect()
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let names = queue_names(&opts);
    let mut setup = Wire::connect(&opts.uri).await?;
    for name in &names {
        let declare = queue::Declare { queue: name.as_str().into(), durable: opts.persistent, ..Default::default() };
        setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await?;
        // A measurement starts from an empty queue; a fill adds to what is there.
        if opts.fill.is_none() {
            let purge = queue::Purge { queue: name.as_str().into(), nowait: false };
            setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Purge(purge))).await?;
        }
    }

    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for i in 0..opts.consumers {
        let consume_spec = ConsumeSpec {
            queue: names[i % names.len()].clone(),
            autoack: opts.autoack,
            prefetch: opts.prefetch,
            ack_every: opts.ack_every,
        };
        let wire = Wire::connect(&opts.uri).await?;
        tasks.push(tokio::spawn(consume(wire, consume_spec, counters.clone())));
    }
    for i in 0..opts.producers {
        let publish_spec = PublishSpec {
            exchange: String::new(),
            routing_key: names[i % names.len()].clone(),
            size: opts.size,
            persistent: opts.persistent,
            confirm_window: opts.confirm_window,
            rate: opts.rate.map(|r| (r / opts.producers.max(1) as u64).max(1)),
        };
        let wire = Wire::connect(&opts.uri).await?;
        tasks.push(tokio::spawn(publish(wire, publish_spec, counters.clone())));
    }

    if let Some(target) = opts.fill {
        let measured = fill(&counters, target, opts.confirm_window.is_some(), opts.progress).await;
        counters.stop.store(true, Ordering::Relaxed);
        for t in &tasks {
            t.abort();
        }
        if let Some(f) = counters.failure() {
            return Err(PerfError::Protocol(f));
        }
        return Ok(Report { measured });
    }
    let measured =
        meter::measure(&counters, opts.warmup, opts.duration, opts.broker_pid, Show::PUB_CON_CONF, opts.progress).await;
    for t in &tasks {
        t.abort();
    }
    if let Some(f) = counters.failure() {
        return Err(PerfError::Protocol(f));
    }
    for name in &names {
        let delete = queue::Delete { queue: name.as_str().into(), ..Default::default() };
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))),
        )
        .await;
    }
    Ok(Report { measured })
}

/// Wait until `target` messages are confirmed (published, without confirms) or a task failed;
/// the rates are over the whole fill.
async fn fill(counters: &Counters, target: u64, confirms: bool, progress: bool) -> Measured {
    let started = Instant::now();
    let mut last_report = started;
    loop {
        let published = counters.published.load(Ordering::Relaxed);
        let confirmed = counters.confirmed.load(Ordering::Relaxed);
        let done = if confirms { confirmed } else { published };
        if done >= target || counters.failure().is_some() {
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            return Measured {
                seconds,
                published_per_sec: published as f64 / seconds,
                confirmed_per_sec: confirmed as f64 / seconds,
                ..Measured::default()
            };
        }
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            eprintln!("fill: {done}/{target}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn consume(mut wire: Wire, spec: ConsumeSpec, counters: Arc<Counters>) {
    if let Err(e) = consume_inner(&mut wire, &spec, &counters).await
        && !counters.stopped()
    {
        counters.fail(format!("consumer: {e}"));
    }
}

async fn consume_inner(wire: &mut Wire, spec: &ConsumeSpec, counters: &Counters) -> Result<(), PerfError> {
    if !spec.autoack {
        let qos = basic::Qos { prefetch_count: spec.prefetch, global: false };
        wire.rpc(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos))).await?;
    }
    let consume = basic::Consume {
        queue: spec.queue.as_str().into(),
        consumer_tag: "".into(),
        no_local: false,
        no_ack: spec.autoack,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    wire.rpc(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume))).await?;
    let mut buf = wire.take_buffered();
    let mut filled = buf.len();
    buf.resize(filled.max(READ_BUF), 0);
    let mut unacked = 0u64;
    let mut ack = Vec::with_capacity(64);
    while !counters.stopped() {
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
        if !spec.autoack && walked.deliveries > 0 {
            unacked += walked.deliveries;
            if unacked >= spec.ack_every.max(1) {
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
    Ok(())
}

pub(crate) async fn publish(mut wire: Wire, spec: PublishSpec, counters: Arc<Counters>) {
    if let Err(e) = publish_inner(&mut wire, &spec, &counters).await
        && !counters.stopped()
    {
        counters.fail(format!("publisher: {e}"));
    }
}

async fn publish_inner(wire: &mut Wire, spec: &PublishSpec, counters: &Counters) -> Result<(), PerfError> {
    if spec.confirm_window.is_some() {
        wire.rpc(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))).await?;
    }
    let mut props = BasicProperties::default();
    if spec.persistent {
        props = props.with_delivery_mode(2);
    }
    let body = vec![b'x'; spec.size];
    let one = wire::encode_publish(1, &spec.exchange, &spec.routing_key, &props, &body, wire.frame_max);
    let per_batch = (BATCH_BYTES / one.len()).max(1);
    let per_batch = match spec.rate {
        // With a rate, send in 1 ms slices.
        Some(rate) => (rate / 1000).clamp(1, per_batch as u64) as usize,
        None => per_batch,
    };
    let per_batch = match spec.confirm_window {
        // At most half the window per write, so that the pipe never runs dry.
        Some(w) => per_batch.min((w / 2).max(1) as usize),
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
                let before = confirmed.fetch_max(tag, Ordering::Relaxed);
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
        while !counters.stopped() {
            if let Some(window) = spec.confirm_window {
                loop {
                    let wake = confirms_arrived.notified();
                    if sent.saturating_sub(confirmed.load(Ordering::Relaxed)) + per_batch as u64 <= window {
                        break;
                    }
                    if counters.stopped() {
                        return Ok(());
                    }
                    // Bounded wait: a lost confirm must not hang the run.
                    let _ = tokio::time::timeout(Duration::from_millis(100), wake).await;
                }
            }
            if let Some(rate) = spec.rate {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
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
