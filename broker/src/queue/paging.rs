//! Queues longer than memory. A queue keeps a window of ready messages in memory; the messages
//! beyond it go to the queue's spill file (see `warren_persistence::spill`), read back a batch
//! at a time as consumers drain the window: a transient message (or any message of a
//! non-durable queue) in whole, a persistent one the journal holds as its place there. The
//! spill file is a FIFO, so the queue keeps no per-message index: only runs of up to
//! `RUN_MAX` records (`Spilled::InFile`), each with a count, its seq range, the journal ticket
//! its last persistent message waits for and its journal messages counted by segment. Messages
//! that cannot be written there stay in memory (`Spilled::InMemory`), and messages recovered
//! after a restart that the spill file cannot take keep their place in the journal
//! (`Spilled::OnDisk`, about 40 bytes each).
//!
//! Invariant: every spilled message comes after every ready one (in `seq` order), so paging
//! in appends to the ready list and a requeue (always of a message that was ready) goes into
//! the ready list. So the messages of the queue in a run's seq range are the run's own, or
//! gone: a purge can let go of a run by its range.
//!
//! Queues with length limits or priorities are never paged: their rules look at every message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use warren_persistence::{
    JournalReader, Location, Published, ReadMessage, RecoveredMessage, SpillBody, SpillFile, StoreError,
};

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
/// Records in one run of the spill file, at most.
const RUN_MAX: u64 = 1024;
/// Messages behind the window kept in memory instead of the spill file, at most (the memory
/// tier)...
const TIER_MESSAGES: usize = 4096;
/// ... and their body bytes. Only what overflows the tier is written to the file, so a
/// consumer about as fast as its publisher pays no disk round trip for each message once it
/// has fallen behind for a moment (before the tier, every message went through the file while
/// anything was spilled, and that cost kept the consumer behind: the 1 KiB manual-ack row
/// paged for good at 270-390k msg/s where it keeps up at 430k without paging).
const TIER_BYTES: u64 = 16 << 20;

/// Messages behind the in-memory window.
#[derive(Debug)]
pub(super) enum Spilled {
    InFile(Run),
    OnDisk(PagedRef),
    InMemory(QueuedMessage),
}

/// Consecutive records of the queue's spill file.
#[derive(Debug)]
pub(super) struct Run {
    count: u64,
    first_seq: u64,
    last_seq: u64,
    /// The journal ticket that puts its last persistent message on disk; the run is read back
    /// only after that.
    ticket: u64,
    /// Its persistent messages by journal segment: (segment, one message id in it, how many).
    journal: Vec<(u32, u64, u64)>,
}

impl Run {
    fn new(seq: u64) -> Self {
        Self { count: 0, first_seq: seq, last_seq: seq, ticket: 0, journal: Vec::new() }
    }

    fn add(&mut self, seq: u64, stored: Option<&Published>) {
        self.count += 1;
        self.last_seq = seq;
        if let Some(p) = stored {
            self.ticket = self.ticket.max(p.ticket);
            match self.journal.last_mut() {
                Some((segment, _, n)) if *segment == p.location.segment => *n += 1,
                _ => self.journal.push((p.location.segment, p.id, 1)),
            }
        }
    }

    /// A persistent message of the run was read back.
    fn took_journaled(&mut self, location: Location) {
        if let Some(i) = self.journal.iter().position(|(segment, _, _)| *segment == location.segment) {
            self.journal[i].2 -= 1;
            if self.journal[i].2 == 0 {
                self.journal.remove(i);
            }
        }
    }
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
    location: Location,
}

/// Paging state under the queue's lock.
#[derive(Debug, Default)]
pub(super) struct Paging {
    pub(super) spilled: VecDeque<Spilled>,
    /// Messages spilled, in all.
    count: usize,
    /// A task waits for the journal to sync the first paged message.
    waiting_for_disk: bool,
    /// The spill reader thread is reading the next records for this queue (nothing of them was
    /// in memory): dispatch resumes when they land.
    waiting_for_read: bool,
    /// Opened with the first message spilled to a file.
    file: Option<SpillFile>,
    /// How many `Spilled::InMemory` there are, and their body bytes.
    in_memory: (usize, u64),
    /// The memory tier filled up: it takes messages again once half drained, so that the
    /// file's runs stay long (a run per message would cost more than the message).
    tier_full: bool,
}

/// What dropping every spilled message lets go of in the journal.
#[derive(Debug, Default)]
pub(super) struct DroppedSpill {
    pub(super) count: usize,
    /// Messages known one by one: (seq, journal id).
    pub(super) acks: Vec<(u64, u64)>,
    /// Runs of the spill file, by seq range `[from, below)`...
    pub(super) ranges: Vec<(u64, u64)>,
    /// ... and their journal messages counted by segment: (an id in it, how many).
    pub(super) released: Vec<(u64, u64)>,
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

    /// Put a message behind the window: in the spill file (a persistent message the journal
    /// holds for this queue by its place there), else in memory.
    pub(super) fn spill(&self, st: &mut QueueState, qm: QueuedMessage, stored: Option<Published>) {
        let stored = stored.filter(|p| qm.msg.journal_id() == Some(p.id));
        st.paging.count += 1;
        // A journaled message is read back from the journal, never copied to a file.
        if !Self::memory_tier_takes(&mut st.paging, &qm.msg)
            && (stored.is_some() || qm.msg.journal_id().is_none())
            && let Some(file) = self.spill_file(st)
        {
            let written = match &stored {
                Some(p) => file.append_ref(qm.seq, qm.redelivered, p.id, p.location),
                None => file.append_message(qm.seq, qm.redelivered, qm.msg.published_ms(), qm.msg.to_stored()),
            };
            match written {
                Ok(()) => return Self::add_to_run(st, qm.seq, stored.as_ref()),
                Err(e) => {
                    tracing::warn!(queue = %self.name, error = %e, "cannot spill a message to disk; keeping it in memory")
                }
            }
        }
        st.paging.in_memory.0 += 1;
        st.paging.in_memory.1 += qm.msg.body_size();
        st.paging.spilled.push_back(Spilled::InMemory(qm));
    }

    /// Whether `msg`, going behind the window, stays in memory (the tier has room for it).
    fn memory_tier_takes(paging: &mut Paging, msg: &Message) -> bool {
        let (count, bytes) = paging.in_memory;
        if paging.tier_full {
            if count > TIER_MESSAGES / 2 || bytes > TIER_BYTES / 2 {
                return false;
            }
            paging.tier_full = false;
        }
        if count >= TIER_MESSAGES || bytes + msg.body_size() > TIER_BYTES {
            paging.tier_full = true;
            return false;
        }
        true
    }

    fn spill_file<'a>(&self, st: &'a mut QueueState) -> Option<&'a mut SpillFile> {
        let dir = self.spill_dir.as_ref()?;
        Some(st.paging.file.get_or_insert_with(|| match &self.store {
            Some(store) => {
                let store = store.clone();
                SpillFile::with_journal_reader(
                    dir.clone(),
                    JournalReader::new(move |places| store.journal.read_many(places)),
                )
            }
            None => SpillFile::new(dir.clone()),
        }))
    }

    fn add_to_run(st: &mut QueueState, seq: u64, stored: Option<&Published>) {
        match st.paging.spilled.back_mut() {
            Some(Spilled::InFile(run)) if run.count < RUN_MAX => run.add(seq, stored),
            _ => {
                let mut run = Run::new(seq);
                run.add(seq, stored);
                st.paging.spilled.push_back(Spilled::InFile(run));
            }
        }
    }

    /// The spilled messages still in memory: how many, and their body bytes.
    pub(super) fn spilled_in_memory(st: &QueueState) -> (usize, u64) {
        st.paging.in_memory
    }

    /// Bytes the spill writer has not written yet (the queue throttles its publishers when
    /// the disk falls behind).
    pub(super) fn spill_unwritten(st: &QueueState) -> u64 {
        st.paging.file.as_ref().map_or(0, SpillFile::unwritten)
    }

    /// Messages waiting behind the window.
    pub(super) fn spilled_len(st: &QueueState) -> usize {
        st.paging.count
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
            for m in recovered {
                let placed = self.spill_file(&mut st).map(|f| f.append_ref(m.seq, true, m.id, m.location));
                st.paging.count += 1;
                if let Some(Ok(())) = placed {
                    let stored = Published { id: m.id, ticket: 0, location: m.location };
                    Self::add_to_run(&mut st, m.seq, Some(&stored));
                } else {
                    st.paging.spilled.push_back(Spilled::OnDisk(PagedRef {
                        seq: m.seq,
                        id: m.id,
                        location: m.location,
                    }));
                }
            }
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

    /// Refill the ready list from the spilled messages when it runs low. Never reads a spill
    /// file on this thread: records that are not in memory yet are read by the spill reader
    /// thread, and dispatch resumes when they land (see `page_in_now` for basic.get).
    pub(super) fn page_in_locked(&self, st: &mut QueueState) {
        self.page_in(st, false);
    }

    /// `page_in_locked` for an answer that cannot wait (basic.get): what is on disk only is
    /// read here (off the runtime's worker, `blocking`).
    pub(super) fn page_in_now(&self, st: &mut QueueState) {
        self.page_in(st, true);
    }

    fn page_in(&self, st: &mut QueueState, now: bool) {
        if st.paging.spilled.is_empty() || st.ready.len() >= REFILL_BELOW {
            return;
        }
        let synced = self.store.as_ref().map_or(u64::MAX, |s| s.journal.synced_now());
        while st.ready.len() < REFILL_TO {
            let want = REFILL_TO - st.ready.len();
            match st.paging.spilled.front_mut() {
                None => break,
                Some(Spilled::InFile(run)) if run.ticket > synced => {
                    let ticket = run.ticket;
                    self.wake_when_on_disk(st, ticket);
                    break;
                }
                Some(Spilled::InFile(_)) if st.paging.waiting_for_read && !now => break,
                Some(Spilled::InFile(_)) => {
                    if !self.page_in_run(st, want, now) {
                        break;
                    }
                }
                Some(Spilled::OnDisk(_)) => self.page_in_from_journal(st, want),
                Some(Spilled::InMemory(_)) => {
                    if let Some(Spilled::InMemory(qm)) = st.paging.spilled.pop_front() {
                        st.paging.count -= 1;
                        st.paging.in_memory.0 -= 1;
                        st.paging.in_memory.1 -= qm.msg.body_size();
                        self.watch_expiry_locked(st, &qm.msg);
                        st.ready.push_back(qm);
                    }
                }
            }
        }
    }

    /// Read up to `want` messages of the front run from the spill file into the ready list;
    /// false when the reader thread was asked for them and the queue waits (`now`: read them
    /// here instead).
    fn page_in_run(&self, st: &mut QueueState, want: usize, now: bool) -> bool {
        let waker = if now { None } else { self.waker_for_read() };
        let Some(Spilled::InFile(run)) = st.paging.spilled.front_mut() else { return true };
        let take = run.count.min(want as u64) as usize;
        let read = match st.paging.file.as_mut() {
            Some(file) => match file.take_in_memory(take) {
                Ok(records) if records.is_empty() => {
                    if waker.is_some_and(|wake| file.when_read(wake)) {
                        st.paging.waiting_for_read = true;
                        return false;
                    }
                    blocking(|| file.take(take))
                }
                read => read,
            },
            None => Ok(Vec::new()),
        };
        let records = match read {
            Ok(records) if !records.is_empty() => records,
            Ok(_) | Err(_) => {
                // The run cannot be read back: its messages are lost; let go of them.
                if let Err(e) = read {
                    tracing::error!(queue = %self.name, error = %e, "spilled messages do not read back");
                }
                if let Some(Spilled::InFile(run)) = st.paging.spilled.pop_front() {
                    st.paging.count -= run.count as usize;
                    tracing::error!(queue = %self.name, lost = run.count, "spilled messages lost");
                    self.release_runs(&[(run.first_seq, run.last_seq + 1)], journal_counts(&run));
                }
                return true;
            }
        };
        let Some(Spilled::InFile(run)) = st.paging.spilled.front_mut() else { return true };
        // The reader thread read most of the journal's copies ahead; the rest (records not
        // written to the spill file yet) are read here.
        let mut locations = Vec::new();
        for r in &records {
            if let SpillBody::InJournal { location, copy, .. } = &r.body {
                run.took_journaled(*location);
                if copy.is_none() {
                    locations.push(*location);
                }
            }
        }
        run.count -= records.len() as u64;
        if run.count == 0 {
            st.paging.spilled.pop_front();
        }
        st.paging.count -= records.len();
        let mut from_journal = self.read_from_journal(&locations).into_iter();
        for r in records {
            let (store_id, read) = match r.body {
                SpillBody::Message { published_ms, message } => (0, Some(Ok(ReadMessage { published_ms, message }))),
                SpillBody::InJournal { id, copy: Some(copy), .. } => (id, Some(Ok(copy))),
                SpillBody::InJournal { id, copy: None, .. } => (id, from_journal.next()),
            };
            self.push_paged_in(st, r.seq, r.redelivered, store_id, read);
        }
        true
    }

    /// What the spill reader thread runs when this queue's records have landed: dispatch again
    /// on the runtime (None outside one: the caller reads for itself).
    fn waker_for_read(&self) -> Option<impl FnOnce() + Send + 'static> {
        let me = self.me.get().cloned()?;
        let rt = tokio::runtime::Handle::try_current().ok()?;
        Some(move || {
            rt.spawn(async move {
                if let Some(q) = me.upgrade() {
                    q.state.lock().paging.waiting_for_read = false;
                    q.dispatch();
                }
            });
        })
    }

    /// Read a batch of `Spilled::OnDisk` messages from the front back from the journal.
    fn page_in_from_journal(&self, st: &mut QueueState, want: usize) {
        let mut batch = Vec::new();
        while batch.len() < want && matches!(st.paging.spilled.front(), Some(Spilled::OnDisk(_))) {
            if let Some(Spilled::OnDisk(r)) = st.paging.spilled.pop_front() {
                batch.push(r);
            }
        }
        st.paging.count -= batch.len();
        let locations: Vec<Location> = batch.iter().map(|r| r.location).collect();
        let mut from_journal = self.read_from_journal(&locations).into_iter();
        for r in batch {
            self.push_paged_in(st, r.seq, true, r.id, from_journal.next());
        }
    }

    /// A message read back joins the ready list; one that does not read back is dropped (and
    /// let go of in the journal, or it would pin its segment).
    fn push_paged_in(
        &self,
        st: &mut QueueState,
        seq: u64,
        redelivered: bool,
        store_id: u64,
        read: Option<Result<ReadMessage, StoreError>>,
    ) {
        let read = read.and_then(|read| {
            read.map_err(|e| tracing::error!(queue = %self.name, seq, error = %e, "a paged message does not read back"))
                .ok()
        });
        match read.and_then(|read| Message::from_stored(read.message, store_id, read.published_ms)) {
            Some(msg) => {
                let qm = QueuedMessage { seq, msg: Arc::new(msg), redelivered };
                self.watch_expiry_locked(st, &qm.msg);
                st.ready.push_back(qm);
            }
            None if store_id != 0 => {
                if let Some(store) = &self.store {
                    store.journal.ack(&self.journal_name, seq, store_id);
                }
            }
            None => {}
        }
    }

    /// Let go of spilled runs in the journal.
    fn release_runs(&self, ranges: &[(u64, u64)], released: Vec<(u64, u64)>) {
        if let Some(store) = &self.store
            && !released.is_empty()
        {
            store.journal.ack_ranges(&self.journal_name, ranges, released);
        }
    }

    /// Read journaled messages back, in order.
    fn read_from_journal(&self, locations: &[Location]) -> Vec<Result<ReadMessage, StoreError>> {
        match &self.store {
            Some(store) if !locations.is_empty() => blocking(|| store.journal.read_many(locations)),
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

    /// Drop every spilled message (purge, delete): what the journal must let go of.
    pub(super) fn drop_spilled(st: &mut QueueState) -> DroppedSpill {
        let spilled = std::mem::take(&mut st.paging.spilled);
        let mut out = DroppedSpill { count: std::mem::take(&mut st.paging.count), ..DroppedSpill::default() };
        // Dropping the spill file deletes it; the next spill starts a new one.
        st.paging.file = None;
        st.paging.waiting_for_read = false;
        st.paging.in_memory = (0, 0);
        st.paging.tier_full = false;
        for entry in spilled {
            match entry {
                Spilled::InFile(run) => {
                    if !run.journal.is_empty() {
                        out.ranges.push((run.first_seq, run.last_seq + 1));
                        out.released.extend(journal_counts(&run));
                    }
                }
                Spilled::OnDisk(r) => out.acks.push((r.seq, r.id)),
                Spilled::InMemory(qm) => out.acks.extend(qm.msg.journal_id().map(|id| (qm.seq, id))),
            }
        }
        out
    }
}

/// A run's journal messages as (an id in their segment, how many).
fn journal_counts(run: &Run) -> Vec<(u64, u64)> {
    run.journal.iter().map(|&(_, id, n)| (id, n)).collect()
}
