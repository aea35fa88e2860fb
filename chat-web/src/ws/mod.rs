//! The WebSocket transport of a session (`crate::session`): one socket per browser tab.
//!
//! - `session`: reads a socket's messages into client frames and writes the session's frames
//!   as WebSocket messages.

pub mod session;

/// Largest WebSocket message accepted at the protocol level; anything between the 64 KiB
/// chat limit and this gets an `error` event, anything larger closes the socket (1009).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
