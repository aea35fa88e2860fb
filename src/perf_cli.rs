//! `warren perf ...`: flags for the load generator (warren-perf) and its output.

use clap::{Args, Subcommand};
use warren_perf::{parse_duration, sink, throughput, wire};

#[derive(Debug, Args)]
pub struct PerfCommand {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Publishers and consumers on one queue for a fixed time.
    Throughput(ThroughputArgs),
    /// A do-nothing AMQP server: counts and drops publishes, floods consumers. Shows the
    /// generator's own ceiling: `warren perf sink` in one shell, `warren perf throughput
    /// --uri <printed uri>` in another.
    Sink(SinkArgs),
}

/// Flags every scenario has.
#[derive(Debug, Args)]
pub struct Common {
    /// Broker to measure.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// How long to measure (after the warm-up), e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: std::time::Duration,
    /// Report this broker process's CPU and RSS.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Print the summary as JSON (and no progress lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Acknowledge manually (default: autoack).
    #[arg(long)]
    pub manual_ack: bool,
    /// basic.qos prefetch for manual-ack consumers.
    #[arg(long, default_value_t = 100)]
    pub prefetch: u16,
    /// With manual acks: one ack (multiple=true) every N deliveries.
    #[arg(long, default_value_t = 10)]
    pub ack_every: u64,
    /// Publisher confirms with at most this many unconfirmed messages per publisher.
    #[arg(long)]
    pub confirm: Option<u64>,
    /// Persistent messages (delivery_mode 2) on a durable queue.
    #[arg(long)]
    pub persistent: bool,
    /// Total publish rate in msg/s (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Queue name (default: a fresh one).
    #[arg(long)]
    pub queue: Option<String>,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on (loopback only is the point).
    #[arg(long, default_value = "127.0.0.1:5680")]
    pub bind: String,
    /// Exit after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Body size of the deliveries consumers are flooded with.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Print the summary as JSON (and no progress lines).
    #[arg(long)]
    pub json: bool,
}

fn print(json: bool, value: serde_json::Value, summary: String) {
    if json {
        println!("{value}");
    } else {
        println!("{summary}");
    }
}

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd.scenario {
        Scenario::Throughput(a) => {
            let c = a.common;
            let opts = throughput::Options {
                uri: wire::parse_uri(&c.uri)?,
                producers: a.producers,
                consumers: a.consumers,
                size: a.size,
                duration: c.duration,
                warmup: c.warmup,
                autoack: !a.manual_ack,
                prefetch: a.prefetch,
                ack_every: a.ack_every,
                confirm_window: a.confirm,
                persistent: a.persistent,
                rate: a.rate,
                queue: a.queue.unwrap_or_else(|| warren_perf::fresh_name("perf-")),
                broker_pid: c.broker_pid,
                progress: !c.json,
            };
            let r = throughput::run(opts).await?;
            print(c.json, r.to_json(), r.summary());
        }
        Scenario::Sink(a) => {
            let opts = sink::Options { bind: a.bind, duration: a.duration, size: a.size, progress: !a.json };
            let r = sink::run(opts, |uri| {
                println!("{uri}");
                eprintln!("sink listening: warren perf throughput --uri {uri}");
            })
            .await?;
            print(a.json, r.to_json(), r.summary());
        }
    }
    Ok(())
}
