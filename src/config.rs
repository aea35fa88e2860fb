//! Command-line flags; every flag can also be given as a WARREN_* environment variable, and
//! many as a key of a rabbitmq.conf file (`--config`). Precedence: built-in defaults < the
//! file < WARREN_* variables < flags.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use warren_broker::BrokerConfig;
use warren_broker::auth::User;
use warren_broker::listen::ListenAddr;

use crate::rabbitmq_conf::{self, Limit, Setting};

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
    /// Control a running warren as rabbitmqctl does: limits (set_vm_memory_high_watermark,
    /// set_disk_free_limit, status), users, vhosts, permissions, listings, connections,
    /// export_definitions/import_definitions.
    Ctl(crate::ctl::CtlCommand),
    /// Run a bot that joins the web chat over AMQP (`warren bot words`: the reference bot).
    Bot(crate::bot_cli::BotCommand),
    /// Run a program in a chat room: its stdout lines are posted as the bot, the room's
    /// messages are its stdin lines; restarted with backoff when it exits.
    Exec(crate::bot_cli::ExecCommand),
}

#[derive(Debug, Args)]
pub struct ServerOptions {
    /// A configuration file in RabbitMQ's rabbitmq.conf format: `key = value` lines, `#`
    /// comments. It overrides the built-in defaults; WARREN_* variables and flags override it.
    /// An unknown key or a bad value stops warren, naming the line. Keys, and the flag each sets:
    ///   listeners.tcp.default                          --amqp-bind
    ///   listeners.ssl.default                          --amqps-bind
    ///   ssl_options.certfile, .keyfile, .cacertfile    --tls-cert, --tls-key, --tls-ca
    ///   ssl_options.verify = verify_peer               --tls-verify-peer
    ///   ssl_options.fail_if_no_peer_cert = true        --tls-fail-if-no-peer-cert
    ///   ssl_handshake_timeout                          --tls-handshake-timeout
    ///   default_user, default_pass                     --default-user, --default-pass
    ///   loopback_users.guest = false (or = none)       --guest-remote
    ///   vm_memory_high_watermark.relative, .absolute   --memory-high-watermark
    ///   disk_free_limit.absolute, .relative            --disk-free-limit
    ///   max_message_size, heartbeat, frame_max, channel_max   the flags of those names
    ///   management.tcp.ip, .port                       --management-bind
    ///   prometheus.tcp.ip, .port                       --prometheus-bind
    ///   load_definitions (definitions.local.path)      --load-definitions
    ///   log.console.level                              --log
    #[arg(long, env = "WARREN_CONFIG", value_name = "FILE", verbatim_doc_comment)]
    pub config: Option<std::path::PathBuf>,

    /// Address to serve AMQP on (listeners.tcp.default): ip:port, [ipv6]:port or host:port,
    /// used as given; or a port alone: every interface, IPv6 and IPv4 (one [::] socket that
    /// takes IPv4 clients too; 0.0.0.0 where the host has no IPv6), as by default ([::]:5672).
    #[arg(long, env = "WARREN_AMQP_BIND", default_value = "5672", value_name = "ADDR")]
    pub amqp_bind: ListenAddr,

    /// Where the management HTTP API listens (management.tcp.ip, .port): loopback only by
    /// default, as RabbitMQ's own default is reachable from anywhere.
    #[arg(long, env = "WARREN_MANAGEMENT_BIND", default_value = "127.0.0.1:15672", value_name = "ADDR")]
    pub management_bind: ListenAddr,

    /// Where Prometheus metrics (/metrics, /metrics/per-object) listen (prometheus.tcp.ip,
    /// .port); a port alone is every interface ([::]:15692). The management port serves them too.
    #[arg(long, env = "WARREN_PROMETHEUS_BIND", default_value = "15692", value_name = "ADDR")]
    pub prometheus_bind: ListenAddr,

    /// A definitions file (RabbitMQ's JSON: users, vhosts, permissions, exchanges, queues,
    /// bindings) imported at every start before clients are let in, as RabbitMQ's
    /// load_definitions: what exists is updated, nothing is deleted.
    #[arg(long, env = "WARREN_LOAD_DEFINITIONS", value_name = "FILE")]
    pub load_definitions: Option<std::path::PathBuf>,

    /// Where durable definitions, persistent messages and streams are kept.
    #[arg(long, env = "WARREN_DATA_DIR", default_value = "warren-data")]
    pub data_dir: std::path::PathBuf,

    /// The default user's name (RabbitMQ's default_user): created with the vhost "/" on a fresh
    /// data directory only, as an administrator with all permissions on "/".
    #[arg(long, env = "WARREN_DEFAULT_USER", default_value = "guest")]
    pub default_user: String,

    /// The default user's password (RabbitMQ's default_pass).
    #[arg(long, env = "WARREN_DEFAULT_PASS", default_value = "guest", hide_env_values = true)]
    pub default_pass: String,

    /// Let the user `guest` log in from other hosts than loopback (RabbitMQ refuses by default:
    /// its loopback_users).
    #[arg(long, env = "WARREN_GUEST_REMOTE")]
    pub guest_remote: bool,

    /// Block publishers while the data directory's filesystem has less free space than this
    /// (RabbitMQ's disk_free_limit): 50MB, 2GB, 512MiB, or bytes.
    #[arg(long, env = "WARREN_DISK_FREE_LIMIT", default_value = "50MB", value_parser = warren_broker::alarm::parse_size)]
    pub disk_free_limit: u64,

    /// Block publishers while warren's resident memory is above this (RabbitMQ's
    /// vm_memory_high_watermark): a fraction of the machine's memory (0.4) or a size (2GB).
    #[arg(long, env = "WARREN_MEMORY_HIGH_WATERMARK", default_value = "0.4", value_parser = warren_broker::alarm::parse_watermark)]
    pub memory_high_watermark: u64,

    /// Largest message body accepted, in bytes (RabbitMQ's max_message_size).
    /// At most 512 MiB, RabbitMQ's own cap.
    #[arg(long, env = "WARREN_MAX_MESSAGE_SIZE", default_value_t = 128 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=BrokerConfig::MAX_MESSAGE_SIZE_CAP))]
    pub max_message_size: u64,

    /// Largest frame proposed to clients, in bytes.
    #[arg(long, env = "WARREN_FRAME_MAX", default_value_t = 131_072, value_parser = clap::value_parser!(u32).range(4096..))]
    pub frame_max: u32,

    /// Highest channel number proposed to clients.
    #[arg(long, env = "WARREN_CHANNEL_MAX", default_value_t = 2047)]
    pub channel_max: u16,

    /// The CPU slice warren's threads ask the scheduler for, in microseconds (Linux 6.12+):
    /// a shorter slice than the kernel's default lets the broker answer one connection promptly
    /// while its clients keep the cores busy. 0: the kernel's default.
    #[arg(long, env = "WARREN_SCHED_SLICE_US", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub sched_slice_us: u64,

    /// Heartbeat interval proposed to clients, in seconds (0 disables).
    #[arg(long, env = "WARREN_HEARTBEAT", default_value_t = 60)]
    pub heartbeat: u16,

    #[command(flatten)]
    pub tls: TlsOptions,

    #[command(flatten)]
    pub chat: ChatOptions,
}

/// TLS: AMQPS (RabbitMQ's `listeners.ssl.default` and `ssl_options.*`) and the chat over
/// HTTPS, on one certificate. Off unless --tls-cert is given.
#[derive(Debug, Args)]
pub struct TlsOptions {
    /// Server certificate chain, PEM, leaf first (RabbitMQ's ssl_options.certfile). Turns on
    /// AMQPS on --amqps-bind and the chat on --https-bind.
    #[arg(long, env = "WARREN_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The certificate's private key, PEM: PKCS#8, PKCS#1 or SEC1 (ssl_options.keyfile).
    #[arg(long, env = "WARREN_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,

    /// CA certificates, PEM, trusted to sign client certificates (ssl_options.cacertfile).
    #[arg(long, env = "WARREN_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Ask AMQPS clients for a certificate and verify it against --tls-ca
    /// (ssl_options.verify = verify_peer; default verify_none).
    #[arg(long, env = "WARREN_TLS_VERIFY_PEER")]
    pub tls_verify_peer: bool,

    /// With --tls-verify-peer: refuse clients that send no certificate
    /// (ssl_options.fail_if_no_peer_cert).
    #[arg(long, env = "WARREN_TLS_FAIL_IF_NO_PEER_CERT")]
    pub tls_fail_if_no_peer_cert: bool,

    /// Address to serve AMQPS on when --tls-cert is given (listeners.ssl.default); a port
    /// alone is every interface, IPv6 and IPv4, as for --amqp-bind ([::]:5671).
    #[arg(long, env = "WARREN_AMQPS_BIND", default_value = "5671", value_name = "ADDR")]
    pub amqps_bind: ListenAddr,

    /// Milliseconds a client has to finish the TLS handshake (RabbitMQ's
    /// ssl_handshake_timeout); the AMQP handshake's own 10 s start after it.
    #[arg(long, env = "WARREN_TLS_HANDSHAKE_TIMEOUT", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub tls_handshake_timeout: u64,
}

impl TlsOptions {
    /// The TLS settings need one another: checked once flags, variables and the configuration
    /// file are merged (clap's `requires` would see the flags alone).
    fn check(&self) -> Result<(), ConfigError> {
        let fail = |why| Err(ConfigError::Inconsistent(why));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return fail("--tls-cert and --tls-key (ssl_options.certfile and ssl_options.keyfile) go together");
        }
        if self.tls_ca.is_some() && self.tls_cert.is_none() {
            return fail("--tls-ca (ssl_options.cacertfile) needs --tls-cert and --tls-key");
        }
        if self.tls_verify_peer && self.tls_ca.is_none() {
            return fail(
                "--tls-verify-peer (ssl_options.verify = verify_peer) needs --tls-ca (ssl_options.cacertfile)",
            );
        }
        if self.tls_fail_if_no_peer_cert && !self.tls_verify_peer {
            return fail(
                "--tls-fail-if-no-peer-cert (ssl_options.fail_if_no_peer_cert) needs --tls-verify-peer (ssl_options.verify = verify_peer)",
            );
        }
        Ok(())
    }

    /// The broker's TLS settings; None when TLS is off (no certificate).
    pub fn broker_tls(&self) -> Option<warren_broker::tls::TlsOptions> {
        let (cert, key) = (self.tls_cert.as_ref()?, self.tls_key.as_ref()?);
        Some(warren_broker::tls::TlsOptions {
            cert: cert.clone(),
            key: key.clone(),
            ca: self.tls_ca.clone(),
            verify_peer: self.tls_verify_peer,
            fail_if_no_peer_cert: self.tls_fail_if_no_peer_cert,
            handshake_timeout: std::time::Duration::from_millis(self.tls_handshake_timeout),
        })
    }
}

/// The web chat (an AMQP client of the embedded broker, or of `--amqp-url`).
#[derive(Debug, Args)]
pub struct ChatOptions {
    /// Address to serve the web chat (UI, REST, WebSocket) on; a port alone is every
    /// interface, IPv6 and IPv4, as for --amqp-bind ([::]:8080).
    #[arg(long, env = "WARREN_HTTP_BIND", default_value = "8080", value_name = "ADDR")]
    pub http_bind: ListenAddr,

    /// Address to serve the web chat over HTTPS on, when --tls-cert is given (same certificate
    /// as AMQPS); a port alone is every interface ([::]:8443). Plain HTTP stays on
    /// --http-bind: bind that to 127.0.0.1 for HTTPS only.
    #[arg(long, env = "WARREN_HTTPS_BIND", default_value = "8443", value_name = "ADDR")]
    pub https_bind: ListenAddr,

    /// CA certificates, PEM, the chat trusts for an amqps:// --amqp-url besides the system's
    /// (e.g. the CA of a RabbitMQ with a self-signed certificate).
    #[arg(long, env = "WARREN_AMQP_CA")]
    pub amqp_ca: Option<std::path::PathBuf>,

    /// Don't serve the web chat (AMQP broker only).
    #[arg(long, env = "WARREN_NO_CHAT")]
    pub no_chat: bool,

    /// Run the chat against this broker (e.g. a RabbitMQ cluster) instead of the embedded one;
    /// the embedded broker is then not started. Several nodes comma separated
    /// (`amqp://u:p@rabbit1:5672/%2f,rabbit2:5672,rabbit3:5672`: bare host:port items take the
    /// first URL's credentials and vhost): on connection loss the chat moves to the next node.
    #[arg(long, env = "WARREN_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,

    /// The chat's own AMQP user on the embedded broker (its service user, the only one whose
    /// `x-chat-author` and directory events the chat believes); created at every start with
    /// full permissions on the vhost `chat` and none elsewhere. Default: `warren-chat`.
    #[arg(long, env = "WARREN_CHAT_USER")]
    pub chat_user: Option<String>,

    /// Password of --chat-user; default: a random one made at the first start and kept in the
    /// data directory (`chat-service-password`, mode 0600).
    #[arg(long, env = "WARREN_CHAT_PASS", hide_env_values = true)]
    pub chat_pass: Option<String>,

    /// How long a chat login token stays valid, in hours.
    #[arg(long, env = "WARREN_CHAT_TOKEN_HOURS", default_value_t = 24)]
    pub chat_token_hours: u64,

    /// Multiply every rate limit of the chat (sign-up, login, posting; per address and per
    /// user) by this: for many people behind one address, or a benchmark.
    #[arg(long, env = "WARREN_CHAT_RATE_LIMIT_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub chat_rate_limit_factor: u32,

    /// Default retention of a new room's messages, in days (0 = forever).
    #[arg(long, env = "WARREN_CHAT_RETENTION_DAYS", default_value_t = 30)]
    pub chat_retention_days: u32,

    /// The newest messages of each room a chat front end keeps in memory; older history is
    /// read from the room's stream when someone scrolls back or searches.
    #[arg(long, env = "WARREN_CHAT_HISTORY_WINDOW", default_value_t = warren_chat::room_log::DEFAULT_WINDOW as u64, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub chat_history_window: u64,
    /// Largest file a chat user may share (attach, drop or paste into a room), in MB; files
    /// are kept in the broker with the room's retention.
    #[arg(long, env = "WARREN_CHAT_MAX_UPLOAD_MB", default_value_t = 10, value_name = "MB",
        value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_upload_mb: u32,

    /// Who may create a chat account: `open` (anyone who reaches the page), `invite` (only
    /// with a room's invitation link, and the account joins that room) or `closed`. The very
    /// first account may always sign up: it is the chat's administrator.
    #[arg(long, env = "WARREN_CHAT_SIGNUP", default_value = "open", value_name = "open|invite|closed")]
    pub signup: warren_chat::Signup,

    /// A chat administrator besides the first account (repeat for several): may rename,
    /// archive and delete any room, remove members, and disable accounts.
    #[arg(long = "admin", env = "WARREN_CHAT_ADMINS", value_delimiter = ',', value_name = "NAME")]
    pub admins: Vec<String>,
    /// The public room every new account joins, created at start if missing (its id is the
    /// name in lower case, e.g. `general`); an empty name: no default room.
    #[arg(long, env = "WARREN_CHAT_DEFAULT_ROOM", default_value = "general", value_name = "NAME")]
    pub chat_default_room: String,

    /// Bots' replies come back on a server-named queue per request, with `x-expires`, instead of
    /// RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`).
    #[arg(long, env = "WARREN_BOT_REPLY_QUEUES")]
    pub bot_reply_queues: bool,

    /// A bot's reply with no chunk for this many seconds is closed and marked interrupted.
    #[arg(long, env = "WARREN_BOT_IDLE_TIMEOUT", default_value_t = 15, value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..))]
    pub bot_idle_timeout: u64,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag or variable, or `--help` / `--version` (clap prints and exits).
    #[error(transparent)]
    Flags(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] rabbitmq_conf::FileError),
    #[error("configuration file {path}, line {line}: `{key}`: {why}")]
    Value { path: std::path::PathBuf, line: usize, key: String, why: String },
    #[error("configuration file {path}: {why}")]
    Incomplete { path: std::path::PathBuf, why: &'static str },
    /// Settings that need one another (checked once flags, variables and file are merged).
    #[error("{0}")]
    Inconsistent(&'static str),
}

/// The command line `args`, with the rabbitmq.conf file it names (--config or WARREN_CONFIG)
/// under it: the file sets what neither a flag nor a WARREN_* variable set.
pub fn load_from<I, T>(args: I) -> Result<Cli, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))?;
    if cli.command.is_none()
        && let Some(path) = cli.server.config.clone()
    {
        let entries = rabbitmq_conf::read(&path)?;
        cli.apply(&path, &entries, &matches)?;
    }
    if cli.command.is_none() {
        cli.server.tls.check()?;
    }
    Ok(cli)
}

impl Cli {
    /// Apply the file's `entries`, in order, to each flag left at its built-in default.
    fn apply(
        &mut self,
        path: &std::path::Path,
        entries: &[rabbitmq_conf::Entry],
        matches: &ArgMatches,
    ) -> Result<(), ConfigError> {
        let unset = |id: &str| matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue));
        let Cli { server: s, log, .. } = self;
        for entry in entries {
            let bytes = |limit: &Limit| match *limit {
                Limit::Absolute(bytes) => Ok(bytes),
                Limit::Relative(fraction) => warren_broker::alarm::total_memory_bytes()
                    .map(|total| (total as f64 * fraction) as u64)
                    .map_err(|e| ConfigError::Value {
                        path: path.to_owned(),
                        line: entry.line,
                        key: entry.key.clone(),
                        why: format!("cannot read the machine's memory size: {e}"),
                    }),
            };
            match &entry.setting {
                Setting::AmqpListener(addr) if unset("amqp_bind") => s.amqp_bind = addr.clone(),
                Setting::AmqpsListener(addr) if unset("amqps_bind") => s.tls.amqps_bind = addr.clone(),
                Setting::TlsCert(file) if unset("tls_cert") => s.tls.tls_cert = Some(file.clone()),
                Setting::TlsKey(file) if unset("tls_key") => s.tls.tls_key = Some(file.clone()),
                Setting::TlsCa(file) if unset("tls_ca") => s.tls.tls_ca = Some(file.clone()),
                Setting::TlsVerifyPeer(on) if unset("tls_verify_peer") => s.tls.tls_verify_peer = *on,
                Setting::TlsFailIfNoPeerCert(on) if unset("tls_fail_if_no_peer_cert") => {
                    s.tls.tls_fail_if_no_peer_cert = *on
                }
                Setting::TlsHandshakeTimeout(ms) if unset("tls_handshake_timeout") => s.tls.tls_handshake_timeout = *ms,
                Setting::DefaultUser(user) if unset("default_user") => s.default_user = user.clone(),
                Setting::DefaultPass(pass) if unset("default_pass") => s.default_pass = pass.clone(),
                Setting::GuestRemote(on) if unset("guest_remote") => s.guest_remote = *on,
                Setting::MemoryHighWatermark(limit) if unset("memory_high_watermark") => {
                    s.memory_high_watermark = bytes(limit)?
                }
                Setting::DiskFreeLimit(limit) if unset("disk_free_limit") => s.disk_free_limit = bytes(limit)?,
                Setting::MaxMessageSize(n) if unset("max_message_size") => s.max_message_size = *n,
                Setting::Heartbeat(n) if unset("heartbeat") => s.heartbeat = *n,
                Setting::FrameMax(n) if unset("frame_max") => s.frame_max = *n,
                Setting::ChannelMax(n) if unset("channel_max") => s.channel_max = *n,
                Setting::ManagementIp(ip) if unset("management_bind") => {
                    s.management_bind = s.management_bind.with_ip(*ip)
                }
                Setting::ManagementPort(port) if unset("management_bind") => {
                    s.management_bind = s.management_bind.with_port(*port)
                }
                Setting::PrometheusIp(ip) if unset("prometheus_bind") => {
                    s.prometheus_bind = s.prometheus_bind.with_ip(*ip)
                }
                Setting::PrometheusPort(port) if unset("prometheus_bind") => {
                    s.prometheus_bind = s.prometheus_bind.with_port(*port)
                }
                Setting::LoadDefinitions(file) if unset("load_definitions") => s.load_definitions = Some(file.clone()),
                Setting::LogLevel(level) if unset("log") => *log = level.clone(),
                // set by a flag or a variable, which win; or nothing to set
                _ => {}
            }
        }
        let ssl_listener = entries.iter().any(|e| matches!(e.setting, Setting::AmqpsListener(_)));
        if ssl_listener && self.server.tls.tls_cert.is_none() {
            return Err(ConfigError::Incomplete {
                path: path.to_owned(),
                why: "listeners.ssl needs ssl_options.certfile and ssl_options.keyfile (--tls-cert, --tls-key)",
            });
        }
        Ok(())
    }
}

/// Percent-encode a URL userinfo part.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The vhost the chat keeps its exchanges and streams in on the embedded broker: the default
/// user has no permissions there, so no AMQP login but the chat's own (and whoever an
/// administrator grants) reads private rooms or the directory.
pub const CHAT_VHOST: &str = "chat";
/// The chat's service user on the embedded broker unless --chat-user names another.
pub const CHAT_SERVICE_USER: &str = "warren-chat";

/// The file in the data directory that keeps the chat's service password (mode 0600).
const CHAT_PASSWORD_FILE: &str = "chat-service-password";

/// The chat's service password: the one kept in `data_dir` (made at the first start, random),
/// the same for the whole process. Where the file cannot be read or written, a random one for
/// this process only (the service user is given it again at every start).
fn chat_service_password(data_dir: &std::path::Path) -> &'static str {
    static PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PASSWORD.get_or_init(|| {
        let path = data_dir.join(CHAT_PASSWORD_FILE);
        match std::fs::read_to_string(&path) {
            Ok(kept) if kept.trim().len() >= 16 => return kept.trim().to_owned(),
            _ => {}
        }
        let fresh: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..32).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
        };
        if let Err(e) = keep_secret(&path, &fresh) {
            tracing::warn!(path = %path.display(), error = %e, "cannot keep the chat's service password; a new one each start");
        }
        fresh
    })
}

/// Write `secret` to a new file at `path` readable by this user only.
fn keep_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()
}

impl ServerOptions {
    /// The (user, password) the chat uses on the embedded broker: its service user.
    pub fn chat_credentials(&self) -> (String, String) {
        let user = self.chat.chat_user.clone().unwrap_or_else(|| CHAT_SERVICE_USER.to_owned());
        let pass = self.chat.chat_pass.clone().unwrap_or_else(|| chat_service_password(&self.data_dir).to_owned());
        (user, pass)
    }

    /// The chat's AMQP URL: --amqp-url, or the embedded broker at `amqp_addr` over loopback.
    pub fn chat_amqp_url(&self, amqp_addr: std::net::SocketAddr) -> String {
        if let Some(url) = &self.chat.amqp_url {
            return url.clone();
        }
        let (user, pass) = self.chat_credentials();
        let host = if amqp_addr.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), amqp_addr.port())
        } else {
            amqp_addr
        };
        format!("amqp://{}:{}@{host}/{}", encode(&user), encode(&pass), encode(CHAT_VHOST))
    }
}

impl ServerOptions {
    pub fn broker_config(&self) -> BrokerConfig {
        // (the chat's service user is set up by the binary, on the chat's vhost only)
        let users = vec![User { name: self.default_user.clone(), password: self.default_pass.clone() }];
        BrokerConfig {
            users,
            loopback_users: if self.guest_remote { Vec::new() } else { vec!["guest".into()] },
            max_message_size: self.max_message_size,
            disk_free_limit: self.disk_free_limit,
            memory_high_watermark: Some(self.memory_high_watermark),
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
        assert_eq!(cli.server.amqp_bind, ListenAddr::Any(5672));
        assert_eq!(cli.server.amqp_bind.to_string(), "[::]:5672");
        assert_eq!(cli.server.management_bind, ListenAddr::Given("127.0.0.1:15672".into()));
        assert_eq!(cli.server.prometheus_bind.to_string(), "[::]:15692");
        assert_eq!(cli.server.config, None);
        assert_eq!(cli.server.load_definitions, None);
        assert_eq!(c.max_message_size, 128 * 1024 * 1024);
        assert_eq!(c.frame_max, 131_072);
        assert_eq!(c.loopback_users, ["guest"]);
        assert!(Cli::parse_from(["warren", "--guest-remote"]).server.broker_config().loopback_users.is_empty());
        assert!(cli.command.is_none());
    }

    #[test]
    fn chat_defaults_and_urls() {
        let dir = tempfile::tempdir().unwrap();
        let cli = Cli::parse_from(["warren", "--data-dir", dir.path().to_str().unwrap()]);
        assert_eq!(cli.server.chat.http_bind, ListenAddr::Any(8080));
        let url = cli.server.chat_amqp_url("0.0.0.0:5672".parse().unwrap());
        let (user, pass) = cli.server.chat_credentials();
        assert_eq!((user.as_str(), pass.len()), ("warren-chat", 32));
        assert_eq!(url, format!("amqp://warren-chat:{pass}@127.0.0.1:5672/chat"));
        assert_eq!(cli.server.chat_credentials().1, pass, "one password for the whole process");
        let kept = dir.path().join(CHAT_PASSWORD_FILE);
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), pass, "kept in the data directory");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
        let cli = Cli::parse_from(["warren", "--chat-user", "chat", "--chat-pass", "p@ss word"]);
        assert_eq!(cli.server.broker_config().users.len(), 1, "the chat's user is not a broker-wide one");
        let url = cli.server.chat_amqp_url("10.0.0.1:5673".parse().unwrap());
        assert_eq!(url, "amqp://chat:p%40ss%20word@10.0.0.1:5673/chat");
        let cli = Cli::parse_from(["warren", "--amqp-url", "amqp://u:p@rabbit:5672/%2f"]);
        assert_eq!(cli.server.chat_amqp_url("0.0.0.0:1".parse().unwrap()), "amqp://u:p@rabbit:5672/%2f");
    }

    #[test]
    fn tls_is_off_without_a_certificate() {
        let cli = Cli::parse_from(["warren"]);
        assert!(cli.server.tls.broker_tls().is_none());
        assert_eq!(cli.server.tls.amqps_bind, ListenAddr::Any(5671));
        assert_eq!(cli.server.chat.https_bind, ListenAddr::Any(8443));
        let cli = Cli::parse_from(["warren", "--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        let tls = cli.server.tls.broker_tls().expect("TLS on");
        assert!(!tls.verify_peer);
        assert_eq!(tls.handshake_timeout, std::time::Duration::from_secs(5));
        // a certificate needs its key, peer verification needs a CA
        let inconsistent = |args: &[&str]| {
            let args = std::iter::once("warren").chain(args.iter().copied());
            matches!(load_from(args), Err(ConfigError::Inconsistent(_)))
        };
        assert!(inconsistent(&["--tls-cert", "c.pem"]));
        assert!(inconsistent(&["--tls-key", "k.pem"]));
        assert!(inconsistent(&["--tls-ca", "ca.pem"]));
        assert!(inconsistent(&["--tls-cert", "c", "--tls-key", "k", "--tls-verify-peer"]));
        assert!(inconsistent(&["--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca", "--tls-fail-if-no-peer-cert"]));
        let cli = Cli::parse_from([
            "warren",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--tls-ca",
            "ca",
            "--tls-verify-peer",
            "--tls-fail-if-no-peer-cert",
        ]);
        let tls = cli.server.tls.broker_tls().expect("TLS on");
        assert!(tls.verify_peer && tls.fail_if_no_peer_cert);
    }

    #[test]
    fn max_message_size_is_capped_at_512_mib() {
        assert!(Cli::try_parse_from(["warren", "--max-message-size", "536870912"]).is_ok());
        assert!(Cli::try_parse_from(["warren", "--max-message-size", "536870913"]).is_err());
        assert!(Cli::try_parse_from(["warren", "--max-message-size", "0"]).is_err());
    }

    #[test]
    fn frame_max_below_minimum_is_refused() {
        assert!(Cli::try_parse_from(["warren", "--frame-max", "100"]).is_err());
    }

    /// `load_from` with a rabbitmq.conf holding `text`, then `args`.
    fn with_file(text: &str, args: &[&str]) -> Result<Cli, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rabbitmq.conf");
        std::fs::write(&path, text).unwrap();
        let mut argv = vec!["warren".to_owned(), "--config".to_owned(), path.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        load_from(argv)
    }

    #[test]
    fn the_config_file_sets_what_no_flag_set() {
        let text = "\
# a node's settings
listeners.tcp.default = 127.0.0.1:5673
heartbeat = 30
frame_max = 8192
channel_max = 16
loopback_users.guest = false
default_user = admin
default_pass = 'p#ss'
max_message_size = 1048576
vm_memory_high_watermark.absolute = 1GiB
disk_free_limit.absolute = 2GB
management.tcp.port = 15673
prometheus.tcp.ip = 127.0.0.1
load_definitions = /etc/warren/definitions.json
log.console.level = warning
";
        let cli = with_file(text, &["--heartbeat", "10", "--default-user", "root"]).unwrap();
        let s = &cli.server;
        assert_eq!(s.amqp_bind, ListenAddr::Given("127.0.0.1:5673".into()));
        assert_eq!((s.heartbeat, s.default_user.as_str()), (10, "root"), "flags win over the file");
        assert_eq!((s.frame_max, s.channel_max, s.max_message_size), (8192, 16, 1 << 20));
        assert!(s.guest_remote);
        assert_eq!(s.default_pass, "p#ss");
        assert_eq!((s.memory_high_watermark, s.disk_free_limit), (1 << 30, 2_000_000_000));
        assert_eq!(s.management_bind, ListenAddr::Given("127.0.0.1:15673".into()));
        assert_eq!(s.prometheus_bind, ListenAddr::Given("127.0.0.1:15692".into()));
        assert_eq!(s.load_definitions.as_deref(), Some(std::path::Path::new("/etc/warren/definitions.json")));
        assert_eq!(cli.log, "warn");
        assert_eq!(with_file("log.console.level = debug", &["--log", "info"]).unwrap().log, "info");

        // a port alone is every interface, as the default is
        let cli = with_file("listeners.tcp.default = 5674\nlisteners.ssl.x = 5675\nssl_options.certfile = c.pem\nssl_options.keyfile = k.pem", &[]).unwrap();
        assert_eq!(
            (&cli.server.amqp_bind, &cli.server.tls.amqps_bind),
            (&ListenAddr::Any(5674), &ListenAddr::Any(5675))
        );
        assert!(cli.server.tls.broker_tls().is_some());
        // the file is for serving: a subcommand does not read it
        assert!(with_file("no_such_key = 1", &["ctl", "status"]).is_ok());
    }

    #[test]
    fn relative_limits_are_of_the_machines_memory() {
        let total = warren_broker::alarm::total_memory_bytes().unwrap();
        let cli = with_file("vm_memory_high_watermark.relative = 0.5\ndisk_free_limit.relative = 1.0", &[]).unwrap();
        assert_eq!(cli.server.memory_high_watermark, total / 2);
        assert_eq!(cli.server.disk_free_limit, total);
    }

    #[test]
    fn config_file_errors_name_the_file_and_the_line() {
        let e = with_file("heartbeat = 10\nqueue_master_locator = min-masters\n", &[]).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ConfigError::File(_)), "{e:?}");
        assert!(text.contains("rabbitmq.conf, line 2: unknown key `queue_master_locator`"), "{text}");
        let text = with_file("frame_max = tiny", &[]).unwrap_err().to_string();
        assert!(text.contains("line 1: bad value \"tiny\" for `frame_max`"), "{text}");
        let e = with_file("ssl_options.certfile = c.pem", &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Inconsistent(_)), "{e:?}");
        assert!(with_file("ssl_options.certfile = c.pem", &["--tls-key", "k.pem"]).is_ok());
        let e = with_file("listeners.ssl.default = 5671", &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Incomplete { .. }), "{e:?}");
        let e = load_from(["warren", "--config", "/nonexistent/rabbitmq.conf"]).unwrap_err();
        assert!(e.to_string().starts_with("cannot read the configuration file /nonexistent/rabbitmq.conf"), "{e}");
    }

    #[test]
    fn perf_subcommand_parses() {
        let cli = Cli::parse_from(["warren", "perf", "throughput", "--size", "1024", "--duration", "2s"]);
        assert!(matches!(cli.command, Some(Command::Perf(_))));
    }
}
