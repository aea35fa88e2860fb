//! Bots answering in rooms: a message that starts with `@name` or `/name` is a request to the
//! bot `name`, sent to its request queue `name.requests` with `reply_to` and `correlation_id`.
//! The bot streams its reply back as chunks; this front end grows one message in the room
//! (a placeholder in the room's stream, chunks as transient events on `chat.events`) and, when
//! the bot says it is done, or has been silent for `idle_timeout`, stores the final text as one
//! edit of that placeholder (`done`, and `interrupted` if the bot went silent).
//!
//! - `mention`: who a message addresses;
//! - `pending`: the requests channel and the replies in progress;
//! - `replies`: asking, the reply consumers, their timeouts.

pub mod mention;
pub mod pending;
pub mod replies;

use std::time::Duration;

pub use pending::Bots;

/// Where a bot's reply chunks come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): no queue at all.
    Direct,
    /// A server-named queue per request that expires (`x-expires`) if nobody reads it.
    Queue,
}

#[derive(Debug, Clone)]
pub struct BotConfig {
    pub reply_mode: ReplyMode,
    /// A reply with no chunk for this long is closed as interrupted (the bot died or hangs).
    pub idle_timeout: Duration,
    /// `x-expires` of a per-request reply queue.
    pub reply_queue_expires: Duration,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            reply_mode: ReplyMode::Direct,
            idle_timeout: Duration::from_secs(15),
            reply_queue_expires: Duration::from_secs(60),
        }
    }
}

/// The request queue of bot `name`.
pub fn request_queue(name: &str) -> String {
    format!("{name}.requests")
}
