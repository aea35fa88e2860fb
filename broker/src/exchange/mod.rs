//! Exchanges: a closed set of kinds, each a routing table with `bind`, `unbind` and `route`.
//! What every kind shares (flags, arguments, the binding list) lives here once.

mod direct;
mod fanout;
pub mod headers;
mod topic;

use std::sync::Arc;

use amq_protocol::types::{FieldTable, ShortString};
use parking_lot::RwLock;

use crate::message::Message;
use crate::queue::Queue;

pub use direct::DirectTable;
pub use fanout::FanoutTable;
pub use headers::HeadersTable;
pub use topic::TopicTable;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "direct" => Some(Self::Direct),
            "fanout" => Some(Self::Fanout),
            "topic" => Some(Self::Topic),
            "headers" => Some(Self::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

/// Where a binding leads: a queue, or another exchange (exchange.bind).
#[derive(Clone, Debug)]
pub enum Destination {
    Queue(Arc<Queue>),
    Exchange(Arc<Exchange>),
}

impl Destination {
    fn same_as(&self, other: &Destination) -> bool {
        match (self, other) {
            (Self::Queue(a), Self::Queue(b)) => Arc::ptr_eq(a, b),
            (Self::Exchange(a), Self::Exchange(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn is_queue(&self, q: &Arc<Queue>) -> bool {
        matches!(self, Self::Queue(x) if Arc::ptr_eq(x, q))
    }

    pub fn is_exchange(&self, x: &Arc<Exchange>) -> bool {
        matches!(self, Self::Exchange(e) if Arc::ptr_eq(e, x))
    }
}

/// One binding: a destination, the key it was bound with and the binding arguments.
#[derive(Clone, Debug)]
pub struct Binding {
    pub dest: Destination,
    pub routing_key: ShortString,
    pub arguments: FieldTable,
}

impl Binding {
    fn same_as(&self, other: &Binding) -> bool {
        self.dest.same_as(&other.dest) && self.routing_key == other.routing_key && self.arguments == other.arguments
    }
}

/// The routing table of one kind.
#[derive(Debug)]
pub enum RoutingTable {
    Direct(DirectTable),
    Fanout(FanoutTable),
    Topic(TopicTable),
    Headers(HeadersTable),
}

impl RoutingTable {
    fn new(kind: ExchangeKind) -> Self {
        match kind {
            ExchangeKind::Direct => Self::Direct(DirectTable::default()),
            ExchangeKind::Fanout => Self::Fanout(FanoutTable::default()),
            ExchangeKind::Topic => Self::Topic(TopicTable::default()),
            ExchangeKind::Headers => Self::Headers(HeadersTable::default()),
        }
    }

    fn contains(&self, binding: &Binding) -> bool {
        match self {
            Self::Direct(t) => t.contains(binding),
            Self::Topic(t) => t.contains(binding),
            _ => self.bindings().any(|b| b.same_as(binding)),
        }
    }

    fn bindings(&self) -> Box<dyn Iterator<Item = &Binding> + '_> {
        match self {
            Self::Direct(t) => Box::new(t.bindings()),
            Self::Fanout(t) => Box::new(t.bindings()),
            Self::Topic(t) => Box::new(t.bindings()),
            Self::Headers(t) => Box::new(t.bindings()),
        }
    }
}

#[derive(Debug)]
pub struct Exchange {
    pub name: ShortString,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    table: RwLock<RoutingTable>,
    /// Messages published into it and routed on (see `crate::stats`).
    pub stats: crate::stats::MessageStats,
}

impl Exchange {
    pub fn new(
        name: ShortString,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Self {
        Self {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            table: RwLock::new(RoutingTable::new(kind)),
            stats: Default::default(),
        }
    }

    /// Check a binding's arguments before it is added (406 when the kind refuses them).
    pub fn validate_binding(&self, arguments: &FieldTable) -> crate::error::AmqpResult<()> {
        match self.kind {
            ExchangeKind::Headers => headers::validate_binding(arguments),
            _ => Ok(()),
        }
    }

    /// Add a binding; an identical one is not added twice.
    pub fn bind(&self, binding: Binding) {
        let mut table = self.table.write();
        if table.contains(&binding) {
            return;
        }
        match &mut *table {
            RoutingTable::Direct(t) => t.bind(binding),
            RoutingTable::Fanout(t) => t.bind(binding),
            RoutingTable::Topic(t) => t.bind(binding),
            RoutingTable::Headers(t) => t.bind(binding),
        }
    }

    pub fn unbind(&self, binding: &Binding) {
        let mut table = self.table.write();
        match &mut *table {
            RoutingTable::Direct(t) => t.unbind(binding),
            RoutingTable::Fanout(t) => t.unbind(binding),
            RoutingTable::Topic(t) => t.unbind(binding),
            RoutingTable::Headers(t) => t.unbind(binding),
        }
    }

    /// Remove every binding to `queue`; returns how many there were.
    pub fn unbind_queue(&self, queue: &Arc<Queue>) -> usize {
        self.unbind_where(|d| d.is_queue(queue))
    }

    /// Remove every binding whose destination matches; returns how many there were.
    pub fn unbind_where(&self, doomed: impl Fn(&Destination) -> bool) -> usize {
        let doomed: Vec<Binding> = self.table.read().bindings().filter(|b| doomed(&b.dest)).cloned().collect();
        for b in &doomed {
            self.unbind(b);
        }
        doomed.len()
    }

    /// A copy of every binding (listings, definitions export).
    pub fn binding_list(&self) -> Vec<Binding> {
        self.table.read().bindings().cloned().collect()
    }

    /// The alternate-exchange argument, if any.
    pub fn alternate_exchange(&self) -> Option<String> {
        self.arguments.inner().get("alternate-exchange").and_then(crate::args::as_text)
    }

    pub fn has_bindings(&self) -> bool {
        self.table.read().bindings().next().is_some()
    }

    /// Append to `out` every queue the message is routed to (a queue bound twice comes twice:
    /// the caller de-duplicates once, see `dedup_queues`) and to
    /// `exchanges` every exchange bound to this one that matches. Returns whether any binding
    /// matched (if none did, the alternate exchange applies).
    pub fn route(&self, msg: &Message, out: &mut Vec<Arc<Queue>>, exchanges: &mut Vec<Arc<Exchange>>) -> bool {
        let table = self.table.read();
        let mut matched = false;
        let mut push = |d: &Destination| {
            matched = true;
            match d {
                Destination::Queue(q) => out.push(q.clone()),
                Destination::Exchange(x) => exchanges.push(x.clone()),
            }
        };
        match &*table {
            RoutingTable::Direct(t) => t.route(msg.routing_key.as_str(), &mut push),
            RoutingTable::Fanout(t) => t.route(&mut push),
            RoutingTable::Topic(t) => t.route(msg.routing_key.as_str(), &mut push),
            RoutingTable::Headers(t) => t.route(msg.properties.headers().as_ref(), &mut push),
        }
        matched
    }
}

/// Keep the first of each queue in `routed`: a scan for the few queues most messages reach,
/// a sort for a wide fan-out (a queue reached by several bindings or exchanges gets one copy).
pub fn dedup_queues(routed: &mut Vec<Arc<Queue>>) {
    const SCAN_UP_TO: usize = 16;
    if routed.len() < 2 {
        return;
    }
    if routed.len() <= SCAN_UP_TO {
        let mut kept = 1;
        for i in 1..routed.len() {
            if !routed[..kept].iter().any(|q| Arc::ptr_eq(q, &routed[i])) {
                routed.swap(kept, i);
                kept += 1;
            }
        }
        routed.truncate(kept);
    } else {
        routed.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
        routed.dedup_by(|a, b| Arc::ptr_eq(a, b));
    }
}

/// Remove the first binding equal to `binding` from a list.
fn remove_binding(list: &mut Vec<Binding>, binding: &Binding) {
    if let Some(pos) = list.iter().position(|b| b.same_as(binding)) {
        list.remove(pos);
    }
}
