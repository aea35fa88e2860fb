//! `RoomLog`: one room's messages folded from its stream (edits and deletes applied, read
//! offsets per user), plus the listeners that feed this front end's WebSocket sessions.
//!
//! Each listening session gets every event pushed into its own queue: no channel shared by a
//! thousand receivers, whose every read would take the same lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::model::ChatMessage;

/// One delivery from a room stream, decoded from its AMQP properties and JSON body.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub offset: u64,
    pub author: String,
    pub bot: bool,
    pub body: Value,
    pub ts: u64,
}

/// An event for the room's sessions: serialised once, shared by every session.
#[derive(Debug)]
pub struct Outgoing {
    /// The stream offset for events that come from the stream (sessions skip what their
    /// catch-up already sent).
    pub offset: Option<u64>,
    pub json: Arc<str>,
    /// Only these users' sessions get it (None: everyone subscribed).
    pub audience: Option<Vec<String>>,
}

impl Outgoing {
    pub fn transient(value: &Value) -> Arc<Outgoing> {
        Arc::new(Outgoing { offset: None, json: value.to_string().into(), audience: None })
    }

    pub fn for_users(value: &Value, users: Vec<String>) -> Arc<Outgoing> {
        Arc::new(Outgoing { offset: None, json: value.to_string().into(), audience: Some(users) })
    }

    pub fn is_for(&self, user: &str) -> bool {
        self.audience.as_ref().is_none_or(|a| a.iter().any(|u| u == user))
    }
}

/// What stays in memory of a room: its newest messages (at most `window`), the read marks,
/// and the changes to messages that left the window (applied when their page is read from the
/// stream).
struct State {
    /// The newest messages, oldest first (sorted by offset).
    messages: VecDeque<ChatMessage>,
    /// id -> offset of every message in `messages`.
    index: HashMap<String, u64>,
    /// Messages that left the window after they changed (edited, deleted, reacted to, a bot's
    /// reply closed): their state now, which replaces what their page reads from the stream.
    changed: HashMap<String, ChatMessage>,
    /// Changes to messages that had left the window unchanged, in stream order: folded into
    /// the message when its page is read from the stream.
    late: HashMap<String, Vec<Incoming>>,
    late_count: usize,
    /// The offset of the newest message that left the window (for its size or its age): older
    /// pages come from the stream.
    evicted_upto: Option<u64>,
    /// The newest message the retention dropped: all before it went too.
    expired_upto: Option<u64>,
    window: usize,
    /// Messages older than this (ms) are gone (None: kept until the stream drops them).
    retention_ms: Option<u64>,
    read: HashMap<String, u64>,
    waiters: HashMap<String, oneshot::Sender<u64>>,
    last_offset: Option<u64>,
    /// Bot replies still streaming: when each last grew (unix ms).
    growing: HashMap<String, u64>,
}

/// At most this many changes to messages outside the window are kept for their pages (older
/// ones are dropped, oldest first, with a warning).
const MAX_LATE_CHANGES: usize = 100_000;

/// The default number of a room's newest messages a front end keeps in memory: ~0.4 MB a
/// room of chat-sized messages, so that a front end with a hundred busy rooms stays within a
/// few tens of MB; scrolling further back reads the room's stream.
pub const DEFAULT_WINDOW: usize = 1_000;

impl State {
    fn new(window: usize) -> State {
        State {
            messages: VecDeque::new(),
            index: HashMap::new(),
            changed: HashMap::new(),
            late: HashMap::new(),
            late_count: 0,
            evicted_upto: None,
            expired_upto: None,
            window: window.max(1),
            retention_ms: None,
            read: HashMap::new(),
            waiters: HashMap::new(),
            last_offset: None,
            growing: HashMap::new(),
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        let offset = *self.index.get(id)?;
        let i = self.messages.partition_point(|m| m.offset < offset);
        (self.messages.get(i)?.offset == offset).then_some(i)
    }

    /// The message `id` as this front end holds it: in the window, or changed after it left.
    fn find_mut(&mut self, id: &str) -> Option<&mut ChatMessage> {
        match self.position(id) {
            Some(i) => self.messages.get_mut(i),
            None => self.changed.get_mut(id),
        }
    }

    fn find(&self, id: &str) -> Option<&ChatMessage> {
        match self.position(id) {
            Some(i) => self.messages.get(i),
            None => self.changed.get(id),
        }
    }

    /// The oldest timestamp still kept, by the room's retention.
    fn cutoff(&self, now: u64) -> u64 {
        self.retention_ms.map_or(0, |r| now.saturating_sub(r))
    }

    /// Drop the oldest message from the window, keeping its state if it changed.
    fn evict_front(&mut self) -> Option<ChatMessage> {
        let m = self.messages.pop_front()?;
        self.index.remove(&m.id);
        self.evicted_upto = Some(self.evicted_upto.map_or(m.offset, |o| o.max(m.offset)));
        let touched = m.edited || m.deleted || !m.reactions.is_empty() || m.streaming || m.interrupted;
        if touched {
            self.changed.insert(m.id.clone(), m.clone());
        }
        Some(m)
    }

    fn remember_late(&mut self, target: &str, inc: &Incoming) {
        if self.late_count >= MAX_LATE_CHANGES {
            tracing::warn!("too many changes to old messages kept in memory: dropping them");
            self.late.clear();
            self.late_count = 0;
        }
        self.late.entry(target.to_owned()).or_default().push(inc.clone());
        self.late_count += 1;
    }
}

/// A streaming reply silent for this long is shown as interrupted, whoever asked the bot (the
/// front end that follows the reply closes it sooner; this covers one that went away).
pub const STALE_REPLY_MS: u64 = 60_000;

/// `m` as clients see it now: a reply silent for too long is interrupted.
fn view(m: &ChatMessage, growing: &HashMap<String, u64>, now: u64) -> ChatMessage {
    let mut m = m.clone();
    if m.streaming && now.saturating_sub(growing.get(&m.id).copied().unwrap_or(m.ts)) > STALE_REPLY_MS {
        m.streaming = false;
        m.interrupted = true;
    }
    m
}

/// A new message from a delivery of kind "message" (or none).
fn new_message(room: &str, inc: &Incoming, id: String) -> ChatMessage {
    let ts = inc.body.get("ts").and_then(Value::as_u64).unwrap_or(inc.ts);
    let streaming = inc.bot && inc.body.get("streaming").and_then(Value::as_bool) == Some(true);
    // a file only from a web user: the chat's own front ends store the files
    let file = (!inc.bot)
        .then(|| inc.body.get("file").cloned().and_then(|f| serde_json::from_value(f).ok()))
        .flatten()
        .filter(|f: &crate::files::FileMeta| f.id == id);
    ChatMessage {
        id,
        room: room.to_owned(),
        offset: inc.offset,
        author: inc.author.clone(),
        bot: inc.bot,
        text: inc.body.get("text").and_then(Value::as_str).unwrap_or("").to_owned(),
        ts,
        edited: false,
        deleted: false,
        reply_to: inc.body.get("reply_to").and_then(Value::as_str).map(str::to_owned),
        reactions: Default::default(),
        file,
        streaming,
        interrupted: false,
    }
}

/// The kind of a delivery, and the message it changes (for edits, deletes, reactions).
fn kind_of(inc: &Incoming) -> (&str, Option<&str>) {
    let kind = inc.body.get("kind").and_then(Value::as_str).unwrap_or("message");
    let target = inc.body.get("target").and_then(Value::as_str);
    match kind {
        "reaction" | "edit" | "delete" if target.is_some() => (kind, target),
        // the old, undocumented way to stream a reply (one stream record per chunk) is
        // ignored: bots stream over `reply_to` (crate::bots), and the history keeps only the
        // placeholder and its final text; never a message of its own either
        "reaction" | "edit" | "delete" | "chunk" => ("ignored", None),
        other => (other, None),
    }
}

/// Apply a change (`kind`: edit, delete or reaction) by `inc`'s author to `m`; true if
/// it changed. Only the author edits or deletes; bots do not react.
fn change(m: &mut ChatMessage, kind: &str, inc: &Incoming) -> bool {
    let text = || inc.body.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
    if kind == "reaction" {
        let Some(emoji) = inc.body.get("emoji").and_then(Value::as_str).filter(|e| !e.is_empty() && e.len() <= 32)
        else {
            return false;
        };
        let on = inc.body.get("on").and_then(Value::as_bool).unwrap_or(true);
        if m.deleted || inc.bot {
            return false;
        }
        let who = m.reactions.entry(emoji.to_owned()).or_default();
        let changed = if on { who.insert(inc.author.clone()) } else { who.remove(&inc.author) };
        if who.is_empty() {
            m.reactions.remove(emoji);
        }
        return changed;
    }
    if m.author != inc.author || m.bot != inc.bot || m.deleted {
        return false;
    }
    match kind {
        // the final text of a bot's streamed reply
        "edit" if m.streaming && inc.body.get("done").and_then(Value::as_bool) == Some(true) => {
            m.text = text();
            m.streaming = false;
            m.interrupted = inc.body.get("interrupted").and_then(Value::as_bool) == Some(true);
        }
        "edit" => {
            m.text = text();
            m.edited = true;
        }
        _ => {
            m.text.clear();
            m.file = None;
            m.deleted = true;
        }
    }
    true
}

/// Takes a room's live events for one session; false once that session is gone.
pub type Listener = Box<dyn Fn(&Arc<Outgoing>) -> bool + Send + Sync>;

pub struct RoomLog {
    pub id: String,
    state: Mutex<State>,
    /// Live sessions, by session id.
    listeners: Mutex<Vec<(u64, Listener)>>,
    ready: watch::Sender<bool>,
}

impl RoomLog {
    pub fn new(id: &str) -> Arc<RoomLog> {
        RoomLog::with_window(id, DEFAULT_WINDOW)
    }

    /// A log that keeps the newest `window` messages in memory.
    pub fn with_window(id: &str, window: usize) -> Arc<RoomLog> {
        let (ready, _) = watch::channel(false);
        Arc::new(RoomLog {
            id: id.to_owned(),
            state: Mutex::new(State::new(window)),
            listeners: Mutex::new(Vec::new()),
            ready,
        })
    }

    /// Messages older than `ms` (None: no limit) are gone from what this log serves.
    pub fn set_retention(&self, ms: Option<u64>) {
        self.state.lock().retention_ms = ms.filter(|ms| *ms > 0);
    }

    /// Add (or replace) `session`'s listener. `catch_up` runs first, with no event sent in
    /// between: whatever it queues for the session comes before every live event.
    pub fn listen<R>(&self, session: u64, listener: Listener, catch_up: impl FnOnce() -> R) -> R {
        let mut listeners = self.listeners.lock();
        let caught_up = catch_up();
        listeners.retain(|(s, _)| *s != session);
        listeners.push((session, listener));
        caught_up
    }

    pub fn forget(&self, session: u64) {
        self.listeners.lock().retain(|(s, _)| *s != session);
    }

    /// Hand `event` to every live session, dropping those that are gone.
    pub fn send(&self, event: Arc<Outgoing>) {
        self.listeners.lock().retain(|(_, listener)| listener(&event));
    }

    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    /// Resolve with the stream offset once an event with this id has been folded.
    pub fn wait_for(&self, id: &str) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        self.state.lock().waiters.insert(id.to_owned(), tx);
        rx
    }

    pub fn forget_waiter(&self, id: &str) {
        self.state.lock().waiters.remove(id);
    }

    /// Fold one delivery; broadcast what changed.
    pub fn apply(&self, inc: Incoming) {
        // the listeners' lock first, as `listen` takes them: a session that starts listening
        // now gets this event in its catch-up or live, never in neither
        let mut listeners = self.listeners.lock();
        // no session listens (a front end folding a room at start): no event to build
        let wanted = !listeners.is_empty();
        let out = {
            let mut s = self.state.lock();
            s.last_offset = Some(inc.offset);
            let id = inc.body.get("id").and_then(Value::as_str).map(str::to_owned);
            let out = self.fold(&mut s, &inc, id.as_deref(), wanted);
            if let Some(id) = id
                && let Some(w) = s.waiters.remove(&id)
            {
                let _ = w.send(inc.offset);
            }
            out
        };
        if let Some(value) = out {
            let event = Arc::new(Outgoing { offset: Some(inc.offset), json: value.to_string().into(), audience: None });
            listeners.retain(|(_, listener)| listener(&event));
        }
    }

    fn fold(&self, s: &mut State, inc: &Incoming, id: Option<&str>, wanted: bool) -> Option<Value> {
        let (kind, target) = kind_of(inc);
        match (kind, target) {
            ("sync" | "ignored", _) => None,
            ("receipt", _) => {
                let offset = inc.body.get("offset").and_then(Value::as_u64)?;
                if inc.bot || inc.body.get("status").and_then(Value::as_str) != Some("read") {
                    return None;
                }
                let r = s.read.entry(inc.author.clone()).or_insert(0);
                if offset <= *r {
                    return None;
                }
                *r = offset;
                Some(json!({"type": "read", "room": self.id, "user": inc.author, "offset": offset}))
            }
            (kind, Some(target)) => {
                let Some(m) = s.find_mut(target) else {
                    // a message that left the window unchanged (or none at all): its page
                    // folds this in when it is read
                    if s.evicted_upto.is_some() {
                        s.remember_late(target, inc);
                    }
                    return None;
                };
                if !change(m, kind, inc) {
                    return None;
                }
                let value = wanted.then(
                    || json!({"type": if kind == "delete" { "delete" } else { "edit" }, "room": self.id, "message": m}),
                );
                if !m.streaming {
                    let id = m.id.clone();
                    s.growing.remove(&id);
                }
                value
            }
            _ => {
                let id = id.map(str::to_owned).unwrap_or_else(|| format!("o{}", inc.offset));
                if s.index.contains_key(&id) {
                    return None;
                }
                let msg = new_message(&self.id, inc, id.clone());
                if msg.streaming {
                    s.growing.insert(id.clone(), msg.ts);
                }
                let value = wanted.then(|| json!({"type": "message", "room": self.id, "message": msg}));
                s.index.insert(id, msg.offset);
                s.messages.push_back(msg);
                while s.messages.len() > s.window {
                    s.evict_front();
                }
                value
            }
        }
    }

    /// Message `id` as clients see it now, if this front end holds it (the window, or changed
    /// since it left) and the room's retention keeps it.
    pub fn message(&self, id: &str) -> Option<ChatMessage> {
        let s = self.state.lock();
        let now = crate::model::now_ms();
        s.find(id).filter(|m| m.ts >= s.cutoff(now)).map(|m| view(m, &s.growing, now))
    }

    /// Who wrote message `id`, if this front end holds it.
    pub fn author_of(&self, id: &str) -> Option<String> {
        self.state.lock().find(id).map(|m| m.author.clone())
    }

    /// A bot's streaming reply `id` grew: `text` goes at byte `pos` (0: the whole text so far).
    /// A chunk that does not fit where the text is (one missed, or a repeat) is skipped; the
    /// next whole text or the final one makes up for it.
    pub fn grow(&self, id: &str, pos: usize, text: &str) {
        let value = {
            let mut s = self.state.lock();
            let Some(m) = s.find_mut(id) else { return };
            if !m.streaming || (pos != 0 && pos != m.text.len()) {
                return;
            }
            if pos == 0 {
                m.text.clear();
            }
            m.text.push_str(text);
            let value = json!({"type": "edit", "room": self.id, "message": m});
            s.growing.insert(id.to_owned(), crate::model::now_ms());
            value
        };
        self.send(Outgoing::transient(&value));
    }

    /// Up to `limit` messages older than `before` (all if None), newest first, from the
    /// window. `Older::Stream` when what comes before is no longer in memory: read it with
    /// [`RoomLog::page_from`] and the stream.
    pub fn history(&self, before: Option<u64>, limit: usize) -> (Vec<ChatMessage>, Older) {
        let s = self.state.lock();
        let now = crate::model::now_ms();
        let cutoff = s.cutoff(now);
        let end = before.map_or(s.messages.len(), |b| s.messages.partition_point(|m| m.offset < b));
        let first_kept = s.messages.partition_point(|m| m.ts < cutoff);
        let start = end.saturating_sub(limit).max(first_kept);
        let page: Vec<ChatMessage> =
            s.messages.range(start..end.max(start)).rev().map(|m| view(m, &s.growing, now)).collect();
        let older = if start > first_kept {
            Older::Before(s.messages[start].offset)
        } else if let Some(upto) = s.evicted_upto {
            // the rest is in the stream (unless the retention dropped it all)
            let from = page.last().map(|m| m.offset).or(before).unwrap_or(upto + 1).min(upto + 1);
            let all_expired = first_kept > 0 || s.expired_upto.is_some_and(|e| e >= upto);
            if all_expired && s.retention_ms.is_some() { Older::None } else { Older::Stream(from) }
        } else {
            Older::None
        };
        (page, older)
    }

    /// The messages of `deliveries` (read from the stream, oldest first) as clients see them
    /// now: with the changes made since they left the window, without those the retention
    /// dropped.
    pub fn page_from(&self, deliveries: &[Incoming]) -> Vec<ChatMessage> {
        let s = self.state.lock();
        let now = crate::model::now_ms();
        let cutoff = s.cutoff(now);
        let mut page = Vec::new();
        for inc in deliveries {
            if kind_of(inc).0 != "message" {
                continue;
            }
            let id = inc.body.get("id").and_then(Value::as_str).map(str::to_owned);
            let id = id.unwrap_or_else(|| format!("o{}", inc.offset));
            let mut m = match s.changed.get(&id) {
                Some(m) => m.clone(),
                None => {
                    let mut m = new_message(&self.id, inc, id);
                    for change_inc in s.late.get(&m.id).map(Vec::as_slice).unwrap_or_default() {
                        change(&mut m, kind_of(change_inc).0, change_inc);
                    }
                    m
                }
            };
            if m.ts < cutoff || m.offset != inc.offset {
                continue;
            }
            m = view(&m, &s.growing, now);
            page.push(m);
        }
        page
    }

    /// The offset of the oldest message in memory, if older ones left it.
    pub fn window_start(&self) -> Option<u64> {
        let s = self.state.lock();
        s.evicted_upto.map(|upto| s.messages.front().map_or(upto + 1, |m| m.offset))
    }

    /// Drop what the room's retention no longer keeps; the event that tells pages to drop it
    /// too, if anything went.
    pub fn expire(&self, now: u64) -> Option<Value> {
        let (cutoff, upto) = {
            let mut s = self.state.lock();
            let retention = s.retention_ms?;
            let cutoff = now.saturating_sub(retention);
            let mut upto = None;
            while s.messages.front().is_some_and(|m| m.ts < cutoff) {
                upto = s.evict_front().map(|m| m.offset);
            }
            if upto.is_some() {
                s.expired_upto = upto;
            }
            s.changed.retain(|_, m| m.ts >= cutoff);
            // a change is newer than its message: one older than the retention is for a
            // message the retention dropped
            let before = s.late_count;
            s.late.retain(|_, changes| {
                changes.retain(|c| c.ts >= cutoff);
                !changes.is_empty()
            });
            s.late_count = s.late.values().map(Vec::len).sum();
            if before != s.late_count {
                tracing::debug!(room = %self.id, dropped = before - s.late_count, "expired changes");
            }
            (cutoff, upto?)
        };
        let value = json!({"type": "expired", "room": self.id, "before_ts": cutoff, "upto": upto});
        self.send(Outgoing::transient(&value));
        Some(value)
    }

    /// Messages after `since` (all if None), oldest first, at most `limit` (the newest ones).
    pub fn since(&self, since: Option<u64>, limit: usize) -> Vec<ChatMessage> {
        let s = self.state.lock();
        let now = crate::model::now_ms();
        let cutoff = s.cutoff(now);
        let from = since.map_or(0, |o| s.messages.partition_point(|m| m.offset <= o));
        let from = from.max(s.messages.len().saturating_sub(limit));
        s.messages.range(from..).filter(|m| m.ts >= cutoff).map(|m| view(m, &s.growing, now)).collect()
    }

    /// Messages by others after `user`'s read offset that are not deleted, counted in the
    /// window (so at most its size).
    pub fn unread(&self, user: &str) -> usize {
        let s = self.state.lock();
        let cutoff = s.cutoff(crate::model::now_ms());
        let read = s.read.get(user).copied();
        let from = read.map_or(0, |o| s.messages.partition_point(|m| m.offset <= o));
        s.messages.range(from..).filter(|m| !m.deleted && m.author != user && m.ts >= cutoff).count()
    }

    /// The furthest any other user has read: `user`'s messages up to it show as read.
    pub fn read_by_others(&self, user: &str) -> Option<u64> {
        self.state.lock().read.iter().filter(|(u, _)| u.as_str() != user).map(|(_, o)| *o).max()
    }

    /// The newest messages of the window (at most `limit`) whose text contains `needle`
    /// (lowercase), newest first.
    pub fn search(&self, needle: &str, limit: usize) -> Vec<ChatMessage> {
        let s = self.state.lock();
        let cutoff = s.cutoff(crate::model::now_ms());
        s.messages
            .iter()
            .rev()
            .filter(|m| {
                !m.deleted
                    && m.ts >= cutoff
                    && (m.text.to_lowercase().contains(needle)
                        || m.file.as_ref().is_some_and(|f| f.name.to_lowercase().contains(needle)))
            })
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn read_offset(&self, user: &str) -> Option<u64> {
        self.state.lock().read.get(user).copied()
    }

    pub fn last_offset(&self) -> Option<u64> {
        self.state.lock().last_offset
    }

    /// How many messages the window holds (for tests and the benchmark).
    pub fn window_len(&self) -> usize {
        self.state.lock().messages.len()
    }
}

/// What comes before a page of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Older {
    /// Nothing (the start of the room, or of what its retention keeps).
    None,
    /// More in memory: ask again with this `before`.
    Before(u64),
    /// The rest is only in the stream, before this offset.
    Stream(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(offset: u64, author: &str, body: Value) -> Incoming {
        Incoming { offset, author: author.into(), bot: false, body, ts: 1 }
    }

    #[test]
    fn fold_messages_edits_deletes_and_reads() {
        let log = RoomLog::new("r");
        for i in 0..5 {
            log.apply(inc(i, "alice", json!({"id": format!("m{i}"), "kind": "message", "text": format!("t{i}")})));
        }
        log.apply(inc(5, "bob", json!({"id": "e1", "kind": "edit", "target": "m1", "text": "hijack"})));
        log.apply(inc(6, "alice", json!({"id": "e2", "kind": "edit", "target": "m1", "text": "fixed"})));
        log.apply(inc(7, "alice", json!({"id": "d1", "kind": "delete", "target": "m2"})));
        assert_eq!(log.message("m1").unwrap().text, "fixed");
        assert!(log.message("m2").unwrap().deleted);
        let (page, next) = log.history(None, 2);
        assert_eq!(page.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![4, 3]);
        assert_eq!(next, Older::Before(3));
        let (page, next) = log.history(Some(3), 10);
        assert_eq!(page.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(next, Older::None);
        assert_eq!(log.unread("bob"), 4);
        log.apply(inc(8, "bob", json!({"id": "r1", "kind": "receipt", "status": "read", "offset": 3})));
        assert_eq!(log.unread("bob"), 1);
        assert_eq!(log.since(Some(3), 100).len(), 1);
        assert_eq!(log.read_by_others("alice"), Some(3));
        assert_eq!(log.read_by_others("bob"), None);
        // reactions: one per person and emoji, taken back with on: false
        for (off, who, on) in [(9, "bob", true), (10, "bob", true), (11, "carol", true), (12, "carol", false)] {
            log.apply(inc(
                off,
                who,
                json!({"id": format!("x{off}"), "kind": "reaction", "target": "m3", "emoji": "👍", "on": on}),
            ));
        }
        let m3 = log.message("m3").unwrap();
        assert_eq!(m3.reactions.get("👍").map(|w| w.iter().cloned().collect::<Vec<_>>()), Some(vec!["bob".to_owned()]));
        log.apply(inc(13, "bob", json!({"id": "m9", "kind": "message", "text": "Yes, T3 it is", "reply_to": "m3"})));
        assert_eq!(log.message("m9").unwrap().reply_to.as_deref(), Some("m3"));
        assert_eq!(log.search("t3", 10).iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["m9", "m3"]);
    }

    #[test]
    fn a_streamed_reply_grows_then_is_one_message() {
        let log = RoomLog::new("r");
        let now = crate::model::now_ms();
        let bot = |offset, body| Incoming { offset, author: "words".into(), bot: true, body, ts: now };
        log.apply(bot(0, json!({"id": "p", "kind": "message", "text": "", "streaming": true, "ts": now})));
        log.grow("p", 0, "one ");
        log.grow("p", 4, "two ");
        log.grow("p", 99, "lost ");
        log.grow("p", 4, "repeat ");
        let m = log.message("p").unwrap();
        assert_eq!((m.text.as_str(), m.streaming), ("one two ", true));
        log.apply(bot(1, json!({"id": "f", "kind": "edit", "target": "p", "text": "one two three", "done": true})));
        let m = log.message("p").unwrap();
        assert_eq!((m.text.as_str(), m.streaming, m.interrupted, m.edited), ("one two three", false, false, false));
        log.grow("p", 0, "too late");
        assert_eq!(log.message("p").unwrap().text, "one two three");
        assert_eq!(log.history(None, 10).0.len(), 1, "one message in the history");
        // a legacy `kind: "chunk"` record (a bot publishing each chunk to the room's stream)
        // neither grows a message nor becomes one
        log.apply(bot(2, json!({"id": "c1", "kind": "chunk", "target": "p", "text": " four"})));
        log.apply(bot(3, json!({"id": "c2", "kind": "chunk", "text": "orphan"})));
        assert_eq!(log.message("p").unwrap().text, "one two three");
        assert!(log.message("c1").is_none() && log.message("c2").is_none());
        assert_eq!(log.history(None, 10).0.len(), 1, "still one message");
        // a reply nobody closed (its front end went away) shows as interrupted once stale
        let old = now - STALE_REPLY_MS - 1000;
        log.apply(Incoming {
            offset: 4,
            author: "words".into(),
            bot: true,
            body: json!({"id": "q", "kind": "message", "text": "", "streaming": true, "ts": old}),
            ts: old,
        });
        let m = log.message("q").unwrap();
        assert!(m.interrupted && !m.streaming);
    }

    #[test]
    fn a_bounded_window_keeps_changes_to_old_messages_for_their_pages() {
        let log = RoomLog::with_window("r", 3);
        let now = crate::model::now_ms();
        let msg = |i: u64, who: &str| Incoming {
            offset: i,
            author: who.into(),
            bot: false,
            body: json!({"id": format!("m{i}"), "text": format!("t{i}"), "ts": now}),
            ts: now,
        };
        let mut stream = Vec::new();
        for i in 0..3 {
            stream.push(msg(i, "alice"));
        }
        // m1 edited while in the window, then it leaves it
        stream.push(inc(3, "alice", json!({"id": "e1", "kind": "edit", "target": "m1", "text": "fixed"})));
        for i in 4..8 {
            stream.push(msg(i, "bob"));
        }
        // changes to messages that left the window unchanged: a delete, a reaction, and an
        // edit by someone else (ignored)
        stream.push(inc(8, "alice", json!({"id": "d0", "kind": "delete", "target": "m0"})));
        stream.push(inc(9, "carol", json!({"id": "x2", "kind": "reaction", "target": "m2", "emoji": "👍"})));
        stream.push(inc(10, "bob", json!({"id": "e2", "kind": "edit", "target": "m2", "text": "hijack"})));
        // and to m1 again, out of the window now
        stream.push(inc(11, "carol", json!({"id": "x1", "kind": "reaction", "target": "m1", "emoji": "🎉"})));
        for i in stream.iter().cloned() {
            log.apply(i);
        }
        assert_eq!(log.window_len(), 3, "the window holds 3 messages");
        let (page, older) = log.history(None, 10);
        assert_eq!(page.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![7, 6, 5]);
        assert_eq!(older, Older::Stream(5));
        // what a page read from the stream shows for [0, 5)
        let old = log.page_from(&stream[..5]);
        assert_eq!(old.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["m0", "m1", "m2", "m4"]);
        assert!(old[0].deleted && old[0].text.is_empty());
        assert_eq!(old[1].text, "fixed");
        assert!(old[1].edited && old[1].reactions.contains_key("🎉"));
        assert_eq!(old[2].text, "t2");
        assert!(old[2].reactions.get("👍").is_some_and(|w| w.contains("carol")));
        assert_eq!(log.message("m1").map(|m| m.text), Some("fixed".into()), "changed old messages stay known");
        assert_eq!(log.unread("alice"), 3);
    }

    #[test]
    fn retention_drops_old_messages_from_every_read() {
        let log = RoomLog::new("r");
        log.set_retention(Some(60_000));
        let now = crate::model::now_ms();
        let at = |i: u64, ts: u64| Incoming {
            offset: i,
            author: "alice".into(),
            bot: false,
            body: json!({"id": format!("m{i}"), "text": format!("t{i}"), "ts": ts}),
            ts,
        };
        log.apply(at(0, now - 120_000));
        log.apply(at(1, now - 61_000));
        log.apply(at(2, now - 1_000));
        // before the sweep, reads already leave them out
        assert_eq!(log.history(None, 10).0.len(), 1);
        assert_eq!(log.since(None, 10).len(), 1);
        assert!(log.message("m0").is_none());
        assert_eq!(log.unread("bob"), 1);
        assert!(log.search("t0", 10).is_empty());
        let event = log.expire(now).expect("something expired");
        assert_eq!(event["type"], "expired");
        assert_eq!(event["upto"], 1);
        assert_eq!(log.window_len(), 1);
        assert_eq!(log.history(None, 10).1, Older::None, "nothing older survives the retention");
        assert!(log.expire(now).is_none());
        assert!(log.page_from(&[at(0, now - 120_000)]).is_empty());
    }
}
