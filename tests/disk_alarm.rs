//! Resource alarms on the real binary: with a free-disk limit above the free space of the data
//! directory's filesystem (or a memory watermark below warren's resident memory), a publisher
//! is blocked (connection.blocked "low on disk" / "low on memory") and its message is not
//! taken, while a connection that only declares and reads keeps working.

mod common;

use std::time::Duration;

use common::Warren;
use futures_lite::StreamExt;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, Event};

#[tokio::test]
async fn a_disk_free_limit_above_the_free_space_blocks_publishers() {
    publisher_is_blocked(&["--no-chat", "--disk-free-limit", "1000000TB"], "low on disk").await;
}

#[tokio::test]
async fn a_memory_watermark_below_the_resident_memory_blocks_publishers() {
    publisher_is_blocked(&["--no-chat", "--memory-high-watermark", "1MB"], "low on memory").await;
}

async fn publisher_is_blocked(args: &[&str], reason: &str) {
    let w = Warren::start(args);
    let observer = Connection::connect(&w.url(), ConnectionProperties::default()).await.unwrap();
    let obs = observer.create_channel().await.unwrap();
    obs.queue_declare("full".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();

    let publisher = Connection::connect(&w.url(), ConnectionProperties::default()).await.unwrap();
    let mut events = Box::pin(publisher.events_listener());
    let ch = publisher.create_channel().await.unwrap();
    drop(
        ch.basic_publish("".into(), "full".into(), BasicPublishOptions::default(), b"x", BasicProperties::default())
            .await,
    );
    let blocked = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Event::ConnectionBlocked(reason)) => return reason,
                Some(_) => continue,
                None => panic!("no more events"),
            }
        }
    })
    .await
    .expect("connection.blocked in time");
    assert_eq!(blocked, reason);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = obs.queue_declare("full".into(), passive, FieldTable::default()).await.unwrap();
    assert_eq!(q.message_count(), 0, "a blocked connection's publish is not taken");
}
