//! Read-only views for the management API that no single registry holds: a connection's
//! channels, and the deliveries each queue has out unacknowledged. Each view takes the locks
//! it reads for a moment, one at a time; nothing here is on the publish or delivery path.

use std::collections::HashMap;
use std::sync::Arc;

use crate::Broker;
use crate::admin::ConnectionInfo;
use crate::queue::Queue;

/// One open channel of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    pub number: u16,
    pub consumers: usize,
    /// Deliveries not acknowledged yet.
    pub unacked: usize,
    /// basic.qos global=false: the prefetch of consumers created from now on.
    pub prefetch: u16,
    /// basic.qos global=true.
    pub global_prefetch: u16,
    pub confirm: bool,
    /// Publishes not confirmed yet (confirm mode).
    pub unconfirmed: u64,
    pub transactional: bool,
}

impl ConnectionInfo {
    /// The connection's open channels, by number.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let mut list: Vec<ChannelInfo> = {
            let st = self.sink.lock();
            st.channels
                .iter()
                .filter(|(_, ch)| ch.active)
                .map(|(number, ch)| ChannelInfo {
                    number: *number,
                    consumers: ch.consumers.len(),
                    unacked: ch.unacked.len(),
                    prefetch: ch.consumer_prefetch,
                    global_prefetch: ch.global_prefetch,
                    confirm: ch.confirm,
                    unconfirmed: ch.unconfirmed.as_ref().map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed)),
                    transactional: ch.transactional,
                })
                .collect()
        };
        list.sort_by_key(|c| c.number);
        list
    }
}

/// Unacknowledged deliveries per queue (count, body bytes), from every connection.
#[derive(Debug, Default)]
pub struct Outstanding {
    by_queue: HashMap<usize, (u64, u64)>,
}

impl Outstanding {
    /// `(messages, body bytes)` delivered from `q` and not acknowledged yet.
    pub fn of(&self, q: &Arc<Queue>) -> (u64, u64) {
        self.by_queue.get(&(Arc::as_ptr(q) as usize)).copied().unwrap_or_default()
    }
}

impl Broker {
    /// Count every connection's unacknowledged deliveries by queue (one sink lock at a time).
    pub fn outstanding(&self) -> Outstanding {
        let mut out = Outstanding::default();
        for conn in self.connection_list() {
            let st = conn.sink.lock();
            for ch in st.channels.values() {
                for u in &ch.unacked {
                    // The queue is alive while its delivery is listed: its address is its key.
                    let entry = out.by_queue.entry(Arc::as_ptr(&u.queue) as usize).or_default();
                    entry.0 += 1;
                    entry.1 += u.msg.body.len() as u64;
                }
            }
        }
        out
    }

    /// An open connection by its name (`peer -> local`).
    pub fn connection_named(&self, name: &str) -> Option<ConnectionInfo> {
        self.connection_list().into_iter().find(|c| c.name() == name)
    }
}
