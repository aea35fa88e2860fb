//! Stream consumers: read a stream queue from an offset and hand each decoded delivery to a
//! callback; acks return credit (streams keep the messages).

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::{Amqp, EVENTS_EXCHANGE};
use crate::error::ApiError;
use crate::room_log::Incoming;

/// Deliveries a stream consumer acknowledges at once (its prefetch is 500).
const ACK_EVERY: u32 = 100;

/// Where a stream consumer starts.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    First,
    Next,
}

pub(crate) fn header<'a>(d: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name)
}

pub(crate) fn offset_of(d: &Delivery) -> Option<u64> {
    match header(d, "x-stream-offset")? {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

/// Whether the broker vouches that `d` was published by `service_user`, the chat's own login:
/// both RabbitMQ and warren refuse a `user_id` that is not the publisher's login, so a message
/// carrying it came from a chat front end, never from a bot or another AMQP client.
pub fn from_service(d: &Delivery, service_user: &str) -> bool {
    d.properties.user_id().as_ref().is_some_and(|u| u.as_str() == service_user)
}

/// Decode a room delivery: who wrote it (web user through the service user, else a bot) and
/// the JSON body (a non-JSON body becomes `{"text": ...}`).
pub fn decode(d: &Delivery, service_user: &str) -> Option<Incoming> {
    let offset = offset_of(d)?;
    let user_id = d.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
    let text_header = |name: &str| match header(d, name) {
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    let chat_author = text_header("x-chat-author");
    // a bot's streamed reply, relayed by the chat: shown as from the bot
    let relayed_bot = text_header("x-chat-bot");
    let (author, bot) = match (user_id, chat_author) {
        (Some(u), _) if u == service_user && relayed_bot.is_some() => (relayed_bot.unwrap_or_default(), true),
        (Some(u), Some(a)) if u == service_user => (a, false),
        (Some(u), _) => (u, true),
        (None, _) => ("amqp".to_owned(), true),
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&d.data) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => serde_json::json!({"text": String::from_utf8_lossy(&d.data)}),
    };
    let ts = d.properties.timestamp().map(|t| t * 1000).unwrap_or_else(crate::model::now_ms);
    Some(Incoming { offset, author, bot, body, ts })
}

/// Consume stream `queue` from `start`, calling `on_delivery` for each message in order,
/// until the channel closes.
pub async fn consume_stream<F>(
    amqp: &Amqp,
    queue: &str,
    start: StartAt,
    on_delivery: F,
) -> Result<tokio::task::JoinHandle<()>, ApiError>
where
    F: FnMut(&Delivery) + Send + 'static,
{
    consume_stream_until(amqp, queue, start, on_delivery, || async { false }).await
}

/// [`consume_stream`], where a consumer the broker ends is expected when `expected` says so
/// (the stream was deleted on purpose); otherwise the connection is taken for broken.
pub async fn consume_stream_until<F, E, Fut>(
    amqp: &Amqp,
    queue: &str,
    start: StartAt,
    mut on_delivery: F,
    expected: E,
) -> Result<tokio::task::JoinHandle<()>, ApiError>
where
    F: FnMut(&Delivery) + Send + 'static,
    E: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ch = amqp.consumer_channel(500).await?;
    let mut args = FieldTable::default();
    let at = match start {
        StartAt::First => "first",
        StartAt::Next => "next",
    };
    args.insert("x-stream-offset".into(), AMQPValue::LongString(LongString::from(at)));
    let mut consumer = ch.basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), args).await?;
    let queue = queue.to_owned();
    let amqp = amqp.clone();
    Ok(tokio::spawn(async move {
        // credit goes back in batches (a multiple ack every ACK_EVERY deliveries, well under
        // the prefetch): one ack per record slows the fold of a long stream
        let mut unacked = 0u32;
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(d) => {
                    on_delivery(&d);
                    unacked += 1;
                    if unacked < ACK_EVERY {
                        continue;
                    }
                    unacked = 0;
                    if let Err(e) = d.acker.ack(BasicAckOptions { multiple: true }).await {
                        tracing::warn!(%queue, "ack failed: {e}");
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(%queue, "stream consumer stopped: {e}");
                    break;
                }
            }
        }
        // (an aborted task never gets here): the broker cancelled the consumer or the channel
        // died, so this front end's fold of the stream stops short. Start over elsewhere,
        // unless the stream was deleted on purpose (the directory may say so a moment later).
        for _ in 0..20 {
            if expected().await {
                return;
            }
            if !amqp.is_connected() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        amqp.broken(&format!("the consumer of {queue} stopped"));
        let _ = ch;
    }))
}

/// Bind an exclusive, auto-delete queue to `chat.events` and call `on_event` for each body
/// published by the chat's own service user (presence and typing of web users come from chat
/// front ends only; anything else on the exchange is dropped).
pub async fn consume_events<F>(amqp: &Amqp, mut on_event: F) -> Result<tokio::task::JoinHandle<()>, ApiError>
where
    F: FnMut(&[u8]) + Send + 'static,
{
    let service = amqp.user().to_owned();
    let ch = amqp.channel().await?;
    let opts = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    let q = ch.queue_declare("".into(), opts, FieldTable::default()).await?;
    ch.queue_bind(
        q.name().clone(),
        EVENTS_EXCHANGE.into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut consumer = ch.basic_consume(q.name().clone(), "".into(), opts, FieldTable::default()).await?;
    let amqp = amqp.clone();
    Ok(tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(d) if from_service(&d, &service) => on_event(&d.data),
                Ok(d) => {
                    let by = d.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
                    tracing::debug!(?by, "dropped a chat.events message not published by the chat");
                }
                Err(e) => {
                    tracing::warn!("events consumer stopped: {e}");
                    break;
                }
            }
        }
        amqp.broken("the chat.events consumer stopped");
        let _ = ch;
    }))
}
