//! Message counters (the management API's `message_stats`): what each queue, exchange and
//! connection counted, the broker's totals across closed connections, and rates.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn queues_exchanges_and_connections_count_what_passes_and_totals_outlive_connections() {
    let b = TestBroker::start().await;
    let (conn, ch) = b.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ch.queue_declare("counted".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    ch.exchange_declare("fan".into(), lapin::ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind("counted".into(), "fan".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    for i in 0..10u8 {
        let ex = if i < 6 { "fan" } else { "" };
        let body = [i];
        let confirm =
            ch.basic_publish(ex.into(), "counted".into(), Default::default(), &body, BasicProperties::default());
        assert!(confirm.await.unwrap().await.unwrap().is_ack());
    }
    // one returned (mandatory, no route), one dropped
    let opts = BasicPublishOptions { mandatory: true, ..Default::default() };
    ch.basic_publish("".into(), "nowhere".into(), opts, b"r", BasicProperties::default()).await.unwrap().await.unwrap();
    ch.basic_publish("".into(), "nowhere".into(), Default::default(), b"d", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    // two gets (one no-ack, one acked later), then a consumer takes the other eight; one
    // nack with requeue makes a redelivery
    let got = ch.basic_get("counted".into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(got.is_some());
    let got = ch.basic_get("counted".into(), BasicGetOptions { no_ack: false }).await.unwrap().expect("one");
    got.delivery.acker.ack(Default::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume("counted".into(), "c".into(), Default::default(), FieldTable::default()).await.unwrap();
    let first = consumer.next().await.expect("open").expect("ok");
    first.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
    for _ in 0..8 {
        let d = tokio::time::timeout(WAIT, consumer.next()).await.expect("in time").expect("open").expect("ok");
        d.acker.ack(Default::default()).await.unwrap();
    }

    let vhost = b.broker.vhost("/").expect("vhost /");
    let q = vhost.queue_list().into_iter().find(|q| q.name.as_str() == "counted").expect("queue");
    // acks are not answered: wait until the last one is in
    tokio::time::timeout(WAIT, async {
        while q.stats.ack.get() < 9 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the acks arrive");
    let c = q.message_stats().counts();
    assert_eq!((c.publish, c.get, c.get_no_ack, c.deliver, c.redeliver, c.ack), (10, 1, 1, 9, 1, 9));
    let fan = vhost.exchange_list().into_iter().find(|e| e.name.as_str() == "fan").expect("exchange");
    ch.basic_publish("fan".into(), "".into(), Default::default(), b"y", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    b.broker.sample_rates();
    assert_eq!((fan.stats.publish_in.get(), fan.stats.publish_out.get()), (7, 7));
    let totals = b.broker.message_totals();
    assert_eq!((totals.publish, totals.confirm, totals.return_unroutable, totals.drop_unroutable), (13, 13, 1, 1));
    let delivered = tokio::time::timeout(WAIT, consumer.next()).await.expect("in time").expect("open").expect("ok");
    assert_eq!(&delivered.data[..], b"y");
    let totals = b.broker.message_totals();
    assert_eq!((totals.deliver, totals.get, totals.get_no_ack, totals.ack, totals.redeliver), (10, 1, 1, 9, 1));

    // Rates: two samples a moment apart; then the connection closes and its counts stay in
    // the totals.
    b.broker.sample_rates();
    ch.basic_publish("".into(), "counted".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    b.broker.sample_rates();
    assert!(q.message_stats().publish.rate() > 0.0, "a publish since the last sample: a rate");
    let (history, rates) = b.broker.message_history();
    assert!(history.len() >= 2, "the accept loop samples too: {}", history.len());
    assert!(rates.iter().any(|(name, rate)| *name == "publish" && *rate > 0.0), "{rates:?}");
    conn.close(200, "bye".into()).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while !b.broker.connection_list().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection is gone");
    let after = b.broker.message_totals();
    assert_eq!((after.publish, after.confirm, after.ack), (14, 14, 9), "closed connections' counts stay");
}
