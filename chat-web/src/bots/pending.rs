//! The bots' requests channel and the replies in progress, and what a reply chunk says; the
//! tasks that feed them into the chat are `replies`.

use std::collections::HashMap;
use std::time::Instant;

use lapin::options::{BasicCancelOptions, BasicConsumeOptions, QueueDeleteOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Consumer};
use parking_lot::Mutex;
use serde_json::Value;

use super::{BotConfig, ReplyMode};
use crate::amqp::Amqp;
use crate::error::ApiError;

/// RabbitMQ's direct reply-to pseudo-queue.
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// Every this many chunks the text so far goes out whole, so that a front end that missed a
/// chunk event (or folded the placeholder late) catches up.
const WHOLE_EVERY: u32 = 16;

/// A reply in progress.
pub(super) struct Pending {
    pub(super) room: String,
    pub(super) bot: String,
    pub(super) text: String,
    pub(super) last: Instant,
    /// The placeholder is in the room: chunks go out as events from now on.
    pub(super) ready: bool,
    pub(super) chunks: u32,
    /// The bot finished (`Some(interrupted)`) before the placeholder was in the room.
    pub(super) finished: Option<bool>,
    /// Queue mode: the reply queue and its consumer's tag, removed when the reply ends.
    pub(super) queue: Option<(ShortString, ShortString)>,
}

pub struct Bots {
    /// Publishes requests (confirms on, `mandatory`: a request to no bot comes back); in
    /// direct mode it also consumes `amq.rabbitmq.reply-to`, as direct reply-to requires.
    pub(super) channel: Channel,
    pub(super) config: BotConfig,
    pub(super) pending: Mutex<HashMap<String, Pending>>,
}

/// What one reply chunk says: text to append, and whether the bot is done.
#[derive(Debug, PartialEq)]
pub struct Chunk {
    pub text: String,
    pub done: bool,
}

/// Decode a reply message: JSON `{"text": "...", "done": true}` (both optional), or any other
/// body as text to append.
pub fn parse_chunk(body: &[u8]) -> Chunk {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Chunk {
            text: o.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            done: o.get("done").and_then(Value::as_bool).unwrap_or(false),
        },
        _ => Chunk { text: String::from_utf8_lossy(body).into_owned(), done: false },
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(super) enum Then {
    Nothing,
    Event { room: String, pos: usize, text: String },
    Finish(Pending, bool),
}

impl Bots {
    /// Open the requests channel (and, in direct mode, the reply consumer on it).
    pub async fn open(amqp: &Amqp, config: BotConfig) -> Result<(Bots, Option<Consumer>), ApiError> {
        let channel = amqp.channel().await?;
        channel.confirm_select(Default::default()).await?;
        let consumer = if config.reply_mode == ReplyMode::Direct {
            let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
            Some(channel.basic_consume(DIRECT_REPLY_TO.into(), "".into(), opts, FieldTable::default()).await?)
        } else {
            None
        };
        Ok((Bots { channel, config, pending: Mutex::new(HashMap::new()) }, consumer))
    }

    /// How many replies are in progress.
    pub fn in_progress(&self) -> usize {
        self.pending.lock().len()
    }

    pub(super) async fn drop_queue(&self, queue: Option<(ShortString, ShortString)>) {
        if let Some((name, tag)) = queue {
            let _ = self.channel.basic_cancel(tag, BasicCancelOptions::default()).await;
            if let Err(e) = self.channel.queue_delete(name, QueueDeleteOptions::default()).await {
                tracing::debug!("reply queue not deleted (x-expires will): {e}");
            }
        }
    }

    /// Take one reply chunk: what to do about it.
    pub(super) fn take(&self, id: &str, chunk: Chunk) -> Then {
        let mut pending = self.pending.lock();
        let Some(p) = pending.get_mut(id) else {
            return Then::Nothing;
        };
        p.last = Instant::now();
        let pos = p.text.len();
        let room_left = crate::MAX_MESSAGE_BYTES.saturating_sub(pos);
        let text = cut(&chunk.text, room_left);
        // a reply that outgrows a chat message ends there
        let done = chunk.done || text.len() < chunk.text.len();
        p.text.push_str(text);
        p.chunks += 1;
        if done {
            if !p.ready {
                p.finished = Some(false);
                return Then::Nothing;
            }
            return match pending.remove(id) {
                Some(p) => Then::Finish(p, false),
                None => Then::Nothing,
            };
        }
        if !p.ready || text.is_empty() {
            return Then::Nothing;
        }
        if p.chunks % WHOLE_EVERY == 0 {
            Then::Event { room: p.room.clone(), pos: 0, text: p.text.clone() }
        } else {
            Then::Event { room: p.room.clone(), pos, text: text.to_owned() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_from_json_or_text() {
        assert_eq!(parse_chunk(br#"{"text":"hi "}"#), Chunk { text: "hi ".into(), done: false });
        assert_eq!(parse_chunk(br#"{"done":true}"#), Chunk { text: String::new(), done: true });
        assert_eq!(parse_chunk(b"plain words"), Chunk { text: "plain words".into(), done: false });
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 5), "abc");
    }
}
