//! One live session of a browser tab, whatever carries it: a WebSocket (`crate::ws`) or the
//! fallback of Server-Sent Events plus REST (`crate::sse`). The transport gives this module a
//! stream of client frames (`Incoming`) and a sink of outgoing `Frame`s; everything else
//! (hello, subscriptions with catch-up, live events, actions, budgets, the end of the token) is
//! the same for both.
//!
//! Two tasks per session: the reader loop (`run`) and one writer task that owns every outgoing
//! path. Everything reaches the writer through one bounded queue: frames from the reader and
//! from actions, the live events of subscribed rooms, pushed there by the rooms themselves
//! (`RoomLog::listen`), and the front-end-wide events (presence, memberships), pushed there by
//! `GlobalEvents`. An event reaches the transport with one task wake-up, and a writer waiting
//! for the next one waits on nothing else.

pub mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::auth::{Ended, TokenEnd};
use crate::error::ApiError;
use crate::presence::Status;
use crate::ratelimit::AddrKey;
use crate::room_log::Outgoing;
use crate::state::App;
use protocol::ClientFrame;

/// Outgoing frames and events queued per session before it counts as too slow and is closed (a
/// catch-up of up to 500 messages, with room to spare for live events).
pub const OUTBOX: usize = 2048;

/// A burst (a catch-up, a backlog after a stall) is written out in pieces of about this many
/// bytes rather than all at once: the WebSocket transport buffers what it is fed up to 128 KiB
/// before writing, per session, and 10,000 sessions catching up at once would hold that much
/// each.
const FLUSH_BYTES: usize = 16 * 1024;

/// What a transport carries to the client.
#[derive(Debug)]
pub enum Frame {
    /// One JSON event.
    Text(String),
    /// The end of the session, with a WebSocket close code and reason.
    Close(u16, &'static str),
}

/// One client frame as the transport read it, or why it could not (an `error` event follows).
pub type Incoming = Result<ClientFrame, ApiError>;

/// Ids for the sessions of this front end, so a room can tell its listeners apart.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// What the writer task is told.
enum Out {
    Frame(Frame),
    /// `room`'s catch-up is queued: forward its live events from here on, skipping stream
    /// offsets up to `high` (the catch-up sent them already).
    Subscribed {
        room: Arc<str>,
        high: Option<u64>,
    },
    Unsubscribe {
        room: String,
    },
    /// A live event of `room`.
    Event {
        room: Arc<str>,
        event: Arc<Outgoing>,
    },
    /// A front-end-wide event (presence, accounts, rooms, memberships).
    Global(Arc<Outgoing>),
    /// The reader loop has ended: these last frames, then the end of the session. (The rooms'
    /// listeners still hold senders of the queue, so its closing cannot tell.)
    End(Vec<Frame>),
}

/// The sending half shared by the session's tasks and its rooms: a bounded queue to the writer
/// task, and a kill switch pulled when that queue overflows (a browser too slow to keep up; it
/// reconnects and catches up from its last offsets).
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Out>,
    kill: Arc<Notify>,
    overflow: Arc<Overflow>,
}

/// That a session's queue overflowed. The writer stops at once rather than write out a backlog
/// the client gets again in its catch-up, and gives up a write it is waiting on: a client that
/// does not read at all would keep it waiting (and its socket's buffers full) for ever.
#[derive(Default)]
struct Overflow {
    flag: AtomicBool,
    /// Wakes a writer that waits on its transport.
    notify: Notify,
}

impl Overflow {
    fn happened(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// `op` (a write on the transport), unless the session overflows first; false when it
    /// failed or was given up.
    async fn unless<E>(&self, op: impl std::future::Future<Output = Result<(), E>>) -> bool {
        if self.happened() {
            return false;
        }
        tokio::select! {
            biased;
            r = op => r.is_ok(),
            _ = self.notify.notified() => false,
        }
    }
}

/// How long the last frames (a close) may take to go out to a client that stopped reading.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Outbox {
    fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflow.flag.swap(true, Ordering::Relaxed) {
                    tracing::warn!("closing a session (WebSocket or event stream) that does not keep up");
                    self.overflow.notify.notify_one();
                }
                self.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// What puts the front-end-wide events for `user` in this queue. They take at most half of
    /// it: one that finds the queue half full is skipped (as a lagging broadcast receiver skips),
    /// so a storm of presence changes never closes a session; its rooms' events decide that.
    fn global_listener(&self, user: String) -> crate::global_events::Listener {
        let tx = self.tx.clone();
        Box::new(move |event: &Arc<Outgoing>| {
            if event.is_for(&user) && tx.capacity() > OUTBOX / 2 {
                let _ = tx.try_send(Out::Global(event.clone()));
            }
        })
    }

    fn send_text(&self, text: impl Into<String>) -> bool {
        self.push(Out::Frame(Frame::Text(text.into())))
    }

    fn send(&self, value: &Value) -> bool {
        self.send_text(value.to_string())
    }

    fn error(&self, e: &ApiError, room: Option<&str>, client_id: Option<&str>) {
        self.send(&error_event(e, room, client_id));
    }
}

fn error_event(e: &ApiError, room: Option<&str>, client_id: Option<&str>) -> Value {
    let mut v = json!({"type": "error"});
    if let (Some(obj), Ok(Value::Object(body))) = (v.as_object_mut(), serde_json::to_value(e.body())) {
        obj.extend(body);
        if let Some(r) = room {
            obj.insert("room".into(), r.into());
        }
        if let Some(c) = client_id {
            obj.insert("client_id".into(), c.into());
        }
    }
    v
}

/// A room a session follows.
struct Followed {
    /// The room's id, the same allocation its listener puts in each `Out::Event`.
    room: Arc<str>,
    /// The highest stream offset its catch-up sent.
    high: Option<u64>,
    /// Whether the session's user was a member, and `Directory::changes` when that was asked.
    member: Option<(u64, bool)>,
}

/// The writer task: everything that goes out on one session.
struct Writer<K> {
    app: App,
    user: String,
    session: u64,
    sink: K,
    /// The rooms subscribed to (a few, as a rule: looked up by pointer first).
    rooms: Vec<Followed>,
    kill: Arc<Notify>,
    overflow: Arc<Overflow>,
    /// Bytes queued on the transport since its last flush.
    unflushed: usize,
}

impl<K: Sink<Frame> + Unpin> Writer<K> {
    async fn run(mut self, mut rx: mpsc::Receiver<Out>) {
        while let Some(out) = rx.recv().await {
            // Encode this and everything else that is queued, then flush once: one write per burst.
            let mut more = self.take(out).await;
            while more
                && !self.overflow.happened()
                && let Ok(out) = rx.try_recv()
            {
                more = self.take(out).await;
            }
            if !more || self.overflow.happened() {
                break;
            }
            self.unflushed = 0;
            if !self.overflow.unless(self.sink.flush()).await {
                break;
            }
        }
        if self.overflow.happened() {
            // too slow: the client reconnects and catches up (1013: try again later). However
            // the loop ended (an event, a flush, or the reader's end found the overflow), the
            // close says why; the plain close below then adds no second close frame.
            let close = Frame::Close(1013, "too slow: reconnect and catch up");
            let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.feed(close)).await;
        }
        for f in &self.rooms {
            self.stop_listening(&f.room);
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.close()).await;
        // the client is gone (or the reader has ended already): stop the reader too
        self.kill.notify_one();
    }

    fn stop_listening(&self, room: &str) {
        if let Some(log) = self.app.active_room_log(room) {
            log.forget(self.session);
        }
    }

    /// Queue one frame on the transport, writing out what is queued once it reaches
    /// `FLUSH_BYTES`; false when the socket is gone.
    async fn feed(&mut self, frame: Frame) -> bool {
        self.unflushed += match &frame {
            Frame::Text(t) => t.len(),
            Frame::Close(..) => 0,
        };
        if !self.overflow.unless(self.sink.feed(frame)).await {
            return false;
        }
        if self.unflushed >= FLUSH_BYTES {
            self.unflushed = 0;
            return self.overflow.unless(self.sink.flush()).await;
        }
        true
    }

    /// Handle one instruction; false when the socket is gone.
    async fn take(&mut self, out: Out) -> bool {
        match out {
            Out::Frame(m) => self.feed(m).await,
            Out::Subscribed { room, high } => {
                self.rooms.retain(|f| f.room != room);
                self.rooms.push(Followed { room, high, member: None });
                true
            }
            Out::Unsubscribe { room } => {
                // the reader took the room's listener off already, before any later subscribe
                self.rooms.retain(|f| *f.room != *room);
                true
            }
            Out::Event { room, event } => self.forward_room(&room, &event).await,
            Out::Global(event) => self.send_event(&event).await,
            Out::End(last) => {
                for m in last {
                    if !self.overflow.unless(self.sink.feed(m)).await {
                        break;
                    }
                }
                self.overflow.unless(self.sink.flush()).await;
                false
            }
        }
    }

    /// Where `room` is in `rooms`: by pointer (the room's listener sends the `Arc` its subscribe
    /// gave the writer), else by name (an event its listener sent before a resubscribe).
    fn followed(&self, room: &Arc<str>) -> Option<usize> {
        let rooms = &self.rooms;
        rooms.iter().position(|f| Arc::ptr_eq(&f.room, room)).or_else(|| rooms.iter().position(|f| f.room == *room))
    }

    /// Forward one live event of `room` if the session still follows the room and has not had
    /// it in its catch-up; false when the socket is gone.
    async fn forward_room(&mut self, room: &Arc<str>, event: &Outgoing) -> bool {
        let Some(at) = self.followed(room) else {
            return true;
        };
        let f = &mut self.rooms[at];
        if event.offset.is_some() && event.offset <= f.high {
            return true;
        }
        // membership is asked again only when the directory has changed since
        let changes = self.app.directory.changes();
        let member = match f.member {
            Some((asked, member)) if asked == changes => member,
            _ => {
                let member = self.app.directory.is_member(room, &self.user);
                f.member = Some((changes, member));
                member
            }
        };
        if !member {
            self.rooms.swap_remove(at);
            self.stop_listening(room);
            let e = ApiError::Forbidden(format!("you left {room}"));
            return self.feed(Frame::Text(error_event(&e, Some(room), None).to_string())).await;
        }
        self.send_event(event).await
    }

    async fn send_event(&mut self, event: &Outgoing) -> bool {
        if !self.feed(Frame::Text(event.json.to_string())).await {
            self.kill.notify_one();
            return false;
        }
        true
    }
}

/// Serve one session of `user` (connected from `addr`) until the client goes (`incoming`
/// ends), the broker connection is replaced, or its token ends (`token_end`: logout or expiry;
/// the session then gets an `unauthorized` error event and `Frame::Close(1008, ..)`).
pub async fn run<I, K>(
    app: App,
    user: String,
    addr: Option<SocketAddr>,
    mut token_end: TokenEnd,
    mut incoming: I,
    sink: K,
) where
    I: Stream<Item = Incoming> + Unpin,
    K: Sink<Frame> + Unpin + Send + 'static,
{
    let addr = AddrKey::of(addr);
    let (tx, rx) = mpsc::channel::<Out>(OUTBOX);
    let kill = Arc::new(Notify::new());
    let overflow = Arc::new(Overflow::default());
    let out = Outbox { tx, kill: kill.clone(), overflow: overflow.clone() };
    let session = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let writer = Writer {
        app: app.clone(),
        user: user.clone(),
        session,
        sink,
        rooms: Vec::new(),
        kill: kill.clone(),
        overflow,
        unflushed: 0,
    };
    let writer = tokio::spawn(writer.run(rx));
    app.global.listen(session, out.global_listener(user.clone()));
    let _listening = GlobalListening { app: &app, session };

    // The broker round trips of a session (presence, hello, subscribe) are boxed: inline, their
    // futures sized this task for its whole life (heaptrack at 10,000 sessions: 3.2 KB a
    // session's task), though a session spends it waiting on its socket.
    Box::pin(app.presence_change(&user, 1, 0)).await;
    let mut away = false;
    Box::pin(hello(&app, &user, &out)).await;
    let mut retired = app.retired();
    let mut last_words = Vec::new();

    loop {
        let frame = tokio::select! {
            f = incoming.next() => f,
            _ = kill.notified() => break,
            // the broker connection is gone: the client reconnects to the state that replaces it
            _ = retired.wait_for(|r| *r) => break,
            ended = token_end.ended() => {
                let reason = match ended {
                    Ended::Revoked => "logged out",
                    Ended::Expired => "token expired",
                };
                tracing::debug!(%user, reason, "closing a session whose token ended");
                last_words.push(Frame::Text(error_event(&ApiError::Unauthorized, None, None).to_string()));
                last_words.push(Frame::Close(1008, reason));
                break;
            }
        };
        let frame = match frame {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                out.error(&e, None, None);
                continue;
            }
            None => break,
        };
        match frame {
            ClientFrame::Presence { status } => {
                let want_away = status == "away";
                if want_away != away {
                    away = want_away;
                    Box::pin(app.presence_change(&user, 0, if away { 1 } else { -1 })).await;
                }
            }
            ClientFrame::Subscribe { room, since } => {
                if let Err(e) = Box::pin(subscribe(&app, &user, session, &room, since, &out)).await {
                    out.error(&e, Some(&room), None);
                }
            }
            ClientFrame::Unsubscribe { room } => {
                if let Some(log) = app.active_room_log(&room) {
                    log.forget(session);
                }
                out.push(Out::Unsubscribe { room });
            }
            ClientFrame::Ping => {
                out.send(&json!({"type": "pong"}));
            }
            other => {
                // posting too fast: an error event, and the socket stays up
                if let Some((room, client_id)) = other.posting()
                    && let Err(e) = app.local.budgets.post(&user, addr)
                {
                    out.error(&e, Some(room), client_id);
                    continue;
                }
                let (app, user, out) = (app.clone(), user.clone(), out.clone());
                tokio::spawn(async move { act(app, user, other, out).await });
            }
        }
    }

    out.push(Out::End(last_words));
    drop(out);
    let _ = writer.await;
    if !app.is_retired() {
        Box::pin(app.presence_change(&user, -1, if away { -1 } else { 0 })).await;
    }
}

/// Takes a session's listener off `GlobalEvents` when the session ends, however it ends.
struct GlobalListening<'a> {
    app: &'a App,
    session: u64,
}

impl Drop for GlobalListening<'_> {
    fn drop(&mut self) {
        self.app.global.forget(self.session);
    }
}

async fn hello(app: &App, user: &str, out: &Outbox) {
    let mut rooms = Vec::new();
    for room in app.directory.rooms_of(user) {
        let mut view = room.view(user);
        if let Ok(log) = app.room_log(&room).await {
            view.unread = Some(log.unread(user));
            view.last_offset = log.last_offset();
        }
        rooms.push(view);
    }
    let mut presence = app.presence.snapshot();
    presence.insert(user.to_owned(), Status::Online);
    out.send(&json!({"type": "hello", "user": user, "admin": app.is_admin(user), "rooms": rooms, "presence": presence,
            // a streaming reply silent this long is interrupted: pages mark it so themselves
            "stale_reply_ms": crate::room_log::STALE_REPLY_MS}));
}

/// Catch up on `room` after `since`, then follow it live: the room pushes its events into this
/// session's outbox, after the catch-up.
async fn subscribe(
    app: &App,
    user: &str,
    session: u64,
    room: &str,
    since: Option<u64>,
    out: &Outbox,
) -> Result<(), ApiError> {
    let r = app.member_room(room, user)?;
    let log = app.room_log(&r).await?;
    let room: Arc<str> = room.into();
    let listener = {
        let (out, room, user) = (out.clone(), room.clone(), user.to_owned());
        Box::new(move |event: &Arc<Outgoing>| {
            !event.is_for(&user) || out.push(Out::Event { room: room.clone(), event: event.clone() })
        })
    };
    log.listen(session, listener, || {
        let missed = log.since(since, 500);
        let mut high = since;
        for m in &missed {
            out.send(&json!({"type": "message", "room": &*room, "message": m, "catchup": true}));
            high = Some(m.offset);
        }
        let high = high.max(log.last_offset()).max(since);
        out.send(&json!({"type": "subscribed", "room": &*room, "unread": log.unread(user), "last_offset": high,
            "read_offset": log.read_offset(user), "others_read": log.read_by_others(user)}));
        out.push(Out::Subscribed { room: room.clone(), high });
    });
    Ok(())
}

/// Frames that go to the broker: run off the reader loop so a slow confirm doesn't stall it.
async fn act(app: App, user: String, frame: ClientFrame, out: Outbox) {
    match frame {
        ClientFrame::Send { room, text, client_id, reply_to } => match crate::posting::post_once(&app, &room, &user, &text, client_id.as_deref(), reply_to.as_deref()).await {
            Ok(m) => {
                out.send(&json!({"type": "sent", "room": room, "client_id": client_id, "id": m.id, "offset": m.offset}));
            }
            Err(e) => out.error(&e, Some(&room), client_id.as_deref()),
        },
        ClientFrame::Edit { room, id, text } => {
            if let Err(e) = app.change(&room, &user, &id, Some(&text)).await {
                out.error(&e, Some(&room), None);
            }
        }
        ClientFrame::React { room, id, emoji, on } => {
            if let Err(e) = app.react(&room, &user, &id, &emoji, on).await {
                out.error(&e, Some(&room), None);
            }
        }
        ClientFrame::Delete { room, id } => {
            if let Err(e) = app.change(&room, &user, &id, None).await {
                out.error(&e, Some(&room), None);
            }
        }
        ClientFrame::Read { room, offset } => {
            if let Err(e) = app.mark_read(&room, &user, offset).await {
                out.error(&e, Some(&room), None);
            }
        }
        ClientFrame::Typing { room } => match app.member_room(&room, &user) {
            Ok(_) => app.announce(&json!({"type": "typing", "node": app.node, "room": room, "user": user})).await,
            Err(e) => out.error(&e, Some(&room), None),
        },
        ClientFrame::Delivered { room, id } => match app.member_room(&room, &user) {
            Ok(_) => {
                app.announce(&json!({"type": "receipt", "status": "delivered", "node": app.node, "room": room, "id": id, "user": user}))
                    .await
            }
            Err(e) => out.error(&e, Some(&room), None),
        },
        ClientFrame::Subscribe { .. } | ClientFrame::Unsubscribe { .. } | ClientFrame::Presence { .. } | ClientFrame::Ping => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_end_wide_events_take_at_most_half_the_queue_and_only_their_users() {
        let (tx, mut rx) = mpsc::channel::<Out>(OUTBOX);
        let out = Outbox { tx, kill: Arc::default(), overflow: Arc::default() };
        let listener = out.global_listener("ann".into());
        listener(&Outgoing::for_users(&json!({"type": "room"}), vec!["bob".into()]));
        assert!(rx.try_recv().is_err(), "an event for bob reached ann's session");

        let presence = Outgoing::transient(&json!({"type": "presence", "user": "bob", "status": "online"}));
        for _ in 0..OUTBOX {
            listener(&presence);
        }
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        // the other half stays for the rooms' events: a presence storm closes no session
        assert_eq!(queued, OUTBOX / 2);
        assert!(!out.overflow.happened());
    }
}
