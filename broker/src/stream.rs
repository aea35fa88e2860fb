//! Stream queues (`x-queue-type: stream`): an append-only log that consumers read from an
//! offset without removing anything, as RabbitMQ's streams over AMQP 0-9-1.
//!
//! Every entry gets the next offset and an `x-stream-offset` header; each consumer has its own
//! cursor and reads under its prefetch credit (acks only return credit). Old entries go by
//! retention (`x-max-age`, `x-max-length-bytes`), never by consumption. The log is kept on disk
//! by the journal's stream logs; this module holds the in-memory index of it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;

use crate::connection::codec;
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::queue::{QueuedMessage, ReadyList};

pub const QUEUE_TYPE_ARG: &str = "x-queue-type";
pub const OFFSET_ARG: &str = "x-stream-offset";
const MAX_AGE_ARG: &str = "x-max-age";
const MAX_BYTES_ARG: &str = "x-max-length-bytes";

/// How many entries one dispatch pass hands a consumer at most (its credit bounds it further).
const DISPATCH_BATCH: usize = 256;

/// What RabbitMQ answers when a stream is asked for something only classic queues do
/// (540, closing the connection).
pub fn not_supported(what: &str, queue: &crate::queue::Queue) -> AmqpError {
    AmqpError::not_implemented(format!("{what} not supported by stream queues {}", queue.describe()))
}

/// Whether queue arguments ask for a stream.
pub fn is_stream(arguments: &FieldTable) -> bool {
    matches!(arguments.inner().get(QUEUE_TYPE_ARG).and_then(crate::args::as_text), Some(t) if t == "stream")
}

/// Where a new consumer starts reading (`x-stream-offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    First,
    Last,
    Next,
    Offset(u64),
    /// Milliseconds since the epoch: the first entry stored at or after it.
    Timestamp(i64),
}

impl StartAt {
    /// Parse the consumer's `x-stream-offset` argument ("next" when absent).
    pub fn from_arguments(arguments: &FieldTable, now_ms: i64) -> AmqpResult<Self> {
        let Some(value) = arguments.inner().get(OFFSET_ARG) else { return Ok(Self::Next) };
        let invalid = || AmqpError::precondition_failed(format!("Invalid value for  {OFFSET_ARG}"));
        match value {
            AMQPValue::Timestamp(seconds) => {
                Ok(Self::Timestamp(i64::try_from(*seconds).map_err(|_| invalid())?.saturating_mul(1000)))
            }
            AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
                let text = crate::args::as_text(value).ok_or_else(invalid)?;
                match text.as_str() {
                    "first" => Ok(Self::First),
                    "last" => Ok(Self::Last),
                    "next" => Ok(Self::Next),
                    interval => {
                        let age = parse_interval(interval).ok_or_else(invalid)?;
                        Ok(Self::Timestamp(now_ms.saturating_sub(age.as_millis() as i64)))
                    }
                }
            }
            other => match crate::args::as_integer(other) {
                Some(n) => Ok(Self::Offset(u64::try_from(n.max(0)).unwrap_or(u64::MAX))),
                None => Err(invalid()),
            },
        }
    }
}

/// RabbitMQ's interval syntax for `x-max-age` and `x-stream-offset`: a positive number and
/// one unit of Y, M, D, h, m, s.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        'Y' => 365 * 24 * 3600,
        'M' => 30 * 24 * 3600,
        'D' => 24 * 3600,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    (number > 0).then(|| Duration::from_secs(number.saturating_mul(seconds)))
}

/// What a stream keeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Read and check `x-max-age` and `x-max-length-bytes` from the queue arguments.
    pub fn from_arguments(arguments: &FieldTable) -> AmqpResult<Self> {
        let args = arguments.inner();
        let max_age = match args.get(MAX_AGE_ARG) {
            None => None,
            Some(v) => Some(
                crate::args::as_text(v)
                    .and_then(|t| parse_interval(&t))
                    .ok_or_else(|| AmqpError::precondition_failed(format!("Invalid value for  {MAX_AGE_ARG}")))?,
            ),
        };
        let max_bytes = match args.get(MAX_BYTES_ARG) {
            None => None,
            Some(v) => Some(
                crate::args::as_integer(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| AmqpError::precondition_failed(format!("Invalid value for  {MAX_BYTES_ARG}")))?,
            ),
        };
        Ok(Self { max_age, max_bytes })
    }
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    timestamp_ms: i64,
    msg: Arc<Message>,
}

/// The in-memory index of one stream and its consumers' cursors.
#[derive(Debug, Default)]
pub struct StreamLog {
    entries: VecDeque<Entry>,
    next_offset: u64,
    bytes: u64,
    retention: Retention,
    /// Consumer id -> the next offset it reads.
    cursors: HashMap<u64, u64>,
}

impl StreamLog {
    pub fn new(retention: Retention) -> Self {
        Self { retention, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn first_offset(&self) -> u64 {
        self.entries.front().map_or(self.next_offset, |e| e.offset)
    }

    /// Append a published message: it gets the next offset and its `x-stream-offset` header.
    /// Returns the offset and the stamped message (what is stored and delivered).
    pub fn append(&mut self, msg: &Message, timestamp_ms: i64) -> (u64, Arc<Message>) {
        let offset = self.next_offset;
        let stamped = Arc::new(stamp_offset(msg, offset));
        self.push(offset, timestamp_ms, stamped.clone());
        (offset, stamped)
    }

    /// Put back an entry read from disk (already stamped), in offset order.
    pub fn restore(&mut self, offset: u64, timestamp_ms: i64, msg: Arc<Message>) {
        if offset >= self.next_offset {
            self.push(offset, timestamp_ms, msg);
        }
    }

    fn push(&mut self, offset: u64, timestamp_ms: i64, msg: Arc<Message>) {
        self.bytes += msg.body_size();
        self.next_offset = offset + 1;
        self.entries.push_back(Entry { offset, timestamp_ms, msg });
    }

    /// Drop entries retention no longer keeps; returns the new first offset if any went.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Option<u64> {
        let before = self.first_offset();
        if let Some(age) = self.retention.max_age {
            let oldest = now_ms.saturating_sub(age.as_millis() as i64);
            while self.entries.front().is_some_and(|e| e.timestamp_ms < oldest) {
                self.pop_front();
            }
        }
        if let Some(max) = self.retention.max_bytes {
            // Always keep the newest entry, as RabbitMQ keeps the active segment.
            while self.bytes > max && self.entries.len() > 1 {
                self.pop_front();
            }
        }
        let after = self.first_offset();
        (after != before).then_some(after)
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.msg.body_size();
        }
    }

    /// Place a new consumer's cursor.
    pub fn add_consumer(&mut self, consumer: u64, start: StartAt) {
        let first = self.first_offset();
        let offset = match start {
            StartAt::First => first,
            StartAt::Last => self.entries.back().map_or(self.next_offset, |e| e.offset),
            StartAt::Next => self.next_offset,
            StartAt::Offset(n) => n.clamp(first, self.next_offset),
            StartAt::Timestamp(ms) => {
                let pos = self.entries.partition_point(|e| e.timestamp_ms < ms);
                self.entries.get(pos).map_or(self.next_offset, |e| e.offset)
            }
        };
        self.cursors.insert(consumer, offset);
    }

    pub fn remove_consumer(&mut self, consumer: u64) {
        self.cursors.remove(&consumer);
    }

    /// The entries `consumer` has not read yet, up to a batch, as deliverable messages.
    pub fn unread(&self, consumer: u64) -> ReadyList {
        let Some(&cursor) = self.cursors.get(&consumer) else { return ReadyList::default() };
        let start = cursor.max(self.first_offset()) - self.first_offset();
        self.entries
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(DISPATCH_BATCH)
            .map(|e| QueuedMessage { seq: e.offset, msg: e.msg.clone(), redelivered: false })
            .collect()
    }

    /// `consumer` was handed `n` entries from its cursor on.
    pub fn advance(&mut self, consumer: u64, n: usize) {
        let first = self.first_offset();
        if let Some(cursor) = self.cursors.get_mut(&consumer) {
            *cursor = (*cursor).max(first) + n as u64;
        }
    }
}

/// A copy of `msg` whose headers carry `x-stream-offset` (RabbitMQ adds it to every message a
/// stream delivers over AMQP 0-9-1). Body bytes are shared, not copied.
fn stamp_offset(msg: &Message, offset: u64) -> Message {
    let mut properties = msg.properties.clone();
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(OFFSET_ARG.into(), AMQPValue::LongLongInt(i64::try_from(offset).unwrap_or(i64::MAX)));
    properties = properties.with_headers(headers);
    let header = AMQPContentHeader { class_id: 60, body_size: msg.body_size(), properties: properties.clone() };
    let mut frame = Vec::new();
    codec::write_frame(&mut frame, &AMQPFrame::Header(1, header));
    // Keep only the payload: drop the 7-octet frame header and the frame-end octet.
    let payload = Bytes::copy_from_slice(frame.get(7..frame.len().saturating_sub(1)).unwrap_or_default());
    let stamped = Message::new(msg.exchange.clone(), msg.routing_key.clone(), properties, payload, msg.body.clone());
    stamped.set_store_id(msg.store_id());
    stamped
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::LongString;

    fn message(body: &'static [u8]) -> Message {
        Message::new("".into(), "s".into(), BasicProperties::default(), Bytes::new(), Bytes::from_static(body))
    }

    fn text(v: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(v))
    }

    fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn intervals_parse_as_rabbitmq_does() {
        assert_eq!(parse_interval("7D"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_interval("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_interval("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_interval("0D"), None);
        assert_eq!(parse_interval("D"), None);
        assert_eq!(parse_interval("5x"), None);
    }

    #[test]
    fn offsets_and_headers() {
        let mut log = StreamLog::new(Retention::default());
        for body in [b"a", b"b", b"c"] {
            log.append(&message(body), 1000);
        }
        log.add_consumer(1, StartAt::First);
        log.add_consumer(2, StartAt::Offset(1));
        log.add_consumer(3, StartAt::Next);
        log.add_consumer(4, StartAt::Last);
        assert_eq!(log.unread(1).len(), 3);
        assert_eq!(log.unread(2).front().map(|m| m.seq), Some(1));
        assert!(log.unread(3).is_empty());
        assert_eq!(log.unread(4).front().map(|m| m.seq), Some(2));
        let first = log.unread(1).pop_front().map(|m| m.msg).expect("entry");
        let headers = first.properties.headers().clone().expect("headers");
        assert_eq!(headers.inner().get(OFFSET_ARG), Some(&AMQPValue::LongLongInt(0)));
        // The stored header decodes to the same properties.
        let (_, decoded) =
            amq_protocol::frame::parsing::parse_content_header(&first.header[..]).expect("header decodes");
        assert_eq!(decoded.properties, first.properties);
        log.advance(1, 2);
        assert_eq!(log.unread(1).front().map(|m| m.seq), Some(2));
    }

    #[test]
    fn retention_by_age_and_bytes() {
        let mut log = StreamLog::new(Retention { max_age: Some(Duration::from_secs(10)), max_bytes: Some(2) });
        log.append(&message(b"old"), 0);
        log.append(&message(b"x"), 20_000);
        log.append(&message(b"y"), 20_000);
        assert_eq!(log.enforce_retention(20_000), Some(1));
        assert_eq!(log.len(), 2);
        log.append(&message(b"z"), 20_000);
        assert_eq!(log.enforce_retention(20_000), Some(2));
        log.add_consumer(9, StartAt::Offset(0));
        assert_eq!(log.unread(9).front().map(|m| m.seq), Some(2), "a cursor before the log starts at its head");
    }

    #[test]
    fn start_arguments() {
        let now = 100_000;
        assert_eq!(StartAt::from_arguments(&args(&[]), now).ok(), Some(StartAt::Next));
        assert_eq!(StartAt::from_arguments(&args(&[(OFFSET_ARG, text("first"))]), now).ok(), Some(StartAt::First));
        assert_eq!(
            StartAt::from_arguments(&args(&[(OFFSET_ARG, AMQPValue::LongLongInt(5))]), now).ok(),
            Some(StartAt::Offset(5))
        );
        assert_eq!(
            StartAt::from_arguments(&args(&[(OFFSET_ARG, AMQPValue::Timestamp(7))]), now).ok(),
            Some(StartAt::Timestamp(7000))
        );
        assert_eq!(
            StartAt::from_arguments(&args(&[(OFFSET_ARG, text("10s"))]), now).ok(),
            Some(StartAt::Timestamp(90_000))
        );
        assert!(StartAt::from_arguments(&args(&[(OFFSET_ARG, text("bogus"))]), now).is_err());
    }
}
