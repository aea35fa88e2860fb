//! exchange.declare/delete and queue.declare/bind/unbind/purge/delete.

use amq_protocol::protocol::{AMQPClass, exchange, queue};

use super::{Channel, ChannelCtx, check_binding};
use crate::access::{Perm, Resource};
use crate::error::AmqpResult;
use crate::exchange::ExchangeKind;
use crate::names::generated;
use crate::vhost::{ExchangeSpec, QueueSpec, check_name};

/// A declaration argument naming an exchange (alternate-exchange, x-dead-letter-exchange).
fn exchange_argument(arguments: &amq_protocol::types::FieldTable, key: &str) -> Option<String> {
    arguments.inner().get(key).and_then(crate::args::as_text)
}

impl Channel {
    pub(super) fn exchange_declare(&mut self, ctx: &ChannelCtx<'_>, m: exchange::Declare) -> AmqpResult<()> {
        // RabbitMQ checks the type and the default exchange first (the vhost does), then
        // configure; a new exchange with an alternate exchange also needs read on itself and
        // write on the alternate. A passive declare needs no permission.
        let name = m.exchange.as_str();
        if !m.passive && !name.is_empty() && ExchangeKind::parse(m.kind.as_str()).is_some() {
            ctx.permissions.check(Perm::Configure, Resource::Exchange, name)?;
            if let Some(ae) = exchange_argument(&m.arguments, "alternate-exchange")
                && !ctx.vhost.has_exchange(name)
            {
                ctx.permissions.check(Perm::Read, Resource::Exchange, name)?;
                ctx.permissions.check(Perm::Write, Resource::Exchange, &ae)?;
            }
        }
        ctx.vhost.declare_exchange(ExchangeSpec {
            name: m.exchange.as_str(),
            kind: m.kind.as_str(),
            passive: m.passive,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: m.arguments,
        })?;
        if !m.nowait {
            self.reply(ctx, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})));
        }
        Ok(())
    }

    pub(super) fn exchange_delete(&mut self, ctx: &ChannelCtx<'_>, m: exchange::Delete) -> AmqpResult<()> {
        // The default and amq.* exchanges are refused by the vhost before any permission.
        let name = m.exchange.as_str();
        if !name.is_empty() && !name.starts_with("amq.") {
            ctx.permissions.check(Perm::Configure, Resource::Exchange, name)?;
        }
        ctx.vhost.delete_exchange(m.exchange.as_str(), m.if_unused)?;
        if !m.nowait {
            self.reply(ctx, AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})));
        }
        Ok(())
    }

    pub(super) fn queue_declare(&mut self, ctx: &ChannelCtx<'_>, m: queue::Declare) -> AmqpResult<()> {
        if m.queue.as_str() == crate::direct_reply::PSEUDO_QUEUE {
            // RabbitMQ answers any declare of the direct reply-to pseudo-queue with declare-ok,
            // 0 messages and 1 consumer, whether or not this channel consumes from it.
            if !m.nowait {
                self.reply(
                    ctx,
                    AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                        queue: m.queue,
                        message_count: 0,
                        consumer_count: 1,
                    })),
                );
            }
            return Ok(());
        }
        let server_named = !m.passive && m.queue.as_str().is_empty();
        let name = if m.passive {
            self.queue_name(&m.queue)?
        } else if server_named {
            generated("amq.gen-")
        } else {
            check_name("queue", m.queue.as_str())?;
            m.queue.clone()
        };
        if !m.passive {
            ctx.permissions.check(Perm::Configure, Resource::Queue, name.as_str())?;
            if let Some(dlx) = exchange_argument(&m.arguments, "x-dead-letter-exchange")
                && !ctx.vhost.has_queue(name.as_str())
            {
                ctx.permissions.check(Perm::Read, Resource::Queue, name.as_str())?;
                ctx.permissions.check(Perm::Write, Resource::Exchange, &dlx)?;
            }
        }
        let q = ctx.vhost.declare_queue(
            QueueSpec {
                name: name.as_str(),
                server_named,
                passive: m.passive,
                durable: m.durable,
                exclusive: m.exclusive,
                auto_delete: m.auto_delete,
                arguments: m.arguments,
            },
            ctx.conn_id,
        )?;
        self.last_queue = Some(q.name.clone());
        if !m.nowait {
            let (message_count, consumer_count) = q.counts();
            self.reply(
                ctx,
                AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                    queue: q.name.clone(),
                    message_count,
                    consumer_count,
                })),
            );
        }
        Ok(())
    }

    pub(super) fn queue_bind(&mut self, ctx: &ChannelCtx<'_>, m: queue::Bind) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        // RabbitMQ: an empty routing key with an empty queue name means the queue's name.
        let key =
            if m.routing_key.as_str().is_empty() && m.queue.as_str().is_empty() { name.clone() } else { m.routing_key };
        check_binding(ctx, Resource::Queue, name.as_str(), m.exchange.as_str(), key.as_str())?;
        ctx.vhost.bind_queue(name.as_str(), m.exchange.as_str(), key.as_str(), m.arguments, ctx.conn_id)?;
        if !m.nowait {
            self.reply(ctx, AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})));
        }
        Ok(())
    }

    pub(super) fn queue_unbind(&mut self, ctx: &ChannelCtx<'_>, m: queue::Unbind) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        check_binding(ctx, Resource::Queue, name.as_str(), m.exchange.as_str(), m.routing_key.as_str())?;
        ctx.vhost.unbind_queue(name.as_str(), m.exchange.as_str(), m.routing_key.as_str(), m.arguments, ctx.conn_id)?;
        self.reply(ctx, AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})));
        Ok(())
    }

    pub(super) fn queue_purge(&mut self, ctx: &ChannelCtx<'_>, m: queue::Purge) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        ctx.permissions.check(Perm::Read, Resource::Queue, name.as_str())?;
        let q = ctx.vhost.queue(name.as_str(), ctx.conn_id)?;
        if q.is_stream() {
            return Err(q.not_supported_by_stream("queue.purge"));
        }
        let message_count = q.purge();
        if !m.nowait {
            self.reply(ctx, AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count })));
        }
        Ok(())
    }

    pub(super) fn queue_delete(&mut self, ctx: &ChannelCtx<'_>, m: queue::Delete) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        ctx.permissions.check(Perm::Configure, Resource::Queue, name.as_str())?;
        let deleted = ctx.vhost.delete_queue(name.as_str(), m.if_unused, m.if_empty, ctx.conn_id)?;
        if !m.nowait {
            let message_count = deleted.message_count;
            self.reply(ctx, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count })));
        }
        // After delete-ok, as RabbitMQ: a client waiting for delete-ok on this channel
        // (py-amqp) must not meet its own consumer's basic.cancel first.
        crate::vhost::cancel_consumers(deleted.consumers);
        Ok(())
    }
}
