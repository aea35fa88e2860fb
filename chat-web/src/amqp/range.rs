//! `read_range`: the records of a stream between two offsets, read on a channel of their own
//! (older history pages and search beyond what a front end keeps in memory).

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};

use super::{Amqp, feed};
use crate::error::ApiError;
use crate::room_log::Incoming;

/// Credit of a range reader: enough to keep the socket busy, little to hold in memory.
const PREFETCH: u16 = 256;
/// A stream that says nothing for this long while a range is read: the read fails.
const SILENCE: Duration = Duration::from_secs(10);

/// What a range read found.
#[derive(Debug, Default)]
pub struct Range {
    /// The records with offsets in `[start, end)`, oldest first.
    pub records: Vec<Incoming>,
    /// The first offset the stream delivered: above `start` when its retention dropped the
    /// beginning (None: nothing before `end` at all).
    pub first: Option<u64>,
}

/// Read stream `queue`'s records with offsets in `[start, end)`: consume from `start`, stop
/// at the first record at or past `end - 1`, then close the channel (which ends the consumer).
pub async fn read_range(amqp: &Amqp, queue: &str, start: u64, end: u64) -> Result<Range, ApiError> {
    let mut range = Range::default();
    if end <= start {
        return Ok(range);
    }
    let ch = amqp.consumer_channel(PREFETCH).await?;
    let mut args = FieldTable::default();
    let from = i64::try_from(start).map_err(|_| ApiError::BadRequest("offset out of range".into()))?;
    args.insert("x-stream-offset".into(), AMQPValue::LongLongInt(from));
    let read = async {
        let mut consumer = ch.basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), args).await?;
        loop {
            let d = match tokio::time::timeout(SILENCE, consumer.next()).await {
                Ok(Some(Ok(d))) => d,
                Ok(Some(Err(e))) => return Err(ApiError::from(e)),
                Ok(None) => return Ok(()),
                Err(_) => return Err(ApiError::Broker(format!("{queue} went silent while a page was read"))),
            };
            d.acker.ack(BasicAckOptions::default()).await?;
            let Some(inc) = feed::decode(&d, amqp.user()) else { continue };
            // a broker may start at the beginning of the chunk that holds `start`
            if inc.offset < start {
                continue;
            }
            range.first.get_or_insert(inc.offset);
            if inc.offset >= end {
                return Ok(());
            }
            let last = inc.offset + 1 >= end;
            range.records.push(inc);
            if last {
                return Ok(());
            }
        }
    };
    let outcome = read.await;
    let _ = ch.close(200, "page read".into()).await;
    outcome.map(|()| range)
}
