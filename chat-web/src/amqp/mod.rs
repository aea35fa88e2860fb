//! The chat's only way to the broker: an AMQP 0-9-1 connection (lapin).
//!
//! - `addresses`: the node list of `--amqp-url` and where to start trying it;
//! - `client`: connect, declare the topology of the DESIGN contract, publish with confirms;
//! - `feed`: consume a stream queue and decode deliveries;
//! - `range`: read a stream between two offsets (old history pages, search).
//! - `files`: a room's shared files, one message each on stream `chat.files.<room>`.

pub mod addresses;
pub mod client;
pub mod feed;
pub mod files;
pub mod range;

pub use addresses::Rotation;
pub use client::Amqp;

/// Topic exchange every chat message, edit and receipt goes through.
pub const CHAT_EXCHANGE: &str = "chat";
/// Fanout exchange for transient presence and typing events.
pub const EVENTS_EXCHANGE: &str = "chat.events";
/// Stream of account, room and membership events.
pub const DIRECTORY_QUEUE: &str = "chat.directory";

pub fn room_queue(room: &str) -> String {
    format!("chat.room.{room}")
}

/// Stream of room `room`'s shared files (one message per file, same retention as the room).
pub fn files_queue(room: &str) -> String {
    format!("chat.files.{room}")
}

pub fn room_key(room: &str) -> String {
    format!("room.{room}")
}
