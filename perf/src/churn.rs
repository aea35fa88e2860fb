//! Queue churn: on each of C connections, in a loop, declare a fresh queue, bind it to
//! `amq.direct`, delete it; every step waits for its -ok. The figure is cycles per second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, queue};

use crate::PerfError;
use crate::meter::{self, Counters, Measured, Show};
use crate::wire::{Uri, Wire};

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub broker_pid: Option<u32>,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub measured: Measured,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let mut v = serde_json::json!({
            "scenario": "churn",
            "seconds": m.seconds,
            "cycles_per_sec": m.ops_per_sec,
        });
        m.usage.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        let m = &self.measured;
        format!("{:.0} declare/bind/delete cycles per second{}", m.ops_per_sec, m.usage.describe())
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for _ in 0..opts.connections.max(1) {
        let wire = Wire::connect(&opts.uri).await?;
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            let mut wire = wire;
            if let Err(e) = churn(&mut wire, &counters).await
                && !counters.stopped()
            {
                counters.fail(e);
            }
        }));
    }
    let show = Show { published: None, consumed: None, confirmed: None, ops: Some("cycles") };
    let measured = meter::measure(&counters, opts.warmup, opts.duration, opts.broker_pid, show, opts.progress).await;
    // Let each worker finish its cycle (and delete its queue) rather than abort mid-way.
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    if let Some(f) = counters.failure() {
        return Err(PerfError::Protocol(f));
    }
    Ok(Report { measured })
}

async fn churn(wire: &mut Wire, counters: &Counters) -> Result<(), PerfError> {
    let prefix = crate::fresh_name("perf-churn-");
    let mut i = 0u64;
    while !counters.stopped() {
        let name = format!("{prefix}-{i}");
        i += 1;
        let declare = queue::Declare { queue: name.as_str().into(), ..Default::default() };
        wire.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await?;
        let bind = queue::Bind {
            queue: name.as_str().into(),
            exchange: "amq.direct".into(),
            routing_key: name.as_str().into(),
            ..Default::default()
        };
        wire.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Bind(bind))).await?;
        let delete = queue::Delete { queue: name.as_str().into(), ..Default::default() };
        wire.rpc(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))).await?;
        counters.ops.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
