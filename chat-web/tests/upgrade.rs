//! A chat front end starts on a broker whose streams an earlier warren declared with other
//! arguments (before `x-initial-cluster-size`): it keeps them as they are rather than failing
//! with 406 inequivalent arg. On the embedded broker only (a test binary of its own: the
//! directory stream must not exist before the test declares it the old way).

mod common;

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties};

#[tokio::test]
async fn streams_declared_by_an_earlier_warren_are_kept() {
    if std::env::var("WARREN_CHAT_AMQP_URL").is_ok() {
        return; // a shared RabbitMQ has the directory already, declared the current way
    }
    let url = common::amqp_url();
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let mut old_args = FieldTable::default();
    old_args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("stream")));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("chat.directory".into(), durable, old_args.clone()).await.expect("the old declaration");
    // the premise: the broker refuses today's arguments for that stream
    let mut new_args = old_args;
    new_args.insert("x-initial-cluster-size".into(), AMQPValue::LongLongInt(3));
    let refused = conn.create_channel().await.expect("channel");
    assert!(refused.queue_declare("chat.directory".into(), durable, new_args).await.is_err(), "406 expected");

    let chat = common::chat().await; // panics if the front end does not start
    let (_, token) = chat.user("upgrade").await;
    let room = chat.room(&token, true).await;
    assert!(room["id"].is_string(), "{room}");
    conn.close(200, "bye".into()).await.expect("close");
}
