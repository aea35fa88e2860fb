//! The ready list: messages waiting for a consumer, in delivery order, with a running count
//! of their body bytes (so `x-max-length-bytes` and memory bounds are O(1) per message).
//!
//! A priority queue (`x-max-priority`) keeps one FIFO lane per priority and delivers from the
//! highest non-empty lane, so a publish of any priority costs O(1) (it was an insertion into
//! the middle of one long list: a move of every message behind it). Within a lane, messages
//! are in sequence order; a requeued one goes back to its place.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::message::Message;

/// A message waiting in a queue; `seq` orders it among the queue's messages for requeueing.
#[derive(Debug)]
pub struct QueuedMessage {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
}

#[derive(Debug)]
pub struct ReadyList {
    /// Index = priority; a queue without priorities has one lane.
    lanes: Vec<VecDeque<QueuedMessage>>,
    len: usize,
    bytes: u64,
}

impl Default for ReadyList {
    fn default() -> Self {
        Self::with_priorities(0)
    }
}

impl ReadyList {
    /// A list for priorities 0 to `max` (0: no priorities).
    pub fn with_priorities(max: u8) -> Self {
        Self { lanes: (0..=max).map(|_| VecDeque::new()).collect(), len: 0, bytes: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body bytes of every message in the list.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next message to deliver.
    pub fn front(&self) -> Option<&QueuedMessage> {
        self.lanes.iter().rev().find_map(VecDeque::front)
    }

    /// Every message, in delivery order.
    pub fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.lanes.iter().rev().flatten()
    }

    /// Take every message out, leaving an empty list with the same lanes.
    pub fn take_all(&mut self) -> ReadyList {
        let max = u8::try_from(self.lanes.len() - 1).unwrap_or(u8::MAX);
        std::mem::replace(self, Self::with_priorities(max))
    }

    /// Append to the lowest lane (a queue without priorities has only that one).
    pub fn push_back(&mut self, qm: QueuedMessage) {
        self.added(&qm);
        self.lanes[0].push_back(qm);
    }

    /// Put a message in its place: in lane `priority` (capped at the highest), by sequence.
    pub fn insert(&mut self, priority: u8, qm: QueuedMessage) {
        self.added(&qm);
        let top = self.lanes.len() - 1;
        let lane = &mut self.lanes[usize::from(priority).min(top)];
        if lane.back().is_none_or(|last| last.seq < qm.seq) {
            lane.push_back(qm);
        } else {
            let at = lane.partition_point(|m| m.seq < qm.seq);
            lane.insert(at, qm);
        }
    }

    /// Take the next message to deliver.
    pub fn pop_front(&mut self) -> Option<QueuedMessage> {
        let qm = self.lanes.iter_mut().rev().find_map(VecDeque::pop_front)?;
        self.removed(&qm);
        Some(qm)
    }

    /// Take the message that would be delivered last.
    pub fn pop_back(&mut self) -> Option<QueuedMessage> {
        let qm = self.lanes.iter_mut().find_map(VecDeque::pop_back)?;
        self.removed(&qm);
        Some(qm)
    }

    fn added(&mut self, qm: &QueuedMessage) {
        self.len += 1;
        self.bytes += qm.msg.body_size();
    }

    fn removed(&mut self, qm: &QueuedMessage) {
        self.len -= 1;
        self.bytes -= qm.msg.body_size();
    }
}

impl FromIterator<QueuedMessage> for ReadyList {
    fn from_iter<I: IntoIterator<Item = QueuedMessage>>(iter: I) -> Self {
        let mut list = ReadyList::default();
        iter.into_iter().for_each(|qm| list.push_back(qm));
        list
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::message::Message;

    fn qm(seq: u64, size: usize) -> QueuedMessage {
        let body = Bytes::from(vec![0u8; size]);
        let msg = Message::derived("".into(), "k".into(), Default::default(), body);
        QueuedMessage { seq, msg: Arc::new(msg), redelivered: false }
    }

    fn seqs(list: &ReadyList) -> Vec<u64> {
        list.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn counts_body_bytes_through_every_change() {
        let mut list = ReadyList::default();
        list.push_back(qm(1, 10));
        list.push_back(qm(3, 30));
        list.insert(0, qm(2, 20));
        assert_eq!((list.len(), list.bytes()), (3, 60));
        assert_eq!(seqs(&list), [1, 2, 3]);
        assert_eq!(list.pop_front().map(|m| m.seq), Some(1));
        assert_eq!(list.bytes(), 50);
        assert_eq!(list.pop_back().map(|m| m.seq), Some(3));
        assert_eq!(list.bytes(), 20);
        assert_eq!(list.pop_front().map(|m| m.seq), Some(2));
        assert_eq!((list.len(), list.bytes()), (0, 0));
        assert!(list.pop_front().is_none());
        let list: ReadyList = (0..4).map(|i| qm(i, 5)).collect();
        assert_eq!(list.bytes(), 20);
    }

    #[test]
    fn priorities_deliver_highest_first_then_in_sequence() {
        let mut list = ReadyList::with_priorities(5);
        list.insert(1, qm(1, 1));
        list.insert(5, qm(2, 1));
        list.insert(3, qm(3, 1));
        list.insert(9, qm(4, 1)); // above the maximum: the top lane
        list.insert(1, qm(5, 1));
        list.insert(3, qm(0, 1)); // a requeue goes back to its place in its lane
        assert_eq!(seqs(&list), [2, 4, 0, 3, 1, 5]);
        assert_eq!(list.front().map(|m| m.seq), Some(2));
        assert_eq!(list.pop_back().map(|m| m.seq), Some(5));
        let taken = list.take_all();
        assert_eq!((list.len(), list.bytes()), (0, 0));
        // emptied (a purge), the list keeps its lanes
        list.insert(1, qm(7, 1));
        list.insert(4, qm(8, 1));
        assert_eq!(seqs(&list), [8, 7]);
        let mut taken = taken;
        let order: Vec<u64> = std::iter::from_fn(|| taken.pop_front().map(|m| m.seq)).collect();
        assert_eq!(order, [2, 4, 0, 3, 1]);
    }
}
