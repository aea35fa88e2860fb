//! `Message`: an immutable published message, shared by `Arc` between every queue it is
//! routed to. The content header is kept exactly as encoded, so a delivery copies bytes and
//! never re-encodes properties.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use bytes::Bytes;

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    /// The content-header payload (class id, weight, body size, property flags and values).
    pub header: Bytes,
    pub body: Bytes,
}

impl Message {
    pub fn body_size(&self) -> u64 {
        self.body.len() as u64
    }
}
