//! Publisher confirms and transactions.

mod common;

use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn confirms_ack_every_publish() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("cf".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let mut confirms = Vec::new();
    for i in 0..200u32 {
        confirms.push(
            ch.basic_publish("".into(), "cf".into(), Default::default(), &i.to_be_bytes(), BasicProperties::default())
                .await
                .unwrap(),
        );
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty());
    let q = ch
        .queue_declare("cf".into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(q.message_count(), 200);
}

#[tokio::test]
async fn tx_commit_delivers_and_rollback_discards() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("tx".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.tx_select().await.unwrap();
    ch.basic_publish("".into(), "tx".into(), Default::default(), b"rolled back", BasicProperties::default())
        .await
        .unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_publish("".into(), "tx".into(), Default::default(), b"committed", BasicProperties::default())
        .await
        .unwrap();
    let before = ch
        .queue_declare("tx".into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(before.message_count(), 0, "nothing is visible before commit");
    ch.tx_commit().await.unwrap();
    let m = ch.basic_get("tx".into(), BasicGetOptions { no_ack: false }).await.unwrap().expect("committed message");
    assert_eq!(m.delivery.data, b"committed");
    assert!(ch.basic_get("tx".into(), BasicGetOptions { no_ack: true }).await.unwrap().is_none());
    // An ack rolled back leaves the message unacked; recover then requeues it.
    ch.basic_ack(m.delivery.delivery_tag, Default::default()).await.unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    let again = ch.basic_get("tx".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("requeued");
    assert!(again.delivery.redelivered);
}

#[tokio::test]
async fn tx_errors_are_406() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    let err = ch.tx_commit().await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    let err = ch.tx_rollback().await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let err = ch.tx_select().await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    let err = ch.confirm_select(Default::default()).await.unwrap_err();
    assert_eq!(code(&err), 406);
}
