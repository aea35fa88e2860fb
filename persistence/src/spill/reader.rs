//! The thread that reads spill files ahead of their queues, so a queue paging messages back in
//! finds them in memory instead of waiting for the disk under its own lock: after each read
//! a queue asks for the bytes that follow (about as many as it just took), and for a persistent
//! message spilled as its place in the journal, the journal's bytes are read too (into the
//! page cache, through the warmer the queue gave), so its read back is a copy from memory.
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
use crate::journal::Location;
use crate::record::{self, Read, Record};

type Warm = dyn Fn(&[Location]) + Send + Sync;

/// Reads the journal's bytes at these places so that reading them again is cheap.
#[derive(Clone)]
pub struct JournalWarmer(Arc<Warm>);

impl JournalWarmer {
    pub fn new(warm: impl Fn(&[Location]) + Send + Sync + 'static) -> Self {
        Self(Arc::new(warm))
    }
}

impl std::fmt::Debug for JournalWarmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalWarmer")
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
    pub(super) warm: Option<JournalWarmer>,
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
    let wanted = {
        let st = job.shared.state.lock();
        !st.closed && st.read_at < job.start + job.len
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
    if let (Some(bytes), Some(warm)) = (&read, &job.warm) {
        let places = journal_places(bytes.clone());
        if !places.is_empty() {
            (warm.0)(&places);
        }
    }
    let on_read = {
        let mut st = job.shared.state.lock();
        st.prefetching = false;
        match read {
            Some(data) if !st.closed => {
                st.prefetched.push_back(Chunk { start: job.start, data });
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

/// The journal places of the whole `SpilledRef` records at the front of `bytes`.
fn journal_places(mut bytes: Bytes) -> Vec<Location> {
    let mut out = Vec::new();
    while let Read::Record(r, n) = record::decode(&bytes) {
        if let Record::SpilledRef { segment, offset, len, .. } = r {
            out.push(Location { segment, offset, len });
        }
        bytes.advance(n);
    }
    out
}
