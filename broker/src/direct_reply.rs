//! Direct reply-to (`amq.rabbitmq.reply-to`): RPC replies without a reply queue.
//!
//! Consuming from the pseudo-queue (no-ack only) creates a private, exclusive, auto-delete
//! queue named `amq.rabbitmq.reply-to.<random>` registered in the vhost like any other queue,
//! so replies published to the default exchange with that routing key reach the consumer and
//! the queue goes away with it. A publish whose `reply_to` is the pseudo-queue gets that name
//! written into its `reply_to` instead.

use std::sync::Arc;

use amq_protocol::types::{FieldTable, ShortString};

use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::names::{DIRECT_REPLY_PREFIX, generated};
use crate::queue::Queue;
use crate::sink::ConnectionSink;
use crate::vhost::{QueueSpec, VirtualHost};

pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";

pub fn is_pseudo_queue(name: &str) -> bool {
    name == PSEUDO_QUEUE
}

/// The channel's reply queue, if it consumes from the pseudo-queue.
fn reply_queue(sink: &ConnectionSink, channel: u16) -> Option<Arc<Queue>> {
    let st = sink.lock();
    let ch = st.channels.get(&channel)?;
    ch.consumers.values().find(|c| c.queue.name.as_str().starts_with(DIRECT_REPLY_PREFIX)).map(|c| c.queue.clone())
}

/// basic.consume on the pseudo-queue: the queue to consume from (406 with acks or twice).
pub fn consumer_queue(
    vhost: &VirtualHost,
    sink: &ConnectionSink,
    channel: u16,
    conn: u64,
    no_ack: bool,
) -> AmqpResult<Arc<Queue>> {
    if !no_ack {
        return Err(AmqpError::precondition_failed("reply consumer cannot acknowledge"));
    }
    if reply_queue(sink, channel).is_some() {
        return Err(AmqpError::precondition_failed("reply consumer already set"));
    }
    let name = generated(DIRECT_REPLY_PREFIX);
    vhost.declare_private_queue(
        QueueSpec {
            name: name.as_str(),
            server_named: true,
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: true,
            arguments: FieldTable::default(),
        },
        conn,
    )
}

/// A publish with `reply_to` set to the pseudo-queue: point it at this channel's reply queue
/// (406 if the channel has no reply consumer). Other messages are returned unchanged.
pub fn rewrite_reply_to(msg: Arc<Message>, sink: &ConnectionSink, channel: u16) -> AmqpResult<Arc<Message>> {
    if msg.properties.reply_to().as_ref().is_none_or(|r| r.as_str() != PSEUDO_QUEUE) {
        return Ok(msg);
    }
    let Some(q) = reply_queue(sink, channel) else {
        return Err(AmqpError::precondition_failed("fast reply consumer does not exist"));
    };
    let props = msg.properties.clone().with_reply_to(ShortString::from(q.name.as_str().to_owned()));
    Ok(Arc::new(Message::derived(msg.exchange.clone(), msg.routing_key.clone(), props, msg.body.clone())))
}
