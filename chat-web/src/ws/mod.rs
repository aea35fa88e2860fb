//! The live side: one WebSocket per browser tab.
//!
//! - `protocol`: the JSON frames a client may send;
//! - `session`: one socket: a reader loop, and a writer task fed by one bounded queue (frames,
//!   and the live events its rooms push) and the front end's presence feed.

pub mod protocol;
pub mod session;

/// Largest WebSocket message accepted at the protocol level; anything between the 64 KiB
/// chat limit and this gets an `error` event, anything larger closes the socket (1009).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Outgoing frames and events queued per socket before it counts as too slow and is closed (a
/// catch-up of up to 500 messages, with room to spare for live events).
pub const OUTBOX: usize = 2048;
