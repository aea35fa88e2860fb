//! basic.qos, basic.consume, basic.cancel and basic.get.

use amq_protocol::protocol::{AMQPClass, basic};

use super::{Channel, ChannelCtx, consumer_gone};
use crate::access::{Perm, Resource};
use crate::connection::codec;
use crate::error::{AmqpError, AmqpResult};
use crate::names::generated;
use crate::queue::{Consumer, Queue};
use crate::sink::{ConsumerState, Unacked};
use crate::stream::StartAt;

impl Channel {
    /// global=false: the limit for consumers created from now on, and (RabbitMQ 3.10's
    /// `unlimit_prefetch`) no channel-wide limit any more; global=true: one limit shared by
    /// every consumer on the channel.
    pub(super) fn qos(&mut self, ctx: &ChannelCtx<'_>, m: basic::Qos) -> AmqpResult<()> {
        {
            let mut st = ctx.sink.lock();
            if let Some(ch) = st.channels.get_mut(&self.id) {
                if m.global {
                    ch.global_prefetch = m.prefetch_count;
                } else {
                    ch.consumer_prefetch = m.prefetch_count;
                    ch.global_prefetch = 0;
                }
            }
        }
        self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})));
        self.dispatch_consumer_queues(ctx);
        Ok(())
    }

    pub(super) fn consume(&mut self, ctx: &ChannelCtx<'_>, m: basic::Consume) -> AmqpResult<()> {
        let tag = if m.consumer_tag.as_str().is_empty() { generated("amq.ctag-") } else { m.consumer_tag.clone() };
        let name = self.queue_name(&m.queue)?;
        let queue = if crate::direct_reply::is_pseudo_queue(name.as_str()) {
            crate::direct_reply::consumer_queue(ctx.vhost, ctx.sink, self.id, ctx.conn_id, m.no_ack)?
        } else {
            ctx.permissions.check(Perm::Read, Resource::Queue, name.as_str())?;
            ctx.vhost.queue(name.as_str(), ctx.conn_id)?
        };
        let stream_start = if queue.is_stream() { self.stream_consumer_start(ctx, &queue, &m)? } else { StartAt::Next };
        let priority = crate::queue_args::consumer_priority(&m.arguments, &queue.describe())?;
        let id = ctx.broker.next_id();
        {
            let mut st = ctx.sink.lock();
            let Some(ch) = st.channels.get_mut(&self.id) else { return Ok(()) };
            if ch.consumer_by_tag(tag.as_str()).is_some() {
                return Err(AmqpError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
            }
            let prefetch = ch.consumer_prefetch;
            ch.consumers.insert(
                id,
                ConsumerState { tag: tag.clone(), queue: queue.clone(), no_ack: m.no_ack, prefetch, unacked: 0 },
            );
        }
        let consumer = Consumer {
            id,
            tag: tag.clone(),
            channel: self.id,
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            sink: ctx.sink.clone(),
            stream_start,
            priority,
        };
        let channel = self.id;
        let accepted = queue.add_consumer(consumer, || {
            if !m.nowait {
                let ok = basic::ConsumeOk { consumer_tag: tag.clone() };
                ctx.sink.send_method(channel, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
            }
        });
        if let Err(e) = accepted {
            if let Some(ch) = ctx.sink.lock().channels.get_mut(&self.id) {
                ch.consumers.remove(&id);
            }
            return Err(e);
        }
        Ok(())
    }

    /// A stream is read with manual acks under a prefetch limit (RabbitMQ's rules), from the
    /// consumer's `x-stream-offset`.
    fn stream_consumer_start(&self, ctx: &ChannelCtx<'_>, queue: &Queue, m: &basic::Consume) -> AmqpResult<StartAt> {
        if m.no_ack {
            return Err(queue.not_supported_by_stream("automatic acknowledgement"));
        }
        let prefetch = ctx.sink.lock().channels.get(&self.id).map_or(0, |ch| ch.consumer_prefetch);
        if prefetch == 0 {
            return Err(AmqpError::precondition_failed(format!(
                "consumer prefetch count is not set for '{}'",
                queue.describe()
            )));
        }
        StartAt::from_arguments(&m.arguments, crate::clock::now_ms())
    }

    pub(super) fn cancel(&mut self, ctx: &ChannelCtx<'_>, m: basic::Cancel) -> AmqpResult<()> {
        let removed = {
            let mut st = ctx.sink.lock();
            st.channels.get_mut(&self.id).and_then(|ch| {
                let id = ch.consumer_by_tag(m.consumer_tag.as_str())?;
                ch.consumers.remove(&id).map(|c| (id, c))
            })
        };
        if !m.nowait {
            let ok = basic::CancelOk { consumer_tag: m.consumer_tag.clone() };
            self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)));
        }
        // Its unacked deliveries stay on the channel and may still be acked (RabbitMQ).
        if let Some((id, consumer)) = removed {
            consumer_gone(ctx.vhost, &consumer.queue, id);
        }
        Ok(())
    }

    pub(super) fn get(&mut self, ctx: &ChannelCtx<'_>, m: basic::Get) -> AmqpResult<()> {
        let name = self.queue_name(&m.queue)?;
        ctx.permissions.check(Perm::Read, Resource::Queue, name.as_str())?;
        let queue = ctx.vhost.queue(name.as_str(), ctx.conn_id)?;
        if queue.is_stream() {
            return Err(queue.not_supported_by_stream("basic.get"));
        }
        let Some((qm, message_count)) = queue.get() else {
            self.reply(ctx, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})));
            return Ok(());
        };
        {
            let mut guard = ctx.sink.lock();
            let st = &mut *guard;
            let Some(ch) = st.channels.get_mut(&self.id) else {
                drop(guard);
                queue.requeue([(qm.seq, qm.msg)]);
                return Ok(());
            };
            let delivery_tag = ch.next_delivery_tag();
            let ok = basic::GetOk {
                delivery_tag,
                redelivered: qm.redelivered,
                exchange: qm.msg.exchange.clone(),
                routing_key: qm.msg.routing_key.clone(),
                message_count,
            };
            codec::write_method(&mut st.out, self.id, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok)));
            codec::write_content(&mut st.out, self.id, &qm.msg.header, &qm.msg.body, st.frame_max);
            let redelivered = u64::from(qm.redelivered);
            queue.stats.delivered(1, redelivered, !m.no_ack, true, false);
            ctx.sink.stats.delivered(1, redelivered, !m.no_ack, true, true); // under the sink's lock
            if m.no_ack {
                queue.settle(qm.seq, &qm.msg);
            } else {
                ch.unacked.push_back(Unacked {
                    tag: delivery_tag,
                    queue: queue.clone(),
                    seq: qm.seq,
                    msg: qm.msg,
                    consumer: None,
                });
            }
        }
        ctx.sink.wake_writer();
        Ok(())
    }
}
