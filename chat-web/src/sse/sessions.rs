//! The open event streams of a front end, by session id: where `POST /api/events/<session>`
//! queues a client's frames for its session.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::session::protocol::ClientFrame;

/// Client frames queued per session (a request with more is refused with 422, a request that
/// finds the queue full gets 429).
pub const FRAMES: usize = 64;

/// The open event streams of this front end: session id -> its user and frame queue.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Open>>,
}

struct Open {
    user: String,
    frames: mpsc::Sender<ClientFrame>,
}

impl Sessions {
    /// Add session `id` of `user`: the receiving end of its frame queue, and the guard that
    /// takes it out again when dropped.
    pub fn register(sessions: &Arc<Sessions>, id: &str, user: &str) -> (Registered, mpsc::Receiver<ClientFrame>) {
        let (frames_tx, frames_rx) = mpsc::channel(FRAMES);
        sessions.open.lock().insert(id.to_owned(), Open { user: user.to_owned(), frames: frames_tx });
        (Registered { sessions: sessions.clone(), id: id.to_owned() }, frames_rx)
    }

    /// Queue `frames` for session `id` of `user`.
    pub fn deliver(&self, id: &str, user: &str, frames: Vec<ClientFrame>) -> Result<(), ApiError> {
        let tx = match self.open.lock().get(id) {
            Some(open) if open.user == user => open.frames.clone(),
            // another user's session is as unknown as a closed one
            _ => return Err(ApiError::NotFound("no such event stream; open a new one".into())),
        };
        if frames.len() > FRAMES {
            return Err(ApiError::Unprocessable(format!("at most {FRAMES} frames per request")));
        }
        if tx.capacity() < frames.len() {
            return Err(ApiError::TooManyRequests(1));
        }
        for f in frames {
            tx.try_send(f).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::TooManyRequests(1),
                mpsc::error::TrySendError::Closed(_) => ApiError::NotFound("the event stream has ended".into()),
            })?;
        }
        Ok(())
    }
}

/// Takes a session out of the registry when it ends.
pub struct Registered {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.open.lock().remove(&self.id);
    }
}
