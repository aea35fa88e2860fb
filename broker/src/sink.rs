//! `ConnectionSink`: where queues hand deliveries to a connection, and where everything the
//! connection sends is encoded before the writer task flushes it.
//!
//! It holds, behind one short lock, the outgoing byte buffer and each channel's delivery
//! state (delivery tags, unacked messages, consumers and their prefetch credit), so a queue can
//! deliver without a round trip through the connection task. The writer task swaps the buffer
//! out and writes it in one syscall: writes are batched by construction.
//!
//! Write-through: while a connection task handles what it read (see [`DeferWrites`]), sinks it
//! filled are not woken one by one; at the end of the batch each is written straight to its
//! socket from that task when its writer is idle, saving the writer's wake-up (a futex wake and
//! a context switch, most of the latency at low rates). Anything the socket does not take at
//! once goes to the writer task as before.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::AMQPClass;
use amq_protocol::types::ShortString;
use parking_lot::{Mutex, MutexGuard};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc};

use crate::connection::codec;
use crate::message::Message;
use crate::queue::{Consumer, DeliveryTarget, Queue};
use crate::ready::ReadyList;

/// Above this many unflushed bytes, queues stop handing deliveries to the connection.
pub const HIGH_WATER: usize = 1 << 20;
/// Write-through takes at most this many bytes; more wake the writer task.
const WRITE_THROUGH_MAX: usize = 4096;

/// A delivery the client has not acknowledged yet.
#[derive(Debug)]
pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub seq: u64,
    pub msg: Arc<Message>,
    /// The consumer it went to; None for basic.get.
    pub consumer: Option<u64>,
}

#[derive(Debug)]
pub struct ConsumerState {
    pub tag: ShortString,
    pub queue: Arc<Queue>,
    pub no_ack: bool,
    pub prefetch: u16,
    pub unacked: u32,
}

/// One channel's delivery state.
#[derive(Debug, Default)]
pub struct ChannelDeliveries {
    next_tag: u64,
    pub unacked: VecDeque<Unacked>,
    /// basic.qos global=false: the limit given to consumers created from now on.
    pub consumer_prefetch: u16,
    /// basic.qos global=true: the limit shared by all consumers on the channel.
    pub global_prefetch: u16,
    pub consumers: HashMap<u64, ConsumerState>,
    /// False once the channel is closing: no more deliveries.
    pub active: bool,
    /// In confirm mode (confirm.select), for listings.
    pub confirm: bool,
    /// Publishes not confirmed yet (confirm mode; written by the connection's task, read by
    /// listings).
    pub unconfirmed: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Transactional (tx.select), for listings.
    pub transactional: bool,
}

impl ChannelDeliveries {
    pub fn new() -> Self {
        Self { active: true, ..Default::default() }
    }

    pub fn next_delivery_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    pub fn consumer_by_tag(&self, tag: &str) -> Option<u64> {
        self.consumers.iter().find(|(_, c)| c.tag.as_str() == tag).map(|(id, _)| *id)
    }

    /// Remove acknowledged deliveries: `tag` alone, or every tag up to it with `multiple`
    /// (tag 0 with multiple means all). None if a named tag is unknown.
    pub fn take_unacked(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        let taken: Vec<Unacked> = if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            // Tags are in ascending order: a binary search, not a scan of a long unacked list.
            if tag != 0 && self.unacked.binary_search_by_key(&tag, |u| u.tag).is_err() {
                return None;
            }
            let n = self.unacked.partition_point(|u| u.tag <= upto);
            self.unacked.drain(..n).collect()
        } else {
            let pos = self.unacked.binary_search_by_key(&tag, |u| u.tag).ok()?;
            self.unacked.remove(pos).into_iter().collect()
        };
        for u in &taken {
            if let Some(c) = u.consumer.and_then(|id| self.consumers.get_mut(&id)) {
                c.unacked = c.unacked.saturating_sub(1);
            }
        }
        Some(taken)
    }
}

#[derive(Debug, Default)]
pub struct SinkState {
    pub out: Vec<u8>,
    /// No more deliveries: the connection is going away.
    pub closed: bool,
    /// The writer should exit once `out` is flushed.
    pub finished: bool,
    pub frame_max: u32,
    /// A queue stopped delivering because `out` was over HIGH_WATER.
    pub starved: bool,
    pub channels: HashMap<u16, ChannelDeliveries>,
    /// The socket, shared with the writer task for write-through (None once it is done).
    pub socket: Option<Arc<OwnedWriteHalf>>,
    /// The writer task holds bytes it has not written yet: nobody else may write now.
    pub writer_busy: bool,
}

#[derive(Debug)]
pub struct ConnectionSink {
    pub id: u64,
    /// The client understands basic.cancel from the server (consumer_cancel_notify).
    pub cancel_notify: bool,
    state: Mutex<SinkState>,
    wake_writer: Notify,
    /// Tells the connection task that the writer drained, so starved queues dispatch again.
    drained: mpsc::UnboundedSender<()>,
    /// Itself, to be put on this thread's list of sinks to flush (write-through).
    me: Weak<ConnectionSink>,
    /// On that list already.
    deferred: AtomicBool,
    /// What this connection published, was delivered, acked... (see `stats`).
    pub stats: Arc<crate::stats::MessageStats>,
    /// Bytes read and written on its socket.
    pub octets: crate::stats::Octets,
}

thread_local! {
    /// Write-through is on for the batch this thread is handling.
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
    /// Sinks filled during the batch, flushed when it ends.
    static TO_FLUSH: RefCell<Vec<Arc<ConnectionSink>>> = const { RefCell::new(Vec::new()) };
}

/// While alive, sinks filled on this thread are flushed when it drops instead of waking their
/// writers one by one. Create it around synchronous work only (no `.await` in between: the
/// task must not move to another thread while it is alive).
pub struct DeferWrites {
    outermost: bool,
}

impl DeferWrites {
    pub fn begin() -> Self {
        Self { outermost: !DEFERRING.with(|d| d.replace(true)) }
    }
}

impl Drop for DeferWrites {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        DEFERRING.with(|d| d.set(false));
        let sinks = TO_FLUSH.with(|t| std::mem::take(&mut *t.borrow_mut()));
        for sink in &sinks {
            sink.deferred.store(false, Ordering::Relaxed);
            sink.write_through();
        }
        // Keep the list's allocation for the next batch.
        TO_FLUSH.with(|t| {
            let mut list = t.borrow_mut();
            if list.is_empty() {
                *list = sinks;
                list.clear();
            }
        });
    }
}

impl ConnectionSink {
    pub fn new(
        id: u64,
        frame_max: u32,
        cancel_notify: bool,
        drained: mpsc::UnboundedSender<()>,
        socket: Option<Arc<OwnedWriteHalf>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id,
            cancel_notify,
            state: Mutex::new(SinkState { frame_max, socket, ..Default::default() }),
            wake_writer: Notify::new(),
            drained,
            me: me.clone(),
            deferred: AtomicBool::new(false),
            stats: Arc::default(),
            octets: Default::default(),
        })
    }

    /// Write what is buffered straight to the socket if the writer is idle; whatever the
    /// socket does not take now is left to the writer.
    fn write_through(&self) {
        let mut st = self.lock();
        if st.out.is_empty() {
            return;
        }
        // Big batches (high rates) go to the writer task, which writes them on another core
        // while this task reads on; write-through is for the few bytes of a quiet moment.
        let written = match (&st.socket, st.writer_busy) {
            (Some(socket), false) if st.out.len() <= WRITE_THROUGH_MAX => {
                // Would block, or an error the writer will meet and report: 0 written.
                let n = socket.try_write(&st.out).unwrap_or(0);
                self.octets.send.add(n as u64);
                n
            }
            _ => 0,
        };
        if written == st.out.len() {
            st.out.clear();
            if st.starved {
                st.starved = false;
                drop(st);
                self.signal_drained();
            }
            return;
        }
        st.out.drain(..written);
        drop(st);
        self.wake_writer.notify_one();
    }

    /// Lock the state; never hold the guard across an `.await` or while taking a queue lock.
    pub fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock()
    }

    /// There is something to send: wake the writer, or, inside [`DeferWrites`], note the sink
    /// for write-through at the end of the batch.
    pub fn wake_writer(&self) {
        if DEFERRING.with(Cell::get) {
            if !self.deferred.swap(true, Ordering::Relaxed)
                && let Some(me) = self.me.upgrade()
            {
                TO_FLUSH.with(|t| t.borrow_mut().push(me));
            }
            return;
        }
        self.wake_writer.notify_one();
    }

    pub async fn writer_wakeup(&self) {
        self.wake_writer.notified().await;
    }

    pub fn signal_drained(&self) {
        let _ = self.drained.send(());
    }

    /// Encode a frame and wake the writer.
    pub fn send(&self, frame: &AMQPFrame) {
        codec::write_frame(&mut self.lock().out, frame);
        self.wake_writer();
    }

    pub fn send_method(&self, channel: u16, method: AMQPClass) {
        self.send(&AMQPFrame::Method(channel, method));
    }

    /// Send a method followed by a message's content.
    pub fn send_with_content(&self, channel: u16, method: AMQPClass, msg: &Message) {
        {
            let mut st = self.lock();
            let frame_max = st.frame_max;
            codec::write_method(&mut st.out, channel, method);
            codec::write_content(&mut st.out, channel, &msg.header, &msg.body, frame_max);
        }
        self.wake_writer();
    }
}

/// A consumer's deliveries are written into its connection's buffer, here.
impl DeliveryTarget for ConnectionSink {
    fn connection_id(&self) -> u64 {
        self.id
    }

    fn prefetch(&self, channel: u16, consumer_id: u64) -> u16 {
        self.lock().channels.get(&channel).and_then(|ch| ch.consumers.get(&consumer_id)).map_or(0, |c| c.prefetch)
    }

    fn try_deliver(&self, consumer: &Consumer, queue: &Arc<Queue>, ready: &mut ReadyList, max: usize) -> usize {
        let mut guard = self.lock();
        let SinkState { out, closed, frame_max, starved, channels, .. } = &mut *guard;
        if *closed {
            return 0;
        }
        let Some(ch) = channels.get_mut(&consumer.channel) else { return 0 };
        if !ch.active {
            return 0;
        }
        let ChannelDeliveries { next_tag, unacked, global_prefetch, consumers, .. } = ch;
        let Some(cs) = consumers.get_mut(&consumer.id) else { return 0 };
        let mut delivered = 0;
        let mut redelivered = 0;
        while delivered < max {
            if out.len() >= HIGH_WATER {
                *starved = true;
                break;
            }
            if !cs.no_ack
                && ((cs.prefetch > 0 && cs.unacked >= u32::from(cs.prefetch))
                    || (*global_prefetch > 0 && unacked.len() >= usize::from(*global_prefetch)))
            {
                break;
            }
            let Some(qm) = ready.pop_front() else { break };
            redelivered += u64::from(qm.redelivered);
            *next_tag += 1;
            let tag = *next_tag;
            codec::write_deliver(
                out,
                consumer.channel,
                cs.tag.as_str(),
                tag,
                qm.redelivered,
                qm.msg.exchange.as_str(),
                qm.msg.routing_key.as_str(),
            );
            codec::write_content(out, consumer.channel, &qm.msg.header, &qm.msg.body, *frame_max);
            if cs.no_ack {
                queue.settle(qm.seq, &qm.msg);
            } else {
                cs.unacked += 1;
                unacked.push_back(Unacked {
                    tag,
                    queue: queue.clone(),
                    seq: qm.seq,
                    msg: qm.msg,
                    consumer: Some(consumer.id),
                });
            }
            delivered += 1;
        }
        if delivered > 0 {
            // under the queue's lock (the caller's) and this sink's
            let (n, acked) = (delivered as u64, !cs.no_ack);
            queue.stats.delivered(n, redelivered, acked, false, true);
            self.stats.delivered(n, redelivered, acked, false, true);
        }
        drop(guard);
        if delivered > 0 {
            self.wake_writer();
        }
        delivered
    }

    fn cancelled_by_server(&self, channel: u16, consumer_id: u64) {
        let mut st = self.lock();
        let Some(ch) = st.channels.get_mut(&channel) else { return };
        let Some(cs) = ch.consumers.remove(&consumer_id) else { return };
        if self.cancel_notify {
            let method = AMQPClass::Basic(amq_protocol::protocol::basic::AMQPMethod::Cancel(
                amq_protocol::protocol::basic::Cancel { consumer_tag: cs.tag, nowait: true },
            ));
            codec::write_method(&mut st.out, channel, method);
            drop(st);
            self.wake_writer();
        }
    }
}
