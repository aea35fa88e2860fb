//! `VirtualHost`: the registry of exchanges and queues, and the declare/bind/delete rules
//! RabbitMQ applies to them (with its reply codes and texts).

use std::collections::HashMap;
use std::sync::Arc;

use amq_protocol::types::{FieldTable, ShortString};
use parking_lot::RwLock;

use crate::args::{EXCHANGE_DECLARE_ARGS, QUEUE_DECLARE_ARGS, assert_equivalent};
use crate::blocking::blocking;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::message::Message;
use crate::names::{exchange_res, generated, queue_res};
use crate::queue::{Deleted, Queue};
use warren_persistence::{BindingDef, ExchangeDef, QueueDef, Store};

mod exchange_bindings;

/// What exchange.declare asks for.
pub struct ExchangeSpec<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

/// What queue.declare asks for.
pub struct QueueSpec<'a> {
    pub name: &'a str,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

#[derive(Debug)]
pub struct VirtualHost {
    pub name: String,
    /// Where durable definitions and persistent messages go (None: memory only).
    store: Option<Arc<Store>>,
    exchanges: RwLock<HashMap<ShortString, Arc<Exchange>>>,
    queues: RwLock<HashMap<ShortString, Arc<Queue>>>,
    /// This vhost itself, for the background tasks of its queues (set by `with_self`).
    me: std::sync::Weak<VirtualHost>,
    dead_letters: crate::dead_letter::DeadLetters,
    /// Held by whoever declares or deletes an exchange or a queue, across its disk write, so
    /// the registries' locks are only taken around the in-memory change: publishers keep
    /// routing while a durable declare waits for its fsync.
    definitions: parking_lot::Mutex<()>,
}

const DEFAULT_EXCHANGES: &[(&str, ExchangeKind, bool)] = &[
    ("", ExchangeKind::Direct, false),
    ("amq.direct", ExchangeKind::Direct, false),
    ("amq.fanout", ExchangeKind::Fanout, false),
    ("amq.topic", ExchangeKind::Topic, false),
    ("amq.headers", ExchangeKind::Headers, false),
    ("amq.match", ExchangeKind::Headers, false),
    ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
];

fn inequivalent(arg: &str, what: &str, received: impl std::fmt::Display, current: impl std::fmt::Display) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "inequivalent arg '{arg}' for {what}: received '{received}' but current is '{current}'"
    ))
}

fn check_not_default_exchange(name: &str) -> AmqpResult<()> {
    if name.is_empty() {
        return Err(AmqpError::access_refused("operation not permitted on the default exchange"));
    }
    Ok(())
}

fn check_name(kind: &str, name: &str) -> AmqpResult<()> {
    if name.starts_with("amq.") {
        return Err(AmqpError::access_refused(format!("{kind} name '{name}' contains reserved prefix 'amq.*'")));
    }
    Ok(())
}

fn stored(e: warren_persistence::StoreError) -> AmqpError {
    tracing::error!(error = %e, "cannot write a durable definition");
    AmqpError::internal(format!("cannot store the definition: {e}"))
}

fn json(args: &FieldTable) -> serde_json::Value {
    serde_json::to_value(args).unwrap_or(serde_json::Value::Null)
}

fn from_json(v: &serde_json::Value) -> FieldTable {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

impl VirtualHost {
    pub fn new(name: &str, store: Option<Arc<Store>>) -> Self {
        let exchanges = DEFAULT_EXCHANGES
            .iter()
            .map(|(n, kind, internal)| {
                let ex = Exchange::new((*n).into(), *kind, true, false, *internal, FieldTable::default());
                (ShortString::from(*n), Arc::new(ex))
            })
            .collect();
        Self {
            name: name.to_owned(),
            store,
            exchanges: RwLock::new(exchanges),
            queues: RwLock::new(HashMap::new()),
            me: std::sync::Weak::new(),
            dead_letters: Default::default(),
            definitions: parking_lot::Mutex::new(()),
        }
    }

    /// Give the vhost a handle to itself (build it with `Arc::new_cyclic`).
    pub fn with_self(mut self, me: std::sync::Weak<VirtualHost>) -> Self {
        self.me = me;
        self
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// Hand a message to the dead-letter task.
    pub fn dead_letter(&self, dl: crate::dead_letter::DeadLetter) {
        self.dead_letters.send(&self.me, dl);
    }

    /// Connect a new queue to this vhost: dead-lettering and its x-expires timer.
    fn adopt(&self, q: &Arc<Queue>) {
        q.attach(self.me.clone());
    }

    fn exchange_or_404(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchanges
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| AmqpError::not_found(format!("no {}", exchange_res(name, &self.name))))
    }

    pub fn declare_exchange(&self, spec: ExchangeSpec<'_>) -> AmqpResult<()> {
        if spec.passive {
            check_not_default_exchange(spec.name)?;
            self.exchange_or_404(spec.name)?;
            return Ok(());
        }
        let Some(kind) = ExchangeKind::parse(spec.kind) else {
            let what = if spec.kind.is_empty() { "invalid" } else { "unknown" };
            return Err(AmqpError::command_invalid(format!("{what} exchange type '{}'", spec.kind)));
        };
        check_not_default_exchange(spec.name)?;
        let _definitions = self.definitions.lock();
        let what = exchange_res(spec.name, &self.name);
        let existing = self.exchanges.read().get(spec.name).cloned();
        if let Some(ex) = existing {
            if ex.kind != kind {
                return Err(inequivalent("type", &what, kind.as_str(), ex.kind.as_str()));
            }
            if ex.durable != spec.durable {
                return Err(inequivalent("durable", &what, spec.durable, ex.durable));
            }
            if ex.auto_delete != spec.auto_delete {
                return Err(inequivalent("auto_delete", &what, spec.auto_delete, ex.auto_delete));
            }
            if ex.internal != spec.internal {
                return Err(inequivalent("internal", &what, spec.internal, ex.internal));
            }
            return assert_equivalent(&ex.arguments, &spec.arguments, &what, EXCHANGE_DECLARE_ARGS);
        }
        check_name("exchange", spec.name)?;
        if spec.durable
            && let Some(store) = &self.store
        {
            let def = ExchangeDef {
                vhost: self.name.clone(),
                name: spec.name.to_owned(),
                kind: kind.as_str().to_owned(),
                auto_delete: spec.auto_delete,
                internal: spec.internal,
                arguments: json(&spec.arguments),
            };
            blocking(|| store.definitions.put_exchange(&def)).map_err(stored)?;
        }
        let ex = Exchange::new(spec.name.into(), kind, spec.durable, spec.auto_delete, spec.internal, spec.arguments);
        self.exchanges.write().insert(spec.name.into(), Arc::new(ex));
        Ok(())
    }

    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        check_not_default_exchange(name)?;
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system {} not allowed",
                exchange_res(name, &self.name)
            )));
        }
        let _definitions = self.definitions.lock();
        let Some(ex) = self.exchanges.read().get(name).cloned() else { return Ok(()) };
        if if_unused && ex.has_bindings() {
            return Err(AmqpError::precondition_failed(format!("{} in use", exchange_res(name, &self.name))));
        }
        if ex.durable
            && let Some(store) = &self.store
        {
            blocking(|| store.definitions.delete_exchange(&self.name, name)).map_err(stored)?;
        }
        let mut exchanges = self.exchanges.write();
        if let Some(ex) = exchanges.remove(name) {
            let sources: Vec<Arc<Exchange>> = exchanges.values().cloned().collect();
            drop(exchanges);
            self.unbind_exchange_everywhere(&ex, &sources);
        }
        Ok(())
    }

    /// Look a queue up, enforcing exclusive ownership (405) for connection `conn`.
    pub fn queue(&self, name: &str, conn: u64) -> AmqpResult<Arc<Queue>> {
        let q = self
            .queues
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| AmqpError::not_found(format!("no {}", queue_res(name, &self.name))))?;
        if q.exclusive_owner.is_some_and(|owner| owner != conn) {
            return Err(locked(&q));
        }
        Ok(q)
    }

    pub fn enforce_stream_retention(&self) {
        let streams: Vec<Arc<Queue>> = self.queues.read().values().filter(|q| q.is_stream()).cloned().collect();
        for q in streams {
            q.enforce_stream_retention();
        }
    }

    /// Declare a queue whose name may use the reserved `amq.` prefix (server-side queues such
    /// as direct reply-to's).
    pub fn declare_private_queue(&self, spec: QueueSpec<'_>, conn: u64) -> AmqpResult<Arc<Queue>> {
        let q = Arc::new(Queue::new(
            spec.name.into(),
            &self.name,
            spec.durable,
            spec.exclusive.then_some(conn),
            spec.auto_delete,
            spec.arguments,
            None,
        ));
        self.queues.write().insert(spec.name.into(), q.clone());
        self.adopt(&q);
        Ok(q)
    }

    /// Declare a queue for connection `conn`; returns it (new or existing).
    pub fn declare_queue(&self, spec: QueueSpec<'_>, conn: u64) -> AmqpResult<Arc<Queue>> {
        if spec.passive {
            let q = self.queue(spec.name, conn)?;
            q.touch();
            return Ok(q);
        }
        let name: ShortString = if spec.name.is_empty() {
            generated("amq.gen-")
        } else {
            check_name("queue", spec.name)?;
            spec.name.into()
        };
        crate::queue_args::check_queue_args(&spec.arguments, &queue_res(name.as_str(), &self.name))?;
        let _definitions = self.definitions.lock();
        let existing = self.queues.read().get(name.as_str()).cloned();
        if let Some(q) = existing {
            let what = queue_res(name.as_str(), &self.name);
            if q.durable != spec.durable {
                return Err(inequivalent("durable", &what, spec.durable, q.durable));
            }
            if q.auto_delete != spec.auto_delete {
                return Err(inequivalent("auto_delete", &what, spec.auto_delete, q.auto_delete));
            }
            let owner_matches = match q.exclusive_owner {
                Some(owner) => spec.exclusive && owner == conn,
                None => !spec.exclusive,
            };
            if !owner_matches {
                return Err(locked(&q));
            }
            assert_equivalent(&q.arguments, &spec.arguments, &what, QUEUE_DECLARE_ARGS)?;
            q.touch();
            return Ok(q);
        }
        if crate::stream::is_stream(&spec.arguments) {
            check_stream_declaration(&spec, &queue_res(name.as_str(), &self.name))?;
        }
        let owner = spec.exclusive.then_some(conn);
        if spec.durable
            && !spec.exclusive
            && let Some(store) = &self.store
        {
            let def = QueueDef {
                vhost: self.name.clone(),
                name: name.as_str().to_owned(),
                auto_delete: spec.auto_delete,
                arguments: json(&spec.arguments),
            };
            blocking(|| store.definitions.put_queue(&def)).map_err(stored)?;
        }
        let q = Arc::new(Queue::new(
            name.clone(),
            &self.name,
            spec.durable,
            owner,
            spec.auto_delete,
            spec.arguments,
            self.store.clone(),
        ));
        self.queues.write().insert(name, q.clone());
        self.adopt(&q);
        Ok(q)
    }

    pub fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
        conn: u64,
    ) -> AmqpResult<()> {
        check_not_default_exchange(exchange)?;
        let ex = self.exchange_or_404(exchange)?;
        let q = self.queue(queue, conn)?;
        ex.validate_binding(&arguments)?;
        let dest = Destination::Queue(q);
        self.store_binding(&ex, &dest, routing_key, &arguments, true)?;
        ex.bind(Binding { dest, routing_key: routing_key.into(), arguments });
        Ok(())
    }

    pub fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
        conn: u64,
    ) -> AmqpResult<()> {
        check_not_default_exchange(exchange)?;
        // RabbitMQ 3.10: unbinding what is not bound is fine, even from a missing exchange
        // or for a missing queue.
        let Ok(ex) = self.exchange_or_404(exchange) else { return Ok(()) };
        let q = match self.queue(queue, conn) {
            Ok(q) => q,
            Err(e) if e.code == crate::error::ReplyCode::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let dest = Destination::Queue(q);
        self.store_binding(&ex, &dest, routing_key, &arguments, false)?;
        ex.unbind(&Binding { dest, routing_key: routing_key.into(), arguments });
        self.maybe_auto_delete_exchange(&ex);
        Ok(())
    }

    /// Record (`keep`) or forget a binding on disk, when it is durable: both ends are (a
    /// destination queue also not exclusive). Queue and exchange bindings alike.
    fn store_binding(
        &self,
        source: &Exchange,
        dest: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
        keep: bool,
    ) -> AmqpResult<()> {
        let (dest_name, to_exchange, dest_durable) = match dest {
            Destination::Queue(q) => (q.name.as_str(), false, q.journaled()),
            Destination::Exchange(x) => (x.name.as_str(), true, x.durable),
        };
        let Some(store) = self.store.as_ref().filter(|_| source.durable && dest_durable) else { return Ok(()) };
        let def = BindingDef {
            vhost: self.name.clone(),
            exchange: source.name.as_str().to_owned(),
            queue: dest_name.to_owned(),
            routing_key: routing_key.to_owned(),
            arguments: json(arguments),
            to_exchange,
        };
        let done =
            blocking(
                || if keep { store.definitions.put_binding(&def) } else { store.definitions.delete_binding(&def) },
            );
        done.map_err(stored)
    }

    fn maybe_auto_delete_exchange(&self, ex: &Arc<Exchange>) {
        if ex.auto_delete && !ex.has_bindings() {
            let removed = {
                let mut exchanges = self.exchanges.write();
                let ours = exchanges.get(ex.name.as_str()).is_some_and(|e| Arc::ptr_eq(e, ex));
                ours && exchanges.remove(ex.name.as_str()).is_some()
            };
            if removed
                && ex.durable
                && let Some(store) = &self.store
                && let Err(e) = blocking(|| store.definitions.delete_exchange(&self.name, ex.name.as_str()))
            {
                tracing::error!(error = %e, "cannot delete an auto-deleted exchange's definition");
            }
        }
    }

    /// Delete a queue (queue.delete): drop its bindings. Missing queues are fine (0). Its
    /// consumers are returned, not yet told: the caller sends delete-ok first, then
    /// `cancel_consumers` (RabbitMQ's order on the deleting channel).
    pub fn delete_queue(&self, name: &str, if_unused: bool, if_empty: bool, conn: u64) -> AmqpResult<Deleted> {
        let q = match self.queue(name, conn) {
            Ok(q) => q,
            Err(e) if e.code == crate::error::ReplyCode::NotFound => {
                return Ok(Deleted { message_count: 0, consumers: Vec::new() });
            }
            Err(e) => return Err(e),
        };
        let (messages, consumers) = q.counts();
        if if_unused && consumers > 0 {
            return Err(AmqpError::precondition_failed(format!("{} in use", q.describe())));
        }
        if if_empty && messages > 0 {
            return Err(AmqpError::precondition_failed(format!("{} not empty", q.describe())));
        }
        Ok(self.unlink_queue(&q))
    }

    /// Remove a queue from the registry and every exchange, tell its consumers; returns its
    /// message count.
    pub fn remove_queue(&self, q: &Arc<Queue>) -> u32 {
        let Deleted { message_count, consumers } = self.unlink_queue(q);
        cancel_consumers(consumers);
        message_count
    }

    /// Remove a queue from the registry and every exchange; its consumers are handed back.
    fn unlink_queue(&self, q: &Arc<Queue>) -> Deleted {
        if q.journaled()
            && let Some(store) = &self.store
            && let Err(e) = blocking(|| store.definitions.delete_queue(&self.name, q.name.as_str()))
        {
            tracing::error!(error = %e, "cannot delete a queue's definition");
        }
        {
            let mut queues = self.queues.write();
            if queues.get(q.name.as_str()).is_some_and(|x| Arc::ptr_eq(x, q)) {
                queues.remove(q.name.as_str());
            }
        }
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        for ex in &exchanges {
            if ex.unbind_queue(q) > 0 {
                self.maybe_auto_delete_exchange(ex);
            }
        }
        q.mark_deleted()
    }

    /// Delete the exclusive queues of a connection that is going away.
    pub fn remove_exclusive_queues(&self, conn: u64) {
        let owned: Vec<Arc<Queue>> =
            self.queues.read().values().filter(|q| q.exclusive_owner == Some(conn)).cloned().collect();
        for q in owned {
            self.remove_queue(&q);
        }
    }

    /// Route a message: the exchange must exist (404) and not be internal (403).
    pub fn route(&self, exchange: &str, msg: &Message, out: &mut Vec<Arc<Queue>>) -> AmqpResult<()> {
        if exchange.is_empty() {
            if let Some(q) = self.queues.read().get(msg.routing_key.as_str()) {
                out.push(q.clone());
            }
            return Ok(());
        }
        let exchanges = self.exchanges.read();
        let Some(ex) = exchanges.get(exchange) else {
            return Err(AmqpError::not_found(format!("no {}", exchange_res(exchange, &self.name))));
        };
        if ex.internal {
            return Err(AmqpError::access_refused(format!(
                "cannot publish to internal {}",
                exchange_res(exchange, &self.name)
            )));
        }
        self.route_from(ex, &exchanges, msg, out);
        crate::exchange::dedup_queues(out);
        Ok(())
    }

    /// Walk the exchange graph from `start`: exchange bindings, and each exchange's alternate
    /// exchange when none of its bindings match. Each exchange is visited once (cycles end).
    fn route_from(
        &self,
        start: &Arc<Exchange>,
        exchanges: &HashMap<ShortString, Arc<Exchange>>,
        msg: &Message,
        out: &mut Vec<Arc<Queue>>,
    ) {
        let mut seen: Vec<Arc<Exchange>> = vec![start.clone()];
        let mut work: Vec<Arc<Exchange>> = vec![start.clone()];
        let mut next = Vec::new();
        while let Some(ex) = work.pop() {
            next.clear();
            let matched = ex.route(msg, out, &mut next);
            if !matched
                && let Some(ae) = ex.alternate_exchange()
                && let Some(ae) = exchanges.get(ae.as_str())
            {
                next.push(ae.clone());
            }
            for x in next.drain(..) {
                if !seen.iter().any(|s| Arc::ptr_eq(s, &x)) {
                    seen.push(x.clone());
                    work.push(x);
                }
            }
        }
    }
}

impl VirtualHost {
    /// Recreate this vhost's durable definitions and persistent messages after a restart.
    /// Messages come back marked redelivered: they may have been delivered before the stop.
    pub fn recover(&self, defs: &warren_persistence::DefinitionSet, recovery: &mut warren_persistence::Recovery) {
        for d in defs.exchanges.iter().filter(|d| d.vhost == self.name) {
            let Some(kind) = ExchangeKind::parse(&d.kind) else { continue };
            let ex =
                Exchange::new(d.name.as_str().into(), kind, true, d.auto_delete, d.internal, from_json(&d.arguments));
            self.exchanges.write().insert(d.name.as_str().into(), Arc::new(ex));
        }
        for d in defs.queues.iter().filter(|d| d.vhost == self.name) {
            let q = Arc::new(Queue::new(
                d.name.as_str().into(),
                &self.name,
                true,
                None,
                d.auto_delete,
                from_json(&d.arguments),
                self.store.clone(),
            ));
            if let Some(stream) = recovery.streams.remove(&d.name) {
                q.restore_stream(stream);
            }
            q.enforce_stream_retention();
            self.adopt(&q);
            self.queues.write().insert(d.name.as_str().into(), q);
        }
        for d in defs.bindings.iter().filter(|d| d.vhost == self.name) {
            let ex = self.exchanges.read().get(d.exchange.as_str()).cloned();
            let dest = if d.to_exchange {
                self.exchanges.read().get(d.queue.as_str()).cloned().map(Destination::Exchange)
            } else {
                self.queues.read().get(d.queue.as_str()).cloned().map(Destination::Queue)
            };
            if let (Some(ex), Some(dest)) = (ex, dest) {
                ex.bind(Binding {
                    dest,
                    routing_key: d.routing_key.as_str().into(),
                    arguments: from_json(&d.arguments),
                });
            }
        }
        // Messages last, once every queue and binding is back, so nothing done while restoring
        // them (expiring, dead-lettering one whose TTL ran out while the broker was down) can
        // see a half-recovered topology. (Dead letters are routed by a task of their own that
        // runs after recovery anyway.)
        let mut restored = 0usize;
        for d in defs.queues.iter().filter(|d| d.vhost == self.name) {
            let q = self.queues.read().get(d.name.as_str()).cloned();
            if let (Some(q), Some(messages)) = (q, recovery.queues.remove(&d.name)) {
                restored += q.restore_messages(messages);
            }
        }
        tracing::info!(vhost = %self.name, exchanges = defs.exchanges.len(), queues = defs.queues.len(), messages = restored, "recovered");
    }
}

/// RabbitMQ's checks for a stream declaration: durable, neither exclusive nor auto-delete, and
/// retention arguments it understands.
fn check_stream_declaration(spec: &QueueSpec<'_>, what: &str) -> AmqpResult<()> {
    let invalid = |property: &str| AmqpError::precondition_failed(format!("invalid property '{property}' for {what}"));
    if spec.auto_delete {
        return Err(invalid("auto-delete"));
    }
    if spec.exclusive {
        return Err(invalid("exclusive-owner"));
    }
    if !spec.durable {
        return Err(invalid("non-durable"));
    }
    crate::stream::Retention::from_arguments(&spec.arguments).map(|_| ())
}

fn locked(q: &Queue) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked {}. It could be originally declared on another \
         connection or the exclusive property value does not match that of the original declaration.",
        q.describe()
    ))
}

/// Tell the consumers of a deleted queue (basic.cancel when they asked for it).
pub fn cancel_consumers(consumers: Vec<crate::queue::Consumer>) {
    for c in consumers {
        c.sink.consumer_cancelled_by_server(c.channel, c.id);
    }
}
