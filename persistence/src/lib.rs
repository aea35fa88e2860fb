//! warren-persistence: what survives a restart.
//!
//! # Layout
//! - [`definitions`]: durable exchanges, queues, bindings, users, vhosts and permissions in sled (fsync'd after each change).
//! - [`journal`]: persistent messages and stream entries in append-only segment files, written
//!   by one persister thread with group commit (one fdatasync per file per batch); the
//!   highest ticket on disk is published for confirms.
//! - [`record`]: the checksummed on-disk record format.
//! - `segments`: naming, listing and reading the journal's and streams' segment files.
//! - [`stream_read`]: reading streams back from their segments, and their summary at a restart.
//! - [`spill`]: queues' overflow files, read as FIFOs and written by a thread of their own
//!   (no fsync, deleted at start).

pub mod definitions;
pub mod journal;
mod pieces;
mod reads;
pub mod record;
mod segments;
pub mod spill;
pub mod stream_read;

use std::path::{Path, PathBuf};

pub use definitions::{
    BindingDef, DefinitionSet, Definitions, ExchangeDef, PermissionDef, QueueDef, TopicPermissionDef, UserDef, VhostDef,
};
pub use journal::{Journal, Location, Published, ReadMessage, RecoveredMessage, Recovery};
pub use record::StoredMessage;
pub use spill::{JournalReader, SpillBody, SpillFile, SpillRecord};
pub use stream_read::{RecoveredEntry, RecoveredStream, SegmentSummary, StreamReader};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is corrupt at byte {offset} ({reason}). warren will not start over existing data: \
         move the data directory aside (or restore it from a backup) and start again"
    )]
    Corrupt { path: PathBuf, offset: u64, reason: &'static str },
    #[error("definitions store {path}: {reason}. Move the data directory aside or restore it from a backup")]
    Definitions { path: PathBuf, reason: String },
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    pub fn corrupt(path: &Path, offset: u64, reason: &'static str) -> Self {
        Self::Corrupt { path: path.to_owned(), offset, reason }
    }
}

/// The data directory: definitions plus the journal.
pub struct Store {
    pub definitions: Definitions,
    pub journal: Journal,
    /// Where queues' spill files go (`spill/` in the data directory).
    pub spill_root: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Open or create the store in `dir`; returns it with what it recovered.
    pub fn open(dir: &Path) -> Result<(Self, DefinitionSet, Recovery), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let definitions = Definitions::open(dir)?;
        let defs = definitions.load()?;
        let (journal, recovery) = Journal::open(dir)?;
        // Spill files hold transient messages only: what a previous run left is void.
        let spill_root = dir.join("spill");
        if spill_root.exists() {
            std::fs::remove_dir_all(&spill_root).map_err(|e| StoreError::io(&spill_root, e))?;
        }
        Ok((Self { definitions, journal, spill_root }, defs, recovery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(body: &'static [u8]) -> StoredMessage {
        StoredMessage {
            exchange: "".into(),
            routing_key: "q".into(),
            header: Bytes::from_static(b"h"),
            body: Bytes::from_static(body),
        }
    }

    async fn wait_synced(j: &Journal, ticket: u64) {
        let mut rx = j.synced();
        while *rx.borrow() < ticket {
            rx.changed().await.expect("persister alive");
        }
    }

    #[tokio::test]
    async fn messages_survive_reopen_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, rec) = Store::open(dir.path()).unwrap();
            assert!(rec.queues.is_empty());
            let one = store.journal.publish(&msg(b"one"), 1000, &[("q", 1), ("r", 1)]);
            store.journal.publish(&msg(b"two"), 2000, &[("q", 2)]);
            let t = store.journal.ack("q", 1, one.id);
            wait_synced(&store.journal, t).await;
        }
        let (store, _, rec) = Store::open(dir.path()).unwrap();
        let locations: Vec<_> = rec.queues["q"].iter().map(|m| m.location).collect();
        assert_eq!(rec.queues["q"].iter().map(|m| m.seq).collect::<Vec<_>>(), [2]);
        let read: Vec<_> = store.journal.read_many(&locations).into_iter().map(Result::unwrap).collect();
        assert_eq!((read[0].published_ms, read[0].message.body.clone()), (2000, Bytes::from_static(b"two")));
        let r: Vec<_> = rec.queues["r"].iter().map(|m| m.seq).collect();
        assert_eq!(r, [1]);
    }

    #[tokio::test]
    async fn the_backlog_counts_bytes_until_they_are_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = Store::open(dir.path()).unwrap();
        assert_eq!(store.journal.backlog(), 0);
        let mut last = 0;
        for _ in 0..100 {
            last = store.journal.publish(&msg(b"0123456789"), 0, &[("q", 1)]).ticket;
        }
        assert!(store.journal.backlog() > 0 || store.journal.synced_now() > 0);
        wait_synced(&store.journal, last).await;
        assert_eq!(store.journal.backlog(), 0);
    }

    #[tokio::test]
    async fn purge_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            store.journal.publish(&msg(b"a"), 0, &[("q", 1)]);
            store.journal.publish(&msg(b"b"), 0, &[("q", 2)]);
            let t = store.journal.purge("q", 2, vec![(1, 1)]);
            wait_synced(&store.journal, t).await;
        }
        // A torn write at the end is cut off, not fatal.
        let seg = std::fs::read_dir(dir.path().join("journal")).unwrap().next().unwrap().unwrap().path();
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut f, &[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (_s, _, rec) = Store::open(dir.path()).unwrap();
        assert_eq!(rec.queues["q"].iter().map(|m| m.seq).collect::<Vec<_>>(), [2]);
    }

    #[tokio::test]
    async fn acked_ranges_are_gone_after_a_restart_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            let mut first = 0;
            for seq in 1..=10 {
                let p = store.journal.publish(&msg(b"m"), 0, &[("q", seq)]);
                first = if seq == 1 { p.id } else { first };
            }
            // 3..=5 and 8..=9 purged as ranges, counted against the segment holding `first`
            let t = store.journal.ack_ranges("q", &[(3, 6), (8, 10)], vec![(first, 5)]);
            wait_synced(&store.journal, t).await;
        }
        let (_s, _, rec) = Store::open(dir.path()).unwrap();
        assert_eq!(rec.queues["q"].iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 6, 7, 10]);
    }

    #[tokio::test]
    async fn corruption_in_an_old_segment_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            let t = store.journal.publish(&msg(b"a"), 0, &[("q", 1)]).ticket;
            wait_synced(&store.journal, t).await;
        }
        let journal = dir.path().join("journal");
        let seg = std::fs::read_dir(&journal).unwrap().next().unwrap().unwrap().path();
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[12] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        // A later segment makes the damaged one "not the last".
        std::fs::write(journal.join(format!("{:020}.seg", 99)), b"").unwrap();
        let err = Store::open(dir.path()).expect_err("corruption is refused");
        let text = err.to_string();
        assert!(text.contains(&seg.display().to_string()) && text.contains("move the data directory"), "{text}");
    }

    #[tokio::test]
    async fn definitions_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            let q =
                QueueDef { vhost: "/".into(), name: "q".into(), auto_delete: false, arguments: serde_json::json!({}) };
            store.definitions.put_queue(&q).unwrap();
            let b = BindingDef {
                vhost: "/".into(),
                exchange: "x".into(),
                queue: "q".into(),
                routing_key: "k".into(),
                arguments: serde_json::json!({}),
                to_exchange: false,
            };
            store.definitions.put_binding(&b).unwrap();
            // An exchange named like the queue, bound to x: a different binding.
            store.definitions.put_binding(&BindingDef { to_exchange: true, ..b }).unwrap();
        }
        let (store, defs, _) = Store::open(dir.path()).unwrap();
        assert_eq!(defs.queues.len(), 1);
        assert_eq!(defs.bindings.len(), 2);
        store.definitions.delete_queue("/", "q").unwrap();
        let defs = store.definitions.load().unwrap();
        assert!(defs.queues.is_empty());
        assert_eq!(defs.bindings.iter().map(|b| b.to_exchange).collect::<Vec<_>>(), [true]);
        store.definitions.delete_exchange("/", "q").unwrap();
        assert!(store.definitions.load().unwrap().bindings.is_empty());
    }

    #[tokio::test]
    async fn messages_are_read_back_where_publish_placed_them_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = Store::open(dir.path()).unwrap();
        // Bodies big enough to roll over a segment (64 MiB) within the test.
        let body = Bytes::from(vec![7u8; 3 << 20]);
        let mut placed = Vec::new();
        for i in 0..30u64 {
            let m = StoredMessage { body: body.slice(i as usize..), ..msg(b"") };
            placed.push(store.journal.publish(&m, i as i64, &[("q", i)]));
        }
        wait_synced(&store.journal, placed.last().unwrap().ticket).await;
        let segments: std::collections::HashSet<u32> = placed.iter().map(|p| p.location.segment).collect();
        assert!(segments.len() >= 2, "rolled over: {segments:?}");
        let locations: Vec<Location> = placed.iter().map(|p| p.location).collect();
        for (i, read) in store.journal.read_many(&locations).into_iter().enumerate() {
            let read = read.unwrap();
            assert_eq!(read.published_ms, i as i64);
            assert_eq!(read.message.body.len(), (3 << 20) - i);
        }
    }

    #[tokio::test]
    async fn streams_are_replayed_in_offset_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _) = Store::open(dir.path()).unwrap();
            for i in 0..3 {
                store.journal.stream_append("chat.room.1", i, 1000 + i as i64, &msg(b"e"));
            }
            let t = store.journal.stream_append("chat.room.1", 3, 1003, &msg(b"last"));
            wait_synced(&store.journal, t).await;
        }
        let (_s, _, rec) = Store::open(dir.path()).unwrap();
        let offsets: Vec<u64> = rec.streams["chat.room.1"].tail.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3]);
    }
}
