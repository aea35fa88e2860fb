//! `Session`: what a user does to a vhost without an AMQP connection (the management HTTP
//! API, its aliveness test): declare, delete, bind, purge, publish and get, with the same
//! permission checks, rules and reply texts as the channel methods in `channel/`. It owns no
//! connection, so exclusive queues are locked to it (405), as to RabbitMQ's management API.
//!
//! None of this is on a connection's publish or delivery path: a session publishes into queues
//! through their public operations, as dead-lettering does.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::FieldTable;
use bytes::Bytes;

use crate::Broker;
use crate::access::{Perm, Permissions, Resource};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Destination, ExchangeKind};
use crate::message::Message;
use crate::names::short;
use crate::queue::{Deleted, Queue};
use crate::vhost::{ExchangeSpec, QueueSpec, VirtualHost, cancel_consumers, check_name};

/// The connection id a session acts as: no client connection has it (ids start at 1).
pub const NO_CONNECTION: u64 = 0;

/// What to do with messages a session got (the management API's `ackmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Put them back (marked redelivered).
    Requeue,
    /// Acknowledge them: they leave the queue.
    Ack,
    /// Reject them without requeueing: dead-lettered where the queue says so.
    Discard,
}

/// A message a session got from a queue.
#[derive(Debug)]
pub struct Got {
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// Messages left in the queue after this one was taken.
    pub remaining: u32,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Some queue took the message.
    pub routed: bool,
    /// The journal ticket to wait for before the message is safe (persistent messages on
    /// durable queues); None when nothing was written.
    pub ticket: Option<u64>,
}

/// A user's session on a vhost.
pub struct Session<'a> {
    broker: &'a Broker,
    pub vhost: Arc<VirtualHost>,
    permissions: Arc<Permissions>,
}

fn argument(arguments: &FieldTable, key: &str) -> Option<String> {
    arguments.inner().get(key).and_then(crate::args::as_text)
}

impl<'a> Session<'a> {
    /// A session of `user` on `vhost`; None when the vhost does not exist. Whether the user
    /// may use the vhost at all is checked by each operation (403 without permissions).
    pub fn new(broker: &'a Broker, user: &str, vhost: &str) -> Option<Self> {
        let vhost = broker.vhost(vhost)?;
        let permissions = broker.access.permissions(user, &vhost.name);
        Some(Self { broker, vhost, permissions })
    }

    /// Whether the user has permissions on the vhost (may open it over AMQP).
    pub fn may_open(&self) -> bool {
        self.permissions.may_open()
    }

    fn check(&self, perm: Perm, resource: Resource, name: &str) -> AmqpResult<()> {
        self.permissions.check(perm, resource, name)
    }

    /// exchange.declare (not passive); returns whether the exchange is new.
    pub fn declare_exchange(&self, spec: ExchangeSpec<'_>) -> AmqpResult<bool> {
        let name = spec.name;
        let existed = self.vhost.has_exchange(name);
        if !name.is_empty() && ExchangeKind::parse(spec.kind).is_some() {
            self.check(Perm::Configure, Resource::Exchange, name)?;
            if let Some(ae) = argument(&spec.arguments, "alternate-exchange")
                && !existed
            {
                self.check(Perm::Read, Resource::Exchange, name)?;
                self.check(Perm::Write, Resource::Exchange, &ae)?;
            }
        }
        self.vhost.declare_exchange(spec)?;
        Ok(!existed)
    }

    /// exchange.delete.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if !name.is_empty() && !name.starts_with("amq.") {
            self.check(Perm::Configure, Resource::Exchange, name)?;
        }
        self.vhost.delete_exchange(name, if_unused)
    }

    /// queue.declare of a named, non-exclusive queue; returns whether the queue is new.
    pub fn declare_queue(
        &self,
        name: &str,
        durable: bool,
        auto_delete: bool,
        arguments: FieldTable,
    ) -> AmqpResult<bool> {
        check_name("queue", name)?;
        let existed = self.vhost.has_queue(name);
        self.check(Perm::Configure, Resource::Queue, name)?;
        if let Some(dlx) = argument(&arguments, "x-dead-letter-exchange")
            && !existed
        {
            self.check(Perm::Read, Resource::Queue, name)?;
            self.check(Perm::Write, Resource::Exchange, &dlx)?;
        }
        let spec =
            QueueSpec { name, server_named: false, passive: false, durable, exclusive: false, auto_delete, arguments };
        self.vhost.declare_queue(spec, NO_CONNECTION)?;
        Ok(!existed)
    }

    /// queue.delete; its consumers are told. Returns the number of messages it had.
    pub fn delete_queue(&self, name: &str, if_unused: bool, if_empty: bool) -> AmqpResult<u32> {
        self.check(Perm::Configure, Resource::Queue, name)?;
        let Deleted { message_count, consumers } = self.vhost.delete_queue(name, if_unused, if_empty, NO_CONNECTION)?;
        cancel_consumers(consumers);
        Ok(message_count)
    }

    /// The queue, unless it is another connection's exclusive queue (405) or missing (404).
    pub fn queue(&self, name: &str) -> AmqpResult<Arc<Queue>> {
        self.vhost.queue(name, NO_CONNECTION)
    }

    /// queue.purge; returns the number of messages dropped.
    pub fn purge(&self, name: &str) -> AmqpResult<u32> {
        self.check(Perm::Read, Resource::Queue, name)?;
        let q = self.queue(name)?;
        if q.is_stream() {
            return Err(q.not_supported_by_stream("queue.purge"));
        }
        Ok(q.purge())
    }

    /// RabbitMQ's `binding_action` checks (see `channel::check_binding`).
    fn check_binding(&self, dest: Resource, dest_name: &str, source: &str, key: &str) -> AmqpResult<()> {
        self.check(Perm::Write, dest, dest_name)?;
        if !source.is_empty() {
            self.check(Perm::Read, Resource::Exchange, source)?;
            if self.permissions.has_topic_rules() && self.vhost.is_topic_exchange(source) {
                self.permissions.check_topic(Perm::Read, source, key)?;
            }
        }
        Ok(())
    }

    /// queue.bind or exchange.bind of `destination` to `source`.
    pub fn bind(&self, source: &str, destination: &Target<'_>, key: &str, arguments: FieldTable) -> AmqpResult<()> {
        match destination {
            Target::Queue(q) => {
                self.check_binding(Resource::Queue, q, source, key)?;
                self.vhost.bind_queue(q, source, key, arguments, NO_CONNECTION)
            }
            Target::Exchange(x) => {
                self.check_binding(Resource::Exchange, x, source, key)?;
                self.vhost.bind_exchange(x, source, key, arguments)
            }
        }
    }

    /// queue.unbind or exchange.unbind.
    pub fn unbind(&self, source: &str, destination: &Target<'_>, key: &str, arguments: FieldTable) -> AmqpResult<()> {
        match destination {
            Target::Queue(q) => {
                self.check_binding(Resource::Queue, q, source, key)?;
                self.vhost.unbind_queue(q, source, key, arguments, NO_CONNECTION)
            }
            Target::Exchange(x) => {
                self.check_binding(Resource::Exchange, x, source, key)?;
                self.vhost.unbind_exchange(x, source, key, arguments)
            }
        }
    }

    /// basic.publish without mandatory, as a channel does it: permission, topic permission,
    /// user_id, expiration and size checks, routing, then one journal write for a persistent
    /// message bound for durable queues.
    pub fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: Bytes,
    ) -> AmqpResult<PublishOutcome> {
        self.check(Perm::Write, Resource::Exchange, exchange)?;
        if self.permissions.has_topic_rules() && self.vhost.is_topic_exchange(exchange) {
            self.permissions.check_topic(Perm::Write, exchange, routing_key)?;
        }
        let user = self.permissions.user();
        if let Some(user_id) = properties.user_id()
            && user_id.as_str() != user
        {
            return Err(AmqpError::precondition_failed(format!(
                "user_id property set to '{user_id}' but authenticated user was '{user}'"
            )));
        }
        crate::message::check_expiration(&properties)?;
        let max = self.broker.config.max_message_size;
        if body.len() as u64 > max {
            return Err(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {max}",
                body.len()
            )));
        }
        let msg = Arc::new(Message::derived(short(exchange), short(routing_key), properties, body));
        let mut routed = Vec::new();
        self.vhost.route(exchange, &msg, &mut routed)?;
        let outside = self.broker.outside_connections();
        outside.publish.add(1);
        if routed.is_empty() {
            outside.drop_unroutable.add(1);
        }
        let ticket = crate::queue::routed::enqueue(self.broker.store.as_ref(), &msg, &routed).ticket;
        Ok(PublishOutcome { routed: !routed.is_empty(), ticket })
    }

    /// Up to `count` basic.gets from `queue`, then settle them all as `settle` says (requeued
    /// only once all are taken, so none comes back twice).
    pub fn get(&self, queue: &str, count: usize, settle: Settle) -> AmqpResult<Vec<Got>> {
        self.check(Perm::Read, Resource::Queue, queue)?;
        let q = self.queue(queue)?;
        if q.is_stream() {
            return Err(q.not_supported_by_stream("basic.get"));
        }
        let mut taken = Vec::new();
        while taken.len() < count {
            let Some((qm, remaining)) = q.get() else { break };
            taken.push((qm, remaining));
        }
        let (n, redelivered) = (taken.len() as u64, taken.iter().filter(|(qm, _)| qm.redelivered).count() as u64);
        if n > 0 {
            let acked = matches!(settle, Settle::Ack);
            q.stats.delivered(n, redelivered, acked, true, false);
            self.broker.outside_connections().delivered(n, redelivered, acked, true, false);
        }
        let got = taken
            .iter()
            .map(|(qm, remaining)| Got { msg: qm.msg.clone(), redelivered: qm.redelivered, remaining: *remaining })
            .collect();
        match settle {
            Settle::Requeue => q.requeue(taken.into_iter().map(|(qm, _)| (qm.seq, qm.msg))),
            Settle::Ack => {
                for (qm, _) in &taken {
                    q.settle(qm.seq, &qm.msg);
                }
            }
            Settle::Discard => {
                for (qm, _) in &taken {
                    q.rejected(&qm.msg);
                    q.settle(qm.seq, &qm.msg);
                }
            }
        }
        Ok(got)
    }
}

/// The destination of a binding.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Queue(&'a str),
    Exchange(&'a str),
}

impl Target<'_> {
    /// Whether a binding goes to this destination.
    pub fn is(&self, dest: &Destination) -> bool {
        match (self, dest) {
            (Target::Queue(name), Destination::Queue(q)) => q.name.as_str() == *name,
            (Target::Exchange(name), Destination::Exchange(x)) => x.name.as_str() == *name,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;
    use crate::error::ReplyCode;
    use warren_persistence::PermissionDef;

    fn refused<T: std::fmt::Debug>(r: AmqpResult<T>) -> ReplyCode {
        r.unwrap_err().code
    }

    fn body(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[tokio::test]
    async fn publish_get_and_settle_as_a_channel_would() {
        let broker = Broker::new(BrokerConfig::default());
        let s = Session::new(&broker, "guest", "/").expect("vhost");
        assert!(s.may_open());
        assert!(s.declare_queue("q", false, false, FieldTable::default()).unwrap(), "new");
        assert!(!s.declare_queue("q", false, false, FieldTable::default()).unwrap(), "existing");
        let e = s.declare_queue("q", true, false, FieldTable::default()).unwrap_err();
        assert_eq!(e.code, ReplyCode::PreconditionFailed);
        assert!(s.publish("", "q", BasicProperties::default(), body("one")).unwrap().routed);
        assert!(s.publish("", "q", BasicProperties::default(), body("two")).unwrap().routed);
        assert!(!s.publish("", "nowhere", BasicProperties::default(), body("x")).unwrap().routed);

        let peek = s.get("q", 10, Settle::Requeue).unwrap();
        assert_eq!(peek.iter().map(|g| g.msg.body.as_ref()).collect::<Vec<_>>(), [b"one", b"two"]);
        assert_eq!((peek[0].remaining, peek[1].remaining), (1, 0));
        assert!(!peek[0].redelivered);
        let again = s.get("q", 1, Settle::Ack).unwrap();
        assert!(again[0].redelivered, "requeued messages come back redelivered");
        assert_eq!(again[0].msg.body.as_ref(), b"one");
        assert_eq!(s.get("q", 5, Settle::Discard).unwrap().len(), 1);
        assert!(s.get("q", 5, Settle::Ack).unwrap().is_empty(), "acked and discarded ones are gone");
        assert_eq!(s.queue("q").unwrap().stats().ready, 0);
        assert_eq!(s.get("nope", 1, Settle::Ack).unwrap_err().code, ReplyCode::NotFound);
        assert_eq!(s.delete_queue("q", false, false).unwrap(), 0);
    }

    #[tokio::test]
    async fn permissions_apply_as_on_a_channel() {
        let broker = Broker::new(BrokerConfig::default());
        broker.access.add_user("ro", "pw").unwrap();
        let read_only = PermissionDef {
            user: "ro".into(),
            vhost: "/".into(),
            configure: "^ro\\.".into(),
            write: "".into(),
            read: ".*".into(),
        };
        broker.access.set_permissions(read_only).unwrap();
        let s = Session::new(&broker, "ro", "/").expect("vhost");
        assert!(s.declare_queue("ro.q", false, false, FieldTable::default()).is_ok());
        assert_eq!(refused(s.declare_queue("other", false, false, FieldTable::default())), ReplyCode::AccessRefused);
        assert_eq!(refused(s.publish("", "ro.q", BasicProperties::default(), body("x"))), ReplyCode::AccessRefused);
        assert_eq!(
            refused(s.bind("amq.direct", &Target::Queue("ro.q"), "k", FieldTable::default())),
            ReplyCode::AccessRefused
        );
        assert!(s.get("ro.q", 1, Settle::Ack).is_ok(), "read is allowed");
        let as_someone_else = BasicProperties::default().with_user_id("guest".into());
        let guest = Session::new(&broker, "guest", "/").expect("vhost");
        assert!(guest.publish("", "ro.q", as_someone_else.clone(), body("x")).is_ok());
        let ro_writer = Session::new(&broker, "nobody", "/").expect("vhost");
        assert!(!ro_writer.may_open());
        assert_eq!(refused(ro_writer.publish("", "ro.q", as_someone_else, body("x"))), ReplyCode::AccessRefused);
        let spoofed = BasicProperties::default().with_user_id("ro".into());
        assert_eq!(refused(guest.publish("", "ro.q", spoofed, body("x"))), ReplyCode::PreconditionFailed);
    }
}
