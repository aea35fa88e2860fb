//! Memory pressure: a queue whose messages in memory pass a bound tells the connections that
//! publish into it to stop reading from their clients until it has drained to half of it
//! (RabbitMQ's credit flow, per publisher; the memory alarm stays the global backstop).
//!
//! Queues that page (see `paging`) hold a bounded window in memory; they come under pressure
//! when the disk falls behind their spill writes. The memory bound is for what cannot page:
//! priority queues, and every queue of a broker without a data directory.

use std::sync::atomic::Ordering;

use super::{Queue, QueueState};

/// A queue under pressure holds more than this in memory (bodies plus an estimate per message).
const HIGH: u64 = 256 << 20;
/// ... and is released below this.
const LOW: u64 = HIGH / 2;
/// What a queued message costs beyond its body: the message, its header, the queue entry.
const PER_MESSAGE: u64 = 512;
/// A queue whose spill writes are this far behind (bytes held until the disk takes them)
/// is under pressure too...
const SPILL_HIGH: u64 = 32 << 20;
/// ... until they are this close.
const SPILL_LOW: u64 = 8 << 20;

impl Queue {
    /// What the queue's messages cost in memory, about.
    fn memory_cost(st: &QueueState) -> u64 {
        let (count, bytes) = Self::spilled_in_memory(st);
        st.ready.bytes() + bytes + (st.ready.len() + count) as u64 * PER_MESSAGE
    }

    /// After an enqueue: raise the pressure flag when over the bound.
    pub(super) fn note_memory_locked(&self, st: &QueueState) {
        let over = Self::memory_cost(st) > HIGH || Self::spill_unwritten(st) > SPILL_HIGH;
        if over && !self.pressure.swap(true, Ordering::Relaxed) {
            tracing::info!(queue = %self.name, "queue over its memory bound: its publishers are throttled");
        }
    }

    /// Whether publishers should pause (cheap: one atomic load per publish).
    pub fn under_pressure(&self) -> bool {
        self.pressure.load(Ordering::Relaxed)
    }

    /// Look again (a throttled publisher polls this): the pressure ends below half the bound,
    /// or when the queue is gone.
    pub fn recheck_pressure(&self) -> bool {
        if !self.under_pressure() {
            return false;
        }
        let st = self.state.lock();
        if st.deleted || (Self::memory_cost(&st) < LOW && Self::spill_unwritten(&st) < SPILL_LOW) {
            self.pressure.store(false, Ordering::Relaxed);
            tracing::info!(queue = %self.name, "queue back under its memory bound");
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use amq_protocol::types::FieldTable;
    use bytes::Bytes;

    use crate::message::Message;
    use crate::queue::Queue;

    fn message(size: usize) -> Arc<Message> {
        Arc::new(Message::derived("".into(), "q".into(), Default::default(), Bytes::from(vec![0u8; size])))
    }

    #[test]
    fn pressure_rises_over_the_bound_and_ends_below_half() {
        let q = Arc::new(Queue::new("q".into(), "/", false, None, false, FieldTable::default(), None));
        let body = 1 << 20;
        let mut n = 0;
        while !q.under_pressure() {
            q.publish(message(body));
            n += 1;
            assert!(n < 1000, "no pressure after {n} MiB");
        }
        assert!(n >= 255, "pressure after only {n} MiB");
        assert!(q.recheck_pressure(), "still over half");
        while q.get().is_some_and(|(_, left)| left as u64 * (body as u64 + super::PER_MESSAGE) >= super::LOW) {}
        assert!(!q.recheck_pressure(), "under half: released");
        assert!(!q.under_pressure());
    }
}
