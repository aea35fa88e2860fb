//! The message journal: append-only segment files written by one persister thread with group
//! commit. Everything that arrived together is written, then each file touched is
//! fdatasync'd once, and only then is the batch's highest ticket published as synced — the
//! point after which confirms may go out.
//!
//! A persistent message is stored once (a `Message` record) however many durable queues it
//! is routed to (one `Enqueue` record each). Acks append `Ack` records and lower the live count
//! of the segment holding the message; dead segments at the front are deleted. Stream queues
//! have logs of their own (`streams/<name>/`), so long retention never pins the journal.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::StoreError;
use crate::record::{self, Read, Record, StoredMessage};
use crate::segments::{list_segments, read_segment, segment_name, segment_number};
use crate::stream_read::{self, RecoveredStream};

/// Journal segments roll over at this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Stream segments roll over at this size (retention works segment by segment).
pub const STREAM_SEGMENT_BYTES: u64 = 8 << 20;

/// Where a message record sits in the journal: read it back with [`Journal::read_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
}

/// What storing a message gave back.
#[derive(Clone, Copy, Debug)]
pub struct Published {
    pub id: u64,
    /// On disk once the synced ticket reaches this.
    pub ticket: u64,
    pub location: Location,
}

enum Command {
    /// Encoded records for journal segment `segment`; `message`: a new message id and how
    /// many enqueues reference it.
    Journal {
        ticket: u64,
        segment: u64,
        bytes: Vec<u8>,
        message: Option<(u64, u32)>,
        /// Messages let go of: (id, how many references to it or to messages of its segment).
        acked: Vec<(u64, u64)>,
    },
    Stream {
        ticket: u64,
        stream: String,
        first_offset: u64,
        bytes: Vec<u8>,
    },
    /// Stream entries below `offset` are gone: delete the segments that hold only those.
    StreamRetain {
        stream: String,
        offset: u64,
    },
    StreamDelete {
        stream: String,
    },
}

impl Command {
    /// The bytes it will write.
    fn size(&self) -> u64 {
        match self {
            Command::Journal { bytes, .. } | Command::Stream { bytes, .. } => bytes.len() as u64,
            Command::StreamRetain { .. } | Command::StreamDelete { .. } => 0,
        }
    }
}

struct Sender {
    tx: mpsc::Sender<Command>,
    next_ticket: u64,
    next_message_id: u64,
    /// The segment journal records go to and its size so far: placement is decided here, in
    /// submission order, so a message's location is known before the persister writes it.
    segment: u64,
    segment_size: u64,
}

impl Sender {
    /// The segment and offset for `len` more bytes, rolling over to a new segment when full.
    fn place(&mut self, len: usize) -> (u64, u64) {
        if self.segment_size > 0 && self.segment_size + len as u64 > SEGMENT_BYTES {
            self.segment += 1;
            self.segment_size = 0;
        }
        let at = self.segment_size;
        self.segment_size += len as u64;
        (self.segment, at)
    }
}

/// The handle the broker uses; cheap to share behind an `Arc`.
pub struct Journal {
    sender: Mutex<Sender>,
    /// Bytes submitted and not yet written and synced (see `backlog`).
    backlog: Arc<AtomicU64>,
    synced: watch::Receiver<u64>,
    dir: PathBuf,
    streams_dir: PathBuf,
    /// Segment files opened for reading paged-out messages back.
    readers: Mutex<HashMap<u32, Arc<File>>>,
}

/// Readers kept open at most; more and the cache starts over.
const MAX_READERS: usize = 16;

/// A message recovered from the journal for a queue: where it is, not what it holds
/// (bodies are read when a consumer needs them).
#[derive(Debug)]
pub struct RecoveredMessage {
    pub seq: u64,
    pub id: u64,
    pub location: Location,
}

/// A message read back from the journal.
#[derive(Debug)]
pub struct ReadMessage {
    pub published_ms: i64,
    pub message: StoredMessage,
}

#[derive(Debug, Default)]
pub struct Recovery {
    /// Live messages per durable queue, in sequence order.
    pub queues: HashMap<String, Vec<RecoveredMessage>>,
    /// Every stream's segments, summarised, and its newest entries.
    pub streams: HashMap<String, RecoveredStream>,
}

impl Journal {
    /// Open (or create) the journal in `dir`, replaying what is there.
    pub fn open(dir: &Path) -> Result<(Self, Recovery), StoreError> {
        let journal_dir = dir.join("journal");
        let streams_dir = dir.join("streams");
        for d in [&journal_dir, &streams_dir] {
            fs::create_dir_all(d).map_err(|e| StoreError::io(d, e))?;
        }
        let (segments, queues, next_id) = replay_journal(&journal_dir)?;
        // New records always go to a new segment: placement starts from a known size.
        let next_segment = segments.back().map_or(1, |s| segment_number(&s.path) + 1);
        let (streams, stream_logs) = replay_streams(&streams_dir)?;
        let (synced_tx, synced) = watch::channel(0);
        let (tx, rx) = mpsc::channel();
        let backlog = Arc::new(AtomicU64::new(0));
        let persister = Persister {
            dir: journal_dir.clone(),
            streams_dir: streams_dir.clone(),
            segments,
            current: None,
            streams: stream_logs,
            synced: synced_tx,
            batch: Vec::new(),
            backlog: backlog.clone(),
        };
        std::thread::Builder::new()
            .name("warren-persister".into())
            .spawn(move || persister.run(rx))
            .map_err(|e| StoreError::io(dir, e))?;
        let sender = Sender { tx, next_ticket: 1, next_message_id: next_id, segment: next_segment, segment_size: 0 };
        let journal = Self {
            sender: Mutex::new(sender),
            backlog,
            synced,
            dir: journal_dir,
            streams_dir,
            readers: Mutex::new(HashMap::new()),
        };
        Ok((journal, Recovery { queues, streams }))
    }

    /// Send a command built under the sender lock, so tickets and message ids are in order.
    fn submit(&self, build: impl FnOnce(&mut Sender, u64, u64) -> (Command, bool)) -> u64 {
        let Ok(mut s) = self.sender.lock() else { return 0 };
        let ticket = s.next_ticket;
        let id = s.next_message_id;
        let (command, used_id) = build(&mut s, ticket, id);
        self.backlog.fetch_add(command.size(), Ordering::Relaxed);
        s.next_ticket += 1;
        if used_id {
            s.next_message_id += 1;
        }
        if s.tx.send(command).is_err() {
            tracing::error!("the persister thread is gone; nothing more can be stored");
        }
        ticket
    }

    /// Journal records that let go of messages `acked` (acks, purges): placed and sent in order.
    fn submit_release(&self, bytes: Vec<u8>, acked: Vec<(u64, u64)>) -> u64 {
        self.submit(|sender, ticket, _| {
            let (segment, _) = sender.place(bytes.len());
            (Command::Journal { ticket, segment, bytes, message: None, acked }, false)
        })
    }

    /// Store a message that arrived at `published_ms` (wall clock) for `enqueues` (queue, seq).
    pub fn publish(&self, message: &StoredMessage, published_ms: i64, enqueues: &[(&str, u64)]) -> Published {
        let mut out = Published { id: 0, ticket: 0, location: Location { segment: 0, offset: 0, len: 0 } };
        out.ticket = self.submit(|sender, ticket, id| {
            out.id = id;
            let mut bytes = Vec::with_capacity(message.body.len() + message.header.len() + 128);
            record::encode(&Record::Message { id, published_ms, message: message.clone() }, &mut bytes);
            let record_len = bytes.len();
            for (queue, seq) in enqueues {
                record::encode(&Record::Enqueue { queue: (*queue).to_owned(), seq: *seq, id }, &mut bytes);
            }
            let (segment, offset) = sender.place(bytes.len());
            out.location = Location { segment: segment as u32, offset: offset as u32, len: record_len as u32 };
            let message = Some((id, enqueues.len() as u32));
            (Command::Journal { ticket, segment, bytes, message, acked: Vec::new() }, true)
        });
        out
    }

    /// Read messages back from the journal, in the order given. Locations close together in
    /// one segment are read with one pread. An unreadable one is an error in its place.
    pub fn read_many(&self, locations: &[Location]) -> Vec<Result<ReadMessage, StoreError>> {
        let places: Vec<(u32, u64, u64)> =
            locations.iter().map(|l| (l.segment, u64::from(l.offset), u64::from(l.len))).collect();
        crate::reads::read_records(
            &places,
            |segment, start, end| self.read_span(segment, start, end),
            |bytes, segment| self.decode_message(bytes, segment),
            |segment| StoreError::io(&self.segment_path(segment), std::io::ErrorKind::UnexpectedEof.into()),
        )
    }

    fn segment_path(&self, segment: u32) -> PathBuf {
        self.dir.join(segment_name(u64::from(segment)))
    }

    fn read_span(&self, segment: u32, start: u64, end: u64) -> Result<Bytes, StoreError> {
        let path = self.segment_path(segment);
        let file = {
            let Ok(mut readers) = self.readers.lock() else {
                return Err(StoreError::io(&path, std::io::ErrorKind::Other.into()));
            };
            match readers.get(&segment) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(&path).map_err(|e| StoreError::io(&path, e))?);
                    if readers.len() >= MAX_READERS {
                        readers.clear();
                    }
                    readers.insert(segment, f.clone());
                    f
                }
            }
        };
        let mut buf = vec![0; (end - start) as usize];
        file.read_exact_at(&mut buf, start).map_err(|e| StoreError::io(&path, e))?;
        Ok(Bytes::from(buf))
    }

    fn decode_message(&self, bytes: &Bytes, segment: u32) -> Result<ReadMessage, StoreError> {
        match record::decode(bytes) {
            Read::Record(Record::Message { published_ms, message, .. }, _) => Ok(ReadMessage { published_ms, message }),
            Read::Record(..) => Err(StoreError::corrupt(&self.segment_path(segment), 0, "not a message record")),
            Read::Truncated => Err(StoreError::corrupt(&self.segment_path(segment), 0, "message record cut short")),
            Read::Corrupt(why) => Err(StoreError::corrupt(&self.segment_path(segment), 0, why)),
        }
    }

    /// The message `id` held at `seq` in `queue` is gone (acked, rejected, expired).
    pub fn ack(&self, queue: &str, seq: u64, id: u64) -> u64 {
        let mut bytes = Vec::with_capacity(64);
        record::encode(&Record::Ack { queue: queue.to_owned(), seq, id }, &mut bytes);
        self.submit_release(bytes, vec![(id, 1)])
    }

    /// Several messages of `queue` are gone at once (a purge): one command, one batch.
    pub fn ack_many(&self, queue: &str, acks: &[(u64, u64)]) -> u64 {
        let mut bytes = Vec::with_capacity(acks.len() * (queue.len() + 32));
        for (seq, id) in acks {
            record::encode(&Record::Ack { queue: queue.to_owned(), seq: *seq, id: *id }, &mut bytes);
        }
        self.submit_release(bytes, acks.iter().map(|(_, id)| (*id, 1)).collect())
    }

    /// Every message of `queue` below `below_seq` is gone (purge or delete); `released` are
    /// their message ids, each with a count: (id, n) lets go of n messages in the journal
    /// segment that holds `id` (a queue that paged its messages out counts them by segment).
    pub fn purge(&self, queue: &str, below_seq: u64, released: Vec<(u64, u64)>) -> u64 {
        let mut bytes = Vec::with_capacity(64);
        record::encode(&Record::Purge { queue: queue.to_owned(), below_seq }, &mut bytes);
        self.submit_release(bytes, released)
    }

    /// Messages of `queue` gone by ranges of seq (`[from, below)` each: a purge of paged-out
    /// messages); `released` as for [`Journal::purge`].
    pub fn ack_ranges(&self, queue: &str, ranges: &[(u64, u64)], released: Vec<(u64, u64)>) -> u64 {
        let mut bytes = Vec::with_capacity(ranges.len() * (queue.len() + 32));
        for &(from_seq, below_seq) in ranges {
            record::encode(&Record::AckRange { queue: queue.to_owned(), from_seq, below_seq }, &mut bytes);
        }
        self.submit_release(bytes, released)
    }

    pub fn stream_append(&self, stream: &str, offset: u64, timestamp_ms: i64, message: &StoredMessage) -> u64 {
        self.submit(|_, ticket, _| {
            let mut bytes = Vec::with_capacity(message.body.len() + message.header.len() + 64);
            record::encode(&Record::StreamEntry { offset, timestamp_ms, message: message.clone() }, &mut bytes);
            (Command::Stream { ticket, stream: stream.to_owned(), first_offset: offset, bytes }, false)
        })
    }

    /// Where the segments of `stream` are (read them with `stream_read::StreamReader`).
    pub fn stream_dir(&self, stream: &str) -> PathBuf {
        self.streams_dir.join(stream_dir_name(stream))
    }

    pub fn stream_retain(&self, stream: &str, offset: u64) {
        self.submit(|_, _, _| (Command::StreamRetain { stream: stream.to_owned(), offset }, false));
    }

    pub fn stream_delete(&self, stream: &str) {
        self.submit(|_, _, _| (Command::StreamDelete { stream: stream.to_owned() }, false));
    }

    /// Bytes handed to the persister that are not on disk yet. When the disk is slower than
    /// the publishers this grows: the broker stops reading from publishers above a bound
    /// (RabbitMQ's flow control towards its message store).
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The highest ticket known to be on disk now.
    pub fn synced_now(&self) -> u64 {
        *self.synced.borrow()
    }

    /// Watch the highest ticket known to be on disk.
    pub fn synced(&self) -> watch::Receiver<u64> {
        self.synced.clone()
    }
}

struct Segment {
    path: PathBuf,
    /// The first message id stored in it, if any.
    first_message: Option<u64>,
    /// References (enqueues) to its messages not yet acked.
    live: i64,
}

struct StreamLog {
    dir: PathBuf,
    /// (first offset, path) of each segment, oldest first.
    segments: VecDeque<(u64, PathBuf)>,
    current: Option<(File, u64)>,
}

struct Persister {
    dir: PathBuf,
    streams_dir: PathBuf,
    segments: VecDeque<Segment>,
    /// The journal segment being written: its number and file.
    current: Option<(u64, File)>,
    streams: HashMap<String, StreamLog>,
    synced: watch::Sender<u64>,
    batch: Vec<Command>,
    /// The journal's `backlog`, lowered as batches reach the disk.
    backlog: Arc<AtomicU64>,
}

/// Streams live in a directory named after the stream, hex-encoded to be safe on any file system.
pub fn stream_dir_name(stream: &str) -> String {
    stream.bytes().map(|b| format!("{b:02x}")).collect()
}

fn stream_name_from_dir(dir: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        (0..dir.len()).step_by(2).map(|i| dir.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    bytes.and_then(|b| String::from_utf8(b).ok())
}

impl Persister {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            self.batch.push(first);
            while let Ok(more) = rx.try_recv() {
                self.batch.push(more);
                if self.batch.len() >= 4096 {
                    break;
                }
            }
            if let Err(e) = self.commit() {
                // Without a disk we cannot confirm anything any more: stop publishing progress.
                tracing::error!(error = %e, "writing the journal failed; confirms stop here");
                return;
            }
        }
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.batch);
        let mut highest = 0;
        let mut journal_segment = 0;
        let mut journal_written = false;
        let submitted: u64 = batch.iter().map(Command::size).sum();
        let mut journal_bytes: Vec<u8> = Vec::new();
        let mut acked: Vec<(u64, u64)> = Vec::new();
        let mut new_refs: Vec<(u64, u32)> = Vec::new();
        let mut stream_writes: Vec<(String, u64, Vec<u8>)> = Vec::new();
        let mut retains = Vec::new();
        let mut deletes = Vec::new();
        for command in batch {
            match command {
                Command::Journal { ticket, segment, bytes, message, acked: a } => {
                    highest = highest.max(ticket);
                    if segment != journal_segment && !journal_bytes.is_empty() {
                        self.write_journal(journal_segment, &mut journal_bytes, &mut new_refs)?;
                    }
                    journal_segment = segment;
                    journal_written = true;
                    journal_bytes.extend_from_slice(&bytes);
                    new_refs.extend(message);
                    acked.extend(a);
                }
                Command::Stream { ticket, stream, first_offset, bytes } => {
                    highest = highest.max(ticket);
                    match stream_writes.iter_mut().find(|(s, _, _)| *s == stream) {
                        Some((_, _, b)) => b.extend_from_slice(&bytes),
                        None => stream_writes.push((stream, first_offset, bytes)),
                    }
                }
                Command::StreamRetain { stream, offset } => retains.push((stream, offset)),
                Command::StreamDelete { stream } => deletes.push(stream),
            }
        }
        if !journal_bytes.is_empty() {
            self.write_journal(journal_segment, &mut journal_bytes, &mut new_refs)?;
        }
        for (stream, first_offset, bytes) in &stream_writes {
            self.write_stream(stream, *first_offset, bytes)?;
        }
        // The group commit: one fdatasync per file this batch wrote (a segment it rolled away
        // from was synced when it rolled), and none for the files it did not touch.
        if journal_written && let Some((_, file)) = &self.current {
            file.sync_data().map_err(|e| StoreError::io(&self.dir, e))?;
        }
        for (stream, _, _) in &stream_writes {
            if let Some(log) = self.streams.get(stream)
                && let Some((file, _)) = &log.current
            {
                file.sync_data().map_err(|e| StoreError::io(&log.dir, e))?;
            }
        }
        self.backlog.fetch_sub(submitted, Ordering::Relaxed);
        if highest > 0 {
            self.synced.send_replace(highest);
        }
        for (id, n) in acked {
            self.release(id, n);
        }
        self.delete_dead_segments();
        for (stream, offset) in retains {
            self.retain_stream(&stream, offset);
        }
        for stream in deletes {
            if let Some(log) = self.streams.remove(&stream) {
                let _ = fs::remove_dir_all(&log.dir);
            } else {
                let _ = fs::remove_dir_all(self.streams_dir.join(stream_dir_name(&stream)));
            }
        }
        Ok(())
    }

    /// Append to journal segment `segment` (the sender placed the bytes there), opening it
    /// when it is a new one.
    fn write_journal(
        &mut self,
        segment: u64,
        bytes: &mut Vec<u8>,
        new_refs: &mut Vec<(u64, u32)>,
    ) -> Result<(), StoreError> {
        if self.current.as_ref().is_none_or(|(n, _)| *n != segment) {
            if let Some((_, file)) = &self.current {
                file.sync_data().map_err(|e| StoreError::io(&self.dir, e))?;
            }
            let path = self.dir.join(segment_name(segment));
            let file =
                OpenOptions::new().create(true).append(true).open(&path).map_err(|e| StoreError::io(&path, e))?;
            sync_dir(&self.dir)?;
            self.segments.push_back(Segment { path, first_message: None, live: 0 });
            self.current = Some((segment, file));
        }
        let Some((_, file)) = self.current.as_mut() else { return Ok(()) };
        crate::pieces::append(file, bytes).map_err(|e| StoreError::io(&self.dir, e))?;
        if let Some(seg) = self.segments.back_mut() {
            for (id, refs) in new_refs.drain(..) {
                seg.first_message.get_or_insert(id);
                seg.live += i64::from(refs);
            }
        }
        bytes.clear();
        Ok(())
    }

    fn release(&mut self, id: u64, n: u64) {
        let idx = self.segments.partition_point(|s| s.first_message.is_none_or(|first| first <= id));
        if let Some(seg) = idx.checked_sub(1).and_then(|i| self.segments.get_mut(i)) {
            seg.live -= i64::try_from(n).unwrap_or(i64::MAX);
        }
    }

    /// Delete fully acknowledged segments from the front (never the one being written).
    fn delete_dead_segments(&mut self) {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live <= 0) {
            if let Some(seg) = self.segments.pop_front()
                && let Err(e) = fs::remove_file(&seg.path)
            {
                tracing::warn!(path = %seg.path.display(), error = %e, "cannot delete a dead journal segment");
            }
        }
    }

    fn write_stream(&mut self, stream: &str, first_offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let streams_dir = self.streams_dir.clone();
        let log = self.streams.entry(stream.to_owned()).or_insert_with(|| StreamLog {
            dir: streams_dir.join(stream_dir_name(stream)),
            segments: VecDeque::new(),
            current: None,
        });
        let roll = log.current.as_ref().is_none_or(|(_, size)| *size + bytes.len() as u64 > STREAM_SEGMENT_BYTES);
        if roll {
            fs::create_dir_all(&log.dir).map_err(|e| StoreError::io(&log.dir, e))?;
            if let Some((file, _)) = &log.current {
                file.sync_data().map_err(|e| StoreError::io(&log.dir, e))?;
            }
            let path = log.dir.join(segment_name(first_offset));
            let file =
                OpenOptions::new().create(true).append(true).open(&path).map_err(|e| StoreError::io(&path, e))?;
            sync_dir(&log.dir)?;
            log.segments.push_back((first_offset, path));
            log.current = Some((file, 0));
        }
        if let Some((file, size)) = log.current.as_mut() {
            crate::pieces::append(file, bytes).map_err(|e| StoreError::io(&log.dir, e))?;
            *size += bytes.len() as u64;
        }
        Ok(())
    }

    fn retain_stream(&mut self, stream: &str, offset: u64) {
        let Some(log) = self.streams.get_mut(stream) else { return };
        // A segment can go when the next one starts at or below the first kept offset.
        while log.segments.len() > 1 && log.segments.get(1).is_some_and(|(next_first, _)| *next_first <= offset) {
            if let Some((_, path)) = log.segments.pop_front() {
                let _ = fs::remove_file(path);
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

type Replayed = (VecDeque<Segment>, HashMap<String, Vec<RecoveredMessage>>, u64);

fn replay_journal(dir: &Path) -> Result<Replayed, StoreError> {
    let paths = list_segments(dir)?;
    let mut messages: HashMap<u64, (usize, Location)> = HashMap::new();
    let mut queues: HashMap<String, std::collections::BTreeMap<u64, u64>> = HashMap::new();
    let mut segments = VecDeque::new();
    let mut next_id = 1;
    for (i, path) in paths.iter().enumerate() {
        let mut first_message = None;
        let segment = segment_number(path) as u32;
        read_segment(path, i + 1 == paths.len(), |r, at, len| match r {
            Record::Message { id, .. } => {
                first_message.get_or_insert(id);
                next_id = next_id.max(id + 1);
                messages.insert(id, (i, Location { segment, offset: at as u32, len: len as u32 }));
            }
            Record::Enqueue { queue, seq, id } => {
                queues.entry(queue).or_default().insert(seq, id);
            }
            Record::Ack { queue, seq, .. } => {
                if let Some(q) = queues.get_mut(&queue) {
                    q.remove(&seq);
                }
            }
            Record::Purge { queue, below_seq } => {
                if let Some(q) = queues.get_mut(&queue) {
                    *q = q.split_off(&below_seq);
                }
            }
            Record::AckRange { queue, from_seq, below_seq } => {
                if let Some(q) = queues.get_mut(&queue) {
                    let mut above = q.split_off(&from_seq);
                    q.append(&mut above.split_off(&below_seq));
                }
            }
            // (stream entries are replayed from their own logs; spill records are never here)
            Record::StreamEntry { .. } | Record::Spilled { .. } | Record::SpilledRef { .. } => {}
        })?;
        segments.push_back(Segment { path: path.clone(), first_message, live: 0 });
    }
    let mut recovered: HashMap<String, Vec<RecoveredMessage>> = HashMap::new();
    for (queue, seqs) in queues {
        let mut list = Vec::with_capacity(seqs.len());
        for (seq, id) in seqs {
            if let Some((segment, location)) = messages.get(&id) {
                if let Some(s) = segments.get_mut(*segment) {
                    s.live += 1;
                }
                list.push(RecoveredMessage { seq, id, location: *location });
            }
        }
        if !list.is_empty() {
            recovered.insert(queue, list);
        }
    }
    Ok((segments, recovered, next_id))
}

type ReplayedStreams = (HashMap<String, RecoveredStream>, HashMap<String, StreamLog>);

/// Every stream's summary (see `stream_read::recover`: not every body is read).
fn replay_streams(dir: &Path) -> Result<ReplayedStreams, StoreError> {
    let mut recovered = HashMap::new();
    let mut logs = HashMap::new();
    for dirent in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?.filter_map(Result::ok) {
        let path = dirent.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(stream_name_from_dir) else { continue };
        let segments = list_segments(&path)?.into_iter().map(|seg| (segment_number(&seg), seg)).collect();
        recovered.insert(name.clone(), stream_read::recover(&path)?);
        logs.insert(name, StreamLog { dir: path, segments, current: None });
    }
    Ok((recovered, logs))
}
