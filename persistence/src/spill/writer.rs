//! The thread that writes spill files, so a queue never waits for the disk: a queue hands it
//! full buffers (chunks) and goes on; until a chunk is written, the queue reads its records
//! from the chunk itself. One thread serves every queue of the process.
//!
//! A chunk that the queue has read past before it was written (its consumers keep up) is not
//! written at all.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::journal::ReadMessage;

/// Bytes handed to the writer, at their place in the spill file's logical byte stream.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) start: u64,
    pub(super) data: Bytes,
}

impl Chunk {
    pub(super) fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// What one spill file and the writer share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) state: Mutex<Pending>,
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Chunks handed over and not written yet, in order...
    chunks: VecDeque<Chunk>,
    /// ... and their bytes.
    chunk_bytes: u64,
    /// Every byte below this is in its file, or was read already and is needed no more.
    pub(super) written: u64,
    /// The queue reads from here on: chunks below it need no write.
    pub(super) read_at: u64,
    /// A write failed: this file's chunks stay in memory (its queue is throttled by them).
    pub(super) failed: bool,
    /// The spill file is gone: write nothing more.
    pub(super) closed: bool,
    /// Bytes the reader thread read ahead of `read_at`, in order (see `reader`).
    pub(super) prefetched: VecDeque<Chunk>,
    /// A read-ahead is on its way.
    pub(super) prefetching: bool,
    /// Called (once, off this lock) when the read-ahead on its way lands or fails: the queue
    /// that found nothing in memory to take waits for it instead of reading the disk itself.
    pub(super) on_read: Option<OnRead>,
    /// The last read-ahead failed: the queue reads for itself (and meets the error).
    pub(super) read_failed: bool,
    /// The journal's copies of the persistent messages spilled by reference in `prefetched`,
    /// read by the reader thread, by the logical offset of their record, in order...
    pub(super) from_journal: VecDeque<(u64, ReadMessage)>,
    /// ... and their body bytes.
    pub(super) from_journal_bytes: u64,
    /// Where the last read-ahead ended, and the first record boundary at or after it (a
    /// read-ahead that starts there finds its records from that boundary on).
    pub(super) record_hint: Option<(u64, u64)>,
}

/// What to run when a read-ahead lands.
pub struct OnRead(pub(super) Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for OnRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRead")
    }
}

impl Pending {
    /// Bytes handed over and not written yet (nor dropped as read).
    pub(super) fn unwritten(&self) -> u64 {
        self.chunk_bytes
    }

    pub(super) fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter()
    }

    /// Where the bytes read ahead from `from` on, without a gap, end.
    pub(super) fn prefetched_end(&self, from: u64) -> u64 {
        let mut end = from;
        for p in &self.prefetched {
            if p.start <= end && p.end() > end {
                end = p.end();
            }
        }
        end
    }

    pub(super) fn push(&mut self, chunk: Chunk) {
        self.chunk_bytes += chunk.data.len() as u64;
        self.chunks.push_back(chunk);
    }

    /// The front chunk is written (or needs no write): drop it.
    fn pop(&mut self) {
        if let Some(c) = self.chunks.pop_front() {
            self.chunk_bytes -= c.data.len() as u64;
            self.written = self.written.max(c.end());
        }
    }

    /// Drop chunks the queue has read past (they need no write).
    pub(super) fn forget_read(&mut self) {
        while self.chunks.front().is_some_and(|c| c.end() <= self.read_at) {
            self.pop();
        }
        while self.prefetched.front().is_some_and(|p| p.end() <= self.read_at) {
            self.prefetched.pop_front();
        }
        while self.from_journal.front().is_some_and(|(at, _)| *at < self.read_at) {
            self.pop_from_journal();
        }
    }

    /// The first record boundary at or after `from`, where known: `read_at` is one, and the
    /// last read-ahead left where the next record after it starts.
    pub(super) fn record_start_from(&self, from: u64) -> Option<u64> {
        if from == self.read_at {
            return Some(from);
        }
        match self.record_hint {
            Some((end, boundary)) if end == from => Some(boundary),
            _ => None,
        }
    }

    /// The journal's copy of the message spilled by reference at logical offset `at`, if the
    /// reader thread read it (copies of records before it are let go of).
    pub(super) fn take_from_journal(&mut self, at: u64) -> Option<ReadMessage> {
        while self.from_journal.front().is_some_and(|(front, _)| *front < at) {
            self.pop_from_journal();
        }
        if self.from_journal.front().is_some_and(|(front, _)| *front == at) {
            return self.pop_from_journal();
        }
        None
    }

    fn pop_from_journal(&mut self) -> Option<ReadMessage> {
        let (_, read) = self.from_journal.pop_front()?;
        self.from_journal_bytes -= read.message.body.len() as u64;
        Some(read)
    }
}

/// Write the chunk of `shared` that starts at `start` to `file` at `file_offset`.
pub(super) struct Job {
    pub(super) shared: Arc<Shared>,
    pub(super) file: Arc<File>,
    pub(super) file_offset: u64,
    pub(super) start: u64,
}

/// Hand a job to the writer thread (started with the first job); where the thread cannot be
/// started, the job is done here.
pub(super) fn submit(job: Job) {
    static WRITER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| super::start_worker("warren-spill", run));
    let job = match writer {
        Some(tx) => match tx.lock().send(job) {
            Ok(()) => return,
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    run(&job);
}

/// Write one chunk, unless it is not needed any more.
fn run(job: &Job) {
    let data = {
        let mut st = job.shared.state.lock();
        st.forget_read();
        if st.closed || st.failed {
            return;
        }
        match st.chunks.front() {
            Some(c) if c.start == job.start => c.data.clone(),
            // read already (forgotten above) or written by an earlier job
            _ => return,
        }
    };
    let result = crate::pieces::write_at(&job.file, &data, job.file_offset);
    let mut st = job.shared.state.lock();
    match result {
        Ok(()) => {
            if st.chunks.front().is_some_and(|c| c.start == job.start) {
                st.pop();
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write a spill file; its queue keeps the messages in memory");
            st.failed = true;
        }
    }
}
