//! JSON types shared by REST, WebSocket and the AMQP message contract.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A chat message as the front end has folded it from a room's stream.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: String,
    pub room: String,
    /// The message's `x-stream-offset` in the room stream: the history cursor.
    pub offset: u64,
    pub author: String,
    /// True when the author is an AMQP user (a bot), not a web user.
    pub bot: bool,
    pub text: String,
    pub ts: u64,
    pub edited: bool,
    pub deleted: bool,
    /// The message this one answers (quoted above it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Emoji reactions: emoji -> who reacted with it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, BTreeSet<String>>,
    /// The file this message shares (see `files`); its id is the message's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::files::FileMeta>,
    /// A bot's reply still growing, chunk by chunk.
    pub streaming: bool,
    /// A bot's reply that stopped before the bot said it was done (the bot died or hung).
    pub interrupted: bool,
}

/// A room as listed over REST.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub direct: bool,
    pub retention_days: u32,
    /// The retention in seconds (0: forever); what counts when it is not whole days.
    pub retention_seconds: u64,
    pub created_by: String,
    pub members: Vec<String>,
    /// Only shown to members of a private room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    pub archived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// A room's invitation code: sign-up with `--signup invite`.
    #[serde(default)]
    pub invite: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    pub old_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
pub struct AccountChange {
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct RoomChange {
    pub name: Option<String>,
    pub archived: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct TokenReply {
    pub token: String,
    pub username: String,
    pub expires_at: u64,
}

#[derive(Debug, Deserialize)]
pub struct NewRoom {
    pub name: String,
    #[serde(default = "default_true")]
    pub public: bool,
    pub retention_days: Option<u32>,
    /// A retention in seconds (at least 10), instead of `retention_days`.
    pub retention_seconds: Option<u64>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
pub struct JoinRoom {
    pub invite: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AddMember {
    pub user: String,
}

#[derive(Debug, Deserialize)]
pub struct PostMessage {
    pub text: String,
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// `POST /api/rooms/{id}/files?name=...`: the file's name (its type is the Content-Type).
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: String,
    /// One room; all the user's rooms when absent.
    pub room: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    /// Newest first.
    pub messages: Vec<ChatMessage>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
