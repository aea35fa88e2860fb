//! basic.publish, publisher confirms and transactions.
//!
//! Transient messages are routed synchronously, so a confirm is due as soon as the message is
//! in its queues; confirms are coalesced per read batch into one `basic.ack multiple=true`.
//! In a transaction, publishes are routed when published (so a missing exchange fails at once,
//! as in RabbitMQ) but reach their queues only at commit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use amq_protocol::protocol::{AMQPClass, basic, confirm, tx};

use super::assembler::Content;
use super::{Channel, ChannelCtx};
use crate::error::{AmqpError, AmqpResult, ReplyCode};
use crate::message::Message;
use crate::queue::Queue;
use crate::sink::Unacked;

/// Confirm mode: the last sequence number published, the last one acknowledged, and the
/// publishes still waiting for the disk (publish sequence number, journal ticket).
#[derive(Debug, Default)]
pub struct Confirms {
    published: u64,
    acked: u64,
    /// `published - acked`, for listings (the sink's channel entry holds the same).
    unconfirmed: Arc<AtomicU64>,
    on_disk_wait: VecDeque<(u64, u64)>,
    /// Publishes a queue refused (x-overflow reject-publish): nacked instead of acked.
    nacks: VecDeque<u64>,
}

/// What a transaction holds until commit or rollback.
#[derive(Debug, Default)]
pub struct Transaction {
    publishes: Vec<(Arc<Message>, Vec<Arc<Queue>>, bool)>,
    /// Deliveries acknowledged (requeue None) or rejected inside the transaction.
    settlements: Vec<(Vec<Unacked>, Option<bool>)>,
    /// Commits whose persistent publishes are not on disk yet: the journal ticket each
    /// commit-ok waits for, in commit order.
    commits_on_disk_wait: VecDeque<u64>,
}

impl Transaction {
    pub(super) fn settle(&mut self, taken: Vec<Unacked>, requeue: Option<bool>) {
        self.settlements.push((taken, requeue));
    }
}

impl Channel {
    pub(super) fn in_tx(&mut self) -> Option<&mut Transaction> {
        self.tx.as_mut()
    }

    pub(super) fn publish(&mut self, ctx: &ChannelCtx<'_>, content: Content) -> AmqpResult<()> {
        let Content { publish, header, raw_header, body } = content;
        if publish.immediate {
            return Err(AmqpError::not_implemented("immediate=true"));
        }
        self.check_publish(ctx, &publish.exchange, publish.routing_key.as_str())?;
        if let Some(user_id) = header.properties.user_id()
            && user_id.as_str() != ctx.user
        {
            return Err(AmqpError::precondition_failed(format!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                ctx.user
            )));
        }
        crate::message::check_expiration(&header.properties)?;
        let msg = Arc::new(Message::new(publish.exchange, publish.routing_key, header.properties, raw_header, body));
        let msg = crate::direct_reply::rewrite_reply_to(msg, ctx.sink, self.id)?;
        let mut routed = std::mem::take(&mut self.routed);
        routed.clear();
        let result = ctx.vhost.route(msg.exchange.as_str(), &msg, &mut routed);
        if let Err(e) = result {
            self.routed = routed;
            return Err(e);
        }
        ctx.sink.stats.publish.add_serialised(1); // only this connection's task writes it
        if let Some(tx) = self.tx.as_mut() {
            tx.publishes.push((msg, routed, publish.mandatory));
            return Ok(());
        }
        let (ticket, rejected) = self.deliver_routed(ctx, &msg, &routed, publish.mandatory);
        if let Some(q) = routed.iter().find(|q| q.under_pressure()) {
            self.pressed_by.get_or_insert_with(|| q.clone());
        }
        self.wrote_journal |= ticket.is_some();
        self.routed = routed;
        if let Some(c) = self.confirms.as_mut() {
            c.published += 1;
            c.unconfirmed.store(c.published - c.acked, Ordering::Relaxed);
            if rejected {
                c.nacks.push_back(c.published);
            }
            if let Some(ticket) = ticket {
                c.on_disk_wait.push_back((c.published, ticket));
            }
        }
        Ok(())
    }

    /// Put a routed message into its queues. A persistent message bound for durable queues is
    /// journaled first (once, with one enqueue per queue); the returned ticket tells when it is
    /// on disk; `rejected` is true when a queue refused it (x-overflow reject-publish).
    fn deliver_routed(
        &self,
        ctx: &ChannelCtx<'_>,
        msg: &Arc<Message>,
        routed: &[Arc<Queue>],
        mandatory: bool,
    ) -> (Option<u64>, bool) {
        if routed.is_empty() {
            if mandatory {
                let ret = basic::Return {
                    reply_code: ReplyCode::NoRoute.code(),
                    reply_text: "NO_ROUTE".into(),
                    exchange: msg.exchange.clone(),
                    routing_key: msg.routing_key.clone(),
                };
                ctx.sink.send_with_content(self.id, AMQPClass::Basic(basic::AMQPMethod::Return(ret)), msg);
                ctx.sink.stats.return_unroutable.add(1);
            } else {
                ctx.sink.stats.drop_unroutable.add(1);
            }
            return (None, false);
        }
        // Streams keep every message on disk, persistent or not.
        let out = crate::queue::routed::enqueue(ctx.broker.store.as_ref(), msg, routed);
        (out.ticket, out.rejected)
    }

    /// Whether a confirm waits for the journal.
    pub fn awaiting_disk(&self) -> bool {
        self.confirms.as_ref().is_some_and(|c| !c.on_disk_wait.is_empty())
            || self.tx.as_ref().is_some_and(|t| !t.commits_on_disk_wait.is_empty())
    }

    /// Send the coalesced basic.ack for everything confirmed since the last call: every
    /// publish up to the first one whose journal ticket is not on disk yet (`synced`).
    pub fn flush_confirms(&mut self, ctx: &ChannelCtx<'_>, synced: u64) {
        if let Some(tx) = self.tx.as_mut() {
            // A commit-ok for persistent messages goes out once they are on disk, in order.
            while tx.commits_on_disk_wait.front().is_some_and(|ticket| *ticket <= synced) {
                tx.commits_on_disk_wait.pop_front();
                ctx.sink.send_method(self.id, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})));
            }
        }
        let Some(c) = self.confirms.as_mut() else { return };
        let from = c.acked;
        while c.on_disk_wait.front().is_some_and(|(_, ticket)| *ticket <= synced) {
            c.on_disk_wait.pop_front();
        }
        let upto = c.on_disk_wait.front().map_or(c.published, |(seq, _)| seq - 1);
        // Refused publishes up to there are nacked in order, the rest acked around them.
        while let Some(&nack) = c.nacks.front().filter(|n| **n <= upto) {
            c.nacks.pop_front();
            if nack > c.acked + 1 {
                let ack = basic::Ack { delivery_tag: nack - 1, multiple: nack - 1 - c.acked > 1 };
                ctx.sink.send_method(self.id, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)));
            }
            let n = basic::Nack { delivery_tag: nack, multiple: false, requeue: false };
            ctx.sink.send_method(self.id, AMQPClass::Basic(basic::AMQPMethod::Nack(n)));
            c.acked = nack;
        }
        if upto > c.acked {
            let ack = basic::Ack { delivery_tag: upto, multiple: upto - c.acked > 1 };
            c.acked = upto;
            ctx.sink.send_method(self.id, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)));
        }
        if c.acked > from {
            ctx.sink.stats.confirm.add_serialised(c.acked - from);
            c.unconfirmed.store(c.published - c.acked, Ordering::Relaxed);
        }
    }

    pub(super) fn confirm_select(&mut self, ctx: &ChannelCtx<'_>, nowait: bool) -> AmqpResult<()> {
        if self.tx.is_some() {
            return Err(AmqpError::precondition_failed("cannot switch from tx to confirm mode"));
        }
        let unconfirmed = self.confirms.get_or_insert_with(Confirms::default).unconfirmed.clone();
        if let Some(ch) = ctx.sink.lock().channels.get_mut(&self.id) {
            ch.confirm = true;
            ch.unconfirmed = Some(unconfirmed);
        }
        if !nowait {
            self.reply(ctx, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})));
        }
        Ok(())
    }

    pub(super) fn tx_select(&mut self, ctx: &ChannelCtx<'_>) -> AmqpResult<()> {
        if self.confirms.is_some() {
            return Err(AmqpError::precondition_failed("cannot switch from confirm to tx mode"));
        }
        self.tx.get_or_insert_with(Transaction::default);
        if let Some(ch) = ctx.sink.lock().channels.get_mut(&self.id) {
            ch.transactional = true;
        }
        self.reply(ctx, AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})));
        Ok(())
    }

    pub(super) fn tx_commit(&mut self, ctx: &ChannelCtx<'_>) -> AmqpResult<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(AmqpError::precondition_failed("channel is not transactional"));
        };
        let publishes = std::mem::take(&mut tx.publishes);
        let settlements = std::mem::take(&mut tx.settlements);
        let mut ticket = None;
        for (msg, routed, mandatory) in publishes {
            ticket = ticket.max(self.deliver_routed(ctx, &msg, &routed, mandatory).0);
        }
        for (taken, requeue) in settlements {
            if requeue == Some(true) {
                super::ack::requeue(taken);
            } else if requeue == Some(false) {
                super::ack::discard(&taken);
            } else {
                super::ack::settle(&taken);
            }
        }
        // Durable: commit-ok waits for the journal when the commit stored persistent messages
        // (or when an earlier commit-ok is still waiting: they go out in order).
        match (ticket, self.tx.as_mut()) {
            (Some(ticket), Some(tx)) => tx.commits_on_disk_wait.push_back(ticket),
            (None, Some(tx)) if !tx.commits_on_disk_wait.is_empty() => {
                let last = tx.commits_on_disk_wait.back().copied().unwrap_or(0);
                tx.commits_on_disk_wait.push_back(last);
            }
            _ => self.reply(ctx, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {}))),
        }
        self.dispatch_consumer_queues(ctx);
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ctx: &ChannelCtx<'_>) -> AmqpResult<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(AmqpError::precondition_failed("channel is not transactional"));
        };
        let settlements = std::mem::take(&mut tx.settlements);
        tx.publishes.clear();
        // Settled deliveries become unacked again, as RabbitMQ does on rollback.
        self.restore_unacked(ctx, settlements.into_iter().flat_map(|(taken, _)| taken));
        self.reply(ctx, AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})));
        Ok(())
    }
}
