//! Spill files: where a queue puts the messages behind its in-memory window that the journal
//! does not hold (transient messages, and every message of a non-durable queue), so a long
//! queue costs bytes on disk instead of RAM (RabbitMQ 3.10's classic queues v2 do the same).
//!
//! Nothing here survives a restart, and nothing needs to: these messages are transient. So
//! there is no fsync and no recovery; `Store::open` deletes what a previous run left.
//!
//! One `SpillFile` per queue, in a directory of its own: append-only segment files, written
//! through a small buffer. A queue reads its spilled messages back in the order it wrote them,
//! so a segment is deleted as soon as its last message has been read (or dropped).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;

use crate::StoreError;
use crate::journal::ReadMessage;
use crate::record::{self, Read, Record, StoredMessage};

/// Segments roll over at this size.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Writes are buffered up to this much.
const WRITE_BUFFER: usize = 64 << 10;

/// Where a spilled message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpillRef {
    segment: u32,
    offset: u32,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    id: u32,
    file: File,
    /// Bytes written to the file (the buffer holds more for the last segment).
    size: u64,
    /// Messages in it not yet read back or dropped.
    live: u64,
}

/// One queue's spilled messages.
#[derive(Debug)]
pub struct SpillFile {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    next_segment: u32,
    /// Bytes appended to the last segment but not written yet.
    buffer: Vec<u8>,
}

impl SpillFile {
    /// A spill file in `dir` (created on the first append).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, segments: VecDeque::new(), next_segment: 0, buffer: Vec::new() }
    }

    /// Bytes on disk and in the write buffer.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum::<u64>() + self.buffer.len() as u64
    }

    /// Append a message that arrived at `published_ms` (wall clock).
    pub fn append(&mut self, message: StoredMessage, published_ms: i64) -> Result<SpillRef, StoreError> {
        let start = self.buffer.len();
        record::encode(&Record::Message { id: 0, published_ms, message }, &mut self.buffer);
        let len = (self.buffer.len() - start) as u64;
        let need_segment = match self.segments.back() {
            Some(last) => last.size + start as u64 + len > SEGMENT_BYTES && last.size + start as u64 > 0,
            None => true,
        };
        if need_segment {
            // The record goes to a new segment: what was buffered before it goes to the old one.
            let record = self.buffer.split_off(start);
            self.flush()?;
            self.open_segment()?;
            self.buffer = record;
        }
        let dir = &self.dir;
        let segment =
            self.segments.back_mut().ok_or_else(|| StoreError::io(dir, std::io::ErrorKind::NotFound.into()))?;
        let offset = segment.size + (self.buffer.len() as u64 - len);
        segment.live += 1;
        let at = SpillRef { segment: segment.id, offset: offset as u32, len: len as u32 };
        // The record is counted and buffered: a write that fails now is tried again with the
        // next flush, so the message stays where `at` says.
        if self.buffer.len() >= WRITE_BUFFER
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "cannot write a spill file yet; the buffer keeps the messages");
        }
        Ok(at)
    }

    /// Read messages back, in the order given (the order they were appended), and let go of
    /// them: a segment whose messages have all been read is deleted.
    pub fn take_many(&mut self, refs: &[SpillRef]) -> Vec<Result<ReadMessage, StoreError>> {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "cannot write a spill file");
        }
        let places: Vec<(u32, u64, u64)> =
            refs.iter().map(|r| (r.segment, u64::from(r.offset), u64::from(r.len))).collect();
        let out = crate::reads::read_records(
            &places,
            |segment, start, end| {
                self.read_span(segment, start, end).map_err(|e| StoreError::io(&self.segment_path(segment), e))
            },
            |bytes, _| self.decode(bytes),
            |segment| StoreError::io(&self.segment_path(segment), std::io::ErrorKind::UnexpectedEof.into()),
        );
        for r in refs {
            self.release(*r);
        }
        out
    }

    /// A spilled message is gone without being read (purge, delete).
    pub fn release(&mut self, at: SpillRef) {
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == at.segment) {
            seg.live = seg.live.saturating_sub(1);
        }
        // Delete dead segments from the front; the last one stays open for appends.
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            if let Some(seg) = self.segments.pop_front() {
                let _ = fs::remove_file(self.segment_path(seg.id));
            }
        }
        if self.segments.len() == 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            // Nothing left at all: start the last segment over instead of growing it.
            self.buffer.clear();
            if let Some(seg) = self.segments.front_mut()
                && seg.file.set_len(0).is_ok()
            {
                seg.size = 0;
            }
        }
    }

    /// Drop everything (the queue was purged).
    pub fn clear(&mut self) {
        self.buffer.clear();
        for seg in self.segments.drain(..) {
            let _ = fs::remove_file(self.dir.join(segment_name(seg.id)));
        }
    }

    fn open_segment(&mut self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let id = self.next_segment;
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        self.next_segment += 1;
        self.segments.push_back(Segment { id, file, size: 0, live: 0 });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.segments.back_mut() else {
            self.buffer.clear();
            return Ok(());
        };
        let path = self.dir.join(segment_name(seg.id));
        seg.file.write_all_at(&self.buffer, seg.size).map_err(|e| StoreError::io(&path, e))?;
        seg.size += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn read_span(&self, segment: u32, start: u64, end: u64) -> std::io::Result<Bytes> {
        let seg = self.segments.iter().find(|s| s.id == segment).ok_or(std::io::ErrorKind::NotFound)?;
        let mut buf = vec![0; (end - start) as usize];
        seg.file.read_exact_at(&mut buf, start)?;
        Ok(Bytes::from(buf))
    }

    fn decode(&self, bytes: &Bytes) -> Result<ReadMessage, StoreError> {
        match record::decode(bytes) {
            Read::Record(Record::Message { published_ms, message, .. }, _) => Ok(ReadMessage { published_ms, message }),
            _ => Err(StoreError::corrupt(&self.dir, 0, "spilled message does not read back")),
        }
    }

    fn segment_path(&self, id: u32) -> PathBuf {
        self.dir.join(segment_name(id))
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        self.clear();
        let _ = fs::remove_dir(&self.dir);
    }
}

fn segment_name(id: u32) -> String {
    format!("{id:010}.spill")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: Vec<u8>) -> StoredMessage {
        StoredMessage {
            exchange: "x".into(),
            routing_key: "k".into(),
            header: Bytes::from_static(b"h"),
            body: Bytes::from(body),
        }
    }

    fn files(dir: &std::path::Path) -> usize {
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[test]
    fn reads_back_in_order_and_deletes_read_segments() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("q");
        let mut spill = SpillFile::new(dir.clone());
        // 40 messages of 1 MiB: three segments of 16 MiB.
        let refs: Vec<SpillRef> =
            (0..40u8).map(|i| spill.append(msg(vec![i; 1 << 20]), i64::from(i)).unwrap()).collect();
        assert_eq!(files(&dir), 3);
        assert!(spill.bytes() > 40 << 20);
        let first: Vec<_> = spill.take_many(&refs[..20]).into_iter().map(Result::unwrap).collect();
        assert_eq!(first.iter().map(|r| r.message.body[0]).collect::<Vec<_>>(), (0..20).collect::<Vec<u8>>());
        assert_eq!(first[7].published_ms, 7);
        // the first segment (15 messages) is gone
        assert_eq!(files(&dir), 2);
        let rest: Vec<_> = spill.take_many(&refs[20..]).into_iter().map(Result::unwrap).collect();
        assert_eq!(rest.last().map(|r| r.message.body[0]), Some(39));
        assert_eq!(files(&dir), 1);
        assert_eq!(spill.bytes(), 0, "an empty spill file starts over");
        // and is reused
        let again = spill.append(msg(b"small".to_vec()), 1).unwrap();
        let read = spill.take_many(&[again]).pop().unwrap().unwrap();
        assert_eq!(&read.message.body[..], b"small");
        drop(spill);
        assert!(!dir.exists(), "dropping the spill file removes its directory");
    }

    #[test]
    fn released_messages_free_their_segment_and_clear_removes_all() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("q");
        let mut spill = SpillFile::new(dir.clone());
        let refs: Vec<SpillRef> = (0..20u8).map(|i| spill.append(msg(vec![i; 1 << 20]), 0).unwrap()).collect();
        assert_eq!(files(&dir), 2);
        for r in &refs[..15] {
            spill.release(*r);
        }
        assert_eq!(files(&dir), 1);
        let read: Vec<_> = spill.take_many(&refs[15..]).into_iter().map(Result::unwrap).collect();
        assert_eq!(read[0].message.body[0], 15);
        spill.append(msg(vec![1; 10]), 0).unwrap();
        spill.clear();
        assert_eq!(files(&dir), 0);
    }
}
