//! Queues longer than memory. A queue keeps a window of ready messages in memory; messages
//! beyond it keep only their place on disk and are read back, a batch at a time, as consumers
//! drain the window: persistent messages on a durable queue their place in the journal
//! (`Spilled::OnDisk`, about 40 bytes), every other message (transient ones, and all of a
//! non-durable queue's) a place in the queue's spill file (`Spilled::InFile`), written
//! without fsync and void after a restart, as transient messages are. Only a broker without
//! a data directory keeps them in memory (`Spilled::InMemory`).
//!
//! Invariant: every spilled message comes after every ready one (in `seq` order), so paging
//! in appends to the ready list and a requeue (always of a message that was ready) goes into
//! the ready list.
//!
//! Queues with length limits or priorities are never paged: their rules look at every message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use warren_persistence::{Location, Published, ReadMessage, RecoveredMessage, SpillFile, SpillRef, StoreError};

use super::{Queue, QueueState, QueuedMessage};
use crate::blocking::blocking;
use crate::message::Message;

/// Ready messages kept in memory before new ones are paged.
const WINDOW_MESSAGES: usize = 4096;
/// ... or fewer when they are big: about this many body bytes.
const WINDOW_BYTES: u64 = 16 << 20;
/// Page in when the ready list is shorter than this...
const REFILL_BELOW: usize = 1024;
/// ... up to this many.
const REFILL_TO: usize = 2048;

/// A message behind the in-memory window.
#[derive(Debug)]
pub(super) enum Spilled {
    OnDisk(PagedRef),
    InFile(FileRef),
    InMemory(QueuedMessage),
}

/// A message in the queue's spill file.
#[derive(Debug)]
pub(super) struct FileRef {
    seq: u64,
    at: SpillRef,
    redelivered: bool,
}

/// A spill directory name no other queue of this process uses.
pub(super) fn spill_dir_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("q{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A paged-out persistent message: where the journal holds it.
#[derive(Debug)]
pub(super) struct PagedRef {
    seq: u64,
    id: u64,
    /// The journal ticket that puts it on disk; it is read back only after that.
    ticket: u64,
    location: Location,
    redelivered: bool,
}

impl Spilled {
    pub(super) fn seq_and_store_id(&self) -> Option<(u64, u64)> {
        match self {
            Spilled::OnDisk(r) => Some((r.seq, r.id)),
            Spilled::InFile(_) => None,
            Spilled::InMemory(qm) => Some((qm.seq, qm.msg.journal_id()?)),
        }
    }
}

/// Paging state under the queue's lock.
#[derive(Debug, Default)]
pub(super) struct Paging {
    pub(super) spilled: VecDeque<Spilled>,
    /// A task waits for the journal to sync the first paged message.
    waiting_for_disk: bool,
    /// Opened with the first message spilled to a file.
    file: Option<SpillFile>,
    /// How many `Spilled::InMemory` there are, and their body bytes.
    in_memory: (usize, u64),
}

impl Queue {
    /// Whether this queue may page messages out at all.
    fn pageable(&self) -> bool {
        (self.journaled() || self.spill_dir.is_some())
            && !self.stream
            && !self.args.limited()
            && self.args.max_priority.is_none()
    }

    /// Whether `msg`, about to join the ready list, goes behind the window instead.
    pub(super) fn should_spill(&self, st: &QueueState, msg: &Message) -> bool {
        if !self.pageable() {
            return false;
        }
        if !st.paging.spilled.is_empty() {
            return true;
        }
        let ready = st.ready.len();
        ready >= WINDOW_MESSAGES || (ready >= 64 && ready as u64 * msg.body_size().max(1) >= WINDOW_BYTES)
    }

    /// Put a message behind the window: on disk only when the journal holds it for this queue.
    pub(super) fn spill(&self, st: &mut QueueState, qm: QueuedMessage, stored: Option<Published>) {
        let entry = match stored {
            Some(p) if qm.msg.journal_id() == Some(p.id) => Spilled::OnDisk(PagedRef {
                seq: qm.seq,
                id: p.id,
                ticket: p.ticket,
                location: p.location,
                redelivered: qm.redelivered,
            }),
            // A journaled message is read back from the journal, never copied to a file.
            _ if qm.msg.journal_id().is_none() => self.spill_to_file(st, qm),
            _ => Spilled::InMemory(qm),
        };
        if let Spilled::InMemory(qm) = &entry {
            st.paging.in_memory.0 += 1;
            st.paging.in_memory.1 += qm.msg.body_size();
        }
        st.paging.spilled.push_back(entry);
    }

    /// The spilled messages still in memory: how many, and their body bytes.
    pub(super) fn spilled_in_memory(st: &QueueState) -> (usize, u64) {
        st.paging.in_memory
    }

    /// Write a message to the spill file; kept in memory if that fails.
    fn spill_to_file(&self, st: &mut QueueState, qm: QueuedMessage) -> Spilled {
        let Some(dir) = &self.spill_dir else { return Spilled::InMemory(qm) };
        let file = st.paging.file.get_or_insert_with(|| SpillFile::new(dir.clone()));
        match file.append(qm.msg.to_stored(), qm.msg.published_ms()) {
            Ok(at) => Spilled::InFile(FileRef { seq: qm.seq, at, redelivered: qm.redelivered }),
            Err(e) => {
                tracing::warn!(queue = %self.name, error = %e, "cannot spill a message to disk; keeping it in memory");
                Spilled::InMemory(qm)
            }
        }
    }

    /// Messages waiting behind the window.
    pub(super) fn spilled_len(st: &QueueState) -> usize {
        st.paging.spilled.len()
    }

    /// Put back messages recovered from the journal. A pageable queue keeps them on disk and
    /// reads them as consumers need them; other queues read them all now. Returns how many.
    pub fn restore_messages(self: &Arc<Self>, recovered: Vec<RecoveredMessage>) -> usize {
        let Some(store) = self.store.clone() else { return 0 };
        let mut st = self.state.lock();
        if let Some(last) = recovered.last() {
            st.next_seq = st.next_seq.max(last.seq + 1);
        }
        // A queue TTL is checked at the head only: read those in so expiry sees them.
        if self.pageable() && self.args.message_ttl.is_none() {
            let n = recovered.len();
            st.paging.spilled.extend(recovered.into_iter().map(|m| {
                Spilled::OnDisk(PagedRef { seq: m.seq, id: m.id, ticket: 0, location: m.location, redelivered: true })
            }));
            self.page_in_locked(&mut st);
            return n;
        }
        drop(st);
        let locations: Vec<Location> = recovered.iter().map(|m| m.location).collect();
        let mut restored = 0;
        for (m, read) in recovered.iter().zip(store.journal.read_many(&locations)) {
            match read.ok().and_then(|r| Message::from_stored(r.message, m.id, r.published_ms)) {
                Some(msg) => {
                    self.publish_at_recovered(m.seq, Arc::new(msg));
                    restored += 1;
                }
                None => {
                    tracing::warn!(queue = %self.name, seq = m.seq, "skipping a stored message that does not read back")
                }
            }
        }
        restored
    }

    /// Refill the ready list from the spilled messages when it runs low.
    pub(super) fn page_in_locked(&self, st: &mut QueueState) {
        if st.paging.spilled.is_empty() || st.ready.len() >= REFILL_BELOW {
            return;
        }
        let synced = self.store.as_ref().map_or(u64::MAX, |s| s.journal.synced_now());
        let want = REFILL_TO - st.ready.len();
        let mut take = 0;
        let mut not_yet_on_disk = None;
        for entry in st.paging.spilled.iter().take(want) {
            if let Spilled::OnDisk(r) = entry
                && r.ticket > synced
            {
                not_yet_on_disk = Some(r.ticket);
                break;
            }
            take += 1;
        }
        let batch: Vec<Spilled> = st.paging.spilled.drain(..take).collect();
        let mut from_journal = self.read_from_journal(&batch).into_iter();
        let file_refs: Vec<SpillRef> = batch
            .iter()
            .filter_map(|e| match e {
                Spilled::InFile(f) => Some(f.at),
                _ => None,
            })
            .collect();
        let mut from_file = match (file_refs.is_empty(), st.paging.file.as_mut()) {
            (false, Some(file)) => blocking(|| file.take_many(&file_refs)),
            _ => Vec::new(),
        }
        .into_iter();
        for entry in batch {
            let (seq, redelivered, store_id, read) = match entry {
                Spilled::InMemory(qm) => {
                    st.paging.in_memory.0 -= 1;
                    st.paging.in_memory.1 -= qm.msg.body_size();
                    self.watch_expiry_locked(st, &qm.msg);
                    st.ready.push_back(qm);
                    continue;
                }
                Spilled::OnDisk(r) => (r.seq, r.redelivered, r.id, from_journal.next()),
                Spilled::InFile(f) => (f.seq, f.redelivered, 0, from_file.next()),
            };
            let read = read.and_then(|read| {
                read.map_err(
                    |e| tracing::error!(queue = %self.name, seq, error = %e, "a paged message does not read back"),
                )
                .ok()
            });
            match read.and_then(|read| Message::from_stored(read.message, store_id, read.published_ms)) {
                Some(msg) => {
                    let qm = QueuedMessage { seq, msg: Arc::new(msg), redelivered };
                    self.watch_expiry_locked(st, &qm.msg);
                    st.ready.push_back(qm);
                }
                None if store_id != 0 => {
                    // Unreadable: it cannot be delivered, so it must not pin the journal.
                    if let Some(store) = &self.store {
                        store.journal.ack(self.name.as_str(), seq, store_id);
                    }
                }
                None => {}
            }
        }
        if let Some(ticket) = not_yet_on_disk {
            self.wake_when_on_disk(st, ticket);
        }
    }

    /// Read the journaled messages of a page-in batch, in order.
    fn read_from_journal(&self, batch: &[Spilled]) -> Vec<Result<ReadMessage, StoreError>> {
        let locations: Vec<Location> = batch
            .iter()
            .filter_map(|e| match e {
                Spilled::OnDisk(r) => Some(r.location),
                _ => None,
            })
            .collect();
        match &self.store {
            Some(store) if !locations.is_empty() => blocking(|| store.journal.read_many(&locations)),
            _ => Vec::new(),
        }
    }

    /// The next paged message is not on disk yet: dispatch again once it is.
    fn wake_when_on_disk(&self, st: &mut QueueState, ticket: u64) {
        if st.paging.waiting_for_disk {
            return;
        }
        let (Some(store), Some(me), Ok(rt)) =
            (self.store.clone(), self.me.get().cloned(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        st.paging.waiting_for_disk = true;
        rt.spawn(async move {
            let mut synced = store.journal.synced();
            while *synced.borrow_and_update() < ticket {
                if synced.changed().await.is_err() {
                    return;
                }
            }
            if let Some(q) = me.upgrade() {
                q.state.lock().paging.waiting_for_disk = false;
                q.dispatch();
            }
        });
    }

    /// Drop every spilled message (purge, delete); returns their journal (seq, id) pairs.
    pub(super) fn drop_spilled(st: &mut QueueState) -> (usize, Vec<(u64, u64)>) {
        let spilled = std::mem::take(&mut st.paging.spilled);
        // Dropping the spill file deletes it; the next spill starts a new one.
        st.paging.file = None;
        st.paging.in_memory = (0, 0);
        let ids = spilled.iter().filter_map(Spilled::seq_and_store_id).collect();
        (spilled.len(), ids)
    }
}
