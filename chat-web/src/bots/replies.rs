//! Sends requests to bots and follows their streamed replies into the chat (the replies in
//! progress are kept in `pending::Bots`).
//!
//! A reply in progress lives only in the memory of the front end that asked (its `Pending`);
//! the others see it grow through `chunk` events on `chat.events`. If that front end goes away
//! mid-reply, the placeholder stays `streaming` in the stream, and every front end reports it
//! as interrupted once it has been silent for a while (`RoomLog`'s stale check).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Confirmation, Consumer};
use serde_json::json;

use super::pending::{DIRECT_REPLY_TO, Pending, Then, parse_chunk};
use super::{ReplyMode, request_queue};
use crate::error::ApiError;
use crate::model::{ChatMessage, now_ms};
use crate::state::App;

/// A per-request reply queue (queue mode): server-named, expiring when nobody reads it.
async fn reply_queue(app: &App) -> Result<(ShortString, ShortString), ApiError> {
    let bots = &app.bots;
    let mut args = FieldTable::default();
    let ms = i32::try_from(bots.config.reply_queue_expires.as_millis()).unwrap_or(i32::MAX).max(1);
    args.insert("x-expires".into(), AMQPValue::LongInt(ms));
    let q = bots.channel.queue_declare("".into(), Default::default(), args).await?;
    let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let consumer = bots.channel.basic_consume(q.name().clone(), "".into(), opts, FieldTable::default()).await?;
    let tag = consumer.tag();
    // ends when the consumer is cancelled (the reply is over) or the channel closes
    follow(app, consumer);
    Ok((q.name().clone(), tag))
}

/// Follow a reply consumer: each delivery is a chunk of the reply its `correlation_id` names.
pub fn follow(app: &App, mut consumer: Consumer) -> tokio::task::JoinHandle<()> {
    let weak = app.downgrade();
    tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            let Some(app) = App::upgrade(&weak) else { break };
            match delivery {
                Ok(d) => on_reply(&app, &d).await,
                Err(e) => {
                    tracing::debug!("bot reply consumer stopped: {e}");
                    break;
                }
            }
        }
    })
}

async fn on_reply(app: &App, d: &Delivery) {
    let Some(id) = d.properties.correlation_id().as_ref().map(|c| c.as_str().to_owned()) else {
        tracing::debug!("a bot reply without correlation_id, dropped");
        return;
    };
    match app.bots.take(&id, parse_chunk(&d.data)) {
        Then::Nothing => {}
        Then::Event { room, pos, text } => {
            app.announce(&json!({"type": "chunk", "node": app.node, "room": room, "id": id, "pos": pos, "text": text}))
                .await;
        }
        Then::Finish(p, interrupted) => finish(app, &id, p, interrupted).await,
    }
}

/// Store the final text of reply `id` (one edit of its placeholder) and drop its queue.
async fn finish(app: &App, id: &str, p: Pending, interrupted: bool) {
    let body = json!({"id": uuid::Uuid::new_v4().to_string(), "kind": "edit", "room": p.room, "target": id,
        "text": p.text, "done": true, "interrupted": interrupted, "ts": now_ms()});
    if let Err(e) = app.publish_bot_reply(&p.room, &p.bot, body).await {
        tracing::warn!(room = %p.room, bot = %p.bot, "cannot store a bot's reply: {e}");
    }
    if interrupted {
        tracing::info!(room = %p.room, bot = %p.bot, "a bot's reply was interrupted (no chunk in time)");
    }
    app.bots.drop_queue(p.queue).await;
}

/// Close replies whose bot has been silent for `idle_timeout`, as interrupted.
pub fn watch_timeouts(app: &App) -> tokio::task::JoinHandle<()> {
    let weak = app.downgrade();
    let idle = app.bots.config.idle_timeout;
    let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = App::upgrade(&weak) else { break };
            let expired: Vec<(String, Pending)> = {
                let mut pending = app.bots.pending.lock();
                let ids: Vec<String> = pending
                    .iter()
                    .filter(|(_, p)| p.ready && p.last.elapsed() >= idle)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.into_iter().filter_map(|id| pending.remove(&id).map(|p| (id, p))).collect()
            };
            for (id, p) in expired {
                finish(&app, &id, p, true).await;
            }
        }
    })
}

/// Ask bot `bot` to answer `message` (posted by `user` in `room`): send the request, put a
/// placeholder in the room once the broker routed it to the bot's queue, and let the reply
/// grow it. A message to a bot that has no request queue is just a message.
pub async fn ask(
    app: &App,
    room: &str,
    user: &str,
    message: &ChatMessage,
    bot: &str,
    args: &str,
) -> Result<(), ApiError> {
    let bots = &app.bots;
    let id = uuid::Uuid::new_v4().to_string();
    let (reply_to, queue) = match bots.config.reply_mode {
        ReplyMode::Direct => (DIRECT_REPLY_TO.to_owned(), None),
        ReplyMode::Queue => {
            let (name, tag) = reply_queue(app).await?;
            (name.as_str().to_owned(), Some((name, tag)))
        }
    };
    bots.pending.lock().insert(
        id.clone(),
        Pending {
            room: room.to_owned(),
            bot: bot.to_owned(),
            text: String::new(),
            last: Instant::now(),
            ready: false,
            chunks: 0,
            finished: None,
            queue,
        },
    );
    let routed = request(app, &id, &reply_to, room, user, message, bot, args).await;
    if !matches!(routed, Ok(true)) {
        let p = bots.pending.lock().remove(&id);
        if let Some(p) = p {
            bots.drop_queue(p.queue).await;
        }
        return routed.map(|_| ());
    }
    let placeholder = json!({"id": id, "kind": "message", "room": room, "text": "", "streaming": true,
        "reply_to_message": message.id, "ts": now_ms()});
    if let Err(e) = app.publish_bot_reply(room, bot, placeholder).await {
        let p = bots.pending.lock().remove(&id);
        if let Some(p) = p {
            bots.drop_queue(p.queue).await;
        }
        return Err(e);
    }
    // live from here on: what came already goes out whole; a reply that ended already is stored
    let then = {
        let mut pending = bots.pending.lock();
        match pending.get_mut(&id) {
            Some(p) if p.finished.is_some() => {
                let interrupted = p.finished.unwrap_or(false);
                pending.remove(&id).map(|p| Then::Finish(p, interrupted)).unwrap_or(Then::Nothing)
            }
            Some(p) => {
                p.ready = true;
                p.last = Instant::now();
                if p.text.is_empty() {
                    Then::Nothing
                } else {
                    Then::Event { room: room.to_owned(), pos: 0, text: p.text.clone() }
                }
            }
            None => Then::Nothing,
        }
    };
    match then {
        Then::Nothing => {}
        Then::Event { room, pos, text } => {
            app.announce(&json!({"type": "chunk", "node": app.node, "room": room, "id": id, "pos": pos, "text": text}))
                .await;
        }
        Then::Finish(p, interrupted) => finish(app, &id, p, interrupted).await,
    }
    Ok(())
}

/// Publish the request; false if no queue took it (no such bot).
#[allow(clippy::too_many_arguments)]
async fn request(
    app: &App,
    id: &str,
    reply_to: &str,
    room: &str,
    user: &str,
    message: &ChatMessage,
    bot: &str,
    args: &str,
) -> Result<bool, ApiError> {
    let body = json!({"id": id, "room": room, "user": user, "bot": bot, "text": message.text, "args": args,
        "message_id": message.id, "ts": now_ms()});
    let mut headers = FieldTable::default();
    headers.insert("x-chat-room".into(), AMQPValue::LongString(LongString::from(room)));
    headers.insert("x-chat-author".into(), AMQPValue::LongString(LongString::from(user)));
    let short = |s: &str| ShortString::try_new(s).map_err(|_| ApiError::BadRequest("name too long".into()));
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_reply_to(short(reply_to)?)
        .with_correlation_id(short(id)?)
        .with_timestamp(now_ms() / 1000)
        .with_headers(headers);
    if let Ok(service) = ShortString::try_new(app.amqp.user()) {
        // bots can tell a request from the chat by the user the broker vouches for
        props = props.with_user_id(service);
    }
    let opts = BasicPublishOptions { mandatory: true, ..Default::default() };
    let payload = body.to_string();
    let confirm =
        app.bots.channel.basic_publish("".into(), short(&request_queue(bot))?, opts, payload.as_bytes(), props).await?;
    match confirm.await? {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(true),
        Confirmation::Ack(Some(_)) => {
            tracing::debug!(%bot, "no bot of that name (its request queue does not exist)");
            Ok(false)
        }
        Confirmation::Nack(_) => Err(ApiError::Broker("the broker refused the bot request (nack)".into())),
    }
}
