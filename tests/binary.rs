//! End-to-end: the `warren` binary serves lapin, and SIGTERM closes clients with 320 and exits 0.

mod common;

use std::time::Duration;

use common::Warren;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::test]
async fn lapin_round_trip_against_the_binary() {
    let w = Warren::start(&[]);
    let conn = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume(q.name().clone(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    for i in 0..100u32 {
        let confirm = ch
            .basic_publish(
                "".into(),
                q.name().clone(),
                Default::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack());
    }
    for i in 0..100u32 {
        let d = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(d.data, i.to_be_bytes());
        d.acker.ack(Default::default()).await.unwrap();
    }
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn sigterm_closes_connections_with_320_and_exits_0() {
    let mut w = Warren::start(&[]);
    let conn = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("connect");
    let status = tokio::task::spawn_blocking(move || w.terminate()).await.unwrap();
    assert!(status.success(), "exit status {status}");
    // lapin saw the server's connection.close.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!conn.status().connected());
}

#[test]
fn help_lists_flags_with_their_environment_variables() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let needles = [
        "--amqp-bind",
        "WARREN_AMQP_BIND",
        "--max-message-size",
        "WARREN_MAX_MESSAGE_SIZE",
        "--config",
        "--max-upload-mb",
        "WARREN_CHAT_MAX_UPLOAD_MB",
    ];
    let config =
        ["WARREN_CONFIG", "listeners.tcp.default", "load_definitions", "--management-bind", "--prometheus-bind"];
    for needle in needles.into_iter().chain(config) {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn unusable_address_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["--amqp-bind", "256.0.0.1:5672"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("cannot listen for AMQP on 256.0.0.1:5672"), "{text}");
}

/// `--amqp-bind` with a port alone is the default's form: every interface, one `[::]` socket
/// that takes IPv4 clients too (IPv4 only where the host has no IPv6).
#[tokio::test]
async fn a_port_alone_listens_on_ipv6_and_ipv4() {
    let w = Warren::start(&["--amqp-bind", "0", "--no-chat"]);
    assert!(w.amqp.ip().is_unspecified(), "every interface: {}", w.amqp);
    let port = w.amqp.port();
    // guest may log in from loopback only: 127.0.0.1, seen as ::ffff:127.0.0.1 on the [::]
    // socket, must count as loopback
    let mut urls = vec![format!("amqp://guest:guest@127.0.0.1:{port}/%2f")];
    if w.amqp.is_ipv4() {
        eprintln!("no IPv6 on this host: warren fell back to {}; checked IPv4 only", w.amqp);
    } else if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        eprintln!("::1 is not available on this host ({e}): checked IPv4 only");
    } else {
        urls.push(format!("amqp://guest:guest@[::1]:{port}/%2f"));
    }
    for url in urls {
        let conn =
            Connection::connect(&url, ConnectionProperties::default()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let ch = conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        ch.basic_publish("".into(), q.name().clone(), Default::default(), url.as_bytes(), BasicProperties::default())
            .await
            .unwrap();
        let got = loop {
            if let Some(got) = ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true }).await.unwrap() {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(got.delivery.data, url.as_bytes());
        conn.close(200, "bye".into()).await.unwrap();
    }
}

/// `--max-upload-mb` reaches the chat: the page reads the limit from `/api/config`.
#[tokio::test]
async fn the_upload_limit_flag_reaches_the_chat() {
    let w = Warren::start(&["--max-upload-mb", "3"]);
    let http = common::Http { base: w.chat_base() };
    let (status, config) = http.req(hyper::Method::GET, "/api/config", None, None).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["max_upload_bytes"], 3 * 1024 * 1024);
}
