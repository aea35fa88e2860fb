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
    assert_eq!(next_block_event(&mut events).await.as_deref(), Some(reason));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = obs.queue_declare("full".into(), passive, FieldTable::default()).await.unwrap();
    assert_eq!(q.message_count(), 0, "a blocked connection's publish is not taken");
}

/// `warren ctl` on the running binary's data directory; returns (success, printed answer).
fn ctl(w: &Warren, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("ctl")
        .arg("--data-dir")
        .arg(&w.data_dir)
        .args(args)
        .output()
        .expect("run warren ctl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn next_block_event(events: &mut (impl futures_lite::Stream<Item = Event> + Unpin)) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Event::ConnectionBlocked(reason)) => return Some(reason),
                Some(Event::ConnectionUnblocked) => return None,
                Some(_) => continue,
                None => panic!("no more events"),
            }
        }
    })
    .await
    .expect("connection.blocked or unblocked in time")
}

#[tokio::test]
async fn warren_ctl_sets_the_watermark_at_run_time_and_publishers_follow() {
    let w = Warren::start(&["--no-chat"]);
    let observer = Connection::connect(&w.url(), ConnectionProperties::default()).await.unwrap();
    let obs = observer.create_channel().await.unwrap();
    obs.queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let publisher = Connection::connect(&w.url(), ConnectionProperties::default()).await.unwrap();
    let mut events = Box::pin(publisher.events_listener());
    let ch = publisher.create_channel().await.unwrap();

    let (ok, answer) = ctl(&w, &["set_vm_memory_high_watermark", "absolute", "1MB"]);
    assert!(ok && answer.contains("1000000 bytes"), "{answer}");
    let (ok, answer) = ctl(&w, &["status"]);
    assert!(ok && answer.contains("alarm: low on memory"), "{answer}");
    drop(
        ch.basic_publish("".into(), "q".into(), BasicPublishOptions::default(), b"held", BasicProperties::default())
            .await,
    );
    assert_eq!(next_block_event(&mut events).await.as_deref(), Some("low on memory"));

    let (ok, answer) = ctl(&w, &["set_vm_memory_high_watermark", "0.4"]);
    assert!(ok, "{answer}");
    assert_eq!(next_block_event(&mut events).await, None, "connection.unblocked");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = obs.queue_declare("q".into(), passive, FieldTable::default()).await.unwrap();
    assert_eq!(q.message_count(), 1, "the held publish arrives once the alarm clears");

    // Bad commands are refused with a reason and change nothing.
    for bad in [&["set_vm_memory_high_watermark", "2"][..], &["set_disk_free_limit", "lots"], &["frobnicate"]] {
        let (ok, answer) = ctl(&w, bad);
        assert!(!ok && answer.starts_with("error:"), "{bad:?}: {answer}");
    }
    let (ok, answer) = ctl(&w, &["status"]);
    assert!(ok && answer.contains("alarm: none"), "{answer}");
}
