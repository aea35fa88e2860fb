//! What an administrator does to a running broker besides its limits (`warren ctl`, as
//! `rabbitmqctl`): vhosts come and go, connections are listed and closed, and a fresh
//! broker gets its default user and vhost.

use std::net::SocketAddr;
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use warren_persistence::{Store, VhostDef};

use crate::Broker;
use crate::access::{AccessControl, AccessError, full_permissions, new_user};
use crate::blocking::blocking;
use crate::sink::ConnectionSink;
use crate::vhost::VirtualHost;

/// An open client connection, as `list_connections` and the management API show it.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub id: u64,
    pub user: String,
    pub vhost: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Unix milliseconds.
    pub connected_at: i64,
    /// What the client sent in connection.start-ok's client properties.
    pub client_properties: FieldTable,
    /// PLAIN or AMQPLAIN.
    pub auth_mechanism: String,
    pub frame_max: u32,
    pub channel_max: u16,
    /// The negotiated heartbeat interval, seconds (0: none).
    pub heartbeat: u16,
    /// Over AMQPS.
    pub tls: bool,
    /// Its channels' delivery state, read by [`ConnectionInfo::channels`].
    pub sink: Arc<ConnectionSink>,
}

impl ConnectionInfo {
    /// RabbitMQ's connection name, `peer -> local`.
    pub fn name(&self) -> String {
        format!("{} -> {}", self.peer, self.local)
    }
}

/// Which connections a forced close is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseTarget {
    All,
    Vhost(String),
    User(String),
    Connection(u64),
}

/// A forced close (320 CONNECTION_FORCED with `explanation`) broadcast to every connection.
#[derive(Debug)]
pub struct ForcedClose {
    pub target: CloseTarget,
    pub explanation: String,
}

impl ForcedClose {
    pub fn applies_to(&self, id: u64, user: &str, vhost: &str) -> bool {
        match &self.target {
            CloseTarget::All => true,
            CloseTarget::Vhost(v) => v == vhost,
            CloseTarget::User(u) => u == user,
            CloseTarget::Connection(c) => *c == id,
        }
    }
}

/// RabbitMQ's description of its default vhost.
const DEFAULT_VHOST_DESCRIPTION: &str = "Default virtual host";

/// Create the configured vhosts and the default user (an administrator with `.*` on each) on a
/// fresh store, as RabbitMQ does on a fresh node; and the service users at every start.
pub fn seed(
    access: &AccessControl,
    config: &crate::BrokerConfig,
    seeded: bool,
    store: Option<&Store>,
) -> Result<(), AccessError> {
    let mut users = config.users.iter();
    if !seeded {
        for v in &config.vhosts {
            let description = if v == "/" { DEFAULT_VHOST_DESCRIPTION } else { "" };
            access.put_vhost(VhostDef { name: v.clone(), description: description.into(), tags: Vec::new() })?;
        }
        if let Some(default) = users.next() {
            access.put_user(new_user(&default.name, &default.password, vec!["administrator".into()]))?;
            for v in &config.vhosts {
                access.set_permissions(full_permissions(&default.name, v))?;
            }
            tracing::info!(user = %default.name, "created the default user");
        }
        if let Some(store) = store {
            blocking(|| store.definitions.mark_seeded())?;
        }
    } else {
        users.next();
    }
    for service in users {
        let existed = access.ensure_password(&service.name, &service.password)?;
        if !existed {
            for v in config.vhosts.iter().filter(|v| access.vhost_exists(v)) {
                access.set_permissions(full_permissions(&service.name, v))?;
            }
        }
    }
    Ok(())
}

impl Broker {
    /// A connection opened (it unregisters when it ends).
    pub fn register_connection(&self, info: ConnectionInfo) {
        self.connections.lock().insert(info.id, info);
    }

    pub fn unregister_connection(&self, id: u64) {
        let gone = self.connections.lock().remove(&id);
        if let Some(info) = gone {
            self.retired.absorb(&info.sink.stats.counts());
        }
    }

    /// What was published and got without a connection (the management API's publish and
    /// get): part of the totals.
    pub fn outside_connections(&self) -> &crate::stats::MessageStats {
        &self.retired
    }

    /// Everything counted since the broker started: closed connections and open ones.
    pub fn message_totals(&self) -> crate::stats::Counts {
        let mut totals = self.retired.counts();
        for info in self.connections.lock().values() {
            totals.add(&info.sink.stats.counts());
        }
        totals
    }

    /// Close a rate interval (every `stats::SAMPLE_EVERY`, from the accept loop): each
    /// queue's, exchange's and connection's counters get their rate, the totals a sample in
    /// the history.
    pub fn sample_rates(&self) {
        let now = std::time::Instant::now();
        let mut history = self.history.lock();
        let secs = history.1.map_or(0.0, |then| now.duration_since(then).as_secs_f64());
        history.1 = Some(now);
        for vhost in self.vhost_list() {
            for q in vhost.queue_list() {
                q.message_stats().sample(secs);
            }
            for ex in vhost.exchange_list() {
                ex.stats.sample(secs);
            }
        }
        for info in self.connection_list() {
            info.sink.stats.sample(secs);
            info.sink.octets.sample(secs);
        }
        history.0.push(crate::clock::now_ms(), self.message_totals());
    }

    /// The broker's totals at each sample (oldest first, Unix ms), and the latest rates.
    pub fn message_history(&self) -> (Vec<(i64, crate::stats::Counts)>, crate::stats::Rates) {
        let history = self.history.lock();
        let rates = history.0.last_rates().map(|(_, r)| r).unwrap_or_default();
        (history.0.samples().copied().collect(), rates)
    }

    pub fn connection_list(&self) -> Vec<ConnectionInfo> {
        self.connections.lock().values().cloned().collect()
    }

    /// Close the connection named `name` (`peer -> local`, or its id) with 320; false when no
    /// such connection is open.
    pub fn close_connection(&self, name: &str, explanation: &str) -> bool {
        let id = self.connections.lock().values().find(|c| c.name() == name || c.id.to_string() == name).map(|c| c.id);
        match id {
            Some(id) => {
                self.force_close(crate::admin::CloseTarget::Connection(id), explanation);
                true
            }
            None => false,
        }
    }

    /// `rabbitmqctl add_vhost`: a new, empty vhost with the default exchanges (an existing
    /// one is left as it is).
    pub fn add_vhost(&self, name: &str, description: &str, tags: Vec<String>) -> Result<(), AccessError> {
        if name.is_empty() {
            return Err(AccessError::Invalid("vhost name cannot be empty".into()));
        }
        if self.access.vhost_exists(name) {
            return Ok(());
        }
        self.access.put_vhost(VhostDef { name: name.into(), description: description.into(), tags })?;
        self.vhosts.write().entry(name.to_owned()).or_insert_with(|| VirtualHost::shared(name, self.store.clone()));
        tracing::info!(vhost = name, "added vhost");
        Ok(())
    }

    /// `rabbitmqctl delete_vhost`: its connections close, its queues and exchanges go with
    /// their messages, and every permission on it.
    pub fn delete_vhost(&self, name: &str) -> Result<(), AccessError> {
        if !self.access.vhost_exists(name) {
            return Err(AccessError::NoSuchVhost(name.into()));
        }
        self.force_close(CloseTarget::Vhost(name.into()), &format!("vhost '{name}' is deleted"));
        let removed = self.vhosts.write().remove(name);
        if let Some(vhost) = removed {
            vhost.destroy();
        }
        if let Some(store) = &self.store {
            blocking(|| store.definitions.delete_vhost(name))?;
        }
        self.access.forget_vhost(name);
        tracing::info!(vhost = name, "deleted vhost");
        Ok(())
    }

    /// `rabbitmqctl delete_user`: the user's connections close too.
    pub fn delete_user(&self, name: &str) -> Result<(), AccessError> {
        self.access.delete_user(name)?;
        self.force_close(CloseTarget::User(name.into()), &format!("user '{name}' is deleted"));
        Ok(())
    }
}
