//! Resource alarms: while the alarm is set, a publishing connection is blocked (told with
//! connection.blocked, not read from), others keep working; when it clears the connection is
//! unblocked and what it published arrives.

mod common;

use std::time::Duration;

use common::{TestBroker, WAIT};
use futures_lite::StreamExt;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Event};
use tokio::sync::watch;
use warren_broker::alarm::{AlarmState, LOW_ON_DISK};
use warren_broker::{Broker, BrokerConfig};

async fn next_event(events: &mut (impl futures_lite::Stream<Item = Event> + Unpin), want: fn(&Event) -> bool) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.next().await {
                Some(e) if want(&e) => return e,
                Some(_) => continue,
                None => panic!("event stream ended"),
            }
        }
    })
    .await
    .expect("event in time")
}

async fn message_count(ch: &lapin::Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    ch.queue_declare(queue.into(), passive, FieldTable::default()).await.expect("passive declare").message_count()
}

#[tokio::test]
async fn a_publisher_is_blocked_while_the_alarm_is_set_and_loses_nothing() {
    let (alarm, rx) = watch::channel::<AlarmState>(None);
    let b = TestBroker::with_broker(Broker::with_alarm(BrokerConfig::default(), rx)).await;
    let (_observer_conn, observer) = b.channel().await;
    observer.queue_declare("alarmed".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();

    let (publisher_conn, publisher) = b.channel().await;
    let mut events = Box::pin(publisher_conn.events_listener());
    let publish = |body: &'static [u8]| {
        let publisher = publisher.clone();
        async move {
            publisher
                .basic_publish(
                    "".into(),
                    "alarmed".into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
        }
    };
    publish(b"before").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&observer, "alarmed").await, 1);

    alarm.send(Some(LOW_ON_DISK)).unwrap();
    let blocked = next_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    assert!(matches!(blocked, Event::ConnectionBlocked(ref r) if r == LOW_ON_DISK), "{blocked:?}");
    // (lapin itself holds publishes while told it is blocked: the broker's refusal to read
    // is what `a_connection_that_never_published_is_not_blocked` and tests/disk_alarm.rs see)
    let during = tokio::spawn(publish(b"during"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // not read, so not routed; a connection that does not publish is not blocked
    assert_eq!(message_count(&observer, "alarmed").await, 1);
    observer.queue_declare("still-works".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();

    alarm.send(None).unwrap();
    next_event(&mut events, |e| matches!(e, Event::ConnectionUnblocked)).await;
    tokio::time::timeout(WAIT, during).await.expect("publish sent once unblocked").expect("publish task");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&observer, "alarmed").await, 2, "the held publish arrives once unblocked");
}

#[tokio::test]
async fn a_connection_that_never_published_is_not_blocked() {
    let (alarm, rx) = watch::channel::<AlarmState>(Some(LOW_ON_DISK));
    let b = TestBroker::with_broker(Broker::with_alarm(BrokerConfig::default(), rx)).await;
    let (conn, ch) = b.channel().await;
    ch.queue_declare("q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    assert!(!conn.status().blocked());
    // its first publish blocks it (RabbitMQ: "blocking" until it publishes)
    let mut events = Box::pin(conn.events_listener());
    drop(
        ch.basic_publish("".into(), "q".into(), BasicPublishOptions::default(), b"x", BasicProperties::default()).await,
    );
    next_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    // the broker stopped reading after the method frame: the message is held, not routed
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_other, observer) = b.channel().await;
    assert_eq!(message_count(&observer, "q").await, 0);
    alarm.send(None).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(message_count(&observer, "q").await, 1, "held, then taken once the alarm clears");
}
