//! `warren perf ...`: flags for the load generator (warren-perf) and its output.

use clap::{Args, Subcommand};
use warren_perf::{parse_duration, throughput, wire};

#[derive(Debug, Args)]
pub struct PerfCommand {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Publishers and consumers on one queue for a fixed time.
    Throughput(ThroughputArgs),
}

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Broker to measure.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// How long to measure (after the warm-up), e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: std::time::Duration,
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
    /// Report this broker process's CPU and RSS.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd.scenario {
        Scenario::Throughput(a) => {
            let uri = wire::parse_uri(&a.uri)?;
            let queue = a.queue.unwrap_or_else(|| warren_perf::fresh_name("perf-"));
            let opts = throughput::Options {
                uri,
                producers: a.producers,
                consumers: a.consumers,
                size: a.size,
                duration: a.duration,
                warmup: a.warmup,
                autoack: !a.manual_ack,
                prefetch: a.prefetch,
                ack_every: a.ack_every,
                confirm_window: a.confirm,
                persistent: a.persistent,
                rate: a.rate,
                queue,
                broker_pid: a.broker_pid,
                progress: !a.json,
            };
            let report = throughput::run(opts).await?;
            if a.json {
                println!("{}", report.to_json());
            } else {
                println!(
                    "published {:.0} msg/s, consumed {:.0} msg/s, confirmed {:.0} msg/s, client CPU {:.0}%{}",
                    report.published_per_sec,
                    report.consumed_per_sec,
                    report.confirmed_per_sec,
                    report.client_cpu_percent,
                    match (report.broker_cpu_percent, report.broker_rss_bytes) {
                        (Some(cpu), Some(rss)) =>
                            format!(", broker CPU {cpu:.0}%, broker RSS {:.1} MB", rss as f64 / 1e6),
                        _ => String::new(),
                    }
                );
            }
            Ok(())
        }
    }
}
