//! Spill files: where a queue puts the messages behind its in-memory window, so a long queue
//! costs bytes on disk instead of RAM (RabbitMQ 3.10's classic queues v2 do the same).
//! Transient messages (and every message of a non-durable queue) are copied in whole; a
//! persistent message the journal holds is written as its place in the journal.
//!
//! A spill file is a FIFO: records are appended at the end and read back from the front, in
//! order, so the queue keeps no per-message index in memory, only a count. Appends are
//! buffered and written by the spill writer thread (`writer`), never by the queue's own
//! thread; until a buffer is written, reads are served from it.
//!
//! Nothing here survives a restart, and nothing needs to: the transient messages are void
//! after one and the persistent ones are recovered from the journal. So there is no fsync and
//! no recovery; `Store::open` deletes what a previous run left.

mod reader;
mod writer;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Buf, Bytes};

use crate::StoreError;
use crate::journal::{Location, ReadMessage};
use crate::record::{self, Read, Record, StoredMessage};
pub use reader::JournalReader;
use writer::{Chunk, Job, OnRead, Shared};

/// Segments roll over at this size; a segment is deleted once it has been read.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Appends are handed to the writer in chunks of this size.
const WRITE_BUFFER: usize = 64 << 10;
/// Reads go this far ahead at most.
const READ_AHEAD: u64 = 256 << 10;
/// The reader thread reads ahead at least this much (and as much as the last read took)...
const PREFETCH_MIN: u64 = 256 << 10;
/// ... and at most this much.
const PREFETCH_MAX: u64 = 4 << 20;

/// A record read back.
#[derive(Debug)]
pub struct SpillRecord {
    pub seq: u64,
    pub redelivered: bool,
    pub body: SpillBody,
}

#[derive(Debug)]
pub enum SpillBody {
    /// The message itself, with its arrival time (wall clock).
    Message { published_ms: i64, message: StoredMessage },
    /// A persistent message: its journal id and place, and the journal's copy where the
    /// reader thread read it ahead (None: read it from the journal).
    InJournal { id: u64, location: Location, copy: Option<ReadMessage> },
}

#[derive(Debug)]
struct Segment {
    id: u32,
    file: Arc<File>,
    /// Where it starts in the logical byte stream of the spill file.
    start: u64,
    /// Bytes appended to it (written, handed to the writer, or still buffered).
    size: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// One queue's spilled messages.
#[derive(Debug)]
pub struct SpillFile {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    next_segment: u32,
    /// Bytes appended and not handed to the writer yet (the end of the last segment).
    buffer: Vec<u8>,
    /// The logical end: every byte ever appended.
    end: u64,
    /// The logical read position.
    read_at: u64,
    /// Records appended and not read yet.
    records: u64,
    shared: Arc<Shared>,
    /// Reads the persistent messages spilled by reference from the journal, ahead.
    journal: Option<JournalReader>,
}

impl SpillFile {
    /// A spill file in `dir` (created on the first append).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            segments: VecDeque::new(),
            next_segment: 0,
            buffer: Vec::new(),
            end: 0,
            read_at: 0,
            records: 0,
            shared: Arc::new(Shared::default()),
            journal: None,
        }
    }

    /// A spill file whose read-ahead also reads the persistent messages it holds by reference
    /// from the journal (with `journal`), so its records come back with their messages.
    pub fn with_journal_reader(dir: PathBuf, journal: JournalReader) -> Self {
        let mut file = Self::new(dir);
        file.journal = Some(journal);
        file
    }

    /// Records not read yet.
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes of unread records (on disk, waiting for the writer, or buffered).
    pub fn bytes(&self) -> u64 {
        self.end - self.read_at
    }

    /// Bytes held in memory until the writer has written them: a queue whose publishers
    /// outrun the disk sees this grow, and throttles them.
    pub fn unwritten(&self) -> u64 {
        self.shared.state.lock().unwritten() + self.buffer.len() as u64
    }

    /// Append a message (transient, or of a queue the journal does not keep).
    pub fn append_message(
        &mut self,
        seq: u64,
        redelivered: bool,
        published_ms: i64,
        message: StoredMessage,
    ) -> Result<(), StoreError> {
        self.append(&Record::Spilled { seq, redelivered, published_ms, message })
    }

    /// Append a persistent message by its place in the journal.
    pub fn append_ref(&mut self, seq: u64, redelivered: bool, id: u64, location: Location) -> Result<(), StoreError> {
        let Location { segment, offset, len } = location;
        self.append(&Record::SpilledRef { seq, redelivered, id, segment, offset, len })
    }

    fn append(&mut self, record: &Record) -> Result<(), StoreError> {
        let start = self.buffer.len();
        record::encode(record, &mut self.buffer);
        let len = (self.buffer.len() - start) as u64;
        let roll = self.segments.back().is_none_or(|last| last.size > 0 && last.size + len > SEGMENT_BYTES);
        if roll {
            // What was buffered before this record belongs to the segment it rolls away from.
            let record = self.buffer.split_off(start);
            self.hand_off();
            // (on an error the record is not appended: the caller keeps the message)
            self.open_segment()?;
            self.buffer = record;
        }
        if let Some(last) = self.segments.back_mut() {
            last.size += len;
        }
        self.end += len;
        self.records += 1;
        if self.buffer.len() >= WRITE_BUFFER {
            self.hand_off();
        }
        Ok(())
    }

    /// Give the buffered bytes to the writer thread.
    fn hand_off(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let Some(seg) = self.segments.back() else {
            self.buffer.clear();
            return;
        };
        let data = Bytes::from(std::mem::take(&mut self.buffer));
        let start = self.end - data.len() as u64;
        let file_offset = start - seg.start;
        self.shared.state.lock().push(Chunk { start, data });
        writer::submit(Job { shared: self.shared.clone(), file: seg.file.clone(), file_offset, start });
    }

    /// Read up to `max` records from the front, in the order they were appended; the space
    /// they took is let go of (a segment read to its end is deleted). May read the file.
    pub fn take(&mut self, max: usize) -> Result<Vec<SpillRecord>, StoreError> {
        let from = self.read_at;
        let out = self.take_records(max, u64::MAX)?;
        self.read_ahead(self.read_at - from);
        Ok(out)
    }

    /// Like `take`, but only the records wholly in memory (read ahead, not written yet, or
    /// buffered): never reads the file, so a queue may call it under its lock on a runtime
    /// thread. Empty when the next record is on disk only: see `when_read`.
    pub fn take_in_memory(&mut self, max: usize) -> Result<Vec<SpillRecord>, StoreError> {
        let limit = {
            let st = self.shared.state.lock();
            let ahead = st.prefetched_end(self.read_at);
            // everything from `written` on is in the writer's chunks or the buffer
            if ahead >= st.written { self.end } else { ahead }
        };
        let from = self.read_at;
        let out = self.take_records(max, limit)?;
        self.read_ahead(self.read_at - from);
        Ok(out)
    }

    /// The next record is not (wholly) in memory: have the reader thread read on from where
    /// memory ends, and run `wake` (on that thread) once that has landed or failed; then
    /// `take_in_memory` again. False where waiting cannot help: the last read-ahead failed,
    /// the reader thread is gone, or there is nothing on disk to wait for: read with `take`.
    pub fn when_read(&mut self, wake: impl FnOnce() + Send + 'static) -> bool {
        let Some(seg) = self.reading_segment() else {
            return false;
        };
        let mut st = self.shared.state.lock();
        let from = st.prefetched_end(self.read_at);
        let to = seg.end().min(st.written);
        if std::mem::take(&mut st.read_failed) || from >= to {
            return false;
        }
        st.on_read = Some(OnRead(Box::new(wake)));
        if st.prefetching {
            // the read-ahead on its way starts where memory ended when it was asked for (at or
            // below `from`): it lands, or the retry asks again
            return true;
        }
        st.prefetching = true;
        // a record partly in memory already may be long: read more at once
        let len = if from > self.read_at { PREFETCH_MAX } else { PREFETCH_MIN };
        drop(st);
        if self.read_into_memory(seg, from, to.min(from + len)) {
            return true;
        }
        self.shared.state.lock().on_read = None;
        false
    }

    /// Records from the front, up to `max` and up to byte `limit` (u64::MAX: as far as there
    /// are records, reading the file where needed; below it, whole records only).
    fn take_records(&mut self, max: usize, limit: u64) -> Result<Vec<SpillRecord>, StoreError> {
        let mut out = Vec::with_capacity(max.min(self.records as usize));
        // the records spilled by reference: their place in `out` and their logical offset
        let mut refs = Vec::new();
        while out.len() < max && self.read_at < self.end.min(limit) {
            let Some(seg) = self.segments.front() else { break };
            if self.read_at >= seg.end() {
                self.drop_front_segment();
                continue;
            }
            let seg_end = seg.end();
            let to = seg_end.min(self.read_at + READ_AHEAD).min(limit);
            let mut bytes = self.fetch(self.read_at, to)?;
            let mut used = 0u64;
            while out.len() < max {
                match record::decode(&bytes) {
                    Read::Record(r, n) => {
                        let record = self.to_spill_record(r)?;
                        if matches!(record.body, SpillBody::InJournal { .. }) {
                            refs.push((out.len(), self.read_at + used));
                        }
                        out.push(record);
                        bytes.advance(n);
                        used += n as u64;
                    }
                    // the rest of the record is not in memory
                    Read::Truncated if to == limit => break,
                    Read::Truncated if used == 0 => {
                        // one record longer than the read-ahead: read exactly it
                        let whole = self.record_len(&bytes)?;
                        if whole <= bytes.len() as u64 || self.read_at + whole > seg_end {
                            return Err(self.corrupt("a record longer than its segment"));
                        }
                        if self.read_at + whole > limit {
                            break; // not all of it in memory
                        }
                        bytes = self.fetch(self.read_at, self.read_at + whole)?;
                    }
                    Read::Truncated => break,
                    Read::Corrupt(reason) => return Err(self.corrupt(reason)),
                }
            }
            if used == 0 {
                break;
            }
            self.read_at += used;
        }
        self.records -= out.len() as u64;
        // the journal's copies the reader thread read ahead, under one lock for the batch (and
        // before `note_read`, which lets go of copies behind the reading point)
        if !refs.is_empty() {
            let mut st = self.shared.state.lock();
            for (i, at) in refs {
                if let Some(SpillBody::InJournal { copy, .. }) = out.get_mut(i).map(|r| &mut r.body) {
                    *copy = st.take_from_journal(at);
                }
            }
        }
        self.note_read();
        Ok(out)
    }

    /// Ask the reader thread for the bytes after `read_at` that are on disk (about `took`, what
    /// the last read took), unless it holds or is reading them already.
    fn read_ahead(&mut self, took: u64) {
        let Some(seg) = self.reading_segment() else {
            return;
        };
        let mut st = self.shared.state.lock();
        let want = took.clamp(PREFETCH_MIN, PREFETCH_MAX);
        // go on from what was read ahead already, once less than half of `want` is left
        let start = st.prefetched_end(self.read_at);
        let end = seg.end().min(st.written).min(start + want);
        let copies_full = st.from_journal_bytes >= reader::FROM_JOURNAL_MAX;
        if st.prefetching || copies_full || start >= self.read_at + want / 2 || end <= start {
            return;
        }
        st.prefetching = true;
        drop(st);
        let _ = self.read_into_memory(seg, start, end);
    }

    /// The segment `read_at` is in (None: everything has been read).
    fn reading_segment(&self) -> Option<&Segment> {
        self.segments.iter().find(|s| s.start <= self.read_at && self.read_at < s.end())
    }

    /// Have the reader thread read `[start, end)` of `seg` into the read-ahead (the caller set
    /// `prefetching`); false where the thread is gone.
    fn read_into_memory(&self, seg: &Segment, start: u64, end: u64) -> bool {
        reader::submit(reader::Job {
            shared: self.shared.clone(),
            file: seg.file.clone(),
            file_offset: start - seg.start,
            start,
            len: end - start,
            journal: self.journal.clone(),
        })
    }

    /// The whole length of the record whose start is in `bytes`.
    fn record_len(&self, bytes: &Bytes) -> Result<u64, StoreError> {
        record::whole_len(bytes).ok_or_else(|| self.corrupt("a record cut short"))
    }

    /// Tell the writer how far reading got; start over when everything has been read.
    fn note_read(&mut self) {
        {
            let mut st = self.shared.state.lock();
            st.read_at = self.read_at;
            st.forget_read();
        }
        if self.read_at == self.end {
            // Nothing left: drop every segment and the buffer; the next append starts anew.
            self.buffer.clear();
            while !self.segments.is_empty() {
                self.drop_front_segment();
            }
            self.records = 0;
        }
    }

    fn drop_front_segment(&mut self) {
        if let Some(seg) = self.segments.pop_front() {
            // The writer may still hold it open: writing into an unlinked file is harmless.
            let _ = fs::remove_file(self.segment_path(seg.id));
        }
    }

    /// The bytes of [from, to) (one segment): from the file below what the writer has written,
    /// from its pending chunks and this file's buffer above.
    fn fetch(&self, from: u64, to: u64) -> Result<Bytes, StoreError> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.start <= from && to <= s.end())
            .ok_or_else(|| self.corrupt("a read outside the spill file's segments"))?;
        let disk_from;
        let mut out;
        let written = {
            let st = self.shared.state.lock();
            // A read-ahead that covers it all is the answer as it is.
            if let Some(p) = st.prefetched.iter().find(|p| p.start <= from && to <= p.end()) {
                return Ok(p.data.slice((from - p.start) as usize..(to - p.start) as usize));
            }
            out = vec![0u8; (to - from) as usize];
            for c in st.chunks().chain(st.prefetched.iter()) {
                copy_overlap(&mut out, from, c.start, &c.data);
            }
            disk_from = st.prefetched_end(from);
            st.written
        };
        copy_overlap(&mut out, from, self.end - self.buffer.len() as u64, &self.buffer);
        let on_disk = to.min(written);
        if on_disk > disk_from {
            let path = self.segment_path(seg.id);
            seg.file
                .read_exact_at(&mut out[(disk_from - from) as usize..(on_disk - from) as usize], disk_from - seg.start)
                .map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(Bytes::from(out))
    }

    /// A record read back (a reference's journal copy, if any, is filled in by the caller).
    fn to_spill_record(&self, record: Record) -> Result<SpillRecord, StoreError> {
        match record {
            Record::Spilled { seq, redelivered, published_ms, message } => {
                Ok(SpillRecord { seq, redelivered, body: SpillBody::Message { published_ms, message } })
            }
            Record::SpilledRef { seq, redelivered, id, segment, offset, len } => Ok(SpillRecord {
                seq,
                redelivered,
                body: SpillBody::InJournal { id, location: Location { segment, offset, len }, copy: None },
            }),
            _ => Err(self.corrupt("not a spill record")),
        }
    }

    fn corrupt(&self, reason: &'static str) -> StoreError {
        StoreError::corrupt(&self.dir, self.read_at, reason)
    }

    /// Drop everything (the queue was purged or deleted).
    pub fn clear(&mut self) {
        self.read_at = self.end;
        self.note_read();
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
        self.segments.push_back(Segment { id, file: Arc::new(file), start: self.end, size: 0 });
        Ok(())
    }

    fn segment_path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id:010}.spill"))
    }
}

/// Start a thread named `name` that runs `run` on every job sent to the returned sender, for
/// as long as the process lives; None (with a warning) where it cannot be started.
fn start_worker<J: Send + 'static>(name: &str, run: fn(&J)) -> Option<parking_lot::Mutex<std::sync::mpsc::Sender<J>>> {
    let (tx, rx) = std::sync::mpsc::channel::<J>();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        for job in rx {
            run(&job);
        }
    });
    match spawned {
        Ok(_) => Some(parking_lot::Mutex::new(tx)),
        Err(e) => {
            tracing::warn!(thread = name, error = %e, "cannot start a spill thread; its work is done inline or not at all");
            None
        }
    }
}

/// Copy the part of `data` (at logical `data_start`) that falls in `out` (at logical `from`).
fn copy_overlap(out: &mut [u8], from: u64, data_start: u64, data: &[u8]) {
    let to = from + out.len() as u64;
    let lo = from.max(data_start);
    let hi = to.min(data_start + data.len() as u64);
    if lo < hi {
        out[(lo - from) as usize..(hi - from) as usize]
            .copy_from_slice(&data[(lo - data_start) as usize..(hi - data_start) as usize]);
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.clear();
        let _ = fs::remove_dir(&self.dir);
    }
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

    fn body_of(r: &SpillRecord) -> u8 {
        match &r.body {
            SpillBody::Message { message, .. } => message.body[0],
            SpillBody::InJournal { id, .. } => *id as u8,
        }
    }

    /// Wait for the writer thread to catch up.
    fn settle(spill: &SpillFile) {
        for _ in 0..500 {
            if spill.unwritten() < WRITE_BUFFER as u64 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the spill writer did not write");
    }

    #[test]
    fn reads_back_in_order_and_deletes_read_segments() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("q");
        let mut spill = SpillFile::new(dir.clone());
        // 40 messages of 1 MiB: three segments of 16 MiB.
        for i in 0..40u8 {
            spill.append_message(u64::from(i), i % 2 == 0, i64::from(i), msg(vec![i; 1 << 20])).unwrap();
        }
        assert_eq!(files(&dir), 3);
        assert_eq!(spill.len(), 40);
        assert!(spill.bytes() > 40 << 20);
        settle(&spill);
        let first = spill.take(20).unwrap();
        assert_eq!(first.iter().map(body_of).collect::<Vec<_>>(), (0..20).collect::<Vec<u8>>());
        assert_eq!(first[7].seq, 7);
        assert!(first[6].redelivered && !first[7].redelivered);
        assert!(matches!(first[7].body, SpillBody::Message { published_ms: 7, .. }));
        // the first segment (15 messages) is gone
        assert_eq!(files(&dir), 2);
        let rest = spill.take(100).unwrap();
        assert_eq!(rest.len(), 20);
        assert_eq!(rest.last().map(body_of), Some(39));
        assert_eq!(files(&dir), 0, "a spill file read to its end lets go of every segment");
        assert_eq!((spill.len(), spill.bytes()), (0, 0));
        // and is used again
        spill.append_message(1, false, 1, msg(b"small".to_vec())).unwrap();
        let read = spill.take(1).unwrap();
        assert_eq!(read.len(), 1);
        drop(spill);
        assert!(!dir.exists(), "dropping the spill file removes its directory");
    }

    #[test]
    fn small_records_read_in_batches_from_disk_and_from_unwritten_buffers() {
        let root = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::new(root.path().join("q"));
        let location = Location { segment: 3, offset: 9, len: 60 };
        for i in 0..100_000u64 {
            if i % 3 == 0 {
                spill.append_ref(i, false, i % 251, location).unwrap();
            } else {
                spill.append_message(i, false, 0, msg(vec![(i % 251) as u8; 16])).unwrap();
            }
        }
        // read right away: some of it may not be written yet
        let mut seen = 0u64;
        loop {
            let batch = spill.take(1024).unwrap();
            if batch.is_empty() {
                break;
            }
            for r in batch {
                assert_eq!(r.seq, seen);
                assert_eq!(u64::from(body_of(&r)), seen % 251);
                if let SpillBody::InJournal { location: l, .. } = r.body {
                    assert_eq!(l, location);
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 100_000);
        assert_eq!(spill.unwritten(), 0);
    }

    #[test]
    fn a_record_bigger_than_the_read_ahead_reads_whole() {
        let root = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::new(root.path().join("q"));
        spill.append_message(0, false, 0, msg(vec![1; 3 << 20])).unwrap();
        spill.append_message(1, false, 0, msg(vec![2; 10])).unwrap();
        settle(&spill);
        let read = spill.take(5).unwrap();
        assert_eq!(read.iter().map(body_of).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn reads_after_the_first_come_from_the_read_ahead() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("q");
        let mut spill = SpillFile::new(dir.clone());
        for i in 0..2_000u64 {
            spill.append_message(i, false, 0, msg(vec![(i % 251) as u8; 200])).unwrap();
        }
        settle(&spill);
        assert_eq!(spill.take(100).unwrap().len(), 100);
        for _ in 0..500 {
            if !spill.shared.state.lock().prefetched.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ahead = spill.shared.state.lock().prefetched.front().map(|p| (p.start, p.end()));
        let (start, end) = ahead.expect("the reader thread read ahead");
        assert_eq!(start, spill.read_at);
        // Spoil the file where the read-ahead was taken from: the next reads do not see it.
        let file = OpenOptions::new().write(true).open(spill.segment_path(0)).unwrap();
        file.write_all_at(&vec![0xAB; (end - start) as usize], start).unwrap();
        let taken_bytes = end - start;
        let mut seen = 100u64;
        let mut read = 0u64;
        while read + 300 < taken_bytes {
            let batch = spill.take(10).unwrap();
            for r in &batch {
                assert_eq!(r.seq, seen);
                assert_eq!(u64::from(body_of(r)), seen % 251);
                seen += 1;
            }
            read = spill.read_at - start;
        }
        assert!(seen > 1_000, "a read-ahead of at least 256 KiB holds over 900 records: {seen}");
    }

    /// Drain the file with `take_in_memory` only, waiting on `when_read` whenever nothing is
    /// in memory: every record comes back in order.
    #[test]
    fn takes_in_memory_wait_for_the_reader_and_never_read_the_file() {
        let root = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::new(root.path().join("q"));
        for i in 0..20_000u64 {
            spill.append_message(i, false, 0, msg(vec![(i % 251) as u8; 100])).unwrap();
        }
        settle(&spill);
        assert!(spill.shared.state.lock().written > 1 << 20, "mostly on disk");
        let mut seen = 0u64;
        let mut waits = 0;
        while seen < 20_000 {
            let batch = spill.take_in_memory(1024).unwrap();
            if batch.is_empty() {
                let (tx, rx) = std::sync::mpsc::channel();
                assert!(spill.when_read(move || tx.send(()).unwrap()), "the reader thread takes the job");
                rx.recv_timeout(std::time::Duration::from_secs(10)).expect("woken when the read lands");
                waits += 1;
                continue;
            }
            for r in batch {
                assert_eq!(r.seq, seen);
                assert_eq!(u64::from(body_of(&r)), seen % 251);
                seen += 1;
            }
        }
        assert!((1..50).contains(&waits), "waited {waits} times");
        assert!(spill.take_in_memory(10).unwrap().is_empty());
        assert!(!spill.when_read(|| ()), "nothing left to wait for");
    }

    /// Persistent messages spilled by reference come back from the reader thread with the
    /// journal's copies, read in order, and never more copies held than the bound allows.
    #[test]
    fn the_reader_reads_journal_copies_ahead_within_its_bound() {
        // 100 KiB messages: 82 of them fill the bound
        drain_with_journal_copies(100 << 10, 3_000);
        // 1 KiB messages: read-aheads end inside a record and are cut back to one
        drain_with_journal_copies(1 << 10, 30_000);
    }

    fn drain_with_journal_copies(len: u32, n: u64) {
        let root = tempfile::tempdir().unwrap();
        let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = reads.clone();
        // A fake journal: the message at offset n has a body of `len` bytes of n % 251.
        let journal = JournalReader::new(move |places| {
            counted.fetch_add(places.len() as u64, std::sync::atomic::Ordering::Relaxed);
            places
                .iter()
                .map(|l| {
                    Ok(ReadMessage { published_ms: 0, message: msg(vec![(l.offset % 251) as u8; l.len as usize]) })
                })
                .collect()
        });
        let mut spill = SpillFile::with_journal_reader(root.path().join("q"), journal);
        for i in 0..n {
            spill.append_ref(i, false, i, Location { segment: 0, offset: i as u32, len }).unwrap();
        }
        settle(&spill);
        // every record is the same size; those written to the file come through the reader
        let size = spill.end / n;
        assert_eq!(size * n, spill.end);
        let written = spill.shared.state.lock().written;
        assert!(written > spill.end / 2, "mostly on disk");
        let (mut seen, mut copies, mut waits) = (0u64, 0u64, 0);
        while seen < n {
            let batch = spill.take_in_memory(64).unwrap();
            {
                let st = spill.shared.state.lock();
                assert!(
                    st.from_journal_bytes <= reader::FROM_JOURNAL_MAX + u64::from(len),
                    "{}",
                    st.from_journal_bytes
                );
            }
            if batch.is_empty() {
                let (tx, rx) = std::sync::mpsc::channel();
                assert!(spill.when_read(move || tx.send(()).unwrap()));
                rx.recv_timeout(std::time::Duration::from_secs(10)).expect("woken when the read lands");
                waits += 1;
                continue;
            }
            for r in batch {
                assert_eq!(r.seq, seen);
                let SpillBody::InJournal { id, location, copy } = r.body else { panic!("a reference") };
                assert_eq!((id, u64::from(location.offset)), (seen, seen));
                assert_eq!(copy.is_some(), (seen + 1) * size <= written, "record {seen}");
                if let Some(copy) = copy {
                    assert_eq!(copy.message.body.len(), len as usize);
                    assert_eq!(copy.message.body[0], (seen % 251) as u8);
                    copies += 1;
                }
                seen += 1;
            }
        }
        assert_eq!(copies, written / size, "every record on disk came with its copy ({waits} waits)");
        let read = reads.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= n + 100, "each copy read about once: {read}");
    }

    #[test]
    fn a_record_held_in_part_is_read_on_by_the_reader() {
        let root = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::new(root.path().join("q"));
        spill.append_message(0, false, 0, msg(vec![1; 10])).unwrap();
        spill.append_message(1, false, 0, msg(vec![2; 1 << 20])).unwrap();
        settle(&spill);
        // the read-ahead (256 KiB) holds the small record and the start of the big one: waiting
        // again brings the rest of it
        let mut got: Vec<u8> = spill.take_in_memory(5).unwrap().iter().map(body_of).collect();
        for _ in 0..10 {
            if got.len() == 2 {
                break;
            }
            let batch = spill.take_in_memory(5).unwrap();
            if batch.is_empty() {
                let (tx, rx) = std::sync::mpsc::channel();
                assert!(spill.when_read(move || tx.send(()).unwrap()));
                rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
            }
            got.extend(batch.iter().map(body_of));
        }
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn clear_removes_everything() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("q");
        let mut spill = SpillFile::new(dir.clone());
        for i in 0..20u8 {
            spill.append_message(u64::from(i), false, 0, msg(vec![i; 1 << 20])).unwrap();
        }
        assert_eq!(files(&dir), 2);
        spill.clear();
        assert_eq!(files(&dir), 0);
        assert_eq!((spill.len(), spill.bytes(), spill.unwritten()), (0, 0, 0));
        assert!(spill.take(10).unwrap().is_empty());
    }
}
