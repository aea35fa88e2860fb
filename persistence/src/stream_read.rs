//! Reading a stream's log back from its segment files (`streams/<name>/<first offset>.seg`,
//! written by the journal's persister): consumers read entries in order from any offset, a
//! read-ahead buffer at a time, and a restart reads each segment's first record and the last
//! segment, not every body (a stream's bodies stay on disk; see the broker's `stream`).
//!
//! A segment is named after the first offset written to it, and offsets are consecutive, so
//! the segment after one that ends before offset `n` is the file named `n`.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};

use crate::StoreError;
use crate::record::{self, FRAME, Read, Record, StoredMessage};
use crate::segments::{list_segments, read_segment, segment_name, segment_number};

/// Reads go this far ahead.
const READ_AHEAD: usize = 256 << 10;

/// What a restart knows of one segment without reading it all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    pub first_offset: u64,
    pub first_timestamp_ms: i64,
    /// The file's size.
    pub bytes: u64,
}

/// One stream entry read back: its offset, when it was appended, the message.
#[derive(Debug)]
pub struct RecoveredEntry {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub message: StoredMessage,
}

/// A stream as a restart finds it: a summary of every segment, and the entries of the last
/// one (the newest, kept in memory).
#[derive(Debug, Default)]
pub struct RecoveredStream {
    pub dir: PathBuf,
    pub segments: Vec<SegmentSummary>,
    pub tail: Vec<RecoveredEntry>,
}

impl RecoveredStream {
    /// The offset the next entry gets.
    pub fn next_offset(&self) -> u64 {
        match (self.tail.last(), self.segments.last()) {
            (Some(e), _) => e.offset + 1,
            (None, Some(s)) => s.first_offset,
            (None, None) => 0,
        }
    }
}

/// Summarise the stream whose segments are in `dir`.
pub(crate) fn recover(dir: &Path) -> Result<RecoveredStream, StoreError> {
    let paths = list_segments(dir)?;
    let mut out = RecoveredStream { dir: dir.to_owned(), ..Default::default() };
    for (i, path) in paths.iter().enumerate() {
        let bytes = fs::metadata(path).map_err(|e| StoreError::io(path, e))?.len();
        if i + 1 == paths.len() {
            read_segment(path, true, |r, _, _| {
                if let Record::StreamEntry { offset, timestamp_ms, message } = r {
                    out.tail.push(RecoveredEntry { offset, timestamp_ms, message });
                }
            })?;
            let first = out.tail.first().map_or((segment_number(path), 0), |e| (e.offset, e.timestamp_ms));
            out.segments.push(SegmentSummary { first_offset: first.0, first_timestamp_ms: first.1, bytes });
        } else {
            let mut reader = SegmentReader::open(path)?;
            match reader.next_record()? {
                Some(Record::StreamEntry { offset, timestamp_ms, .. }) => {
                    out.segments.push(SegmentSummary { first_offset: offset, first_timestamp_ms: timestamp_ms, bytes })
                }
                Some(_) => return Err(StoreError::corrupt(path, 0, "not a stream entry")),
                // an empty segment left by a crash between its creation and its first write
                None => {}
            }
        }
    }
    Ok(out)
}

/// One segment file read front to back.
struct SegmentReader {
    path: PathBuf,
    file: File,
    /// File position of `buf`'s first byte.
    pos: u64,
    buf: Bytes,
    /// The last read reached the end of the file.
    eof: bool,
}

impl SegmentReader {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        Ok(Self { path: path.to_owned(), file, pos: 0, buf: Bytes::new(), eof: false })
    }

    /// Read at least `want` bytes from the file position of the buffer's end on, if there are.
    fn fill(&mut self, want: usize) -> Result<(), StoreError> {
        let have = self.buf.len();
        let mut more = vec![0u8; want.max(READ_AHEAD)];
        let mut got = 0;
        while got < more.len() {
            match self.file.read_at(&mut more[got..], self.pos + (have + got) as u64) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::io(&self.path, e)),
            }
        }
        more.truncate(got);
        let mut joined = Vec::with_capacity(have + got);
        joined.extend_from_slice(&self.buf);
        joined.extend_from_slice(&more);
        self.buf = Bytes::from(joined);
        Ok(())
    }

    /// The next whole record, or None at the end of what is written.
    fn next_record(&mut self) -> Result<Option<Record>, StoreError> {
        loop {
            match record::decode(&self.buf) {
                Read::Record(r, used) => {
                    self.buf.advance(used);
                    self.pos += used as u64;
                    return Ok(Some(r));
                }
                Read::Truncated => {
                    if self.eof {
                        // the end of the file, or a record still being written
                        self.eof = false;
                        let before = self.buf.len();
                        self.fill(0)?;
                        if self.buf.len() == before {
                            return Ok(None);
                        }
                        continue;
                    }
                    let want = if self.buf.len() >= FRAME {
                        FRAME + u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
                    } else {
                        FRAME
                    };
                    self.fill(want.saturating_sub(self.buf.len()))?;
                }
                Read::Corrupt(reason) => return Err(StoreError::corrupt(&self.path, self.pos, reason)),
            }
        }
    }
}

/// A consumer's reader over a stream's segments, from an offset on.
pub struct StreamReader {
    dir: PathBuf,
    /// The offset the next entry read has at least.
    next: u64,
    segment: Option<SegmentReader>,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader").field("dir", &self.dir).field("next", &self.next).finish()
    }
}

impl StreamReader {
    pub fn new(dir: PathBuf, offset: u64) -> Self {
        Self { dir, next: offset, segment: None }
    }

    /// Where the next read starts.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Read up to `max` entries from the next offset on, below offset `below` (entries that
    /// are on disk). An offset retention has deleted is skipped to the first one kept.
    pub fn read(&mut self, below: u64, max: usize) -> Result<Vec<RecoveredEntry>, StoreError> {
        let mut out = Vec::new();
        while out.len() < max && self.next < below {
            let Some(segment) = self.segment_for_next()? else { break };
            match segment.next_record()? {
                Some(Record::StreamEntry { offset, timestamp_ms, message }) => {
                    if offset >= self.next && offset < below {
                        self.next = offset + 1;
                        out.push(RecoveredEntry { offset, timestamp_ms, message });
                    }
                }
                Some(_) => return Err(StoreError::corrupt(&segment.path, segment.pos, "not a stream entry")),
                None => {
                    // This segment is read to its end: the next offset starts the next one.
                    let next = self.dir.join(segment_name(self.next));
                    if !next.exists() {
                        break;
                    }
                    self.segment = Some(SegmentReader::open(&next)?);
                }
            }
        }
        Ok(out)
    }

    /// The open segment, or the one that holds the next offset.
    fn segment_for_next(&mut self) -> Result<Option<&mut SegmentReader>, StoreError> {
        if self.segment.is_none() {
            let paths = list_segments(&self.dir)?;
            let firsts: Vec<u64> = paths.iter().map(|p| segment_number(p)).collect();
            let Some(first) = firsts.first().copied() else { return Ok(None) };
            // the last segment starting at or before `next`; before the first one, the first
            let i = firsts.partition_point(|f| *f <= self.next).saturating_sub(1);
            self.next = self.next.max(first);
            self.segment = Some(SegmentReader::open(&paths[i])?);
        }
        Ok(self.segment.as_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::record::StoredMessage;

    fn msg(i: u64, size: usize) -> StoredMessage {
        StoredMessage {
            exchange: String::new(),
            routing_key: "s".into(),
            header: Bytes::from_static(b"h"),
            body: Bytes::from(vec![(i % 251) as u8; size]),
        }
    }

    async fn write_stream(store: &Store, n: u64, size: usize) {
        let mut last = 0;
        for i in 0..n {
            last = store.journal.stream_append("s", i, i as i64, &msg(i, size));
        }
        let mut synced = store.journal.synced();
        while *synced.borrow_and_update() < last {
            synced.changed().await.unwrap();
        }
    }

    #[tokio::test]
    async fn reads_across_segments_from_any_offset_and_restarts_from_summaries() {
        let dir = tempfile::tempdir().unwrap();
        // 3,000 entries of 10 KiB: about four 8 MiB segments
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            write_stream(&store, 3_000, 10 << 10).await;
            let stream_dir = store.journal.stream_dir("s");
            assert!(list_segments(&stream_dir).unwrap().len() >= 3);
            for start in [0u64, 1, 999, 2_999] {
                let mut reader = StreamReader::new(stream_dir.clone(), start);
                let mut seen = Vec::new();
                loop {
                    let batch = reader.read(3_000, 256).unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    seen.extend(batch.into_iter().map(|e| {
                        assert_eq!(e.message.body[0], (e.offset % 251) as u8);
                        assert_eq!(e.timestamp_ms, e.offset as i64);
                        e.offset
                    }));
                }
                assert_eq!(seen, (start..3_000).collect::<Vec<_>>());
            }
            // `below` stops a reader; it goes on from there later
            let mut reader = StreamReader::new(stream_dir, 10);
            assert_eq!(reader.read(20, 1000).unwrap().len(), 10);
            assert_eq!(reader.read(25, 1000).unwrap().first().map(|e| e.offset), Some(20));
        }
        let (_store, _, recovery) = Store::open(dir.path()).unwrap();
        let s = &recovery.streams["s"];
        assert_eq!(s.next_offset(), 3_000);
        assert_eq!(s.segments[0].first_offset, 0);
        assert!(s.segments.windows(2).all(|w| w[0].first_offset < w[1].first_offset));
        assert_eq!(s.tail.first().map(|e| e.offset), s.segments.last().map(|l| l.first_offset));
        // Only the last segment's entries are read (a segment rolls between journal batches,
        // so how many it holds depends on how the writes were grouped).
        let last_first = s.segments.last().map_or(0, |l| l.first_offset);
        assert!(last_first > 0, "more than one segment");
        assert_eq!(s.tail.len() as u64, 3_000 - last_first, "only the last segment is read");
        assert!(s.segments.iter().map(|s| s.bytes).sum::<u64>() > 3_000 * (10 << 10));
    }
}
