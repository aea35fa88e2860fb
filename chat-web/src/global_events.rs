//! `GlobalEvents`: the front-end-wide events (presence, accounts, rooms and memberships), handed
//! to every live session of this front end, each into the session's own queue.
//!
//! A session's writer waits on that one queue for everything it sends. (Before, each session
//! also held a `tokio::sync::broadcast` receiver, and polling it, each time the writer went idle,
//! took the channel's shared lock: once per delivery, 100,000 times a second from both cores at
//! 10,000 sessions of 100 rooms.)

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::room_log::Outgoing;

/// Takes the front-end-wide events for one session (and may skip those not for its user).
pub type Listener = Box<dyn Fn(&Arc<Outgoing>) + Send + Sync>;

#[derive(Default)]
pub struct GlobalEvents {
    /// Live sessions, by session id.
    listeners: Mutex<HashMap<u64, Listener>>,
}

impl GlobalEvents {
    /// Add (or replace) `session`'s listener.
    pub fn listen(&self, session: u64, listener: Listener) {
        self.listeners.lock().insert(session, listener);
    }

    pub fn forget(&self, session: u64) {
        self.listeners.lock().remove(&session);
    }

    /// Hand `event` to every live session.
    pub fn send(&self, event: Arc<Outgoing>) {
        for listener in self.listeners.lock().values() {
            listener(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    #[test]
    fn every_listening_session_gets_each_event_until_forgotten() {
        let events = GlobalEvents::default();
        let got: Arc<[AtomicUsize; 2]> = Arc::default();
        for session in 0..2 {
            let got = got.clone();
            events.listen(
                session,
                Box::new(move |_| {
                    got[session as usize].fetch_add(1, Ordering::Relaxed);
                }),
            );
        }
        events.send(Outgoing::transient(&json!({"type": "user", "user": "a"})));
        events.forget(0);
        events.send(Outgoing::transient(&json!({"type": "user", "user": "b"})));
        assert_eq!([got[0].load(Ordering::Relaxed), got[1].load(Ordering::Relaxed)], [1, 2]);
    }
}
