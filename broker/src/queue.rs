//! `Queue`: a classic FIFO queue. Its state sits behind one short lock; publishing, requeueing
//! and consumer changes dispatch ready messages to consumers with credit, round-robin.
//!
//! Lock order: a queue's lock may be held while a connection's sink lock is taken (to hand over
//! a delivery), never the other way round.

use std::sync::Arc;

use amq_protocol::types::{FieldTable, ShortString};
use parking_lot::Mutex;

use crate::clock::now_ms;
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::names::queue_res;
use crate::queue_args::QueueArgs;
use crate::stream::{Retention, StartAt, StreamLog};
use warren_persistence::{Published, Store};

mod ext;
mod paging;
mod pressure;
pub mod routed;
pub use crate::ready::{QueuedMessage, ReadyList};
pub use ext::{Enqueued, QueueOwner};
use paging::Paging;

/// Where a consumer's deliveries go: its connection (`sink::ConnectionSink`). A trait, so that
/// the queue does not depend on the connection side.
pub trait DeliveryTarget: Send + Sync + std::fmt::Debug {
    /// The connection's id (the management API's consumer listing).
    fn connection_id(&self) -> u64;
    /// The consumer's prefetch count (basic.qos), for `list_consumers`.
    fn prefetch(&self, channel: u16, consumer_id: u64) -> u16;
    /// Called by a queue with its lock held: deliver up to `max` messages from the front of
    /// `ready` to `consumer` as far as its credit goes. Returns how many were delivered.
    fn try_deliver(&self, consumer: &Consumer, queue: &Arc<Queue>, ready: &mut ReadyList, max: usize) -> usize;
    /// The queue of a consumer went away: forget the consumer and, if the client asked for
    /// it, tell it with basic.cancel.
    fn cancelled_by_server(&self, channel: u16, consumer_id: u64);
}

/// A consumer as the queue sees it: where to hand deliveries.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub id: u64,
    pub tag: ShortString,
    pub channel: u16,
    pub no_ack: bool,
    pub exclusive: bool,
    pub sink: Arc<dyn DeliveryTarget>,
    /// Where it starts reading when the queue is a stream (`x-stream-offset`).
    pub stream_start: StartAt,
    /// x-priority: higher-priority consumers with credit get messages first.
    pub priority: i64,
}

/// A consumer as `list_consumers` shows it.
#[derive(Clone, Debug)]
pub struct ConsumerInfo {
    pub tag: ShortString,
    pub connection: u64,
    pub channel: u16,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch: u16,
}

/// A queue's counts, as the management API lists them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Ready messages (a stream: its entries), in memory or paged out.
    pub ready: u64,
    /// Body bytes of the ready messages held in memory.
    pub ready_bytes_in_memory: u64,
    /// Ready messages whose bodies are on disk only.
    pub paged_out: u64,
    pub consumers: usize,
}

#[derive(Debug)]
pub struct Queue {
    pub name: ShortString,
    pub vhost: String,
    /// The queue's name in the journal: unique across vhosts (see `journal_name`).
    pub journal_name: String,
    pub durable: bool,
    /// The connection that owns an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// A stream queue (`x-queue-type: stream`): an append-only log read by offset.
    stream: bool,
    /// Where persistent messages are journaled (durable, non-exclusive queues with a store).
    store: Option<Arc<Store>>,
    /// Where messages the journal does not hold go when they are behind the in-memory window
    /// (a directory of its own under the data directory's `spill/`; None without a store).
    spill_dir: Option<std::path::PathBuf>,
    state: Mutex<QueueState>,
    /// Over its memory bound: publishers into it are throttled (see `pressure`).
    pressure: std::sync::atomic::AtomicBool,
    /// Messages delivered, got, acked (see `crate::stats`); its `publish` count is kept in
    /// the state (see [`Queue::message_stats`]).
    pub stats: crate::stats::MessageStats,
    /// The arguments warren acts on, parsed once.
    pub args: QueueArgs,
    /// Its vhost, for dead-lettering and x-expires.
    owner_vhost: std::sync::OnceLock<std::sync::Weak<dyn QueueOwner>>,
    /// Itself, for the tasks it starts (TTL timer, paging waiter); set by `attach`.
    me: std::sync::OnceLock<std::sync::Weak<Queue>>,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: ReadyList,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    next_seq: u64,
    /// Messages published into the queue: counted here, beside `next_seq` under the lock the
    /// publish holds anyway, rather than on a cache line of its own per queue (a fan-out to
    /// ten queues would touch ten more lines per message); copied to `stats.publish` when read.
    published: u64,
    deleted: bool,
    /// The log of a stream queue (None for classic queues).
    stream: Option<StreamLog>,
    x: ext::ExtState,
    /// Messages beyond the in-memory window (journaled queues).
    paging: Paging,
}

/// What a deleted queue leaves behind.
pub struct Deleted {
    pub message_count: u32,
    pub consumers: Vec<Consumer>,
}

impl Queue {
    pub fn new(
        name: ShortString,
        vhost: &str,
        durable: bool,
        exclusive_owner: Option<u64>,
        auto_delete: bool,
        arguments: FieldTable,
        store: Option<Arc<Store>>,
    ) -> Self {
        let spill_dir = store.as_ref().map(|s| s.spill_root.join(paging::spill_dir_name()));
        let store = store.filter(|_| durable && exclusive_owner.is_none());
        let stream = crate::stream::is_stream(&arguments);
        let args = QueueArgs::parse(&arguments);
        let state = QueueState {
            ready: ReadyList::with_priorities(args.max_priority.unwrap_or(0)),
            stream: stream.then(|| {
                let dir = store.as_ref().map(|s| s.journal.stream_dir(&journal_name(vhost, name.as_str())));
                StreamLog::new(Retention::from_arguments(&arguments).unwrap_or_default(), dir)
            }),
            ..Default::default()
        };
        Self {
            journal_name: journal_name(vhost, name.as_str()),
            name,
            vhost: vhost.to_owned(),
            durable,
            exclusive_owner,
            auto_delete,
            args,
            arguments,
            stream,
            store,
            spill_dir,
            state: Mutex::new(state),
            pressure: std::sync::atomic::AtomicBool::new(false),
            stats: Default::default(),
            owner_vhost: std::sync::OnceLock::new(),
            me: std::sync::OnceLock::new(),
        }
    }

    /// Whether persistent messages routed here must be journaled (classic durable queues).
    pub fn journaled(&self) -> bool {
        self.store.is_some() && !self.stream
    }

    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Append a message to a stream queue; returns the journal ticket that tells when the
    /// entry is on disk (None without a store).
    pub fn append_stream(self: &Arc<Self>, msg: &Message) -> Option<u64> {
        let mut st = self.state.lock();
        if st.deleted {
            return None;
        }
        st.stream.as_ref()?;
        st.published += 1;
        let now = now_ms();
        let log = st.stream.as_mut()?;
        let (offset, stamped) = log.append(msg, now);
        let ticket =
            self.store.as_ref().map(|s| s.journal.stream_append(&self.journal_name, offset, now, &stamped.to_stored()));
        if let (Some(ticket), Some(store)) = (ticket, &self.store) {
            log.stored(ticket);
            log.trim_tail(store.journal.synced_now());
        }
        if let Some(first) = log.enforce_retention(now)
            && let Some(store) = &self.store
        {
            store.journal.stream_retain(&self.journal_name, first);
        }
        self.dispatch_locked(&mut st);
        ticket
    }

    /// Put back a stream as a restart found it.
    pub fn restore_stream(&self, recovered: warren_persistence::RecoveredStream) {
        if let Some(log) = self.state.lock().stream.as_mut() {
            log.restore(recovered);
        }
    }

    /// Apply retention now: after recovery (entries may have aged while the broker was down)
    /// and from the server's periodic sweep.
    /// The sweep also lets go of in-memory copies the journal has synced since the last append.
    pub fn enforce_stream_retention(&self) {
        let mut st = self.state.lock();
        let Some(log) = st.stream.as_mut() else { return };
        if let Some(store) = &self.store {
            log.trim_tail(store.journal.synced_now());
        }
        if let Some(first) = log.enforce_retention(now_ms())
            && let Some(store) = &self.store
        {
            store.journal.stream_retain(&self.journal_name, first);
        }
    }

    /// Take the next sequence number, for a message journaled before it is enqueued.
    pub fn reserve_seq(&self) -> u64 {
        let mut st = self.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        seq
    }

    /// Enqueue a journaled message at its reserved sequence number; `stored` says where the
    /// journal holds it, so it can be paged out.
    pub fn publish_at(self: &Arc<Self>, seq: u64, msg: Arc<Message>, stored: Published) -> Enqueued {
        let mut st = self.state.lock();
        if st.deleted {
            return Enqueued::Accepted;
        }
        st.next_seq = st.next_seq.max(seq + 1);
        st.published += 1;
        self.enqueue_locked(&mut st, QueuedMessage { seq, msg, redelivered: false }, Some(stored))
    }

    /// Enqueue a message read back after a restart (redelivered: it may have been delivered).
    fn publish_at_recovered(self: &Arc<Self>, seq: u64, msg: Arc<Message>) {
        let mut st = self.state.lock();
        st.next_seq = st.next_seq.max(seq + 1);
        self.enqueue_locked(&mut st, QueuedMessage { seq, msg, redelivered: true }, None);
    }

    /// A message left this queue for good (acked, rejected, delivered without ack).
    pub fn settle(&self, seq: u64, msg: &Message) {
        if self.stream {
            return; // a stream keeps its entries; an ack only returns credit
        }
        if let Some(store) = &self.store
            && let Some(id) = msg.journal_id()
        {
            store.journal.ack(&self.journal_name, seq, id);
        }
    }

    fn stored_ids(messages: &ReadyList) -> Vec<(u64, u64)> {
        messages.iter().filter_map(|m| Some((m.seq, m.msg.journal_id()?))).collect()
    }

    pub fn describe(&self) -> String {
        queue_res(self.name.as_str(), &self.vhost)
    }

    /// What RabbitMQ answers when a stream is asked for something only classic queues do
    /// (540, closing the connection).
    pub fn not_supported_by_stream(&self, what: &str) -> AmqpError {
        AmqpError::not_implemented(format!("{what} not supported by stream queues {}", self.describe()))
    }

    /// The consumers, as `list_consumers` shows them.
    pub fn consumer_list(&self) -> Vec<ConsumerInfo> {
        // copied out, so the queue's lock is not held while each sink's is taken
        let consumers = self.state.lock().consumers.to_vec();
        consumers
            .into_iter()
            .map(|c| ConsumerInfo {
                prefetch: c.sink.prefetch(c.channel, c.id),
                connection: c.sink.connection_id(),
                tag: c.tag,
                channel: c.channel,
                ack_required: !c.no_ack,
                exclusive: c.exclusive,
            })
            .collect()
    }

    /// Its message counters, the publish count brought up to date from the state.
    pub fn message_stats(&self) -> &crate::stats::MessageStats {
        let published = self.state.lock().published;
        self.stats.publish.set(published);
        &self.stats
    }

    /// What the management API shows of the queue's state (read under its lock once).
    pub fn stats(&self) -> QueueStats {
        let mut st = self.state.lock();
        if let Some(log) = &st.stream {
            let len = log.len();
            return QueueStats { ready: len, ready_bytes_in_memory: 0, paged_out: 0, consumers: st.consumers.len() };
        }
        self.expire_head_locked(&mut st);
        let paged_out = Self::spilled_len(&st) as u64;
        QueueStats {
            ready: st.ready.len() as u64 + paged_out,
            ready_bytes_in_memory: st.ready.bytes(),
            paged_out,
            consumers: st.consumers.len(),
        }
    }

    /// `(ready messages, consumers)` as declare-ok reports them.
    pub fn counts(&self) -> (u32, u32) {
        let mut st = self.state.lock();
        if st.stream.is_some() {
            return (0, 0); // RabbitMQ 3.10 reports neither for a stream
        }
        self.expire_head_locked(&mut st);
        ((st.ready.len() + Self::spilled_len(&st)) as u32, st.consumers.len() as u32)
    }

    pub fn publish(self: &Arc<Self>, msg: Arc<Message>) -> Enqueued {
        if self.stream {
            self.append_stream(&msg);
            return Enqueued::Accepted;
        }
        let mut st = self.state.lock();
        if st.deleted {
            return Enqueued::Accepted;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.published += 1;
        self.enqueue_locked(&mut st, QueuedMessage { seq, msg, redelivered: false }, None)
    }

    /// Put messages back in their original place, marked redelivered.
    pub fn requeue(self: &Arc<Self>, items: impl IntoIterator<Item = (u64, Arc<Message>)>) {
        if self.stream {
            return; // nothing goes back into a stream: the entries never left it
        }
        let mut st = self.state.lock();
        if st.deleted {
            // Its journal entry was purged with the queue; only the segment reference is left.
            for (_, msg) in items {
                if let Some(store) = &self.store
                    && let Some(id) = msg.journal_id()
                {
                    store.journal.ack_many(&self.journal_name, &[(0, id)]);
                }
            }
            return;
        }
        for (seq, msg) in items {
            self.insert_ordered(&mut st.ready, QueuedMessage { seq, msg, redelivered: true });
        }
        self.dispatch_locked(&mut st);
    }

    /// Hand ready messages to consumers that have credit.
    pub fn dispatch(self: &Arc<Self>) {
        let mut st = self.state.lock();
        self.dispatch_locked(&mut st);
    }

    fn dispatch_locked(self: &Arc<Self>, st: &mut QueueState) {
        let n = st.consumers.len();
        if n == 0 {
            return;
        }
        if st.stream.is_some() {
            self.dispatch_stream(st);
            return;
        }
        if self.needs_ext_dispatch(st) {
            return self.dispatch_ext_locked(st);
        }
        // With one consumer, hand over as much as its credit allows in one go.
        let batch = if n == 1 { usize::MAX } else { 1 };
        'messages: loop {
            self.page_in_locked(st);
            if st.ready.is_empty() {
                break;
            }
            for i in 0..n {
                let idx = (st.next_consumer + i) % n;
                let QueueState { ready, consumers, .. } = &mut *st;
                let consumer = &consumers[idx];
                if consumer.sink.try_deliver(consumer, self, ready, batch) > 0 {
                    st.next_consumer = (idx + 1) % n;
                    continue 'messages;
                }
            }
            break;
        }
    }

    /// Every stream consumer reads every entry, each from its own cursor, within its credit.
    fn dispatch_stream(self: &Arc<Self>, st: &mut QueueState) {
        let QueueState { consumers, stream, .. } = st;
        let Some(log) = stream.as_mut() else { return };
        for consumer in consumers.iter() {
            loop {
                let mut unread = log.unread(consumer.id);
                let available = unread.len();
                let Some(first_seq) = unread.front().map(|m| m.seq) else { break };
                let delivered = consumer.sink.try_deliver(consumer, self, &mut unread, usize::MAX);
                log.advance(consumer.id, first_seq, delivered, unread);
                if delivered < available {
                    break;
                }
            }
        }
    }

    /// The next ready message for basic.get, and how many remain.
    pub fn get(&self) -> Option<(QueuedMessage, u32)> {
        let mut st = self.state.lock();
        self.expire_head_locked(&mut st);
        if self.args.expires.is_some() {
            st.x.last_used = tokio::time::Instant::now();
        }
        self.page_in_now(&mut st);
        let m = st.ready.pop_front()?;
        Some((m, (st.ready.len() + Self::spilled_len(&st)) as u32))
    }

    /// Register a consumer. `on_accepted` runs once the consumer is accepted, before any
    /// delivery, so consume-ok reaches the client first.
    pub fn add_consumer(self: &Arc<Self>, consumer: Consumer, on_accepted: impl FnOnce()) -> AmqpResult<()> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(AmqpError::not_found(format!("no {}", self.describe())));
        }
        if st.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!("{} in exclusive use", self.describe())));
        }
        on_accepted();
        if let Some(log) = st.stream.as_mut() {
            log.add_consumer(consumer.id, consumer.stream_start);
        }
        st.consumers.push(consumer);
        self.dispatch_locked(&mut st);
        Ok(())
    }

    /// Remove a consumer; returns the number of consumers left, or None if it was not here.
    pub fn remove_consumer(self: &Arc<Self>, id: u64) -> Option<usize> {
        let mut st = self.state.lock();
        let pos = st.consumers.iter().position(|c| c.id == id)?;
        st.consumers.remove(pos);
        if let Some(log) = st.stream.as_mut() {
            log.remove_consumer(id);
        }
        st.x.last_used = tokio::time::Instant::now();
        if st.next_consumer > pos {
            st.next_consumer -= 1;
        }
        if st.next_consumer >= st.consumers.len() {
            st.next_consumer = 0;
        }
        if pos == 0 && self.args.single_active_consumer {
            // The next consumer becomes the active one.
            self.dispatch_locked(&mut st);
        }
        Some(st.consumers.len())
    }

    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let dropped = st.ready.take_all();
        let spilled = Self::drop_spilled(&mut st);
        // Unacked messages are not purged (RabbitMQ): journal exactly the ones dropped.
        if let Some(store) = &self.store {
            let mut acks = Self::stored_ids(&dropped);
            acks.extend(spilled.acks);
            if !acks.is_empty() {
                store.journal.ack_many(&self.journal_name, &acks);
            }
            if !spilled.ranges.is_empty() {
                store.journal.ack_ranges(&self.journal_name, &spilled.ranges, spilled.released);
            }
        }
        (dropped.len() + spilled.count) as u32
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// Mark the queue deleted: its messages are dropped and its consumers handed back.
    pub fn mark_deleted(&self) -> Deleted {
        let mut st = self.state.lock();
        st.deleted = true;
        let dropped = st.ready.take_all();
        let spilled = Self::drop_spilled(&mut st);
        if let Some(log) = st.stream.take() {
            if let Some(store) = &self.store {
                store.journal.stream_delete(&self.journal_name);
            }
            return Deleted { message_count: log.len() as u32, consumers: std::mem::take(&mut st.consumers) };
        }
        if let Some(store) = &self.store {
            let released = Self::stored_ids(&dropped)
                .into_iter()
                .chain(spilled.acks)
                .map(|(_, id)| (id, 1))
                .chain(spilled.released)
                .collect();
            store.journal.purge(&self.journal_name, st.next_seq, released);
        }
        let message_count = (dropped.len() + spilled.count) as u32;
        Deleted { message_count, consumers: std::mem::take(&mut st.consumers) }
    }
}

/// A queue's name in the journal: its name in the default vhost (as before vhosts could be
/// added), `vhost` NUL `name` in any other, so same-named queues of two vhosts stay apart.
pub fn journal_name(vhost: &str, name: &str) -> String {
    if vhost == "/" { name.to_owned() } else { format!("{vhost}\u{0}{name}") }
}
