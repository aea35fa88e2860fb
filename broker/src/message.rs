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
    /// When it arrived; TTLs count from here.
    pub published_at: tokio::time::Instant,
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
        Self {
            exchange,
            routing_key,
            properties,
            header,
            body,
            persistent,
            store_id: AtomicU64::new(0),
            published_at: tokio::time::Instant::now(),
        }
    }

    /// A new message with other properties (dead-lettering, direct reply-to): the content
    /// header is encoded again, the body is shared.
    pub fn derived(exchange: ShortString, routing_key: ShortString, properties: BasicProperties, body: Bytes) -> Self {
        let header = encode_header(&properties, body.len() as u64);
        Self::new(exchange, routing_key, properties, header, body)
    }

    /// The per-message TTL from the `expiration` property, in milliseconds.
    pub fn expiration_ms(&self) -> Option<u64> {
        self.properties.expiration().as_ref().and_then(|e| e.as_str().parse().ok())
    }

    /// Rebuild a message read back from disk; None if its header no longer decodes.
    /// `published_ms` (wall clock, 0 if unknown) keeps its TTL counting from when it arrived.
    pub fn from_stored(stored: StoredMessage, store_id: u64, published_ms: i64) -> Option<Self> {
        let (_, header) = parse_content_header(&stored.header[..]).ok()?;
        let mut m =
            Self::new(short(stored.exchange), short(stored.routing_key), header.properties, stored.header, stored.body);
        m.store_id.store(store_id, Ordering::Relaxed);
        if published_ms > 0 {
            let age = crate::clock::now_ms().saturating_sub(published_ms).max(0) as u64;
            let now = m.published_at;
            m.published_at = now.checked_sub(std::time::Duration::from_millis(age)).unwrap_or(now);
        }
        Some(m)
    }

    /// When it arrived, in wall-clock milliseconds (for records read back later).
    pub fn published_ms(&self) -> i64 {
        let age = tokio::time::Instant::now().saturating_duration_since(self.published_at).as_millis();
        crate::clock::now_ms().saturating_sub(i64::try_from(age).unwrap_or(i64::MAX))
    }

    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            exchange: self.exchange.as_str().to_owned(),
            routing_key: self.routing_key.as_str().to_owned(),
            header: self.header.clone(),
            body: self.body.clone(),
        }
    }

    /// Its journal id when the journal holds it (persistent and stored), else None.
    pub fn journal_id(&self) -> Option<u64> {
        let id = self.store_id();
        (self.persistent && id != 0).then_some(id)
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

/// The content-header payload for `properties` (class 60) and a body of `body_size` bytes.
pub fn encode_header(properties: &BasicProperties, body_size: u64) -> Bytes {
    use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
    let mut out = Vec::new();
    let header = AMQPContentHeader { class_id: 60, body_size, properties: properties.clone() };
    crate::connection::codec::write_frame(&mut out, &AMQPFrame::Header(0, header));
    // Strip the frame's type, channel and size (7 bytes) and its end octet.
    let end = out.len().saturating_sub(1).max(7);
    Bytes::from(out).slice(7..end)
}

/// The same properties without `expiration` (a dead-lettered copy does not expire again).
pub fn without_expiration(p: &BasicProperties) -> BasicProperties {
    let mut out = BasicProperties::default();
    macro_rules! copy {
        ($($get:ident => $with:ident),* $(,)?) => {
            $(if let Some(v) = p.$get().clone() { out = out.$with(v); })*
        };
    }
    copy!(
        content_type => with_content_type,
        content_encoding => with_content_encoding,
        headers => with_headers,
        delivery_mode => with_delivery_mode,
        priority => with_priority,
        correlation_id => with_correlation_id,
        reply_to => with_reply_to,
        message_id => with_message_id,
        timestamp => with_timestamp,
        kind => with_type,
        user_id => with_user_id,
        app_id => with_app_id,
        cluster_id => with_cluster_id,
    );
    out
}

/// The `expiration` property must be a non-negative integer (RabbitMQ's texts).
pub fn check_expiration(props: &amq_protocol::protocol::BasicProperties) -> crate::error::AmqpResult<()> {
    let Some(exp) = props.expiration() else { return Ok(()) };
    match exp.as_str().parse::<i64>() {
        Ok(n) if n < 0 => Err(crate::error::AmqpError::precondition_failed(format!(
            "invalid expiration '{exp}': {{value_negative,{n}}}"
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(crate::error::AmqpError::precondition_failed(format!("invalid expiration '{exp}': no_integer"))),
    }
}
