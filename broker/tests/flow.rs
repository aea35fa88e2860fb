//! Flow control: a publisher that outruns the consumers of a queue which cannot page (here: a
//! broker without a data directory) is no longer read from once the queue passes its memory
//! bound (256 MiB), and is read again once consumers drain it below half of it. Other
//! connections keep working, nothing is lost, and no alarm is raised.

mod common;

use std::time::Duration;

use common::{TestBroker, WAIT};
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

const MIB: usize = 1 << 20;

async fn message_count(ch: &lapin::Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    ch.queue_declare(queue.into(), passive, FieldTable::default()).await.expect("passive declare").message_count()
}

/// Wait until the count stops changing for half a second; returns it.
async fn settled_count(ch: &lapin::Channel, queue: &str) -> u32 {
    let mut last = message_count(ch, queue).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = message_count(ch, queue).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_into_a_full_queue_is_throttled_until_consumers_catch_up() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("big".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    const TOTAL: u32 = 400;
    let publisher = {
        let (conn, pch) = b.channel().await;
        tokio::spawn(async move {
            for i in 0..TOTAL {
                let mut body = vec![0u8; MIB];
                body[..4].copy_from_slice(&i.to_be_bytes());
                pch.basic_publish(
                    "".into(),
                    "big".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            }
            conn
        })
    };
    // The publisher stops being read a little past 256 MiB (what was in its read buffer
    // still goes in), far from all 400.
    let held = tokio::time::timeout(Duration::from_secs(60), settled_count(&ch, "big")).await.expect("settles");
    assert!((256..300).contains(&held), "the queue holds {held} MiB");
    assert!(!publisher.is_finished());
    // Another connection is not affected.
    let (_c2, other) = b.channel().await;
    other.queue_declare("bystander".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    // Consumers catch up: the publisher is read again and every message arrives, in order.
    let cch = b.connect().await.create_channel().await.unwrap();
    cch.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let mut consumer = cch
        .basic_consume("big".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    for expected in 0..TOTAL {
        let d = tokio::time::timeout(WAIT * 6, consumer.next()).await.expect("a delivery in time").unwrap().unwrap();
        assert_eq!(u32::from_be_bytes([d.data[0], d.data[1], d.data[2], d.data[3]]), expected);
        d.acker.ack(Default::default()).await.unwrap();
    }
    tokio::time::timeout(WAIT, publisher).await.expect("the publisher finished").unwrap();
    assert!(b.broker.alarm().borrow().is_none(), "no alarm was raised");
}
