//! A publisher whose socket never runs dry does not keep the broker's runtime thread to
//! itself: another connection is served while the flood goes on.
//!
//! The broker runs on a runtime of one worker thread (the worst case of a small box). A plain
//! thread keeps the publisher's socket full of publishes (unroutable, so nothing is kept),
//! and only once it has written several MiB does a lapin client connect and make a round
//! trip. The flood stops when that round trip is done, or after `FLOOD_CAP`: the test fails if
//! it was the cap. Before a connection gave its thread back after a millisecond of reading, one
//! publisher's connection ran for 30 s in a single poll in `bench/hardening.sh`'s flow row.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, basic, channel};
use common::{RawClient, TestBroker};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use warren_broker::connection::codec;

/// The flood stops by itself after this long: reaching it means the other connection was
/// never served while the flood went on.
const FLOOD_CAP: Duration = Duration::from_secs(30);
/// The other connection starts once the flood has written this much.
const FLOOD_BEFORE_PROBE: u64 = 8 << 20;

/// 1000 unroutable publishes of 16 bytes on channel 1, encoded once.
fn publishes() -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let publish = basic::Publish { exchange: "".into(), routing_key: "nowhere".into(), ..Default::default() };
        codec::write_frame(&mut out, &AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish))));
        let header = AMQPContentHeader { class_id: 60, body_size: 16, properties: basic::AMQPProperties::default() };
        codec::write_frame(&mut out, &AMQPFrame::Header(1, header));
        codec::write_frame(&mut out, &AMQPFrame::Body(1, vec![7u8; 16]));
    }
    out
}

#[test]
fn a_flooding_publisher_does_not_keep_the_only_worker_from_other_connections() {
    let broker_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let client_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let b = broker_rt.block_on(TestBroker::start());

    let flooder = client_rt.block_on(async {
        let mut c = RawClient::open(b.addr).await;
        c.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
        assert!(matches!(
            c.recv().await,
            Some(codec::Frame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))
        ));
        c
    });
    let RawClient { stream, .. } = flooder;
    let stream = client_rt.block_on(async { stream.into_std().expect("std socket") });
    stream.set_nonblocking(false).expect("blocking socket");

    let done = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let flood = {
        let (done, written) = (done.clone(), written.clone());
        std::thread::spawn(move || {
            let mut stream = stream;
            let batch = publishes();
            let started = Instant::now();
            while !done.load(Ordering::Relaxed) && started.elapsed() < FLOOD_CAP {
                if stream.write_all(&batch).is_err() {
                    return (false, started.elapsed());
                }
                written.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            (done.load(Ordering::Relaxed), started.elapsed())
        })
    };
    while written.load(Ordering::Relaxed) < FLOOD_BEFORE_PROBE {
        assert!(!flood.is_finished(), "the flood stopped before the other connection started");
        std::thread::sleep(Duration::from_millis(10));
    }

    let probe = client_rt.block_on(async {
        let t = Instant::now();
        let (_conn, ch) = b.channel().await;
        let exclusive = QueueDeclareOptions { exclusive: true, ..Default::default() };
        ch.queue_declare("".into(), exclusive, FieldTable::default()).await.expect("declare");
        t.elapsed()
    });
    done.store(true, Ordering::Relaxed);
    let (stopped_by_probe, flooded) = flood.join().expect("flood thread");
    let total = written.load(Ordering::Relaxed);
    eprintln!("the other connection was served in {probe:?}; the flood wrote {} MiB in {flooded:?}", total >> 20);
    assert!(
        stopped_by_probe,
        "the flood ran {flooded:?} ({} MiB) without the other connection being served",
        total >> 20
    );
    broker_rt.block_on(b.shutdown());
}
