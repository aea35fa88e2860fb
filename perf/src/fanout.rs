//! Fanout: N queues bound to one fanout exchange, one consumer (own connection) per queue,
//! P publishers publishing to the exchange. The figure is deliveries per second, all queues.

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, exchange, queue};

use crate::PerfError;
use crate::meter::{self, Counters, Measured, Show};
use crate::throughput::{ConsumeSpec, PublishSpec, consume, publish};
use crate::wire::{Uri, Wire};

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    pub queues: usize,
    pub producers: usize,
    pub size: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub autoack: bool,
    pub prefetch: u16,
    pub ack_every: u64,
    /// Messages per second over all publishers (None: as fast as possible).
    pub rate: Option<u64>,
    pub broker_pid: Option<u32>,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub queues: usize,
    pub measured: Measured,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let mut v = serde_json::json!({
            "scenario": "fanout",
            "queues": self.queues,
            "seconds": m.seconds,
            "published_per_sec": m.published_per_sec,
            "consumed_per_sec": m.consumed_per_sec,
        });
        m.usage.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        let m = &self.measured;
        format!(
            "fanout to {} queues: published {:.0} msg/s, delivered {:.0} msg/s in all{}",
            self.queues,
            m.published_per_sec,
            m.consumed_per_sec,
            m.usage.describe()
        )
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let exchange_name = crate::fresh_name("perf-fanout-");
    let queues: Vec<String> = (0..opts.queues).map(|i| format!("{exchange_name}-{i}")).collect();
    let mut setup = Wire::connect(&opts.uri).await?;
    let declare =
        exchange::Declare { exchange: exchange_name.as_str().into(), kind: "fanout".into(), ..Default::default() };
    setup.rpc(1, AMQPClass::Exchange(exchange::AMQPMethod::Declare(declare))).await?;
    for q in &queues {
        let declare = queue::Declare { queue: q.as_str().into(), ..Default::default() };
        setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await?;
        let bind = queue::Bind {
            queue: q.as_str().into(),
            exchange: exchange_name.as_str().into(),
            routing_key: "".into(),
            ..Default::default()
        };
        setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Bind(bind))).await?;
    }

    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for q in &queues {
        let spec =
            ConsumeSpec { queue: q.clone(), autoack: opts.autoack, prefetch: opts.prefetch, ack_every: opts.ack_every };
        tasks.push(tokio::spawn(consume(Wire::connect(&opts.uri).await?, spec, counters.clone())));
    }
    let spec = PublishSpec {
        exchange: exchange_name.clone(),
        routing_key: String::new(),
        size: opts.size,
        persistent: false,
        confirm_window: None,
        rate: opts.rate.map(|r| (r / opts.producers.max(1) as u64).max(1)),
    };
    for _ in 0..opts.producers {
        tasks.push(tokio::spawn(publish(Wire::connect(&opts.uri).await?, spec.clone(), counters.clone())));
    }
    let show = Show { published: Some("published"), consumed: Some("delivered"), confirmed: None, ops: None };
    let measured = meter::measure(&counters, opts.warmup, opts.duration, opts.broker_pid, show, opts.progress).await;
    for t in &tasks {
        t.abort();
    }
    if let Some(f) = counters.failure() {
        return Err(PerfError::Protocol(f));
    }
    let cleanup = async {
        for q in &queues {
            let delete = queue::Delete { queue: q.as_str().into(), ..Default::default() };
            setup.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))).await?;
        }
        let delete = exchange::Delete { exchange: exchange_name.as_str().into(), ..Default::default() };
        setup.rpc(1, AMQPClass::Exchange(exchange::AMQPMethod::Delete(delete))).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), cleanup).await;
    Ok(Report { queues: opts.queues, measured })
}
