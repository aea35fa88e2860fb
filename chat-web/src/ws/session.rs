//! One WebSocket session: the socket's messages become client frames, the session's frames
//! become WebSocket messages; `crate::session::run` does the rest.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt, future};
use serde_json::Value;
use warp::ws::{Message, WebSocket};

use super::MAX_FRAME_BYTES;
use crate::auth::TokenEnd;
use crate::error::ApiError;
use crate::session::protocol::ClientFrame;
use crate::session::{self, Frame, Incoming};
use crate::state::App;

/// Serve one socket of `user` (connected from `addr`) until it closes, the broker connection
/// is replaced, or its token ends (the socket is then closed with code 1008).
pub async fn run(app: App, user: String, addr: Option<SocketAddr>, token_end: TokenEnd, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|f: Frame| future::ready(Ok::<_, warp::Error>(message(f))));
    let who = user.clone();
    let incoming = stream
        .take_while(move |m| {
            let open = match m {
                Ok(m) => !m.is_close(),
                Err(e) => {
                    tracing::debug!(user = %who, "websocket error: {e}");
                    false
                }
            };
            future::ready(open)
        })
        .filter_map(|m| future::ready(m.ok().and_then(incoming)));
    session::run(app, user, addr, token_end, Box::pin(incoming), Box::pin(sink)).await;
}

fn message(f: Frame) -> Message {
    match f {
        Frame::Text(t) => Message::text(t),
        Frame::Close(code, reason) => Message::close_with(code, reason),
    }
}

/// One message of the socket as a client frame; `None` for pings and pongs.
fn incoming(msg: Message) -> Option<Incoming> {
    if msg.is_ping() || msg.is_pong() {
        return None;
    }
    let Ok(text) = msg.to_str() else {
        return Some(Err(ApiError::BadRequest("binary frames are not supported; send JSON text".into())));
    };
    if text.len() > MAX_FRAME_BYTES {
        return Some(Err(ApiError::TooLarge(MAX_FRAME_BYTES)));
    }
    Some(serde_json::from_str::<ClientFrame>(text).map_err(|e| {
        if serde_json::from_str::<Value>(text).is_ok() {
            ApiError::Unprocessable(format!("unknown or incomplete frame: {e}"))
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    }))
}
