//! Users, vhosts and permissions over the wire (lapin): every refused method is a 403 with
//! RabbitMQ's text, vhosts are refused with 530, topic permissions apply to topic exchanges,
//! vhosts keep their queues apart, and connection.update-secret is answered.

mod common;

use common::{TestBroker, WAIT};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use warren_broker::access::full_permissions;
use warren_persistence::{PermissionDef, TopicPermissionDef};

/// (code, text) of a broker-sent error.
fn refusal(err: &lapin::Error) -> (u16, String) {
    match err.kind() {
        ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn perm(user: &str, vhost: &str, configure: &str, write: &str, read: &str) -> PermissionDef {
    PermissionDef {
        user: user.into(),
        vhost: vhost.into(),
        configure: configure.into(),
        write: write.into(),
        read: read.into(),
    }
}

async fn connect_as(b: &TestBroker, user: &str, password: &str, vhost: &str) -> lapin::Result<Connection> {
    let vhost = vhost.replace('/', "%2f");
    Connection::connect(&format!("amqp://{user}:{password}@{}/{vhost}", b.addr), ConnectionProperties::default()).await
}

async fn channel_as(b: &TestBroker, user: &str) -> (Connection, Channel) {
    let conn = connect_as(b, user, "s3cret", "/").await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// guest declares what bob is refused; bob may touch `bob.*` only.
async fn setup() -> TestBroker {
    let b = TestBroker::start().await;
    b.broker.access.add_user("bob", "s3cret").unwrap();
    b.broker.access.set_permissions(perm("bob", "/", "^bob", "^bob", "^bob")).unwrap();
    let (_conn, ch) = b.channel().await;
    ch.queue_declare("other".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.exchange_declare("other.x".into(), ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare("bob.x".into(), ExchangeKind::Topic, Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_declare("bob.q".into(), Default::default(), FieldTable::default()).await.unwrap();
    b
}

fn refused(kind: &str, name: &str) -> (u16, String) {
    (403, format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user 'bob'"))
}

#[tokio::test]
async fn every_refused_method_is_403_with_rabbitmqs_text() {
    let b = setup().await;
    let none = FieldTable::default;
    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.queue_declare("other".into(), Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "queue.declare needs configure");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.exchange_declare("other.y".into(), ExchangeKind::Direct, Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("exchange", "other.y"), "exchange.declare needs configure");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.exchange_delete("other.x".into(), Default::default()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("exchange", "other.x"), "exchange.delete needs configure");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.queue_delete("other".into(), Default::default()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "queue.delete needs configure");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.queue_purge("other".into(), Default::default()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "queue.purge needs read");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.queue_bind("bob.q".into(), "other.x".into(), "k".into(), Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("exchange", "other.x"), "queue.bind needs read on the exchange");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.queue_bind("other".into(), "bob.x".into(), "k".into(), Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "queue.bind needs write on the queue");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e =
        ch.exchange_bind("other.x".into(), "bob.x".into(), "k".into(), Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("exchange", "other.x"), "exchange.bind needs write on the destination");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.basic_consume("other".into(), "".into(), Default::default(), none()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "basic.consume needs read");

    let (_c, ch) = channel_as(&b, "bob").await;
    let e = ch.basic_get("other".into(), Default::default()).await.unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "other"), "basic.get needs read");

    let (_c, ch) = channel_as(&b, "bob").await;
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish("".into(), "other".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, confirm).await.expect("in time").unwrap_err();
    assert_eq!(refusal(&e), refused("exchange", "amq.default"), "the default exchange is amq.default");

    // What bob may do works.
    let (_c, ch) = channel_as(&b, "bob").await;
    ch.queue_bind("bob.q".into(), "bob.x".into(), "k".into(), Default::default(), none()).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish("bob.x".into(), "k".into(), Default::default(), b"hi", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let got = ch.basic_get("bob.q".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("a message");
    assert_eq!(got.delivery.data, b"hi");
    ch.queue_purge("bob.q".into(), Default::default()).await.unwrap();
    ch.queue_delete("bob.q".into(), Default::default()).await.unwrap();
    b.shutdown().await;
}

#[tokio::test]
async fn unknown_and_forbidden_vhosts_are_530() {
    let b = TestBroker::start().await;
    b.broker.access.add_user("bob", "s3cret").unwrap();
    b.broker.add_vhost("v1", "", Vec::new()).unwrap();
    let e = connect_as(&b, "bob", "s3cret", "nope").await.unwrap_err();
    assert_eq!(refusal(&e), (530, "NOT_ALLOWED - vhost nope not found".into()));
    let e = connect_as(&b, "bob", "s3cret", "v1").await.unwrap_err();
    assert_eq!(refusal(&e), (530, "NOT_ALLOWED - access to vhost 'v1' refused for user 'bob'".into()));
    let e = connect_as(&b, "bob", "wrong", "v1").await.unwrap_err();
    assert_eq!(refusal(&e).0, 403, "a wrong password is refused before the vhost");
    b.broker.access.set_permissions(perm("bob", "v1", ".*", ".*", ".*")).unwrap();
    connect_as(&b, "bob", "s3cret", "v1").await.expect("allowed now");
    b.shutdown().await;
}

#[tokio::test]
async fn topic_permissions_check_routing_keys_with_variables() {
    let b = TestBroker::start().await;
    b.broker.access.add_user("bob", "s3cret").unwrap();
    b.broker.access.set_permissions(full_permissions("bob", "/")).unwrap();
    b.broker
        .access
        .set_topic_permissions(TopicPermissionDef {
            user: "bob".into(),
            vhost: "/".into(),
            exchange: "amq.topic".into(),
            write: "^{username}\\.".into(),
            read: "^{vhost}$".into(),
        })
        .unwrap();
    let (_c, ch) = channel_as(&b, "bob").await;
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish("amq.topic".into(), "bob.news".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap()
        .await
        .expect("own prefix allowed");
    // Other exchanges have no topic permission: anything goes.
    ch.basic_publish("amq.direct".into(), "alice.news".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap()
        .await
        .expect("no topic rule for amq.direct");
    let confirm = ch
        .basic_publish("amq.topic".into(), "alice.news".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, confirm).await.expect("in time").unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            403,
            "ACCESS_REFUSED - access to topic 'alice.news' in exchange 'amq.topic' in vhost '/' refused for user 'bob'"
                .into()
        )
    );
    // Binding reads with the topic read permission.
    let (_c, ch) = channel_as(&b, "bob").await;
    ch.queue_declare("tq".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind("tq".into(), "amq.topic".into(), "/".into(), Default::default(), FieldTable::default())
        .await
        .expect("{vhost} is '/'");
    let e = ch
        .queue_bind("tq".into(), "amq.topic".into(), "#".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(refusal(&e).0, 403);
    b.shutdown().await;
}

#[tokio::test]
async fn a_permission_change_applies_to_open_connections() {
    let b = setup().await;
    let (_c, ch) = channel_as(&b, "bob").await;
    ch.queue_declare(
        "bob.1".into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
    b.broker.access.set_permissions(perm("bob", "/", "^nothing$", "", "")).unwrap();
    let e = ch
        .queue_declare(
            "bob.2".into(),
            QueueDeclareOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(refusal(&e), refused("queue", "bob.2"));
    b.shutdown().await;
}

#[tokio::test]
async fn vhosts_keep_their_queues_and_exchanges_apart() {
    let b = TestBroker::start().await;
    b.broker.add_vhost("v1", "", Vec::new()).unwrap();
    b.broker.access.set_permissions(full_permissions("guest", "v1")).unwrap();
    let root = b.connect().await.create_channel().await.unwrap();
    let v1 = connect_as(&b, "guest", "guest", "v1").await.unwrap().create_channel().await.unwrap();
    for ch in [&root, &v1] {
        ch.queue_declare("q".into(), Default::default(), FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
    }
    root.basic_publish("".into(), "q".into(), Default::default(), b"root", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    v1.basic_publish("amq.direct".into(), "none".into(), Default::default(), b"v1", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let q = v1.queue_declare(
        "q".into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    );
    assert_eq!(q.await.unwrap().message_count(), 0, "v1's q is not /'s q");
    let q = root.queue_declare(
        "q".into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    );
    assert_eq!(q.await.unwrap().message_count(), 1);
    // A vhost's own exchanges.
    v1.exchange_declare("only.v1".into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    let e = root
        .exchange_declare(
            "only.v1".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(refusal(&e).0, 404);
    // Deleting the vhost closes its connections with 320.
    b.broker.delete_vhost("v1").unwrap();
    let e = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = v1.basic_qos(1, Default::default()).await {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed in time");
    assert!(matches!(e.kind(), ErrorKind::ProtocolError(_) | ErrorKind::InvalidConnectionState(_)), "{e:?}");
    b.shutdown().await;
}

#[tokio::test]
async fn update_secret_is_answered() {
    let b = setup().await;
    let conn = connect_as(&b, "bob", "s3cret", "/").await.unwrap();
    conn.update_secret("s3cret".into(), "rotation".into()).await.expect("update-secret-ok");
    // RabbitMQ's internal backend takes any secret (its state never expires): so does warren.
    conn.update_secret("something else".into(), "rotation".into()).await.expect("update-secret-ok");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "bob.after".into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .expect("the connection keeps working with its permissions");
    b.shutdown().await;
}
