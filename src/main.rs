//! The `warren` binary: parse the configuration, start the broker, wait for Ctrl-C or SIGTERM.

mod alloc;
mod bot_cli;
mod chat_identity;
mod config;
mod ctl;
mod ctl_access;
mod perf_cli;
mod rabbitmq_conf;
mod sched;

use tokio::net::TcpListener;
use tokio::sync::watch;

use warren_broker::listen::{ListenAddr, bind_listener};
use warren_broker::tls::Tls;

#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

fn main() -> anyhow::Result<()> {
    let cli = match config::load_from(std::env::args_os()) {
        Ok(cli) => cli,
        // --help, --version, or a bad flag: clap prints it and exits as it does
        Err(config::ConfigError::Flags(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    // The server asks for a short CPU slice before any thread starts (they inherit it); the
    // other commands (`warren perf` above all) keep the kernel's default.
    if cli.command.is_none() && cli.server.sched_slice_us > 0 {
        match sched::request_slice(cli.server.sched_slice_us) {
            Ok(()) => tracing::debug!(micros = cli.server.sched_slice_us, "scheduler slice set"),
            Err(e) => tracing::info!("keeping the kernel's scheduler slice: {e}"),
        }
    }
    // Without the LIFO slot, a task woken by a busy connection (a consumer's writer) can be
    // stolen by an idle worker instead of waiting for the waker's thread.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().disable_lifo_slot().build()?;
    match cli.command {
        Some(config::Command::Perf(cmd)) => runtime.block_on(perf_cli::run(cmd)),
        Some(config::Command::Ctl(cmd)) => runtime.block_on(ctl::run(cmd)),
        Some(config::Command::Bot(cmd)) => runtime.block_on(bot_cli::run(cmd)),
        Some(config::Command::Exec(cmd)) => runtime.block_on(bot_cli::exec(cmd)),
        None => runtime.block_on(serve(cli.server)),
    }
}

async fn serve(options: config::ServerOptions) -> anyhow::Result<()> {
    let signals = Signals::install()?;
    // Certificates and keys are checked before anything starts: a bad one stops warren here.
    let tls = match options.tls.broker_tls() {
        Some(tls_options) => Some(std::sync::Arc::new(Tls::load(&tls_options)?)),
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // With --amqp-url the chat uses that broker and the embedded one is not started.
    let mut amqps = None;
    let mut management = None;
    let mut prometheus = None;
    let (server, amqp_addr) = if options.chat.amqp_url.is_some() && !options.chat.no_chat {
        if let Some(path) = &options.load_definitions {
            tracing::warn!("--load-definitions {}: no embedded broker to load it into (--amqp-url)", path.display());
        }
        (None, None)
    } else {
        let broker = warren_broker::Broker::open(options.broker_config(), &options.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot open the data directory {}: {e}", options.data_dir.display()))?;
        ctl::serve(&options.data_dir, broker.clone())?;
        if !options.chat.no_chat {
            let (user, pass) = options.chat_credentials();
            chat_identity::set_up(&broker, &user, &pass, config::CHAT_VHOST)
                .map_err(|e| anyhow::anyhow!("cannot set up the chat's AMQP user: {e}"))?;
        }
        if let Some(path) = &options.load_definitions {
            load_definitions(&broker, path)?;
        }
        let listener = listen("AMQP", &options.amqp_bind)?;
        let addr = listener.local_addr()?;
        tracing::info!("AMQP listening on {addr}");
        let mut listeners = vec![warren_management::Listener { protocol: "amqp", addr }];
        if let Some(tls) = &tls {
            let listener = listen("AMQPS", &options.tls.amqps_bind)?;
            let amqps_addr = listener.local_addr()?;
            tracing::info!("AMQPS listening on {amqps_addr}");
            listeners.push(warren_management::Listener { protocol: "amqp/ssl", addr: amqps_addr });
            let serve = warren_broker::serve_tls(listener, tls.clone(), broker.clone(), shutdown_rx.clone());
            amqps = Some(tokio::spawn(serve));
        }
        let prometheus_listener = open_prometheus(&options, &mut listeners);
        management = start_management(&options, &broker, listeners, shutdown_rx.clone());
        prometheus = prometheus_listener.and_then(|l| start_prometheus(&options, &broker, l, shutdown_rx.clone()));
        (Some(tokio::spawn(warren_broker::serve(listener, broker, shutdown_rx.clone()))), Some(addr))
    };
    // The chat stops first, closing its AMQP connection while the embedded broker still runs.
    let (chat_stop_tx, chat_stop_rx) = watch::channel(false);
    let chat = if options.chat.no_chat { None } else { start_chat(&options, amqp_addr, chat_stop_rx).await? };
    signals.wait().await;
    tracing::info!("shutting down");
    stop_by_deadline(SHUTDOWN_DEADLINE);
    let _ = chat_stop_tx.send(true);
    if let Some(chat) = chat
        && tokio::time::timeout(std::time::Duration::from_secs(5), chat.wait()).await.is_err()
    {
        tracing::warn!("the chat did not stop within 5 s");
    }
    let _ = shutdown_tx.send(true);
    if let Some(server) = server {
        server.await?;
    }
    if let Some(amqps) = amqps {
        amqps.await?;
    }
    for http in management.into_iter().chain(prometheus) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), http.wait()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// A graceful stop gives clients this long to be told and to close, whatever they do.
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Exit once `deadline` has passed, from a thread of its own: a stop must finish even if a
/// runtime thread is stuck or a client never answers. Everything confirmed is on disk already
/// (as after kill -9), so nothing that was promised is lost.
fn stop_by_deadline(deadline: std::time::Duration) {
    let spawned = std::thread::Builder::new().name("shutdown-deadline".into()).spawn(move || {
        std::thread::sleep(deadline);
        tracing::warn!("shutdown took longer than {} s; exiting now", deadline.as_secs());
        std::process::exit(0);
    });
    if let Err(e) = spawned {
        tracing::warn!("no shutdown deadline: {e}");
    }
}

/// Start the web chat. A chat that cannot start (port taken, broker without stream queues)
/// is logged and leaves the broker running; an unreadable --amqp-ca or TLS file is an error.
async fn start_chat(
    options: &config::ServerOptions,
    amqp_addr: Option<std::net::SocketAddr>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<warren_chat::Server>> {
    let url = match amqp_addr {
        Some(addr) => options.chat_amqp_url(addr),
        None => match options.chat.amqp_url.clone() {
            Some(url) => url,
            None => return Ok(None),
        },
    };
    let https = match (&options.tls.tls_cert, &options.tls.tls_key) {
        (Some(cert), Some(key)) => Some(warren_chat::Https {
            cert_pem: read_file("TLS certificate", cert)?,
            key_pem: read_file("TLS key", key)?,
        }),
        _ => None,
    };
    let amqp_ca_pem = match &options.chat.amqp_ca {
        Some(path) => {
            // The same checks as the broker's own CA file, for a clear error now.
            warren_broker::tls::read_certificates("CA certificate", path)?;
            Some(String::from_utf8(read_file("--amqp-ca", path)?)?)
        }
        None => None,
    };
    let listener = match listen("the chat (HTTP)", &options.chat.http_bind) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("chat disabled: {e}");
            return Ok(None);
        }
    };
    let mut config = warren_chat::ChatConfig::new(url);
    config.amqp_ca_pem = amqp_ca_pem;
    config.token_ttl = std::time::Duration::from_secs(options.chat.chat_token_hours.max(1) * 3600);
    config.default_retention_days = options.chat.chat_retention_days;
    config.history_window = usize::try_from(options.chat.chat_history_window).unwrap_or(usize::MAX);
    config.signup = options.chat.signup;
    config.max_upload_bytes = options.chat.max_upload_mb as usize * 1024 * 1024;
    config.admins = options.chat.admins.clone();
    config.limits = config.limits.times(options.chat.chat_rate_limit_factor);
    let default_room = options.chat.chat_default_room.trim();
    config.default_room = (!default_room.is_empty()).then(|| default_room.to_owned());
    if options.chat.bot_reply_queues {
        config.bots.reply_mode = warren_chat::bots::ReplyMode::Queue;
    }
    config.bots.idle_timeout = std::time::Duration::from_secs(options.chat.bot_idle_timeout);
    let mut server = match warren_chat::start(config, listener, shutdown.clone()).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("chat disabled: {e}");
            return Ok(None);
        }
    };
    tracing::info!("chat on http://{}", server.addr);
    if let Some(https) = https {
        let served = listen("the chat (HTTPS)", &options.chat.https_bind)
            .and_then(|listener| Ok(server.serve_https(https, listener, shutdown)?));
        match served {
            Ok(addr) => tracing::info!("chat on https://{addr}"),
            Err(e) => tracing::error!("chat HTTPS disabled: {e}"),
        }
    }
    Ok(Some(server))
}

/// A listener for `what` on `addr` (every listener opens through `warren_broker::listen`).
fn listen(what: &str, addr: &ListenAddr) -> anyhow::Result<TcpListener> {
    bind_listener(addr).map_err(|e| anyhow::anyhow!("cannot listen for {what} on {addr}: {e}"))
}

/// Import the definitions file at `path` (RabbitMQ's load_definitions), before clients come.
fn load_definitions(broker: &warren_broker::Broker, path: &std::path::Path) -> anyhow::Result<()> {
    let json = read_file("definitions file", path)?;
    let summary = broker
        .import_definitions(&json)
        .map_err(|e| anyhow::anyhow!("cannot import the definitions file {}: {e}", path.display()))?;
    tracing::info!("imported {summary} from {}", path.display());
    Ok(())
}

/// Serve the management API on --management-bind. One that cannot start (port taken: another
/// broker on this machine) is logged and leaves the broker running, as the chat does.
fn start_management(
    options: &config::ServerOptions,
    broker: &std::sync::Arc<warren_broker::Broker>,
    listeners: Vec<warren_management::Listener>,
    shutdown: watch::Receiver<bool>,
) -> Option<warren_management::Server> {
    let listener = match listen("the management API", &options.management_bind) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("management API disabled: {e}");
            return None;
        }
    };
    let config = warren_management::Config { listeners, data_dir: Some(options.data_dir.clone()) };
    serving("management API", warren_management::start(broker.clone(), config, listener, shutdown))
}

/// A management server that started (logged with its address), or why `what` did not (logged;
/// the broker runs on without it).
fn serving(
    what: &str,
    started: Result<warren_management::Server, warren_management::StartError>,
) -> Option<warren_management::Server> {
    match started {
        Ok(server) => {
            tracing::info!("{what} on http://{}", server.addr);
            Some(server)
        }
        Err(e) => {
            tracing::error!("{what} disabled: {e}");
            None
        }
    }
}

/// The listener for Prometheus metrics (--prometheus-bind), listed with the others; one that
/// cannot open is logged and leaves the broker running, as the management API.
fn open_prometheus(
    options: &config::ServerOptions,
    listeners: &mut Vec<warren_management::Listener>,
) -> Option<TcpListener> {
    match listen("Prometheus metrics", &options.prometheus_bind).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((addr, listener)) => {
            listeners.push(warren_management::Listener { protocol: "http/prometheus", addr });
            Some(listener)
        }
        Err(e) => {
            tracing::error!("Prometheus metrics disabled: {e}");
            None
        }
    }
}

/// Serve Prometheus metrics (/metrics) on `listener`.
fn start_prometheus(
    options: &config::ServerOptions,
    broker: &std::sync::Arc<warren_broker::Broker>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Option<warren_management::Server> {
    let config = warren_management::Config { listeners: Vec::new(), data_dir: Some(options.data_dir.clone()) };
    serving("Prometheus metrics", warren_management::start_prometheus(broker.clone(), config, listener, shutdown))
}

fn read_file(what: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
}

/// SIGINT and SIGTERM handlers, installed before anything starts: a signal that arrives while
/// the chat is still starting must shut down cleanly, not kill the process.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
