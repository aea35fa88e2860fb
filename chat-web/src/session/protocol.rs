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
        /// The message this one answers.
        #[serde(default)]
        reply_to: Option<String>,
    },
    /// Add (`on`, the default) or take back an emoji reaction to message `id`.
    React {
        room: String,
        id: String,
        emoji: String,
        #[serde(default = "yes")]
        on: bool,
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

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// The room (and client id) of a frame that posts to a room: send, edit, delete. These
    /// count against the posting budgets.
    pub fn posting(&self) -> Option<(&str, Option<&str>)> {
        match self {
            ClientFrame::Send { room, client_id, .. } => Some((room, client_id.as_deref())),
            ClientFrame::Edit { room, .. } | ClientFrame::Delete { room, .. } | ClientFrame::React { room, .. } => {
                Some((room, None))
            }
            _ => None,
        }
    }
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
        let send: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room":"r1","text":"x","client_id":"c"}"#).unwrap();
        assert_eq!(send.posting(), Some(("r1", Some("c"))));
        let typing: ClientFrame = serde_json::from_str(r#"{"type":"typing","room":"r1"}"#).unwrap();
        assert_eq!(typing.posting(), None);
    }
}
