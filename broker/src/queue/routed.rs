//! A routed message into its queues: the one place a publish (a channel's, the management
//! API's, a dead letter's) is enqueued. Streams append it (with the journal ticket that puts
//! it on disk); a persistent message bound for durable queues is journaled once, with one
//! enqueue per queue at a reserved sequence number; everything else is enqueued in memory.

use std::sync::Arc;

use warren_persistence::Store;

use super::{Enqueued, Queue};
use crate::message::Message;

/// What enqueueing a message into its routed queues gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The journal ticket that tells when it is on disk (None: nothing to wait for).
    pub ticket: Option<u64>,
    /// A queue refused it (x-overflow reject-publish).
    pub rejected: bool,
}

/// Put `msg` into every queue of `routed`; `store` is the broker's (None keeps all in memory).
pub fn enqueue(store: Option<&Arc<Store>>, msg: &Arc<Message>, routed: &[Arc<Queue>]) -> Outcome {
    let mut out = Outcome::default();
    for q in routed.iter().filter(|q| q.is_stream()) {
        out.ticket = out.ticket.max(q.append_stream(msg));
    }
    let store = store.filter(|_| msg.persistent && routed.iter().any(|q| q.journaled()));
    let Some(store) = store else {
        for q in routed.iter().filter(|q| !q.is_stream()) {
            out.rejected |= q.publish(msg.clone()) == Enqueued::Rejected;
        }
        return out;
    };
    let seqs: Vec<Option<u64>> = routed.iter().map(|q| q.journaled().then(|| q.reserve_seq())).collect();
    let enqueues: Vec<(&str, u64)> =
        routed.iter().zip(&seqs).filter_map(|(q, seq)| seq.map(|s| (q.journal_name.as_str(), s))).collect();
    let stored = store.journal.publish(&msg.to_stored(), crate::clock::now_ms(), &enqueues);
    msg.set_store_id(stored.id);
    for (q, seq) in routed.iter().zip(seqs) {
        let enqueued = match seq {
            Some(seq) => q.publish_at(seq, msg.clone(), stored),
            None if q.is_stream() => Enqueued::Accepted,
            None => q.publish(msg.clone()),
        };
        out.rejected |= enqueued == Enqueued::Rejected;
    }
    out.ticket = out.ticket.max(Some(stored.ticket));
    out
}
