//! The thread that reads spill files ahead of their queues, so a queue paging messages back in
//! finds them in memory instead of waiting for the disk under its own lock: after each read
//! a queue asks for the bytes that follow (about as many as it just took), and for a persistent
//! message spilled as its place in the journal, the thread reads the message from the journal
//! too (`JournalReader`), so the queue pages it in without a read of its own. The journal's
//! copies held ahead are bounded (`FROM_JOURNAL_MAX`): a read-ahead ends early rather than pass it.
//!
//! What is read ahead is only ever a copy: a queue that gets to the bytes first reads them
//! itself, exactly as without this thread.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes};
use parking_lot::Mutex;

use super::writer::{Chunk, Shared};
use crate::StoreError;
use crate::journal::{Location, ReadMessage};
use crate::record::{self, Read, Record};

/// Body bytes of journal copies one spill file holds read ahead, at most (a read-ahead that
/// would pass it ends at the record that does; the first record is always read).
pub(super) const FROM_JOURNAL_MAX: u64 = 8 << 20;

type ReadJournal = dyn Fn(&[Location]) -> Vec<Result<ReadMessage, StoreError>> + Send + Sync;

/// Reads messages from the journal, in the order of the places given.
#[derive(Clone)]
pub struct JournalReader(Arc<ReadJournal>);

impl JournalReader {
    pub fn new(read: impl Fn(&[Location]) -> Vec<Result<ReadMessage, StoreError>> + Send + Sync + 'static) -> Self {
        Self(Arc::new(read))
    }
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalReader")
    }
}

/// Read `len` bytes at logical `start` (file offset `file_offset`) of a spill file into its
/// shared state's read-ahead.
pub(super) struct Job {
    pub(super) shared: Arc<Shared>,
    pub(super) file: Arc<File>,
    pub(super) file_offset: u64,
    pub(super) start: u64,
    pub(super) len: u64,
    pub(super) journal: Option<JournalReader>,
}

/// Hand a job to the reader thread (started with the first job); false where the thread
/// cannot be started or is gone (the job is dropped: reading ahead is only an optimisation,
/// and a queue waiting for it reads for itself).
pub(super) fn submit(job: Job) -> bool {
    static READER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    let reader = READER.get_or_init(|| super::start_worker("warren-spill-read", run));
    let sent = match reader {
        Some(tx) => match tx.lock().send(job) {
            Ok(()) => return true,
            Err(std::sync::mpsc::SendError(job)) => {
                tracing::warn!("the spill reader thread is gone");
                job
            }
        },
        None => job,
    };
    let mut st = sent.shared.state.lock();
    st.prefetching = false;
    st.read_failed = true;
    false
}

fn run(job: &Job) {
    let (wanted, room, first_record) = {
        let st = job.shared.state.lock();
        (
            !st.closed && st.read_at < job.start + job.len,
            FROM_JOURNAL_MAX.saturating_sub(st.from_journal_bytes),
            st.record_start_from(job.start),
        )
    };
    let read = if wanted {
        let mut buf = vec![0u8; job.len as usize];
        match job.file.read_exact_at(&mut buf, job.file_offset) {
            Ok(()) => Some(Bytes::from(buf)),
            Err(e) => {
                tracing::debug!(error = %e, "spill read-ahead failed; the queue reads for itself");
                None
            }
        }
    } else {
        None
    };
    let (read, copies, hint) = match (read, &job.journal, first_record) {
        (Some(bytes), Some(journal), Some(first)) => {
            let ahead = read_from_journal(bytes, job.start, first, room, journal);
            (Some(ahead.bytes), ahead.copies, ahead.hint)
        }
        (read, _, _) => (read, Vec::new(), None),
    };
    let on_read = {
        let mut st = job.shared.state.lock();
        st.prefetching = false;
        match read {
            Some(data) if !st.closed => {
                st.record_hint = hint;
                st.prefetched.push_back(Chunk { start: job.start, data });
                for (at, copy) in copies {
                    st.from_journal_bytes += copy.message.body.len() as u64;
                    st.from_journal.push_back((at, copy));
                }
                st.forget_read();
            }
            Some(_) => {}
            None => st.read_failed |= wanted,
        }
        st.on_read.take()
    };
    if let Some(wake) = on_read {
        (wake.0)();
    }
}

/// A read-ahead with the journal's copies of its records.
struct Ahead {
    bytes: Bytes,
    copies: Vec<(u64, ReadMessage)>,
    /// Where `bytes` ends, and the first record boundary at or after it.
    hint: Option<(u64, u64)>,
}

/// Read the journal's copies of the messages spilled by reference in `bytes` (read from
/// logical offset `start`; its first record starts at `first`), by their records' offsets, up
/// to about `room` body bytes. `bytes` is cut after its last whole record (or where `room` ran
/// out), so the next read-ahead starts on a record; a read-ahead inside one long record is
/// kept whole. A copy that does not read back is left out: the queue reads it itself and
/// meets the error.
fn read_from_journal(bytes: Bytes, start: u64, first: u64, room: u64, journal: &JournalReader) -> Ahead {
    let end = start + bytes.len() as u64;
    let Some(skip) = first.checked_sub(start).filter(|skip| *skip <= bytes.len() as u64) else {
        // no record starts in it
        return Ahead { bytes, copies: Vec::new(), hint: Some((end, first)) };
    };
    let skip = skip as usize;
    let mut places = Vec::new();
    let mut offsets = Vec::new();
    let mut taken = 0u64;
    let mut used = skip;
    let mut rest = bytes.slice(skip..);
    let mut out_of_room = false;
    while let Read::Record(r, n) = record::decode(&rest) {
        if let Record::SpilledRef { segment, offset, len, .. } = r {
            if used > skip && taken + u64::from(len) > room {
                out_of_room = true;
                break;
            }
            taken += u64::from(len);
            places.push(Location { segment, offset, len });
            offsets.push(start + used as u64);
        }
        rest.advance(n);
        used += n;
    }
    let (bytes, hint) = if used > skip {
        let cut = start + used as u64;
        (bytes.slice(..used), Some((cut, cut)))
    } else {
        // one record longer than this read-ahead: the next record starts after it
        let next = record::whole_len(&rest).filter(|_| !out_of_room).map(|whole| (end, first + whole));
        (bytes, next)
    };
    if places.is_empty() {
        return Ahead { bytes, copies: Vec::new(), hint };
    }
    let copies = offsets
        .into_iter()
        .zip((journal.0)(&places))
        .filter_map(|(at, read)| read.ok().map(|copy| (at, copy)))
        .collect();
    Ahead { bytes, copies, hint }
}
