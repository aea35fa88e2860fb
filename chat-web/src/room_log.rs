//! `RoomLog`: one room's messages folded from its stream (edits and deletes applied, read
//! offsets per user), plus the listeners that feed this front end's WebSocket sessions.
//!
//! Each listening session gets every event pushed into its own queue: no channel shared by a
//! thousand receivers, whose every read would take the same lock.

use std::collections::HashMap;
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

#[derive(Default)]
struct State {
    messages: Vec<ChatMessage>,
    index: HashMap<String, usize>,
    read: HashMap<String, u64>,
    waiters: HashMap<String, oneshot::Sender<u64>>,
    last_offset: Option<u64>,
    /// Bot replies still streaming: when each last grew (unix ms).
    growing: HashMap<String, u64>,
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
        let (ready, _) = watch::channel(false);
        Arc::new(RoomLog {
            id: id.to_owned(),
            state: Mutex::new(State::default()),
            listeners: Mutex::new(Vec::new()),
            ready,
        })
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
        let out = {
            let mut s = self.state.lock();
            s.last_offset = Some(inc.offset);
            let id = inc.body.get("id").and_then(Value::as_str).map(str::to_owned);
            let out = self.fold(&mut s, &inc, id.as_deref());
            if let Some(id) = id
                && let Some(w) = s.waiters.remove(&id)
            {
                let _ = w.send(inc.offset);
            }
            out
        };
        if let Some(value) = out {
            self.send(Arc::new(Outgoing { offset: Some(inc.offset), json: value.to_string().into(), audience: None }));
        }
    }

    fn fold(&self, s: &mut State, inc: &Incoming, id: Option<&str>) -> Option<Value> {
        let kind = inc.body.get("kind").and_then(Value::as_str).unwrap_or("message");
        let text = || inc.body.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
        let target = inc.body.get("target").and_then(Value::as_str);
        match kind {
            "sync" => None,
            "receipt" => {
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
            "reaction" if target.is_some() => {
                let emoji = inc.body.get("emoji").and_then(Value::as_str).filter(|e| !e.is_empty() && e.len() <= 32)?;
                let on = inc.body.get("on").and_then(Value::as_bool).unwrap_or(true);
                let idx = *s.index.get(target?)?;
                let m = &mut s.messages[idx];
                if m.deleted || inc.bot {
                    return None;
                }
                let who = m.reactions.entry(emoji.to_owned()).or_default();
                let changed = if on { who.insert(inc.author.clone()) } else { who.remove(&inc.author) };
                if who.is_empty() {
                    m.reactions.remove(emoji);
                }
                changed.then(|| json!({"type": "edit", "room": self.id, "message": m}))
            }
            "edit" | "delete" | "chunk" if target.is_some() => {
                let idx = *s.index.get(target?)?;
                let m = &mut s.messages[idx];
                if m.author != inc.author || m.bot != inc.bot || m.deleted {
                    return None;
                }
                match kind {
                    // the final text of a bot's streamed reply
                    "edit" if m.streaming && inc.body.get("done").and_then(Value::as_bool) == Some(true) => {
                        m.text = text();
                        m.streaming = false;
                        m.interrupted = inc.body.get("interrupted").and_then(Value::as_bool) == Some(true);
                        s.growing.remove(&m.id);
                    }
                    "edit" => {
                        m.text = text();
                        m.edited = true;
                    }
                    "chunk" => m.text.push_str(&text()),
                    _ => {
                        m.text.clear();
                        m.file = None;
                        m.deleted = true;
                    }
                }
                let t = if kind == "delete" { "delete" } else { "edit" };
                Some(json!({"type": t, "room": self.id, "message": m}))
            }
            _ => {
                let id = id.map(str::to_owned).unwrap_or_else(|| format!("o{}", inc.offset));
                if s.index.contains_key(&id) {
                    return None;
                }
                let ts = inc.body.get("ts").and_then(Value::as_u64).unwrap_or(inc.ts);
                let streaming = inc.bot && inc.body.get("streaming").and_then(Value::as_bool) == Some(true);
                if streaming {
                    s.growing.insert(id.clone(), ts);
                }
                let msg = ChatMessage {
                    id: id.clone(),
                    room: self.id.clone(),
                    offset: inc.offset,
                    author: inc.author.clone(),
                    bot: inc.bot,
                    text: text(),
                    ts,
                    edited: false,
                    deleted: false,
                    reply_to: inc.body.get("reply_to").and_then(Value::as_str).map(str::to_owned),
                    reactions: Default::default(),
                    // a file only from a web user: the chat's own front ends store the files
                    file: (!inc.bot)
                        .then(|| inc.body.get("file").cloned().and_then(|f| serde_json::from_value(f).ok()))
                        .flatten()
                        .filter(|f: &crate::files::FileMeta| f.id == id),
                    streaming,
                    interrupted: false,
                };
                let value = json!({"type": "message", "room": self.id, "message": msg});
                s.index.insert(id, s.messages.len());
                s.messages.push(msg);
                Some(value)
            }
        }
    }

    pub fn message(&self, id: &str) -> Option<ChatMessage> {
        let s = self.state.lock();
        s.index.get(id).map(|&i| view(&s.messages[i], &s.growing, crate::model::now_ms()))
    }

    /// A bot's streaming reply `id` grew: `text` goes at byte `pos` (0: the whole text so far).
    /// A chunk that does not fit where the text is (one missed, or a repeat) is skipped; the
    /// next whole text or the final one makes up for it.
    pub fn grow(&self, id: &str, pos: usize, text: &str) {
        let value = {
            let mut s = self.state.lock();
            let Some(&i) = s.index.get(id) else { return };
            let m = &mut s.messages[i];
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

    /// Up to `limit` messages older than `before` (all if None), newest first.
    pub fn history(&self, before: Option<u64>, limit: usize) -> (Vec<ChatMessage>, Option<u64>) {
        let s = self.state.lock();
        let end = before.map_or(s.messages.len(), |b| s.messages.partition_point(|m| m.offset < b));
        let start = end.saturating_sub(limit);
        let now = crate::model::now_ms();
        let page: Vec<ChatMessage> = s.messages[start..end].iter().rev().map(|m| view(m, &s.growing, now)).collect();
        let next = (start > 0).then(|| s.messages[start].offset);
        (page, next)
    }

    /// Messages after `since` (all if None), oldest first, at most `limit` (the newest ones).
    pub fn since(&self, since: Option<u64>, limit: usize) -> Vec<ChatMessage> {
        let s = self.state.lock();
        let from = since.map_or(0, |o| s.messages.partition_point(|m| m.offset <= o));
        let from = from.max(s.messages.len().saturating_sub(limit));
        let now = crate::model::now_ms();
        s.messages[from..].iter().map(|m| view(m, &s.growing, now)).collect()
    }

    /// Messages by others after `user`'s read offset that are not deleted.
    pub fn unread(&self, user: &str) -> usize {
        let s = self.state.lock();
        let read = s.read.get(user).copied();
        let from = read.map_or(0, |o| s.messages.partition_point(|m| m.offset <= o));
        s.messages[from..].iter().filter(|m| !m.deleted && m.author != user).count()
    }

    /// The furthest any other user has read: `user`'s messages up to it show as read.
    pub fn read_by_others(&self, user: &str) -> Option<u64> {
        self.state.lock().read.iter().filter(|(u, _)| u.as_str() != user).map(|(_, o)| *o).max()
    }

    /// The newest messages (at most `limit`) whose text contains `needle` (lowercase), newest
    /// first.
    pub fn search(&self, needle: &str, limit: usize) -> Vec<ChatMessage> {
        let s = self.state.lock();
        s.messages
            .iter()
            .rev()
            .filter(|m| {
                !m.deleted
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
        assert_eq!(next, Some(3));
        let (page, next) = log.history(next, 10);
        assert_eq!(page.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(next, None);
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
        // a reply nobody closed (its front end went away) shows as interrupted once stale
        let old = now - STALE_REPLY_MS - 1000;
        log.apply(Incoming {
            offset: 2,
            author: "words".into(),
            bot: true,
            body: json!({"id": "q", "kind": "message", "text": "", "streaming": true, "ts": old}),
            ts: old,
        });
        let m = log.message("q").unwrap();
        assert!(m.interrupted && !m.streaming);
    }
}
