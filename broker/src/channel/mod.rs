//! `Channel`: the per-channel state machine. Frames go through the content assembler; methods
//! are dispatched to one file per family (declare, publish, consume, ack). Every handler
//! returns `AmqpResult`; the connection turns errors into channel.close or connection.close.

mod ack;
pub mod assembler;
mod consume;
mod declare;
mod exchange_bind;
mod publish;

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, access, basic, channel, confirm, exchange, queue, tx};
use amq_protocol::types::ShortString;

use crate::Broker;
use crate::access::{Perm, Permissions, Resource};
use crate::connection::codec::Frame;
use crate::error::{AmqpError, AmqpResult};
use crate::queue::Queue;
use crate::sink::ConnectionSink;
use crate::vhost::VirtualHost;
use assembler::{Assembled, Assembler};
use publish::{Confirms, Transaction};

/// What a channel needs from its connection.
pub struct ChannelCtx<'a> {
    pub conn_id: u64,
    pub broker: &'a Broker,
    pub vhost: &'a Arc<VirtualHost>,
    pub sink: &'a Arc<ConnectionSink>,
    pub user: &'a str,
    /// What the user may do on this vhost.
    pub permissions: &'a Arc<Permissions>,
}

#[derive(Debug)]
pub struct Channel {
    pub id: u16,
    /// The server sent channel.close and waits for close-ok; other frames are dropped.
    pub closing: bool,
    assembler: Assembler,
    /// The last queue declared, for the empty-name shortcut.
    last_queue: Option<ShortString>,
    confirms: Option<Confirms>,
    tx: Option<Transaction>,
    /// Reused for every publish: the queues a message routes to.
    routed: Vec<Arc<Queue>>,
    /// A queue this channel published into is over its memory bound: the connection stops
    /// reading until it drains (taken by the connection after each batch).
    pub pressed_by: Option<Arc<Queue>>,
    /// This channel published into the journal (persistent messages, streams) since the
    /// connection last looked: the journal's backlog throttles it (taken after each batch).
    pub wrote_journal: bool,
    /// The exchange last published to with write permission, and the permissions'
    /// generation then: a publisher repeating itself skips the regular expression.
    may_publish_to: Option<(ShortString, u64)>,
}

impl Channel {
    pub fn new(id: u16) -> Self {
        Self {
            id,
            closing: false,
            assembler: Assembler::Idle,
            last_queue: None,
            confirms: None,
            tx: None,
            routed: Vec::new(),
            pressed_by: None,
            wrote_journal: false,
            may_publish_to: None,
        }
    }

    /// Feed a frame to the content assembler only (a closing channel still assembles).
    pub fn assemble(&mut self, frame: Frame, max_message_size: u64) -> AmqpResult<Assembled> {
        self.assembler.feed(frame, max_message_size)
    }

    /// Handle a frame; `refusal` is the error a complete method must raise instead of running.
    pub fn handle_frame(&mut self, ctx: &ChannelCtx<'_>, frame: Frame, refusal: Option<AmqpError>) -> AmqpResult<()> {
        match self.assembler.feed(frame, ctx.broker.config.max_message_size)? {
            Assembled::Pending => Ok(()),
            Assembled::Content(content) => self.publish(ctx, content).map_err(|e| stamp(e, 60, 40)),
            Assembled::Method(method) => {
                if let Some(e) = refusal {
                    return Err(e.for_method(&method));
                }
                let (class_id, method_id) = (method.get_amqp_class_id(), method.get_amqp_method_id());
                self.handle_method(ctx, method).map_err(|e| stamp(e, class_id, method_id))
            }
        }
    }

    fn reply(&self, ctx: &ChannelCtx<'_>, method: AMQPClass) {
        ctx.sink.send_method(self.id, method);
    }

    /// An empty queue name means the last queue declared on this channel.
    fn queue_name(&self, name: &ShortString) -> AmqpResult<ShortString> {
        if !name.as_str().is_empty() {
            return Ok(name.clone());
        }
        self.last_queue.clone().ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }

    fn handle_method(&mut self, ctx: &ChannelCtx<'_>, method: AMQPClass) -> AmqpResult<()> {
        match method {
            AMQPClass::Channel(channel::AMQPMethod::Open(_)) => {
                Err(AmqpError::channel_error("second 'channel.open' seen"))
            }
            AMQPClass::Channel(channel::AMQPMethod::Flow(f)) => {
                if !f.active {
                    return Err(AmqpError::not_implemented("active=false"));
                }
                self.reply(ctx, AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: true })));
                Ok(())
            }
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                self.reply(ctx, AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})));
                Ok(())
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(m)) => self.exchange_declare(ctx, m),
            AMQPClass::Exchange(exchange::AMQPMethod::Delete(m)) => self.exchange_delete(ctx, m),
            AMQPClass::Exchange(exchange::AMQPMethod::Bind(m)) => self.exchange_bind(ctx, m),
            AMQPClass::Exchange(exchange::AMQPMethod::Unbind(m)) => self.exchange_unbind(ctx, m),
            AMQPClass::Queue(queue::AMQPMethod::Declare(m)) => self.queue_declare(ctx, m),
            AMQPClass::Queue(queue::AMQPMethod::Bind(m)) => self.queue_bind(ctx, m),
            AMQPClass::Queue(queue::AMQPMethod::Unbind(m)) => self.queue_unbind(ctx, m),
            AMQPClass::Queue(queue::AMQPMethod::Purge(m)) => self.queue_purge(ctx, m),
            AMQPClass::Queue(queue::AMQPMethod::Delete(m)) => self.queue_delete(ctx, m),
            AMQPClass::Basic(basic::AMQPMethod::Qos(m)) => self.qos(ctx, m),
            AMQPClass::Basic(basic::AMQPMethod::Consume(m)) => self.consume(ctx, m),
            AMQPClass::Basic(basic::AMQPMethod::Cancel(m)) => self.cancel(ctx, m),
            AMQPClass::Basic(basic::AMQPMethod::Get(m)) => self.get(ctx, m),
            AMQPClass::Basic(basic::AMQPMethod::Ack(m)) => self.ack(ctx, m.delivery_tag, m.multiple),
            AMQPClass::Basic(basic::AMQPMethod::Nack(m)) => self.nack(ctx, m.delivery_tag, m.multiple, m.requeue),
            AMQPClass::Basic(basic::AMQPMethod::Reject(m)) => self.nack(ctx, m.delivery_tag, false, m.requeue),
            AMQPClass::Basic(basic::AMQPMethod::Recover(m)) => self.recover(ctx, m.requeue, true),
            AMQPClass::Basic(basic::AMQPMethod::RecoverAsync(m)) => self.recover(ctx, m.requeue, false),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(m)) => self.confirm_select(ctx, m.nowait),
            AMQPClass::Tx(tx::AMQPMethod::Select(_)) => self.tx_select(ctx),
            AMQPClass::Tx(tx::AMQPMethod::Commit(_)) => self.tx_commit(ctx),
            AMQPClass::Tx(tx::AMQPMethod::Rollback(_)) => self.tx_rollback(ctx),
            // Server methods (and channel.close-ok or channel.flow-ok never asked for), as
            // RabbitMQ's `rabbit_channel:handle_method/3` catch-all.
            _ => Err(AmqpError::command_invalid("unimplemented method")),
        }
    }

    /// Give the channel's unacked deliveries back to their queues and drop its consumers;
    /// used when the channel or its connection goes away.
    pub fn release(ctx: &ChannelCtx<'_>, channel: u16) {
        let Some(deliveries) = ctx.sink.lock().channels.remove(&channel) else { return };
        for (id, consumer) in deliveries.consumers {
            consumer_gone(ctx.vhost, &consumer.queue, id);
        }
        ack::requeue(deliveries.unacked);
    }
}

/// A consumer left its queue: an auto-delete queue goes once its last consumer is gone.
fn consumer_gone(vhost: &VirtualHost, queue: &Arc<Queue>, consumer_id: u64) {
    if queue.remove_consumer(consumer_id) == Some(0) && queue.auto_delete {
        vhost.remove_queue(queue);
    }
}

impl Channel {
    /// basic.publish: write on the exchange (remembered for the next publish to the same
    /// exchange), and the topic permission for the routing key on a topic exchange.
    fn check_publish(&mut self, ctx: &ChannelCtx<'_>, exchange: &ShortString, routing_key: &str) -> AmqpResult<()> {
        let perms = ctx.permissions;
        let known = perms.writes_anywhere()
            || matches!(&self.may_publish_to, Some((x, g)) if *g == perms.generation && x == exchange);
        if !known {
            perms.check(Perm::Write, Resource::Exchange, exchange.as_str())?;
            self.may_publish_to = Some((exchange.clone(), perms.generation));
        }
        if perms.has_topic_rules() && ctx.vhost.is_topic_exchange(exchange.as_str()) {
            perms.check_topic(Perm::Write, exchange.as_str(), routing_key)?;
        }
        Ok(())
    }
}

/// RabbitMQ's `binding_action` checks: write on the destination, read on the source (unless
/// it is the default exchange, refused later), and for a topic source the topic read
/// permission on the routing key.
fn check_binding(ctx: &ChannelCtx<'_>, dest: Resource, dest_name: &str, source: &str, key: &str) -> AmqpResult<()> {
    let perms = ctx.permissions;
    perms.check(Perm::Write, dest, dest_name)?;
    if dest == Resource::Exchange && dest_name.is_empty() {
        return Ok(());
    }
    if !source.is_empty() {
        perms.check(Perm::Read, Resource::Exchange, source)?;
        if perms.has_topic_rules() && ctx.vhost.is_topic_exchange(source) {
            perms.check_topic(Perm::Read, source, key)?;
        }
    }
    Ok(())
}

fn stamp(e: AmqpError, class_id: u16, method_id: u16) -> AmqpError {
    if e.class_id == 0 { e.at(class_id, method_id) } else { e }
}
