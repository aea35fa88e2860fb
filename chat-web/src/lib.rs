//! warren-chat: the LAN web chat, an AMQP client of a broker (embedded warren or RabbitMQ).
//!
//! Nothing another front end would need lives here: accounts, rooms and memberships are folded
//! from the `chat.directory` stream, messages from `chat.room.<id>` streams, presence and typing
//! travel on the `chat.events` fanout exchange (see DESIGN.md, "Chat over AMQP").
//!
//! Layout:
//! - `amqp`: lapin connection, topology, publish with confirms, stream consumers;
//! - `directory`: accounts/rooms/memberships fold; `default_room`: the public room every new
//!   account joins; `bots`: requests to bots (`@name`, `/name`) and their streamed replies; `room_log`: one room's message fold
//!   (a window of the newest messages); `history`: older pages and search, read from the stream;
//! - `files`: shared files (names, types, inline or attachment, transfer caps); their bytes
//!   live in the broker (`amqp::files`);
//! - `presence`: online/away/offline across front ends;
//! - `auth`: argon2id passwords (on a bounded blocking pool), bearer tokens; `ratelimit`:
//!   request budgets (sign-up, login, posting) and the login failure lockout;
//! - `state`: the `App` handle tying these together; `start`: bringing one up; `posting`:
//!   a message posted (and a bot asked); `live`: the current `App`, replaced when
//!   the broker connection is lost;
//! - `handlers/*`: REST, one file per resource; `routes`: the warp filter tree; `body`:
//!   request bodies read with a hard cap;
//! - `session`: one live session of a tab (client frames in, events out), whatever carries it:
//!   `ws` over a WebSocket, `sse` over Server-Sent Events plus POSTs where WebSocket is
//!   blocked; `static_files`: the embedded UI;
//! - `serve`: HTTP and HTTPS on listeners the caller opened, with each client's address;
//! - `error`: `ApiError` and the one `recover` mapping it to JSON + status.

pub mod amqp;
pub mod auth;
pub mod body;
pub mod bots;
pub mod default_room;
pub mod directory;
pub mod error;
pub mod files;
pub mod global_events;
pub mod handlers;
pub mod history;
pub mod live;
pub mod model;
pub mod posting;
pub mod presence;
pub mod ratelimit;
pub mod room_log;
pub mod routes;
pub mod session;
pub mod sse;
/// Serving on the binary's listeners (the `warren-http` crate, shared with the management API).
pub use warren_http as serve;
pub mod start;
pub mod state;
pub mod static_files;
pub mod tools;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::ApiError;
pub use live::Live;
pub use state::App;

/// Largest chat message text, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f` or `amqps://...` (TLS).
    pub amqp_url: String,
    /// For an `amqps://` URL: CA certificates (PEM) trusted besides the system's.
    pub amqp_ca_pem: Option<String>,
    pub token_ttl: Duration,
    /// Failed logins to one account (then per address) within a minute before a lockout.
    pub login_attempts_per_user: u32,
    pub login_attempts_per_addr: u32,
    /// Request budgets: sign-up, login and posting, per user and per address.
    pub limits: ratelimit::Limits,
    /// Passwords hashed or checked at once, on blocking threads (never the runtime's).
    pub hash_threads: usize,
    pub default_retention_days: u32,
    /// How often this front end tells the others it is alive; one silent for three of these
    /// has its users' presence dropped.
    pub presence_heartbeat: Duration,
    /// Who may sign up (the very first account always may: it administers the chat).
    pub signup: Signup,
    /// Administrators besides the first account (`--admin NAME`).
    pub admins: Vec<String>,
    /// The public room every new account joins (created at start if missing); None: no such room.
    pub default_room: Option<String>,
    /// Largest file a user may share, in bytes (`--max-upload-mb`).
    pub max_upload_bytes: usize,
    /// Bot replies: how replies come back (direct reply-to or a queue per request), and how long
    /// a reply may go without a chunk before it is closed as interrupted.
    pub bots: bots::BotConfig,
    /// The newest messages of each room kept in memory; older pages are read from the
    /// room's stream when asked for.
    pub history_window: usize,
    /// How often rooms drop messages older than their retention (and tell open pages).
    pub expiry_sweep: Duration,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    /// Anyone who reaches the page.
    #[default]
    Open,
    /// Only with a room's invitation code (the new account joins that room).
    Invite,
    /// No one: an administrator's chat of existing accounts.
    Closed,
}

impl std::str::FromStr for Signup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Signup::Open),
            "invite" => Ok(Signup::Invite),
            "closed" => Ok(Signup::Closed),
            other => Err(format!("expected open, invite or closed, not {other}")),
        }
    }
}

impl ChatConfig {
    pub fn new(amqp_url: impl Into<String>) -> Self {
        ChatConfig {
            amqp_url: amqp_url.into(),
            amqp_ca_pem: None,
            token_ttl: Duration::from_secs(24 * 3600),
            login_attempts_per_user: 5,
            login_attempts_per_addr: 30,
            limits: ratelimit::Limits::default(),
            // one core for argon2 at most on a small machine, leaving the rest to the broker
            hash_threads: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
            default_retention_days: 30,
            presence_heartbeat: Duration::from_secs(10),
            signup: Signup::Open,
            admins: Vec::new(),
            default_room: Some("general".to_owned()),
            bots: bots::BotConfig::default(),
            history_window: room_log::DEFAULT_WINDOW,
            expiry_sweep: Duration::from_secs(5),
            max_upload_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The certificate and key (PEM) the chat serves HTTPS with.
pub struct Https {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https").finish_non_exhaustive()
    }
}

/// A running chat front end.
pub struct Server {
    /// Where HTTP is served.
    pub addr: SocketAddr,
    /// Where HTTPS is served, once [`Server::serve_https`] started it.
    pub https_addr: Option<SocketAddr>,
    pub live: Live,
    task: tokio::task::JoinHandle<()>,
    https_task: Option<tokio::task::JoinHandle<()>>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serve the same routes over HTTPS (and WebSocket over WSS) on `listener` too, until
    /// `shutdown` turns true.
    pub fn serve_https(
        &mut self,
        https: Https,
        listener: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> Result<SocketAddr, serve::ServeError> {
        let routes = routes::routes(self.live.clone());
        let (addr, serve) = serve::https(listener, &https.cert_pem, &https.key_pem, routes, shutdown)?;
        tracing::info!("chat listening on https://{addr}");
        self.https_task = Some(tokio::spawn(serve));
        self.https_addr = Some(addr);
        Ok(addr)
    }

    /// Wait for the HTTP server to stop (after the shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
        if let Some(task) = self.https_task {
            let _ = task.await;
        }
        let _ = self.supervisor.await;
        self.live.app().shutdown().await;
    }
}

/// Connect to the broker, then serve HTTP on `listener` until `shutdown` turns true; reconnect
/// to the broker whenever the connection is lost. [`Server::serve_https`] adds HTTPS.
pub async fn start(
    config: ChatConfig,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Server, ApiError> {
    let app = start::start(config.clone(), state::Local::new(&config)).await?;
    let live = Live::new(app);
    let routes = routes::routes(live.clone());
    let supervisor = tokio::spawn(live::supervise(live.clone(), config, shutdown.clone()));
    let signal = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let (addr, serve) = serve::http(listener, routes, signal).map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!("chat listening on http://{addr}");
    let task = tokio::spawn(serve);
    Ok(Server { addr, https_addr: None, live, task, https_task: None, supervisor })
}
