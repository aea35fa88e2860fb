//! Message counters and their rates, as RabbitMQ's management plugin reports them
//! (`message_stats` of the overview, queues, exchanges and connections; the Prometheus
//! plugin's `*_total` counters).
//!
//! Each object counts what passes through it in a [`MessageStats`]: relaxed atomic adds, each
//! counter on a cache line of its own (a queue's deliveries are counted by one thread while
//! another counts its publishes: no false sharing). Nothing global is touched per message:
//! broker-wide figures are sums taken when asked (live connections plus what closed ones
//! left in `retired`). A sampler (see `Broker::sample_rates`) turns counts into per-second
//! rates every [`SAMPLE_EVERY`], RabbitMQ's `collect_statistics_interval`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often rates are sampled (RabbitMQ's collect_statistics_interval default, 5 s).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples of the broker's totals kept for the dashboard's charts: 10 minutes.
pub const HISTORY: usize = 120;

/// One count and its rate at the last sample.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counter {
    count: AtomicU64,
    /// The count at the last sample.
    last: AtomicU64,
    /// Per second over the last sampling interval (`f64` bits).
    rate: AtomicU64,
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// `add` for a counter whose writers are serialised: they all hold one same lock (a
    /// queue's, a sink's), or there is one (a connection's task): a plain load and store,
    /// without the locked read-modify-write (fan-out to ten queues counts ten times per
    /// message).
    #[inline]
    pub fn add_serialised(&self, n: u64) {
        self.count.store(self.count.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// For a count kept elsewhere and copied here when read.
    pub fn set(&self, n: u64) {
        self.count.store(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Close a sampling interval of `secs` seconds.
    fn sample(&self, secs: f64) {
        let now = self.get();
        let before = self.last.swap(now, Ordering::Relaxed);
        let rate = if secs > 0.0 { now.saturating_sub(before) as f64 / secs } else { 0.0 };
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }
}

/// Bytes a connection's socket read and wrote: RabbitMQ's `recv_oct` and `send_oct`.
#[derive(Debug, Default)]
pub struct Octets {
    /// Written by the connection's task only.
    pub recv: Counter,
    /// Written by its writer task and by write-through (locked adds, one per write).
    pub send: Counter,
}

impl Octets {
    pub fn sample(&self, secs: f64) {
        self.recv.sample(secs);
        self.send.sample(secs);
    }
}

macro_rules! message_stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// What passed through one object (queue, exchange, connection), by RabbitMQ's names.
        #[derive(Debug, Default)]
        pub struct MessageStats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        /// A copy of the counts (the broker's totals, a sample in the history).
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct Counts {
            $(pub $name: u64,)*
        }

        impl MessageStats {
            /// Every counter with its RabbitMQ name.
            pub fn counters(&self) -> [(&'static str, &Counter); [$(stringify!($name)),*].len()] {
                [$((stringify!($name), &self.$name)),*]
            }

            pub fn counts(&self) -> Counts {
                Counts { $($name: self.$name.get(),)* }
            }

            /// Add what a closed object counted.
            pub fn absorb(&self, other: &Counts) {
                $(self.$name.add(other.$name);)*
            }
        }

        impl Counts {
            pub fn add(&mut self, other: &Counts) {
                $(self.$name += other.$name;)*
            }

            /// Every count with its RabbitMQ name.
            pub fn fields(&self) -> [(&'static str, u64); [$(stringify!($name)),*].len()] {
                [$((stringify!($name), self.$name)),*]
            }

            /// Per second from `earlier` to this, `secs` apart.
            pub fn rates_since(&self, earlier: &Counts, secs: f64) -> [(&'static str, f64); [$(stringify!($name)),*].len()] {
                let per_sec = |now: u64, then: u64| if secs > 0.0 { now.saturating_sub(then) as f64 / secs } else { 0.0 };
                [$((stringify!($name), per_sec(self.$name, earlier.$name))),*]
            }
        }
    };
}

message_stats! {
    /// Messages published (by a connection's channels; into a queue).
    publish,
    /// Messages published into an exchange.
    publish_in,
    /// Messages an exchange routed to at least one queue: publish_in minus the unrouted, as
    /// of the last sample (one count per publish on an exchange every publisher shares).
    publish_out,
    /// Publisher confirms sent.
    confirm,
    /// Deliveries to consumers that ack.
    deliver,
    /// Deliveries to consumers that do not ack.
    deliver_no_ack,
    /// basic.get answers with a message, acked later.
    get,
    /// basic.get answers with a message, no ack.
    get_no_ack,
    /// Acknowledgements received.
    ack,
    /// Deliveries and gets of messages delivered before.
    redeliver,
    /// Mandatory messages routed nowhere: returned.
    return_unroutable,
    /// Messages routed nowhere and dropped.
    drop_unroutable,
}

impl MessageStats {
    /// Close a sampling interval of `secs` seconds on every counter. An exchange's
    /// publish_out is brought up to date here (publish_in minus the unrouted).
    pub fn sample(&self, secs: f64) {
        let published_in = self.publish_in.get();
        if published_in > 0 {
            let out = published_in.saturating_sub(self.drop_unroutable.get());
            self.publish_out.count.store(out, Ordering::Relaxed);
        }
        for (_, c) in self.counters() {
            c.sample(secs);
        }
    }

    /// Count a delivery or get: `acked` when the client will ack it. `serialised`: every
    /// writer of that kind's counter holds one same lock (see [`Counter::add_serialised`]).
    /// `redeliver` is shared by deliveries and gets, which a queue counts under different
    /// locks: always a locked add (redeliveries are rare).
    #[inline]
    pub fn delivered(&self, n: u64, redelivered: u64, acked: bool, get: bool, serialised: bool) {
        let add = |c: &Counter, n| if serialised { c.add_serialised(n) } else { c.add(n) };
        match (get, acked) {
            (false, true) => add(&self.deliver, n),
            (false, false) => add(&self.deliver_no_ack, n),
            (true, true) => add(&self.get, n),
            (true, false) => add(&self.get_no_ack, n),
        }
        if redelivered > 0 {
            self.redeliver.add(redelivered);
        }
    }
}

impl Counts {
    /// Deliveries and gets of every kind (RabbitMQ's deliver_get).
    pub fn deliver_get(&self) -> u64 {
        self.deliver + self.deliver_no_ack + self.get + self.get_no_ack
    }
}

/// Per-second rates by RabbitMQ's names.
pub type Rates = Vec<(&'static str, f64)>;

/// The broker's totals at each of the last [`HISTORY`] samples, oldest first: (Unix ms, counts).
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<(i64, Counts)>,
}

impl History {
    pub fn push(&mut self, at_ms: i64, counts: Counts) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((at_ms, counts));
    }

    pub fn samples(&self) -> impl ExactSizeIterator<Item = &(i64, Counts)> {
        self.samples.iter()
    }

    /// Rates over the last interval (zeros before two samples exist).
    pub fn last_rates(&self) -> Option<(Counts, Rates)> {
        let n = self.samples.len();
        let (t1, now) = self.samples.back()?;
        let rates = match n {
            0 | 1 => now.rates_since(now, 1.0).to_vec(),
            _ => {
                let (t0, before) = &self.samples[n - 2];
                now.rates_since(before, (t1 - t0) as f64 / 1000.0).to_vec()
            }
        };
        Some((*now, rates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_the_change_per_second_of_the_last_interval() {
        let s = MessageStats::default();
        s.publish.add(100);
        s.sample(5.0);
        assert_eq!(s.publish.rate(), 20.0);
        s.publish.add(10);
        s.sample(5.0);
        assert_eq!((s.publish.get(), s.publish.rate()), (110, 2.0));
        s.sample(5.0);
        assert_eq!(s.publish.rate(), 0.0, "nothing new: rate 0");
    }

    #[test]
    fn deliveries_are_counted_by_kind() {
        let s = MessageStats::default();
        s.delivered(3, 1, true, false, false);
        s.delivered(2, 0, false, false, true);
        s.delivered(1, 1, true, true, false);
        s.delivered(4, 0, false, true, true);
        let c = s.counts();
        assert_eq!((c.deliver, c.deliver_no_ack, c.get, c.get_no_ack, c.redeliver), (3, 2, 1, 4, 2));
        assert_eq!(c.deliver_get(), 10);
    }

    #[test]
    fn history_keeps_the_last_samples_and_their_rates() {
        let mut h = History::default();
        for i in 0..(HISTORY as i64 + 5) {
            h.push(i * 5000, Counts { publish: i as u64 * 50, ..Counts::default() });
        }
        assert_eq!(h.samples().len(), HISTORY);
        assert_eq!(h.samples().next().map(|(t, _)| *t), Some(5 * 5000));
        let (_, rates) = h.last_rates().expect("samples");
        assert_eq!(rates.iter().find(|(n, _)| *n == "publish").map(|(_, r)| *r), Some(10.0));
    }

    #[test]
    fn counters_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Counter>(), 64);
    }
}
