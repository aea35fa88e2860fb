//! The ready list: messages waiting for a consumer, in delivery order, with a running count
//! of their body bytes (so `x-max-length-bytes` and memory bounds are O(1) per message).

use std::collections::VecDeque;

use super::QueuedMessage;

#[derive(Debug, Default)]
pub struct ReadyList {
    items: VecDeque<QueuedMessage>,
    bytes: u64,
}

impl ReadyList {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The body bytes of every message in the list.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn front(&self) -> Option<&QueuedMessage> {
        self.items.front()
    }

    pub fn back(&self) -> Option<&QueuedMessage> {
        self.items.back()
    }

    pub fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.items.iter()
    }

    pub fn push_back(&mut self, qm: QueuedMessage) {
        self.bytes += qm.msg.body_size();
        self.items.push_back(qm);
    }

    pub fn pop_front(&mut self) -> Option<QueuedMessage> {
        let qm = self.items.pop_front()?;
        self.bytes -= qm.msg.body_size();
        Some(qm)
    }

    pub fn pop_back(&mut self) -> Option<QueuedMessage> {
        let qm = self.items.pop_back()?;
        self.bytes -= qm.msg.body_size();
        Some(qm)
    }

    /// The first position whose message does not satisfy `before` (the list is partitioned).
    pub fn partition_point(&self, before: impl FnMut(&QueuedMessage) -> bool) -> usize {
        self.items.partition_point(before)
    }

    pub fn insert(&mut self, at: usize, qm: QueuedMessage) {
        self.bytes += qm.msg.body_size();
        self.items.insert(at, qm);
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

    #[test]
    fn counts_body_bytes_through_every_change() {
        let mut list = ReadyList::default();
        list.push_back(qm(1, 10));
        list.push_back(qm(3, 30));
        list.insert(1, qm(2, 20));
        assert_eq!((list.len(), list.bytes()), (3, 60));
        assert_eq!(list.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
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
}
