//! `Message`: an immutable published message, shared by `Arc` between every queue it is
//! routed to. The content header is kept exactly as encoded, so a delivery copies bytes and
//! never re-encodes properties.

use std::sync::atomic::{AtomicU64, Ordering};

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use bytes::Bytes;
use warren_persistence::StoredMessage;

use crate::names::short;

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    /// The content-header payload (class id, weight, body size, property flags and values).
    pub header: Bytes,
    pub body: Bytes,
    /// delivery_mode 2: kept on disk when routed to a durable queue.
    pub persistent: bool,
    /// Its id in the journal once stored (0: not stored).
    store_id: AtomicU64,
}

impl Message {
    pub fn new(
        exchange: ShortString,
        routing_key: ShortString,
        properties: BasicProperties,
        header: Bytes,
        body: Bytes,
    ) -> Self {
        let persistent = properties.delivery_mode() == &Some(2);
        Self { exchange, routing_key, properties, header, body, persistent, store_id: AtomicU64::new(0) }
    }

    /// Rebuild a message read back from disk; None if its header no longer decodes.
    pub fn from_stored(stored: StoredMessage, store_id: u64) -> Option<Self> {
        let (_, header) = parse_content_header(&stored.header[..]).ok()?;
        let m =
            Self::new(short(stored.exchange), short(stored.routing_key), header.properties, stored.header, stored.body);
        m.store_id.store(store_id, Ordering::Relaxed);
        Some(m)
    }

    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            exchange: self.exchange.as_str().to_owned(),
            routing_key: self.routing_key.as_str().to_owned(),
            header: self.header.clone(),
            body: self.body.clone(),
        }
    }

    pub fn store_id(&self) -> u64 {
        self.store_id.load(Ordering::Relaxed)
    }

    pub fn set_store_id(&self, id: u64) {
        self.store_id.store(id, Ordering::Relaxed);
    }

    pub fn body_size(&self) -> u64 {
        self.body.len() as u64
    }
}
