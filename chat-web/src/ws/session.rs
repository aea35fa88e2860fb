//! One WebSocket session: authenticate (done by the route), say hello, then serve frames.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use warp::ws::{Message, WebSocket};

use super::protocol::ClientFrame;
use super::{MAX_FRAME_BYTES, OUTBOX};
use crate::error::ApiError;
use crate::presence::Status;
use crate::room_log::Outgoing;
use crate::state::App;

/// The sending half shared by the session's tasks: a bounded queue to the writer task, and a
/// kill switch pulled when that queue overflows (a browser too slow to keep up).
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    kill: Arc<Notify>,
}

impl Outbox {
    fn send_text(&self, text: impl Into<String>) -> bool {
        match self.tx.try_send(Message::text(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("closing a WebSocket that does not keep up");
                self.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn send(&self, value: &Value) -> bool {
        self.send_text(value.to_string())
    }

    fn error(&self, e: &ApiError, room: Option<&str>, client_id: Option<&str>) {
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
        self.send(&v);
    }
}

pub async fn run(app: App, user: String, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(OUTBOX);
    let kill = Arc::new(Notify::new());
    let out = Outbox { tx, kill: kill.clone() };
    // Writer: encode everything already queued, then flush once (one write per burst, not per
    // frame: a room event reaches every session at the same moment).
    let writer = tokio::spawn(async move {
        'outer: while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                break;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    break 'outer;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    app.presence_change(&user, 1, 0).await;
    let mut away = false;
    let mut subs: HashMap<String, JoinHandle<()>> = HashMap::new();
    subs.insert(String::new(), forward_global(app.global.subscribe(), out.clone(), user.clone()));
    hello(&app, &user, &out).await;

    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = kill.notified() => break,
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
                Ok(task) => {
                    if let Some(old) = subs.insert(room, task) {
                        old.abort();
                    }
                }
                Err(e) => out.error(&e, Some(&room), None),
            },
            ClientFrame::Unsubscribe { room } => {
                if let Some(t) = subs.remove(&room) {
                    t.abort();
                }
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

    for (_, task) in subs.drain() {
        task.abort();
    }
    drop(out);
    let _ = writer.await;
    app.presence_change(&user, -1, if away { -1 } else { 0 }).await;
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

fn forward_global(mut rx: broadcast::Receiver<Arc<Outgoing>>, out: Outbox, user: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if ev.is_for(&user) && !out.send_text(ev.json.as_ref()) {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// Catch up on `room` after `since`, then forward its live events.
async fn subscribe(
    app: &App,
    user: &str,
    room: &str,
    since: Option<u64>,
    out: &Outbox,
) -> Result<JoinHandle<()>, ApiError> {
    let r = app.member_room(room, user)?;
    let log = app.room_log(&r).await?;
    let mut rx = log.subscribe();
    let missed = log.since(since, 500);
    let mut high = since;
    for m in &missed {
        out.send(&json!({"type": "message", "room": room, "message": m, "catchup": true}));
        high = Some(m.offset);
    }
    let high = high.max(log.last_offset()).max(since);
    out.send(&json!({"type": "subscribed", "room": room, "unread": log.unread(user), "last_offset": high,
        "read_offset": log.read_offset(user)}));
    let (app, user, room, out) = (app.clone(), user.to_owned(), room.to_owned(), out.clone());
    Ok(tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if ev.offset.is_some() && ev.offset <= high {
                        continue;
                    }
                    if !app.directory.is_member(&room, &user) {
                        out.error(&ApiError::Forbidden(format!("you left {room}")), Some(&room), None);
                        break;
                    }
                    if !out.send_text(ev.json.as_ref()) {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let e = ApiError::Conflict(format!("{n} events skipped: subscribe again with your last offset"));
                    out.error(&e, Some(&room), None);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }))
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
