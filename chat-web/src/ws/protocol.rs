//! Client-to-server WebSocket frames (JSON, tagged by `type`).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start receiving a room: first what came after `since` (catch-up), then live events.
    Subscribe {
        room: String,
        since: Option<u64>,
    },
    Unsubscribe {
        room: String,
    },
    Send {
        room: String,
        text: String,
        client_id: Option<String>,
    },
    Edit {
        room: String,
        id: String,
        text: String,
    },
    Delete {
        room: String,
        id: String,
    },
    Typing {
        room: String,
    },
    /// Seen up to `offset` (read receipt; drives unread counts).
    Read {
        room: String,
        offset: u64,
    },
    /// The client displayed message `id` (delivered receipt to its author).
    Delivered {
        room: String,
        id: String,
    },
    Presence {
        status: String,
    },
    Ping,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"subscribe","room":"r1","since":4}"#).unwrap();
        assert!(matches!(f, ClientFrame::Subscribe { since: Some(4), .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"send","room":1}"#).is_err());
    }
}
