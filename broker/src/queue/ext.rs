//! RabbitMQ queue extensions on a classic queue: message TTL (x-message-ttl and the
//! `expiration` property), length limits with x-overflow, priorities (x-max-priority),
//! dead-lettering, x-expires, consumer priorities and single active consumer.
//!
//! Expired messages are dropped (or dead-lettered) when they reach the head of the queue, as
//! in RabbitMQ; a timer task per queue does it when nothing else touches the queue.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Queue, QueueState, QueuedMessage, ReadyList};
use crate::dead_letter::{DeadLetter, Reason};
use crate::message::Message;
use crate::queue_args::Overflow;

/// Extension state kept under the queue's lock.
#[derive(Debug)]
pub struct ExtState {
    /// A message with a TTL may be waiting: dispatch checks the head one message at a time.
    pub(super) expiring: bool,
    /// Wakes the expiry timer task (started with the first expiring message).
    pub(super) timer: Option<Arc<Notify>>,
    /// Last use (declare, basic.get, consumer leaving), for x-expires.
    pub(super) last_used: Instant,
}

impl Default for ExtState {
    fn default() -> Self {
        Self { expiring: false, timer: None, last_used: Instant::now() }
    }
}

/// What publishing did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Accepted,
    /// x-overflow reject-publish(-dlx): the publisher gets a basic.nack.
    Rejected,
}

/// What a queue asks of the vhost that holds it: where its dead letters go, and its removal
/// once x-expires runs out. (A trait, so that the queue does not depend on the vhost.)
pub trait QueueOwner: Send + Sync {
    /// Take a dead letter. Called with the queue's lock held: hand it on, route it later.
    fn dead_letter(&self, dl: DeadLetter);
    /// Delete `queue`: it has been unused for its x-expires.
    fn expire(&self, queue: &Arc<Queue>);
}

impl Queue {
    /// Connect the queue to its vhost (dead letters, x-expires) and start its x-expires timer.
    pub fn attach(self: &Arc<Self>, vhost: Weak<dyn QueueOwner>) {
        let _ = self.owner_vhost.set(vhost.clone());
        let _ = self.me.set(Arc::downgrade(self));
        if let Some(ms) = self.args.expires
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(expires_timer(Arc::downgrade(self), vhost, Duration::from_millis(ms)));
        }
    }

    /// The queue was used (declared again, basic.get): the x-expires countdown restarts.
    pub fn touch(&self) {
        if self.args.expires.is_some() {
            self.state.lock().x.last_used = Instant::now();
        }
    }

    fn dead_letter_locked(&self, msg: Arc<Message>, reason: Reason) {
        let Some(exchange) = self.args.dead_letter_exchange.clone() else { return };
        let Some(vhost) = self.owner_vhost.get().and_then(Weak::upgrade) else { return };
        vhost.dead_letter(DeadLetter {
            msg,
            queue: self.name.clone(),
            reason,
            exchange,
            routing_key: self.args.dead_letter_routing_key.clone(),
        });
    }

    /// A delivery was rejected without requeue (basic.reject / basic.nack).
    pub fn rejected(&self, msg: &Arc<Message>) {
        self.dead_letter_locked(msg.clone(), Reason::Rejected);
    }

    /// When a message expires in this queue, if it does.
    fn expiry(&self, msg: &Message) -> Option<Instant> {
        let ttl = match (self.args.message_ttl, msg.expiration_ms()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(msg.published_at + Duration::from_millis(ttl))
    }

    /// Drop (and dead-letter) expired messages at the head.
    pub(super) fn expire_head_locked(&self, st: &mut QueueState) {
        if !st.x.expiring {
            return;
        }
        let now = Instant::now();
        loop {
            if st.ready.is_empty() {
                self.page_in_locked(st);
            }
            let Some(head) = st.ready.front() else { break };
            if self.expiry(&head.msg).is_none_or(|at| at > now) {
                break;
            }
            if let Some(qm) = st.ready.pop_front() {
                self.settle(qm.seq, &qm.msg);
                self.dead_letter_locked(qm.msg, Reason::Expired);
            }
        }
    }

    /// `watch_expiry` from where only `&self` is at hand (paging in).
    pub(super) fn watch_expiry_locked(&self, st: &mut QueueState, msg: &Message) {
        if let Some(me) = self.me.get().and_then(Weak::upgrade) {
            me.watch_expiry(st, msg);
        }
    }

    /// Note a message that may expire: dispatch checks heads and the timer runs.
    fn watch_expiry(self: &Arc<Self>, st: &mut QueueState, msg: &Message) {
        if self.expiry(msg).is_none() {
            return;
        }
        st.x.expiring = true;
        match &st.x.timer {
            Some(n) => n.notify_one(),
            None => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let notify = Arc::new(Notify::new());
                    rt.spawn(ttl_timer(Arc::downgrade(self), notify.clone()));
                    st.x.timer = Some(notify);
                }
            }
        }
    }

    fn priority_of(&self, msg: &Message) -> u8 {
        match self.args.max_priority {
            Some(max) => msg.properties.priority().unwrap_or(0).min(max),
            None => 0,
        }
    }

    /// Insert in delivery order: by priority (highest first) when the queue has priorities,
    /// then by sequence number.
    pub(super) fn insert_ordered(&self, ready: &mut ReadyList, qm: QueuedMessage) {
        ready.insert(self.priority_of(&qm.msg), qm);
    }

    /// x-overflow reject-publish(-dlx): whether one more message would be over a limit.
    fn would_overflow(&self, st: &QueueState, msg: &Message) -> bool {
        self.args.max_length.is_some_and(|max| st.ready.len() as u64 + 1 > max)
            || self.args.max_length_bytes.is_some_and(|max| st.ready.bytes() + msg.body_size() > max)
    }

    fn over_limit(&self, st: &QueueState) -> bool {
        self.args.max_length.is_some_and(|max| st.ready.len() as u64 > max)
            || self.args.max_length_bytes.is_some_and(|max| st.ready.bytes() > max)
    }

    /// Enqueue a published message with the extension rules: TTL watch, overflow, priority
    /// order; then dispatch, then drop-head if still over a limit.
    pub(super) fn enqueue_locked(
        self: &Arc<Self>,
        st: &mut QueueState,
        qm: QueuedMessage,
        stored: Option<warren_persistence::Published>,
    ) -> Enqueued {
        self.expire_head_locked(st);
        if self.args.limited() && self.args.overflow != Overflow::DropHead && self.would_overflow(st, &qm.msg) {
            self.settle(qm.seq, &qm.msg);
            if self.args.overflow == Overflow::RejectPublishDlx {
                self.dead_letter_locked(qm.msg, Reason::Maxlen);
            }
            return Enqueued::Rejected;
        }
        if self.expiry(&qm.msg).is_some_and(|at| at <= Instant::now()) {
            self.deliver_now_or_expire(st, qm);
            return Enqueued::Accepted;
        }
        self.watch_expiry(st, &qm.msg);
        if self.should_spill(st, &qm.msg) {
            self.spill(st, qm, stored);
        } else {
            self.insert_ordered(&mut st.ready, qm);
        }
        self.dispatch_locked(st);
        if self.args.limited() {
            while self.over_limit(st) {
                let Some(head) = st.ready.pop_front() else { break };
                self.settle(head.seq, &head.msg);
                self.dead_letter_locked(head.msg, Reason::Maxlen);
            }
        }
        self.note_memory_locked(st);
        Enqueued::Accepted
    }

    /// A message whose TTL is over on arrival (`x-message-ttl` 0): as RabbitMQ, it goes to a
    /// consumer that can take it right now (nothing ahead of it, credit to spare), else it
    /// expires at once.
    fn deliver_now_or_expire(self: &Arc<Self>, st: &mut QueueState, qm: QueuedMessage) {
        let delivered = if st.ready.is_empty() && !st.consumers.is_empty() {
            st.ready.push_back(qm);
            self.deliver_one_locked(st)
        } else {
            st.ready.push_back(qm);
            false
        };
        if !delivered && let Some(qm) = st.ready.pop_back() {
            self.settle(qm.seq, &qm.msg);
            self.dead_letter_locked(qm.msg, Reason::Expired);
        }
    }

    /// Hand the head to one consumer, in extension order (single active consumer, consumer
    /// priorities, round-robin among equals); false if none has credit.
    fn deliver_one_locked(self: &Arc<Self>, st: &mut QueueState) -> bool {
        let n = st.consumers.len();
        let mut order: Vec<usize> = if self.args.single_active_consumer {
            vec![0]
        } else {
            (0..n).map(|i| (st.next_consumer + i) % n).collect()
        };
        // Stable: round-robin order kept among consumers of equal priority.
        order.sort_by_key(|&i| std::cmp::Reverse(st.consumers[i].priority));
        for idx in order {
            let QueueState { ready, consumers, .. } = &mut *st;
            let consumer = &consumers[idx];
            if consumer.sink.try_deliver(consumer, self, ready, 1) > 0 {
                st.next_consumer = (idx + 1) % n;
                return true;
            }
        }
        false
    }

    /// Whether dispatch needs the extension path (priorities, single active consumer, TTL).
    pub(super) fn needs_ext_dispatch(&self, st: &QueueState) -> bool {
        st.x.expiring || self.args.single_active_consumer || st.consumers.iter().any(|c| c.priority != 0)
    }

    /// Dispatch one message at a time: expired heads go first; with a single active consumer
    /// only the first consumer receives; otherwise the highest-priority consumers with credit
    /// receive, round-robin among equals.
    pub(super) fn dispatch_ext_locked(self: &Arc<Self>, st: &mut QueueState) {
        loop {
            self.expire_head_locked(st);
            self.page_in_locked(st);
            if st.ready.is_empty() || st.consumers.is_empty() {
                return;
            }
            if !self.deliver_one_locked(st) {
                return;
            }
        }
    }

    /// The next head expiry, after dropping expired heads.
    fn next_expiry(&self) -> Option<Instant> {
        let mut st = self.state.lock();
        if st.deleted {
            return None;
        }
        self.expire_head_locked(&mut st);
        st.ready.front().and_then(|m| self.expiry(&m.msg))
    }

    /// x-expires: unused since `last_used + ttl` (no consumers), or still in use.
    fn unused_until(&self, ttl: Duration) -> Option<Instant> {
        let st = self.state.lock();
        if st.deleted || !st.consumers.is_empty() {
            return None;
        }
        Some(st.x.last_used + ttl)
    }
}

/// Drop expired messages at the head when their time comes.
async fn ttl_timer(queue: Weak<Queue>, notify: Arc<Notify>) {
    loop {
        let next = {
            let Some(q) = queue.upgrade() else { return };
            if q.is_deleted() {
                return;
            }
            q.next_expiry()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

/// Delete the queue once it has been unused for x-expires.
async fn expires_timer(queue: Weak<Queue>, vhost: Weak<dyn QueueOwner>, ttl: Duration) {
    loop {
        let deadline = {
            let Some(q) = queue.upgrade() else { return };
            if q.is_deleted() {
                return;
            }
            q.unused_until(ttl)
        };
        match deadline {
            Some(at) if at <= Instant::now() => {
                if let (Some(q), Some(vh)) = (queue.upgrade(), vhost.upgrade()) {
                    tracing::debug!(queue = %q.name, "queue expired (x-expires)");
                    vh.expire(&q);
                }
                return;
            }
            Some(at) => tokio::time::sleep_until(at).await,
            // In use: look again later (a consumer leaving restarts the countdown).
            None => tokio::time::sleep(ttl.min(Duration::from_secs(1))).await,
        }
    }
}
