//! Command-line flags; every flag can also be given as a WARREN_* environment variable.

use clap::{Args, Parser, Subcommand};
use warren_broker::BrokerConfig;
use warren_broker::auth::User;

#[derive(Debug, Parser)]
#[command(name = "warren", version, about = "An AMQP 0-9-1 broker that RabbitMQ's clients accept as RabbitMQ")]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerOptions,

    /// Log filter (tracing EnvFilter syntax, e.g. "info" or "warren_broker=debug").
    #[arg(long, env = "WARREN_LOG", default_value = "info", global = true)]
    pub log: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure an AMQP 0-9-1 broker (warren, RabbitMQ, ...) over the wire.
    Perf(crate::perf_cli::PerfCommand),
}

#[derive(Debug, Args)]
pub struct ServerOptions {
    /// Address to serve AMQP on.
    #[arg(long, env = "WARREN_AMQP_BIND", default_value = "0.0.0.0:5672")]
    pub amqp_bind: String,

    /// Where durable definitions, persistent messages and streams are kept.
    #[arg(long, env = "WARREN_DATA_DIR", default_value = "warren-data")]
    pub data_dir: std::path::PathBuf,

    /// The default user's name (RabbitMQ's default_user).
    #[arg(long, env = "WARREN_DEFAULT_USER", default_value = "guest")]
    pub default_user: String,

    /// The default user's password (RabbitMQ's default_pass).
    #[arg(long, env = "WARREN_DEFAULT_PASS", default_value = "guest", hide_env_values = true)]
    pub default_pass: String,

    /// Let the user `guest` log in from other hosts than loopback (RabbitMQ refuses by default).
    #[arg(long, env = "WARREN_GUEST_REMOTE")]
    pub guest_remote: bool,

    /// Largest message body accepted, in bytes (RabbitMQ's max_message_size).
    #[arg(long, env = "WARREN_MAX_MESSAGE_SIZE", default_value_t = 128 * 1024 * 1024)]
    pub max_message_size: u64,

    /// Largest frame proposed to clients, in bytes.
    #[arg(long, env = "WARREN_FRAME_MAX", default_value_t = 131_072, value_parser = clap::value_parser!(u32).range(4096..))]
    pub frame_max: u32,

    /// Highest channel number proposed to clients.
    #[arg(long, env = "WARREN_CHANNEL_MAX", default_value_t = 2047)]
    pub channel_max: u16,

    /// Heartbeat interval proposed to clients, in seconds (0 disables).
    #[arg(long, env = "WARREN_HEARTBEAT", default_value_t = 60)]
    pub heartbeat: u16,
}

impl ServerOptions {
    pub fn broker_config(&self) -> BrokerConfig {
        let user = User {
            name: self.default_user.clone(),
            password: self.default_pass.clone(),
            loopback_only: self.default_user == "guest" && !self.guest_remote,
        };
        BrokerConfig {
            users: vec![user],
            max_message_size: self.max_message_size,
            frame_max: self.frame_max,
            channel_max: self.channel_max,
            heartbeat: self.heartbeat,
            ..BrokerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rabbitmq() {
        let cli = Cli::parse_from(["warren"]);
        let c = cli.server.broker_config();
        assert_eq!(cli.server.amqp_bind, "0.0.0.0:5672");
        assert_eq!(c.max_message_size, 128 * 1024 * 1024);
        assert_eq!(c.frame_max, 131_072);
        assert!(c.users[0].loopback_only);
        assert!(cli.command.is_none());
    }

    #[test]
    fn frame_max_below_minimum_is_refused() {
        assert!(Cli::try_parse_from(["warren", "--frame-max", "100"]).is_err());
    }

    #[test]
    fn perf_subcommand_parses() {
        let cli = Cli::parse_from(["warren", "perf", "throughput", "--size", "1024", "--duration", "2s"]);
        assert!(matches!(cli.command, Some(Command::Perf(_))));
    }
}
