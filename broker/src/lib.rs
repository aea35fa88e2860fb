//! warren-broker: an AMQP 0-9-1 broker that RabbitMQ's clients accept as RabbitMQ.
//!
//! # Layout
//! - [`server`]: accept loops (AMQP, AMQPS) and graceful shutdown.
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
//!   memory window, the rest on disk), `pressure` (per-publisher flow control), `ready`
//!   (the ready list, one lane per priority).
//! - [`message`]: an immutable message shared by `Arc` across queues.
//! - [`error`]: `AmqpError` and which reply codes close a channel or the connection.
//! - [`args`]: declaration arguments and RabbitMQ's equivalence rule for them.
//! - [`queue_args`]: the queue arguments warren acts on (TTL, limits, DLX, priority) and their validation.
//! - [`direct_reply`]: the `amq.rabbitmq.reply-to` pseudo-queue for RPC.
//! - [`dead_letter`]: republishing rejected, expired and dropped messages with `x-death`.
//! - [`auth`]: users, PLAIN and AMQPLAIN.
//! - [`blocking`]: disk I/O from the runtime's threads (`block_in_place`).
//! - [`clock`]: wall-clock milliseconds, as records and stream entries keep them.
//! - [`fuzzing`]: the drivers of the fuzz targets in `fuzz/`, replayed by `tests/fuzz_corpus.rs`.

pub mod alarm;
pub mod args;
pub mod auth;
pub mod blocking;
pub mod channel;
pub mod clock;
pub mod connection;
pub mod dead_letter;
pub mod direct_reply;
pub mod error;
pub mod exchange;
pub mod fuzzing;
pub mod message;
pub mod names;
pub mod queue;
pub mod queue_args;
pub mod server;
pub mod sink;
pub mod stream;
pub mod tls;
pub mod vhost;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use server::{serve, serve_tls};

/// Broker settings; the binary fills them from flags.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub users: Vec<auth::User>,
    pub vhosts: Vec<String>,
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

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            users: vec![auth::User::guest()],
            vhosts: vec!["/".into()],
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
    vhosts: HashMap<String, Arc<vhost::VirtualHost>>,
    next_id: AtomicU64,
    /// Durable storage; None keeps everything in memory.
    pub store: Option<Arc<warren_persistence::Store>>,
    /// Set while publishers must be blocked (free disk space below the limit).
    alarm: tokio::sync::watch::Receiver<alarm::AlarmState>,
    /// Keeps `alarm` open when nothing watches the disk (in-memory brokers).
    _alarm_sender: Option<tokio::sync::watch::Sender<alarm::AlarmState>>,
    /// What the resource monitor checks, changeable at run time (brokers on a data directory).
    limits: Option<tokio::sync::watch::Sender<alarm::Limits>>,
    /// Every open connection listens: an explanation sent here closes them all with 320.
    forced_close: tokio::sync::broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("config", &self.config).field("durable", &self.store.is_some()).finish()
    }
}

impl Broker {
    /// A broker that keeps everything in memory.
    pub fn new(config: BrokerConfig) -> Arc<Self> {
        Self::build(config, None, None, None)
    }

    /// A broker that keeps everything in memory and blocks publishers while `alarm` is set:
    /// for embedders that watch resources of their own, and for tests.
    pub fn with_alarm(config: BrokerConfig, alarm: tokio::sync::watch::Receiver<alarm::AlarmState>) -> Arc<Self> {
        Self::build(config, None, Some(alarm), None)
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
        let broker = Self::build(config, Some(Arc::new(store)), alarm, limits);
        for vhost in broker.vhosts.values() {
            vhost.recover(&defs, &mut recovery);
        }
        Ok(broker)
    }

    fn build(
        config: BrokerConfig,
        store: Option<Arc<warren_persistence::Store>>,
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
        let vhosts = config
            .vhosts
            .iter()
            .map(|v| (v.clone(), Arc::new_cyclic(|me| vhost::VirtualHost::new(v, store.clone()).with_self(me.clone()))))
            .collect();
        let (forced_close, _) = tokio::sync::broadcast::channel(16);
        Arc::new(Self { config, vhosts, next_id: AtomicU64::new(1), store, alarm, _alarm_sender, limits, forced_close })
    }

    /// Close every open connection with 320 CONNECTION_FORCED and `explanation`, as
    /// `rabbitmqctl close_all_connections`; returns how many were told.
    pub fn close_all_connections(&self, explanation: &str) -> usize {
        self.forced_close.send(explanation.into()).unwrap_or(0)
    }

    /// For a connection: the explanations of `close_all_connections`.
    pub fn forced_closes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
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
        self.vhosts.get(name).cloned()
    }

    /// A process-wide unique id (connections, consumers).
    /// Apply every stream's retention now (streams also apply it when appended to).
    pub fn enforce_stream_retention(&self) {
        for vhost in self.vhosts.values() {
            vhost.enforce_stream_retention();
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
