//! Durability of the real binary: restarts keep durable definitions and persistent messages
//! (in order, delivered-but-unacked ones redelivered); `kill -9` in the middle of confirmed
//! publishing and acknowledged consuming loses no confirmed message.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Warren;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

const T: Duration = Duration::from_secs(10);

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn connect(w: &Warren) -> (Connection, lapin::Channel) {
    let c = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.expect("channel");
    (c, ch)
}

fn kill_9(w: &mut Warren) {
    let _ = w.child.kill();
    let _ = w.child.wait();
}

#[tokio::test]
async fn definitions_and_persistent_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    {
        let (_c, ch) = connect(&w).await;
        let durable_q = QueueDeclareOptions { durable: true, ..Default::default() };
        let durable_x = ExchangeDeclareOptions { durable: true, ..Default::default() };
        ch.exchange_declare("dx".into(), ExchangeKind::Topic, durable_x, FieldTable::default()).await.unwrap();
        ch.exchange_declare("tx".into(), ExchangeKind::Topic, Default::default(), FieldTable::default()).await.unwrap();
        ch.queue_declare("dq".into(), durable_q, FieldTable::default()).await.unwrap();
        ch.queue_declare("tq".into(), Default::default(), FieldTable::default()).await.unwrap();
        ch.queue_bind("dq".into(), "dx".into(), "a.#".into(), Default::default(), FieldTable::default()).await.unwrap();
        // exchange.bind between durable exchanges is durable; to a transient one it is not.
        ch.exchange_declare("front".into(), ExchangeKind::Fanout, durable_x, FieldTable::default()).await.unwrap();
        ch.exchange_bind("dx".into(), "front".into(), "".into(), Default::default(), FieldTable::default())
            .await
            .unwrap();
        ch.exchange_bind("tx".into(), "front".into(), "".into(), Default::default(), FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..5u8 {
            let props = if i == 2 { BasicProperties::default() } else { persistent() };
            let c = ch.basic_publish("dx".into(), "a.b".into(), Default::default(), &[i], props).await.unwrap();
            assert!(c.await.unwrap().is_ack());
        }
        ch.basic_publish("".into(), "tq".into(), Default::default(), b"t", persistent()).await.unwrap().await.unwrap();
        // Deliver the first message and leave it unacked.
        let m = ch.basic_get("dq".into(), BasicGetOptions { no_ack: false }).await.unwrap().unwrap();
        assert_eq!(m.delivery.data, [0]);
        assert!(!m.delivery.redelivered);
        // Ack the second one for good.
        let m = ch.basic_get("dq".into(), BasicGetOptions { no_ack: false }).await.unwrap().unwrap();
        m.delivery.acker.ack(Default::default()).await.unwrap();
        ch.basic_qos(0, Default::default()).await.unwrap(); // the ack is in before the kill
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (_c, ch) = connect(&w).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = ch.queue_declare("dq".into(), passive, FieldTable::default()).await.unwrap();
    // 0 (unacked, back), 3 and 4; 1 was acked, 2 was transient.
    assert_eq!(q.message_count(), 3);
    let mut got = Vec::new();
    while let Some(m) = ch.basic_get("dq".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        got.push((m.delivery.data[0], m.delivery.redelivered));
    }
    assert_eq!(got.iter().map(|(b, _)| *b).collect::<Vec<_>>(), [0, 3, 4]);
    assert!(got[0].1, "the delivered-but-unacked message comes back redelivered");
    // The transient queue and exchange are gone; the durable binding routes again.
    let err = ch.queue_declare("tq".into(), passive, FieldTable::default()).await.unwrap_err();
    assert!(matches!(err.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 404));
    let ch = _c.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let got = publish_then_get(&ch, "dx", "a.z", b"again", "dq").await;
    assert_eq!(got.as_deref(), Some(&b"again"[..]), "routed through the recovered binding");
    // The exchange-to-exchange binding came back too: front -> dx -> dq.
    let got = publish_then_get(&ch, "front", "a.front", b"via front", "dq").await;
    assert_eq!(got.as_deref(), Some(&b"via front"[..]), "routed through the recovered exchange binding");
}

/// Publish a persistent message (confirmed: `ch` is in confirm mode), then basic.get `queue`.
async fn publish_then_get(ch: &lapin::Channel, exchange: &str, key: &str, body: &[u8], queue: &str) -> Option<Vec<u8>> {
    ch.basic_publish(exchange.into(), key.into(), Default::default(), body, persistent()).await.unwrap().await.unwrap();
    let got = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap();
    got.map(|m| m.delivery.data)
}

#[derive(Default)]
struct Ledger {
    confirmed: HashSet<u32>,
    /// Every delivery seen: id -> redelivered flags in order.
    deliveries: HashMap<u32, Vec<bool>>,
    acked: HashSet<u32>,
    published: u32,
}

async fn publisher(w_url: String, ledger: Arc<Mutex<Ledger>>, next: Arc<Mutex<u32>>) {
    let Ok(c) = Connection::connect(&w_url, ConnectionProperties::default()).await else { return };
    let Ok(ch) = c.create_channel().await else { return };
    if ch.confirm_select(Default::default()).await.is_err() {
        return;
    }
    loop {
        let mut batch = Vec::new();
        for _ in 0..20 {
            let id = {
                let mut n = next.lock().unwrap();
                *n += 1;
                *n
            };
            ledger.lock().unwrap().published = id;
            match ch.basic_publish("".into(), "crash".into(), Default::default(), &id.to_be_bytes(), persistent()).await
            {
                Ok(confirm) => batch.push((id, confirm)),
                Err(_) => return,
            }
        }
        for (id, confirm) in batch {
            match tokio::time::timeout(T, confirm).await {
                Ok(Ok(c)) if c.is_ack() => {
                    ledger.lock().unwrap().confirmed.insert(id);
                }
                _ => return,
            }
        }
    }
}

async fn consumer(w_url: String, ledger: Arc<Mutex<Ledger>>) {
    let Ok(c) = Connection::connect(&w_url, ConnectionProperties::default()).await else { return };
    let Ok(ch) = c.create_channel().await else { return };
    if ch.basic_qos(50, Default::default()).await.is_err() {
        return;
    }
    let Ok(mut consumer) = ch.basic_consume("crash".into(), "".into(), Default::default(), FieldTable::default()).await
    else {
        return;
    };
    while let Ok(Some(Ok(d))) = tokio::time::timeout(T, consumer.next()).await {
        let id = u32::from_be_bytes(d.data[..4].try_into().unwrap());
        ledger.lock().unwrap().deliveries.entry(id).or_default().push(d.redelivered);
        if d.acker.ack(Default::default()).await.is_err() {
            return;
        }
        ledger.lock().unwrap().acked.insert(id);
    }
}

#[tokio::test]
async fn twenty_kill_9_cycles_lose_no_confirmed_message() {
    let dir = tempfile::tempdir().unwrap();
    {
        let w = Warren::start_on(dir.path(), &[]);
        let (_c, ch) = connect(&w).await;
        ch.queue_declare(
            "crash".into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let next = Arc::new(Mutex::new(0u32));
    println!("cycle | run ms | published | confirmed | delivered | acked | queued after restart");
    for cycle in 1..=20u32 {
        let mut w = Warren::start_on(dir.path(), &[]);
        let queued = {
            let (_c, ch) = connect(&w).await;
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            ch.queue_declare("crash".into(), passive, FieldTable::default())
                .await
                .expect("durable queue survives")
                .message_count()
        };
        let p = tokio::spawn(publisher(w.url(), ledger.clone(), next.clone()));
        let c = tokio::spawn(consumer(w.url(), ledger.clone()));
        let run_ms = 150 + (cycle * 37) % 300;
        tokio::time::sleep(Duration::from_millis(u64::from(run_ms))).await;
        kill_9(&mut w);
        let _ = tokio::time::timeout(T, p).await;
        let _ = tokio::time::timeout(T, c).await;
        let l = ledger.lock().unwrap();
        println!(
            "{cycle:>5} | {run_ms:>6} | {:>9} | {:>9} | {:>9} | {:>5} | {queued:>7}",
            l.published,
            l.confirmed.len(),
            l.deliveries.values().map(Vec::len).sum::<usize>(),
            l.acked.len()
        );
    }
    // Drain what is left after a last restart.
    let w = Warren::start_on(dir.path(), &[]);
    let (_c, ch) = connect(&w).await;
    let mut remaining = HashSet::new();
    while let Some(m) = ch.basic_get("crash".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        let id = u32::from_be_bytes(m.delivery.data[..4].try_into().unwrap());
        ledger.lock().unwrap().deliveries.entry(id).or_default().push(m.delivery.redelivered);
        remaining.insert(id);
    }
    let l = ledger.lock().unwrap();
    assert!(l.confirmed.len() > 100, "the test published too little to mean anything: {}", l.confirmed.len());
    let lost: Vec<u32> =
        l.confirmed.iter().filter(|id| !l.acked.contains(id) && !remaining.contains(id)).copied().collect();
    assert!(lost.is_empty(), "confirmed messages lost: {lost:?}");
    for (id, flags) in &l.deliveries {
        assert!(
            flags.iter().skip(1).all(|r| *r),
            "message {id} was delivered again without redelivered=true: {flags:?}"
        );
    }
    println!(
        "confirmed {}, acked {}, left in queue {}, delivered more than once {}",
        l.confirmed.len(),
        l.acked.len(),
        remaining.len(),
        l.deliveries.values().filter(|f| f.len() > 1).count()
    );
}

#[tokio::test]
async fn a_stream_survives_kill_9_and_keeps_its_offsets() {
    use lapin::types::{AMQPValue, LongString};
    let dir = tempfile::tempdir().unwrap();
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("stream")));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut w = Warren::start_on(dir.path(), &[]);
    {
        let (_c, ch) = connect(&w).await;
        ch.queue_declare("log".into(), durable, args.clone()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..50u8 {
            // Transient messages too: a stream keeps everything it confirmed.
            let body = [i];
            let c = ch.basic_publish("".into(), "log".into(), Default::default(), &body, BasicProperties::default());
            assert!(c.await.unwrap().await.unwrap().is_ack());
        }
    }
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (_c, ch) = connect(&w).await;
    ch.queue_declare("log".into(), durable, args).await.expect("same declaration after a restart");
    ch.confirm_select(Default::default()).await.unwrap();
    let c = ch.basic_publish("".into(), "log".into(), Default::default(), &[50], BasicProperties::default());
    c.await.unwrap().await.unwrap();
    let reader = _c.create_channel().await.unwrap();
    reader.basic_qos(100, Default::default()).await.unwrap();
    let mut from = FieldTable::default();
    from.insert("x-stream-offset".into(), AMQPValue::LongString(LongString::from("first")));
    let mut consumer = reader.basic_consume("log".into(), "".into(), Default::default(), from).await.unwrap();
    for i in 0..=50u8 {
        let d = tokio::time::timeout(T, consumer.next()).await.expect("delivery").expect("open").expect("ok");
        let offset = d.properties.headers().as_ref().and_then(|h| h.inner().get("x-stream-offset").cloned());
        assert_eq!((d.data[0], offset), (i, Some(AMQPValue::LongLongInt(i64::from(i)))));
        d.acker.ack(Default::default()).await.unwrap();
    }
}

/// Read `count` entries of stream `queue` from `from` (an `x-stream-offset` value); checks
/// each entry's offset header against its counter and returns the counters.
async fn read_stream(conn: &Connection, queue: &str, from: lapin::types::AMQPValue, count: usize) -> Vec<u32> {
    use lapin::types::AMQPValue;
    let reader = conn.create_channel().await.unwrap();
    reader.basic_qos(300, Default::default()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), from);
    let mut consumer = reader.basic_consume(queue.into(), "".into(), Default::default(), args).await.unwrap();
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let d = tokio::time::timeout(T, consumer.next()).await.expect("delivery").expect("open").expect("ok");
        let counter = u32::from_be_bytes([d.data[0], d.data[1], d.data[2], d.data[3]]);
        let offset = d.properties.headers().as_ref().and_then(|h| h.inner().get("x-stream-offset").cloned());
        assert_eq!(offset, Some(AMQPValue::LongLongInt(i64::from(counter))), "entry {counter}");
        got.push(counter);
        d.acker.ack(Default::default()).await.unwrap();
    }
    reader.close(200, "done".into()).await.unwrap();
    got
}

#[tokio::test]
async fn a_stream_longer_than_its_memory_tail_reads_from_disk_before_and_after_kill_9() {
    // 20,000 entries of 1 KiB: only the newest 4096 stay in memory; consumers behind them
    // read the stream's segment files, from any offset, and a restart reads one record a
    // segment and the last segment.
    use lapin::types::{AMQPValue, LongString};
    let dir = tempfile::tempdir().unwrap();
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("stream")));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let first = || AMQPValue::LongString(LongString::from("first"));
    let mut w = Warren::start_on(dir.path(), &[]);
    {
        let (c, ch) = connect(&w).await;
        ch.queue_declare("big".into(), durable, args.clone()).await.unwrap();
        publish_numbered(&ch, "big", 20_000, 1).await;
        assert_eq!(read_stream(&c, "big", first(), 20_000).await, (0..20_000).collect::<Vec<_>>());
        let from = read_stream(&c, "big", AMQPValue::LongLongInt(12_345), 100).await;
        assert_eq!(from, (12_345..12_445).collect::<Vec<_>>());
    }
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (c, ch) = connect(&w).await;
    ch.queue_declare("big".into(), durable, args).await.expect("same declaration after a restart");
    assert_eq!(read_stream(&c, "big", AMQPValue::LongLongInt(777), 19_223).await, (777..20_000).collect::<Vec<_>>());
    // the next entry continues the offsets
    let mut body = vec![0u8; 16];
    body[..4].copy_from_slice(&20_000u32.to_be_bytes());
    ch.confirm_select(Default::default()).await.unwrap();
    let c2 = ch.basic_publish("".into(), "big".into(), Default::default(), &body, BasicProperties::default());
    assert!(c2.await.unwrap().await.unwrap().is_ack());
    assert_eq!(read_stream(&c, "big", AMQPValue::LongLongInt(19_999), 2).await, [19_999, 20_000]);
}

/// Publish `n` numbered messages (a 4-byte big-endian counter, padded to 1 KiB) with
/// confirms; every `transient_every`-th one is transient (0: none).
async fn publish_numbered(ch: &lapin::Channel, queue: &str, n: u32, transient_every: u32) {
    publish_numbered_from(ch, queue, 0, n, transient_every).await
}

/// Publish messages numbered `from..from + n` (persistent unless `i % transient_every == 0`).
async fn publish_numbered_from(ch: &lapin::Channel, queue: &str, from: u32, n: u32, transient_every: u32) {
    ch.confirm_select(Default::default()).await.unwrap();
    let mut pending = Vec::new();
    for i in from..from + n {
        let mut body = vec![0u8; 1024];
        body[..4].copy_from_slice(&i.to_be_bytes());
        let props =
            if transient_every > 0 && i % transient_every == 0 { BasicProperties::default() } else { persistent() };
        pending.push(ch.basic_publish("".into(), queue.into(), Default::default(), &body, props).await.unwrap());
        if pending.len() == 500 {
            for c in pending.drain(..) {
                assert!(c.await.unwrap().is_ack());
            }
        }
    }
    for c in pending {
        assert!(c.await.unwrap().is_ack());
    }
}

/// Consume everything from `queue` with manual acks; returns (counter, redelivered) in order.
async fn drain_numbered(conn: &Connection, queue: &str, expect: usize) -> Vec<(u32, bool)> {
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(300, Default::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume(queue.into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut got = Vec::with_capacity(expect);
    while got.len() < expect {
        let d = tokio::time::timeout(T, consumer.next()).await.expect("a delivery in time").expect("open").expect("ok");
        got.push((u32::from_be_bytes([d.data[0], d.data[1], d.data[2], d.data[3]]), d.redelivered));
        d.acker.ack(Default::default()).await.unwrap();
    }
    got
}

#[tokio::test]
async fn a_queue_longer_than_its_memory_window_pages_and_keeps_order() {
    // 12,000 messages: three times the in-memory window, so most are read back from the
    // journal; every 7th is transient and waits in memory among the paged ones.
    let dir = tempfile::tempdir().unwrap();
    let w = Warren::start_on(dir.path(), &[]);
    let (c, ch) = connect(&w).await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("long".into(), durable, FieldTable::default()).await.unwrap();
    publish_numbered(&ch, "long", 12_000, 7).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    assert_eq!(ch.queue_declare("long".into(), passive, FieldTable::default()).await.unwrap().message_count(), 12_000);
    let got = drain_numbered(&c, "long", 12_000).await;
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..12_000).collect::<Vec<_>>());
    assert!(got.iter().all(|(_, redelivered)| !redelivered));
}

/// Bytes in the files under `dir`, recursively (0 if it does not exist).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_long_transient_queue_spills_to_disk_and_keeps_order() {
    // 12,000 transient messages of 1 KiB on a non-durable queue: beyond the 4096-message
    // window and the 4096 of the memory tier behind it they go to the queue's spill file, not
    // memory, and come back in order.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    let (c, ch) = connect(&w).await;
    ch.queue_declare("transient".into(), Default::default(), FieldTable::default()).await.unwrap();
    publish_numbered(&ch, "transient", 12_000, 1).await;
    let spill = dir.path().join("spill");
    let spilled = dir_bytes(&spill);
    assert!(spilled >= (12_000 - 2 * 4096) * 1024, "only {spilled} bytes spilled");
    // Half drained, the tier takes new messages again: they wait in memory behind the file's,
    // then the file gets the rest; all come back in order.
    for i in 0..6_000u32 {
        let got = ch.basic_get("transient".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("a message");
        assert_eq!(&got.delivery.data[..4], &i.to_be_bytes()[..]);
    }
    publish_numbered_from(&ch, "transient", 12_000, 6_000, 1).await;
    assert!(dir_bytes(&spill) > spilled, "the tier's overflow goes to the file");
    let got = drain_numbered(&c, "transient", 12_000).await;
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (6_000..18_000).collect::<Vec<_>>());
    assert_eq!(dir_bytes(&spill), 0, "a drained queue keeps nothing on disk");
    // A purge drops what is spilled, and a restart finds no spill file of the last run.
    publish_numbered(&ch, "transient", 10_000, 1).await;
    assert!(dir_bytes(&spill) > 0);
    assert_eq!(ch.queue_purge("transient".into(), Default::default()).await.unwrap(), 10_000);
    assert_eq!(dir_bytes(&spill), 0);
    publish_numbered(&ch, "transient", 6_000, 1).await;
    drop((c, ch));
    kill_9(&mut w);
    let _w = Warren::start_on(dir.path(), &[]);
    assert!(!spill.exists(), "spill files are void after a restart");
}

#[tokio::test]
async fn a_long_queue_comes_back_after_kill_9_in_order_without_loading_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    {
        let (_c, ch) = connect(&w).await;
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare("long".into(), durable, FieldTable::default()).await.unwrap();
        publish_numbered(&ch, "long", 10_000, 0).await;
    }
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (c, ch) = connect(&w).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    assert_eq!(ch.queue_declare("long".into(), passive, FieldTable::default()).await.unwrap().message_count(), 10_000);
    // A basic.get and a purge count paged messages too.
    let first = ch.basic_get("long".into(), BasicGetOptions { no_ack: false }).await.unwrap().expect("a message");
    assert_eq!((&first.delivery.data[..4], first.message_count), (&[0, 0, 0, 0][..], 9_999));
    first.delivery.acker.ack(Default::default()).await.unwrap();
    let got = drain_numbered(&c, "long", 9_999).await;
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (1..10_000).collect::<Vec<_>>());
    assert!(got.iter().all(|(_, redelivered)| *redelivered), "recovered messages come back redelivered");
}

#[tokio::test]
async fn a_purged_paged_queue_stays_purged_after_kill_9() {
    // 10,000 persistent messages (every 7th transient): most are paged out as runs of the
    // spill file; the purge lets go of them by seq range in the journal.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    {
        let (c, ch) = connect(&w).await;
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare("long".into(), durable, FieldTable::default()).await.unwrap();
        publish_numbered(&ch, "long", 10_000, 7).await;
        // two taken and left unacked: a purge keeps them, a restart brings them back
        let held = c.create_channel().await.unwrap();
        let mut kept = Vec::new();
        for _ in 0..2 {
            kept.push(held.basic_get("long".into(), BasicGetOptions { no_ack: false }).await.unwrap().expect("one"));
        }
        assert_eq!(ch.queue_purge("long".into(), Default::default()).await.unwrap(), 9_998);
        publish_numbered(&ch, "long", 3, 0).await;
    }
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (c, ch) = connect(&w).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    assert_eq!(ch.queue_declare("long".into(), passive, FieldTable::default()).await.unwrap().message_count(), 4);
    let got = drain_numbered(&c, "long", 4).await;
    // the unacked persistent one (counter 1: counter 0 was transient), then the three new
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 0, 1, 2]);
}

#[tokio::test]
async fn ttls_count_from_the_first_publish_across_a_restart() {
    use lapin::types::AMQPValue;
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut ttl_args = FieldTable::default();
    ttl_args.insert("x-message-ttl".into(), AMQPValue::LongUInt(3000));
    // Both messages are published between `first` and `last` (a busy machine can make the
    // declares and the confirms take a while: the checks below count from these bounds).
    let (first, last) = {
        let (_c, ch) = connect(&w).await;
        ch.queue_declare("queue_ttl".into(), durable, ttl_args.clone()).await.unwrap();
        ch.queue_declare("message_ttl".into(), durable, FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let first = std::time::Instant::now();
        let c = ch.basic_publish("".into(), "queue_ttl".into(), Default::default(), b"q", persistent());
        assert!(c.await.unwrap().await.unwrap().is_ack());
        let props = persistent().with_expiration("3000".into());
        let c = ch.basic_publish("".into(), "message_ttl".into(), Default::default(), b"m", props);
        assert!(c.await.unwrap().await.unwrap().is_ack());
        (first, std::time::Instant::now())
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    kill_9(&mut w);
    let w = Warren::start_on(dir.path(), &[]);
    let (_c, ch) = connect(&w).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    // Still there before the 3 s are up (when the restart left time to look) ...
    let count = ch.queue_declare("queue_ttl".into(), passive, ttl_args.clone()).await.unwrap().message_count();
    if first.elapsed() < Duration::from_millis(2500) {
        assert_eq!(count, 1, "expired early");
    }
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(last.elapsed())).await;
    // ... and gone 3.5 s after the publish, not 3 s after the restart.
    for q in ["queue_ttl", "message_ttl"] {
        let got = ch.basic_get(q.into(), BasicGetOptions { no_ack: true }).await.unwrap();
        assert!(got.is_none(), "{q}: the message outlived its TTL across the restart");
    }
}

#[tokio::test]
async fn a_message_that_expired_while_the_broker_was_down_is_dead_lettered_at_restart() {
    use lapin::types::{AMQPValue, LongString};
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &[]);
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongUInt(500));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from("")));
    // Named to come after the expiring queue: recovery must not depend on the order.
    args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(LongString::from("zz_dead")));
    {
        let (_c, ch) = connect(&w).await;
        ch.queue_declare("expiring".into(), durable, args).await.unwrap();
        ch.queue_declare("zz_dead".into(), durable, FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let c = ch.basic_publish("".into(), "expiring".into(), Default::default(), b"late", persistent());
        assert!(c.await.unwrap().await.unwrap().is_ack());
    }
    kill_9(&mut w);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let w = Warren::start_on(dir.path(), &[]);
    let (_c, ch) = connect(&w).await;
    let mut got = None;
    for _ in 0..50 {
        got = ch.basic_get("zz_dead".into(), BasicGetOptions { no_ack: true }).await.unwrap();
        if got.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = got.expect("dead-lettered at restart through the recovered topology");
    assert_eq!(m.delivery.data, b"late");
    let death = m.delivery.properties.headers().as_ref().and_then(|h| h.inner().get("x-first-death-reason").cloned());
    assert_eq!(death, Some(AMQPValue::LongString(LongString::from("expired"))));
}
