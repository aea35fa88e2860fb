//! `warren bot words`: the reference bot of the streaming contract (README, "Bots"). It
//! consumes its request queue `<name>.requests` and answers each request by publishing the
//! words of its text, one chunk per word at a fixed rate, to the request's `reply_to` with
//! its `correlation_id`, then `{"done": true}`.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use serde_json::json;

use super::ToolError;
use super::connect::connect;
use crate::bots::request_queue;

/// What the reference bot says when no text is given (public domain: the opening of Jerome K.
/// Jerome's "Three Men in a Boat").
pub const DEFAULT_TEXT: &str = "There were four of us, George, and William Samuel Harris, and myself, and \
Montmorency. We were sitting in my room, smoking, and talking about how bad we were, bad from a medical \
point of view I mean, of course.";

#[derive(Debug, Clone)]
pub struct WordsBot {
    pub amqp_url: String,
    pub amqp_ca_pem: Option<String>,
    /// The bot's name: `@name` in the chat, request queue `<name>.requests`.
    pub name: String,
    /// Words per second.
    pub rate: f64,
    pub text: String,
}

/// Serve requests until `stop` resolves (the connection is then closed, mid-reply or not) or
/// the connection is lost.
pub async fn run(bot: WordsBot, stop: impl Future<Output = ()>) -> Result<(), ToolError> {
    if !(bot.rate > 0.0 && bot.rate.is_finite()) {
        return Err(ToolError::Config("--rate must be a positive number of words per second".into()));
    }
    let conn = connect(&bot.amqp_url, bot.amqp_ca_pem.as_deref(), &format!("warren bot {}", bot.name)).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(16, BasicQosOptions::default()).await?;
    let queue = request_queue(&bot.name);
    // auto-delete: when the bot is gone, so is its queue, and the chat stops asking it
    let opts = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), opts, FieldTable::default()).await?;
    let mut requests = ch
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    tracing::info!(%queue, rate = bot.rate, "words bot waiting for requests");
    let words: Vec<String> = bot.text.split_whitespace().map(str::to_owned).collect();
    let every = Duration::from_secs_f64(1.0 / bot.rate);
    tokio::pin!(stop);
    let result = loop {
        let delivery = tokio::select! {
            d = requests.next() => d,
            _ = &mut stop => break Ok(()),
        };
        let d = match delivery {
            Some(Ok(d)) => d,
            Some(Err(e)) => break Err(e.into()),
            None => break Err(ToolError::Lost),
        };
        let reply_to = d.properties.reply_to().clone();
        let correlation = d.properties.correlation_id().clone();
        let (ch, words) = (ch.clone(), words.clone());
        tokio::spawn(async move {
            if let Some(reply_to) = reply_to {
                if let Err(e) = answer(&ch, &reply_to, correlation, &words, every).await {
                    tracing::warn!("cannot answer a request: {e}");
                }
            } else {
                tracing::warn!("a request without reply_to, ignored");
            }
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        });
    };
    let _ = conn.close(320, "words bot stopping".into()).await;
    result
}

async fn answer(
    ch: &Channel,
    reply_to: &ShortString,
    correlation: Option<ShortString>,
    words: &[String],
    every: Duration,
) -> Result<(), ToolError> {
    let mut props = BasicProperties::default().with_content_type("application/json".into());
    if let Some(c) = correlation {
        props = props.with_correlation_id(c);
    }
    let mut tick = tokio::time::interval(every);
    for (i, word) in words.iter().enumerate() {
        tick.tick().await;
        let text = if i + 1 < words.len() { format!("{word} ") } else { word.clone() };
        let body = json!({"text": text}).to_string();
        ch.basic_publish("".into(), reply_to.clone(), BasicPublishOptions::default(), body.as_bytes(), props.clone())
            .await?;
    }
    let done = json!({"done": true}).to_string();
    ch.basic_publish("".into(), reply_to.clone(), BasicPublishOptions::default(), done.as_bytes(), props).await?;
    Ok(())
}
