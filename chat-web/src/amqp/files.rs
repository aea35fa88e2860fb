//! A room's files on the broker: stream `chat.files.<room>`, declared with the room's
//! `x-max-age`, one message per file (body = the bytes; headers `x-file-id`, `x-file-name`,
//! `x-file-type`, `x-file-size`, `x-file-uploader`). Any front end of the same broker (or
//! cluster) reads a file back by its offset, so nothing lives on one front end's disk.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::feed::{header, offset_of};
use super::{Amqp, files_queue};
use crate::error::ApiError;

/// How long the upload waits to see its file in the stream (to learn its offset).
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a download waits for the file's message. A file the stream no longer holds (its
/// retention passed, and nothing newer was stored since) never comes: a 404 after this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Older messages a download skips at most before the one it asked for (RabbitMQ may start a
/// consumer at the beginning of the chunk holding the offset).
const MAX_SKIPPED: usize = 1000;

/// What the uploader said of the file, and who they are.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub uploader: &'a str,
}

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn text_header(d: &Delivery, name: &str) -> Option<String> {
    match header(d, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn with_offset(at: AMQPValue) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), at);
    args
}

/// Store `bytes` as one message of room `room`'s files stream (retention `secs`) and return
/// its offset. A consumer from `next` is attached before the publish, so the first delivery
/// carrying this file's id is this file, whatever other uploads go on at the same time.
pub async fn store(amqp: &Amqp, room: &str, secs: u64, file: &Upload<'_>, bytes: &[u8]) -> Result<u64, ApiError> {
    amqp.declare_files(room, secs).await?;
    let queue = files_queue(room);
    let ch = amqp.consumer_channel(1).await?;
    let next = with_offset(text("next"));
    let mut echo = ch.basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), next).await?;
    let mut headers = FieldTable::default();
    headers.insert("x-file-id".into(), text(file.id));
    headers.insert("x-file-name".into(), text(file.name));
    headers.insert("x-file-type".into(), text(file.content_type));
    headers.insert("x-file-size".into(), AMQPValue::LongLongInt(i64::try_from(bytes.len()).unwrap_or(i64::MAX)));
    headers.insert("x-file-uploader".into(), text(file.uploader));
    let stored = async {
        amqp.publish_file(&queue, file.content_type, headers, bytes).await?;
        let seen = async {
            while let Some(delivery) = echo.next().await {
                let d = delivery?;
                d.acker.ack(BasicAckOptions::default()).await?;
                if text_header(&d, "x-file-id").as_deref() == Some(file.id) {
                    return offset_of(&d).ok_or_else(|| ApiError::Broker("a stream message without offset".into()));
                }
            }
            Err(ApiError::Broker("the files stream consumer stopped".into()))
        };
        tokio::time::timeout(ECHO_TIMEOUT, seen)
            .await
            .map_err(|_| ApiError::Broker("the stored file did not come back from the stream".into()))?
    }
    .await;
    let _ = ch.close(200, "bye".into()).await;
    stored
}

/// A file read back from the stream.
#[derive(Debug)]
pub struct Stored {
    pub bytes: Bytes,
}

/// Read file `id` at `offset` of room `room`'s files stream: a fresh channel, prefetch 1, a
/// consumer from that offset, cancelled once it has the message. NotFound when the stream no
/// longer holds it (retention) or holds something else there.
pub async fn fetch(amqp: &Amqp, room: &str, offset: u64, id: &str) -> Result<Stored, ApiError> {
    let gone = || ApiError::NotFound(format!("file {id} is no longer kept"));
    let queue = files_queue(room);
    let at = AMQPValue::LongLongInt(i64::try_from(offset).map_err(|_| gone())?);
    let ch = amqp.consumer_channel(1).await?;
    let read = async {
        // (refused: the stream is gone with its room)
        let mut consumer = ch
            .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), with_offset(at))
            .await
            .map_err(|_| gone())?;
        for _ in 0..=MAX_SKIPPED {
            let delivery = tokio::time::timeout(FETCH_TIMEOUT, consumer.next()).await.map_err(|_| gone())?;
            let d = delivery.ok_or_else(|| ApiError::Broker("the files stream consumer stopped".into()))??;
            let at = offset_of(&d);
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            match at {
                Some(o) if o < offset => continue,
                Some(o) if o == offset && text_header(&d, "x-file-id").as_deref() == Some(id) => {
                    return Ok(Stored { bytes: Bytes::from(d.data) });
                }
                other => {
                    tracing::debug!(%room, offset, id, found = ?other, "the files stream holds no such file there");
                    return Err(gone());
                }
            }
        }
        Err(gone())
    };
    let result = read.await;
    // closing the channel cancels the consumer
    let _ = ch.close(200, "bye".into()).await;
    result
}
