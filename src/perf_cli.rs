//! `warren perf ...`: flags for the load generator (warren-perf) and its output.

use clap::{Args, Subcommand};
use warren_perf::{churn, connections, fanout, latency, parse_duration, sink, startup, throughput, wire};

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
    /// One publisher at a fixed rate, a timestamp in each body: p50/p99/p99.9/max.
    Latency(LatencyArgs),
    /// N queues bound to one fanout exchange, one consumer each: deliveries per second.
    Fanout(FanoutArgs),
    /// Hold N idle connections open: the broker's RSS per connection.
    Connections(ConnectionsArgs),
    /// Declare, bind and delete queues in a loop: cycles per second.
    Churn(ChurnArgs),
    /// Spawn a broker command and time it until it accepts AMQP on --uri (left running).
    Startup(StartupArgs),
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
    /// Spread publishers and consumers over this many queues (NAME-0, NAME-1, ...; publisher
    /// and consumer i on queue i mod N).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub queues: u64,
    /// Fill mode: stop once this many messages are confirmed (published, without --confirm)
    /// and leave them queued, added to what the queue already holds (use with --consumers 0
    /// and --queue; the queue is neither purged nor deleted).
    #[arg(long)]
    pub fill: Option<u64>,
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

#[derive(Debug, Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Messages per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Body size in bytes (8 to 4096; the first 8 hold the timestamp).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(8..=4096))]
    pub size: u64,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Queues bound to the exchange (one consumer each).
    #[arg(long, default_value_t = 10)]
    pub queues: usize,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    #[arg(long)]
    pub manual_ack: bool,
    #[arg(long, default_value_t = 100)]
    pub prefetch: u16,
    #[arg(long, default_value_t = 10)]
    pub ack_every: u64,
    /// Total publish rate in msg/s (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// How many connections to hold.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Give up opening after this long.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub open_timeout: std::time::Duration,
    /// Hold them idle this long (broker CPU is measured over it).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: std::time::Duration,
    #[arg(long)]
    pub broker_pid: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections churning in parallel.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// Where the broker will accept AMQP.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// The broker's stdout and stderr go here.
    #[arg(long, default_value = "/dev/null")]
    pub broker_log: std::path::PathBuf,
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Wait this long after it accepts AMQP before sampling its idle RSS.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub settle: std::time::Duration,
    #[arg(long)]
    pub json: bool,
    /// The command that starts the broker, e.g. `-- target/release/warren --amqp-bind 127.0.0.1:5674`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
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
                queues: a.queues as usize,
                broker_pid: c.broker_pid,
                progress: !c.json,
                fill: a.fill,
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
        Scenario::Latency(a) => {
            let c = a.common;
            let opts = latency::Options {
                uri: wire::parse_uri(&c.uri)?,
                rate: a.rate,
                size: a.size as usize,
                duration: c.duration,
                warmup: c.warmup,
                queue: warren_perf::fresh_name("perf-latency-"),
                broker_pid: c.broker_pid,
                progress: !c.json,
            };
            let r = latency::run(opts).await?;
            print(c.json, r.to_json(), r.summary());
        }
        Scenario::Fanout(a) => {
            let c = a.common;
            let opts = fanout::Options {
                uri: wire::parse_uri(&c.uri)?,
                queues: a.queues,
                producers: a.producers,
                size: a.size,
                duration: c.duration,
                warmup: c.warmup,
                autoack: !a.manual_ack,
                prefetch: a.prefetch,
                ack_every: a.ack_every,
                rate: a.rate,
                broker_pid: c.broker_pid,
                progress: !c.json,
            };
            let r = fanout::run(opts).await?;
            print(c.json, r.to_json(), r.summary());
        }
        Scenario::Connections(a) => {
            let opts = connections::Options {
                uri: wire::parse_uri(&a.uri)?,
                connections: a.connections,
                concurrency: a.concurrency,
                open_timeout: a.open_timeout,
                hold: a.hold,
                broker_pid: a.broker_pid,
                progress: !a.json,
            };
            let r = connections::run(opts).await?;
            print(a.json, r.to_json(), r.summary());
        }
        Scenario::Churn(a) => {
            let c = a.common;
            let opts = churn::Options {
                uri: wire::parse_uri(&c.uri)?,
                connections: a.connections,
                duration: c.duration,
                warmup: c.warmup,
                broker_pid: c.broker_pid,
                progress: !c.json,
            };
            let r = churn::run(opts).await?;
            print(c.json, r.to_json(), r.summary());
        }
        Scenario::Startup(a) => {
            let opts = startup::Options {
                uri: wire::parse_uri(&a.uri)?,
                command: a.command,
                log: a.broker_log,
                timeout: a.timeout,
                settle: a.settle,
            };
            let r = startup::run(opts).await?;
            print(a.json, r.to_json(), r.summary());
        }
    }
    Ok(())
}
