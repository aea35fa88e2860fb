//! Stream queues (`x-queue-type: stream`): an append-only log that consumers read from an
//! offset without removing anything, as RabbitMQ's streams over AMQP 0-9-1.
//!
//! Every entry gets the next offset and an `x-stream-offset` header; each consumer has its own
//! cursor and reads under its prefetch credit (acks only return credit). Old entries go by
//! retention (`x-max-age`, `x-max-length-bytes`), never by consumption. The log is kept on disk
//! by the journal's stream logs; this module holds its newest entries in memory and a sparse
//! index of the rest, which consumers behind the tail read from disk (a 10 GB stream costs
//! megabytes of memory, and a restart reads one record a segment and the last segment).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;

use crate::connection::codec;
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::ready::{QueuedMessage, ReadyList};
use warren_persistence::{RecoveredStream, StreamReader};

pub const QUEUE_TYPE_ARG: &str = "x-queue-type";
pub const OFFSET_ARG: &str = "x-stream-offset";
const MAX_AGE_ARG: &str = "x-max-age";
const MAX_BYTES_ARG: &str = "x-max-length-bytes";

/// How many entries one dispatch pass hands a consumer at most (its credit bounds it further).
const DISPATCH_BATCH: usize = 256;

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
    /// The journal ticket that puts it on disk (0: on disk already, or no store).
    ticket: u64,
}

/// A stretch of consecutive entries, for retention and timestamp lookups: the index a stream
/// keeps of what it holds on disk.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    first_offset: u64,
    last_timestamp_ms: i64,
    count: u64,
    bytes: u64,
}

/// Entries a stream keeps in memory at most once they are on disk...
const TAIL_ENTRIES: usize = 4096;
/// ... or fewer when big: about this much memory (see `entry_memory`)...
const TAIL_MEMORY: u64 = 8 << 20;
/// ... and all streams of the process together about this much: a hundred busy streams would
/// otherwise hold a hundred tails (a chat of 100 rooms: ~500 MB). What is on disk and beyond
/// it is read from the segments (the page cache, for a consumer near the head). Consumers at
/// the head read what was just appended, which is still in memory.
const TAILS_BUDGET: u64 = 16 << 20;
/// The memory the tails of all stored streams hold now (entries in memory and on disk).
static TAILS_MEMORY: AtomicU64 = AtomicU64::new(0);

/// About what an entry of the tail costs in memory: the entry, the message, its body and
/// encoded header, and its decoded properties (a header table decodes to several times the
/// size it has on the wire: tree nodes, strings, values).
fn entry_memory(msg: &Message) -> u64 {
    (std::mem::size_of::<Entry>() + std::mem::size_of::<Message>()) as u64
        + msg.body_size()
        + 4 * msg.header.len() as u64
}
/// A chunk of the index closes at this many entries...
const CHUNK_ENTRIES: u64 = 1024;
/// ... or this many body bytes.
const CHUNK_BYTES: u64 = 1 << 20;

/// A consumer's place in the stream.
#[derive(Debug)]
struct Cursor {
    next: u64,
    /// Entries stored before this time are skipped (a consumer that started at a timestamp
    /// begins at the chunk that holds it).
    not_before_ms: Option<i64>,
    /// Reading from disk, behind the in-memory tail...
    reader: Option<StreamReader>,
    /// ... and what it read that the consumer has not taken yet (from `next` on).
    pending: Option<ReadyList>,
}

/// One stream: its newest entries in memory, everything else in its segment files behind a
/// sparse index (chunks), and its consumers' cursors. Without a store every entry stays in
/// memory.
#[derive(Debug, Default)]
pub struct StreamLog {
    tail: VecDeque<Entry>,
    tail_memory: TailMemory,
    chunks: VecDeque<Chunk>,
    first_offset: u64,
    next_offset: u64,
    bytes: u64,
    retention: Retention,
    cursors: HashMap<u64, Cursor>,
    /// Where its segments are (None: no store, memory only).
    dir: Option<PathBuf>,
}

impl StreamLog {
    pub fn new(retention: Retention, dir: Option<PathBuf>) -> Self {
        let tail_memory = TailMemory { bytes: 0, counted: dir.is_some() };
        Self { retention, dir, tail_memory, ..Default::default() }
    }

    /// Entries retained.
    pub fn len(&self) -> u64 {
        self.next_offset - self.first_offset
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first offset the in-memory tail holds (everything below is read from disk).
    fn tail_start(&self) -> u64 {
        self.tail.front().map_or(self.next_offset, |e| e.offset)
    }

    /// Append a published message: it gets the next offset and its `x-stream-offset` header.
    /// Returns the offset and the stamped message (what is stored and delivered); tell the
    /// log the journal ticket that stores it with [`StreamLog::stored`].
    pub fn append(&mut self, msg: &Message, timestamp_ms: i64) -> (u64, Arc<Message>) {
        let offset = self.next_offset;
        let stamped = Arc::new(stamp_offset(msg, offset));
        self.push(offset, timestamp_ms, stamped.clone(), 0);
        (offset, stamped)
    }

    /// The last entry appended is on disk once the journal's synced ticket reaches `ticket`.
    pub fn stored(&mut self, ticket: u64) {
        if let Some(e) = self.tail.back_mut() {
            e.ticket = ticket;
        }
    }

    /// Let go of the in-memory copies of entries that are on disk (the journal has synced
    /// up to `synced`) beyond the tail's bounds.
    pub fn trim_tail(&mut self, synced: u64) {
        if self.dir.is_none() {
            return;
        }
        while (self.tail.len() > TAIL_ENTRIES
            || self.tail_memory.bytes > TAIL_MEMORY
            || TAILS_MEMORY.load(Ordering::Relaxed) > TAILS_BUDGET)
            && self.tail.front().is_some_and(|e| e.ticket <= synced)
        {
            self.pop_tail();
        }
    }

    fn push_tail(&mut self, entry: Entry) {
        self.tail_memory.add(entry_memory(&entry.msg));
        self.tail.push_back(entry);
    }

    fn pop_tail(&mut self) {
        if let Some(e) = self.tail.pop_front() {
            self.tail_memory.sub(entry_memory(&e.msg));
        }
    }

    fn clear_tail(&mut self) {
        self.tail.clear();
        self.tail_memory.sub(self.tail_memory.bytes);
    }

    /// Put back what a restart found: the index from the segments' summaries, the last
    /// segment's entries in memory.
    pub fn restore(&mut self, recovered: RecoveredStream) {
        let next = recovered.next_offset();
        let segments = &recovered.segments;
        for (i, seg) in segments.iter().enumerate() {
            let end = segments.get(i + 1).map_or(next, |s| s.first_offset);
            if end <= seg.first_offset {
                continue;
            }
            let last_timestamp_ms = segments
                .get(i + 1)
                .map_or(seg.first_timestamp_ms, |s| s.first_timestamp_ms.max(seg.first_timestamp_ms));
            self.chunks.push_back(Chunk {
                first_offset: seg.first_offset,
                last_timestamp_ms,
                count: end - seg.first_offset,
                bytes: seg.bytes,
            });
            self.bytes += seg.bytes;
        }
        self.first_offset = segments.first().map_or(next, |s| s.first_offset);
        self.next_offset = next;
        for e in recovered.tail {
            let Some(msg) = Message::from_stored(e.message, 0, 0) else {
                tracing::warn!(offset = e.offset, "a stream entry whose header does not decode is not kept in memory");
                self.clear_tail();
                continue;
            };
            if let Some(c) = self.chunks.back_mut() {
                c.last_timestamp_ms = c.last_timestamp_ms.max(e.timestamp_ms);
            }
            self.push_tail(Entry { offset: e.offset, timestamp_ms: e.timestamp_ms, msg: Arc::new(msg), ticket: 0 });
        }
        // all of it is on disk: keep what the bounds allow (a last segment can be big)
        self.trim_tail(0);
    }

    fn push(&mut self, offset: u64, timestamp_ms: i64, msg: Arc<Message>, ticket: u64) {
        let size = msg.body_size();
        self.bytes += size;
        self.next_offset = offset + 1;
        match self.chunks.back_mut() {
            Some(c) if c.count < CHUNK_ENTRIES && c.bytes < CHUNK_BYTES => {
                c.count += 1;
                c.bytes += size;
                c.last_timestamp_ms = c.last_timestamp_ms.max(timestamp_ms);
            }
            _ => self.chunks.push_back(Chunk {
                first_offset: offset,
                last_timestamp_ms: timestamp_ms,
                count: 1,
                bytes: size,
            }),
        }
        self.push_tail(Entry { offset, timestamp_ms, msg, ticket });
    }

    /// Drop what retention no longer keeps, a chunk at a time (RabbitMQ drops whole
    /// segments); the newest chunk always stays, as RabbitMQ keeps the active segment.
    /// Returns the new first offset if anything went.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Option<u64> {
        let before = self.first_offset;
        if let Some(age) = self.retention.max_age {
            let oldest = now_ms.saturating_sub(age.as_millis() as i64);
            while self.chunks.len() > 1 && self.chunks.front().is_some_and(|c| c.last_timestamp_ms < oldest) {
                self.pop_chunk();
            }
        }
        if let Some(max) = self.retention.max_bytes {
            while self.bytes > max && self.chunks.len() > 1 {
                self.pop_chunk();
            }
        }
        (self.first_offset != before).then_some(self.first_offset)
    }

    fn pop_chunk(&mut self) {
        let Some(c) = self.chunks.pop_front() else { return };
        self.bytes = self.bytes.saturating_sub(c.bytes);
        self.first_offset = self.chunks.front().map_or(self.next_offset, |n| n.first_offset);
        while self.tail.front().is_some_and(|e| e.offset < self.first_offset) {
            self.pop_tail();
        }
    }

    /// Place a new consumer's cursor.
    pub fn add_consumer(&mut self, consumer: u64, start: StartAt) {
        let mut not_before_ms = None;
        let next = match start {
            StartAt::First => self.first_offset,
            StartAt::Last => self.next_offset.saturating_sub(1).max(self.first_offset),
            StartAt::Next => self.next_offset,
            StartAt::Offset(n) => n.clamp(self.first_offset, self.next_offset),
            StartAt::Timestamp(ms) => {
                let in_tail = self.tail.front().is_some_and(|e| e.timestamp_ms < ms);
                if in_tail || self.tail.front().is_some_and(|e| e.offset == self.first_offset) {
                    let pos = self.tail.partition_point(|e| e.timestamp_ms < ms);
                    self.tail.get(pos).map_or(self.next_offset, |e| e.offset)
                } else {
                    // on disk: start at the chunk that may hold it and skip what is older
                    not_before_ms = Some(ms);
                    self.chunks.iter().find(|c| c.last_timestamp_ms >= ms).map_or(self.next_offset, |c| c.first_offset)
                }
            }
        };
        self.cursors.insert(consumer, Cursor { next, not_before_ms, reader: None, pending: None });
    }

    pub fn remove_consumer(&mut self, consumer: u64) {
        self.cursors.remove(&consumer);
    }

    /// The entries `consumer` has not read yet, up to a batch, as deliverable messages: from
    /// the in-memory tail, or read from disk when the consumer is behind it. Hand back what
    /// was not delivered with [`StreamLog::advance`].
    pub fn unread(&mut self, consumer: u64) -> ReadyList {
        let first = self.first_offset;
        let tail_start = self.tail_start();
        let Some(cursor) = self.cursors.get_mut(&consumer) else { return ReadyList::default() };
        cursor.next = cursor.next.max(first);
        if let Some(pending) = cursor.pending.take()
            && pending.front().is_some_and(|m| m.seq == cursor.next)
        {
            return pending;
        }
        if cursor.next < tail_start
            && let Some(dir) = &self.dir
        {
            let out = read_from_disk(cursor, dir, tail_start);
            if !out.is_empty() {
                return out;
            }
            if cursor.next < tail_start {
                // Nothing on disk where the index says there is: go on from memory rather
                // than stall the consumer.
                tracing::warn!(from = cursor.next, to = tail_start, "stream entries missing on disk are skipped");
                cursor.next = tail_start;
                cursor.reader = None;
            }
        }
        let not_before = cursor.not_before_ms.take();
        let start = usize::try_from(cursor.next.saturating_sub(tail_start)).unwrap_or(usize::MAX);
        self.tail
            .iter()
            .skip(start)
            .skip_while(|e| not_before.is_some_and(|ms| e.timestamp_ms < ms))
            .take(DISPATCH_BATCH)
            .map(|e| QueuedMessage { seq: e.offset, msg: e.msg.clone(), redelivered: false })
            .collect()
    }

    /// `consumer` was handed `n` entries of its last `unread` batch, whose first entry had
    /// offset `first_seq`; `rest` is what it did not take.
    pub fn advance(&mut self, consumer: u64, first_seq: u64, n: usize, rest: ReadyList) {
        let first = self.first_offset;
        let tail_start = self.tail_start();
        if let Some(cursor) = self.cursors.get_mut(&consumer) {
            cursor.next = first_seq.max(first) + n as u64;
            // read from disk: kept, so the reader goes on from where it is
            if rest.front().is_some_and(|m| m.seq == cursor.next && m.seq < tail_start) {
                cursor.pending = Some(rest);
            }
        }
    }
}

/// What a stream's tail costs (`entry_memory` summed), counted in `TAILS_MEMORY` too when the
/// stream is stored (a memory-only stream cannot let go of its tail); given back when dropped.
#[derive(Debug, Default)]
struct TailMemory {
    bytes: u64,
    counted: bool,
}

impl TailMemory {
    fn add(&mut self, memory: u64) {
        self.bytes += memory;
        if self.counted {
            TAILS_MEMORY.fetch_add(memory, Ordering::Relaxed);
        }
    }

    fn sub(&mut self, memory: u64) {
        let memory = memory.min(self.bytes);
        self.bytes -= memory;
        if self.counted {
            TAILS_MEMORY.fetch_sub(memory, Ordering::Relaxed);
        }
    }
}

impl Drop for TailMemory {
    fn drop(&mut self) {
        self.sub(self.bytes);
    }
}

/// The next batch of `cursor` from the segment files in `dir`, below `below`.
fn read_from_disk(cursor: &mut Cursor, dir: &std::path::Path, below: u64) -> ReadyList {
    let mut reader = match cursor.reader.take() {
        Some(r) if r.next_offset() == cursor.next => r,
        _ => StreamReader::new(dir.to_owned(), cursor.next),
    };
    let mut out = ReadyList::default();
    loop {
        let entries = match crate::blocking::blocking(|| reader.read(below, DISPATCH_BATCH)) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(error = %e, "a stream segment does not read back");
                return out;
            }
        };
        if entries.is_empty() {
            cursor.next = cursor.next.max(reader.next_offset().min(below));
            cursor.reader = Some(reader);
            return out;
        }
        for e in entries {
            if cursor.not_before_ms.is_some_and(|ms| e.timestamp_ms < ms) || e.offset < cursor.next {
                // older than asked for: read past it
                cursor.next = cursor.next.max(e.offset + 1);
                continue;
            }
            cursor.not_before_ms = None;
            match Message::from_stored(e.message, 0, 0) {
                Some(msg) => out.push_back(QueuedMessage { seq: e.offset, msg: Arc::new(msg), redelivered: false }),
                None if out.is_empty() => {
                    tracing::warn!(offset = e.offset, "skipping a stream entry whose header does not decode");
                    cursor.next = e.offset + 1;
                }
                // delivered after what comes before it: the next reader starts over there
                None => return out,
            }
        }
        if !out.is_empty() {
            cursor.reader = Some(reader);
            return out;
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
        let mut log = StreamLog::new(Retention::default(), None);
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
        log.advance(1, 0, 2, ReadyList::default());
        assert_eq!(log.unread(1).front().map(|m| m.seq), Some(2));
    }

    fn big(fill: u8) -> Message {
        Message::derived("".into(), "s".into(), Default::default(), Bytes::from(vec![fill; 1 << 20]))
    }

    #[test]
    fn retention_by_age_and_bytes() {
        // 1 MiB entries: a chunk each, so retention goes entry by entry
        let mib = 1 << 20;
        let mut log =
            StreamLog::new(Retention { max_age: Some(Duration::from_secs(10)), max_bytes: Some(2 * mib) }, None);
        log.append(&big(0), 0);
        log.append(&big(1), 20_000);
        log.append(&big(2), 20_000);
        assert_eq!(log.enforce_retention(20_000), Some(1));
        assert_eq!(log.len(), 2);
        log.append(&big(3), 20_000);
        assert_eq!(log.enforce_retention(20_000), Some(2));
        log.add_consumer(9, StartAt::Offset(0));
        assert_eq!(log.unread(9).front().map(|m| m.seq), Some(2), "a cursor before the log starts at its head");
    }

    #[test]
    fn the_tail_keeps_within_its_memory_and_only_what_is_on_disk_goes() {
        let dir = std::env::temp_dir().join("warren-stream-tail-test");
        let mut log = StreamLog::new(Retention::default(), Some(dir));
        for i in 0..20u8 {
            log.append(&big(i), 0);
            log.stored(u64::from(i) + 1);
        }
        // nothing synced yet: every entry stays, whatever it costs
        log.trim_tail(0);
        assert_eq!(log.tail.len(), 20);
        assert!(log.tail_memory.bytes > 20 << 20);
        // synced up to the 15th: the oldest go until the tail is within its bound
        log.trim_tail(15);
        let memory: u64 = log.tail.iter().map(|e| entry_memory(&e.msg)).sum();
        assert_eq!(log.tail_memory.bytes, memory, "the count follows the entries");
        assert!(log.tail_memory.bytes <= TAIL_MEMORY, "{} bytes kept", log.tail_memory.bytes);
        assert!(log.tail.len() >= 5, "entries not on disk yet stay in memory");
        assert_eq!(log.tail.back().map(|e| e.offset), Some(19));
    }

    #[test]
    fn retention_drops_whole_chunks_and_keeps_the_newest() {
        let mut log = StreamLog::new(Retention { max_age: Some(Duration::from_secs(10)), max_bytes: None }, None);
        for _ in 0..2000 {
            log.append(&message(b"old"), 0);
        }
        log.append(&message(b"new"), 20_000);
        // the first chunk (1024 old entries) goes; the second holds a new one and stays
        assert_eq!(log.enforce_retention(20_000), Some(CHUNK_ENTRIES));
        assert_eq!(log.len(), 2001 - CHUNK_ENTRIES);
        assert_eq!(log.enforce_retention(1_000_000), None, "the newest chunk always stays");
        log.add_consumer(1, StartAt::Timestamp(20_000));
        assert_eq!(log.unread(1).front().map(|m| m.seq), Some(2000));
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
