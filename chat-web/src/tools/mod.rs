//! Programs that join the chat as bots, over AMQP only (the embedded broker or RabbitMQ):
//!
//! - `words_bot`: the reference bot, answering every request with the words of a text at a
//!   fixed rate (`warren bot words`);
//! - `exec`: any program in a room, its stdout posted, the room on its stdin (`warren exec`);
//! - `connect`: the AMQP connection they share (amqps:// with an extra CA too).

pub mod connect;
pub mod exec;
pub mod words_bot;

/// Why a bot stopped.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("{0}")]
    Config(String),
    #[error("the broker connection was lost")]
    Lost,
}
