//! warren-broker: an AMQP 0-9-1 broker that RabbitMQ's clients accept as RabbitMQ.
//!
//! # Layout
//! - [`server`]: accept loops (AMQP, AMQPS) and graceful shutdown.
//! - [`listen`]: listening sockets for every listener of the binary: `[::]` dual stack by
//!   default (IPv4 only where the host has no IPv6), a given address as given.
//! - [`tls`]: AMQPS: certificates and keys checked at start-up, the TLS handshake with its
//!   timeout, and the relay that hands the connection code plaintext.
//! - [`connection`]: one task per client: `handshake` (start, tune, open), `codec` (the only
//!   code that touches bytes), the frame dispatch loop, and `writer` (batched socket writes).
//! - [`channel`]: per-channel state machine: content `assembler`, declare/bind methods,
//!   publish with confirms and transactions, consume/get, acks and QoS.
//! - [`sink`]: a connection's outgoing buffer plus its delivery state, where queues hand over
//!   deliveries directly.
//! - [`vhost`]: the registry of exchanges and queues and RabbitMQ's rules for them.
//! - [`exchange`]: one routing table per kind (direct, fanout, topic, headers).
//! - [`queue`]: a FIFO queue dispatching round-robin to consumers with credit; `paging` (a
//!   memory window, the rest on disk), `pressure` (per-publisher flow control).
//! - [`ready`]: the ready list (messages waiting for a consumer, one lane per priority), shared
//!   by queues, streams' read-ahead and the sinks that deliver from them.
//! - [`message`]: an immutable message shared by `Arc` across queues.
//! - [`error`]: `AmqpError` and which reply codes close a channel or the connection.
//! - [`args`]: declaration arguments and RabbitMQ's equivalence rule for them.
//! - [`queue_args`]: the queue arguments warren acts on (TTL, limits, DLX, priority) and their validation.
//! - [`direct_reply`]: the `amq.rabbitmq.reply-to` pseudo-queue for RPC.
//! - [`dead_letter`]: republishing rejected, expired and dropped messages with `x-death`.
//! - [`auth`]: SASL (PLAIN and AMQPLAIN) and the users a broker starts with.
//! - [`access`]: users, vhosts, permissions and topic permissions (RabbitMQ's internal backend),
//!   compiled per user and vhost for the checks on every method.
//! - [`admin`]: what `warren ctl` does beyond limits: vhosts, listings, connections.
//! - [`definitions`]: export and import of definitions in RabbitMQ's JSON format.
//! - [`session`]: a user's declares, bindings, publishes and gets without a connection (the
//!   management API).
//! - [`inspect`]: read-only views for the management API (channels, unacked per queue).
//! - [`blocking`]: disk I/O from the runtime's threads (`block_in_place`).
//! - [`stats`]: message counters per queue, exchange and connection, their rates, and the
//!   broker's totals (the management API's `message_stats`, Prometheus' `*_total`).
//! - [`clock`]: wall-clock milliseconds, as records and stream entries keep them.
//! - [`fuzzing`]: the drivers of the fuzz targets in `fuzz/`, replayed by `tests/fuzz_corpus.rs`.

pub mod access;
pub mod admin;
pub mod alarm;
pub mod args;
pub mod auth;
pub mod blocking;
pub mod channel;
pub mod clock;
pub mod connection;
pub mod dead_letter;
pub mod definitions;
pub mod direct_reply;
pub mod error;
pub mod exchange;
pub mod fuzzing;
pub mod inspect;
pub mod listen;
pub mod message;
pub mod names;
pub mod queue;
pub mod queue_args;
pub mod ready;
pub mod server;
pub mod session;
pub mod sink;
pub mod stats;
pub mod stream;
pub mod tls;
pub mod vhost;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub use server::{serve, serve_tls};

/// Broker settings; the binary fills them from flags.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// The users created at start: the first is the default user (RabbitMQ's default_user,
    /// an administrator), created with the vhosts below on a fresh data directory only; the
    /// others (service users) are created or given their password again at every start. All
    /// get full permissions on `vhosts` when created.
    pub users: Vec<auth::User>,
    /// The vhosts of a fresh data directory (RabbitMQ's default_vhost).
    pub vhosts: Vec<String>,
    /// Users that may log in from loopback addresses only, whoever creates them (RabbitMQ's
    /// loopback_users: `guest` by default).
    pub loopback_users: Vec<String>,
    /// The largest frame we accept and propose in connection.tune.
    pub frame_max: u32,
    pub channel_max: u16,
    /// Heartbeat interval proposed in connection.tune, seconds (0 disables).
    pub heartbeat: u16,
    /// The largest message body accepted (RabbitMQ's max_message_size).
    pub max_message_size: u64,
    /// Block publishers while the data directory's filesystem has less free space than this
    /// (RabbitMQ's disk_free_limit); only brokers on a data directory check.
    pub disk_free_limit: u64,
    /// Block publishers while the process's resident memory is above this many bytes
    /// (RabbitMQ's vm_memory_high_watermark); None: no limit.
    pub memory_high_watermark: Option<u64>,
}

impl BrokerConfig {
    /// The largest `max_message_size` that may be set (RabbitMQ's cap: 512 MiB).
    pub const MAX_MESSAGE_SIZE_CAP: u64 = 512 * 1024 * 1024;
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            users: vec![auth::User::guest()],
            vhosts: vec!["/".into()],
            loopback_users: vec!["guest".into()],
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            disk_free_limit: 50_000_000,
            memory_high_watermark: None,
        }
    }
}

/// The broker's shared state: a cheap handle cloned into every connection.
pub struct Broker {
    pub config: BrokerConfig,
    /// Users, vhost records and permissions.
    pub access: access::AccessControl,
    vhosts: RwLock<HashMap<String, Arc<vhost::VirtualHost>>>,
    /// Open client connections, for listings and for closing them one by one.
    connections: Mutex<BTreeMap<u64, admin::ConnectionInfo>>,
    next_id: AtomicU64,
    /// Durable storage; None keeps everything in memory.
    pub store: Option<Arc<warren_persistence::Store>>,
    /// Set while publishers must be blocked (free disk space below the limit).
    alarm: tokio::sync::watch::Receiver<alarm::AlarmState>,
    /// Keeps `alarm` open when nothing watches the disk (in-memory brokers).
    _alarm_sender: Option<tokio::sync::watch::Sender<alarm::AlarmState>>,
    /// What the resource monitor checks, changeable at run time (brokers on a data directory).
    limits: Option<tokio::sync::watch::Sender<alarm::Limits>>,
    /// Every open connection listens: the connections a message names close with 320.
    forced_close: tokio::sync::broadcast::Sender<Arc<admin::ForcedClose>>,
    /// What closed connections counted, and what was done without one (the management API's
    /// publish and get): the broker's totals are these plus the open connections'.
    retired: stats::MessageStats,
    /// The totals at each rate sample, for charts; and when the last sample was taken.
    history: Mutex<(stats::History, Option<std::time::Instant>)>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("config", &self.config).field("durable", &self.store.is_some()).finish()
    }
}

impl Broker {
    /// A broker that keeps everything in memory.
    pub fn new(config: BrokerConfig) -> Arc<Self> {
        Self::build(config, None, &Default::default(), None, None)
    }

    /// A broker that keeps everything in memory and blocks publishers while `alarm` is set:
    /// for embedders that watch resources of their own, and for tests.
    pub fn with_alarm(config: BrokerConfig, alarm: tokio::sync::watch::Receiver<alarm::AlarmState>) -> Arc<Self> {
        Self::build(config, None, &Default::default(), Some(alarm), None)
    }

    /// A broker on a data directory: durable definitions and persistent messages survive
    /// restarts. Fails (naming the path and what to do) on a corrupt or unreadable directory.
    pub fn open(config: BrokerConfig, data_dir: &std::path::Path) -> Result<Arc<Self>, warren_persistence::StoreError> {
        let (store, defs, mut recovery) = warren_persistence::Store::open(data_dir)?;
        // The disk monitor runs on the runtime; without one (some unit tests) nothing watches.
        let monitor = tokio::runtime::Handle::try_current().is_ok().then(|| {
            alarm::watch_resources(alarm::Limits {
                disk: Some((data_dir.to_owned(), config.disk_free_limit)),
                memory: config.memory_high_watermark,
            })
        });
        let (alarm, limits) = monitor.unzip();
        let broker = Self::build(config, Some(Arc::new(store)), &defs, alarm, limits);
        for vhost in broker.vhosts.read().values() {
            vhost.recover(&defs, &mut recovery);
        }
        Ok(broker)
    }

    fn build(
        config: BrokerConfig,
        store: Option<Arc<warren_persistence::Store>>,
        defs: &warren_persistence::DefinitionSet,
        alarm: Option<tokio::sync::watch::Receiver<alarm::AlarmState>>,
        limits: Option<tokio::sync::watch::Sender<alarm::Limits>>,
    ) -> Arc<Self> {
        let (alarm, _alarm_sender) = match alarm {
            Some(rx) => (rx, None),
            None => {
                let (tx, rx) = tokio::sync::watch::channel(None);
                (rx, Some(tx))
            }
        };
        let access = access::AccessControl::new(store.clone(), defs, config.loopback_users.clone());
        if let Err(e) = admin::seed(&access, &config, defs.seeded, store.as_deref()) {
            tracing::error!(error = %e, "cannot create the default user and vhost");
        }
        let vhosts = access
            .vhosts()
            .iter()
            .map(|v| (v.name.clone(), vhost::VirtualHost::shared(&v.name, store.clone())))
            .collect();
        let (forced_close, _) = tokio::sync::broadcast::channel(16);
        Arc::new(Self {
            config,
            access,
            vhosts: RwLock::new(vhosts),
            connections: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            store,
            alarm,
            _alarm_sender,
            limits,
            forced_close,
            retired: Default::default(),
            history: Default::default(),
        })
    }

    /// Close every open connection with 320 CONNECTION_FORCED and `explanation`, as
    /// `rabbitmqctl close_all_connections`; returns how many were told.
    pub fn close_all_connections(&self, explanation: &str) -> usize {
        self.force_close(admin::CloseTarget::All, explanation)
    }

    /// Close the connections `target` names with 320 and `explanation`; returns how many
    /// connections were told (each decides whether it is named).
    pub fn force_close(&self, target: admin::CloseTarget, explanation: &str) -> usize {
        let close = Arc::new(admin::ForcedClose { target, explanation: explanation.into() });
        self.forced_close.send(close).unwrap_or(0)
    }

    /// For a connection: the forced closes (each names the connections it is for).
    pub fn forced_closes(&self) -> tokio::sync::broadcast::Receiver<Arc<admin::ForcedClose>> {
        self.forced_close.subscribe()
    }

    /// The resource limits in force; None when nothing watches resources.
    pub fn limits(&self) -> Option<alarm::Limits> {
        self.limits.as_ref().map(|l| l.borrow().clone())
    }

    /// Change the memory high watermark (bytes; None: no limit) at run time, as
    /// `rabbitmqctl set_vm_memory_high_watermark`. False when nothing watches resources.
    pub fn set_memory_high_watermark(&self, bytes: Option<u64>) -> bool {
        self.limits.as_ref().is_some_and(|l| {
            l.send_modify(|limits| limits.memory = bytes);
            true
        })
    }

    /// Change the disk free limit (bytes) at run time, as `rabbitmqctl set_disk_free_limit`.
    pub fn set_disk_free_limit(&self, bytes: u64) -> bool {
        self.limits.as_ref().is_some_and(|l| {
            l.send_modify(|limits| {
                if let Some((_, limit)) = limits.disk.as_mut() {
                    *limit = bytes;
                }
            });
            true
        })
    }

    /// The resource alarm: `Some(reason)` while publishers are blocked.
    pub fn alarm(&self) -> tokio::sync::watch::Receiver<alarm::AlarmState> {
        self.alarm.clone()
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<vhost::VirtualHost>> {
        self.vhosts.read().get(name).cloned()
    }

    /// Every vhost, by name.
    pub fn vhost_list(&self) -> Vec<Arc<vhost::VirtualHost>> {
        let mut list: Vec<_> = self.vhosts.read().values().cloned().collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// A process-wide unique id (connections, consumers).
    /// Apply every stream's retention now (streams also apply it when appended to).
    pub fn enforce_stream_retention(&self) {
        for vhost in self.vhost_list() {
            vhost.enforce_stream_retention();
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
