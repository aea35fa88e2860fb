//! The fallback transport of a session (`crate::session`) for networks that block WebSocket:
//! events go out as Server-Sent Events on `GET /api/events?token=...` (an `EventSource` cannot
//! set headers, so the token comes in the query as for `/ws`), and the client's frames come in
//! as `POST /api/events/<session>` with the bearer token: the same JSON frames as over the
//! WebSocket, one object or an array of them, answered `202` once queued. Their outcome
//! (`sent`, `error`...) arrives on the event stream, as over the WebSocket.
//!
//! The first event names the session (`{"type": "session", "id": ...}`), then comes `hello`;
//! a client that reconnects gets a new session and subscribes again with its last offsets,
//! exactly as after a WebSocket reconnect.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use warp::Reply;
use warp::sse::Event;

use crate::auth::TokenEnd;
use crate::error::ApiError;
use crate::session::protocol::ClientFrame;
use crate::session::{self, Frame};
use crate::state::App;

pub mod sessions;
pub use sessions::{FRAMES, Sessions};

/// Events buffered between a session's writer and its HTTP response; when the client does not
/// read them, the session's own outbox fills and the session is closed, as a slow WebSocket is.
const BUFFERED: usize = 64;
/// A comment line this often keeps proxies from closing an idle stream and finds clients gone.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Open an event stream for `user`: start the session and answer with its events.
pub fn open(app: App, user: String, addr: Option<SocketAddr>, token_end: TokenEnd) -> impl Reply {
    let id = uuid::Uuid::new_v4().to_string();
    let (registered, frames_rx) = Sessions::register(&app.local.event_streams, &id, &user);

    let (events_tx, events_rx) = mpsc::channel::<Frame>(BUFFERED);
    // ok to ignore: the queue is new and empty
    let _ = events_tx.try_send(Frame::Text(json!({"type": "session", "id": id}).to_string()));
    // dropped with the response body, when the client goes: ends the session's frames
    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    let incoming = ReceiverStream::new(frames_rx).map(Ok).take_until(gone_rx);
    let sink = futures_util::sink::unfold(events_tx, |tx, f: Frame| async move { tx.send(f).await.map(|()| tx) });
    tokio::spawn(async move {
        session::run(app, user, addr, token_end, Box::pin(incoming), Box::pin(sink)).await;
        drop(registered);
    });

    // each event as one `data:` line; the stream ends after the session's last words
    let events = futures_util::stream::unfold((events_rx, gone_tx), |(mut rx, gone)| async move {
        match rx.recv().await? {
            Frame::Text(json) => Some((Ok::<_, Infallible>(Event::default().data(json)), (rx, gone))),
            Frame::Close(..) => None,
        }
    });
    warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(events))
}

/// `POST /api/events/<id>`: one client frame (a JSON object) or several (an array) for the
/// session `id` of `user`.
pub fn post(app: &App, id: &str, user: &str, body: Value) -> Result<(), ApiError> {
    let frames = match body {
        Value::Array(items) => items.into_iter().map(frame).collect::<Result<Vec<_>, _>>()?,
        one => vec![frame(one)?],
    };
    app.local.event_streams.deliver(id, user, frames)
}

fn frame(v: Value) -> Result<ClientFrame, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Unprocessable(format!("unknown or incomplete frame: {e}")))
}
