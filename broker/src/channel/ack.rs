//! basic.ack, basic.nack, basic.reject and basic.recover.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic};

use super::{Channel, ChannelCtx};
use crate::error::{AmqpError, AmqpResult};
use crate::queue::Queue;
use crate::sink::Unacked;

/// A message going back to its queue: its place (sequence number) and the message.
type Requeued = (u64, Arc<crate::message::Message>);

/// Give deliveries back to their queues, in order, marked redelivered.
pub fn requeue(unacked: impl IntoIterator<Item = Unacked>) {
    let mut by_queue: Vec<(Arc<Queue>, Vec<Requeued>)> = Vec::new();
    for u in unacked {
        match by_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, items)) => items.push((u.seq, u.msg)),
            None => by_queue.push((u.queue, vec![(u.seq, u.msg)])),
        }
    }
    for (q, items) in by_queue {
        q.requeue(items);
    }
}

/// Deliveries are gone for good: journal it for persistent messages on durable queues.
pub fn settle(unacked: &[Unacked]) {
    for u in unacked {
        u.queue.settle(u.seq, &u.msg);
    }
}

/// Count acks on the connection and on each queue (runs of one queue counted at once).
fn count_acks(ctx: &ChannelCtx<'_>, taken: &[Unacked]) {
    ctx.sink.stats.ack.add(taken.len() as u64);
    for run in taken.chunk_by(|a, b| Arc::ptr_eq(&a.queue, &b.queue)) {
        run[0].queue.stats.ack.add(run.len() as u64);
    }
}

/// Deliveries rejected without requeue: dead-lettered where the queue says so, then settled.
pub fn discard(unacked: &[Unacked]) {
    for u in unacked {
        u.queue.rejected(&u.msg);
    }
    settle(unacked);
}

impl Channel {
    /// Take deliveries out of the unacked set; 406 for an unknown tag.
    fn take_unacked(&self, ctx: &ChannelCtx<'_>, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        let mut st = ctx.sink.lock();
        let taken = st.channels.get_mut(&self.id).and_then(|ch| ch.take_unacked(tag, multiple));
        taken.ok_or_else(|| AmqpError::precondition_failed(format!("unknown delivery tag {tag}")))
    }

    pub(super) fn ack(&mut self, ctx: &ChannelCtx<'_>, tag: u64, multiple: bool) -> AmqpResult<()> {
        let taken = self.take_unacked(ctx, tag, multiple)?;
        count_acks(ctx, &taken);
        if let Some(tx) = self.in_tx() {
            tx.settle(taken, None);
            return Ok(());
        }
        settle(&taken);
        self.dispatch_consumer_queues(ctx);
        Ok(())
    }

    pub(super) fn nack(&mut self, ctx: &ChannelCtx<'_>, tag: u64, multiple: bool, requeue_it: bool) -> AmqpResult<()> {
        let taken = self.take_unacked(ctx, tag, multiple)?;
        if let Some(tx) = self.in_tx() {
            tx.settle(taken, Some(requeue_it));
            return Ok(());
        }
        if requeue_it {
            requeue(taken);
        } else {
            discard(&taken);
        }
        self.dispatch_consumer_queues(ctx);
        Ok(())
    }

    /// basic.recover(-async): requeue everything unacked. The recover-ok goes out before the
    /// redeliveries (clients such as lapin drop what they prefetched when it arrives).
    pub(super) fn recover(&mut self, ctx: &ChannelCtx<'_>, requeue_it: bool, reply: bool) -> AmqpResult<()> {
        if !requeue_it {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        if reply {
            let ok = basic::RecoverOk {};
            ctx.sink.send_method(self.id, AMQPClass::Basic(basic::AMQPMethod::RecoverOk(ok)));
        }
        let taken = self.take_unacked(ctx, 0, true)?;
        requeue(taken);
        self.dispatch_consumer_queues(ctx);
        Ok(())
    }

    /// Put settled deliveries back into the unacked set (transaction rollback).
    pub(super) fn restore_unacked(&self, ctx: &ChannelCtx<'_>, items: impl Iterator<Item = Unacked>) {
        let mut st = ctx.sink.lock();
        let Some(ch) = st.channels.get_mut(&self.id) else { return };
        for u in items {
            if let Some(c) = u.consumer.and_then(|id| ch.consumers.get_mut(&id)) {
                c.unacked += 1;
            }
            let pos = ch.unacked.partition_point(|x| x.tag < u.tag);
            ch.unacked.insert(pos, u);
        }
    }

    /// Credit may have been freed: let the queues this channel consumes from dispatch.
    pub(super) fn dispatch_consumer_queues(&self, ctx: &ChannelCtx<'_>) {
        let queues: Vec<Arc<Queue>> = {
            let st = ctx.sink.lock();
            let Some(ch) = st.channels.get(&self.id) else { return };
            let mut qs: Vec<Arc<Queue>> = Vec::with_capacity(ch.consumers.len());
            for c in ch.consumers.values() {
                if !qs.iter().any(|q| Arc::ptr_eq(q, &c.queue)) {
                    qs.push(c.queue.clone());
                }
            }
            qs
        };
        for q in queues {
            q.dispatch();
        }
    }
}
