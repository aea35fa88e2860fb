//! `warren ctl` users, vhosts, permissions and definitions, driven on the built binary: a user
//! added with ctl logs in and is limited, users survive a restart, definitions exported from
//! warren import into a fresh data directory, and a file exported from RabbitMQ 3.10.8 imports
//! and its user logs in with its RabbitMQ password.

mod common;

use common::{Warren, ctl, ctl_ok};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind};

async fn connect(w: &Warren, user: &str, password: &str, vhost: &str) -> lapin::Result<Connection> {
    let url = format!("amqp://{user}:{password}@{}/{}", w.amqp, vhost.replace('/', "%2f"));
    Connection::connect(&url, ConnectionProperties::default()).await
}

fn code(err: &lapin::Error) -> u16 {
    match err.kind() {
        ErrorKind::ProtocolError(e) => e.get_id(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_added_with_ctl_logs_in_limited_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Warren::start_on(dir.path(), &["--no-chat"]);
    assert_eq!(ctl_ok(dir.path(), &["list_users"]), "user\ttags\nguest\t[administrator]\n");
    assert_eq!(ctl_ok(dir.path(), &["list_permissions"]), "user\tconfigure\twrite\tread\nguest\t.*\t.*\t.*\n");
    ctl_ok(dir.path(), &["add_user", "bob", "pass word"]);
    ctl_ok(dir.path(), &["set_user_tags", "bob", "monitoring"]);
    // An empty write permission: nothing may be written.
    ctl_ok(dir.path(), &["set_permissions", "-p", "/", "bob", "^bob\\.", "", "^bob\\."]);
    let (ok, out) = ctl(dir.path(), &["add_user", "bob", "again"]);
    assert!(!ok && out.contains("already exists"), "{out}");

    let conn = connect(&w, "bob", "pass word", "/").await.expect("bob logs in");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "bob.q".into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .expect("configure on bob.*");
    let e = ch.queue_declare("alice.q".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&e), 403);
    let e = connect(&w, "bob", "wrong", "/").await.unwrap_err();
    assert_eq!(code(&e), 403);
    let listed = ctl_ok(dir.path(), &["list_connections", "user", "vhost"]);
    assert!(listed.contains("bob\t/"), "{listed}");
    let queues = ctl_ok(dir.path(), &["list_queues", "name", "durable"]);
    assert!(queues.contains("bob.q\ttrue"), "{queues}");
    drop(conn);

    w.terminate();
    let w = Warren::start_on(dir.path(), &["--no-chat"]);
    assert_eq!(ctl_ok(dir.path(), &["list_users"]), "user\ttags\nbob\t[monitoring]\nguest\t[administrator]\n");
    let conn = connect(&w, "bob", "pass word", "/").await.expect("bob logs in after a restart");
    let ch = conn.create_channel().await.unwrap();
    let e = ch.queue_declare("alice.q".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&e), 403, "permissions survive the restart too");
    connect(&w, "guest", "guest", "/").await.expect("guest still works");

    // Deleting the user closes its connection and stops its logins.
    ctl_ok(dir.path(), &["delete_user", "bob"]);
    connect(&w, "bob", "pass word", "/").await.unwrap_err();
}

#[tokio::test]
async fn vhosts_from_ctl_and_definitions_move_to_a_fresh_data_dir() {
    let a = Warren::start(&["--no-chat"]);
    ctl_ok(&a.data_dir, &["add_vhost", "shop"]);
    ctl_ok(&a.data_dir, &["add_user", "carol", "carol-pw"]);
    ctl_ok(&a.data_dir, &["set_permissions", "-p", "shop", "carol", ".*", ".*", ".*"]);
    ctl_ok(&a.data_dir, &["set_topic_permissions", "-p", "shop", "carol", "amq.topic", "^{username}\\.", ".*"]);
    assert_eq!(ctl_ok(&a.data_dir, &["list_vhosts"]), "name\n/\nshop\n");
    let e = connect(&a, "carol", "carol-pw", "/").await.unwrap_err();
    assert_eq!(code(&e), 530, "no permissions on /");
    {
        let conn = connect(&a, "carol", "carol-pw", "shop").await.expect("carol in shop");
        let ch = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare("orders".into(), durable, FieldTable::default()).await.unwrap();
        ch.exchange_declare(
            "shop.events".into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            "orders".into(),
            "shop.events".into(),
            "order.*".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let file = a.data_dir.join("exported.json");
    ctl_ok(&a.data_dir, &["export_definitions", file.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["rabbit_version"], "3.10.8");
    assert!(json["users"].as_array().unwrap().iter().any(|u| u["name"] == "carol"
        && u["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        && !u["password_hash"].as_str().unwrap().is_empty()));
    assert_eq!(json["bindings"].as_array().unwrap().len(), 1, "{json}");

    let b = Warren::start(&["--no-chat"]);
    let out = ctl_ok(&b.data_dir, &["import_definitions", file.to_str().unwrap()]);
    assert!(out.starts_with("ok: imported"), "{out}");
    check_shop(&b, "carol", "carol-pw").await;
}

/// In vhost `shop`: `user` logs in, `orders` is bound to `shop.events` with `order.*`.
async fn check_shop(w: &Warren, user: &str, password: &str) {
    let conn = connect(w, user, password, "shop").await.expect("the imported user logs in with its password");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish("shop.events".into(), "order.new".into(), Default::default(), b"o1", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let got = ch.basic_get("orders".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("routed");
    assert_eq!(got.delivery.data, b"o1");
}

#[tokio::test]
async fn definitions_exported_from_rabbitmq_import_and_their_users_log_in() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rabbitmq-3.10.8-definitions.json");
    let w = Warren::start(&["--no-chat"]);
    ctl_ok(&w.data_dir, &["import_definitions", fixture]);
    // carol's password was hashed by RabbitMQ 3.10.8.
    check_shop(&w, "carol", "carol-pw").await;
    assert_eq!(
        ctl_ok(&w.data_dir, &["list_user_permissions", "carol"]),
        "vhost\tconfigure\twrite\tread\nshop\t^(orders|shop\\..*)$\t^shop\\.\t^(orders|shop\\..*)$\n"
    );
    assert_eq!(
        ctl_ok(&w.data_dir, &["list_topic_permissions", "-p", "shop"]),
        "user\texchange\twrite\tread\ncarol\tshop.events\t^order\\.\t.*\n"
    );
    let queues = ctl_ok(&w.data_dir, &["list_queues", "-p", "shop", "name", "arguments"]);
    assert!(queues.contains("orders\t{\"x-max-length\":1000,\"x-message-ttl\":60000}"), "{queues}");
    // carol's topic permission on shop.events applies.
    let conn = connect(&w, "carol", "carol-pw", "shop").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish("shop.events".into(), "refund.new".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap();
    let e = confirm.await.unwrap_err();
    assert_eq!(code(&e), 403);
    // The exchange-to-exchange binding came along: shop.audit gets everything.
    let (conn, ch) = {
        let conn = connect(&w, "guest", "guest", "shop").await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        (conn, ch)
    };
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind(q.name().clone(), "shop.audit".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish("shop.events".into(), "anything".into(), Default::default(), b"a", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let got = ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(got.is_some(), "shop.events -> shop.audit -> queue");
    drop(conn);
    // Imported again: nothing changes, nothing fails.
    ctl_ok(&w.data_dir, &["import_definitions", fixture]);
}
