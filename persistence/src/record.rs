//! On-disk records. Every record is framed as `[len u32 LE][crc32 u32 LE][payload]`; a record
//! whose checksum fails at the tail of the last segment is a torn write and is cut off.

use bytes::{Buf, BufMut, Bytes};

pub const FRAME: usize = 8;

/// A message as stored: routing information, the encoded content header, the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub exchange: String,
    pub routing_key: String,
    pub header: Bytes,
    pub body: Bytes,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A persistent message, stored once however many queues hold it. `published_ms` is the
    /// wall-clock time it arrived (TTLs count from it across restarts); 0 if unknown.
    Message {
        id: u64,
        published_ms: i64,
        message: StoredMessage,
    },
    Enqueue {
        queue: String,
        seq: u64,
        id: u64,
    },
    Ack {
        queue: String,
        seq: u64,
        id: u64,
    },
    /// Every message of the queue is gone (deleted or purged up to `below_seq`).
    Purge {
        queue: String,
        below_seq: u64,
    },
    /// The queue's messages with `from_seq <= seq < below_seq` are gone (a purge of messages
    /// that were paged out: the queue knows their range, not each one).
    AckRange {
        queue: String,
        from_seq: u64,
        below_seq: u64,
    },
    /// A stream entry (stream logs only).
    StreamEntry {
        offset: u64,
        timestamp_ms: i64,
        message: StoredMessage,
    },
    /// A message behind a queue's in-memory window (spill files only).
    Spilled {
        seq: u64,
        redelivered: bool,
        published_ms: i64,
        message: StoredMessage,
    },
    /// A persistent message behind a queue's window: where the journal holds it (spill files
    /// only; `id` is its journal message id).
    SpilledRef {
        seq: u64,
        redelivered: bool,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
    },
}

const MESSAGE: u8 = 1;
const ENQUEUE: u8 = 2;
const ACK: u8 = 3;
const PURGE: u8 = 4;
const STREAM_ENTRY: u8 = 5;
/// A message with its arrival time (kind 1 records, written before, have none).
const MESSAGE_AT: u8 = 6;
const SPILLED: u8 = 7;
const SPILLED_REF: u8 = 8;
const ACK_RANGE: u8 = 9;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.put_u32_le(s.len() as u32);
    out.put_slice(s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_u64_le(b.len() as u64);
    out.put_slice(b);
}

fn put_message(out: &mut Vec<u8>, m: &StoredMessage) {
    put_str(out, &m.exchange);
    put_str(out, &m.routing_key);
    put_bytes(out, &m.header);
    put_bytes(out, &m.body);
}

/// Append one framed record to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    match record {
        Record::Message { id, published_ms, message } => {
            out.put_u8(MESSAGE_AT);
            out.put_u64_le(*id);
            out.put_i64_le(*published_ms);
            put_message(out, message);
        }
        Record::Enqueue { queue, seq, id } => {
            out.put_u8(ENQUEUE);
            put_str(out, queue);
            out.put_u64_le(*seq);
            out.put_u64_le(*id);
        }
        Record::Ack { queue, seq, id } => {
            out.put_u8(ACK);
            put_str(out, queue);
            out.put_u64_le(*seq);
            out.put_u64_le(*id);
        }
        Record::Purge { queue, below_seq } => {
            out.put_u8(PURGE);
            put_str(out, queue);
            out.put_u64_le(*below_seq);
        }
        Record::AckRange { queue, from_seq, below_seq } => {
            out.put_u8(ACK_RANGE);
            put_str(out, queue);
            out.put_u64_le(*from_seq);
            out.put_u64_le(*below_seq);
        }
        Record::StreamEntry { offset, timestamp_ms, message } => {
            out.put_u8(STREAM_ENTRY);
            out.put_u64_le(*offset);
            out.put_i64_le(*timestamp_ms);
            put_message(out, message);
        }
        Record::Spilled { seq, redelivered, published_ms, message } => {
            out.put_u8(SPILLED);
            out.put_u64_le(*seq);
            out.put_u8(u8::from(*redelivered));
            out.put_i64_le(*published_ms);
            put_message(out, message);
        }
        Record::SpilledRef { seq, redelivered, id, segment, offset, len } => {
            out.put_u8(SPILLED_REF);
            out.put_u64_le(*seq);
            out.put_u8(u8::from(*redelivered));
            out.put_u64_le(*id);
            out.put_u32_le(*segment);
            out.put_u32_le(*offset);
            out.put_u32_le(*len);
        }
    }
    let len = (out.len() - start - FRAME) as u32;
    let crc = crc32fast::hash(&out[start + FRAME..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading one record found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Record(Record, usize),
    /// Not enough bytes for a whole record (the end, or a torn write).
    Truncated,
    /// The bytes are there but the checksum or the layout is wrong.
    Corrupt(&'static str),
}

struct Cursor {
    buf: Bytes,
}

impl Cursor {
    fn need(&self, n: usize) -> Result<(), &'static str> {
        if self.buf.remaining() < n { Err("record shorter than its fields") } else { Ok(()) }
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        self.need(4)?;
        Ok(self.buf.get_u32_le())
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        self.need(8)?;
        Ok(self.buf.get_u64_le())
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        self.need(8)?;
        Ok(self.buf.get_i64_le())
    }
    fn bytes(&mut self, len: usize) -> Result<Bytes, &'static str> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }
    fn string(&mut self) -> Result<String, &'static str> {
        self.need(4)?;
        let len = self.buf.get_u32_le() as usize;
        let b = self.bytes(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a name")
    }
    fn blob(&mut self) -> Result<Bytes, &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length too large")?;
        self.bytes(len)
    }
    fn message(&mut self) -> Result<StoredMessage, &'static str> {
        Ok(StoredMessage {
            exchange: self.string()?,
            routing_key: self.string()?,
            header: self.blob()?,
            body: self.blob()?,
        })
    }
}

/// The whole length (frame and payload) of the record that starts `buf`, from its frame; None
/// when `buf` is shorter than a frame.
pub fn whole_len(buf: &[u8]) -> Option<u64> {
    let len = buf.first_chunk::<4>().filter(|_| buf.len() >= FRAME).map(|len| u32::from_le_bytes(*len))?;
    Some(FRAME as u64 + u64::from(len))
}

/// Decode the record at the start of `buf` (a slice of a segment); bodies share `buf`.
pub fn decode(buf: &Bytes) -> Read {
    let Some(whole) = whole_len(buf) else {
        return Read::Truncated;
    };
    let len = whole as usize - FRAME;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if buf.len() < FRAME + len {
        return Read::Truncated;
    }
    let payload = buf.slice(FRAME..FRAME + len);
    if crc32fast::hash(&payload) != crc {
        return Read::Corrupt("checksum mismatch");
    }
    let mut c = Cursor { buf: payload };
    let record = (|| -> Result<Record, &'static str> {
        Ok(match c.u8()? {
            MESSAGE => Record::Message { id: c.u64()?, published_ms: 0, message: c.message()? },
            MESSAGE_AT => Record::Message { id: c.u64()?, published_ms: c.i64()?, message: c.message()? },
            ENQUEUE => Record::Enqueue { queue: c.string()?, seq: c.u64()?, id: c.u64()? },
            ACK => Record::Ack { queue: c.string()?, seq: c.u64()?, id: c.u64()? },
            PURGE => Record::Purge { queue: c.string()?, below_seq: c.u64()? },
            STREAM_ENTRY => Record::StreamEntry { offset: c.u64()?, timestamp_ms: c.i64()?, message: c.message()? },
            ACK_RANGE => Record::AckRange { queue: c.string()?, from_seq: c.u64()?, below_seq: c.u64()? },
            SPILLED => Record::Spilled {
                seq: c.u64()?,
                redelivered: c.u8()? != 0,
                published_ms: c.i64()?,
                message: c.message()?,
            },
            SPILLED_REF => Record::SpilledRef {
                seq: c.u64()?,
                redelivered: c.u8()? != 0,
                id: c.u64()?,
                segment: c.u32()?,
                offset: c.u32()?,
                len: c.u32()?,
            },
            _ => return Err("unknown record kind"),
        })
    })();
    match record {
        Ok(r) => Read::Record(r, FRAME + len),
        Err(e) => Read::Corrupt(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> StoredMessage {
        StoredMessage {
            exchange: "x".into(),
            routing_key: "k".into(),
            header: Bytes::from_static(b"hdr"),
            body: Bytes::from_static(b"body"),
        }
    }

    #[test]
    fn round_trip_every_kind() {
        let records = vec![
            Record::Message { id: 7, published_ms: 1_700_000_000_000, message: msg() },
            Record::Enqueue { queue: "q".into(), seq: 1, id: 7 },
            Record::Ack { queue: "q".into(), seq: 1, id: 7 },
            Record::Purge { queue: "q".into(), below_seq: 9 },
            Record::AckRange { queue: "q".into(), from_seq: 3, below_seq: 9 },
            Record::StreamEntry { offset: 3, timestamp_ms: -5, message: msg() },
            Record::Spilled { seq: 4, redelivered: true, published_ms: 11, message: msg() },
            Record::SpilledRef { seq: 5, redelivered: false, id: 8, segment: 2, offset: 300, len: 40 },
        ];
        let mut out = Vec::new();
        for r in &records {
            encode(r, &mut out);
        }
        let mut buf = Bytes::from(out);
        for r in records {
            match decode(&buf) {
                Read::Record(got, used) => {
                    assert_eq!(got, r);
                    buf.advance(used);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(decode(&buf), Read::Truncated);
    }

    #[test]
    fn a_message_written_without_its_time_still_reads() {
        let mut payload = vec![MESSAGE];
        payload.put_u64_le(9);
        put_message(&mut payload, &msg());
        let mut out = Vec::new();
        out.put_u32_le(payload.len() as u32);
        out.put_u32_le(crc32fast::hash(&payload));
        out.extend_from_slice(&payload);
        let want = Record::Message { id: 9, published_ms: 0, message: msg() };
        assert_eq!(decode(&Bytes::from(out)), Read::Record(want, FRAME + payload.len()));
    }

    #[test]
    fn torn_and_corrupt_records_are_detected() {
        let mut out = Vec::new();
        encode(&Record::Ack { queue: "q".into(), seq: 1, id: 2 }, &mut out);
        let torn = Bytes::from(out[..out.len() - 1].to_vec());
        assert_eq!(decode(&torn), Read::Truncated);
        let mut flipped = out.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(decode(&Bytes::from(flipped)), Read::Corrupt(_)));
    }
}
