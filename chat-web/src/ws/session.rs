//! One WebSocket session: authenticate (done by the route), say hello, then serve frames.
//!
//! Two tasks per socket: the reader loop (this function) and one writer task that owns every
//! outgoing path: frames queued by the reader and by actions, plus the live event feeds (the
//! global feed and one per subscribed room), read straight from their broadcast channels. An
//! event reaches the socket with one task wake-up, not two.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use warp::ws::{Message, WebSocket};

use super::protocol::ClientFrame;
use super::{MAX_FRAME_BYTES, OUTBOX};
use crate::error::ApiError;
use crate::presence::Status;
use crate::room_log::Outgoing;
use crate::state::App;

/// What the writer task is told.
enum Out {
    Frame(Message),
    /// Forward `room`'s live events from `rx`, skipping stream offsets up to `high` (the
    /// catch-up sent them already).
    Subscribe {
        room: String,
        rx: broadcast::Receiver<Arc<Outgoing>>,
        high: Option<u64>,
    },
    Unsubscribe {
        room: String,
    },
}

/// An event feed the writer reads.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Feed {
    Global,
    Room(String),
}

/// The sending half shared by the session's tasks: a bounded queue to the writer task, and a
/// kill switch pulled when that queue overflows (a browser too slow to keep up).
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Out>,
    kill: Arc<Notify>,
}

impl Outbox {
    fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("closing a WebSocket that does not keep up");
                self.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn send_text(&self, text: impl Into<String>) -> bool {
        self.push(Out::Frame(Message::text(text)))
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

/// The writer task: everything that goes out on one socket.
struct Writer {
    app: App,
    user: String,
    sink: SplitSink<WebSocket, Message>,
    feeds: StreamMap<Feed, BroadcastStream<Arc<Outgoing>>>,
    /// Per room: the highest stream offset its catch-up sent.
    highs: HashMap<String, Option<u64>>,
    kill: Arc<Notify>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Out>) {
        loop {
            let more = tokio::select! {
                out = rx.recv() => match out {
                    Some(out) => self.take(out).await,
                    None => false,
                },
                Some((feed, event)) = self.feeds.next(), if !self.feeds.is_empty() => self.forward(feed, event).await,
            };
            if !more {
                break;
            }
            // Encode everything else that is ready, then flush once: one write per burst.
            let mut more = true;
            while more {
                if let Ok(out) = rx.try_recv() {
                    more = self.take(out).await;
                } else if let Some(Some((feed, event))) = self.feeds.next().now_or_never() {
                    more = self.forward(feed, event).await;
                } else {
                    break;
                }
            }
            if !more || self.sink.flush().await.is_err() {
                break;
            }
        }
        let _ = self.sink.close().await;
    }

    /// Handle one instruction; false when the socket is gone.
    async fn take(&mut self, out: Out) -> bool {
        match out {
            Out::Frame(m) => self.sink.feed(m).await.is_ok(),
            Out::Subscribe { room, rx, high } => {
                self.highs.insert(room.clone(), high);
                self.feeds.insert(Feed::Room(room), BroadcastStream::new(rx));
                true
            }
            Out::Unsubscribe { room } => {
                self.highs.remove(&room);
                self.feeds.remove(&Feed::Room(room));
                true
            }
        }
    }

    /// Forward one live event if it is for this session; false when the socket is gone.
    async fn forward(&mut self, feed: Feed, event: Result<Arc<Outgoing>, BroadcastStreamRecvError>) -> bool {
        let text = match (&feed, event) {
            (Feed::Global, Ok(ev)) => {
                if !ev.is_for(&self.user) {
                    return true;
                }
                ev.json.to_string()
            }
            (Feed::Global, Err(BroadcastStreamRecvError::Lagged(_))) => return true,
            (Feed::Room(room), Ok(ev)) => {
                if ev.offset.is_some() && ev.offset <= self.highs.get(room).copied().flatten() {
                    return true;
                }
                if !self.app.directory.is_member(room, &self.user) {
                    let e = ApiError::Forbidden(format!("you left {room}"));
                    let text = error_event(&e, Some(room), None).to_string();
                    self.feeds.remove(&feed);
                    return self.sink.feed(Message::text(text)).await.is_ok();
                }
                ev.json.to_string()
            }
            (Feed::Room(room), Err(BroadcastStreamRecvError::Lagged(n))) => {
                let e = ApiError::Conflict(format!("{n} events skipped: subscribe again with your last offset"));
                error_event(&e, Some(room), None).to_string()
            }
        };
        if self.sink.feed(Message::text(text)).await.is_err() {
            self.kill.notify_one();
            return false;
        }
        true
    }
}

pub async fn run(app: App, user: String, socket: WebSocket) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<Out>(OUTBOX);
    let kill = Arc::new(Notify::new());
    let out = Outbox { tx, kill: kill.clone() };
    let mut feeds = StreamMap::new();
    feeds.insert(Feed::Global, BroadcastStream::new(app.global.subscribe()));
    let writer =
        Writer { app: app.clone(), user: user.clone(), sink, feeds, highs: HashMap::new(), kill: kill.clone() };
    let writer = tokio::spawn(writer.run(rx));

    app.presence_change(&user, 1, 0).await;
    let mut away = false;
    hello(&app, &user, &out).await;
    let mut retired = app.retired();

    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = kill.notified() => break,
            // the broker connection is gone: the client reconnects to the state that replaces it
            _ = retired.wait_for(|r| *r) => break,
        };
        let msg = match frame {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::debug!(%user, "websocket error: {e}");
                break;
            }
            None => break,
        };
        if msg.is_close() {
            break;
        }
        if msg.is_ping() || msg.is_pong() {
            continue;
        }
        let Ok(text) = msg.to_str() else {
            out.error(&ApiError::BadRequest("binary frames are not supported; send JSON text".into()), None, None);
            continue;
        };
        if text.len() > MAX_FRAME_BYTES {
            out.error(&ApiError::TooLarge(MAX_FRAME_BYTES), None, None);
            continue;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(f) => f,
            Err(e) => {
                let err = if serde_json::from_str::<Value>(text).is_ok() {
                    ApiError::Unprocessable(format!("unknown or incomplete frame: {e}"))
                } else {
                    ApiError::BadRequest(format!("malformed JSON: {e}"))
                };
                out.error(&err, None, None);
                continue;
            }
        };
        match frame {
            ClientFrame::Presence { status } => {
                let want_away = status == "away";
                if want_away != away {
                    away = want_away;
                    app.presence_change(&user, 0, if away { 1 } else { -1 }).await;
                }
            }
            ClientFrame::Subscribe { room, since } => match subscribe(&app, &user, &room, since, &out).await {
                Ok((rx, high)) => {
                    out.push(Out::Subscribe { room, rx, high });
                }
                Err(e) => out.error(&e, Some(&room), None),
            },
            ClientFrame::Unsubscribe { room } => {
                out.push(Out::Unsubscribe { room });
            }
            ClientFrame::Ping => {
                out.send(&json!({"type": "pong"}));
            }
            other => {
                let (app, user, out) = (app.clone(), user.clone(), out.clone());
                tokio::spawn(async move { act(app, user, other, out).await });
            }
        }
    }

    drop(out);
    let _ = writer.await;
    if !app.is_retired() {
        app.presence_change(&user, -1, if away { -1 } else { 0 }).await;
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
    out.send(&json!({"type": "hello", "user": user, "rooms": rooms, "presence": presence}));
}

/// Catch up on `room` after `since`; returns its live feed and the highest offset sent, for
/// the writer to forward from there.
async fn subscribe(
    app: &App,
    user: &str,
    room: &str,
    since: Option<u64>,
    out: &Outbox,
) -> Result<(broadcast::Receiver<Arc<Outgoing>>, Option<u64>), ApiError> {
    let r = app.member_room(room, user)?;
    let log = app.room_log(&r).await?;
    let rx = log.subscribe();
    let missed = log.since(since, 500);
    let mut high = since;
    for m in &missed {
        out.send(&json!({"type": "message", "room": room, "message": m, "catchup": true}));
        high = Some(m.offset);
    }
    let high = high.max(log.last_offset()).max(since);
    out.send(&json!({"type": "subscribed", "room": room, "unread": log.unread(user), "last_offset": high,
        "read_offset": log.read_offset(user)}));
    Ok((rx, high))
}

/// Frames that go to the broker: run off the reader loop so a slow confirm doesn't stall it.
async fn act(app: App, user: String, frame: ClientFrame, out: Outbox) {
    match frame {
        ClientFrame::Send { room, text, client_id } => match app.post(&room, &user, &text).await {
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
